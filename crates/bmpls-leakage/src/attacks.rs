//! The leakage-abuse attacks, each placing every fix (or the home) from what its attacker sees.
//!
//! All three rest on one property of a random order-preserving function (Boldyreva, Chenette
//! and O'Neill 2011, "window distance"): with `R = 2^(range − domain)` ciphertexts per
//! plaintext, `c(m) / R ≈ m`, and `c(m₁) − c(m₂)` is `(m₁ − m₂)·R` to within about
//! `√|m₁ − m₂|·R`; and Hilbert indices of nearby places are close. Ciphertexts are read in
//! "index units", `c / R`, so that differences of them are differences of cell numbers.
//!
//! Keys are per day (epoch), so every attack works one epoch at a time and combines days only
//! through the places they estimate.

use std::collections::{BTreeMap, HashMap};

use bmpls_grid::{CellIndex, LevelIndex, LevelSet};
use bmpls_ope::OpeParams;

use crate::LeakageError;
use crate::geo::{LatLon, centre_of_index, metres};
use crate::observe::{Observation, Seen};
use crate::patient::DAY_MS;

/// The hours an attacker takes for night, when a patient is at home: 01:00–05:00 (the
/// simulated patient's local time is UTC).
const NIGHT_MS: std::ops::Range<u64> = 3_600_000..18_000_000;
/// Night-time ciphertexts further apart than this many metres' worth of cells (squared: a
/// Hilbert index run of `n²` cells spans about `n` cells) start a new cluster.
const CLUSTER_GAP_M: f64 = 200.0;
/// How many standard deviations of the window distance the carer allows between the offsets
/// of two cells.
const SLACK_SIGMAS: f64 = 2.0;
/// The carer refines a cell's fixes only when it knows their offset to within this share of
/// the cell's run of finer cell numbers.
const UNSURE_SHARE: f64 = 0.25;

/// The median and 90th percentile of an attack's errors, metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Fixes scored.
    pub count: usize,
    /// Median error, metres.
    pub median_m: f64,
    /// 90th percentile error, metres.
    pub p90_m: f64,
}

impl Score {
    /// The score of `errors` (metres); NaN figures for none.
    pub fn of(errors: &[f64]) -> Self {
        let mut sorted: Vec<f64> = errors.iter().copied().filter(|e| e.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if sorted.is_empty() {
                f64::NAN
            } else {
                sorted[((sorted.len() - 1) as f64 * q).round() as usize]
            }
        };
        Self {
            count: sorted.len(),
            median_m: at(0.5),
            p90_m: at(0.9),
        }
    }

    /// The errors of `estimates` against `truth`, fix by fix, scored.
    pub fn against(estimates: &[LatLon], truth: &[LatLon]) -> Self {
        let errors: Vec<f64> = estimates
            .iter()
            .zip(truth)
            .map(|(&e, &t)| metres(e, t))
            .collect();
        Self::of(&errors)
    }
}

/// Ciphertexts per plaintext at `depth`, as the reporter's parameters fix it (public).
fn scale(depth: u8) -> Result<f64, LeakageError> {
    let params = OpeParams::with_default_expansion(2 * depth)?;
    Ok(2f64.powi(i32::from(params.range_bits() - params.domain_bits())))
}

/// The observations of each epoch, by index, in epoch order.
fn epochs(obs: &[Observation]) -> BTreeMap<u32, Vec<usize>> {
    let mut by: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, o) in obs.iter().enumerate() {
        by.entry(o.epoch).or_default().push(i);
    }
    by
}

/// The finest level at or coarser than `from` that every observation of `run` shows as an
/// order-preserving ciphertext.
fn finest_ope(obs: &[Observation], run: &[usize], from: usize) -> Option<usize> {
    let levels = run.first().map_or(0, |&i| obs[i].levels.len());
    (from..levels).find(|&l| {
        run.iter()
            .all(|&i| matches!(obs[i].levels.get(l), Some(Seen::Ope(_))))
    })
}

/// Level `level` of observation `o` in index units, if it is order-preserving.
fn units(o: &Observation, level: usize, scale: f64) -> Option<f64> {
    match o.levels.get(level) {
        Some(Seen::Ope(c)) => Some(*c as f64 / scale),
        _ => None,
    }
}

