//! Coverings: equal to testing every cell at small depths (rectangles, polygons, circles),
//! capped coverings are supersets, and the poles, the antimeridian and the equator.

use bmpls_grid::cover::coarsen;
use bmpls_grid::{
    Circle, GridError, IndexRange, MAX_DEPTH, cover_cap, cover_circle, cover_lon_lat_box,
    cover_polygon, cover_rect,
};
use geo::{ConvexHull, Intersects, LineString, MultiPoint, Point, Polygon, Rect, coord, polygon};
use proptest::prelude::*;

use crate::{brute, cell, check_sorted_merged, expand};

fn rect(west: f64, south: f64, east: f64, north: f64) -> Rect<f64> {
    Rect::new(coord! { x: west, y: south }, coord! { x: east, y: north })
}

/// A covering equals the brute-force set of cells, and any cap gives a superset.
fn check_cover(
    cover: impl Fn(usize) -> Result<Vec<IndexRange>, GridError>,
    depth: u8,
    touches: impl Fn(&Rect<f64>) -> bool,
) {
    let ranges = cover(usize::MAX).expect("valid shape");
    check_sorted_merged(&ranges);
    let got = expand(&ranges);
    assert_eq!(got, brute(depth, touches));
    for cap in [1, 2, 5] {
        let capped = cover(cap).expect("valid shape");
        assert!(capped.len() <= cap);
        check_sorted_merged(&capped);
        assert!(expand(&capped).is_superset(&got));
    }
}

#[test]
fn boxes_at_the_edges_of_the_world() {
    let d = 5;
    let check = |r: Rect<f64>| check_cover(|cap| cover_rect(&r, d, cap), d, |c| c.intersects(&r));
    check(rect(-180.0, -90.0, 180.0, 90.0));
    check(rect(-10.0, -0.0, 10.0, 0.0)); // the equator alone: both rows either side touch it
    check(rect(179.0, -90.0, 180.0, -89.0));
    check(rect(0.0, 90.0, 0.0, 90.0)); // the north pole, on the prime meridian
    // A box touching the equator only at its edge takes the row above it too.
    let ranges = cover_rect(&rect(0.0, -10.0, 10.0, 0.0), d, usize::MAX).expect("valid");
    assert!(expand(&ranges).contains(&cell(5.0, 0.1, d).index()));
}

#[test]
fn an_antimeridian_box_covers_both_edges() {
    let d = 6;
    let (east, west) = (
        rect(170.0, -10.0, 180.0, 10.0),
        rect(-180.0, -10.0, -170.0, 10.0),
    );
    check_cover(
        |cap| cover_lon_lat_box(170.0, -10.0, -170.0, 10.0, d, cap),
        d,
        |r| r.intersects(&east) || r.intersects(&west),
    );
    let got = expand(&cover_lon_lat_box(170.0, -10.0, -170.0, 10.0, d, 100).expect("valid"));
    assert!(got.contains(&cell(179.0, 0.0, d).index()));
    assert!(got.contains(&cell(-179.0, 0.0, d).index()));
    assert!(!got.contains(&cell(0.0, 0.0, d).index()));
}

#[test]
fn circles_around_the_poles_and_across_the_antimeridian() {
    let d = 6;
    let check = |lon: f64, lat: f64, radius_m: f64| {
        let circle = Circle::new(lon, lat, radius_m).expect("valid");
        check_cover(|cap| cover_cap(&circle, d, cap), d, |r| circle.touches(r));
    };
    check(0.0, 89.5, 200_000.0);
    check(180.0, -90.0, 1_000_000.0);
    check(179.9, 0.0, 50_000.0);
    check(-180.0, 45.0, 300_000.0);
    check(0.0, 0.0, 0.0);
    let got = expand(&cover_circle(0.0, 89.5, 200_000.0, d, usize::MAX).expect("valid"));
    for lon in [-179.0, -90.0, 0.0, 90.0, 179.0] {
        assert!(got.contains(&cell(lon, 89.9, d).index()), "lon {lon}");
    }
    assert!(!got.contains(&cell(0.0, 80.0, d).index()));
    let got = expand(&cover_circle(179.9, 0.0, 50_000.0, d, usize::MAX).expect("valid"));
    assert!(got.contains(&cell(-179.9, 0.0, d).index()));
}

