//! Large domain counts: rejection sampling from a piecewise-constant envelope, with a certified
//! floating-point filter for the accept/reject decision.
//!
//! Let `ρ(k) = P(k) / P(mode)` with mode `m₀ = ⌊(M+1)/2⌋` (the hypergeometric mode
//! `⌊(n+1)(M+1)/(N+2)⌋` for `N = 2n`). `ln ρ` is concave (the hypergeometric law is log-concave)
//! and zero at the mode. The envelope is a sequence of blocks on each side of the mode whose
//! heights are certified upper bounds of `ρ` over the block (see [`envelope`]), stored as
//! integers over `2^48`, and one last block of height `2^-48` reaching the end of the support.
//! One uniform integer below the total weight picks the block, the position in it, and the
//! first 48 bits of the acceptance
//! variable `u`; `k` is accepted iff `u < ρ(k)`.

use super::exact;
use super::{Decide, MAX_M};
use crate::error::OpeError;
use crate::prf::Coins;

/// Envelope heights are integers over `2^HEIGHT_BITS`.
const HEIGHT_BITS: u32 = 48;
const SCALE: u64 = 1 << HEIGHT_BITS;
/// Relative safety margin of the floating-point filter: each `f64` operation errs by at most
/// `2^-53` relative, and no evaluation chains more than a dozen of them, so `2^-40` times the
/// sum of the magnitudes of all summands bounds the error with a factor of over 100 to spare.
const FILTER_RELATIVE_ERROR: f64 = 1.0 / (1u64 << 40) as f64;
/// Below this argument the Stirling tail used by the filter is not accurate enough: the filter
/// abstains and the exact path decides.
const STIRLING_MIN_Z: u128 = 64;

/// The fixed parameters of one draw.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params {
    /// Lower-half size `n = N/2`.
    pub(super) n: u128,
    /// Domain count `M`.
    pub(super) m: u64,
    /// Smallest and largest `k` of the support.
    pub(super) k_min: u64,
    pub(super) k_max: u64,
    /// The mode `m₀`.
    pub(super) mode: u64,
}

impl Params {
    #[cfg(test)]
    pub(super) fn for_tests(half_bits: u32, m: u64) -> Self {
        Self::new(half_bits, m)
    }