/// The ciphertext of the patient's home in one epoch, in index units: the median of the
/// largest cluster of night-time ciphertexts at `level` (depth `depth`).
fn home_units(obs: &[Observation], run: &[usize], level: usize, depth: u8) -> Option<f64> {
    let scale = scale(depth).ok()?;
    let mut night: Vec<f64> = run
        .iter()
        .map(|&i| &obs[i])
        .filter(|o| NIGHT_MS.contains(&(o.fix_time_ms % DAY_MS)))
        .filter_map(|o| units(o, level, scale))
        .collect();
    night.sort_by(f64::total_cmp);
    let cell_m = 180.0 / 2f64.powi(i32::from(depth)) * 111_195.0;
    let gap = (CLUSTER_GAP_M / cell_m).powi(2).max(1.0);
    let mut best: &[f64] = &[];
    let mut start = 0;
    for end in 1..=night.len() {
        if end == night.len() || night[end] - night[end - 1] > gap {
            if end - start > best.len() {
                best = &night[start..end];
            }
            start = end;
        }
    }
    best.get(best.len() / 2).copied()
}

/// (a) The anchored-distance attack of someone holding stored records (a node's disk) who
/// knows where the patient lives: each day, the night-time cluster marks home's ciphertext,
/// and every fix is placed at home's cell number plus its ciphertext's distance from home's,
/// at the finest order-preserving level at or coarser than `from` (0: all levels). A fix
/// with nothing orderable is placed at home.
pub fn anchored(
    obs: &[Observation],
    home: LatLon,
    levels: &LevelSet,
    from: usize,
) -> Result<Vec<LatLon>, LeakageError> {
    let mut out = vec![home; obs.len()];
    for run in epochs(obs).values() {
        let Some(level) = finest_ope(obs, run, from) else {
            continue;
        };
        let depth = depth_of(levels, level)?;
        let Some(home_u) = home_units(obs, run, level, depth) else {
            continue;
        };
        let scale = scale(depth)?;
        let home_m = home.cell(depth)?.index() as f64;
        for &i in run {
            if let Some(u) = units(&obs[i], level, scale) {
                out[i] = centre_of_index(depth, home_m + (u - home_u));
            }
        }
    }
    Ok(out)
}

/// One day's estimate of the patient's home with no key and no auxiliary knowledge: the
/// night-time cluster's ciphertext at the finest order-preserving level, read as a cell
/// number (`c / R ≈ m`). No `Debug`: it is an estimated place.
#[derive(Clone, Copy, PartialEq)]
pub struct DailyPlace {
    /// The day.
    pub epoch: u32,
    /// The level it was read at.
    pub level: usize,
    /// The estimated cell number at that level, fractional.
    pub index: f64,
}

/// (c) Each epoch's [`DailyPlace`] (none for an epoch without night-time fixes or anything
/// orderable).
pub fn daily_places(
    obs: &[Observation],
    levels: &LevelSet,
) -> Result<Vec<DailyPlace>, LeakageError> {
    let mut days = Vec::new();
    for (&epoch, run) in &epochs(obs) {
        let Some(level) = finest_ope(obs, run, 0) else {
            continue;
        };
        if let Some(index) = home_units(obs, run, level, depth_of(levels, level)?) {
            days.push(DailyPlace {
                epoch,
                level,
                index,
            });
        }
    }
    Ok(days)
}

/// (c) The daily places averaged over days: independent per-day keys give independent
/// errors, so the mean's error shrinks as `1/√days`. Uses the days read at the finest level
/// any day was read at; `None` if there are none.
pub fn averaged_place(
    days: &[DailyPlace],
    levels: &LevelSet,
) -> Result<Option<LatLon>, LeakageError> {
    let Some(level) = days.iter().map(|d| d.level).min() else {
        return Ok(None);
    };
    let used: Vec<f64> = days
        .iter()
        .filter(|d| d.level == level)
        .map(|d| d.index)
        .collect();
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    Ok(Some(centre_of_index(depth_of(levels, level)?, mean)))
}

/// (b) What a carer granted `level` places each fix at without using anything finer: the
/// centre of its decrypted cell. The baseline the grant legitimately gives.
pub fn granted_centres(
    obs: &[Observation],
    level: LevelIndex,
) -> Result<Vec<LatLon>, LeakageError> {
    obs.iter()
        .map(|o| granted_cell(o, level).map(LatLon::centre_of))
        .collect()
}

