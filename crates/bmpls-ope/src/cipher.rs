//! The order-preserving cipher: the lazy sampling tree of Boldyreva et al. (2009), its buckets,
//! and the two encryption modes.
//!
//! The function maps the domain `[0, 2^p)` into the range `[0, 2^r)` as a uniformly random
//! strictly increasing function, sampled lazily: a node owns a range of `2^rbits` points and a
//! run of `M` domain points; the hypergeometric sampler says how many of those land in the lower
//! half of the range, and the walk descends into the half holding the point of interest. A node
//! whose domain is a single plaintext is a *leaf*; its whole remaining range is that plaintext's
//! *bucket*. Buckets of different plaintexts are disjoint and ordered like the plaintexts.
//!
//! * deterministic mode: the ciphertext is a point of the bucket chosen by the keyed PRF (the
//!   BCLO ciphertext);
//! * randomised mode: the ciphertext is a uniformly random point of the bucket, drawn from the
//!   caller's RNG, so equal plaintexts give unrelated ciphertexts while order between different
//!   plaintexts is kept;
//! * decryption walks the tree by the ciphertext and accepts any point of a bucket.

use rand_core::CryptoRngCore;

use crate::error::OpeError;
use crate::hgd::{self, Decide};
use crate::prf::{CoinPrf, Purpose};

/// Largest plaintext domain, in bits.
pub const MAX_DOMAIN_BITS: u8 = 52;
/// Smallest gap between range and domain bits: it keeps every bucket large (about `2^gap`
/// points on average) and the sampler's rare exact path rare.
pub const MIN_EXPANSION_BITS: u8 = 32;
/// Default gap between range and domain bits: buckets of about 2^64 points, far beyond any
/// chance of two randomised ciphertexts colliding.
pub const DEFAULT_EXPANSION_BITS: u8 = 64;
/// Largest ciphertext range, in bits: the largest domain plus the default expansion. It leaves
/// room in one AES block for a tree node's name and a coin counter (see the `prf` module).
pub const MAX_RANGE_BITS: u8 = 116;
/// Default number of tree levels whose splits are memoised per cipher (`2^(d+1)` words).
pub const DEFAULT_CACHE_DEPTH: u8 = 14;
/// Largest cache depth accepted (`2^21` words, 16 MiB).
pub const MAX_CACHE_DEPTH: u8 = 20;

const _: () = assert!(MIN_EXPANSION_BITS <= DEFAULT_EXPANSION_BITS);
const _: () = assert!(MAX_DOMAIN_BITS + MIN_EXPANSION_BITS <= MAX_RANGE_BITS);
const _: () = assert!(1u64 << MAX_DOMAIN_BITS == hgd::MAX_M);

/// Domain and range sizes of a cipher, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpeParams {
    domain_bits: u8,
    range_bits: u8,
}

impl OpeParams {
    /// A `domain_bits`-bit domain mapped into a `range_bits`-bit range.
    pub fn new(domain_bits: u8, range_bits: u8) -> Result<Self, OpeError> {
        if domain_bits == 0 || domain_bits > MAX_DOMAIN_BITS {
            return Err(OpeError::DomainBits(domain_bits));
        }
        if range_bits < domain_bits.saturating_add(MIN_EXPANSION_BITS)
            || range_bits > MAX_RANGE_BITS
        {
            return Err(OpeError::RangeBits {
                domain: domain_bits,
                range: range_bits,
            });
        }
        Ok(Self {
            domain_bits,
            range_bits,
        })
    }

    /// A `domain_bits`-bit domain with the default expansion (capped at 127 range bits).
    pub fn with_default_expansion(domain_bits: u8) -> Result<Self, OpeError> {
        let range = domain_bits
            .saturating_add(DEFAULT_EXPANSION_BITS)
            .min(MAX_RANGE_BITS);
        Self::new(domain_bits, range)
    }

    /// Plaintext domain size in bits.
    pub fn domain_bits(&self) -> u8 {
        self.domain_bits
    }

