//! The checker, pure: a run records what clients were told and what validators hold in a
//! [`History`]; [`check`] finds every [`Violation`] of what bmpls promises, and [`Figures`]
//! sums the run up. Nothing here reads a clock or a socket, so a history can be judged (and
//! the checker tested) on its own.

use std::collections::{BTreeMap, BTreeSet};

/// A 32-byte hash (a transaction's or a block's).
pub type Hash = [u8; 32];

/// A submission a validator acknowledged as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The transaction.
    pub tx: Hash,
    /// The reporter (the harness's index).
    pub reporter: usize,
    /// The record's sequence number.
    pub seq: u64,
    /// The height the acknowledgement named.
    pub height: u64,
    /// From the first submission to the acknowledgement.
    pub latency_ms: u64,
}

/// One block as a validator's store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockView {
    /// The block's hash (from its certificate).
    pub hash: Hash,
    /// Its transactions' hashes.
    pub txs: Vec<Hash>,
    /// Each transaction's kind (`report`, `audit`…), for reports; may be empty.
    pub kinds: Vec<&'static str>,
}

/// A validator's chain read from its store after the run, from height 1 (or after its base,
/// if it joined from a snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainView {
    /// The validator.
    pub node: usize,
    /// The height of the snapshot it joined from; 0 if it holds the chain from the genesis.
    pub base: u64,
    /// The hash of the block at its base (which it holds the header of).
    pub base_hash: Option<Hash>,
    /// Block `h` at index `h - base - 1`.
    pub blocks: Vec<BlockView>,
}

impl ChainView {
    /// The block at `height`, if held.
    fn at(&self, height: u64) -> Option<&BlockView> {
        let index = height.checked_sub(self.base + 1)?;
        self.blocks.get(usize::try_from(index).ok()?)
    }

    /// The hash of the block at `height`, if known (at the base, from its header).
    fn hash_at(&self, height: u64) -> Option<Hash> {
        match self.at(height) {
            Some(block) => Some(block.hash),
            None if height == self.base => self.base_hash,
            None => None,
        }
    }

    /// The height of its last block.
    fn tip(&self) -> u64 {
        self.base + self.blocks.len() as u64
    }
}

/// What a validator said its tip was, during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusSample {
    /// The validator.
    pub node: usize,
    /// Its height.
    pub height: u64,
    /// Its tip's hash.
    pub tip: Hash,
}

/// What became of one carer query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// The answer verified; `wrong` names a record that does not match what was reported
    /// (a wrong answer accepted), if any.
    Verified {
        /// Records in the answer.
        records: usize,
        /// The first mismatch found.
        wrong: Option<String>,
    },
    /// The node refused with a typed reason (unauthorised, failed, busy…).
    Refused(String),
    /// No validator answered in time.
    Unreachable(String),
    /// An answer came and did not verify: from an honest cluster, a bug.
    FailedVerification(String),
}

/// A heal and what followed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealRecord {
    /// The fault healed.
    pub fault: String,
    /// The highest height any validator had when the fault was healed.
    pub height_at_heal: u64,
    /// The highest acknowledged height so far.
    pub acked_height: u64,
    /// From the heal until a validator committed above `height_at_heal` (None: never, within
    /// the liveness bound).
    pub resumed_after_ms: Option<u64>,
    /// From the heal until every validator reached `acked_height` and `height_at_heal`.
    pub converged_after_ms: Option<u64>,
}

/// A validator process's resources at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceSample {
    /// The validator.
    pub node: usize,
    /// Resident memory.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub open_files: u64,
}

/// A validator process that ended without the nemesis ending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The validator.
    pub node: usize,
    /// Its exit status, as printed.
    pub status: String,
    /// Whether its disk was full then (a typed refusal to go on is expected there).
    pub disk_full: bool,
}

