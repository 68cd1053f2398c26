//! The nemesis's plan, pure: from a seed, the faults to inject, in order, with how long each is
//! held before it is healed. The same seed and cluster size give the same plan
//! (`BMPLS_NEMESIS_SEED` replays a run); what the network does packet by packet is not replayed,
//! since it depends on timing.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the network is cut. Validators are numbered from 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// `minority` (at most `f` validators) on one side, everyone else on the other: the
    /// majority keeps committing.
    MajorityMinority {
        /// The smaller side.
        minority: Vec<usize>,
    },
    /// Two halves (the odd one out on the second side): neither holds a quorum.
    Halves {
        /// The first half.
        first: Vec<usize>,
    },
    /// Each validator reaches only its two neighbours in `order`.
    Ring {
        /// The ring, a permutation of the validators.
        order: Vec<usize>,
    },
    /// One validator reaches nobody.
    Isolated(usize),
}

impl Partition {
    /// Whether the link between validators `a` and `b` is cut (symmetric).
    pub fn cuts(&self, a: usize, b: usize) -> bool {
        if a == b {
            return false;
        }
        match self {
            Self::MajorityMinority { minority: side } | Self::Halves { first: side } => {
                side.contains(&a) != side.contains(&b)
            }
            Self::Ring { order } => {
                let n = order.len();
                let at = |v: usize| order.iter().position(|&x| x == v);
                match (at(a), at(b)) {
                    (Some(i), Some(j)) => {
                        let d = i.abs_diff(j);
                        d != 1 && d != n - 1
                    }
                    _ => true,
                }
            }
            Self::Isolated(v) => a == *v || b == *v,
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        match self {
            Self::MajorityMinority { minority } => format!("partition minority {minority:?}"),
            Self::Halves { first } => format!("partition halves {first:?}"),
            Self::Ring { order } => format!("partition ring {order:?}"),
            Self::Isolated(v) => format!("partition isolating {v}"),
        }
    }
}

/// One fault, as injected; its heal is implied (see each variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of these validators (at most `f`); restarted at heal.
    Kill(Vec<usize>),
    /// `SIGSTOP` of these validators (at most `f`); `SIGCONT` at heal.
    Pause(Vec<usize>),
    /// The network is cut so; restored at heal.
    Partition(Partition),
    /// The validator is restarted with its clock off by `offset_ms`; restarted with the true
    /// clock at heal.
    ClockSkew {
        /// Which validator.
        node: usize,
        /// Its clock minus the true time.
        offset_ms: i64,
    },
    /// The validator's data directory fills up; space is freed at heal (and the validator
    /// restarted if it stopped).
    FullDisk(usize),
    /// `kill -9`, then the last `cut_bytes` of the consensus log's largest file are cut off (a
    /// torn write); restarted at heal.
    TruncatedWal {
        /// Which validator.
        node: usize,
        /// Bytes cut from the end.
        cut_bytes: u64,
    },
    /// `kill -9`, then the validator's data directory (store and consensus log) is emptied; at
    /// heal it starts again joining from a snapshot its peers offer (`join_from_snapshot`).
    Wipe(usize),
}

impl Fault {
    /// A short name for reports.
    pub fn name(&self) -> String {
        match self {
            Self::Kill(v) => format!("kill -9 {v:?}"),
            Self::Pause(v) => format!("pause {v:?}"),
            Self::Partition(p) => p.name(),
            Self::ClockSkew { node, offset_ms } => format!("clock of {node} off by {offset_ms} ms"),
            Self::FullDisk(v) => format!("full disk on {v}"),
            Self::TruncatedWal { node, cut_bytes } => {
                format!("kill -9 {node} and cut {cut_bytes} bytes off its WAL")
            }
            Self::Wipe(node) => format!("kill -9 {node}, wipe its disk, join from a snapshot"),
        }
    }
}

/// A fault and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What is done.
    pub fault: Fault,
    /// How long it is held before the heal.
    pub hold_ms: u64,
}

/// Limits of a generated plan.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Shortest hold.
    pub hold_min_ms: u64,
    /// Longest hold.
    pub hold_max_ms: u64,
    /// The cluster's `max_clock_drift_ms`: skews are drawn below and above it.
    pub max_clock_drift_ms: u64,
}

