//! Membership of a right ciphertext in a list of ranges given by left tokens: how a validator
//! answers an area query at an ORE level and tests a record against an ORE fence, without a key.

use std::cmp::Ordering;

use crate::{Domain, LeftCiphertext, OreError, RightCiphertext};

/// Inclusive ranges `[lo, hi]` of plaintexts, each bound a left ciphertext of one key and one
/// domain, sorted and disjoint as their maker sent them (nobody else can check the order: a
/// misordered list only makes its maker's answers wrong).
#[derive(Clone, Debug)]
pub struct TokenRanges {
    domain: Option<Domain>,
    ranges: Vec<(LeftCiphertext, LeftCiphertext)>,
}

impl TokenRanges {
    /// Parses the ranges' canonical encodings (each bound anything that reads as bytes: the
    /// wire's `OreLeft`, a `Vec<u8>`); every token must be of one domain.
    pub fn parse<'a, T: AsRef<[u8]> + 'a>(
        ranges: impl IntoIterator<Item = &'a (T, T)>,
    ) -> Result<Self, OreError> {
        let mut domain = None;
        let mut parsed = Vec::new();
        for (lo, hi) in ranges {
            let (lo, hi) = (
                LeftCiphertext::from_bytes(lo.as_ref())?,
                LeftCiphertext::from_bytes(hi.as_ref())?,
            );
            for token in [&lo, &hi] {
                if *domain.get_or_insert(token.domain()) != token.domain() {
                    return Err(OreError::DomainMismatch);
                }
            }
            parsed.push((lo, hi));
        }
        Ok(Self {
            domain,
            ranges: parsed,
        })
    }

    /// The tokens' domain (`None` when there are no ranges).
    pub fn domain(&self) -> Option<Domain> {
        self.domain
    }

    /// How many ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the plaintext of `right` lies in one of the ranges: bisection over the sorted
    /// ranges, about `log2(len) + 1` comparisons under one keyed oracle. What it reveals to the
    /// one who runs it is the order of the plaintext against the bounds it compared, and the
    /// first block where each differs.
    pub fn contains(&self, right: &RightCiphertext) -> Result<bool, OreError> {
        if self.ranges.is_empty() {
            return Ok(false);
        }
        let comparator = right.comparator();
        // The first range whose upper bound is not below the plaintext.
        let (mut lo, mut hi) = (0, self.ranges.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if comparator.compare(&self.ranges[mid].1)? == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match self.ranges.get(lo) {
            Some((low, _)) => Ok(comparator.compare(low)? != Ordering::Greater),
            None => Ok(false),
        }
    }
}