/// Everything a run recorded.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The seed.
    pub seed: u64,
    /// Faults injected.
    pub faults: usize,
    /// How long reporters were submitting.
    pub workload_ms: u64,
    /// Acknowledged submissions.
    pub acks: Vec<Ack>,
    /// Records that committed without their acknowledgement reaching the reporter (refused as
    /// a replay on resubmission).
    pub unacked_commits: usize,
    /// Tips seen during the run.
    pub statuses: Vec<StatusSample>,
    /// Carer queries.
    pub answers: Vec<AnswerOutcome>,
    /// Alerts delivered to the watching carer, and watch errors by kind.
    pub alerts: usize,
    /// Typed errors of the alert watch.
    pub watch_errors: Vec<String>,
    /// Validators the alert watch found misbehaving: in an honest cluster, a false accusation.
    pub watch_faults: Vec<String>,
    /// Reports refused (and resubmitted), by refusal code.
    pub refusals: BTreeMap<String, u64>,
    /// Heals.
    pub heals: Vec<HealRecord>,
    /// Chains read after the run, one per validator.
    pub chains: Vec<ChainView>,
    /// Lines of validator logs that report a panic.
    pub panics: Vec<(usize, String)>,
    /// Unexpected process exits.
    pub exits: Vec<Exit>,
    /// Resource samples.
    pub resources: Vec<ResourceSample>,
}

/// Generous bounds: crossing one means a hang or a leak, not a slow machine.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Validators the cluster has.
    pub validators: usize,
    /// Most resident memory per validator.
    pub rss_kib: u64,
    /// Most open files per validator.
    pub open_files: u64,
}

/// A broken promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged record is missing from a validator's chain.
    Lost {
        /// The record's transaction (hex prefix).
        tx: String,
        /// The validator.
        node: usize,
    },
    /// A transaction is in a chain more than once.
    Duplicated {
        /// The transaction (hex prefix).
        tx: String,
        /// Its kind.
        kind: &'static str,
        /// The validator.
        node: usize,
        /// The heights it is at.
        heights: Vec<u64>,
    },
    /// An acknowledged record is in the chain at another height than acknowledged.
    WrongHeight {
        /// The transaction (hex prefix).
        tx: String,
        /// The acknowledged height.
        acked: u64,
        /// Where it is.
        found: u64,
    },
    /// Two validators hold different blocks at one height.
    Fork {
        /// The height.
        height: u64,
    },
    /// A chain is missing (its store could not be read).
    NoChain {
        /// The validator.
        node: usize,
    },
    /// A validator's chain ends below the highest acknowledged height.
    Behind {
        /// The validator.
        node: usize,
        /// Its tip.
        tip: u64,
        /// The highest acknowledged height.
        acked: u64,
    },
    /// A carer accepted an answer that does not match what was reported.
    WrongAnswer(String),
    /// An honest cluster's answer did not verify.
    AnswerFailed(String),
    /// Commits did not resume after a heal within the liveness bound.
    NoResume {
        /// The fault.
        fault: String,
    },
    /// Validators did not catch up after a heal within the liveness bound.
    NotConverged {
        /// The fault.
        fault: String,
    },
    /// A validator panicked.
    Panicked {
        /// The validator.
        node: usize,
        /// The log line.
        line: String,
    },
    /// A validator ended on its own (other than stopping on a full disk).
    Exited(Exit),
    /// Memory over the bound.
    Memory {
        /// The validator.
        node: usize,
        /// Resident memory seen.
        rss_kib: u64,
    },
    /// Open files over the bound.
    Files {
        /// The validator.
        node: usize,
        /// Descriptors seen.
        open_files: u64,
    },
    /// The alert watch blamed an honest validator.
    WatchFault(String),
    /// Nothing was acknowledged: the run tested nothing.
    NothingAcknowledged,
}

fn short(hash: &Hash) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Every violation in `history`.
pub fn check(history: &History, bounds: &Bounds) -> Vec<Violation> {
    let mut found = Vec::new();
    if history.acks.is_empty() {
        found.push(Violation::NothingAcknowledged);
    }
    chains(history, bounds, &mut found);
    forks_seen(history, &mut found);
    for answer in &history.answers {
        match answer {
            AnswerOutcome::Verified {
                wrong: Some(why), ..
            } => found.push(Violation::WrongAnswer(why.clone())),
            AnswerOutcome::FailedVerification(why) => {
                found.push(Violation::AnswerFailed(why.clone()));
            }
            _ => {}
        }
    }
    for fault in &history.watch_faults {
        found.push(Violation::WatchFault(fault.clone()));
    }
    for heal in &history.heals {
        if heal.resumed_after_ms.is_none() {
            found.push(Violation::NoResume {
                fault: heal.fault.clone(),
            });
        }
        if heal.converged_after_ms.is_none() {
            found.push(Violation::NotConverged {
                fault: heal.fault.clone(),
            });
        }
    }
    for (node, line) in &history.panics {
        found.push(Violation::Panicked {
            node: *node,
            line: line.clone(),
        });
    }
    for exit in &history.exits {
        if !exit.disk_full {
            found.push(Violation::Exited(exit.clone()));
        }
    }
    let mut worst: BTreeMap<usize, ResourceSample> = BTreeMap::new();
    for s in &history.resources {
        let w = worst.entry(s.node).or_insert(*s);
        w.rss_kib = w.rss_kib.max(s.rss_kib);
        w.open_files = w.open_files.max(s.open_files);
    }
    for w in worst.values() {
        if w.rss_kib > bounds.rss_kib {
            found.push(Violation::Memory {
                node: w.node,
                rss_kib: w.rss_kib,
            });
        }
        if w.open_files > bounds.open_files {
            found.push(Violation::Files {
                node: w.node,
                open_files: w.open_files,
            });
        }
    }
    found
}

