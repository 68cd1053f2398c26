//! Tendermint BFT for bmpls, hosted on the malachite core crates.
//!
//! Malachite's `core-consensus` is a pure state machine: it takes inputs (messages, timeouts)
//! and yields effects (sign this, publish that, schedule a timer, decide). This crate supplies
//! our context types ([`context`]), what every signature covers ([`signing`]), the replicated
//! state and block rules ([`ledger`]), the bounded [`mempool`], genesis and parameters
//! ([`config`]), the wire and log encodings ([`message`]), the write-ahead log trait ([`wal`]),
//! and [`Engine`], which answers malachite's effects and hands the rest to its host as
//! [`Output`]s. No I/O and no clock: the host passes the time in.
//!
//! Safety needs at most `f` byzantine validators of `3f + 1` (by voting power). With `f + 1` or
//! more, the protocol can stop deciding, and with more than a third byzantine no BFT protocol can
//! prevent a fork; the simulator (`bmpls-sim`) checks agreement only within the bound.

#![forbid(unsafe_code)]

pub mod config;
pub mod context;
mod effects;
mod engine;
pub mod ledger;
pub mod mempool;
pub mod message;
mod replay;
pub mod signing;
pub mod wal;

pub use config::{ConfigError, ConsensusParams, Genesis, Timeouts};
pub use context::{Address, Ctx, Height, Proposal, ProposedBlock, ValidatorSet, Vote, VoteKind};
pub use engine::{
    Engine, EngineError, FUTURE_HEIGHTS, FUTURE_PROPOSALS_PER_HEIGHT, INPUT_QUEUE, Output,
    Refusals, SYNC_BATCH,
};
pub use ledger::{
    AUDIT_WINDOW_HEIGHTS, BlockRefusal, GrantTerms, Ledger, PatientState, TxRefusal, check_fix_time,
};
pub use malachite_types::{NilOrVal, Timeout, TimeoutKind};
pub use mempool::{Mempool, Refusal};
pub use message::{
    MAX_OFFERED_CHECKPOINTS, MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_PIECES, Message, OfferedCheckpoint,
    SNAPSHOT_CHUNK_BYTES, SignedProposal, SignedVote, WalRecord,
};
pub use wal::{MemoryWal, WalStorage};
