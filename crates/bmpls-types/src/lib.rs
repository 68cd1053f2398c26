//! Shared vocabulary of bmpls: identifiers, units, limits, records, transactions, blocks, and
//! the canonical encoding of what travels between reporters, carers and validators. Pure: no
//! I/O, no clock, no cryptography (signatures and hashes are computed in `bmpls-crypto`; this
//! crate says which bytes they cover).
#![forbid(unsafe_code)]

mod block;
pub mod bounded;
mod encoding;
mod fix;
mod ids;
pub mod limits;
mod record;
mod signed;
mod tx;

pub use block::{Block, BlockHeader, ChainId, CommitCertificate, PrecommitTarget};
pub use bounded::{BoundedString, BoundedVec, TooLong};
pub use encoding::{Canonical, DecodeError, WIRE_VERSION};
pub use fix::{ExactFix, Trigger};
pub use ids::{
    AgreementKey, BlockHash, CarerId, Epoch, Hash32, Height, LevelIndex, OpeCiphertext, PatientId,
    PublicKeyBytes, Round, Seq, SignatureBytes, TxHash, ValidatorId,
};
pub use record::LocationRecord;
pub use signed::Signed;
pub use tx::{
    Audit, EnrolCarer, EnrolPatient, FenceEpoch, Grant, QueryKind, Revoke, Role, RotateReporterKey,
    SetFence, Transaction,
};
