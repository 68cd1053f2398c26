//! A simulated patient in Amsterdam: days of fixes every 30 s, at home at night, walking at
//! walking speed along streets to a clinic, the Vondelpark and a shop, with a few metres of GPS
//! noise. Seeded: the same seed gives the same days.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::geo::{LatLon, metres};

/// Interval between fixes, as the reporter samples them.
pub const STEP_MS: u64 = 30_000;
/// One day, which is also the reporter's key epoch.
pub const DAY_MS: u64 = 86_400_000;
/// The first simulated day, 2026-11-02 00:00 UTC (a Monday). The simulation keeps local time
/// equal to UTC, so "night" is read off the fix time directly, as an attacker would after
/// correcting for the patient's time zone.
pub const FIRST_DAY_MS: u64 = 1_793_577_600_000;

/// One reported fix and where it was taken (the position the record encrypts).
#[derive(Clone, Copy, PartialEq)]
pub struct TrueFix {
    /// When, ms since the Unix epoch.
    pub fix_time_ms: u64,
    /// The reported position (truth plus GPS noise): what the record encrypts and what an
    /// attack is scored against.
    pub at: LatLon,
}

/// A named place the patient visits.
#[derive(Clone, Copy, PartialEq)]
pub struct Place {
    /// What it is.
    pub name: &'static str,
    /// Where it is.
    pub at: LatLon,
}

/// The patient's home, the one place an anchored attacker is assumed to know (Overtoom, the
/// `bmpls demo` home).
pub const HOME: LatLon = LatLon::new(52.3579, 4.8686);
/// The places of the patient's routine, with the home first.
pub const PLACES: [Place; 4] = [
    Place {
        name: "home",
        at: HOME,
    },
    // OLVG West, about 1.8 km north-west.
    Place {
        name: "clinic",
        at: LatLon::new(52.3694, 4.8527),
    },
    // The Vondelpark's east half, about 0.7 km east; the walk loops inside it.
    Place {
        name: "park",
        at: LatLon::new(52.3590, 4.8780),
    },
    // A supermarket on the Kinkerstraat, about 0.9 km north.
    Place {
        name: "shop",
        at: LatLon::new(52.3660, 4.8690),
    },
];

/// GPS noise, one standard deviation per axis: indoors and outdoors.
const INDOOR_NOISE_M: f64 = 6.0;
const OUTDOOR_NOISE_M: f64 = 4.0;

/// What the patient does over one stretch of a day.
enum Leg {
    /// Stays at a place (indoors or on a bench) until `end_ms`.
    Stay { at: LatLon, end_ms: u64 },
    /// Walks `path` from `start_ms` to `end_ms` at a constant speed.
    Walk {
        path: Vec<LatLon>,
        start_ms: u64,
        end_ms: u64,
    },
}

/// The fixes of `days` consecutive days from [`FIRST_DAY_MS`], for the patient of `seed`.
pub fn simulate(seed: u64, days: u32) -> Vec<TrueFix> {
    (0..days).flat_map(|day| simulate_day(seed, day)).collect()
}

/// The fixes of day `day` (0 is [`FIRST_DAY_MS`]), one every [`STEP_MS`] from midnight.
pub fn simulate_day(seed: u64, day: u32) -> Vec<TrueFix> {
    let mut rng = StdRng::seed_from_u64(seed ^ (u64::from(day) << 32) ^ 0x5eed_da75);
    let start = FIRST_DAY_MS + u64::from(day) * DAY_MS;
    let legs = schedule(start, day, &mut rng);
    let mut fixes = Vec::with_capacity((DAY_MS / STEP_MS) as usize);
    let mut leg = 0;
    for step in 0..DAY_MS / STEP_MS {
        let t = start + step * STEP_MS;
        while leg + 1 < legs.len() && end_of(&legs[leg]) <= t {
            leg += 1;
        }
        let (at, noise) = match &legs[leg] {
            Leg::Stay { at, .. } => (*at, INDOOR_NOISE_M),
            Leg::Walk {
                path,
                start_ms,
                end_ms,
            } => {
                let share = (t - start_ms) as f64 / (end_ms - start_ms).max(1) as f64;
                (along(path, share), OUTDOOR_NOISE_M)
            }
        };
        fixes.push(TrueFix {
            fix_time_ms: t,
            at: at.offset_m(gauss(&mut rng) * noise, gauss(&mut rng) * noise),
        });
    }
    fixes
}

