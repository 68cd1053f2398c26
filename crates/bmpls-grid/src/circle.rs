//! Circles on the sphere ("within r metres of a point") and how they meet grid cells.
//!
//! Distances are great-circle distances on a sphere of [`EARTH_RADIUS_M`], computed with the
//! haversine formula, which stays accurate for the short distances of safe zones (the
//! `acos` of a dot product loses about 10 cm near zero). Cells are longitude/latitude boxes,
//! and the distance from the centre to a box is found exactly rather than through a bounding
//! box, so the poles and the antimeridian need no special case: the nearest meridian of the box
//! is the one of smallest wrapped longitude offset, and on it the distance is smallest at a
//! known latitude. Every test errs by [`SLACK_RAD`] toward "touches": a covering may hold a cell
//! a few millimetres too far, never miss one.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

use geo::Rect;

use crate::cell::check_point;
use crate::error::GridError;

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Largest circle radius, about a quarter of the Earth's circumference: larger caps are not
/// safe zones, and keeping the radius below π/2 keeps "inside" a test of four corners.
pub const MAX_RADIUS_M: f64 = 10_000_000.0;
/// Angular slack, in radians (about 6 mm), far above the rounding error of the formulas
/// (about 1e-15 rad), by which every test leans toward including a cell.
pub const SLACK_RAD: f64 = 1e-9;

const _: () = assert!(MAX_RADIUS_M / EARTH_RADIUS_M + SLACK_RAD < FRAC_PI_2);

/// A validated circle: the points within `radius_m` metres of a centre, great-circle distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Circle {
    lon_rad: f64,
    lat_rad: f64,
    sin_lat: f64,
    cos_lat: f64,
    radius_m: f64,
    /// `hav(radius + slack)`: a box nearer than this touches the circle.
    touch_hav: f64,
    /// `hav(radius − slack)`, or −1 when the radius is below the slack: a box whose corners
    /// are all nearer than this lies inside the circle.
    inside_hav: f64,
}

/// `hav(θ) = sin²(θ/2)`, increasing on [0, π].
fn hav(theta: f64) -> f64 {
    let s = (theta / 2.0).sin();
    s * s
}

impl Circle {
    /// The circle of `radius_m` metres (`0 ..= MAX_RADIUS_M`) around `(lon, lat)` in degrees. A
    /// radius of 0 is the centre alone.
    pub fn new(lon: f64, lat: f64, radius_m: f64) -> Result<Self, GridError> {
        check_point(lon, lat)?;
        if !(0.0..=MAX_RADIUS_M).contains(&radius_m) {
            return Err(GridError::Radius(radius_m));
        }
        let radius = radius_m / EARTH_RADIUS_M;
        Ok(Self {
            lon_rad: lon.to_radians(),
            lat_rad: lat.to_radians(),
            sin_lat: lat.to_radians().sin(),
            cos_lat: lat.to_radians().cos(),
            radius_m,
            touch_hav: hav(radius + SLACK_RAD),
            inside_hav: if radius > SLACK_RAD {
                hav(radius - SLACK_RAD)
            } else {
                -1.0
            },
        })
    }

    /// Longitude of the centre, degrees.
    pub fn lon(&self) -> f64 {
        self.lon_rad.to_degrees()
    }

    /// Latitude of the centre, degrees.
    pub fn lat(&self) -> f64 {
        self.lat_rad.to_degrees()
    }

