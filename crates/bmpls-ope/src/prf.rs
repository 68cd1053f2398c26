//! The keyed coin source of the lazy sampler: every node of the sampling tree gets its own
//! pseudorandom stream, so the order-preserving function is a pure function of the key.
//!
//! Why AES and not HMAC-SHA256 for the coins: one encryption walks about 30–60 nodes and each
//! node needs one to a few 128-bit blocks of coins. HMAC-SHA256 costs two SHA-256 compressions
//! per call (≈ 100–300 ns), AES-256 with AES-NI a few nanoseconds per block, which is what makes
//! a 4 µs encryption possible. The AES key itself is derived from the OPE key with HMAC-SHA256,
//! so the key hierarchy stays HMAC-only. The `aes` crate selects AES-NI at run time and falls back
//! to a constant-time bitsliced implementation elsewhere.
//!
//! Construction: three AES-256 keys are derived from the OPE key. A node at depth `t` whose
//! range starts at `range_lo` is named by `2^t | path` (`path` = the top `t` bits of
//! `range_lo`), at most 117 bits because ranges have at most 116 bits. Coin block `i < 1024` of
//! the node is `AES_{k_d}(purpose ‖ i ‖ name)` — one AES call per block, distinct inputs for
//! distinct (purpose, node, i), so the blocks are outputs of a PRF on distinct points. The rare
//! node that needs more (only the exact fallback ever might) continues with
//! `AES_{k_s}(seed ⊕ (i − 1024))`, `seed = AES_{k_o}(purpose ‖ name)`.

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// What a coin stream is used for: a sampling-tree node, or the point chosen inside a leaf's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The hypergeometric split of an inner node.
    Split = 1,
    /// The deterministic ciphertext chosen inside a leaf's bucket.
    Leaf = 2,
}

/// The keyed pseudorandom function behind every coin of one OPE key.
#[derive(Clone)]
pub(crate) struct CoinPrf {
    direct: Aes256,
    overflow_seed: Aes256,
    stream: Aes256,
    range_bits: u8,
}

impl std::fmt::Debug for CoinPrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoinPrf(<redacted>)")
    }
}

/// Domain-separation label of the AES key derivation.
const AES_KEY_LABEL: &[u8] = b"bmpls/v1/ope/coin-prf";
/// Bits of a node name: ranges have at most 116 bits, so depth ≤ 116 and `2^depth | path`
/// fits in 117 bits.
const NAME_BITS: u32 = 117;
/// Bits of the block counter inside the direct input block.
const COUNTER_BITS: u32 = 10;
/// Coin blocks per node computed directly; later ones come from the overflow stream.
const DIRECT_BLOCKS: u128 = 1 << COUNTER_BITS;
const _: () = assert!(1 + COUNTER_BITS + NAME_BITS == 128);
const _: () = assert!((crate::cipher::MAX_RANGE_BITS as u32) < NAME_BITS);

fn encrypt(aes: &Aes256, block: u128) -> u128 {
    let mut b = GenericArray::from(block.to_be_bytes());
    aes.encrypt_block(&mut b);
    u128::from_be_bytes(b.into())
}

impl CoinPrf {
    /// Derives the AES keys from the 32-byte OPE key, bound to the domain and range sizes so
    /// that one key used with two parameter sets gives unrelated functions.
    pub(crate) fn new(key: &[u8; 32], domain_bits: u8, range_bits: u8) -> Self {
        let derive = |index: u8| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .expect("HMAC-SHA256 accepts keys of any length");
            mac.update(AES_KEY_LABEL);
            mac.update(&[domain_bits, range_bits, index]);
            let okm = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
            Aes256::new(GenericArray::from_slice(okm.as_slice()))
        };
        Self {
            direct: derive(0),
            overflow_seed: derive(1),
            stream: derive(2),
            range_bits,
        }
    }

    /// The coin stream of the node at `depth` whose range starts at `range_lo`.
    pub(crate) fn coins(&self, purpose: Purpose, depth: u8, range_lo: u128) -> Coins<'_> {
        let path = range_lo
            .checked_shr(u32::from(self.range_bits - depth))
            .unwrap_or(0);
        let name = (1u128 << depth) | path;
        let purpose_bit = u128::from(purpose == Purpose::Leaf) << 127;
        Coins {
            prf: self,
            name: purpose_bit | name,
            counter: 0,
            seed: None,
            bits: 0,
            bits_left: 0,
        }
    }
}