    /// Ciphertext range size in bits.
    pub fn range_bits(&self) -> u8 {
        self.range_bits
    }
}

/// The bucket of a plaintext: every ciphertext in `[lo, hi]` decrypts to it, and no other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    /// Lowest ciphertext of the bucket.
    pub lo: u128,
    /// Highest ciphertext of the bucket (inclusive).
    pub hi: u128,
}

/// Where a walk of the tree ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leaf {
    pub(crate) plaintext: u64,
    pub(crate) range_lo: u128,
    pub(crate) range_bits: u32,
    pub(crate) depth: u8,
}

impl Leaf {
    pub(crate) fn bucket(&self) -> Bucket {
        Bucket {
            lo: self.range_lo,
            hi: self.range_lo + ((1u128 << self.range_bits) - 1),
        }
    }

    /// The BCLO ciphertext: the point of the bucket chosen by the leaf's own coins.
    pub(crate) fn deterministic_point(&self, prf: &CoinPrf) -> u128 {
        let mut coins = prf.coins(Purpose::Leaf, self.depth, self.range_lo);
        self.range_lo + coins.below(1u128 << self.range_bits)
    }

    /// A uniform point of the bucket from `rng`.
    pub(crate) fn random_point(&self, rng: &mut impl CryptoRngCore) -> u128 {
        let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        self.range_lo + (random & ((1u128 << self.range_bits) - 1))
    }
}

/// One order-preserving function, for one key and one parameter set.
///
/// Methods take `&mut self` because the top of the sampling tree is memoised as it is visited.
pub struct OpeCipher {
    params: OpeParams,
    prf: CoinPrf,
    cache_depth: u8,
    /// Splits of the nodes above `cache_depth`, indexed `2^depth + path`; `EMPTY` if not yet
    /// sampled. Allocated on first use.
    cache: Vec<u64>,
    decide: Decide,
}

const EMPTY: u64 = u64::MAX;

