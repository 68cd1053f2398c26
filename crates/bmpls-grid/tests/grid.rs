//! The grid through its public API: cells, nesting, the curve, levels and coverings.

use std::collections::BTreeSet;

use bmpls_grid::cover::coarsen;
use bmpls_grid::{
    CellIndex, GridError, IndexRange, LevelError, LevelSet, MAX_DEPTH, cover_circle,
    cover_lon_lat_box, cover_polygon, cover_rect,
};
use geo::{ConvexHull, Intersects, MultiPoint, Point, Polygon, Rect, coord, polygon};
use proptest::prelude::*;

fn cell(lon: f64, lat: f64, depth: u8) -> CellIndex {
    CellIndex::from_lon_lat(lon, lat, depth).expect("valid point")
}

fn contains(rect: &Rect<f64>, lon: f64, lat: f64) -> bool {
    rect.min().x <= lon && lon <= rect.max().x && rect.min().y <= lat && lat <= rect.max().y
}

fn expand(ranges: &[IndexRange]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|&(a, b)| a..=b).collect()
}

/// Every cell at `depth` whose rectangle satisfies `touches`.
fn brute(depth: u8, touches: impl Fn(&Rect<f64>) -> bool) -> BTreeSet<u64> {
    (0..1u64 << (2 * depth))
        .filter(|&i| touches(&CellIndex::new(depth, i).expect("exists").rect()))
        .collect()
}

fn check_sorted_merged(ranges: &[IndexRange]) {
    for r in ranges {
        assert!(r.0 <= r.1);
    }
    for w in ranges.windows(2) {
        assert!(w[0].1 + 1 < w[1].0, "ranges not sorted and merged: {w:?}");
    }
}

#[test]
fn poles_antimeridian_and_equator() {
    let d = 10;
    let last = (1u64 << d) - 1;
    let check = |lon: f64, lat: f64, xy: (u64, u64)| {
        assert_eq!(cell(lon, lat, d).grid_xy(), xy, "({lon}, {lat})");
    };
    check(-180.0, -90.0, (0, 0));
    check(180.0, 90.0, (last, last));
    check(180.0, -90.0, (last, 0));
    check(-180.0, 90.0, (0, last));
    check(0.0, 0.0, (1 << (d - 1), 1 << (d - 1)));
    check(-1e-300, -1e-300, ((1 << (d - 1)) - 1, (1 << (d - 1)) - 1));
    check(f64::MIN_POSITIVE, 5e-324, (1 << (d - 1), 1 << (d - 1)));
    // A point on a cell edge belongs to the cell starting there.
    let edge = 360.0 / 1024.0 * 3.0 - 180.0;
    check(edge, 0.0, (3, 1 << (d - 1)));
    // Both sides of the antimeridian are the two ends of the grid's columns.
    assert_eq!(cell(179.99999, 10.0, d).grid_xy().0, last);
    assert_eq!(cell(-179.99999, 10.0, d).grid_xy().0, 0);
}

#[test]
fn bad_input_is_a_typed_error() {
    let check = |lon: f64, lat: f64, depth: u8, expected: GridError| {
        assert_eq!(CellIndex::from_lon_lat(lon, lat, depth), Err(expected));
    };
    check(
        f64::NAN,
        0.0,
        10,
        GridError::NotFinite { axis: "longitude" },
    );
    check(
        0.0,
        f64::INFINITY,
        10,
        GridError::NotFinite { axis: "latitude" },
    );
    check(0.0, 90.000_001, 10, GridError::Latitude(90.000_001));
    check(-180.1, 0.0, 10, GridError::Longitude(-180.1));
    check(
        0.0,
        0.0,
        27,
        GridError::Depth {
            depth: 27,
            max: MAX_DEPTH,
        },
    );
    assert!(CellIndex::new(3, 64).is_err());
    assert!(cell(1.0, 1.0, 10).at_depth(11).is_err());
    assert!(cover_circle(0.0, 0.0, -1.0, 5, 10).is_err());
    assert!(cover_circle(0.0, 0.0, f64::NAN, 5, 10).is_err());
    assert!(cover_lon_lat_box(0.0, 0.0, 1.0, 1.0, 5, 0).is_err());
    let bowtie = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
    assert!(matches!(
        cover_polygon(&bowtie, 5, 10),
        Err(GridError::Polygon(_))
    ));
    let empty: Polygon<f64> = Polygon::new(geo::LineString::new(vec![]), vec![]);
    assert!(matches!(
        cover_polygon(&empty, 5, 10),
        Err(GridError::Polygon(_))
    ));
    let off_world = polygon![(x: 0.0, y: 0.0), (x: 200.0, y: 1.0), (x: 1.0, y: 0.0)];
    assert!(cover_polygon(&off_world, 5, 10).is_err());
}

