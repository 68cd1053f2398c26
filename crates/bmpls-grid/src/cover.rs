//! Coverings: the cells of one depth that a rectangle, circle or polygon touches, as sorted,
//! merged ranges of Hilbert indices.
//!
//! The covering descends the quadtree in curve order from the whole world: a node disjoint
//! from the shape is skipped, a node inside it is emitted as its whole index range, and a node
//! on the boundary is split until the target depth, where it is emitted if it touches the
//! shape at all (edges and corners count). Two limits keep work and output bounded without
//! ever dropping a cell: past [`MAX_VISITED_NODES`] boundary nodes are emitted whole, and the
//! result is coarsened to at most `max_ranges` ranges by filling the smallest gaps.

use geo::algorithm::Validation;
use geo::{Area, Contains, Intersects, Polygon, Rect, coord};

use crate::cell::{CellIndex, check_depth, check_point};
use crate::circle::Circle;
use crate::error::GridError;

/// Boundary nodes examined before the rest are emitted whole (a superset, never a miss).
pub const MAX_VISITED_NODES: usize = 1 << 18;

/// An inclusive range `[first, last]` of Hilbert indices at one depth.
pub type IndexRange = (u64, u64);

/// How a quadtree node relates to a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    Disjoint,
    Inside,
    Boundary,
}

/// A shape the covering can test cells against.
trait Shape {
    fn relation(&self, cell: &Rect<f64>) -> Relation;
}

/// The cells at `depth` touching `rect` (x = longitude, y = latitude, degrees). A `geo::Rect`
/// orders its corners, so it cannot cross the antimeridian: use [`cover_lon_lat_box`] for that.
pub fn cover_rect(
    rect: &Rect<f64>,
    depth: u8,
    max_ranges: usize,
) -> Result<Vec<IndexRange>, GridError> {
    let (min, max) = (rect.min(), rect.max());
    for (lon, lat) in [(min.x, min.y), (max.x, max.y)] {
        check_point(lon, lat)?;
    }
    cover(&RectShape(*rect), depth, max_ranges)
}

/// The cells at `depth` touching the box from `west` to `east` longitude (crossing the
/// antimeridian when `west > east`) and `south` to `north` latitude.
pub fn cover_lon_lat_box(
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    depth: u8,
    max_ranges: usize,
) -> Result<Vec<IndexRange>, GridError> {
    check_point(west, south)?;
    check_point(east, north)?;
    let (south, north) = (south.min(north), south.max(north));
    if west <= east {
        let rect = Rect::new(coord! { x: west, y: south }, coord! { x: east, y: north });
        return cover(&RectShape(rect), depth, max_ranges);
    }
    let east_part = Rect::new(coord! { x: west, y: south }, coord! { x: 180.0, y: north });
    let west_part = Rect::new(coord! { x: -180.0, y: south }, coord! { x: east, y: north });
    cover(&TwoRects(east_part, west_part), depth, max_ranges)
}

/// The cells at `depth` within `radius_m` metres (great-circle distance on a sphere) of the
/// centre `(lon, lat)`: [`cover_cap`] of [`Circle::new`].
pub fn cover_circle(
    lon: f64,
    lat: f64,
    radius_m: f64,
    depth: u8,
    max_ranges: usize,
) -> Result<Vec<IndexRange>, GridError> {
    cover_cap(&Circle::new(lon, lat, radius_m)?, depth, max_ranges)
}

/// The cells at `depth` that `circle` touches ([`Circle::touches`]: edges count, with a few
/// millimetres of slack toward inclusion). No bounding box is needed: the descent from the
/// whole world measures the exact distance to each quadtree node, so circles around a pole or
/// across the antimeridian come out right.
pub fn cover_cap(
    circle: &Circle,
    depth: u8,
    max_ranges: usize,
) -> Result<Vec<IndexRange>, GridError> {
    cover(circle, depth, max_ranges)
}

/// The cells at `depth` touching `polygon`, whose edges are straight lines in longitude and
/// latitude (right for safe zones of a few kilometres; a polygon may not cross the
/// antimeridian). Empty, self-intersecting or out-of-range polygons are refused.
pub fn cover_polygon(
    polygon: &Polygon<f64>,
    depth: u8,
    max_ranges: usize,
) -> Result<Vec<IndexRange>, GridError> {
    if polygon.exterior().0.len() < 4 {
        return Err(GridError::Polygon(
            "fewer than three distinct points".into(),
        ));
    }
    for c in polygon
        .exterior()
        .coords()
        .chain(polygon.interiors().iter().flat_map(|r| r.coords()))
    {
        check_point(c.x, c.y)?;
    }
    polygon
        .check_validation()
        .map_err(|e| GridError::Polygon(e.to_string()))?;
    // geo's validation accepts a ring that folds back on itself along one line.
    if polygon.unsigned_area() == 0.0 {
        return Err(GridError::Polygon("zero area".into()));
    }
    cover(&PolygonShape(polygon), depth, max_ranges)
}