fn granted_cell(o: &Observation, level: LevelIndex) -> Result<CellIndex, LeakageError> {
    match o.levels.get(usize::from(level.0)) {
        Some(Seen::Cell(cell)) => Ok(*cell),
        _ => Err(LeakageError::Setup(
            "a carer's observation without its granted cell",
        )),
    }
}

/// (b) A carer granted `level`, using everything its answers carry: its decrypted cells and
/// any order-preserving ciphertexts of a finer level. The cell bounds each fix's finer cell
/// number to a known run `[a, b]`; within one epoch a ciphertext is its cell number plus an
/// offset that drifts slowly along the curve (by about `√Δ` over `Δ` cells), so the fixes of
/// one cell bound their common offset (`max u − b ≤ o ≤ min u − a`), and every other cell
/// the patient visited that day bounds it too, less tightly the further along the curve it
/// lies. The carer takes the middle of the intersection and places each fix at `u − o`.
/// Without a finer orderable level, the granted centre.
pub fn carer(
    obs: &[Observation],
    level: LevelIndex,
    levels: &LevelSet,
) -> Result<Vec<LatLon>, LeakageError> {
    let mut out = granted_centres(obs, level)?;
    let granted = usize::from(level.0);
    for run in epochs(obs).values() {
        let Some(fine) = (0..granted).find(|&l| {
            run.iter()
                .all(|&i| matches!(obs[i].levels.get(l), Some(Seen::Ope(_))))
        }) else {
            continue;
        };
        let depth = depth_of(levels, fine)?;
        let scale = scale(depth)?;
        // Per granted cell: its run of finer cell numbers and the span of its ciphertexts.
        let mut cells: HashMap<u64, (f64, f64, f64, f64)> = HashMap::new();
        for &i in run {
            let cell = granted_cell(&obs[i], level)?;
            let (a, b) = cell.range_at(depth)?;
            let u = units(&obs[i], fine, scale).unwrap_or(f64::NAN);
            let entry = cells.entry(cell.index()).or_insert((
                a as f64,
                b as f64,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ));
            entry.2 = entry.2.min(u);
            entry.3 = entry.3.max(u);
        }
        let bounds: Vec<(f64, f64, f64)> = cells
            .values()
            .map(|&(a, b, lo_u, hi_u)| ((a + b) / 2.0, hi_u - b, lo_u - a))
            .collect();
        let mut offsets: HashMap<u64, f64> = HashMap::with_capacity(cells.len());
        for (&index, &(a, b, _, _)) in &cells {
            let mid = (a + b) / 2.0;
            let half = (b - a) / 2.0;
            let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
            for &(other, other_lo, other_hi) in &bounds {
                let slack = SLACK_SIGMAS * ((mid - other).abs() + half).sqrt();
                lo = lo.max(other_lo - slack);
                hi = hi.min(other_hi + slack);
            }
            // An offset known to less than this share of the cell places fixes worse than
            // the cell's centre does: keep the centre for those cells.
            if hi - lo <= UNSURE_SHARE * (b - a) {
                offsets.insert(index, (lo + hi) / 2.0);
            }
        }
        for &i in run {
            let cell = granted_cell(&obs[i], level)?;
            let (Some(offset), Some(u)) = (offsets.get(&cell.index()), units(&obs[i], fine, scale))
            else {
                continue;
            };
            let (a, b, _, _) = cells[&cell.index()];
            out[i] = centre_of_index(depth, (u - offset).clamp(a, b));
        }
    }
    Ok(out)
}

fn depth_of(levels: &LevelSet, level: usize) -> Result<u8, LeakageError> {
    levels
        .levels()
        .get(level)
        .map(|l| l.depth)
        .ok_or(LeakageError::Setup(
            "an observation with more levels than the level set",
        ))
}

#[cfg(test)]
mod tests {
    use super::Score;

    fn check(errors: &[f64], median_m: f64, p90_m: f64) {
        let score = Score::of(errors);
        assert_eq!(
            (score.median_m, score.p90_m),
            (median_m, p90_m),
            "{errors:?}"
        );
    }

    #[test]
    fn scores_are_the_median_and_the_90th_percentile() {
        check(&[5.0], 5.0, 5.0);
        check(&[3.0, 1.0, 2.0], 2.0, 3.0);
        check(
            &(1..=11).map(f64::from).rev().collect::<Vec<_>>(),
            6.0,
            10.0,
        );
        check(&[1.0, f64::NAN, 3.0, 2.0], 2.0, 3.0);
        assert!(Score::of(&[]).median_m.is_nan());
    }
}
