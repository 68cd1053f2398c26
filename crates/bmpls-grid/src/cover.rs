//! Coverings: the cells of one depth that a rectangle, circle or polygon touches, as sorted,
//! merged ranges of Hilbert indices.
//!
//! The covering descends the Hilbert quadtree level by level from the whole world: a node
//! disjoint from the shape is skipped, a node inside it is emitted as its whole index range,
//! and a node on the boundary is split until the target depth, where it is emitted if it
//! touches the shape at all (edges and corners count). Two limits keep work and output bounded
//! without ever dropping a cell: when splitting would put more than [`MAX_FRONTIER_NODES`]
//! nodes on one level, the boundary nodes of the current level are emitted whole (so the whole
//! edge of a huge shape is coarsened evenly), and the result is coarsened to at most
//! `max_ranges` ranges by filling the smallest gaps.
//!
//! Longitude/latitude boxes crossing the antimeridian are supported ([`cover_lon_lat_box`] with
//! `west > east`); a `geo::Rect` orders its corners and so cannot express one, and polygons
//! are taken with straight edges in longitude/latitude, never across the antimeridian.

use geo::algorithm::Validation;
use geo::{Area, BoundingRect, Intersects, Polygon, Rect, coord};

use crate::cell::{CellIndex, check_depth, check_point};
use crate::circle::Circle;
use crate::error::GridError;

/// Most quadtree nodes examined on one level of the descent; past it the boundary is emitted
/// at the current level's size (a superset, never a miss). Work is at most
/// `MAX_FRONTIER_NODES · (depth + 1)` shape tests.
pub const MAX_FRONTIER_NODES: usize = 1 << 16;

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
    let bbox = polygon
        .bounding_rect()
        .ok_or_else(|| GridError::Polygon("no points".into()))?;
    cover(&PolygonShape { polygon, bbox }, depth, max_ranges)
}

fn cover(shape: &dyn Shape, depth: u8, max_ranges: usize) -> Result<Vec<IndexRange>, GridError> {
    check_depth(depth)?;
    if max_ranges == 0 {
        return Err(GridError::NoRanges);
    }
    // Whole nodes at various levels: disjoint quadtree nodes, so disjoint ranges.
    let mut whole: Vec<IndexRange> = Vec::new();
    let mut frontier = vec![CellIndex::new(0, 0)?];
    loop {
        let mut boundary = Vec::new();
        for node in frontier {
            match shape.relation(&node.rect()) {
                Relation::Disjoint => {}
                Relation::Inside => whole.push(node.range_at(depth)?),
                Relation::Boundary => boundary.push(node),
            }
        }
        let level = boundary.first().map_or(depth, CellIndex::depth);
        if level == depth || boundary.len() > MAX_FRONTIER_NODES / 4 {
            for node in &boundary {
                whole.push(node.range_at(depth)?);
            }
            break;
        }
        frontier = Vec::with_capacity(4 * boundary.len());
        for node in boundary {
            for child in 0..4 {
                frontier.push(CellIndex::new(level + 1, node.index() * 4 + child)?);
            }
        }
    }
    whole.sort_unstable();
    let mut ranges: Vec<IndexRange> = Vec::with_capacity(whole.len());
    for (first, last) in whole {
        match ranges.last_mut() {
            Some(previous) if previous.1.checked_add(1) == Some(first) => previous.1 = last,
            _ => ranges.push((first, last)),
        }
    }
    Ok(coarsen(ranges, max_ranges))
}

/// The cells that make up `run` (an index range at `depth`), each as large as it can be: a
/// Hilbert run is a sequence of aligned quadtree nodes (a node of depth `depth - k` is the
/// `4^k` indices from a multiple of `4^k`), so a covering's run of many cells is drawn with few
/// rectangles. `None` past `max_cells` cells, or for a run outside the depth's indices.
pub fn run_cells(depth: u8, run: IndexRange, max_cells: usize) -> Option<Vec<CellIndex>> {
    let (mut first, last) = run;
    let end = 1u64.checked_shl(2 * u32::from(depth))?;
    if first > last || last >= end {
        return None;
    }
    let mut cells = Vec::new();
    loop {
        // The largest aligned node that starts at `first` and ends at or before `last`.
        let mut k = 0u8;
        while k < depth {
            let size = 1u64 << (2 * (u32::from(k) + 1));
            if first % size != 0 || first + (size - 1) > last {
                break;
            }
            k += 1;
        }
        if cells.len() == max_cells {
            return None;
        }
        cells.push(CellIndex::new(depth - k, first >> (2 * u32::from(k))).ok()?);
        let next = first + ((1u64 << (2 * u32::from(k))) - 1);
        if next >= last {
            return Some(cells);
        }
        first = next + 1;
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

/// A polygon and the bounding box of its edges.
struct PolygonShape<'a> {
    polygon: &'a Polygon<f64>,
    bbox: Rect<f64>,
}

impl Shape for PolygonShape<'_> {
    /// Exact with geo's robust predicates: if no edge of the polygon meets the closed cell, the
    /// cell lies wholly in the interior or wholly outside (a polygon inside the cell would have
    /// its edges in it), and one corner tells which. This avoids geo's general polygon–polygon
    /// intersection and its DE-9IM containment, ten times slower on every node.
    fn relation(&self, cell: &Rect<f64>) -> Relation {
        if !self.bbox.intersects(cell) {
            return Relation::Disjoint;
        }
        let mut rings = std::iter::once(self.polygon.exterior()).chain(self.polygon.interiors());
        if rings.any(|ring| ring.lines().any(|edge| edge.intersects(cell))) {
            Relation::Boundary
        } else if self.polygon.intersects(&cell.min()) {
            Relation::Inside
        } else {
            Relation::Disjoint
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
