//! A patient's fences as the caseload lists them and the map draws them: the standing fences
//! `f + 1` validators list (`bmpls_client::standing_fences`), each with the state its latest
//! verified alarm implies, and, where the grant allows, its zone as cells. Pure: the server
//! asks and decrypts, this decides what is shown.
//!
//! A fence is drawn only at the carer's granted level or a coarser one, whose keys the grant
//! holds: a fence set at a finer level is listed by its level's name and its state, never drawn
//! (its zone, even coarsened here, would show the place finer than the grant does).

use serde::Serialize;

use bmpls_client::{FenceFault, FenceSurvey, ProvedFence};
use bmpls_grid::{IndexRange, LevelSet, run_cells};

use super::alarms::FenceState;
use super::view::{Bounds, bounds};

/// Rectangles one fence is drawn with; a zone that takes more is listed, not drawn.
pub const MAX_FENCE_RECTS: usize = 1_024;

/// One standing fence as the operator sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FenceView {
    /// The fence's transaction hash, hex.
    pub fence: String,
    /// The name of the level it is set at.
    pub level: String,
    /// `inside`, `outside`, `silent` (its latest alarm is `Missing`) or `unknown` (no alarm
    /// about it yet).
    pub state: &'static str,
    /// The block time of the alarm that set the state.
    pub since_ms: Option<u64>,
    /// Its zone, when it is drawn.
    pub cells: Vec<Bounds>,
    /// Why it is not drawn.
    pub note: Option<String>,
}

/// A patient's fences.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Fences {
    /// The standing fences, in chain order.
    pub fences: Vec<FenceView>,
    /// Whether more stand than the validators sent.
    pub more: bool,
    /// What the validators disagreed on or did wrong.
    pub faults: Vec<String>,
    /// Why the fences could not be learnt at all.
    pub problem: Option<String>,
}

/// Whether a fence at `fence_level` may be drawn under a grant at `granted` (level indexes
/// grow coarser).
pub fn drawable(fence_level: u8, granted: u8) -> bool {
    fence_level >= granted
}

/// The rectangles of a zone's cell runs at `depth`, or why it is not drawn.
pub fn zone_rects(depth: u8, runs: &[IndexRange]) -> Result<Vec<Bounds>, String> {
    let mut rects = Vec::new();
    for &run in runs {
        let left = MAX_FENCE_RECTS - rects.len();
        let cells = run_cells(depth, run, left)
            .ok_or_else(|| format!("its zone takes more than {MAX_FENCE_RECTS} rectangles"))?;
        rects.extend(cells.iter().map(bounds));
    }
    Ok(rects)
}

fn fault_text(fault: &FenceFault) -> String {
    let short = |hex: String| hex[..8.min(hex.len())].to_string();
    match fault {
        FenceFault::Unconfirmed { fence, listed_by } => format!(
            "fence {}… is listed by {} validator(s) only: not believed to stand",
            short(hex::encode(fence.0)),
            listed_by.len()
        ),
        FenceFault::Withheld { fence, node } => format!(
            "validator {}… left out fence {}…",
            short(hex::encode(node.0)),
            short(hex::encode(fence.0))
        ),
        other => other.to_string(),
    }
}

