//! The keyless half of bmpls's order-revealing encryption (Lewi and Wu, "Order-Revealing
//! Encryption: New Constructions, Applications, and Lower Bounds", CCS 2016, the small-domain
//! ORE extended to blocks): the two ciphertext formats and the comparison of a left ciphertext
//! with a right one. This is what validators link. It holds no key, and there is nothing here
//! to encrypt, derive a key or decrypt with: that is `bmpls-ore`, which reporters and carers
//! link. Pure: no I/O, no clock, no randomness.
//!
//! # The construction
//!
//! A plaintext `x` of a [`Domain`] is cut into blocks `x_1 … x_n` of `block_bits` bits, most
//! significant first. For each block `i` with prefix `p = x_1 … x_{i-1}` the key defines a
//! uniformly random permutation `π_{i,p}` of the block's `2^block_len` slots and a slot key
//! `F(k, i ‖ p ‖ j)` for every slot `j` (AES-256 as the PRF `F`, keys from HMAC-SHA256).
//!
//! * A **left** ciphertext holds, per block, the slot `h_i = π_{i,p}(x_i)` and its key
//!   `F(k, i ‖ p ‖ h_i)`.
//! * A **right** ciphertext of `y` holds a fresh 16-byte nonce `r` and, per block and slot
//!   `j`, `cmp(π⁻¹_{i,p}(j), y_i) + H(F(k, i ‖ p ‖ j), r) mod 3`, where `cmp(a, b)` is 0, 1 or
//!   2 for `a = b`, `a > b`, `a < b`.
//! * [`compare`] subtracts `H(key_i, r)` from slot `h_i` of every block; the first non-zero
//!   difference is the order, all zero means equal.
//!
//! `H(k, r)` is the random oracle of the proof, instantiated as fastore does: AES-128 under
//! the nonce `r` applied to the slot key `k`, reduced mod 3 (see `hash.rs`). It is a random
//! oracle if AES is modelled as an ideal cipher.
//!
//! # What is revealed, and to whom
//!
//! * **A right ciphertext alone reveals nothing** (semantic security, in the random-oracle
//!   model): every slot is masked by `H` of a key its holder does not have, under a nonce
//!   that is fresh for each encryption. Two right ciphertexts of the same value are unrelated
//!   bytes, and two right ciphertexts cannot be compared: [`RightCiphertext`] implements no
//!   ordering and no function here takes two of them. A node's disk, which holds only right
//!   ciphertexts, reveals nothing about the plaintexts but their domain.
//! * **Comparing a left ciphertext of `x` with a right ciphertext of `y` reveals the order of
//!   `x` and `y` and the index of the first block in which they differ**, i.e. the
//!   longest block-aligned prefix they share. With even `block_bits` a block boundary is a
//!   Hilbert level depth `k`, so this is "the two points share their depth-`k` cell" for the
//!   deepest boundary `k` where they do. Nothing about the plaintexts beyond that.
//! * **Left ciphertexts are deterministic**: equal plaintexts under one key give equal left
//!   ciphertexts, so whoever sees two tokens learns whether they are the same endpoint; two
//!   left ciphertexts of different plaintexts reveal, block by block, how long a prefix they
//!   share (their leading blocks are equal). A left ciphertext compares against every right
//!   ciphertext of its key, so a node holding one learns the order of every stored record
//!   of that key against it.
//! * The domain (bits and block size) is in every header, in the clear.
//!
//! # Cost
//!
//! A comparison is one AES-128 key schedule and one AES block per plaintext block, pipelined,
//! and it always reads every block: there is no early exit on the first differing block, and
//! the first non-zero difference is selected with `subtle`'s constant-time selection, so the
//! time does not depend on where the plaintexts differ.
//!
//! A left and a right ciphertext compare:
//!
//! ```
//! use bmpls_ore_compare::{LeftCiphertext, OreError, RightCiphertext, compare};
//! fn order(a: &LeftCiphertext, b: &RightCiphertext) -> Result<std::cmp::Ordering, OreError> {
//!     compare(a, b)
//! }
//! ```
//!
//! but two right ones do not, neither through `compare` nor as values with an ordering:
//!
//! ```compile_fail
//! // Two right ciphertexts cannot be compared: `compare` takes a left one first.
//! fn order(a: &bmpls_ore_compare::RightCiphertext, b: &bmpls_ore_compare::RightCiphertext) {
//!     let _ = bmpls_ore_compare::compare(a, b);
//! }
//! ```
//!
//! ```compile_fail
//! // Nor do right ciphertexts implement an ordering.
//! fn order(a: &bmpls_ore_compare::RightCiphertext, b: &bmpls_ore_compare::RightCiphertext) -> bool {
//!     a < b
//! }
//! ```
#![forbid(unsafe_code)]

mod domain;
mod error;
mod hash;
mod left;
mod ranges;
mod right;
mod wire;

use std::cmp::Ordering;

use subtle::{ConditionallySelectable, ConstantTimeEq};

