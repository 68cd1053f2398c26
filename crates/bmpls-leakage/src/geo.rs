//! Points, distances in metres, and the centres of grid cells: the units every score is in.

use bmpls_grid::{CellIndex, GridError};

/// Mean Earth radius, metres (the grid's own constant).
const EARTH_RADIUS_M: f64 = bmpls_grid::EARTH_RADIUS_M;

/// A WGS84 point, degrees. No `Debug`: even simulated positions stay out of logs by habit.
#[derive(Clone, Copy, PartialEq)]
pub struct LatLon {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

impl LatLon {
    /// The point at `lat`, `lon`.
    pub const fn new(lat: f64, lon: f64) -> Self {
        Self { lat, lon }
    }

    /// The point `north_m` metres north and `east_m` east of this one (locally flat: the
    /// offsets are at most kilometres).
    pub fn offset_m(self, north_m: f64, east_m: f64) -> Self {
        let dlat = (north_m / EARTH_RADIUS_M).to_degrees();
        let dlon = (east_m / (EARTH_RADIUS_M * self.lat.to_radians().cos())).to_degrees();
        Self::new(self.lat + dlat, self.lon + dlon)
    }

    /// The centre of `cell`.
    pub fn centre_of(cell: CellIndex) -> Self {
        let rect = cell.rect();
        let c = rect.center();
        Self::new(c.y, c.x)
    }

    /// The cell of this point at `depth`.
    pub fn cell(self, depth: u8) -> Result<CellIndex, GridError> {
        CellIndex::from_lon_lat(self.lon, self.lat, depth)
    }
}

/// Distance between two points, metres (equirectangular: exact enough within a city, and
/// within a few per cent at the hundreds of kilometres of a region).
pub fn metres(a: LatLon, b: LatLon) -> f64 {
    let lat = ((a.lat + b.lat) / 2.0).to_radians();
    let dy = (b.lat - a.lat).to_radians() * EARTH_RADIUS_M;
    let dx = (b.lon - a.lon).to_radians() * EARTH_RADIUS_M * lat.cos();
    (dx * dx + dy * dy).sqrt()
}

/// The centre of the cell of index `index` (rounded and clamped into the grid) at `depth`:
/// where an attack that estimated a fractional index places the fix.
pub fn centre_of_index(depth: u8, index: f64) -> LatLon {
    let max = (1u64 << (2 * u32::from(depth))) - 1;
    let index = if index.is_finite() {
        index.round().clamp(0.0, max as f64) as u64
    } else {
        0
    };
    match CellIndex::new(depth, index.min(max)) {
        Ok(cell) => LatLon::centre_of(cell),
        Err(_) => LatLon::new(0.0, 0.0),
    }
}
