//! The whole measurement: a simulated patient's days encrypted once, seen under each layout by
//! an outsider (a node's disk) and by carers, attacked, and scored in metres. Day by day, so
//! that a year needs the memory of a day plus one error per fix.

use bmpls_grid::{LevelIndex, LevelSet};

use crate::LeakageError;
use crate::attacks::{self, DailyPlace, Score};
use crate::geo::{LatLon, metres};
use crate::observe::{Answer, Carer, Encryptor, Layout, Observation, Scheme, observe};
use crate::patient::{DAY_MS, FIRST_DAY_MS, HOME, simulate_day};

/// Fixes closer to home than this are left out of the scores of (a) and (b): the anchored
/// attacker knows the home, so placing fixes there is no achievement, and a patient is home
/// most of the day, so scores over every fix would mostly measure one place.
pub const AWAY_FROM_HOME_M: f64 = 200.0;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The simulated patient (and every key and nonce).
    pub seed: u64,
    /// Days simulated, a fix every 30 s.
    pub days: u32,
    /// Of those, the first days on which the carers are measured too (their cost is one
    /// decryption per fix and level).
    pub carer_days: u32,
    /// The carers' granted levels.
    pub carer_levels: Vec<LevelIndex>,
    /// What a carer's answer carries of the finer levels.
    pub answer: Answer,
    /// The levels.
    pub levels: LevelSet,
    /// The layouts compared; the same records are seen under each.
    pub layouts: Vec<Layout>,
}

/// One carer's figures.
#[derive(Clone, Debug)]
pub struct CarerFigures {
    /// The granted level.
    pub level: LevelIndex,
    /// Placing each fix at its granted cell's centre: what the grant legitimately gives.
    pub granted: Score,
    /// The attack (b).
    pub attack: Score,
}

/// Everything measured under one layout.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The layout.
    pub layout: Layout,
    /// (a) from all stored levels, over fixes more than [`AWAY_FROM_HOME_M`] from home.
    pub anchored: Score,
    /// (a) from each level (and the coarser ones when it is not orderable), finest first.
    pub anchored_by_level: Vec<Score>,
    /// The district scale: the same fixes placed at their district cells' centres.
    pub district_scale: Score,
    /// (b), per carer level, over fixes more than [`AWAY_FROM_HOME_M`] from home.
    pub carers: Vec<CarerFigures>,
    /// (c) the home averaged over every day, metres from the true home; `None` if no day
    /// gave an estimate.
    pub averaged_m: Option<f64>,
    /// (c) the single days' estimates, metres from the true home.
    pub daily: Score,
    /// Days (c) averaged.
    pub days_averaged: usize,
}

#[derive(Default)]
struct Errors {
    anchored: Vec<f64>,
    by_level: Vec<Vec<f64>>,
    district: Vec<f64>,
    granted: Vec<Vec<f64>>,
    carer: Vec<Vec<f64>>,
    daily: Vec<DailyPlace>,
}

/// Runs the measurement of `setup`.
pub fn run(setup: &Setup) -> Result<Vec<Figures>, LeakageError> {
    let levels = &setup.levels;
    let district = levels
        .levels()
        .iter()
        .position(|l| l.depth <= 13)
        .ok_or(LeakageError::Setup("no level as coarse as a district"))?;
    let district_depth = levels.levels()[district].depth;
    let ore_levels: Vec<bool> = (0..levels.len())
        .map(|i| setup.layouts.iter().any(|l| l.scheme(i) == Scheme::Ore))
        .collect();
    let mut phone = Encryptor::new(setup.seed, levels.clone(), ore_levels)?;
    let first_epoch = (FIRST_DAY_MS / DAY_MS) as u32;
    let last_epoch = first_epoch + setup.days.max(1) - 1;
    let mut carers: Vec<Carer> = setup
        .carer_levels
        .iter()
        .map(|&l| phone.carer(l, first_epoch, last_epoch))
        .collect::<Result<_, _>>()?;
    let mut errors: Vec<Errors> = setup
        .layouts
        .iter()
        .map(|_| Errors {
            by_level: vec![Vec::new(); levels.len()],
            granted: vec![Vec::new(); carers.len()],
            carer: vec![Vec::new(); carers.len()],
            ..Errors::default()
        })
        .collect();

    for day in 0..setup.days {
        let fixes = simulate_day(setup.seed, day);
        let sealed: Vec<_> = fixes
            .iter()
            .map(|f| phone.encrypt(f))
            .collect::<Result<_, _>>()?;
        let truth: Vec<LatLon> = fixes.iter().map(|f| f.at).collect();
        let away: Vec<bool> = truth
            .iter()
            .map(|&t| metres(t, HOME) > AWAY_FROM_HOME_M)
            .collect();
        let with_carers = day < setup.carer_days;
        let cells: Vec<Vec<_>> = if with_carers {
            carers
                .iter_mut()
                .map(|c| sealed.iter().map(|s| c.decrypt(&s.record)).collect())
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        for (layout, e) in setup.layouts.iter().zip(&mut errors) {
            let seen: Vec<Observation> = sealed.iter().map(|s| observe(s, layout)).collect();
            let score_away = |estimates: &[LatLon], into: &mut Vec<f64>| {
                for ((est, t), &far) in estimates.iter().zip(&truth).zip(&away) {
                    if far {
                        into.push(metres(*est, *t));
                    }
                }
            };
            score_away(&attacks::anchored(&seen, HOME, levels, 0)?, &mut e.anchored);
            for (level, into) in e.by_level.iter_mut().enumerate() {
                score_away(&attacks::anchored(&seen, HOME, levels, level)?, into);
            }
            let centres: Vec<LatLon> = truth
                .iter()
                .map(|t| t.cell(district_depth).map(LatLon::centre_of))
                .collect::<Result<_, _>>()?;
            score_away(&centres, &mut e.district);
            e.daily.extend(attacks::daily_places(&seen, levels)?);
            if !with_carers {
                continue;
            }
            for (k, carer) in carers.iter().enumerate() {
                let view: Vec<Observation> = seen
                    .iter()
                    .zip(&cells[k])
                    .map(|(o, &cell)| carer.observe(cell, o, setup.answer))
                    .collect::<Result<_, _>>()?;
                let base = attacks::granted_centres(&view, carer.level())?;
                let attack = attacks::carer(&view, carer.level(), levels)?;
                score_away(&base, &mut e.granted[k]);
                score_away(&attack, &mut e.carer[k]);
            }
        }
    }

    setup
        .layouts
        .iter()
        .zip(errors)
        .map(|(layout, e)| {
            let averaged = attacks::averaged_place(&e.daily, levels)?;
            let daily: Vec<f64> = e
                .daily
                .iter()
                .map(|d| {
                    let depth = levels.levels()[d.level].depth;
                    metres(crate::geo::centre_of_index(depth, d.index), HOME)
                })
                .collect();
            Ok(Figures {
                layout: layout.clone(),
                anchored: Score::of(&e.anchored),
                anchored_by_level: e.by_level.iter().map(|v| Score::of(v)).collect(),
                district_scale: Score::of(&e.district),
                carers: setup
                    .carer_levels
                    .iter()
                    .enumerate()
                    .map(|(k, &level)| CarerFigures {
                        level,
                        granted: Score::of(&e.granted[k]),
                        attack: Score::of(&e.carer[k]),
                    })
                    .collect(),
                averaged_m: averaged.map(|p| metres(p, HOME)),
                daily: Score::of(&daily),
                days_averaged: e.daily.len(),
            })
        })
        .collect()
}
