//! Arbitrary-precision accept/reject decisions, for the rare cases the floating-point filter
//! cannot settle.
//!
//! Everything here is fixed-point interval arithmetic on `num-bigint` integers: a value `v` at
//! precision `W` is an integer `V` with `v ≈ V · 2^-W`, carried with an error bound in units of
//! `2^-W` (ulps) that every operation accounts for. `ln` uses `2·atanh((x−1)/(x+1))` after
//! reduction to `[1, 2)`; `ln Γ` uses Stirling's series with exact Bernoulli numbers and its
//! rigorous remainder bound (the next term), after shifting small arguments up with the exact
//! recurrence `Γ(z+1) = zΓ(z)`. The constant `½ ln 2π` is left out: it cancels, because
//! `ln ρ(k)` has as many `ln Γ` terms of each sign.
//!
//! The decision `u < ρ(k)` is taken when the intervals of `ln u` and `ln ρ(k)` separate; until
//! then more bits of `u` are drawn and the precision raised. Intervals of width zero are
//! impossible (`u` has infinitely many random bits), so the loop ends with probability one; it is
//! still bounded, and gives up with a typed error after [`MAX_ROUNDS`] (probability below
//! 2^-200).

use std::sync::OnceLock;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

use super::reject::Params;
use crate::error::OpeError;
use crate::prf::Coins;

/// Rounds of refinement before giving up: precision `96 + 64·i` bits, `48 + 64·i` bits of `u`.
const MAX_ROUNDS: u32 = 4;
/// Stirling's series is used from this argument on; smaller ones are shifted up exactly.
const STIRLING_FROM: u128 = 256;
/// Terms of Stirling's series: with `z ≥ 256` the remainder is below 2^-260.
const STIRLING_TERMS: usize = 20;

/// A fixed-point interval: `value ± err` in units of `2^-w`.
pub(super) struct Approx {
    value: BigInt,
    err: BigUint,
}

/// Accepts `k` iff `u < ρ(k)`, where `u = (r + V) · 2^-first_bits` and `V ∈ [0, 1)` is drawn
/// lazily from `coins`.
pub(super) fn accepts(
    coins: &mut Coins<'_>,
    p: &Params,
    k: u64,
    r: u64,
    first_bits: u32,
) -> Result<bool, OpeError> {
    let mut u = BigUint::from(r);
    let mut u_bits = i64::from(first_bits);
    for round in 0..MAX_ROUNDS {
        let w = 96 + 64 * round;
        let f = log_ratio(p, k, w);
        let f_low = &f.value - BigInt::from(f.err.clone());
        let f_high = &f.value + BigInt::from(f.err.clone());
        let upper = ln(&(&u + 1u32), -u_bits, w);
        if upper.value + BigInt::from(upper.err) <= f_low {
            return Ok(true);
        }
        if !u.is_zero() {
            let lower = ln(&u, -u_bits, w);
            if lower.value - BigInt::from(lower.err) >= f_high {
                return Ok(false);
            }
        }
        u = (u << 64u32) + BigUint::from(coins.next_bits(64));
        u_bits += 64;
    }
    Err(OpeError::SamplerPrecision)
}

/// `ln ρ(k) = Σ_i [ln Γ(x_i(m₀)+1) − ln Γ(x_i(k)+1)]` at precision `w`.
pub(super) fn log_ratio(p: &Params, k: u64, w: u32) -> Approx {
    let args = |x: u64| {
        let (x, m) = (u128::from(x), u128::from(p.m));
        [x, m - x, p.n - x, p.n + x - m]
    };
    let mut value = BigInt::zero();
    let mut err = BigUint::zero();
    for (at_mode, at_k) in args(p.mode).into_iter().zip(args(k)) {
        let plus = ln_gamma(at_mode + 1, w);
        let minus = ln_gamma(at_k + 1, w);
        value += plus.value - minus.value;
        err += plus.err + minus.err;
    }
    Approx { value, err }
}

