//! WGS84 longitude/latitude ↔ Hilbert cells at any depth.
//!
//! Quantisation is exact: the floor of `(lon + 180) · 2^D / 360` is computed in integer
//! arithmetic from the `f64`'s exact binary value, so a point always lies inside (or on the
//! edge of) the rectangle of its own cell, whose corners are themselves exact in `f64`.

use geo::{Rect, coord};

use crate::error::GridError;
use crate::hilbert;

/// Largest grid depth: `2·26 = 52` index bits, the OPE's largest plaintext domain.
pub const MAX_DEPTH: u8 = 26;
/// Default grid depth: cells of about 1.2 m × 0.6 m at the equator.
pub const DEFAULT_DEPTH: u8 = 25;

/// A cell of the Hilbert grid: its depth and its index along the curve at that depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellIndex {
    depth: u8,
    index: u64,
}

impl CellIndex {
    /// The cell of index `index` at `depth`, if it exists.
    pub fn new(depth: u8, index: u64) -> Result<Self, GridError> {
        check_depth(depth)?;
        if index >> (2 * u32::from(depth)) != 0 {
            return Err(GridError::Index { index, depth });
        }
        Ok(Self { depth, index })
    }

    /// The cell at `depth` (`≤ MAX_DEPTH`) holding the point `(lon, lat)`, in degrees.
    pub fn from_lon_lat(lon: f64, lat: f64, depth: u8) -> Result<Self, GridError> {
        check_depth(depth)?;
        let x = quantise(lon, 180.0, depth, "longitude")?;
        let y = quantise(lat, 90.0, depth, "latitude")?;
        Ok(Self {
            depth,
            index: hilbert::index_of(depth, x, y),
        })
    }

    /// Depth of the cell.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Index along the curve at the cell's depth (`2·depth` bits).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The ancestor of this cell at the coarser (or equal) `depth`.
    pub fn at_depth(&self, depth: u8) -> Result<Self, GridError> {
        if depth > self.depth {
            return Err(GridError::Depth {
                depth,
                max: self.depth,
            });
        }
        Ok(Self {
            depth,
            index: self.index >> (2 * u32::from(self.depth - depth)),
        })
    }

    /// The first and last index, at the finer `depth`, of the cells inside this one.
    pub fn range_at(&self, depth: u8) -> Result<(u64, u64), GridError> {
        if depth < self.depth || depth > MAX_DEPTH {
            return Err(GridError::Depth {
                depth,
                max: MAX_DEPTH,
            });
        }
        let shift = 2 * u32::from(depth - self.depth);
        let first = self.index << shift;
        Ok((first, first + ((1u64 << shift) - 1)))
    }

    /// The cell's rectangle in degrees (x = longitude, y = latitude), corners exact.
    pub fn rect(&self) -> Rect<f64> {
        let (x, y) = hilbert::cell_of(self.depth, self.index);
        let scale = 1.0 / (1u64 << self.depth) as f64;
        let lon = |v: u64| v as f64 * 360.0 * scale - 180.0;
        let lat = |v: u64| v as f64 * 180.0 * scale - 90.0;
        Rect::new(
            coord! { x: lon(x), y: lat(y) },
            coord! { x: lon(x + 1), y: lat(y + 1) },
        )
    }

    /// The cell's column and row on its `2^depth` grid.
    pub fn grid_xy(&self) -> (u64, u64) {
        hilbert::cell_of(self.depth, self.index)
    }
}

pub(crate) fn check_depth(depth: u8) -> Result<(), GridError> {
    if depth > MAX_DEPTH {
        return Err(GridError::Depth {
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(())
}

/// Checks that `(lon, lat)` is a finite point of the WGS84 ranges.
pub(crate) fn check_point(lon: f64, lat: f64) -> Result<(), GridError> {
    quantise(lon, 180.0, 0, "longitude")?;
    quantise(lat, 90.0, 0, "latitude")?;
    Ok(())
}

/// `⌊(v + half) · 2^depth / (2·half)⌋`, clamped so that `v = +half` falls in the last cell.
fn quantise(v: f64, half: f64, depth: u8, axis: &'static str) -> Result<u64, GridError> {
    if !v.is_finite() {
        return Err(GridError::NotFinite { axis });
    }
    if v.abs() > half {
        return Err(if half == 90.0 {
            GridError::Latitude(v)
        } else {
            GridError::Longitude(v)
        });
    }
    let cells = 1u64 << depth;
    // v = mantissa · 2^exponent exactly; below 2^-80 in magnitude v is far inside the two
    // cells either side of 0 (cells are wider than 2^-20 degrees).
    let (mantissa, exponent) = decompose(v);
    let half_cells = cells / 2;
    if exponent < -80 - 52 || mantissa == 0 {
        return Ok(if v < 0.0 && mantissa != 0 {
            half_cells.saturating_sub(1)
        } else {
            half_cells
        });
    }
    const FRACTION_BITS: i32 = 80;
    let shift = exponent + FRACTION_BITS;
    let scaled: i128 = if shift >= 0 {
        i128::from(mantissa) << shift
    } else {
        // Rounding toward −∞ keeps the floor exact: the dropped bits are below 2^-80.
        i128::from(mantissa) >> -shift
    };
    let half_fixed = (half as i128) << FRACTION_BITS;
    let numerator = (scaled + half_fixed) * i128::from(cells);
    let cell = numerator.div_euclid(2 * half_fixed);
    Ok((cell as u64).min(cells - 1))
}

/// `v = mantissa · 2^exponent` with an integer mantissa, exactly.
fn decompose(v: f64) -> (i64, i32) {
    let bits = v.to_bits();
    let sign: i64 = if bits >> 63 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = (bits & ((1u64 << 52) - 1)) as i64;
    if exponent == 0 {
        (sign * fraction, -1074)
    } else {
        (sign * (fraction | (1i64 << 52)), exponent - 1075)
    }
}