fn end_of(leg: &Leg) -> u64 {
    match leg {
        Leg::Stay { end_ms, .. } | Leg::Walk { end_ms, .. } => *end_ms,
    }
}

/// The day's legs, contiguous from `start` to the end of the day: a park walk most mornings,
/// the clinic on Mondays and Thursdays after lunch, the shop in the late afternoon except on
/// Sundays; home otherwise.
fn schedule(start: u64, day: u32, rng: &mut StdRng) -> Vec<Leg> {
    let minute = 60_000;
    let mut trips: Vec<(u64, Place, u64, bool)> = Vec::new();
    if rng.gen_bool(0.85) {
        // (departure, place, time there, loops inside it)
        trips.push((
            rng.gen_range(480..600) * minute,
            PLACES[2],
            rng.gen_range(20..50) * minute,
            true,
        ));
    }
    if day % 7 == 0 || day % 7 == 3 {
        trips.push((
            rng.gen_range(780..840) * minute,
            PLACES[1],
            rng.gen_range(40..80) * minute,
            false,
        ));
    }
    if day % 7 != 6 {
        trips.push((
            rng.gen_range(960..1050) * minute,
            PLACES[3],
            rng.gen_range(10..25) * minute,
            false,
        ));
    }
    let mut legs = Vec::new();
    let mut t = start;
    for (departure, place, stay, loops) in trips {
        let leave = (start + departure).max(t + 10 * minute);
        legs.push(Leg::Stay {
            at: HOME,
            end_ms: leave,
        });
        let speed = rng.gen_range(1.1..1.4);
        let there = streets(HOME, place.at, rng.gen_bool(0.5));
        t = walk(&mut legs, there, leave, speed);
        if loops {
            t = walk(&mut legs, park_loop(place.at), t, speed);
        }
        legs.push(Leg::Stay {
            at: place.at,
            end_ms: t + stay,
        });
        t += stay;
        let back = streets(place.at, HOME, rng.gen_bool(0.5));
        t = walk(&mut legs, back, t, speed);
    }
    legs.push(Leg::Stay {
        at: HOME,
        end_ms: start + DAY_MS,
    });
    legs
}

/// Appends a walk along `path` starting at `t`; returns when it ends.
fn walk(legs: &mut Vec<Leg>, path: Vec<LatLon>, t: u64, speed_m_s: f64) -> u64 {
    let length: f64 = path.windows(2).map(|w| metres(w[0], w[1])).sum();
    let end_ms = t + (length / speed_m_s * 1000.0) as u64;
    legs.push(Leg::Walk {
        path,
        start_ms: t,
        end_ms,
    });
    end_ms
}

/// A route from `a` to `b` along two perpendicular streets, turning at one corner (a rough
/// street grid: Amsterdam's are not square, but the walk's geometry, not the map, matters).
fn streets(a: LatLon, b: LatLon, north_first: bool) -> Vec<LatLon> {
    let corner = if north_first {
        LatLon::new(b.lat, a.lon)
    } else {
        LatLon::new(a.lat, b.lon)
    };
    vec![a, corner, b]
}

/// A loop of about 1.4 km around `centre`, on the park's paths.
fn park_loop(centre: LatLon) -> Vec<LatLon> {
    let corners = [
        (0.0, 0.0),
        (150.0, 300.0),
        (0.0, 600.0),
        (-150.0, 300.0),
        (0.0, 0.0),
    ];
    corners
        .iter()
        .map(|&(north, east)| centre.offset_m(north, east))
        .collect()
}

/// The point a share (0..=1) of the way along `path`.
fn along(path: &[LatLon], share: f64) -> LatLon {
    let lengths: Vec<f64> = path.windows(2).map(|w| metres(w[0], w[1])).collect();
    let mut left = lengths.iter().sum::<f64>() * share.clamp(0.0, 1.0);
    for (w, &length) in path.windows(2).zip(&lengths) {
        if left <= length || length == 0.0 {
            let t = if length == 0.0 { 0.0 } else { left / length };
            return LatLon::new(
                w[0].lat + (w[1].lat - w[0].lat) * t,
                w[0].lon + (w[1].lon - w[0].lon) * t,
            );
        }
        left -= length;
    }
    path[path.len() - 1]
}

/// A standard normal draw (Box–Muller), so that the crate needs no distribution library.
fn gauss(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
