//! Shared vocabulary of bmpls: identifiers, units, limits, records, transactions, blocks, and
//! the canonical encoding of what travels between reporters, carers and validators. Pure: no
//! I/O, no clock, no signatures (they are made and checked in `bmpls-crypto`; this crate says
//! which bytes they cover). The one hash here is the level chain a record's signature covers
//! (`record.rs`), because what is signed must be defined beside the record.
#![forbid(unsafe_code)]

mod block;
pub mod bounded;
mod cell;
mod encoding;
mod fix;
mod ids;
pub mod limits;
mod record;
mod signed;
mod tx;

pub use block::{Block, BlockHeader, ChainId, CommitCertificate, PrecommitTarget};
pub use bounded::{BoundedString, BoundedVec, TooLong};
pub use cell::{Cell, OreLeft, OreRight};
pub use encoding::{Canonical, DecodeError, WIRE_VERSION};
pub use fix::{ExactFix, Trigger};
pub use ids::{
    AgreementKey, BlockHash, CarerId, Epoch, Hash32, Height, LevelIndex, OpeCiphertext, PatientId,
    PublicKeyBytes, Round, Seq, SignatureBytes, TxHash, ValidatorId,
};
pub use record::{Finer, LocationRecord, RecordDigest, RecordView, level_chain};
pub use signed::Signed;
pub use tx::{
    Audit, EnrolCarer, EnrolPatient, FenceEpoch, FenceRanges, Grant, QueryKind, RemoveFence,
    Revoke, Role, RotateReporterKey, SetFence, Transaction, report_leaf_encode_to,
};
