//! Order-preserving encryption after Boldyreva, Chenette, Lee and O'Neill (2009), with an exact
//! hypergeometric sampler, a randomised (one-to-many) mode, and the per-level, per-epoch key
//! hierarchy of bmpls. Pure: no I/O, no clock.
//!
//! # What the ciphertexts leak
//!
//! Order-preserving encryption is designed to leak, so that nodes can range-scan ciphertexts.
//! Whoever holds ciphertexts of one key (one patient, one precision level, one epoch) learns:
//!
//! * **their order** — which of two fixes lies further along the Hilbert curve;
//! * **roughly the upper half of each plaintext's bits** (Boldyreva, Chenette, O'Neill 2011: a
//!   random order-preserving function reveals about half the bits of a plaintext, i.e. an
//!   approximate cell of about the square root of the level's resolution);
//! * **equality, in deterministic mode only** — [`OpeCipher::encrypt`] (randomised mode, the one
//!   records use) gives every encryption an independent uniform point of the plaintext's bucket,
//!   so the same place reported twice gives different ciphertexts. They are still two points of
//!   one bucket, a small interval, so they share their high-order bits, much as ciphertexts of
//!   neighbouring plaintexts do: closeness of ciphertexts still says closeness of plaintexts.
//!
//! Ciphertexts of different patients, levels or epochs are under independent keys and cannot be
//! compared. Keys of coarser levels derive from finer ones, never the reverse (see [`keys`]).
//!
//! # The scheme
//!
//! [`OpeCipher`] samples the random order-preserving function lazily, node by node, with coins
//! from a keyed PRF ([`prf`](crate) module: AES-256 keyed by HMAC-SHA256, see there for why);
//! each node draws from the hypergeometric law exactly (see the `hgd` module: integer and
//! arbitrary-precision arithmetic decide; `f64` is only a certified filter). The top of the tree
//! is memoised per cipher; [`OpeTable`] samples small domains entirely.
#![forbid(unsafe_code)]

mod cipher;
mod error;
mod hgd;
pub mod keys;
mod prf;
mod table;

pub use cipher::{
    Bucket, DEFAULT_CACHE_DEPTH, DEFAULT_EXPANSION_BITS, MAX_CACHE_DEPTH, MAX_DOMAIN_BITS,
    MAX_RANGE_BITS, MIN_EXPANSION_BITS, OpeCipher, OpeParams,
};
pub use error::OpeError;
pub use table::{MAX_TABLE_BITS, OpeTable};