    /// Radius, metres.
    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }

    /// Great-circle distance in metres from the centre to `(lon, lat)` in degrees.
    pub fn distance_m(&self, lon: f64, lat: f64) -> f64 {
        let h = self
            .hav_to(lon.to_radians(), lat.to_radians())
            .clamp(0.0, 1.0);
        2.0 * EARTH_RADIUS_M * h.sqrt().asin()
    }

    /// Whether some point of `rect` (x = longitude, y = latitude, degrees, edges included) is
    /// within the radius, leaning toward yes by [`SLACK_RAD`].
    pub fn touches(&self, rect: &Rect<f64>) -> bool {
        self.min_hav(rect) <= self.touch_hav
    }

    /// Whether every point of `rect` is within the radius, leaning toward no by [`SLACK_RAD`].
    pub fn contains_rect(&self, rect: &Rect<f64>) -> bool {
        let (west, east) = (rect.min().x.to_radians(), rect.max().x.to_radians());
        let (south, north) = (rect.min().y.to_radians(), rect.max().y.to_radians());
        // With every meridian of the box within 90° of the centre's, distance grows with the
        // longitude offset at each latitude and, along a meridian, has no interior maximum:
        // the farthest point is a corner. Wider boxes are simply never called inside.
        let near = |lon: f64| self.offset(lon).abs() < FRAC_PI_2;
        if !(near(west) && near(east) && east - west < PI) {
            return false;
        }
        [(west, south), (west, north), (east, south), (east, north)]
            .iter()
            .all(|&(lon, lat)| self.hav_to(lon, lat) < self.inside_hav)
    }

    /// `hav` of the angular distance to `(lon, lat)` in radians.
    fn hav_to(&self, lon: f64, lat: f64) -> f64 {
        hav(lat - self.lat_rad) + self.cos_lat * lat.cos() * hav(lon - self.lon_rad)
    }

    /// Longitude offset from the centre, wrapped to [−π, π].
    fn offset(&self, lon: f64) -> f64 {
        let d = (lon - self.lon_rad).rem_euclid(TAU);
        if d > PI { d - TAU } else { d }
    }

    /// `hav` of the smallest angular distance from the centre to the box `rect`.
    fn min_hav(&self, rect: &Rect<f64>) -> f64 {
        let (west, east) = (rect.min().x.to_radians(), rect.max().x.to_radians());
        let (south, north) = (rect.min().y.to_radians(), rect.max().y.to_radians());
        // At every latitude the distance grows with |longitude offset| (up to π), so the
        // nearest point lies on the box's meridian of smallest offset. Boxes never cross the
        // antimeridian (`west ≤ east`), so containment is a comparison.
        let nearest = if (west..=east).contains(&self.lon_rad) {
            self.lon_rad
        } else if self.offset(west).abs() <= self.offset(east).abs() {
            west
        } else {
            east
        };
        // Along that meridian cos(distance) = A·sin φ + B·cos φ = R·cos(φ − φ₀): the nearest
        // point is φ₀ when the box's latitudes hold it, else one of the two ends.
        let peak = self
            .sin_lat
            .atan2(self.cos_lat * (nearest - self.lon_rad).cos());
        let mut best = self.hav_to(nearest, south).min(self.hav_to(nearest, north));
        if (south..=north).contains(&peak) {
            best = best.min(self.hav_to(nearest, peak));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use geo::{Rect, coord};

    use super::*;

    fn rect(west: f64, south: f64, east: f64, north: f64) -> Rect<f64> {
        Rect::new(coord! { x: west, y: south }, coord! { x: east, y: north })
    }

    const SAMPLE_STEPS: usize = 200;

    /// Smallest distance to the box by dense sampling: an independent estimate from above.
    fn sampled_min_m(circle: &Circle, r: &Rect<f64>) -> f64 {
        let mut best = f64::INFINITY;
        for i in 0..=SAMPLE_STEPS {
            for j in 0..=SAMPLE_STEPS {
                let lon = r.min().x + r.width() * i as f64 / SAMPLE_STEPS as f64;
                let lat = r.min().y + r.height() * j as f64 / SAMPLE_STEPS as f64;
                best = best.min(circle.distance_m(lon, lat));
            }
        }
        best
    }

    #[test]
    fn the_distance_to_a_box_matches_dense_sampling() {
        let check = |lon: f64, lat: f64, r: Rect<f64>| {
            let circle = Circle::new(lon, lat, 1.0).expect("valid");
            let exact = 2.0 * EARTH_RADIUS_M * circle.min_hav(&r).sqrt().asin();
            let sampled = sampled_min_m(&circle, &r);
            // Sampling can only overestimate, by at most one sampling step's diagonal (a degree
            // is at most 111.2 km along any direction).
            let step_m = 111_200.0 * r.width().hypot(r.height()) / SAMPLE_STEPS as f64;
            assert!(exact <= sampled + 1e-6, "{exact} > {sampled} for {r:?}");
            assert!(sampled - exact <= step_m, "{exact} ≪ {sampled} for {r:?}");
        };
        check(0.0, 0.0, rect(10.0, 10.0, 20.0, 20.0));
        check(0.0, 60.0, rect(100.0, 50.0, 120.0, 70.0));
        check(0.0, -60.0, rect(150.0, -80.0, 180.0, -10.0));
        check(179.0, 0.0, rect(-180.0, -5.0, -170.0, 5.0));
        check(-179.5, 89.0, rect(0.0, 80.0, 10.0, 90.0));
        check(30.0, 0.0, rect(-180.0, -90.0, -150.0, 0.0));
        check(0.0, 0.0, rect(-1.0, -1.0, 1.0, 1.0));
    }

    #[test]
    fn touching_and_containing_lean_toward_the_cell() {
        let circle = Circle::new(0.0, 0.0, 1_000.0).expect("valid");
        let metre_deg = 1.0 / (EARTH_RADIUS_M.to_radians());
        // A box starting exactly at the radius touches; a box 1 m beyond does not.
        let edge = 1_000.0 * metre_deg;
        assert!(circle.touches(&rect(edge, -0.1, edge + 0.1, 0.1)));
        assert!(!circle.touches(&rect(edge + metre_deg, -0.1, edge + 0.1, 0.1)));
        assert!(circle.contains_rect(&rect(-0.001, -0.001, 0.001, 0.001)));
        assert!(!circle.contains_rect(&rect(-0.001, -0.001, edge, 0.001)));
        // A zero radius touches the boxes holding the centre, and contains none.
        let point = Circle::new(0.0, 0.0, 0.0).expect("valid");
        assert!(point.touches(&rect(0.0, 0.0, 1.0, 1.0)));
        assert!(!point.touches(&rect(1e-6, 0.0, 1.0, 1.0)));
        assert!(!point.contains_rect(&rect(0.0, 0.0, 0.0, 0.0)));
    }
}
