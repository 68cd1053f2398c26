//! The durable store of a bmpls validator, on sled: committed blocks and their certificates,
//! each patient's records in chunks, and chunk indexes that answer queries on ciphertexts — by
//! time, and by encrypted cell at each OPE level (ORE levels are never indexed: a query there
//! pre-filters by an OPE level and compares candidates with the carer's tokens). A block and everything it adds are applied in one
//! atomic batch and flushed before the call returns; every value carries a checksum that is
//! verified when it is read back.
//! [`FileWal`] keeps a validator's consensus write-ahead log (`bmpls_consensus::WalStorage`) in
//! append-only files of checksummed frames (`bmpls_framelog`), not in sled: a torn tail is cut,
//! never a reason not to start.
//!
//! This crate never depends on `bmpls-ope`, `bmpls-ore` or `bmpls-grid`: it compares OPE
//! ciphertexts as integers and ORE right ciphertexts with left tokens (`bmpls-ore-compare`,
//! keyless), and cannot encrypt or decrypt.
#![forbid(unsafe_code)]

mod base;
mod checkpoint;
mod chunk;
mod durable;
mod error;
mod layout;
mod query;
mod runs;
mod skeleton;
mod store;
mod wal;
mod zones;

pub use base::Base;
pub use checkpoint::KEEP_CHECKPOINTS;
pub use error::StoreError;
pub use query::{
    EpochRanges, MAX_RANGES, MAX_REFINED_CANDIDATES, MAX_RESULTS, OreTokens, Plan, Query, Refine,
};
pub use store::{PatientSummary, SCHEMA_VERSION, Store, StoredRecord};
pub use wal::{FileWal, MAX_WAL_ENTRY_BYTES};
