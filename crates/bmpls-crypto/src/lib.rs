//! Cryptography of bmpls on well-kept crates: Ed25519 signatures with domain separation
//! (`ed25519-dalek` signs, `ed25519-zebra` verifies by the ZIP 215 rules), SHA-256 Merkle trees
//! and inclusion proofs (RFC 6962 style), the AEAD that seals the exact fix (ChaCha20-Poly1305),
//! HPKE wrapping of grant keys (RFC 9180, `hpke`), and [`Verified`] proof types. Pure: no I/O, no clock; randomness comes in as an argument.
#![forbid(unsafe_code)]

mod error;
pub mod hash;
mod hashed;
pub mod keyfile;
pub mod merkle;
pub mod seal;
pub mod sign;
#[cfg(feature = "torsion")]
pub mod torsion;
mod validators;
mod verified;
pub mod wrap;

pub use error::CryptoError;
pub use hashed::{HashedBlock, TxHashes, report_tx_hash};
pub use seal::SealKey;
pub use sign::{SigningKey, verify_transactions};
pub use validators::{Validator, ValidatorSet};
pub use verified::{
    Committed, Verified, certify, precommit_bytes, verify_block, verify_header, verify_inclusion,
    verify_record, verify_records, verify_view_inclusion, verify_views,
};
pub use wrap::AgreementSecret;