impl std::fmt::Debug for OpeCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeCipher")
            .field("params", &self.params)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl OpeCipher {
    /// The order-preserving function of `key` (a 32-byte secret, e.g. a level-epoch key).
    pub fn new(key: &[u8; 32], params: OpeParams) -> Self {
        Self {
            params,
            prf: CoinPrf::new(key, params.domain_bits, params.range_bits),
            cache_depth: DEFAULT_CACHE_DEPTH,
            cache: Vec::new(),
            decide: Decide::Filtered,
        }
    }

    /// Changes how many top tree levels are memoised (0 disables the cache), at most
    /// [`MAX_CACHE_DEPTH`].
    pub fn with_cache_depth(mut self, depth: u8) -> Self {
        self.cache_depth = depth.min(MAX_CACHE_DEPTH);
        self.cache = Vec::new();
        self
    }

    #[cfg(test)]
    pub(crate) fn with_decide(mut self, decide: Decide) -> Self {
        self.decide = decide;
        self
    }

    pub(crate) fn prf(&self) -> &CoinPrf {
        &self.prf
    }

    /// The cipher's parameters.
    pub fn params(&self) -> OpeParams {
        self.params
    }

    /// The BCLO (deterministic) ciphertext of `m`: equal plaintexts give equal ciphertexts.
    pub fn encrypt_deterministic(&mut self, m: u64) -> Result<u128, OpeError> {
        let leaf = self.walk_plaintext(m)?;
        Ok(leaf.deterministic_point(&self.prf))
    }

    /// A randomised ciphertext of `m`: a uniform point of its bucket from `rng`.
    pub fn encrypt(&mut self, m: u64, rng: &mut impl CryptoRngCore) -> Result<u128, OpeError> {
        Ok(self.walk_plaintext(m)?.random_point(rng))
    }

    /// The plaintext whose bucket holds `c`.
    pub fn decrypt(&mut self, c: u128) -> Result<u64, OpeError> {
        if c >> self.params.range_bits != 0 {
            return Err(OpeError::NotACiphertext);
        }
        Ok(self.walk(Target::Ciphertext(c))?.plaintext)
    }

    /// The bucket of `m`.
    pub fn bucket(&mut self, m: u64) -> Result<Bucket, OpeError> {
        Ok(self.walk_plaintext(m)?.bucket())
    }

    /// The ciphertext interval holding exactly the ciphertexts of the plaintexts in `[from, to]`:
    /// what a range query sends to a node that compares ciphertexts as integers.
    pub fn range_bounds(&mut self, from: u64, to: u64) -> Result<Bucket, OpeError> {
        if from > to {
            return Err(OpeError::EmptyInterval { from, to });
        }
        Ok(Bucket {
            lo: self.bucket(from)?.lo,
            hi: self.bucket(to)?.hi,
        })
    }

    fn walk_plaintext(&mut self, m: u64) -> Result<Leaf, OpeError> {
        if m >> self.params.domain_bits != 0 {
            return Err(OpeError::PlaintextOutOfDomain {
                value: m,
                bits: self.params.domain_bits,
            });
        }
        self.walk(Target::Plaintext(m))
    }

    fn walk(&mut self, target: Target) -> Result<Leaf, OpeError> {
        let mut domain_lo = 0u64;
        let mut domain_len = 1u64 << self.params.domain_bits;
        let mut range_lo = 0u128;
        let mut range_bits = u32::from(self.params.range_bits);
        let mut depth = 0u8;
        loop {
            match domain_len {
                0 => return Err(OpeError::NotACiphertext),
                1 => {
                    return Ok(Leaf {
                        plaintext: domain_lo,
                        range_lo,
                        range_bits,
                        depth,
                    });
                }
                _ => {}
            }
            // domain_len ≥ 2 ≤ 2^range_bits, so range_bits ≥ 1.
            let lower = self.split(depth, range_lo, range_bits, domain_len)?;
            let half = 1u128 << (range_bits - 1);
            let go_low = match target {
                Target::Plaintext(m) => m < domain_lo + lower,
                Target::Ciphertext(c) => c < range_lo + half,
            };
            if go_low {
                domain_len = lower;
            } else {
                domain_lo += lower;
                domain_len -= lower;
                range_lo += half;
            }
            range_bits -= 1;
            depth += 1;
        }
    }

    /// How many of the node's `domain_len` plaintexts map into the lower half of its range.
    pub(crate) fn split(
        &mut self,
        depth: u8,
        range_lo: u128,
        range_bits: u32,
        domain_len: u64,
    ) -> Result<u64, OpeError> {
        let slot = (depth < self.cache_depth)
            .then(|| (1usize << depth) + (range_lo >> range_bits) as usize);
        if let Some(slot) = slot {
            if self.cache.is_empty() {
                self.cache = vec![EMPTY; 1usize << (self.cache_depth + 1)];
            }
            if self.cache[slot] != EMPTY {
                return Ok(self.cache[slot]);
            }
        }
        let mut coins = self.prf.coins(Purpose::Split, depth, range_lo);
        let lower = hgd::sample_lower_half(&mut coins, range_bits, domain_len, self.decide)?;
        if let Some(slot) = slot {
            self.cache[slot] = lower;
        }
        Ok(lower)
    }
}

#[derive(Clone, Copy)]
enum Target {
    Plaintext(u64),
    Ciphertext(u128),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter only ever takes the decision the exact arithmetic takes, from the same coins:
    /// a cipher deciding everything in arbitrary precision is the same function.
    #[test]
    fn the_floating_point_filter_never_changes_a_decision() {
        let params = OpeParams::with_default_expansion(40).expect("valid");
        let mut filtered = OpeCipher::new(&[9u8; 32], params);
        let mut exact = OpeCipher::new(&[9u8; 32], params).with_decide(Decide::ExactOnly);
        for i in 0..40u64 {
            let m = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 24;
            assert_eq!(
                filtered.encrypt_deterministic(m),
                exact.encrypt_deterministic(m),
                "m = {m}"
            );
        }
    }
}