pub use domain::{
    DEFAULT_BLOCK_BITS, Domain, MAX_BITS, MAX_BLOCK_BITS, MAX_BLOCKS, MIN_BLOCK_BITS,
};
pub use error::OreError;
pub use left::{LeftBlock, LeftCiphertext};
pub use ranges::TokenRanges;
pub use right::RightCiphertext;
pub use wire::VERSION;

use hash::{Block, Oracle};

/// The order of the plaintext of `left` relative to that of `right` (`Less` when the left
/// one is smaller). Both must come from one key; ciphertexts of different keys give a
/// meaningless order, of different domains an error.
///
/// Constant time in the ciphertexts' contents: every block is read and the result selected
/// without branching on it. To compare one right ciphertext with several left ones, use
/// [`RightCiphertext::comparator`], which keys the oracle once.
pub fn compare(left: &LeftCiphertext, right: &RightCiphertext) -> Result<Ordering, OreError> {
    right.comparator().compare(left)
}

/// Whether the plaintext of `right` lies in the closed interval from the plaintext of `lo`
/// to that of `hi`: both comparisons share one key schedule, and both are always made.
pub fn in_range(
    lo: &LeftCiphertext,
    hi: &LeftCiphertext,
    right: &RightCiphertext,
) -> Result<bool, OreError> {
    let comparator = right.comparator();
    let above_lo = comparator.compare(lo)? != Ordering::Greater;
    let below_hi = comparator.compare(hi)? != Ordering::Less;
    Ok(above_lo & below_hi)
}

/// One right ciphertext ready to be compared with many left ones (a fence's sorted run
/// endpoints searched by bisection, a query's two endpoints): the oracle under its nonce is
/// keyed once, about half the cost of a single comparison.
pub struct Comparator<'a> {
    right: &'a RightCiphertext,
    oracle: Oracle,
}

impl RightCiphertext {
    /// A [`Comparator`] for this right ciphertext.
    pub fn comparator(&self) -> Comparator<'_> {
        Comparator {
            right: self,
            oracle: Oracle::new(&self.nonce()),
        }
    }
}

impl Comparator<'_> {
    /// The order of the plaintext of `left` relative to that of the right ciphertext, as
    /// [`compare`] gives it.
    pub fn compare(&self, left: &LeftCiphertext) -> Result<Ordering, OreError> {
        if left.domain() != self.right.domain() {
            return Err(OreError::DomainMismatch);
        }
        Ok(compare_under(&self.oracle, left, self.right))
    }

    /// The order of a block value against block `block` of the right ciphertext's plaintext,
    /// given the value's `slot` and slot key under the right prefix, as a left ciphertext
    /// carries them: what a key holder's block-by-block decryption probes. A node gains
    /// nothing from it that a whole left ciphertext does not give; for another prefix the
    /// result is meaningless. Not constant time in the result (decryption is the key
    /// holder's, on its own machine).
    pub fn block_order(
        &self,
        block: usize,
        slot: u8,
        key: &[u8; 16],
    ) -> Result<Ordering, OreError> {
        let domain = self.right.domain();
        if block >= domain.blocks() || usize::from(slot) >= domain.slots(block) {
            return Err(OreError::BadSlot { block });
        }
        let mut image = [Block::default(); 1];
        image[0].copy_from_slice(key);
        self.oracle.apply(&mut image);
        let position = domain.slot_offset(block) + usize::from(slot);
        Ok(order(unmask(self.right, position, &image[0])))
    }
}

/// The comparison value of slot `position` of `right`, unmasked with the oracle's `image` of
/// its slot key: 0 equal, 1 greater, 2 less (the left value against the right one).
#[inline]
fn unmask(right: &RightCiphertext, position: usize, image: &Block) -> u8 {
    (right.slot(position) + 3 - hash::trit(image)) % 3
}

/// The order a comparison value (see [`unmask`]) stands for.
fn order(value: u8) -> Ordering {
    match value {
        0 => Ordering::Equal,
        1 => Ordering::Greater,
        _ => Ordering::Less,
    }
}

/// The comparison once the domains are known to agree and the oracle is keyed by `right`'s
/// nonce.
fn compare_under(oracle: &Oracle, left: &LeftCiphertext, right: &RightCiphertext) -> Ordering {
    let domain = left.domain();
    let blocks = domain.blocks();
    let mut images = [Block::default(); MAX_BLOCKS];
    let mut slots = [0usize; MAX_BLOCKS];
    for (i, (image, slot)) in images.iter_mut().zip(&mut slots).take(blocks).enumerate() {
        let (h, key) = left.block(i);
        image.copy_from_slice(key);
        *slot = domain.slot_offset(i) + h;
    }
    oracle.apply(&mut images[..blocks]);
    // From the last block to the first, a block that differs overrides what the blocks after
    // it said, so the first differing block decides; every block is read and selected without
    // a branch. `result`: 0 equal, 1 greater, 2 less.
    let mut result = 0u8;
    for (image, &slot) in images[..blocks].iter().zip(&slots[..blocks]).rev() {
        let difference = unmask(right, slot, image);
        result = u8::conditional_select(&difference, &result, difference.ct_eq(&0));
    }
    order(result)
}