/// `ln Γ(z) − ½ ln 2π` for an integer `z ≥ 1`, at precision `w`.
fn ln_gamma(z: u128, w: u32) -> Approx {
    if z < STIRLING_FROM {
        let product = (z..STIRLING_FROM).fold(BigUint::one(), |acc, i| acc * BigUint::from(i));
        let shifted = ln_gamma(STIRLING_FROM, w);
        let log = ln(&product, 0, w);
        return Approx {
            value: shifted.value - log.value,
            err: shifted.err + log.err,
        };
    }
    let z_big = BigUint::from(z);
    // Work with enough guard bits that multiplying ln z by z keeps `w` bits after the point.
    let guard = u32::try_from(z_big.bits()).unwrap_or(u32::MAX / 2) + 8;
    let wi = w + guard;
    let log_z = ln(&z_big, 0, wi);
    let two_z_minus_one = BigUint::from(2u32) * &z_big - 1u32;
    let mut value = (BigInt::from(two_z_minus_one.clone()) * log_z.value) >> 1u32;
    let mut err = (two_z_minus_one * log_z.err) / 2u32 + 2u32;
    value -= BigInt::from(z_big.clone()) << wi;
    let bernoulli = bernoulli_even();
    let mut z_power = z_big.clone();
    let z_squared = &z_big * &z_big;
    for (index, (num, den)) in bernoulli.iter().enumerate().take(STIRLING_TERMS) {
        // B_{2j} / (2j (2j−1) z^(2j−1)), j = index + 1.
        let j2 = 2 * (index as u64 + 1);
        let divisor = BigInt::from(den.clone() * BigUint::from(j2 * (j2 - 1)) * &z_power);
        value += (num << wi) / divisor;
        err += 1u32;
        z_power *= &z_squared;
    }
    // Remainder: at most the first omitted term, |B_{2K+2}| / ((2K+2)(2K+1) z^(2K+1)).
    let (num, den) = &bernoulli[STIRLING_TERMS];
    let j2 = 2 * (STIRLING_TERMS as u64 + 1);
    let divisor = den.clone() * BigUint::from(j2 * (j2 - 1)) * &z_power;
    err += (num.magnitude() << wi) / divisor + 1u32;
    let value = value >> guard;
    let err = (err >> guard) + 2u32;
    Approx { value, err }
}

/// `ln(y · 2^exp2)` for `y > 0`, at precision `w`.
fn ln(y: &BigUint, exp2: i64, w: u32) -> Approx {
    let bits = y.bits() as i64;
    let exponent = bits - 1 + exp2;
    let shift = i64::from(w) - (bits - 1);
    let mantissa = if shift >= 0 {
        y << shift as u64
    } else {
        y >> (-shift) as u64
    };
    let mant = atanh_log(&mantissa, w);
    let two = ln2(w);
    Approx {
        value: BigInt::from(exponent) * two.value + mant.value,
        err: BigUint::from(exponent.unsigned_abs()) * two.err + mant.err + 1u32,
    }
}

/// `ln 2 = 2·atanh(1/3)` at precision `w`.
fn ln2(w: u32) -> Approx {
    let one = BigUint::one() << w;
    atanh_series(one / 3u32, w)
}

/// `ln x` for `x ∈ [1, 2)` given at precision `w`, as `2·atanh((x−1)/(x+1))`.
fn atanh_log(x: &BigUint, w: u32) -> Approx {
    let one = BigUint::one() << w;
    let s = ((x - &one) << w) / (x + &one);
    atanh_series(s, w)
}

/// `2·atanh(s) = 2·Σ s^(2j+1)/(2j+1)` for `0 ≤ s < 1/3 + ulp`, at precision `w`.
fn atanh_series(s: BigUint, w: u32) -> Approx {
    let s_squared = (&s * &s) >> w;
    let mut power = s;
    let mut sum = BigUint::zero();
    let mut terms = 0u64;
    let mut j = 0u64;
    while !power.is_zero() {
        sum += &power / BigUint::from(2 * j + 1);
        power = (power * &s_squared) >> w;
        j += 1;
        terms += 1;
    }
    // Each term errs by a few ulps (truncated products and quotients, and the ≤ 2 ulp error of
    // `s` amplified by at most 1/(1 − s²) < 1.15); 8 per term plus 32 bounds it with room.
    Approx {
        value: BigInt::from_biguint(Sign::Plus, sum << 1u32),
        err: BigUint::from(2 * (8 * terms + 32)),
    }
}

