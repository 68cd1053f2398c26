//! The grid through its public API: cells and the curve, named levels, and coverings. One test
//! binary with a module per idea, and the helpers they share.

mod cells;
mod cover;
mod levels;

use std::collections::BTreeSet;

use bmpls_grid::{CellIndex, IndexRange};
use geo::Rect;

/// The cell of a point known to be valid.
fn cell(lon: f64, lat: f64, depth: u8) -> CellIndex {
    CellIndex::from_lon_lat(lon, lat, depth).expect("valid point")
}

/// Whether the closed rectangle holds the point.
fn contains(rect: &Rect<f64>, lon: f64, lat: f64) -> bool {
    rect.min().x <= lon && lon <= rect.max().x && rect.min().y <= lat && lat <= rect.max().y
}

/// Every index the ranges hold.
fn expand(ranges: &[IndexRange]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|&(a, b)| a..=b).collect()
}

/// Every cell at `depth` whose rectangle satisfies `touches`, by testing each one.
fn brute(depth: u8, touches: impl Fn(&Rect<f64>) -> bool) -> BTreeSet<u64> {
    (0..1u64 << (2 * depth))
        .filter(|&i| touches(&CellIndex::new(depth, i).expect("exists").rect()))
        .collect()
}

/// Ranges are non-empty, sorted, and separated by a gap (adjacent ones are merged).
fn check_sorted_merged(ranges: &[IndexRange]) {
    for r in ranges {
        assert!(r.0 <= r.1, "empty range {r:?}");
    }
    for w in ranges.windows(2) {
        assert!(w[0].1 + 1 < w[1].0, "ranges not sorted and merged: {w:?}");
    }
}
