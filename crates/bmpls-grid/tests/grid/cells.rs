//! Cells: quantisation at the edges of the world, the curve's adjacency and bijection, nesting
//! of levels, and bad input.

use std::collections::BTreeSet;

use bmpls_grid::{CellIndex, DEFAULT_DEPTH, GridError, MAX_DEPTH, encode};
use proptest::prelude::*;

use crate::{cell, contains};

#[test]
fn poles_antimeridian_and_equator() {
    let d = 10;
    let last = (1u64 << d) - 1;
    let mid = 1u64 << (d - 1);
    let check = |lon: f64, lat: f64, xy: (u64, u64)| {
        assert_eq!(cell(lon, lat, d).grid_xy(), xy, "({lon}, {lat})");
    };
    // The corners of the world; +180 and +90 are clamped into the last column and row.
    check(-180.0, -90.0, (0, 0));
    check(180.0, 90.0, (last, last));
    check(180.0, -90.0, (last, 0));
    check(-180.0, 90.0, (0, last));
    // The equator and the prime meridian start the upper and right halves.
    check(0.0, 0.0, (mid, mid));
    check(-0.0, -0.0, (mid, mid));
    check(-1e-300, -1e-300, (mid - 1, mid - 1));
    check(f64::MIN_POSITIVE, 5e-324, (mid, mid));
    check(45.0, -f64::EPSILON, (mid + mid / 4, mid - 1));
    // A point on a cell edge belongs to the cell starting there.
    let edge = 360.0 / 1024.0 * 3.0 - 180.0;
    check(edge, 0.0, (3, mid));
    check(edge - 1e-12, 0.0, (2, mid));
    // Both sides of the antimeridian are the two ends of the grid's columns.
    check(179.99999, 10.0, (last, cell(0.0, 10.0, d).grid_xy().1));
    check(-179.99999, 10.0, (0, cell(0.0, 10.0, d).grid_xy().1));
    // The pole rows at the finest depth: the rectangle still holds the pole.
    for lat in [90.0, -90.0] {
        let c = cell(12.0, lat, MAX_DEPTH);
        assert!(contains(&c.rect(), 12.0, lat), "{lat}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let check = |lon: f64, lat: f64, depth: u8, expected: GridError| {
        assert_eq!(CellIndex::from_lon_lat(lon, lat, depth), Err(expected));
    };
    let not_finite = |axis| GridError::NotFinite { axis };
    check(f64::NAN, 0.0, 10, not_finite("longitude"));
    check(0.0, f64::NAN, 10, not_finite("latitude"));
    check(f64::NEG_INFINITY, 0.0, 10, not_finite("longitude"));
    check(0.0, f64::INFINITY, 10, not_finite("latitude"));
    check(0.0, 90.000_001, 10, GridError::Latitude(90.000_001));
    check(0.0, -90.5, 10, GridError::Latitude(-90.5));
    check(-180.1, 0.0, 10, GridError::Longitude(-180.1));
    check(f64::MAX, 0.0, 10, GridError::Longitude(f64::MAX));
    let too_deep = GridError::Depth {
        depth: 27,
        max: MAX_DEPTH,
    };
    check(0.0, 0.0, 27, too_deep.clone());
    assert_eq!(CellIndex::new(27, 0), Err(too_deep));
    assert_eq!(
        CellIndex::new(3, 64),
        Err(GridError::Index {
            index: 64,
            depth: 3
        })
    );
    assert_eq!(
        cell(1.0, 1.0, 10).at_depth(11),
        Err(GridError::Depth { depth: 11, max: 10 })
    );
    assert!(cell(1.0, 1.0, 10).range_at(9).is_err());
    assert!(cell(1.0, 1.0, 10).range_at(27).is_err());
    assert_eq!(encode(f64::NAN, 0.0), Err(not_finite("longitude")));
}

#[test]
fn encode_is_the_default_depth() {
    let c = encode(-1.5491, 53.8008).expect("valid");
    assert_eq!(c.depth(), DEFAULT_DEPTH);
    assert_eq!(c, cell(-1.5491, 53.8008, DEFAULT_DEPTH));
    assert!(contains(&c.rect(), -1.5491, 53.8008));
    // About 1.2 m × 0.6 m at the equator: 360° / 2^25 and 180° / 2^25.
    assert_eq!(c.rect().width(), 360.0 / (1u64 << 25) as f64);
    assert_eq!(c.rect().height(), 180.0 / (1u64 << 25) as f64);
}

#[test]
fn the_curve_is_a_bijection_of_adjacent_cells() {
    for depth in 0..=6u8 {
        let mut seen = BTreeSet::new();
        let mut previous: Option<(u64, u64)> = None;
        for i in 0..1u64 << (2 * depth) {
            let c = CellIndex::new(depth, i).expect("exists");
            let (x, y) = c.grid_xy();
            assert!(x < 1 << depth && y < 1 << depth);
            assert!(seen.insert((x, y)), "depth {depth}: ({x}, {y}) twice");
            // Decoding then encoding the centre gives the cell back.
            let centre = c.rect().center();
            assert_eq!(cell(centre.x, centre.y, depth), c);
            if let Some((px, py)) = previous {
                assert_eq!(px.abs_diff(x) + py.abs_diff(y), 1, "depth {depth}, {i}");
            }
            previous = Some((x, y));
        }
        assert_eq!(seen.len(), 1 << (2 * depth));
    }
}

#[test]
fn a_cell_is_exactly_the_union_of_its_children() {
    let check = |depth: u8, index: u64| {
        let parent = CellIndex::new(depth, index).expect("exists");
        let p = parent.rect();
        let (mid_x, mid_y) = (p.center().x, p.center().y);
        // The four children are the four quadrants of the parent, exactly.
        let mut quadrants: Vec<_> = (0..4)
            .map(|k| {
                let child = CellIndex::new(depth + 1, index * 4 + k).expect("exists");
                assert_eq!(child.at_depth(depth), Ok(parent));
                let r = child.rect();
                (r.min().x, r.min().y, r.max().x, r.max().y)
            })
            .collect();
        quadrants.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        let (w, s, e, n) = (p.min().x, p.min().y, p.max().x, p.max().y);
        let expected = [
            (w, s, mid_x, mid_y),
            (w, mid_y, mid_x, n),
            (mid_x, s, e, mid_y),
            (mid_x, mid_y, e, n),
        ];
        assert_eq!(quadrants, expected, "depth {depth}, index {index}");
        // At any finer depth the parent is one contiguous range of indices, and every index
        // of the range has the parent as ancestor.
        for finer in depth..=MAX_DEPTH.min(depth + 4) {
            let (first, last) = parent.range_at(finer).expect("finer");
            assert_eq!(last - first + 1, 1 << (2 * (finer - depth)));
            for i in [first, first + (last - first) / 3, last] {
                let c = CellIndex::new(finer, i).expect("exists");
                assert_eq!(c.at_depth(depth), Ok(parent));
            }
            let outside = [first.checked_sub(1), last.checked_add(1)];
            for i in outside.into_iter().flatten() {
                if let Ok(c) = CellIndex::new(finer, i) {
                    assert_ne!(c.at_depth(depth), Ok(parent));
                }
            }
        }
    };
    check(0, 0);
    check(1, 2);
    check(5, 777);
    check(12, 12_345_678);
    check(25, 1 << 49);
    check(25, (1 << 50) - 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn a_point_lies_in_its_cell_at_every_depth(
        lon in -180.0f64..=180.0, lat in -90.0f64..=90.0, depth in 0u8..=MAX_DEPTH
    ) {
        let c = cell(lon, lat, depth);
        prop_assert!(contains(&c.rect(), lon, lat), "{:?} misses ({}, {})", c.rect(), lon, lat);
        // Nesting: coarsening the fine cell gives the cell of the point at the coarse depth.
        let fine = cell(lon, lat, MAX_DEPTH);
        prop_assert_eq!(fine.at_depth(depth).expect("coarser"), c);
        let (first, last) = c.range_at(MAX_DEPTH).expect("finer");
        prop_assert!(first <= fine.index() && fine.index() <= last);
        // Round trip through the index.
        prop_assert_eq!(CellIndex::new(depth, c.index()), Ok(c));
    }
}
