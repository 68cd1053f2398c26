//! The plaintext domain of one key and how it is cut into blocks. Both halves of the scheme
//! and both ciphertext formats are functions of it, so it travels in every ciphertext header.

use crate::OreError;

/// Largest plaintext size in bits.
pub const MAX_BITS: u8 = 64;
/// Smallest block size: one Hilbert level (two bits).
pub const MIN_BLOCK_BITS: u8 = 2;
/// Largest block size: a right ciphertext holds `2^block_bits` values per block, and a left
/// ciphertext names a slot in one byte.
pub const MAX_BLOCK_BITS: u8 = 8;
/// Most blocks a domain can have (64 bits in 2-bit blocks).
pub const MAX_BLOCKS: usize = (MAX_BITS / MIN_BLOCK_BITS) as usize;

/// The block size [`Domain::for_level_bits`] picks, chosen by measurement
/// (`cargo bench -p bmpls-benches --bench ore -- --warm-up-time 1 --measurement-time 2`, on
/// this project's shared 2-core machine at a load average of 4-6, 2026-12-01).
///
/// A comparison reveals the index of the first differing block, so larger blocks leak less:
/// the default is the largest size that meets the targets at 50 bits (right ciphertext ≤ 200
/// bytes, right encryption ≤ 10 µs, comparison ≤ 0.1 µs).
///
/// | block bits | right bytes (50 / 38 / 32 bits) | right encryption at 50 bits | comparison at 50 bits |
/// | --- | --- | --- | --- |
/// | 2 | 40 / 36 / 33 | 4.3 µs | 388 ns |
/// | 4 | 60 / 50 / 46 | 3.6 µs | 128 ns |
/// | 6 | 124 / 98 / 85 | 6.3 µs | 117 ns |
/// | 8 | 328 / 238 / 225 | 14.9 µs | 78 ns |
///
/// 8-bit blocks miss the size and the encryption targets. 6-bit blocks (three Hilbert levels)
/// meet them; their comparison measured 117 ns under that load, just above the target, and
/// about half of it is the AES-128 key schedule of the nonce (56-181 ns in the same runs,
/// depending on the load), which every block size pays. 2- and 4-bit blocks reveal the
/// shared prefix to within one or two levels, and 2-bit blocks compare slower (25 blocks).
pub const DEFAULT_BLOCK_BITS: u8 = 6;

/// A plaintext domain `[0, 2^bits)` cut into blocks of `block_bits` bits, the most significant
/// block first; the last block is shorter when `block_bits` does not divide `bits`.
///
/// `block_bits` is even so that block boundaries fall on Hilbert level depths (one level is two
/// bits of a cell index): what a comparison reveals, the first differing block, is then "the
/// two points share their depth-`k` cell" for a block boundary `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    bits: u8,
    block_bits: u8,
}

impl Domain {
    /// A domain of `bits` (1..=64) plaintext bits in blocks of `block_bits` (even, 2..=8).
    pub const fn new(bits: u8, block_bits: u8) -> Result<Self, OreError> {
        if bits == 0
            || bits > MAX_BITS
            || block_bits < MIN_BLOCK_BITS
            || block_bits > MAX_BLOCK_BITS
            || block_bits % 2 != 0
        {
            return Err(OreError::InvalidDomain { bits, block_bits });
        }
        Ok(Self { bits, block_bits })
    }

    /// The domain bmpls uses for a level of `bits` bits: [`DEFAULT_BLOCK_BITS`]-bit blocks.
    pub const fn for_level_bits(bits: u8) -> Result<Self, OreError> {
        Self::new(bits, DEFAULT_BLOCK_BITS)
    }

    /// Plaintext size in bits.
    pub const fn bits(&self) -> u8 {
        self.bits
    }

    /// Size of every block but possibly the last, in bits.
    pub const fn block_bits(&self) -> u8 {
        self.block_bits
    }

    /// Number of blocks.
    pub const fn blocks(&self) -> usize {
        self.bits.div_ceil(self.block_bits) as usize
    }

    /// Size of block `i` in bits (the last one may be shorter). `i < self.blocks()`.
    pub const fn block_len(&self, i: usize) -> u8 {
        let start = i as u8 * self.block_bits;
        let rest = self.bits - start;
        if rest < self.block_bits {
            rest
        } else {
            self.block_bits
        }
    }

    /// Slots of block `i`: `2^block_len(i)`.
    pub const fn slots(&self, i: usize) -> usize {
        1 << self.block_len(i)
    }

    /// Index of block `i`'s first slot among all slots of a right ciphertext.
    pub const fn slot_offset(&self, i: usize) -> usize {
        i << self.block_bits
    }

    /// Slots of a right ciphertext over all blocks.
    pub const fn total_slots(&self) -> usize {
        let last = self.blocks() - 1;
        self.slot_offset(last) + self.slots(last)
    }

    /// The largest plaintext, `2^bits - 1`.
    pub const fn max_plaintext(&self) -> u64 {
        u64::MAX >> (64 - self.bits as u32)
    }

    /// Checks that `x` lies in the domain.
    pub const fn check(&self, x: u64) -> Result<(), OreError> {
        if x > self.max_plaintext() {
            return Err(OreError::PlaintextOutOfDomain { bits: self.bits });
        }
        Ok(())
    }

    /// The bits of `x` above block `i` (its prefix), as an integer; 0 for the first block.
    pub const fn prefix(&self, x: u64, i: usize) -> u64 {
        let shift = (self.bits - i as u8 * self.block_bits) as u32;
        match x.checked_shr(shift) {
            Some(p) => p,
            None => 0,
        }
    }

    /// Block `i` of `x`, as an integer below [`Domain::slots`]`(i)`.
    pub const fn block_value(&self, x: u64, i: usize) -> usize {
        let len = self.block_len(i) as u32;
        let end = i as u32 * self.block_bits as u32 + len;
        let v = x >> (self.bits as u32 - end);
        (v & ((1u64 << len) - 1)) as usize
    }
}
