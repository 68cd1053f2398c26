//! The bmpls validator: the tokio runtime that owns sockets, clock and disk. It drives
//! `bmpls-consensus` over `bmpls-net`'s peer links, applies committed blocks to `bmpls-store`,
//! and serves clients.
//!
//! - [`config`]: the node's TOML file, validated.
//! - [`Node`]: start, observe, shut down; [`run_until_signal`] for the `bmpls node` command.
//! - `driver`: the core task, sole owner of the engine.
//! - `service`: the client service (submissions, status, queries).
//! - `answer`: carers' queries: the grant check, the store query, the proofs.
//! - [`alerts`]: geofence events derived from the chain (pure).
//!
//! This crate does not depend on `bmpls-ope` or `bmpls-grid`: a validator cannot decrypt.
#![forbid(unsafe_code)]

pub mod alerts;
mod answer;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod checkpoint;
pub mod config;
mod driver;
pub mod local;
pub mod metrics;
mod node;
pub mod provision;
mod service;
pub mod snapshot;

pub use config::{BlockPolicy, CheckpointPolicy, NodeConfig, NodeConfigError};
pub use driver::{ADMIT_BATCH, COMMAND_QUEUE, COMMIT_WAIT, refusal_code};
pub use node::{Node, run_until_signal};

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    /// The validator key file is wrong.
    #[error(transparent)]
    Key(#[from] bmpls_crypto::keyfile::KeyFileError),
    /// The key file does not hold the key genesis names for this validator.
    #[error("the key in {path} is not validator {name}'s key in genesis")]
    WrongKey {
        /// The key file.
        path: String,
        /// The validator's name.
        name: String,
    },
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] bmpls_net::NetError),
    /// TLS material is wrong.
    #[error(transparent)]
    Tls(#[from] bmpls_net::TlsError),
    /// The store failed: the node stops rather than answer from a damaged disk.
    #[error("store: {0}")]
    Store(#[from] bmpls_store::StoreError),
    /// Consensus failed (its log could not be written, or an invariant broke).
    #[error("consensus: {0}")]
    Consensus(bmpls_consensus::EngineError),
    /// A checkpoint fetched to join from a snapshot does not verify.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A task of the node failed.
    #[error("internal: {0}")]
    Internal(String),
}
