//! Scenarios: who is faulty, how the network behaves, and what happens when. Named scenarios
//! read as topologies (`n4f1_crash`); [`Scenario::random`] draws one from a seed for sweeps.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::byzantine::Fault;

/// How the network treats each message.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkFaults {
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message arrives twice.
    pub duplicate: f64,
    /// Least delay.
    pub min_delay_ms: u64,
    /// Greatest delay (messages overtake each other within the spread).
    pub max_delay_ms: u64,
}

impl NetworkFaults {
    /// A healthy network: 1–20 ms, nothing lost.
    pub fn good() -> Self {
        Self {
            drop: 0.0,
            duplicate: 0.0,
            min_delay_ms: 1,
            max_delay_ms: 20,
        }
    }
}

/// Something that happens to the cluster at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A validator stops (its log and committed blocks survive).
    Crash(usize),
    /// A crashed validator starts again from its log and blocks.
    Restart(usize),
    /// Every validator stops.
    CrashAll,
    /// Every crashed validator starts again.
    RestartAll,
    /// Only validators in the same group hear each other.
    Partition(Vec<Vec<usize>>),
    /// The partition ends.
    Heal,
}

/// A simulated run's set-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Name, as tests and the replay command know it.
    pub name: String,
    /// Number of validators (equal power).
    pub validators: usize,
    /// Byzantine validators and their fault.
    pub byzantine: Vec<(usize, Fault)>,
    /// Network behaviour.
    pub network: NetworkFaults,
    /// Timed actions, in ms of virtual time.
    pub actions: Vec<(u64, Action)>,
    /// Patients enrolled at the start.
    pub patients: usize,
    /// A report is submitted this often (0: none).
    pub report_every_ms: u64,
    /// Height every honest validator must reach.
    pub target_height: u64,
    /// Time after the last action within which the target must be reached.
    pub liveness_bound_ms: u64,
    /// Whether the chain must progress (false when more than f validators are faulty).
    pub expect_progress: bool,
}

impl Scenario {
    fn base(name: &str, validators: usize) -> Self {
        Self {
            name: name.to_string(),
            validators,
            byzantine: Vec::new(),
            network: NetworkFaults::good(),
            actions: Vec::new(),
            patients: 3,
            report_every_ms: 50,
            target_height: 10,
            liveness_bound_ms: 60_000,
            expect_progress: true,
        }
    }

    /// The named scenarios.
    pub fn named(name: &str) -> Option<Self> {
        let mut s = Self::base(name, 4);
        match name {
            "n4f0" => {}
            "n4f1_crash" => s.actions = vec![(500, Action::Crash(1)), (5_000, Action::Restart(1))],
            "n4f1_leader_crash" => {
                // Validator 0 proposes first; it goes down mid-height and stays down a while.
                s.actions = vec![(1, Action::Crash(0)), (8_000, Action::Restart(0))];
            }
            "n4f1_byzantine" => s.byzantine = vec![(2, Fault::Equivocate)],
            "n4f1_invalid_blocks" => s.byzantine = vec![(1, Fault::InvalidBlocks)],
            "n4f1_bad_signatures" => s.byzantine = vec![(3, Fault::BadSignatures)],
            "n4f1_unknown_block_votes" => s.byzantine = vec![(0, Fault::UnknownBlockVotes)],
            "n4f1_silent" => s.byzantine = vec![(2, Fault::Silent)],
            "n4f1_partition_heal" => {
                s.actions = vec![
                    (300, Action::Partition(vec![vec![0, 1], vec![2, 3]])),
                    (4_000, Action::Heal),
                ];
            }
            "n4_lossy" => {
                s.network = NetworkFaults {
                    drop: 0.2,
                    duplicate: 0.2,
                    min_delay_ms: 1,
                    max_delay_ms: 200,
                };
            }
            "n4_restart_all" => {
                s.actions = vec![(700, Action::CrashAll), (2_000, Action::RestartAll)];
            }
            "n7f2" => {
                s = Self::base(name, 7);
                s.byzantine = vec![(1, Fault::Equivocate), (4, Fault::InvalidBlocks)];
            }
            "n7f2_crash_and_byzantine" => {
                s = Self::base(name, 7);
                s.byzantine = vec![(6, Fault::UnknownBlockVotes)];
                s.actions = vec![(400, Action::Crash(2)), (6_000, Action::Restart(2))];
            }
            "n4f2_stalls" => {
                // Two of four down: more than f. The chain must stop, and never fork.
                s.actions = vec![(600, Action::Crash(1)), (600, Action::Crash(2))];
                s.liveness_bound_ms = 10_000;
                s.expect_progress = false;
            }
            _ => return None,
        }
        Some(s)
    }

    /// Names accepted by [`Scenario::named`].
    pub const NAMES: &'static [&'static str] = &[
        "n4f0",
        "n4f1_crash",
        "n4f1_leader_crash",
        "n4f1_byzantine",
        "n4f1_invalid_blocks",
        "n4f1_bad_signatures",
        "n4f1_unknown_block_votes",
        "n4f1_silent",
        "n4f1_partition_heal",
        "n4_lossy",
        "n4_restart_all",
        "n7f2",
        "n7f2_crash_and_byzantine",
        "n4f2_stalls",
    ];

    /// A scenario drawn from `seed`: 4 or 7 validators, up to f of them byzantine or crashing
    /// and restarting, a lossy, duplicating, reordering network, perhaps a partition that heals.
    pub fn random(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed);
        let n = if rng.gen_bool(0.75) { 4 } else { 7 };
        let f = (n - 1) / 3;
        let mut s = Self::base("random", n);
        s.target_height = 5;
        s.network = NetworkFaults {
            drop: rng.gen_range(0.0..0.1),
            duplicate: rng.gen_range(0.0..0.1),
            min_delay_ms: 1,
            max_delay_ms: rng.gen_range(2..150),
        };
        let mut nodes: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            nodes.swap(i, rng.gen_range(0..=i));
        }
        let faulty = rng.gen_range(0..=f);
        for &node in nodes.iter().take(faulty) {
            if rng.gen_bool(0.4) {
                let down = rng.gen_range(0..3_000);
                let up = down + rng.gen_range(100..5_000);
                s.actions.push((down, Action::Crash(node)));
                s.actions.push((up, Action::Restart(node)));
            } else {
                let fault = [
                    Fault::Equivocate,
                    Fault::InvalidBlocks,
                    Fault::BadSignatures,
                    Fault::UnknownBlockVotes,
                    Fault::Silent,
                ][rng.gen_range(0..5)];
                s.byzantine.push((node, fault));
            }
        }
        if rng.gen_bool(0.3) {
            let cut = rng.gen_range(1..n);
            let from = rng.gen_range(0..2_000);
            s.actions.push((
                from,
                Action::Partition(vec![nodes[..cut].to_vec(), nodes[cut..].to_vec()]),
            ));
            s.actions
                .push((from + rng.gen_range(100..4_000), Action::Heal));
        }
        if faulty == 0 && rng.gen_bool(0.1) {
            let at = rng.gen_range(0..2_000);
            s.actions.push((at, Action::CrashAll));
            s.actions
                .push((at + rng.gen_range(10..2_000), Action::RestartAll));
        }
        s
    }
}