    fn new(half_bits: u32, m: u64) -> Self {
        let n = 1u128 << half_bits;
        let k_min = u128::from(m).saturating_sub(n) as u64;
        let k_max = u128::from(m).min(n) as u64;
        let mode = m.div_ceil(2).clamp(k_min, k_max);
        Self {
            n,
            m,
            k_min,
            k_max,
            mode,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Block {
    start: u64,
    width: u64,
    height: u64,
}

/// Samples `HG(2n, m, n)` with `n = 2^half_bits`.
pub(super) fn sample(
    coins: &mut Coins<'_>,
    half_bits: u32,
    m: u64,
    decide: Decide,
) -> Result<u64, OpeError> {
    debug_assert!(m <= MAX_M);
    let params = Params::new(half_bits, m);
    let blocks = envelope(&params);
    let total: u128 = blocks
        .iter()
        .map(|b| u128::from(b.width) * u128::from(b.height))
        .sum();
    loop {
        let mut draw = coins.below(total);
        let mut chosen = None;
        for block in blocks.iter() {
            let weight = u128::from(block.width) * u128::from(block.height);
            if draw < weight {
                chosen = Some(*block);
                break;
            }
            draw -= weight;
        }
        let block = chosen.ok_or(OpeError::SamplerOutOfRange)?;
        let k = block.start + (draw / u128::from(block.height)) as u64;
        let r = (draw % u128::from(block.height)) as u64;
        if k == params.mode {
            // ρ = 1 > u always.
            return Ok(k);
        }
        let verdict = match decide {
            Decide::Filtered => squeeze(&params, k, r).or_else(|| filter(&params, k, r)),
            Decide::ExactOnly => None,
        };
        let accepted = match verdict {
            Some(accepted) => accepted,
            None => exact::accepts(coins, &params, k, r, HEIGHT_BITS)?,
        };
        if accepted {
            return Ok(k);
        }
    }
}

/// The blocks of the envelope: right side, then left side.
///
/// Heights come from a closed-form bound rather than from `ρ` itself. With `a = ⌊M/2⌋`,
/// `b = m₀ = ⌈M/2⌉`, the hypergeometric ratio is at most the binomial one (the correction
/// `∏(1 − i/n)` peaks at the mode), and `C(M, m₀+δ)/C(M, m₀) = ∏_{j≤δ} (a−j+1)/(b+j)`
/// `≤ ∏ exp(−(2j−1)/(b+δ)) = exp(−δ²/(b+δ))`; to the left, likewise,
/// `ρ(m₀−δ) ≤ exp(−δ(δ−1)/(a+1+δ))`. Central blocks have width `w ≈ σ/2` up to `4σ`, where
/// a common denominator turns the bound into `q^(j²)`; beyond, widths double.
fn envelope(p: &Params) -> Blocks {
    let sigma = (p.m as f64).sqrt() / 2.0;
    let w = ((sigma / 2.0) as u64).max(1);
    let central = CENTRAL_BLOCKS as u64 * w;
    let a = (p.m / 2) as f64;
    let b = p.mode as f64;
    let mut blocks = Blocks::default();
    // Right: δ ∈ [jw, (j+1)w) for j < J, bounded by exp(−(jw)²/(b + Jw)) = q^(j²).
    let q = exp_neg_upper((w * w) as f64 / (b + central as f64));
    let mut offsets = Side::new(q);
    let tail = |delta: u64| {
        let d = delta as f64;
        exp_neg_upper(d * d / (b + d))
    };
    push_side(&mut blocks, &mut offsets, w, tail, |lo, hi| {
        let start = p.mode.checked_add(lo).filter(|&s| s <= p.k_max)?;
        Some((
            start,
            hi.map_or(p.k_max, |hi| p.mode.saturating_add(hi).min(p.k_max)),
        ))
    });
    // Left: δ ∈ [jw + 1, (j+1)w], bounded by exp(−(jw)²/(a + 2 + Jw)) = q^(j²).
    let q = exp_neg_upper((w * w) as f64 / (a + 2.0 + central as f64));
    let mut offsets = Side::new(q);
    let tail = |delta: u64| {
        let d = (delta + 1) as f64;
        exp_neg_upper(d * (d - 1.0) / (a + 1.0 + d))
    };
    push_side(&mut blocks, &mut offsets, w, tail, |lo, hi| {
        let end = p.mode.checked_sub(lo + 1).filter(|&e| e >= p.k_min)?;
        Some((
            hi.map_or(p.k_min, |hi| p.mode.saturating_sub(hi + 1).max(p.k_min)),
            end,
        ))
    });
    blocks
}

/// The envelope's blocks as `(start, width, height)`, for tests.
#[cfg(test)]
pub(super) fn envelope_for_tests(p: &Params) -> Vec<(u64, u64, u64)> {
    envelope(p)
        .iter()
        .map(|b| (b.start, b.width, b.height))
        .collect()
}

/// Central blocks per side (of width `σ/2`, so up to `4σ`).
const CENTRAL_BLOCKS: usize = 8;
/// Doubling tail blocks per side at most; the last one reaches the end of the support with the
/// bound at its start (the bound is below `2^-48` well before: at `7σ·2^7` it is `e^-(10^5)`).
const TAIL_BLOCKS: usize = 8;
const MAX_BLOCKS: usize = 2 * (CENTRAL_BLOCKS + TAIL_BLOCKS + 1);

/// A fixed-capacity list of blocks (no allocation per draw).
struct Blocks {
    items: [Block; MAX_BLOCKS],
    len: usize,
}

impl Default for Blocks {
    fn default() -> Self {
        Self {
            items: [Block {
                start: 0,
                width: 0,
                height: 0,
            }; MAX_BLOCKS],
            len: 0,
        }
    }
}

impl Blocks {
    fn push(&mut self, block: Block) {
        if self.len < MAX_BLOCKS {
            self.items[self.len] = block;
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Block> {
        self.items[..self.len].iter()
    }
}

/// Running powers `q^(j²)` for the central blocks, rounded up.
struct Side {
    power: f64,
    odd: f64,
    q_squared: f64,
}

impl Side {
    fn new(q: f64) -> Self {
        Self {
            power: 1.0,
            odd: q,
            q_squared: up(q * q),
        }
    }

    /// `q^(j²)`, then advances to `j + 1`: `q^((j+1)²) = q^(j²) · q^(2j+1)`.
    fn next(&mut self) -> f64 {
        let current = self.power;
        self.power = up(self.power * self.odd);
        self.odd = up(self.odd * self.q_squared);
        current
    }
}

/// Pushes one side's blocks. `place(lo, hi)` maps offsets from the mode (`hi = None`: to the
/// end of the support) to a clipped `(first k, last k)`, or `None` past the support.
fn push_side(
    blocks: &mut Blocks,
    side: &mut Side,
    w: u64,
    tail: impl Fn(u64) -> f64,
    place: impl Fn(u64, Option<u64>) -> Option<(u64, u64)>,
) {
    let mut add = |lo: u64, hi: u64, bound: f64| -> bool {
        let height = height_of(bound);
        let last = height == 1;
        let Some((first, end)) = place(lo, (!last).then_some(hi)) else {
            return false;
        };
        blocks.push(Block {
            start: first,
            width: end - first + 1,
            height,
        });
        !last && place(hi + 1, Some(hi + 1)).is_some()
    };
    for j in 0..CENTRAL_BLOCKS as u64 {
        if !add(j * w, (j + 1) * w - 1, side.next()) {
            return;
        }
    }
    let mut lo = CENTRAL_BLOCKS as u64 * w;
    for i in 0..TAIL_BLOCKS {
        let hi = if i + 1 == TAIL_BLOCKS {
            u64::MAX / 2
        } else {
            lo.saturating_mul(2) - 1
        };
        if !add(lo, hi, tail(lo)) {
            return;
        }
        lo = hi + 1;
    }
}

/// Rounds a product up by more than its rounding error.
fn up(x: f64) -> f64 {
    (x * (1.0 + 4.0 * f64::EPSILON)).min(1.0)
}

/// An upper bound of `exp(−x)` for `x ≥ 0` computed in `f64`: `x` is shrunk by far more than
/// its own rounding error and the result raised by more than `exp`'s.
fn exp_neg_upper(x: f64) -> f64 {
    up((-(x * (1.0 - FILTER_RELATIVE_ERROR))).exp())
}

/// An integer height at least `bound · 2^48` (truncation plus one: no libm `ceil` call), at
/// least 1 and at most `2^48`.
fn height_of(bound: f64) -> u64 {
    ((bound * SCALE as f64) as u64)
        .saturating_add(1)
        .clamp(1, SCALE)
}

/// Decides from closed-form bounds alone when `u` falls outside `[L(k), U(k)]`, which it does
/// for nearly every draw (the bounds differ by a factor `exp(O(δ³/M²))`). With `a = ⌊M/2⌋`,
/// `b = ⌈M/2⌉` and `ln(1 − x) ≥ −x/(1 − x)`:
/// right of the mode `exp(−(δ² + δ(b−a))/(a−δ+1))·(1 − S/n) ≤ ρ(m₀+δ) ≤ exp(−δ²/(b+δ))`,
/// left of it `exp(−(δ² + δ(a−b))/(b−δ+1))·(1 − S/n) ≤ ρ(m₀−δ) ≤ exp(−δ(δ−1)/(a+1+δ))`,
/// where `1 − S/n ≤ ∏(1 − i/n)` (Bonferroni) with `S = (k(k−1) + (M−k)(M−k−1))/2` bounds the
/// hypergeometric correction, whose value at the mode is at most 1.
fn squeeze(p: &Params, k: u64, r: u64) -> Option<bool> {
    let a = (p.m / 2) as f64;
    let b = p.mode as f64;
    let (lower_exponent, upper_exponent) = if k > p.mode {
        let d = (k - p.mode) as f64;
        ((d * d + d * (b - a)) / (a - d + 1.0), d * d / (b + d))
    } else {
        let d = (p.mode - k) as f64;
        (
            (d * d + d * (a - b)) / (b - d + 1.0),
            d * (d - 1.0) / (a + 1.0 + d),
        )
    };
    let (kf, mf) = (k as f64, p.m as f64);
    let s = (kf * (kf - 1.0) + (mf - kf) * (mf - kf - 1.0)) / 2.0;
    let correction = 1.0 - s / p.n as f64 * (1.0 + FILTER_RELATIVE_ERROR);
    let scale = 1.0 / SCALE as f64;
    if lower_exponent.is_finite() && lower_exponent >= 0.0 && correction > 0.0 {
        let lower = exp_neg_lower(lower_exponent) * correction * (1.0 - 4.0 * f64::EPSILON);
        if (r + 1) as f64 * scale <= lower {
            return Some(true);
        }
    }
    if r > 0 && r as f64 * scale >= exp_neg_upper(upper_exponent) {
        return Some(false);
    }
    None
}

/// `squeeze` for tests: its verdict with `u` just below and just above `target`.
#[cfg(test)]
pub(super) fn squeeze_for_tests(p: &Params, k: u64, r: u64) -> Option<bool> {
    squeeze(p, k, r)
}

/// A lower bound of `exp(−x)` for `x ≥ 0` computed in `f64` (mirror of [`exp_neg_upper`]).
fn exp_neg_lower(x: f64) -> f64 {
    (-(x * (1.0 + FILTER_RELATIVE_ERROR))).exp() * (1.0 - 4.0 * f64::EPSILON)
}

/// The filter: `Some(accept)` when the `f64` bound decides `u < ρ(k)` for
/// `u ∈ [r·2^-48, (r+1)·2^-48)`, `None` when it cannot.
fn filter(p: &Params, k: u64, r: u64) -> Option<bool> {
    let (f, err) = log_ratio(p, k)?;
    let scale = 1.0 / SCALE as f64;
    let u_low = r as f64 * scale;
    let u_high = (r + 1) as f64 * scale;
    let rho_low = (f - err).exp() * (1.0 - 4.0 * f64::EPSILON);
    // exp underflows to 0 below −745; 2^-1000 still bounds ρ from above there.
    let rho_high = if f + err < -700.0 {
        f64::from_bits(0x0170_0000_0000_0000)
    } else {
        (f + err).exp() * (1.0 + 4.0 * f64::EPSILON)
    };
    if u_high <= rho_low {
        Some(true)
    } else if r > 0 && u_low >= rho_high {
        Some(false)
    } else {
        None
    }
}

/// `ln ρ(k)` in `f64` with a certified absolute error bound, or `None` when an argument is too
/// small for the Stirling tail (the exact path then decides).
///
/// With `x₁ = k, x₂ = M − k, x₃ = n − k, x₄ = n − M + k`, `ln ρ(k) = −Σ_i ln(x_i(k)! / x_i(m₀)!)`.
/// Writing each term with Stirling's formula around `z_i = x_i(m₀) + 1`, `δ_i = x_i(k) − x_i(m₀)`
/// (`δ₁ = δ₄ = δ`, `δ₂ = δ₃ = −δ`, so `Σ δ_i = 0`) gives the cancellation-free form
/// `δ (ln1p(a) + ln1p(b)) − Σ δ_i φ(t_i) + ½ Σ ln1p(t_i) − Σ Δc_i`
/// with `a = (M − 2k)/(k + 1)`, `b = (M − 2k)/(n − M + k + 1)`, `t_i = δ_i / z_i`,
/// `φ(t) = ln1p(t)/t − 1` and `c` the Stirling correction `1/(12z) − 1/(360z³) + 1/(1260z⁵)`.
pub(super) fn log_ratio(p: &Params, k: u64) -> Option<(f64, f64)> {
    let m = u128::from(p.m);
    let (k128, mode) = (u128::from(k), u128::from(p.mode));
    let low = p.n.checked_sub(m)?;
    let args_now = [k128, m - k128, p.n - k128, low + k128];
    let args_mode = [mode, m - mode, p.n - mode, low + mode];
    if args_now
        .iter()
        .chain(args_mode.iter())
        .any(|&x| x + 1 < STIRLING_MIN_Z)
    {
        return None;
    }
    let delta = k as f64 - p.mode as f64;
    let diff = p.m as f64 - 2.0 * k as f64;
    let a = diff / (k as f64 + 1.0);
    let b = diff / ((low + k128 + 1) as f64);
    let (la, lb) = (a.ln_1p(), b.ln_1p());
    let mut value = delta * (la + lb);
    let mut magnitude = delta.abs() * (la.abs() + lb.abs() + a.abs() + b.abs());
    let mut tail = 0.0;
    for i in 0..4 {
        let z = (args_mode[i] + 1) as f64;
        let z_end = (args_now[i] + 1) as f64;
        let d = if i == 0 || i == 3 { delta } else { -delta };
        let t = d / z;
        let lt = t.ln_1p();
        let phi = if t.abs() < 1e-4 {
            // ln1p(t)/t − 1 = −t/2 + t²/3 − t³/4 + t⁴/5 − …; the rest is below |t|⁵/5.
            tail += d.abs() * t.abs().powi(5) / 5.0;
            t * (-0.5 + t * (1.0 / 3.0 + t * (-0.25 + t * 0.2)))
        } else {
            lt / t - 1.0
        };
        let (c_end, c_start) = (stirling_correction(z_end), stirling_correction(z));
        value += -d * phi + 0.5 * lt - (c_end - c_start);
        magnitude += (d * phi).abs() + 0.5 * lt.abs() + c_end.abs() + c_start.abs();
        tail += stirling_remainder(z) + stirling_remainder(z_end);
    }
    let err = FILTER_RELATIVE_ERROR * (1.0 + magnitude) + 2.0 * tail;
    Some((value, err))
}

/// `1/(12z) − 1/(360z³) + 1/(1260z⁵)`, the first terms of `ln Γ(z) − Stirling`.
fn stirling_correction(z: f64) -> f64 {
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))
}

/// The next Stirling term bounds the truncation error: `1/(1680 z⁷)`.
fn stirling_remainder(z: f64) -> f64 {
    1.0 / (1680.0 * z.powi(7))
}
