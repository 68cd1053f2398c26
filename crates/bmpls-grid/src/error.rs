//! Errors of the grid: bad coordinates, depths, shapes and level configuration.

/// Everything that can be wrong with an input to the grid.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GridError {
    /// A coordinate that is NaN or infinite.
    #[error("{axis} is not a finite number")]
    NotFinite {
        /// `"longitude"` or `"latitude"`.
        axis: &'static str,
    },
    /// A latitude outside [−90, 90].
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// A longitude outside [−180, 180].
    #[error("longitude {0} is outside [-180, 180]")]
    Longitude(f64),
    /// A depth beyond the grid's (or zero where a cell is needed).
    #[error("depth {depth} is outside 0..={max}")]
    Depth {
        /// Requested depth.
        depth: u8,
        /// Largest allowed.
        max: u8,
    },
    /// A cell index that does not exist at its depth.
    #[error("index {index} does not exist at depth {depth}")]
    Index {
        /// The index.
        index: u64,
        /// Its depth.
        depth: u8,
    },
    /// A circle with a negative, NaN or planet-sized radius.
    #[error("radius {0} m is not in [0, {max}]", max = crate::circle::MAX_RADIUS_M)]
    Radius(f64),
    /// A polygon that is empty or invalid (self-intersecting, too few points, non-finite).
    #[error("invalid polygon: {0}")]
    Polygon(String),
    /// A shape covering must allow at least one range.
    #[error("a covering needs at least one range")]
    NoRanges,
}

/// What is wrong with a precision-level configuration; every variant names the entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// The text is not valid TOML of the expected shape (a missing, unknown or mistyped field
    /// is named in the message).
    #[error("levels configuration, line {line}: {message}")]
    Parse {
        /// Line of the problem, from 1 (0 when the parser gives no position).
        line: usize,
        /// The parser's description, naming the field.
        message: String,
    },
    /// No level at all, or more than the key hierarchy supports.
    #[error("{0} levels: need 1..={max}", max = crate::level::MAX_LEVELS)]
    Count(usize),
    /// `grid_depth` beyond what the grid supports.
    #[error("grid_depth = {0}: need 1..={max}", max = crate::MAX_DEPTH)]
    GridDepth(u8),
    /// A name that is empty, too long, or not lowercase ASCII letters, digits, `-` or `_`.
    #[error("level {index}: name {name:?} must be 1..=32 characters of a-z, 0-9, '-' or '_'")]
    Name {
        /// Position in the list.
        index: usize,
        /// The name given.
        name: String,
    },
    /// Two levels with one name.
    #[error("level {index}: name {name:?} is used twice")]
    DuplicateName {
        /// Position of the second use.
        index: usize,
        /// The name.
        name: String,
    },
    /// A depth of 0 or beyond the grid depth.
    #[error("level {index} ({name}): depth {depth} is outside 1..={grid_depth}")]
    Depth {
        /// Position in the list.
        index: usize,
        /// The level's name.
        name: String,
        /// The depth given.
        depth: u8,
        /// The grid depth.
        grid_depth: u8,
    },
    /// Levels must go from finest to coarsest with strictly decreasing depths.
    #[error(
        "level {index} ({name}): depth {depth} must be smaller than the previous level's {previous}"
    )]
    Order {
        /// Position in the list.
        index: usize,
        /// The level's name.
        name: String,
        /// Its depth.
        depth: u8,
        /// The previous level's depth.
        previous: u8,
    },
    /// An ORE level coarser than an OPE one.
    #[error(
        "level {index} ({name}) uses scheme \"ore\" but the finer level {finer} uses \"ope\": \
         order-preserving ciphertexts of a finer level would reveal what ORE protects; \
         make every level finer than an ORE level ORE too"
    )]
    OpeBelowOre {
        /// Position in the list.
        index: usize,
        /// The level's name.
        name: String,
        /// The finer OPE level's name.
        finer: String,
    },
}