/// The stores after the run: one chain, and every acknowledged record on each exactly once at
/// its acknowledged height.
fn chains(history: &History, bounds: &Bounds, found: &mut Vec<Violation>) {
    for node in 0..bounds.validators {
        if !history.chains.iter().any(|c| c.node == node) {
            found.push(Violation::NoChain { node });
        }
    }
    let longest = history.chains.iter().map(ChainView::tip).max().unwrap_or(0);
    for height in 1..=longest {
        let hashes: BTreeSet<Hash> = history
            .chains
            .iter()
            .filter_map(|c| c.hash_at(height))
            .collect();
        if hashes.len() > 1 {
            found.push(Violation::Fork { height });
        }
    }
    let acked_height = history.acks.iter().map(|a| a.height).max().unwrap_or(0);
    // What some chain holds in a block: an acknowledgement below a snapshot's base is excused
    // on that chain only if another holds it.
    let held: BTreeSet<Hash> = history
        .chains
        .iter()
        .flat_map(|c| c.blocks.iter().flat_map(|b| b.txs.iter().copied()))
        .collect();
    for chain in &history.chains {
        let tip = chain.tip();
        if tip < acked_height {
            found.push(Violation::Behind {
                node: chain.node,
                tip,
                acked: acked_height,
            });
        }
        let mut at: BTreeMap<Hash, Vec<u64>> = BTreeMap::new();
        let mut kinds: BTreeMap<Hash, &'static str> = BTreeMap::new();
        for (i, block) in chain.blocks.iter().enumerate() {
            for (k, tx) in block.txs.iter().enumerate() {
                at.entry(*tx).or_default().push(chain.base + i as u64 + 1);
                kinds.insert(*tx, block.kinds.get(k).copied().unwrap_or("?"));
            }
        }
        for (tx, heights) in &at {
            if heights.len() > 1 {
                found.push(Violation::Duplicated {
                    tx: short(tx),
                    kind: kinds.get(tx).copied().unwrap_or("?"),
                    node: chain.node,
                    heights: heights.clone(),
                });
            }
        }
        for ack in &history.acks {
            match at.get(&ack.tx).map(Vec::as_slice) {
                // A chain that ends below the acknowledged height is `Behind` (said above),
                // not a loss: the record is after its end.
                None if ack.height > tip => {}
                // Before a snapshot's base: in the state a third of the voting power vouched
                // for, not in a block this validator holds.
                None if ack.height <= chain.base && held.contains(&ack.tx) => {}
                None => found.push(Violation::Lost {
                    tx: short(&ack.tx),
                    node: chain.node,
                }),
                Some([height]) if *height != ack.height => found.push(Violation::WrongHeight {
                    tx: short(&ack.tx),
                    acked: ack.height,
                    found: *height,
                }),
                Some(_) => {}
            }
        }
    }
}

/// Tips reported during the run: one hash per height.
fn forks_seen(history: &History, found: &mut Vec<Violation>) {
    let mut tips: BTreeMap<u64, BTreeSet<Hash>> = BTreeMap::new();
    for s in &history.statuses {
        if s.height > 0 {
            tips.entry(s.height).or_default().insert(s.tip);
        }
    }
    let chain_forks: BTreeSet<u64> = found
        .iter()
        .filter_map(|v| match v {
            Violation::Fork { height } => Some(*height),
            _ => None,
        })
        .collect();
    for (height, hashes) in tips {
        if hashes.len() > 1 && !chain_forks.contains(&height) {
            found.push(Violation::Fork { height });
        }
    }
}