#[test]
fn huge_shapes_at_the_finest_depth_are_coarsened_not_cut() {
    // Millions of boundary cells at depth 26: the descent stops early and emits whole nodes.
    let circle = Circle::new(10.0, 45.0, 3_000_000.0).expect("valid");
    let ranges = cover_cap(&circle, MAX_DEPTH, usize::MAX).expect("valid");
    check_sorted_merged(&ranges);
    assert!(ranges.len() <= 4 * bmpls_grid::cover::MAX_FRONTIER_NODES);
    for (lon, lat) in points_in_circle(&circle, 7) {
        let index = cell(lon, lat, MAX_DEPTH).index();
        assert!(ranges.iter().any(|&(a, b)| a <= index && index <= b));
    }
    let polygon = polygon![(x: -60.0, y: -50.0), (x: 70.0, y: -40.0), (x: 0.0, y: 60.0)];
    let capped = cover_polygon(&polygon, MAX_DEPTH, 64).expect("valid");
    assert!(capped.len() <= 64);
    for (lon, lat) in [(-60.0, -50.0), (0.0, 60.0), (0.0, 0.0), (5.0, -44.0)] {
        let index = cell(lon, lat, MAX_DEPTH).index();
        assert!(
            capped.iter().any(|&(a, b)| a <= index && index <= b),
            "({lon}, {lat})"
        );
    }
}

#[test]
fn bad_shapes_are_typed_errors() {
    let check = |got: Result<Vec<IndexRange>, GridError>, expected: GridError| {
        assert_eq!(got, Err(expected));
    };
    check(cover_circle(0.0, 0.0, -1.0, 5, 10), GridError::Radius(-1.0));
    check(cover_circle(0.0, 0.0, 1e8, 5, 10), GridError::Radius(1e8));
    assert!(
        matches!(cover_circle(0.0, 0.0, f64::NAN, 5, 10), Err(GridError::Radius(r)) if r.is_nan())
    );
    check(
        cover_circle(0.0, 91.0, 1.0, 5, 10),
        GridError::Latitude(91.0),
    );
    check(
        cover_circle(0.0, 0.0, 1.0, 27, 10),
        GridError::Depth { depth: 27, max: 26 },
    );
    check(
        cover_lon_lat_box(0.0, 0.0, 1.0, 1.0, 5, 0),
        GridError::NoRanges,
    );
    check(
        cover_lon_lat_box(0.0, 0.0, 181.0, 1.0, 5, 9),
        GridError::Longitude(181.0),
    );
    check(
        cover_rect(&rect(0.0, 0.0, f64::NAN, 1.0), 5, 9),
        GridError::NotFinite { axis: "longitude" },
    );
    let bowtie = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
    let is_polygon_error =
        |p: &Polygon<f64>| matches!(cover_polygon(p, 5, 10), Err(GridError::Polygon(_)));
    assert!(is_polygon_error(&bowtie));
    assert!(is_polygon_error(&Polygon::new(
        LineString::new(vec![]),
        vec![]
    )));
    assert!(is_polygon_error(
        &polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)]
    ));
    let flat = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 2.0, y: 2.0)];
    assert!(is_polygon_error(&flat));
    let off_world = polygon![(x: 0.0, y: 0.0), (x: 200.0, y: 1.0), (x: 1.0, y: 0.0)];
    check(
        cover_polygon(&off_world, 5, 10),
        GridError::Longitude(200.0),
    );
}

/// Points inside a circle, by destination along random bearings: their cells must be covered.
fn points_in_circle(circle: &Circle, seed: u64) -> Vec<(f64, f64)> {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (lat1, lon1) = (circle.lat().to_radians(), circle.lon().to_radians());
    (0..200)
        .map(|_| {
            let d = circle.radius_m() * next() / bmpls_grid::EARTH_RADIUS_M;
            let bearing = next() * std::f64::consts::TAU;
            let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos()).asin();
            let lon2 = lon1
                + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
            let lon2 = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
            (lon2, lat2.to_degrees().clamp(-90.0, 90.0))
        })
        .collect()
}

