//! Real faults for bmpls, outside the simulator: validators run as separate processes, each in
//! its own network namespace on a bridge, and reach each other only through UDP relays in the
//! harness that delay, jitter, lose, duplicate and reorder packets (QUIC is UDP; these kernels
//! have no `netem`). A seeded nemesis ([`schedule`]) kills and restarts validators, pauses them,
//! partitions the network, skews one validator's clock (libfaketime), fills one validator's
//! disk and cuts the tail of a crashed validator's consensus log, while reporters submit,
//! carers query and a carer watches alerts. The [`checker`] then judges the recorded
//! [`checker::History`]: every acknowledged record on every validator's chain exactly once,
//! one chain, every carer answer verified or refused with a typed error, commits resuming
//! after every heal, no panic, bounded memory and open files.
//!
//! The pure parts ([`schedule`], [`checker`]) are unit-tested; [`run`] needs root (network
//! namespaces, tmpfs mounts) and says so with [`NetError::NotRoot`].

#![forbid(unsafe_code)]

pub mod checker;
pub mod cluster;
pub mod netns;
pub mod relay;
pub mod run;
pub mod schedule;
pub mod workload;

pub use checker::{Bounds, Figures, History, Violation, check};
pub use netns::NetError;
pub use run::{NodeCommand, Options, Outcome, run};
pub use schedule::{Fault, Partition, Schedule, Step};
