//! Small domain counts: a binomial proposal corrected to the hypergeometric law by an exact
//! rational acceptance test.
//!
//! With `N = 2n` and `Bin(k) = C(M, k) / 2^M`,
//! `HG(k) / Bin(k) = ∏_{i<k} (1 − i/n) · ∏_{j<M−k} (1 − j/n) / ∏_{i<M} (1 − i/N)`.
//! The denominator does not depend on `k`, so accepting a binomial proposal `k` with probability
//! `A(k) = ∏_{i<k} (1 − i/n) · ∏_{j<M−k} (1 − j/n)` (a product of probabilities, at most 1)
//! yields exactly `HG`. By the Bonferroni inequalities `A(k) ≥ 1 − S/n` with
//! `S = (k(k−1) + (M−k)(M−k−1)) / 2`, so a uniform `U ∈ [0, n)` below `n − S` accepts at once;
//! only with probability `S/n` (about `M²/N`, below 2^-50 for the tree's parameters) does the
//! decision need the exact product, computed with `num-bigint`.

use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::error::OpeError;
use crate::prf::Coins;

/// Samples `HG(2n, m, n)` with `n = 2^half_bits`.
pub(super) fn sample(coins: &mut Coins<'_>, half_bits: u32, m: u64) -> Result<u64, OpeError> {
    // The binomial proposal is accepted with probability about exp(−M²/N); when the range is
    // not much larger than M², place the M points one by one instead.
    if u128::from(m) * u128::from(m) >= 1u128 << half_bits.saturating_sub(2) {
        return Ok(sequential(coins, half_bits, m));
    }
    loop {
        let k = binomial_half(coins, m);
        if accept(coins, half_bits, m, k) {
            return Ok(k);
        }
    }
}

/// Places the `m` domain points one at a time: point `i` falls in the lower half with
/// probability `(n − x)/(N − i)`, `x` the count so far — the definition of `HG`, in `O(M)`.
fn sequential(coins: &mut Coins<'_>, half_bits: u32, m: u64) -> u64 {
    let n = 1u128 << half_bits;
    let total = n << 1;
    let mut lower = 0u128;
    for i in 0..u128::from(m) {
        if coins.below(total - i) < n - lower {
            lower += 1;
        }
    }
    lower as u64
}

/// `Binomial(m, ½)`: the number of ones among `m` uniform coin bits.
fn binomial_half(coins: &mut Coins<'_>, m: u64) -> u64 {
    coins.count_ones(m)
}

/// Accepts `k` with probability exactly `A(k)`.
fn accept(coins: &mut Coins<'_>, half_bits: u32, m: u64, k: u64) -> bool {
    let (k, rest) = (u128::from(k), u128::from(m - k));
    let s = (k * k.saturating_sub(1) + rest * rest.saturating_sub(1)) / 2;
    if s == 0 {
        return true;
    }
    let n = 1u128 << half_bits;
    if s >= n {
        // The cheap bound is void: accept with probability A = P / n^M directly.
        let product = falling_product(half_bits, m, k as u64);
        return uniform_bits_below(coins, u64::from(half_bits) * m, &product);
    }
    if coins.next_bits(half_bits) < n - s {
        return true;
    }
    accept_exact(coins, half_bits, m, k as u64, s)
}

/// `P = ∏_{i<k} (n − i) · ∏_{j<M−k} (n − j)`, zero when a factor would be negative.
fn falling_product(half_bits: u32, m: u64, k: u64) -> BigUint {
    let n = BigUint::one() << half_bits;
    let mut product = BigUint::one();
    for count in [k, m - k] {
        for i in 0..count {
            let i = BigUint::from(i);
            if i >= n {
                return BigUint::zero();
            }
            product *= &n - i;
        }
    }
    product
}

/// Given `U ≥ n − S` (probability `S/n`), accepts with the conditional probability
/// `(A − (1 − S/n)) / (S/n) = (P − n^M + S·n^(M−1)) / (S·n^(M−1))`, where
/// `P = ∏_{i<k} (n − i) · ∏_{j<M−k} (n − j)`, by comparing a uniform integer below the
/// denominator with the numerator, most significant part first.
fn accept_exact(coins: &mut Coins<'_>, half_bits: u32, m: u64, k: u64, s: u128) -> bool {
    let product = falling_product(half_bits, m, k);
    let shift = u64::from(half_bits) * (m - 1);
    let s_big = BigUint::from(s);
    let numerator = product + (&s_big << shift);
    let full = BigUint::one() << (shift + u64::from(half_bits));
    // Bonferroni guarantees numerator ≥ n^M; the saturation is unreachable.
    let numerator = if numerator >= full {
        numerator - full
    } else {
        BigUint::zero()
    };
    // V = V_hi · 2^shift + V_lo with V_hi uniform below S and V_lo uniform on `shift` bits.
    let high = coins.below(s);
    let numerator_high = &numerator >> shift;
    let high_big = BigUint::from(high);
    if high_big != numerator_high {
        return high_big < numerator_high;
    }
    let low = numerator - (numerator_high << shift);
    uniform_bits_below(coins, shift, &low)
}

/// Whether a uniform integer of `bits` bits, drawn lazily from the top, is below `bound`
/// (`bound < 2^bits`).
pub(super) fn uniform_bits_below(coins: &mut Coins<'_>, bits: u64, bound: &BigUint) -> bool {
    let words = bits.div_ceil(64) as usize;
    let mut digits = bound.to_u64_digits();
    digits.resize(words, 0);
    for (index, &digit) in digits.iter().enumerate().rev() {
        let width = if index + 1 == words {
            (bits - 64 * (words as u64 - 1)) as u32
        } else {
            64
        };
        let draw = coins.next_bits(width) as u64;
        if draw != digit {
            return draw < digit;
        }
    }
    false
}
