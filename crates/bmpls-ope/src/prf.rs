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
//! range starts at `range_lo` is named by the block `2^t | path` (`path` = the top `t` bits of
//! `range_lo`, so the name is injective for `t ≤ 127`); its seed is `AES_{k_p}(name)` under a
//! key per purpose `p` (split or leaf), and its coins are `AES_{k_s}(seed ⊕ i)`, `i = 0, 1, …`.
//! Seeds are pseudorandom and distinct nodes' counter blocks collide only with probability
//! about `blocks² / 2^128`.

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
    /// Seed keys, indexed by [`Purpose`] − 1.
    seeds: [Aes256; 2],
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
            seeds: [derive(1), derive(2)],
            stream: derive(0),
            range_bits,
        }
    }

    /// The coin stream of the node at `depth` whose range starts at `range_lo`.
    pub(crate) fn coins(&self, purpose: Purpose, depth: u8, range_lo: u128) -> Coins<'_> {
        let path = range_lo
            .checked_shr(u32::from(self.range_bits - depth))
            .unwrap_or(0);
        let name = (1u128 << depth) | path;
        let mut block = GenericArray::from(name.to_be_bytes());
        self.seeds[purpose as usize - 1].encrypt_block(&mut block);
        Coins {
            prf: self,
            seed: u128::from_be_bytes(block.into()),
            counter: 0,
            bits: 0,
            bits_left: 0,
        }
    }
}

/// A lazily generated stream of uniform coins for one node.
pub(crate) struct Coins<'a> {
    prf: &'a CoinPrf,
    seed: u128,
    counter: u128,
    /// Buffered bits for single-bit draws, consumed from the top.
    bits: u128,
    bits_left: u32,
}

impl Coins<'_> {
    /// The next 128 uniform bits.
    pub(crate) fn next_u128(&mut self) -> u128 {
        let mut block = GenericArray::from((self.seed ^ self.counter).to_be_bytes());
        self.prf.stream.encrypt_block(&mut block);
        self.counter += 1;
        u128::from_be_bytes(block.into())
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
            for block in batch.iter_mut().take(blocks) {
                *block = GenericArray::from((self.seed ^ self.counter).to_be_bytes());
                self.counter += 1;
            }
            self.prf.stream.encrypt_blocks(&mut batch[..blocks]);
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