/// A run's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it came from.
    pub seed: u64,
    /// Cluster size.
    pub n: usize,
    /// The faults, in order.
    pub steps: Vec<Step>,
}

/// Faults a cluster of `n` tolerates (`n = 3f + 1` or more).
pub fn tolerated(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The kinds of fault, so that a short plan has each once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Kill,
    Pause,
    Minority,
    Halves,
    Ring,
    Isolated,
    SkewBelow,
    SkewAbove,
    FullDisk,
    TruncatedWal,
    Wipe,
}

const KINDS: [Kind; 11] = [
    Kind::Kill,
    Kind::Pause,
    Kind::Minority,
    Kind::Halves,
    Kind::Ring,
    Kind::Isolated,
    Kind::SkewBelow,
    Kind::SkewAbove,
    Kind::FullDisk,
    Kind::TruncatedWal,
    Kind::Wipe,
];

impl Schedule {
    /// Every kind of fault once, in a seeded order with seeded victims: the CI run.
    pub fn short(seed: u64, n: usize, timing: Timing) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut kinds = KINDS.to_vec();
        kinds.shuffle(&mut rng);
        let steps = kinds
            .into_iter()
            .map(|k| step(k, n, timing, &mut rng))
            .collect();
        Self { seed, n, steps }
    }

    /// `count` faults of seeded kinds: the soak.
    pub fn soak(seed: u64, n: usize, count: usize, timing: Timing) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let steps = (0..count)
            .map(|_| {
                let kind = KINDS[rng.gen_range(0..KINDS.len())];
                step(kind, n, timing, &mut rng)
            })
            .collect();
        Self { seed, n, steps }
    }
}

fn some_nodes(n: usize, most: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    let count = rng.gen_range(1..=most.max(1));
    let mut chosen = all[..count].to_vec();
    chosen.sort_unstable();
    chosen
}