fn lon_lat() -> impl Strategy<Value = (f64, f64)> {
    (-180.0f64..=180.0, -90.0f64..=90.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn rect_coverings_equal_brute_force(a in lon_lat(), b in lon_lat(), depth in 0u8..=6) {
        let r = rect(a.0, a.1, b.0, b.1);
        check_cover(|cap| cover_rect(&r, depth, cap), depth, |c| c.intersects(&r));
    }

    #[test]
    fn polygon_coverings_equal_brute_force(
        points in proptest::collection::vec((-170.0f64..170.0, -85.0f64..85.0), 3..9),
        scale in prop_oneof![Just(1.0), Just(0.1), Just(0.01)],
        depth in 1u8..=6,
    ) {
        let points: Vec<Point<f64>> = points.iter().map(|&(x, y)| Point::new(x * scale, y * scale)).collect();
        let hull: Polygon<f64> = MultiPoint::from(points).convex_hull();
        if hull.exterior().0.len() < 4 {
            prop_assert!(matches!(cover_polygon(&hull, depth, 9), Err(GridError::Polygon(_))));
            return Ok(());
        }
        check_cover(|cap| cover_polygon(&hull, depth, cap), depth, |r| r.intersects(&hull));
    }

    #[test]
    fn circle_coverings_equal_brute_force(
        centre in lon_lat(), radius_m in prop_oneof![0.0f64..1_000.0, 1_000.0f64..5_000_000.0], depth in 0u8..=6
    ) {
        let circle = Circle::new(centre.0, centre.1, radius_m).expect("valid");
        check_cover(|cap| cover_cap(&circle, depth, cap), depth, |r| circle.touches(r));
    }

    #[test]
    fn circle_coverings_hold_every_point_inside(
        centre in lon_lat(), radius_m in 1.0f64..2_000_000.0, depth in 1u8..=14, seed in any::<u64>()
    ) {
        let circle = Circle::new(centre.0, centre.1, radius_m).expect("valid");
        let covered = cover_cap(&circle, depth, 1_000).expect("valid");
        for (lon, lat) in points_in_circle(&circle, seed) {
            let index = cell(lon, lat, depth).index();
            prop_assert!(
                covered.iter().any(|&(a, b)| a <= index && index <= b),
                "({}, {}) at {} m missed", lon, lat, circle.distance_m(lon, lat)
            );
        }
    }

    #[test]
    fn coarsening_keeps_every_index(indices in proptest::collection::btree_set(0u64..10_000, 1..200), cap in 1usize..20) {
        let mut list: Vec<IndexRange> = Vec::new();
        for i in indices {
            match list.last_mut() {
                Some(last) if last.1 + 1 == i => last.1 = i,
                _ => list.push((i, i)),
            }
        }
        let capped = coarsen(list.clone(), cap);
        prop_assert!(capped.len() <= cap);
        prop_assert_eq!(capped.len(), list.len().min(cap));
        prop_assert!(expand(&capped).is_superset(&expand(&list)));
        // Only gaps are filled: the ends stay, and the filled gaps are the smallest ones.
        prop_assert_eq!(capped.first().map(|r| r.0), list.first().map(|r| r.0));
        prop_assert_eq!(capped.last().map(|r| r.1), list.last().map(|r| r.1));
        let gaps = |l: &[IndexRange]| -> Vec<u64> { l.windows(2).map(|w| w[1].0 - w[0].1).collect() };
        let (mut all, kept) = (gaps(&list), gaps(&capped));
        all.sort_unstable();
        let filled = list.len() - capped.len();
        prop_assert!(kept.iter().all(|g| all[..filled].last().is_none_or(|m| g >= m)));
    }
}

#[test]
fn a_run_is_drawn_with_its_largest_aligned_cells_and_covers_exactly_its_indices() {
    use bmpls_grid::run_cells;
    let check = |depth: u8, run: (u64, u64), expected: &[(u8, u64)]| {
        let cells = run_cells(depth, run, 64).expect("a run");
        let got: Vec<(u8, u64)> = cells.iter().map(|c| (c.depth(), c.index())).collect();
        assert_eq!(got, expected, "{run:?} at depth {depth}");
        // The cells, back at the run's depth, are exactly the run's indices in order.
        let mut next = run.0;
        for c in &cells {
            let (lo, hi) = c.range_at(depth).expect("coarser");
            assert_eq!(lo, next);
            next = hi + 1;
        }
        assert_eq!(next, run.1 + 1);
    };
    check(3, (5, 5), &[(3, 5)]);
    check(3, (0, 63), &[(0, 0)]);
    check(3, (16, 31), &[(1, 1)]);
    // 3, then 4..=15 as three depth-2 nodes, then 16..=31 as one depth-1 node, then 32.
    check(
        3,
        (3, 32),
        &[(3, 3), (2, 1), (2, 2), (2, 3), (1, 1), (3, 32)],
    );
    // Too many cells, a reversed run, and an index past the depth are refused.
    assert!(run_cells(3, (1, 14), 3).is_none());
    assert!(run_cells(3, (9, 2), 64).is_none());
    assert!(run_cells(3, (0, 64), 64).is_none());
}