fn cover(shape: &dyn Shape, depth: u8, max_ranges: usize) -> Result<Vec<IndexRange>, GridError> {
    check_depth(depth)?;
    if max_ranges == 0 {
        return Err(GridError::NoRanges);
    }
    let mut ranges: Vec<IndexRange> = Vec::new();
    let mut visited = 0usize;
    // Depth-first in curve order, so ranges come out sorted.
    let mut stack = vec![CellIndex::new(0, 0)?];
    while let Some(node) = stack.pop() {
        let relation = shape.relation(&node.rect());
        if relation == Relation::Disjoint {
            continue;
        }
        visited += 1;
        let whole =
            relation == Relation::Inside || node.depth() == depth || visited > MAX_VISITED_NODES;
        if whole {
            push_merged(&mut ranges, node.range_at(depth)?);
            continue;
        }
        for child in (0..4).rev() {
            stack.push(CellIndex::new(node.depth() + 1, node.index() * 4 + child)?);
        }
    }
    Ok(coarsen(ranges, max_ranges))
}

fn push_merged(ranges: &mut Vec<IndexRange>, (first, last): IndexRange) {
    match ranges.last_mut() {
        Some(previous) if previous.1.checked_add(1) == Some(first) => previous.1 = last,
        _ => ranges.push((first, last)),
    }
}

/// Merges ranges across the smallest gaps until at most `max_ranges` remain.
pub fn coarsen(mut ranges: Vec<IndexRange>, max_ranges: usize) -> Vec<IndexRange> {
    if ranges.len() <= max_ranges {
        return ranges;
    }
    let mut gaps: Vec<(u64, usize)> = ranges
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0 - w[0].1, i))
        .collect();
    gaps.sort_unstable();
    let mut fill = vec![false; ranges.len()];
    for &(_, i) in gaps.iter().take(ranges.len() - max_ranges) {
        fill[i] = true;
    }
    let mut out: Vec<IndexRange> = Vec::with_capacity(max_ranges);
    let mut merge_next = false;
    for (i, range) in ranges.drain(..).enumerate() {
        match out.last_mut() {
            Some(previous) if merge_next => previous.1 = range.1,
            _ => out.push(range),
        }
        merge_next = fill[i];
    }
    out
}

struct RectShape(Rect<f64>);

impl Shape for RectShape {
    fn relation(&self, cell: &Rect<f64>) -> Relation {
        if !self.0.intersects(cell) {
            Relation::Disjoint
        } else if rect_contains(&self.0, cell) {
            Relation::Inside
        } else {
            Relation::Boundary
        }
    }
}

fn rect_contains(outer: &Rect<f64>, inner: &Rect<f64>) -> bool {
    outer.min().x <= inner.min().x
        && outer.min().y <= inner.min().y
        && inner.max().x <= outer.max().x
        && inner.max().y <= outer.max().y
}

struct TwoRects(Rect<f64>, Rect<f64>);

impl Shape for TwoRects {
    fn relation(&self, cell: &Rect<f64>) -> Relation {
        let (a, b) = (
            RectShape(self.0).relation(cell),
            RectShape(self.1).relation(cell),
        );
        match (a, b) {
            (Relation::Disjoint, Relation::Disjoint) => Relation::Disjoint,
            (Relation::Inside, _) | (_, Relation::Inside) => Relation::Inside,
            _ => Relation::Boundary,
        }
    }
}

struct PolygonShape<'a>(&'a Polygon<f64>);

impl Shape for PolygonShape<'_> {
    fn relation(&self, cell: &Rect<f64>) -> Relation {
        if !self.0.intersects(cell) {
            Relation::Disjoint
        } else if self.0.contains(cell) {
            Relation::Inside
        } else {
            Relation::Boundary
        }
    }
}

impl Shape for Circle {
    fn relation(&self, cell: &Rect<f64>) -> Relation {
        if !self.touches(cell) {
            Relation::Disjoint
        } else if self.contains_rect(cell) {
            Relation::Inside
        } else {
            Relation::Boundary
        }
    }
}