/// The fences of one patient from the validators' `survey` under a grant at `granted`, with
/// the `states` the latest alarms set; `open` decrypts a drawable fence's zone to cell runs at
/// its level (or says why not), and is never called for one finer than granted.
pub fn fences(
    survey: &FenceSurvey,
    granted: u8,
    levels: &LevelSet,
    states: &[FenceState],
    mut open: impl FnMut(&ProvedFence) -> Result<Vec<IndexRange>, String>,
) -> Fences {
    let views = survey
        .standing
        .iter()
        .map(|proved| {
            let fence = hex::encode(proved.hash.0);
            let level_index = proved.fence.level.0;
            let level = levels.get(bmpls_grid::LevelIndex(level_index));
            let name = level.map_or_else(|| format!("level {level_index}"), |l| l.name.clone());
            let seen = states.iter().find(|s| s.fence == fence);
            let (cells, note) = match level {
                None => (Vec::new(), Some("no such level here".to_string())),
                Some(_) if !drawable(level_index, granted) => (
                    Vec::new(),
                    Some(format!(
                        "a fence at {name} level, finer than granted: not drawn"
                    )),
                ),
                Some(level) => match open(proved).and_then(|r| zone_rects(level.depth, &r)) {
                    Ok(cells) => (cells, None),
                    Err(why) => (Vec::new(), Some(format!("not drawn: {why}"))),
                },
            };
            FenceView {
                fence,
                level: name,
                state: seen.map_or("unknown", |s| s.state),
                since_ms: seen.map(|s| s.since_ms),
                cells,
                note,
            }
        })
        .collect();
    Fences {
        fences: views,
        more: survey.more,
        faults: survey.faults.iter().map(fault_text).collect(),
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use bmpls_types::{
        BoundedVec, CarerId, Epoch, FenceEpoch, FenceRanges, Height, LevelIndex, OpeCiphertext,
        PatientId, SetFence, SignatureBytes, TxHash, ValidatorId,
    };

    use super::*;

    const LEVELS: &str = include_str!("../../../../config/levels.toml");

    fn standing(n: u8, level: u8) -> ProvedFence {
        ProvedFence {
            hash: TxHash([n; 32]),
            height: Height(u64::from(n)),
            fence: SetFence {
                patient: PatientId([1; 16]),
                carer: CarerId([2; 16]),
                level: LevelIndex(level),
                epochs: BoundedVec::new(vec![FenceEpoch {
                    epoch: Epoch(0),
                    ranges: FenceRanges::Ope(
                        BoundedVec::new(vec![(OpeCiphertext(1), OpeCiphertext(2))])
                            .expect("bounded"),
                    ),
                }])
                .expect("bounded"),
                debounce: 1,
                expected_interval_ms: 0,
                sig: SignatureBytes::UNSIGNED,
            },
        }
    }

    #[test]
    fn a_fence_is_drawn_at_the_granted_level_or_coarser_and_only_listed_when_finer() {
        let levels = LevelSet::from_toml(LEVELS).expect("levels");
        let survey = FenceSurvey {
            // street (finer than the neighbourhood grant), neighbourhood, district.
            standing: vec![standing(1, 1), standing(2, 2), standing(3, 3)],
            more: true,
            faults: vec![FenceFault::Unconfirmed {
                fence: TxHash([9; 32]),
                listed_by: vec![ValidatorId([7; 32])],
            }],
            answered: 4,
        };
        let states = [FenceState {
            fence: hex::encode([2u8; 32]),
            patient: hex::encode([1u8; 16]),
            state: "outside",
            since_ms: 5,
        }];
        let mut opened = Vec::new();
        // A run of 16 cells aligned on a depth-2-coarser node: one rectangle.
        let shown = fences(&survey, 2, &levels, &states, |f| {
            opened.push(f.fence.level.0);
            Ok(vec![(16, 31)])
        });
        assert_eq!(opened, vec![2, 3], "the finer fence is never decrypted");
        let got: Vec<(&str, &str, usize, bool)> = shown
            .fences
            .iter()
            .map(|f| (f.level.as_str(), f.state, f.cells.len(), f.note.is_some()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("street", "unknown", 0, true),
                ("neighbourhood", "outside", 1, false),
                ("district", "unknown", 1, false),
            ]
        );
        assert_eq!(
            shown.fences[0].note.as_deref(),
            Some("a fence at street level, finer than granted: not drawn")
        );
        assert_eq!(shown.fences[1].since_ms, Some(5));
        assert!(shown.more);
        assert_eq!(shown.faults.len(), 1);
        assert!(
            shown.faults[0].contains("not believed to stand"),
            "{:?}",
            shown.faults
        );
    }

    #[test]
    fn a_zone_that_will_not_open_or_takes_too_many_rectangles_is_listed_not_drawn() {
        let levels = LevelSet::from_toml(LEVELS).expect("levels");
        let survey = FenceSurvey {
            standing: vec![standing(1, 2), standing(2, 2)],
            ..FenceSurvey::default()
        };
        let mut calls = 0;
        let shown = fences(&survey, 2, &levels, &[], |_| {
            calls += 1;
            if calls == 1 {
                Err("the grant's keys do not reach its epochs".to_string())
            } else {
                // Every other cell: one rectangle each, past the bound.
                Ok((0..=MAX_FENCE_RECTS as u64)
                    .map(|i| (2 * i, 2 * i))
                    .collect())
            }
        });
        for f in &shown.fences {
            assert!(f.cells.is_empty());
            assert!(
                f.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("not drawn")),
                "{f:?}"
            );
        }
    }
}