fn step(kind: Kind, n: usize, timing: Timing, rng: &mut ChaCha8Rng) -> Step {
    let f = tolerated(n);
    let node = rng.gen_range(0..n);
    let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
    let drift = timing.max_clock_drift_ms as i64;
    let fault = match kind {
        Kind::Kill => Fault::Kill(some_nodes(n, f, rng)),
        Kind::Pause => Fault::Pause(some_nodes(n, f, rng)),
        Kind::Minority => Fault::Partition(Partition::MajorityMinority {
            minority: some_nodes(n, f, rng),
        }),
        Kind::Halves => {
            let mut all: Vec<usize> = (0..n).collect();
            all.shuffle(rng);
            let mut first = all[..n / 2].to_vec();
            first.sort_unstable();
            Fault::Partition(Partition::Halves { first })
        }
        Kind::Ring => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            Fault::Partition(Partition::Ring { order })
        }
        Kind::Isolated => Fault::Partition(Partition::Isolated(node)),
        // Well inside the allowed drift (a tenth to a half of it)…
        Kind::SkewBelow => Fault::ClockSkew {
            node,
            offset_ms: sign * rng.gen_range(drift / 10..=drift / 2),
        },
        // …and well outside it (one and a half to three times).
        Kind::SkewAbove => Fault::ClockSkew {
            node,
            offset_ms: sign * rng.gen_range(drift * 3 / 2..=drift * 3),
        },
        Kind::FullDisk => Fault::FullDisk(node),
        Kind::TruncatedWal => Fault::TruncatedWal {
            node,
            cut_bytes: rng.gen_range(1..=8192),
        },
        Kind::Wipe => Fault::Wipe(node),
    };
    Step {
        fault,
        hold_ms: rng.gen_range(timing.hold_min_ms..=timing.hold_max_ms.max(timing.hold_min_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        hold_min_ms: 2_000,
        hold_max_ms: 6_000,
        max_clock_drift_ms: 5_000,
    };

    /// Validators a fault takes out of the network (killed, paused or cut off from a quorum).
    fn taken_out(fault: &Fault, n: usize) -> Vec<usize> {
        match fault {
            Fault::Kill(v) | Fault::Pause(v) => v.clone(),
            Fault::Partition(Partition::MajorityMinority { minority }) => minority.clone(),
            Fault::Partition(Partition::Isolated(v)) => vec![*v],
            Fault::ClockSkew { node, .. }
            | Fault::FullDisk(node)
            | Fault::TruncatedWal { node, .. }
            | Fault::Wipe(node) => vec![*node],
            Fault::Partition(_) => (0..n).collect(),
        }
    }

    #[test]
    fn a_seed_replays_its_plan_and_another_seed_differs() {
        for n in [4, 7] {
            assert_eq!(Schedule::short(7, n, TIMING), Schedule::short(7, n, TIMING));
            assert_eq!(
                Schedule::soak(7, n, 50, TIMING),
                Schedule::soak(7, n, 50, TIMING)
            );
            assert_ne!(Schedule::short(7, n, TIMING), Schedule::short(8, n, TIMING));
            assert_ne!(
                Schedule::soak(7, n, 50, TIMING),
                Schedule::soak(8, n, 50, TIMING)
            );
        }
    }

    #[test]
    fn a_short_plan_has_every_kind_of_fault_once() {
        for seed in 0..50 {
            let plan = Schedule::short(seed, 4, TIMING);
            let kinds: Vec<&str> = plan
                .steps
                .iter()
                .map(|s| match &s.fault {
                    Fault::Kill(_) => "kill",
                    Fault::Pause(_) => "pause",
                    Fault::Partition(Partition::MajorityMinority { .. }) => "minority",
                    Fault::Partition(Partition::Halves { .. }) => "halves",
                    Fault::Partition(Partition::Ring { .. }) => "ring",
                    Fault::Partition(Partition::Isolated(_)) => "isolated",
                    Fault::ClockSkew { offset_ms, .. } if offset_ms.unsigned_abs() < 5_000 => {
                        "skew below"
                    }
                    Fault::ClockSkew { .. } => "skew above",
                    Fault::FullDisk(_) => "disk",
                    Fault::TruncatedWal { .. } => "wal",
                    Fault::Wipe(_) => "wipe",
                })
                .collect();
            let mut sorted = kinds.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 11, "seed {seed}: {kinds:?}");
            assert_eq!(kinds.len(), 11);
        }
    }

    #[test]
    fn crash_faults_never_take_more_than_f_validators() {
        for n in [4, 7, 10] {
            let f = tolerated(n);
            for step in Schedule::soak(3, n, 500, TIMING).steps {
                let out = taken_out(&step.fault, n);
                let whole_network = matches!(
                    step.fault,
                    Fault::Partition(Partition::Halves { .. } | Partition::Ring { .. })
                );
                if !whole_network {
                    assert!(!out.is_empty() && out.len() <= f, "{n}: {:?}", step.fault);
                }
                assert!(out.iter().all(|&v| v < n));
                assert!((TIMING.hold_min_ms..=TIMING.hold_max_ms).contains(&step.hold_ms));
            }
        }
    }

    #[test]
    fn skews_fall_below_and_above_the_allowed_drift() {
        let plan = Schedule::soak(11, 4, 400, TIMING);
        let skews: Vec<u64> = plan
            .steps
            .iter()
            .filter_map(|s| match s.fault {
                Fault::ClockSkew { offset_ms, .. } => Some(offset_ms.unsigned_abs()),
                _ => None,
            })
            .collect();
        assert!(skews.iter().any(|&s| s <= 2_500));
        assert!(skews.iter().any(|&s| s >= 7_500));
        assert!(skews.iter().all(|&s| !(2_501..7_500).contains(&s)));
    }

    fn check(partition: Partition, n: usize, cut: &[(usize, usize)]) {
        for a in 0..n {
            for b in 0..n {
                let want = cut.contains(&(a.min(b), a.max(b)));
                assert_eq!(partition.cuts(a, b), want, "{partition:?}: {a}-{b}");
            }
        }
    }

    #[test]
    fn partitions_cut_the_links_they_name() {
        check(Partition::Isolated(2), 4, &[(0, 2), (1, 2), (2, 3)]);
        check(
            Partition::MajorityMinority { minority: vec![3] },
            4,
            &[(0, 3), (1, 3), (2, 3)],
        );
        check(
            Partition::Halves { first: vec![0, 2] },
            4,
            &[(0, 1), (0, 3), (1, 2), (2, 3)],
        );
        // Ring 0-2-1-3-0: the chords 0-1 and 2-3 are cut.
        check(
            Partition::Ring {
                order: vec![0, 2, 1, 3],
            },
            4,
            &[(0, 1), (2, 3)],
        );
    }
}
