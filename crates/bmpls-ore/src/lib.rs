//! Left/right order-revealing encryption (Lewi and Wu, CCS 2016, block ORE) with keys: what a
//! reporter links to make the right ciphertexts a record stores, and what a carer links to make
//! the left ciphertexts (tokens) of a query's endpoints or a fence's runs. Validators link
//! only the keyless [`bmpls_ore_compare`], re-exported here, which compares a left ciphertext
//! with a right one. Pure: no I/O, no clock; randomness (one nonce per right ciphertext) comes
//! from the caller.
//!
//! The construction, the instantiation of its random oracle and what each ciphertext reveals
//! are documented in [`bmpls_ore_compare`]; in short:
//!
//! * a right ciphertext alone reveals nothing (two of one value are unrelated bytes, and two
//!   right ciphertexts cannot be compared);
//! * comparing a left ciphertext with a right one reveals their order and the index of the
//!   first differing block, i.e. which depth-`k` cell they share for `k` a block boundary;
//! * left ciphertexts are deterministic, so equal endpoints give equal tokens;
//! * `H(k, r)` is AES-128 under the nonce `r` applied to `k`, mod 3: a random oracle if AES is
//!   an ideal cipher.
//!
//! Keys: [`OreKey::new`] takes a 32-byte secret that the caller derives per patient, level and
//! epoch, and derives the PRF key and the permutation key from it with HMAC-SHA256 under
//! distinct labels and the domain. The PRF is AES-256; the per-(block, prefix) slot
//! permutation is a Fisher–Yates shuffle driven by AES-256 in counter mode (see `prp.rs`).
//! A right ciphertext's slot keys, one per slot, are computed in one pipelined AES call.
//!
//! ```
//! use bmpls_ore::{Domain, OreKey, compare};
//! use std::cmp::Ordering;
//!
//! let key = OreKey::new(&[7; 32], Domain::for_level_bits(50)?);
//! let token = key.encrypt_left(1_000)?;
//! let stored = key.encrypt_right(999, &mut rand::rngs::OsRng)?;
//! assert_eq!(compare(&token, &stored)?, Ordering::Greater);
//! # Ok::<(), bmpls_ore::OreError>(())
//! ```
#![forbid(unsafe_code)]

mod key;
mod prp;

pub use bmpls_ore_compare::{
    Comparator, DEFAULT_BLOCK_BITS, Domain, LeftCiphertext, MAX_BITS, MAX_BLOCK_BITS,
    MIN_BLOCK_BITS, OreError, RightCiphertext, TokenRanges, VERSION, compare, in_range,
};
pub use key::OreKey;
