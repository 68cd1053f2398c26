//! Table-driven encryption for small domains: the whole function sampled once per key.
//!
//! Coarse precision levels have small domains (a 20-bit `city` level has a million cells), and a
//! carer decrypting a year of records, or a client covering a large fence, asks for many of
//! them. Walking the tree once, depth first, visits every node exactly once (about `2·2^p`
//! splits); afterwards a bucket is one array read and a decryption one binary search.

use rand_core::CryptoRngCore;

use crate::cipher::{Bucket, Leaf, OpeCipher};
use crate::error::OpeError;

/// Largest domain a table enumerates, in bits: 2^20 buckets take 17 MiB.
pub const MAX_TABLE_BITS: u8 = 20;

/// Every bucket of one cipher, in plaintext order.
#[derive(Clone, Debug)]
pub struct OpeTable {
    /// Lowest ciphertext of each plaintext's bucket.
    lows: Vec<u128>,
    /// Each bucket holds `2^bits` ciphertexts.
    bits: Vec<u8>,
    /// Depth of each leaf, for the deterministic point's coins.
    depths: Vec<u8>,
    range_bits: u8,
}

/// A node still to visit in the depth-first enumeration.
struct Node {
    domain_len: u64,
    range_lo: u128,
    range_bits: u32,
    depth: u8,
}

impl OpeTable {
    /// Samples the whole function of `cipher` (same key, same parameters, same ciphertexts).
    pub fn build(cipher: &mut OpeCipher) -> Result<Self, OpeError> {
        let params = cipher.params();
        if params.domain_bits() > MAX_TABLE_BITS {
            return Err(OpeError::TableTooLarge {
                bits: params.domain_bits(),
            });
        }
        let size = 1usize << params.domain_bits();
        let mut table = Self {
            lows: Vec::with_capacity(size),
            bits: Vec::with_capacity(size),
            depths: Vec::with_capacity(size),
            range_bits: params.range_bits(),
        };
        // Depth-first, lower half first, so leaves come out in plaintext order.
        let mut stack = vec![Node {
            domain_len: 1u64 << params.domain_bits(),
            range_lo: 0,
            range_bits: u32::from(params.range_bits()),
            depth: 0,
        }];
        while let Some(node) = stack.pop() {
            match node.domain_len {
                0 => continue,
                1 => {
                    table.lows.push(node.range_lo);
                    table.bits.push(node.range_bits as u8);
                    table.depths.push(node.depth);
                    continue;
                }
                _ => {}
            }
            let lower =
                cipher.split(node.depth, node.range_lo, node.range_bits, node.domain_len)?;
            let half = 1u128 << (node.range_bits - 1);
            stack.push(Node {
                domain_len: node.domain_len - lower,
                range_lo: node.range_lo + half,
                range_bits: node.range_bits - 1,
                depth: node.depth + 1,
            });
            stack.push(Node {
                domain_len: lower,
                range_lo: node.range_lo,
                range_bits: node.range_bits - 1,
                depth: node.depth + 1,
            });
        }
        debug_assert_eq!(table.lows.len(), size);
        Ok(table)
    }

    /// The bucket of `m`.
    pub fn bucket(&self, m: u64) -> Result<Bucket, OpeError> {
        Ok(self.leaf(m)?.bucket())
    }

    /// A randomised ciphertext of `m` (same law as [`OpeCipher::encrypt`]).
    pub fn encrypt(&self, m: u64, rng: &mut impl CryptoRngCore) -> Result<u128, OpeError> {
        Ok(self.leaf(m)?.random_point(rng))
    }

    /// The deterministic ciphertext of `m` (equal to [`OpeCipher::encrypt_deterministic`]).
    pub fn encrypt_deterministic(&self, cipher: &OpeCipher, m: u64) -> Result<u128, OpeError> {
        Ok(self.leaf(m)?.deterministic_point(cipher.prf()))
    }

    /// The plaintext whose bucket holds `c`.
    pub fn decrypt(&self, c: u128) -> Result<u64, OpeError> {
        if c >> self.range_bits != 0 {
            return Err(OpeError::NotACiphertext);
        }
        let after = self.lows.partition_point(|&lo| lo <= c);
        let index = after.checked_sub(1).ok_or(OpeError::NotACiphertext)?;
        let hi = self.lows[index] + ((1u128 << self.bits[index]) - 1);
        if c > hi {
            return Err(OpeError::NotACiphertext);
        }
        Ok(index as u64)
    }

    /// The leaf of `m` as the tree walk would reach it.
    fn leaf(&self, m: u64) -> Result<Leaf, OpeError> {
        let index = usize::try_from(m)
            .ok()
            .filter(|&i| i < self.lows.len())
            .ok_or(OpeError::PlaintextOutOfDomain {
                value: m,
                bits: self.lows.len().trailing_zeros() as u8,
            })?;
        Ok(Leaf {
            plaintext: m,
            range_lo: self.lows[index],
            range_bits: u32::from(self.bits[index]),
            depth: self.depths[index],
        })
    }
}
