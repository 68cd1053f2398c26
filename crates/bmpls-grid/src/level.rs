//! Named precision levels (`exact`, `street`, `neighbourhood`, …), from configuration.
//!
//! Levels are ordered finest first: [`LevelIndex`] 0 is the finest, as in the key hierarchy of
//! `bmpls-ope`, where a level's key derives every coarser (higher-index) level's key.

use serde::Deserialize;

use crate::cell::{DEFAULT_DEPTH, MAX_DEPTH};
use crate::error::LevelError;

/// Most levels a configuration may name (the key hierarchy's limit).
pub const MAX_LEVELS: usize = 16;
/// Longest level name.
const MAX_NAME_LEN: usize = 32;

/// Position of a level in its [`LevelSet`], 0 being the finest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LevelIndex(pub u8);

/// One named precision level: cells of the Hilbert grid at `depth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// Name used in grants and on the command line.
    pub name: String,
    /// Hilbert depth of the level's cells.
    pub depth: u8,
    /// How a record's cell at this level is encrypted.
    pub scheme: Scheme,
}

/// How records encrypt a level's cell, and so what a copy of a validator's disk reveals of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Randomised order-preserving encryption (BCLO): ciphertexts compare as integers, so
    /// anyone holding two of them orders them and estimates their distance. Kept for coarse
    /// levels, where that reveals nothing finer than the cell (measured: `bmpls bench
    /// privacy`), because it feeds the store's zone maps.
    Ope,
    /// Left/right order-revealing encryption (Lewi–Wu): a record stores a right ciphertext,
    /// which nothing compares without a left token made with the level's key.
    Ore,
}

impl Scheme {
    /// The secure default for a level of `depth`: ORE for cells finer than
    /// [`ORE_FROM_DEPTH`] (neighbourhood and finer by default), OPE for the coarser ones.
    pub fn default_for(depth: u8) -> Self {
        if depth >= ORE_FROM_DEPTH {
            Self::Ore
        } else {
            Self::Ope
        }
    }

    /// The name in `levels.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ope => "ope",
            Self::Ore => "ore",
        }
    }
}

/// Levels at this depth or finer default to ORE: depth 14 cells are ~2.4 km × 1.2 km, and the
/// measured attacks on OPE ciphertexts of depth 16 (neighbourhood) place fixes to tens of
/// metres, on depth 13 (district) no finer than its cells.
pub const ORE_FROM_DEPTH: u8 = 14;

/// The validated list of levels, finest first, over a grid of `grid_depth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSet {
    grid_depth: u8,
    levels: Vec<Level>,
}

/// The shape of `config/levels.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsFile {
    grid_depth: u8,
    level: Vec<LevelEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelEntry {
    name: String,
    depth: u8,
    scheme: Option<Scheme>,
}

impl LevelSet {
    /// The default levels of DESIGN.md: exact 25, street 19, neighbourhood 16, district 13,
    /// city 10, region 7, on a grid of depth 25.
    pub fn default_levels() -> Self {
        let levels = [
            ("exact", 25),
            ("street", 19),
            ("neighbourhood", 16),
            ("district", 13),
            ("city", 10),
            ("region", 7),
        ]
        .into_iter()
        .map(|(name, depth)| Level {
            name: name.to_owned(),
            depth,
            scheme: Scheme::default_for(depth),
        })
        .collect();
        Self {
            grid_depth: DEFAULT_DEPTH,
            levels,
        }
    }

    /// Parses and validates a levels configuration (the text of `config/levels.toml`).
    pub fn from_toml(text: &str) -> Result<Self, LevelError> {
        let file: LevelsFile = toml::from_str(text).map_err(|e| LevelError::Parse {
            line: e
                .span()
                .and_then(|span| text.get(..span.start))
                .map_or(0, |before| before.matches('\n').count() + 1),
            message: e.message().to_owned(),
        })?;
        let levels = file
            .level
            .into_iter()
            .map(|e| Level {
                name: e.name,
                depth: e.depth,
                scheme: e.scheme.unwrap_or(Scheme::default_for(e.depth)),
            })
            .collect();
        Self::new(file.grid_depth, levels)
    }

    /// Validates levels given finest first.
    pub fn new(grid_depth: u8, levels: Vec<Level>) -> Result<Self, LevelError> {
        if grid_depth == 0 || grid_depth > MAX_DEPTH {
            return Err(LevelError::GridDepth(grid_depth));
        }
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return Err(LevelError::Count(levels.len()));
        }
        for (index, level) in levels.iter().enumerate() {
            let name_ok = !level.name.is_empty()
                && level.name.len() <= MAX_NAME_LEN
                && level.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !name_ok {
                return Err(LevelError::Name {
                    index,
                    name: level.name.clone(),
                });
            }
            if levels[..index].iter().any(|l| l.name == level.name) {
                return Err(LevelError::DuplicateName {
                    index,
                    name: level.name.clone(),
                });
            }
            if level.depth == 0 || level.depth > grid_depth {
                return Err(LevelError::Depth {
                    index,
                    name: level.name.clone(),
                    depth: level.depth,
                    grid_depth,
                });
            }
            if let Some(previous) = index.checked_sub(1).map(|i| levels[i].depth) {
                if level.depth >= previous {
                    return Err(LevelError::Order {
                        index,
                        name: level.name.clone(),
                        depth: level.depth,
                        previous,
                    });
                }
            }
            // A finer level under OPE would give away what a coarser ORE level protects.
            let finer_ope = levels[..index].iter().find(|l| l.scheme == Scheme::Ope);
            if let (Scheme::Ore, Some(finer)) = (level.scheme, finer_ope) {
                return Err(LevelError::OpeBelowOre {
                    index,
                    name: level.name.clone(),
                    finer: finer.name.clone(),
                });
            }
        }
        Ok(Self { grid_depth, levels })
    }

    /// Depth of the quantisation grid.
    pub fn grid_depth(&self) -> u8 {
        self.grid_depth
    }

    /// The levels, finest first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Always false: a validated set has at least one level.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The level at `index`.
    pub fn get(&self, index: LevelIndex) -> Option<&Level> {
        self.levels.get(usize::from(index.0))
    }

    /// The level called `name` and its index.
    pub fn by_name(&self, name: &str) -> Option<(LevelIndex, &Level)> {
        let index = self.index_of(name)?;
        Some((index, &self.levels[usize::from(index.0)]))
    }

    /// How many of the finest levels use ORE (they come first: [`LevelSet::new`] refuses an OPE
    /// level finer than an ORE one).
    pub fn ore_levels(&self) -> usize {
        self.levels
            .iter()
            .take_while(|l| l.scheme == Scheme::Ore)
            .count()
    }

    /// The index of the level called `name`.
    pub fn index_of(&self, name: &str) -> Option<LevelIndex> {
        self.levels
            .iter()
            .position(|l| l.name == name)
            .map(|i| LevelIndex(i as u8))
    }
}

impl Default for LevelSet {
    fn default() -> Self {
        Self::default_levels()
    }
}