#[test]
fn the_curve_is_a_bijection_of_adjacent_cells() {
    for depth in 1..=6u8 {
        let mut seen = BTreeSet::new();
        let mut previous: Option<(u64, u64)> = None;
        for i in 0..1u64 << (2 * depth) {
            let c = CellIndex::new(depth, i).expect("exists");
            let (x, y) = c.grid_xy();
            assert!(seen.insert((x, y)));
            let rect = c.rect();
            let centre = rect.center();
            assert_eq!(cell(centre.x, centre.y, depth), c);
            if let Some((px, py)) = previous {
                assert_eq!(
                    px.abs_diff(x) + py.abs_diff(y),
                    1,
                    "depth {depth}, index {i}"
                );
            }
            previous = Some((x, y));
        }
    }
}

#[test]
fn a_cell_is_exactly_the_union_of_its_children() {
    for (depth, index) in [
        (0u8, 0u64),
        (1, 2),
        (5, 777),
        (12, 12_345_678),
        (25, 1 << 49),
    ] {
        let parent = CellIndex::new(depth, index).expect("exists");
        let pr = parent.rect();
        let mut area = 0.0;
        for k in 0..4 {
            let child = CellIndex::new(depth + 1, index * 4 + k).expect("exists");
            assert_eq!(child.at_depth(depth), Ok(parent));
            let cr = child.rect();
            assert!(contains(&pr, cr.min().x, cr.min().y) && contains(&pr, cr.max().x, cr.max().y));
            area += cr.width() * cr.height();
        }
        assert_eq!(area, pr.width() * pr.height());
        let finer = (depth + 3).min(MAX_DEPTH);
        let (first, last) = parent.range_at(finer).expect("finer");
        assert_eq!(last - first + 1, 1 << (2 * (finer - depth)));
        assert_eq!(first >> (2 * (finer - depth)), index);
    }
}

#[test]
fn the_levels_file_is_the_default() {
    let text = include_str!("../../../config/levels.toml");
    let parsed = LevelSet::from_toml(text).expect("config/levels.toml is valid");
    assert_eq!(parsed, LevelSet::default_levels());
    assert_eq!(parsed.index_of("neighbourhood").map(|i| i.0), Some(2));
}

#[test]
fn bad_level_files_name_the_problem() {
    let check = |text: &str, expected: LevelError| {
        assert_eq!(LevelSet::from_toml(text), Err(expected), "{text}");
    };
    let entry = |name: &str, depth: u8| format!("[[level]]\nname = \"{name}\"\ndepth = {depth}\n");
    check(
        &format!(
            "grid_depth = 25\n{}{}",
            entry("fine", 20),
            entry("coarse", 20)
        ),
        LevelError::Order {
            index: 1,
            name: "coarse".into(),
            depth: 20,
            previous: 20,
        },
    );
    check(
        &format!("grid_depth = 25\n{}", entry("fine", 26)),
        LevelError::Depth {
            index: 0,
            name: "fine".into(),
            depth: 26,
            grid_depth: 25,
        },
    );
    check(
        &format!("grid_depth = 25\n{}{}", entry("a", 20), entry("a", 10)),
        LevelError::DuplicateName {
            index: 1,
            name: "a".into(),
        },
    );
    check(
        &format!("grid_depth = 25\n{}", entry("Bad Name", 20)),
        LevelError::Name {
            index: 0,
            name: "Bad Name".into(),
        },
    );
    check("grid_depth = 27\nlevel = []", LevelError::GridDepth(27));
    check("grid_depth = 25\nlevel = []", LevelError::Count(0));
    assert!(matches!(
        LevelSet::from_toml("grid_depth = \"x\""),
        Err(LevelError::Parse(_))
    ));
    assert!(matches!(
        LevelSet::from_toml(&format!("grid_depth = 25\nextra = 1\n{}", entry("a", 3))),
        Err(LevelError::Parse(_))
    ));
}

#[test]
fn an_antimeridian_box_covers_both_edges() {
    let ranges = cover_lon_lat_box(170.0, -10.0, -170.0, 10.0, 6, 1000).expect("valid");
    let got = expand(&ranges);
    let expected = brute(6, |r| {
        let east = Rect::new(coord! { x: 170.0, y: -10.0 }, coord! { x: 180.0, y: 10.0 });
        let west = Rect::new(
            coord! { x: -180.0, y: -10.0 },
            coord! { x: -170.0, y: 10.0 },
        );
        r.intersects(&east) || r.intersects(&west)
    });
    assert_eq!(got, expected);
    assert!(
        got.contains(&cell(179.0, 0.0, 6).index()) && got.contains(&cell(-179.0, 0.0, 6).index())
    );
}

#[test]
fn a_circle_around_a_pole_takes_every_longitude() {
    let ranges = cover_circle(0.0, 89.5, 200_000.0, 6, 10_000).expect("valid");
    let got = expand(&ranges);
    for lon in [-179.0, -90.0, 0.0, 90.0, 179.0] {
        assert!(got.contains(&cell(lon, 89.9, 6).index()), "lon {lon}");
    }
    assert!(!got.contains(&cell(0.0, 80.0, 6).index()));
}