/// The run in numbers, as Jepsen and CometBFT's QA report them.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// Faults injected.
    pub faults: usize,
    /// Acknowledged records.
    pub acked: usize,
    /// Acknowledged records missing from some chain.
    pub lost: usize,
    /// Heights at which validators disagree.
    pub forks: usize,
    /// Blocks in the longest chain.
    pub height: u64,
    /// Worst time from a heal to the next commit.
    pub worst_resume_ms: u64,
    /// Worst time from a heal until every validator caught up.
    pub worst_converge_ms: u64,
    /// Acknowledged records per second of workload.
    pub throughput_per_s: f64,
    /// Submission-to-acknowledgement latency, median.
    pub latency_p50_ms: u64,
    /// … and 99th percentile.
    pub latency_p99_ms: u64,
    /// Carer answers verified / refused with a typed error / unreachable.
    pub answers: (usize, usize, usize),
    /// Alerts delivered.
    pub alerts: usize,
    /// Most resident memory of a validator.
    pub max_rss_kib: u64,
    /// Most open files of a validator.
    pub max_open_files: u64,
}

/// The `q` quantile (0 to 1) of sorted `values`.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Figures {
    /// Sums up `history`, given the violations found in it.
    pub fn of(history: &History, violations: &[Violation]) -> Self {
        let mut latencies: Vec<u64> = history.acks.iter().map(|a| a.latency_ms).collect();
        latencies.sort_unstable();
        let lost: BTreeSet<&str> = violations
            .iter()
            .filter_map(|v| match v {
                Violation::Lost { tx, .. } => Some(tx.as_str()),
                _ => None,
            })
            .collect();
        let forks = violations
            .iter()
            .filter(|v| matches!(v, Violation::Fork { .. }))
            .count();
        let count = |f: fn(&AnswerOutcome) -> bool| history.answers.iter().filter(|a| f(a)).count();
        Self {
            faults: history.faults,
            acked: history.acks.len(),
            lost: lost.len(),
            forks,
            height: history
                .chains
                .iter()
                .map(|c| c.blocks.len() as u64)
                .max()
                .unwrap_or(0),
            worst_resume_ms: history
                .heals
                .iter()
                .filter_map(|h| h.resumed_after_ms)
                .max()
                .unwrap_or(0),
            worst_converge_ms: history
                .heals
                .iter()
                .filter_map(|h| h.converged_after_ms)
                .max()
                .unwrap_or(0),
            throughput_per_s: history.acks.len() as f64 * 1000.0
                / history.workload_ms.max(1) as f64,
            latency_p50_ms: quantile(&latencies, 0.5),
            latency_p99_ms: quantile(&latencies, 0.99),
            answers: (
                count(|a| matches!(a, AnswerOutcome::Verified { .. })),
                count(|a| matches!(a, AnswerOutcome::Refused(_))),
                count(|a| matches!(a, AnswerOutcome::Unreachable(_))),
            ),
            alerts: history.alerts,
            max_rss_kib: history
                .resources
                .iter()
                .map(|r| r.rss_kib)
                .max()
                .unwrap_or(0),
            max_open_files: history
                .resources
                .iter()
                .map(|r| r.open_files)
                .max()
                .unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "faults {} | acked {} | lost {} | forks {} | height {} | worst resume {} ms | \
             worst catch-up {} ms | {:.1} records/s | ack latency p50 {} ms p99 {} ms | \
             answers verified {} refused {} unreachable {} | alerts {} | max rss {} KiB | \
             max open files {}",
            self.faults,
            self.acked,
            self.lost,
            self.forks,
            self.height,
            self.worst_resume_ms,
            self.worst_converge_ms,
            self.throughput_per_s,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.answers.0,
            self.answers.1,
            self.answers.2,
            self.alerts,
            self.max_rss_kib,
            self.max_open_files
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        validators: 2,
        rss_kib: 1_000_000,
        open_files: 1_000,
    };

    fn h(byte: u8) -> Hash {
        [byte; 32]
    }

    fn block(hash: u8, txs: &[u8]) -> BlockView {
        BlockView {
            hash: h(hash),
            txs: txs.iter().map(|&t| h(t)).collect(),
            kinds: Vec::new(),
        }
    }

    fn ack(tx: u8, height: u64) -> Ack {
        Ack {
            tx: h(tx),
            reporter: 0,
            seq: u64::from(tx),
            height,
            latency_ms: 10 * u64::from(tx),
        }
    }

    /// Two validators holding `a` and `b`, with `acks`.
    fn history(a: Vec<BlockView>, b: Vec<BlockView>, acks: Vec<Ack>) -> History {
        History {
            acks,
            chains: vec![
                ChainView {
                    node: 0,
                    base: 0,
                    base_hash: None,
                    blocks: a,
                },
                ChainView {
                    node: 1,
                    base: 0,
                    base_hash: None,
                    blocks: b,
                },
            ],
            ..History::default()
        }
    }

    fn check_is(history: &History, expected: &[Violation]) {
        assert_eq!(check(history, &BOUNDS), expected);
    }

    fn chain() -> Vec<BlockView> {
        vec![block(1, &[10, 11]), block(2, &[]), block(3, &[12])]
    }

    #[test]
    fn one_chain_holding_every_acknowledged_record_once_passes() {
        let acks = vec![ack(10, 1), ack(11, 1), ack(12, 3)];
        check_is(&history(chain(), chain(), acks.clone()), &[]);
        // A validator further ahead is not a fork.
        let mut longer = chain();
        longer.push(block(4, &[13]));
        check_is(&history(chain(), longer, acks), &[]);
    }

    #[test]
    fn a_chain_from_a_snapshot_is_checked_from_its_base_on() {
        // Node 1 joined from a snapshot after block 2: it holds block 3 only.
        let mut h = history(chain(), chain()[2..].to_vec(), vec![ack(10, 1), ack(12, 3)]);
        h.chains[1].base = 2;
        h.chains[1].base_hash = Some([2; 32]);
        check_is(&h, &[]);
        // Its base block is the others' block at that height.
        h.chains[1].base_hash = Some([8; 32]);
        check_is(&h, &[Violation::Fork { height: 2 }]);
        h.chains[1].base_hash = Some([2; 32]);
        // A record acknowledged below every chain's base is checked nowhere: lost.
        let mut all_based = h.clone();
        all_based.chains[0].base = 2;
        all_based.chains[0].base_hash = Some([2; 32]);
        all_based.chains[0].blocks.drain(..2);
        check_is(
            &all_based,
            &[
                Violation::Lost {
                    tx: short(&[10; 32]),
                    node: 0,
                },
                Violation::Lost {
                    tx: short(&[10; 32]),
                    node: 1,
                },
            ],
        );
        // Its block 3 must still be everyone's block 3, and hold what was acknowledged there.
        h.chains[1].blocks[0].hash = [9; 32];
        check_is(&h, &[Violation::Fork { height: 3 }]);
        h.chains[1].blocks[0] = block(3, &[]);
        check_is(
            &h,
            &[Violation::Lost {
                tx: short(&[12; 32]),
                node: 1,
            }],
        );
    }

    #[test]
    fn a_lost_duplicated_or_moved_record_is_found() {
        let mut lost = chain();
        lost[2].txs.clear();
        check_is(
            &history(chain(), lost, vec![ack(12, 3)]),
            &[Violation::Lost {
                tx: short(&h(12)),
                node: 1,
            }],
        );
        let mut twice = chain();
        twice[1].txs.push(h(10));
        check_is(
            &history(twice.clone(), twice, vec![ack(10, 1)]),
            &[
                Violation::Duplicated {
                    tx: short(&h(10)),
                    kind: "?",
                    node: 0,
                    heights: vec![1, 2],
                },
                Violation::Duplicated {
                    tx: short(&h(10)),
                    kind: "?",
                    node: 1,
                    heights: vec![1, 2],
                },
            ],
        );
        check_is(
            &history(chain(), chain(), vec![ack(12, 2)]),
            &[
                Violation::WrongHeight {
                    tx: short(&h(12)),
                    acked: 2,
                    found: 3,
                },
                Violation::WrongHeight {
                    tx: short(&h(12)),
                    acked: 2,
                    found: 3,
                },
            ],
        );
    }

    #[test]
    fn a_fork_in_the_stores_or_in_reported_tips_is_found() {
        let mut other = chain();
        other[1].hash = h(9);
        check_is(
            &history(chain(), other, vec![ack(10, 1)]),
            &[Violation::Fork { height: 2 }],
        );
        let mut seen = history(chain(), chain(), vec![ack(10, 1)]);
        seen.statuses = vec![
            StatusSample {
                node: 0,
                height: 5,
                tip: h(5),
            },
            StatusSample {
                node: 1,
                height: 5,
                tip: h(6),
            },
            StatusSample {
                node: 1,
                height: 6,
                tip: h(6),
            },
        ];
        check_is(&seen, &[Violation::Fork { height: 5 }]);
    }

    #[test]
    fn a_validator_behind_or_unread_is_found() {
        check_is(
            &history(chain(), chain()[..1].to_vec(), vec![ack(12, 3)]),
            &[Violation::Behind {
                node: 1,
                tip: 1,
                acked: 3,
            }],
        );
        let mut one = history(chain(), chain(), vec![ack(10, 1)]);
        one.chains.pop();
        check_is(&one, &[Violation::NoChain { node: 1 }]);
        check_is(
            &history(chain(), chain(), Vec::new()),
            &[Violation::NothingAcknowledged],
        );
    }

    #[test]
    fn wrong_answers_hangs_panics_and_leaks_are_found() {
        let mut run = history(chain(), chain(), vec![ack(10, 1)]);
        run.answers = vec![
            AnswerOutcome::Verified {
                records: 3,
                wrong: None,
            },
            AnswerOutcome::Refused("unauthorised".into()),
            AnswerOutcome::Unreachable("timeout".into()),
            AnswerOutcome::Verified {
                records: 1,
                wrong: Some("seq 4 in the wrong cell".into()),
            },
            AnswerOutcome::FailedVerification("bad proof".into()),
        ];
        run.heals = vec![
            HealRecord {
                fault: "ok".into(),
                height_at_heal: 3,
                acked_height: 3,
                resumed_after_ms: Some(100),
                converged_after_ms: Some(200),
            },
            HealRecord {
                fault: "hang".into(),
                height_at_heal: 3,
                acked_height: 3,
                resumed_after_ms: None,
                converged_after_ms: None,
            },
        ];
        run.panics = vec![(1, "thread 'main' panicked at x.rs:1".into())];
        run.exits = vec![
            Exit {
                node: 0,
                status: "exit status: 1".into(),
                disk_full: true,
            },
            Exit {
                node: 1,
                status: "exit status: 1".into(),
                disk_full: false,
            },
        ];
        run.resources = vec![
            ResourceSample {
                node: 0,
                rss_kib: 2_000_000,
                open_files: 10,
            },
            ResourceSample {
                node: 1,
                rss_kib: 10,
                open_files: 5_000,
            },
        ];
        check_is(
            &run,
            &[
                Violation::WrongAnswer("seq 4 in the wrong cell".into()),
                Violation::AnswerFailed("bad proof".into()),
                Violation::NoResume {
                    fault: "hang".into(),
                },
                Violation::NotConverged {
                    fault: "hang".into(),
                },
                Violation::Panicked {
                    node: 1,
                    line: "thread 'main' panicked at x.rs:1".into(),
                },
                Violation::Exited(run.exits[1].clone()),
                Violation::Memory {
                    node: 0,
                    rss_kib: 2_000_000,
                },
                Violation::Files {
                    node: 1,
                    open_files: 5_000,
                },
            ],
        );
        let figures = Figures::of(&run, &check(&run, &BOUNDS));
        assert_eq!(figures.answers, (2, 1, 1));
        assert_eq!(figures.worst_resume_ms, 100);
        assert_eq!(figures.lost, 0);
    }

    #[test]
    fn figures_count_losses_once_and_take_latency_quantiles() {
        let acks: Vec<Ack> = (1..=100).map(|t| ack(t, 1)).collect();
        let mut run = history(
            vec![block(1, &(1..=99).collect::<Vec<_>>())],
            vec![block(1, &(1..=99).collect::<Vec<_>>())],
            acks,
        );
        run.workload_ms = 10_000;
        let figures = Figures::of(&run, &check(&run, &BOUNDS));
        assert_eq!(figures.acked, 100);
        assert_eq!(figures.lost, 1, "one record, missing on two validators");
        assert_eq!(figures.latency_p50_ms, 500);
        assert_eq!(figures.latency_p99_ms, 990);
        assert!((figures.throughput_per_s - 10.0).abs() < 1e-9);
    }
}
