//! The multi-level location grid of bmpls: WGS84 longitude/latitude quantised to a
//! `2^D × 2^D` grid and ordered along a Hilbert curve, named precision levels, and coverings of
//! rectangles, circles and polygons as index ranges. Pure: no I/O, no clock.
//!
//! A level of depth `d ≤ D` is the index shifted right by `2(D − d)`: levels nest exactly, so a
//! level-`d` cell is one contiguous range of finer indices and answers at different levels
//! never disagree about "inside". These indices are what `bmpls-ope` encrypts; they never leave
//! the patient's or the carer's device in the clear.
//!
//! Entry points: [`encode`] (or [`CellIndex::from_lon_lat`] at any depth), [`CellIndex::at_depth`]
//! for coarser levels, [`CellIndex::rect`] for a cell's area, [`LevelSet`] for the named levels
//! (finest first) of `config/levels.toml`, and the coverings [`cover_rect`],
//! [`cover_lon_lat_box`] (which may cross the antimeridian), [`cover_circle`] / [`cover_cap`] and
//! [`cover_polygon`]. Depths are plain `u8` values checked against [`MAX_DEPTH`] by every call,
//! as the other crates of bmpls already pass them.
#![forbid(unsafe_code)]

mod cell;
mod circle;
pub mod cover;
mod error;
mod hilbert;
pub mod level;

pub use cell::{CellIndex, DEFAULT_DEPTH, MAX_DEPTH};
pub use circle::{Circle, EARTH_RADIUS_M, MAX_RADIUS_M, SLACK_RAD};
pub use cover::{
    IndexRange, cover_cap, cover_circle, cover_lon_lat_box, cover_polygon, cover_rect, run_cells,
};
pub use error::{GridError, LevelError};
pub use level::{Level, LevelIndex, LevelSet, ORE_FROM_DEPTH, Scheme};

/// The cell of `(lon, lat)` (WGS84 degrees) on the default grid of [`DEFAULT_DEPTH`]; take
/// coarser levels with [`CellIndex::at_depth`] and the cell's area with [`CellIndex::rect`].
/// `lon = 180` and `lat = 90` fall in the last column and row; NaN, infinities and values
/// outside ±180 / ±90 are errors.
pub fn encode(lon: f64, lat: f64) -> Result<CellIndex, GridError> {
    CellIndex::from_lon_lat(lon, lat, DEFAULT_DEPTH)
}