/// `(B_{2j}, as numerator and positive denominator)` for `j = 1 ..= STIRLING_TERMS + 1`,
/// computed once, exactly, from `Σ_{i<m+1} C(m+1, i) B_i = 0`.
fn bernoulli_even() -> &'static [(BigInt, BigUint)] {
    static TABLE: OnceLock<Vec<(BigInt, BigUint)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let count = 2 * (STIRLING_TERMS + 1) + 1;
        let mut all: Vec<(BigInt, BigInt)> = vec![(BigInt::one(), BigInt::one())];
        for m in 1..count {
            // B_m = −1/(m+1) · Σ_{i<m} C(m+1, i) B_i
            let mut num = BigInt::zero();
            let mut den = BigInt::one();
            let mut binom = BigInt::one(); // C(m+1, 0)
            for (i, (bn, bd)) in all.iter().enumerate() {
                let term_num = &binom * bn;
                num = &num * bd + term_num * &den;
                den *= bd;
                let g = num.gcd(&den);
                if !g.is_zero() {
                    num /= &g;
                    den /= &g;
                }
                binom = binom * BigInt::from(m + 1 - i) / BigInt::from(i + 1);
            }
            den *= BigInt::from(m + 1);
            num = -num;
            let g = num.gcd(&den);
            if !g.is_zero() && !g.is_one() {
                num /= &g;
                den /= &g;
            }
            all.push((num, den));
        }
        all.into_iter()
            .skip(2)
            .step_by(2)
            .take(STIRLING_TERMS + 1)
            .map(|(num, den)| {
                let sign_fix = if den.is_negative() { -num } else { num };
                (sign_fix, den.magnitude().clone())
            })
            .collect()
    })
}

/// `ln ρ(k)` at 128 bits, rounded to `f64`, for checking the filter.
#[cfg(test)]
pub(super) fn log_ratio_f64(p: &Params, k: u64) -> f64 {
    tests::to_f64(&log_ratio(p, k, 128), 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn to_f64(a: &Approx, w: u32) -> f64 {
        let (sign, mag) = a.value.clone().into_parts();
        let bits = mag.bits();
        let top = if bits > 64 {
            &mag >> (bits - 64)
        } else {
            mag.clone()
        };
        let digits = top.to_u64_digits();
        let x = digits.first().copied().unwrap_or(0) as f64
            * 2f64.powi(bits.saturating_sub(64) as i32 - w as i32);
        if sign == Sign::Minus { -x } else { x }
    }

    #[test]
    fn bernoulli_numbers_are_the_known_ones() {
        let b = bernoulli_even();
        let check = |j: usize, num: i64, den: u64| {
            assert_eq!(
                b[j - 1],
                (BigInt::from(num), BigUint::from(den)),
                "B_{}",
                2 * j
            );
        };
        check(1, 1, 6);
        check(2, -1, 30);
        check(3, 1, 42);
        check(4, -1, 30);
        check(5, 5, 66);
        check(6, -691, 2730);
        check(7, 7, 6);
        check(8, -3617, 510);
    }

    #[test]
    fn logarithms_match_f64() {
        for (y, e) in [(3u64, 0i64), (1, 0), (10, 0), (123_456_789, -40), (7, 100)] {
            let a = ln(&BigUint::from(y), e, 128);
            let expect = (y as f64).ln() + e as f64 * std::f64::consts::LN_2;
            assert!((to_f64(&a, 128) - expect).abs() < 1e-12, "ln({y}·2^{e})");
        }
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        // ln Γ(z) − ½ ln 2π against the f64 sum of logarithms, on both sides of the shift.
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        for z in [1u128, 2, 5, 100, 255, 256, 257, 1000] {
            let exact: f64 = (1..z).map(|i| (i as f64).ln()).sum::<f64>() - half_ln_2pi;
            let a = ln_gamma(z, 128);
            assert!((to_f64(&a, 128) - exact).abs() < 1e-9, "z = {z}");
        }
    }
}