/// Points inside a circle, by destination along random bearings: their cells must be covered.
fn points_in_circle(lon: f64, lat: f64, radius_m: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (lat1, lon1) = (lat.to_radians(), lon.to_radians());
    (0..300)
        .map(|_| {
            let d = radius_m * next() / 6_371_008.8;
            let bearing = next() * std::f64::consts::TAU;
            let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos()).asin();
            let lon2 = lon1
                + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
            let lon2 = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
            (lon2, lat2.to_degrees().clamp(-90.0, 90.0))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_point_lies_in_its_cell_at_every_depth(lon in -180.0f64..=180.0, lat in -90.0f64..=90.0, depth in 0u8..=MAX_DEPTH) {
        let c = cell(lon, lat, depth);
        prop_assert!(contains(&c.rect(), lon, lat), "{:?} misses ({}, {})", c.rect(), lon, lat);
        // Nesting: coarsening the fine cell gives the cell of the point at the coarse depth.
        let fine = cell(lon, lat, MAX_DEPTH);
        prop_assert_eq!(fine.at_depth(depth).expect("coarser"), c);
        let (first, last) = c.range_at(MAX_DEPTH).expect("finer");
        prop_assert!(first <= fine.index() && fine.index() <= last);
    }

    #[test]
    fn rect_coverings_equal_brute_force(
        a in (-180.0f64..=180.0, -90.0f64..=90.0), b in (-180.0f64..=180.0, -90.0f64..=90.0), depth in 1u8..=6
    ) {
        let rect = Rect::new(coord! { x: a.0, y: a.1 }, coord! { x: b.0, y: b.1 });
        let ranges = cover_rect(&rect, depth, usize::MAX).expect("valid");
        check_sorted_merged(&ranges);
        prop_assert_eq!(expand(&ranges), brute(depth, |r| r.intersects(&rect)));
        let capped = cover_rect(&rect, depth, 3).expect("valid");
        prop_assert!(capped.len() <= 3);
        prop_assert!(expand(&capped).is_superset(&expand(&ranges)));
    }

    #[test]
    fn polygon_coverings_equal_brute_force(
        points in proptest::collection::vec((-60.0f64..60.0, -60.0f64..60.0), 3..9), depth in 1u8..=6
    ) {
        let hull: Polygon<f64> = MultiPoint::from(points.iter().map(|&(x, y)| Point::new(x, y)).collect::<Vec<_>>()).convex_hull();
        prop_assume!(hull.exterior().0.len() >= 4);
        let ranges = match cover_polygon(&hull, depth, usize::MAX) {
            Ok(r) => r,
            Err(GridError::Polygon(_)) => return Ok(()), // degenerate (collinear) hull
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        check_sorted_merged(&ranges);
        prop_assert_eq!(expand(&ranges), brute(depth, |r| r.intersects(&hull)));
    }

    #[test]
    fn circle_coverings_never_miss_a_point(
        lon in -180.0f64..=180.0, lat in -89.0f64..=89.0, radius in 100.0f64..2_000_000.0, depth in 1u8..=9, seed in any::<u64>()
    ) {
        let ranges = cover_circle(lon, lat, radius, depth, usize::MAX).expect("valid");
        check_sorted_merged(&ranges);
        let covered = expand(&ranges);
        for (plon, plat) in points_in_circle(lon, lat, radius, seed) {
            prop_assert!(covered.contains(&cell(plon, plat, depth).index()), "({}, {}) missed", plon, plat);
        }
        // Nothing far away: every covered cell comes within the radius plus its own size.
        for &index in &covered {
            let rect = CellIndex::new(depth, index).expect("exists").rect();
            let centre = rect.center();
            let reach = radius + haversine_m(centre.x, centre.y, rect.min().x, rect.min().y)
                .max(haversine_m(centre.x, centre.y, rect.max().x, rect.min().y))
                .max(haversine_m(centre.x, centre.y, rect.min().x, rect.max().y))
                + 1.0;
            prop_assert!(haversine_m(lon, lat, centre.x, centre.y) <= reach, "cell {} too far", index);
        }
        let capped = coarsen(ranges.clone(), 4);
        prop_assert!(expand(&capped).is_superset(&covered));
    }

    #[test]
    fn coarsening_keeps_every_index(ranges in proptest::collection::btree_set(0u64..10_000, 1..200), cap in 1usize..20) {
        let mut list: Vec<IndexRange> = Vec::new();
        for i in ranges {
            match list.last_mut() {
                Some(last) if last.1 + 1 == i => last.1 = i,
                _ => list.push((i, i)),
            }
        }
        let capped = coarsen(list.clone(), cap);
        prop_assert!(capped.len() <= cap.max(1));
        check_sorted_merged_or_touching(&capped);
        prop_assert!(expand(&capped).is_superset(&expand(&list)));
    }
}

fn check_sorted_merged_or_touching(ranges: &[IndexRange]) {
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0);
    }
}

fn haversine_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().min(1.0).asin()
}