/// A lazily generated stream of uniform coins for one node.
pub(crate) struct Coins<'a> {
    prf: &'a CoinPrf,
    /// Purpose bit and node name: the input block without its counter.
    name: u128,
    counter: u128,
    /// Seed of the overflow stream, made on first need.
    seed: Option<u128>,
    /// Buffered bits for single-bit draws, consumed from the top.
    bits: u128,
    bits_left: u32,
}

impl Coins<'_> {
    /// The next 128 uniform bits.
    pub(crate) fn next_u128(&mut self) -> u128 {
        let i = self.counter;
        self.counter += 1;
        if i < DIRECT_BLOCKS {
            return encrypt(&self.prf.direct, self.name | (i << NAME_BITS));
        }
        let seed = *self
            .seed
            .get_or_insert_with(|| encrypt(&self.prf.overflow_seed, self.name));
        encrypt(&self.prf.stream, seed ^ (i - DIRECT_BLOCKS))
    }

    /// Counts the ones among the next `bits` uniform bits. Blocks are generated in batches,
    /// which lets AES-NI pipeline them (about ten times the throughput of one at a time).
    pub(crate) fn count_ones(&mut self, bits: u64) -> u64 {
        const BATCH: usize = 16;
        let mut ones = 0u64;
        let mut left = bits;
        let mut batch = [GenericArray::default(); BATCH];
        while left > 0 {
            let blocks = usize::try_from(left.div_ceil(128))
                .unwrap_or(BATCH)
                .min(BATCH);
            if self.counter + blocks as u128 <= DIRECT_BLOCKS {
                for block in batch.iter_mut().take(blocks) {
                    *block =
                        GenericArray::from((self.name | (self.counter << NAME_BITS)).to_be_bytes());
                    self.counter += 1;
                }
                self.prf.direct.encrypt_blocks(&mut batch[..blocks]);
            } else {
                for block in batch.iter_mut().take(blocks) {
                    *block = GenericArray::from(self.next_u128().to_be_bytes());
                }
            }
            for block in &batch[..blocks] {
                let word = u128::from_be_bytes((*block).into());
                let take = left.min(128);
                let word = if take == 128 {
                    word
                } else {
                    word >> (128 - take)
                };
                ones += u64::from(word.count_ones());
                left -= take;
            }
        }
        ones
    }

    /// The next `bits` (≤ 128) uniform bits as the low bits of a `u128`.
    pub(crate) fn next_bits(&mut self, bits: u32) -> u128 {
        debug_assert!(bits <= 128);
        if bits == 0 {
            return 0;
        }
        if bits > self.bits_left {
            // Refill: the few leftover bits are discarded, which keeps every draw uniform.
            self.bits = self.next_u128();
            self.bits_left = 128;
        }
        let out = if bits == 128 {
            self.bits
        } else {
            self.bits >> (128 - bits)
        };
        self.bits = self.bits.checked_shl(bits).unwrap_or(0);
        self.bits_left -= bits;
        out
    }

    /// A uniform integer in `[0, bound)`, exactly: rejection on the smallest covering power of
    /// two, so fewer than two draws on average and no modulo bias.
    pub(crate) fn below(&mut self, bound: u128) -> u128 {
        debug_assert!(bound > 0);
        if bound == 1 {
            return 0;
        }
        let bits = 128 - (bound - 1).leading_zeros();
        loop {
            let x = self.next_bits(bits);
            if x < bound {
                return x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the directly computed blocks the stream goes on, distinct, and batched bit counts
    /// equal the counts of the same blocks drawn one by one (on both sides of the switch).
    #[test]
    fn long_streams_continue_consistently() {
        let prf = CoinPrf::new(&[5u8; 32], 40, 104);
        let mut one_by_one = prf.coins(Purpose::Split, 3, 5u128 << 101);
        let blocks: Vec<u128> = (0..1100).map(|_| one_by_one.next_u128()).collect();
        let distinct: std::collections::BTreeSet<_> = blocks.iter().collect();
        assert_eq!(distinct.len(), blocks.len());
        let mut batched = prf.coins(Purpose::Split, 3, 5u128 << 101);
        let expected: u64 = blocks.iter().map(|b| u64::from(b.count_ones())).sum();
        assert_eq!(batched.count_ones(1100 * 128), expected);
        let mut leaf = prf.coins(Purpose::Leaf, 3, 5u128 << 101);
        assert_ne!(leaf.next_u128(), blocks[0], "purposes share coins");
    }
}
