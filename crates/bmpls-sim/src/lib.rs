//! A deterministic simulator of bmpls validators: `n` consensus engines in one process over a
//! seeded virtual network (drop, delay, duplicate, reorder, partition and heal) and a virtual
//! clock, with crashes that restart from the write-ahead log and byzantine validators
//! (equivocation, invalid blocks, bad signatures, votes for unknown blocks, silence).
//!
//! After every event it checks:
//! - **agreement**: no two honest validators commit different blocks at one height;
//! - **validity**: every committed block carries a quorum certificate that verifies and passes
//!   the ledger's rules (signatures, enrolment, sequence numbers);
//! - **no double signing**: no honest validator signs two different votes or proposals for one
//!   height, round and step, across restarts;
//! - **liveness**: once the last fault has healed, every honest validator reaches the target
//!   height within the scenario's bound.
//!
//! A failure names its seed and the command that replays it.

#![forbid(unsafe_code)]

mod byzantine;
mod scenario;
mod sim;
mod workload;

pub use byzantine::{Fault, tamper};
pub use scenario::{Action, NetworkFaults, Scenario};
pub use sim::{MAX_EVENTS, Outcome, PAST_HEAL, SimFailure, run, sim_params};
