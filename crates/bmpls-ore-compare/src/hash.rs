//! The random oracle `H(k, r)` of the construction, which masks each slot of a right
//! ciphertext: `H(k, r) = (first 8 bytes of AES-128_r(k), little-endian) mod 3`, with `r` the
//! right ciphertext's nonce as the AES key and `k` a slot key as the block.
//!
//! Why AES under the nonce: a right ciphertext needs one `H` per slot (hundreds) and a
//! comparison one per block, all with the same nonce, so one key schedule serves them all and
//! the evaluations pipeline (AES-NI, eight blocks at once). This is fastore's instantiation; it
//! is a random oracle if AES is modelled as an ideal cipher. SHA-256 would cost about 100 times
//! more per evaluation. Reducing 64 bits mod 3 instead of 128: the bias is below 2^-64, and a
//! 64-bit remainder by a constant compiles to multiplications (constant time), where a 128-bit
//! one calls a routine whose time may depend on the value.

use aes::Aes128Enc;
use aes::cipher::{BlockEncrypt, KeyInit};

/// An AES block.
pub(crate) type Block = aes::Block;
/// Evaluations batched per call into AES, so that AES-NI pipelines them.
pub(crate) const BATCH: usize = 16;

/// `H(·, r)` for one nonce `r`.
pub(crate) struct Oracle {
    aes: Aes128Enc,
}

impl Oracle {
    /// The oracle under the nonce of one right ciphertext.
    pub(crate) fn new(nonce: &[u8; 16]) -> Self {
        Self {
            aes: Aes128Enc::new(&(*nonce).into()),
        }
    }

    /// Replaces each slot key in `blocks` by its AES image; [`trit`] then reads `H` off it.
    #[inline]
    pub(crate) fn apply(&self, blocks: &mut [Block]) {
        self.aes.encrypt_blocks(blocks);
    }
}

/// `H` from an AES image: its first 8 bytes, little-endian, mod 3.
#[inline]
pub(crate) fn trit(image: &Block) -> u8 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&image[..8]);
    (u64::from_le_bytes(word) % 3) as u8
}
