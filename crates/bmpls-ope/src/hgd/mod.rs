//! The exact hypergeometric sampler at the heart of the lazy order-preserving function.
//!
//! At a node of the sampling tree the range holds `N = 2^range_bits` points and the domain
//! `M` points; the order-preserving function is a uniformly random `M`-subset of the range, so
//! the number of domain points whose image falls in the lower half `n = N/2` follows the
//! hypergeometric law `HG(N, M, n)`:
//! `P(k) = C(n, k) · C(N − n, M − k) / C(N, M)`.
//!
//! The sampler returns a draw of exactly that law — no floating-point approximation of the
//! distribution anywhere:
//!
//! * `M ≤ BINOMIAL_MAX_M` ([`binomial`]): propose `k ~ Binomial(M, ½)` by counting the ones of
//!   `M` coin bits, accept with probability `∏(1 − i/n)` (an exact rational, decided with integer
//!   arithmetic; the rare undecided case is settled with `num-bigint`).
//! * larger `M` ([`reject`]): rejection from a piecewise-constant envelope built on the
//!   log-concavity of `P`; each accept/reject decision is first tried with an `f64` evaluation of
//!   `ln P(k)/P(mode)` *with a certified error bound* (a floating-point filter, as in exact
//!   geometric predicates) and, when the bound cannot decide, settled with arbitrary-precision
//!   interval arithmetic in [`exact`]. Floating point only ever decides when the decision is
//!   certain, so the output law is the exact hypergeometric law.

mod binomial;
mod exact;
mod reject;

use crate::error::OpeError;
use crate::prf::Coins;

/// Largest domain count sampled through the binomial proposal: `M` coin bits cost `M/128` AES
/// blocks, cheaper than the envelope sampler up to a few thousand.
pub(crate) const BINOMIAL_MAX_M: u64 = 4096;

/// Largest domain count the sampler accepts: plaintext domains are at most 2^52 points, so every
/// count stays exact in an `f64` mantissa and in the sampler's integer arithmetic.
pub(crate) const MAX_M: u64 = 1 << 52;

/// How accept/reject decisions are taken: through the floating-point filter (normal use), or
/// always in arbitrary precision (tests use this to check the filter against the exact path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decide {
    /// `f64` with a certified error bound first, arbitrary precision when undecided.
    Filtered,
    /// Arbitrary precision for every decision.
    #[cfg_attr(not(test), allow(dead_code))]
    ExactOnly,
}

/// Draws the number of the `m` domain points whose image lies in the lower half of a range of
/// `2^range_bits` points.
pub(crate) fn sample_lower_half(
    coins: &mut Coins<'_>,
    range_bits: u32,
    m: u64,
    decide: Decide,
) -> Result<u64, OpeError> {
    debug_assert!((1..=127).contains(&range_bits));
    debug_assert!(u128::from(m) <= 1u128 << range_bits);
    if m > MAX_M {
        return Err(OpeError::SamplerOutOfRange);
    }
    let half_bits = range_bits - 1;
    if m == 0 {
        Ok(0)
    } else if m <= BINOMIAL_MAX_M {
        binomial::sample(coins, half_bits, m)
    } else {
        reject::sample(coins, half_bits, m, decide)
    }
}

#[cfg(test)]
mod tests;
