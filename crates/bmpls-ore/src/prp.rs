//! The small-domain pseudorandom permutation `π_{i,p}` of one block's slots: a Fisher–Yates
//! shuffle of `0 … 2^len − 1` driven by AES-256 in counter mode under the permutation key,
//! with the block index and prefix in every counter block.
//!
//! Why a shuffle: a block has at most 256 slots, too few for a Feistel network to be a secure
//! permutation, and a shuffle with uniform draws gives an exactly uniform permutation for
//! every (block, prefix) given a random function. Its cost, one draw per slot, is of the order
//! of the slot keys' AES calls that a right ciphertext needs anyway. Fastore derives a fresh
//! AES key per prefix instead; counter blocks under one key avoid a key schedule per block.

use aes::Aes256Enc;
use aes::cipher::BlockEncrypt;

/// Label byte of permutation counter blocks (slot keys use another, see `key.rs`).
pub(crate) const PURPOSE_PRP: u8 = 2;
/// Counter blocks generated per AES call: 64 draws, enough for a 6-bit block in one call.
const BATCH: usize = 16;
/// 32-bit draws per AES block.
const WORDS_PER_BLOCK: usize = 4;

/// The permutation of block `block` under `prefix`, written into `perm` (whose length, a power
/// of two up to 256, is the block's slot count): `perm[v]` is the slot of block value `v`.
pub(crate) fn permutation(aes: &Aes256Enc, block: usize, prefix: u64, perm: &mut [u8]) {
    let mut words = Words::new(aes, block, prefix);
    for (v, slot) in perm.iter_mut().enumerate() {
        // Slots number at most 256 (`MAX_BLOCK_BITS` = 8), so `v` fits in a byte.
        *slot = v as u8;
    }
    for m in (1..perm.len()).rev() {
        let j = words.below(m as u32 + 1);
        perm.swap(m, j as usize);
    }
}

/// Uniform 32-bit words from the counter-mode stream of one (block, prefix).
struct Words<'a> {
    aes: &'a Aes256Enc,
    /// Counter block without its counter, as a big-endian integer: purpose, block index,
    /// prefix (an integer, not bytes in memory, for the reason `key::slot_base` gives).
    base: u128,
    counter: u32,
    buffer: [aes::Block; BATCH],
    /// Next unread word of `buffer`; `BATCH * WORDS_PER_BLOCK` when it is spent.
    next: usize,
}

impl<'a> Words<'a> {
    fn new(aes: &'a Aes256Enc, block: usize, prefix: u64) -> Self {
        // Bytes: purpose, block index (at most `MAX_BLOCKS` = 32), prefix (8, big-endian),
        // zeros, counter (4, big-endian).
        let base = (u128::from(PURPOSE_PRP) << 120)
            | ((block as u128) << 112)
            | (u128::from(prefix) << 48);
        Self {
            aes,
            base,
            counter: 0,
            buffer: [aes::Block::default(); BATCH],
            next: BATCH * WORDS_PER_BLOCK,
        }
    }

    fn word(&mut self) -> u32 {
        if self.next == BATCH * WORDS_PER_BLOCK {
            for block in &mut self.buffer {
                *block = (self.base | u128::from(self.counter)).to_be_bytes().into();
                self.counter += 1;
            }
            self.aes.encrypt_blocks(&mut self.buffer);
            self.next = 0;
        }
        let block = &self.buffer[self.next / WORDS_PER_BLOCK];
        let at = self.next % WORDS_PER_BLOCK * 4;
        self.next += 1;
        u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
    }

    /// A uniform integer below `bound` (1..=256), exactly: Lemire's nearly divisionless
    /// multiply-and-reject. The division that gives the rejection threshold is needed only when
    /// the low half of the product falls below `bound` (fewer than one draw in 2^24), and it
    /// rejects fewer still.
    fn below(&mut self, bound: u32) -> u32 {
        let mut product = u64::from(self.word()) * u64::from(bound);
        if (product as u32) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (product as u32) < threshold {
                product = u64::from(self.word()) * u64::from(bound);
            }
        }
        (product >> 32) as u32
    }
}
