//! The sampler draws the hypergeometric law: moments, tails, and the filter against the exact
//! path.

use super::reject::{Params, envelope_for_tests, log_ratio, squeeze_for_tests};
use super::*;
use crate::prf::{CoinPrf, Purpose};

fn prf() -> CoinPrf {
    CoinPrf::new(&[7u8; 32], 32, 96)
}

/// Draws `count` samples of `HG(2^range_bits, m, 2^(range_bits−1))`, one node per sample.
fn draws(range_bits: u32, m: u64, count: u32, decide: Decide) -> Vec<u64> {
    let prf = prf();
    (0..count)
        .map(|i| {
            let mut coins = prf.coins(Purpose::Split, 96, u128::from(i));
            sample_lower_half(&mut coins, range_bits, m, decide).expect("sampler decides")
        })
        .collect()
}

/// Mean and variance of the sample match `HG(N, M, N/2)`: mean `M/2`, variance
/// `M/4 · (N−M)/(N−1)`, within five standard errors.
fn check_moments(range_bits: u32, m: u64, count: u32, decide: Decide) {
    let sample = draws(range_bits, m, count, decide);
    let n_total = 2f64.powi(range_bits as i32);
    let mean = m as f64 / 2.0;
    let var = m as f64 / 4.0 * (n_total - m as f64) / (n_total - 1.0);
    let count_f = f64::from(count);
    let got_mean = sample.iter().map(|&k| k as f64).sum::<f64>() / count_f;
    let got_var = sample
        .iter()
        .map(|&k| (k as f64 - got_mean).powi(2))
        .sum::<f64>()
        / (count_f - 1.0);
    let mean_se = (var / count_f).sqrt();
    assert!(
        (got_mean - mean).abs() <= 5.0 * mean_se,
        "mean {got_mean} vs {mean} (se {mean_se}) for M = {m}, N = 2^{range_bits}"
    );
    // The variance of the sample variance is about 2σ⁴/(n−1) for a near-normal law.
    let var_se = var * (2.0 / (count_f - 1.0)).sqrt();
    assert!(
        (got_var - var).abs() <= 5.0 * var_se + 0.5,
        "variance {got_var} vs {var} (se {var_se}) for M = {m}, N = 2^{range_bits}"
    );
    assert!(sample.iter().all(|&k| k <= m));
}

#[test]
fn moments_of_the_binomial_path() {
    check_moments(80, 1, 4000, Decide::Filtered);
    check_moments(80, 37, 4000, Decide::Filtered);
    check_moments(96, 4096, 4000, Decide::Filtered);
}

#[test]
fn moments_where_range_is_barely_larger_than_domain() {
    // N = 64, M = 40: the acceptance test rejects often and its exact branch runs.
    check_moments(6, 40, 4000, Decide::Filtered);
    check_moments(3, 8, 2000, Decide::Filtered);
}

#[test]
fn moments_of_the_rejection_path() {
    check_moments(100, BINOMIAL_MAX_M + 1, 4000, Decide::Filtered);
    check_moments(110, 1 << 30, 4000, Decide::Filtered);
    check_moments(116, 1 << 52, 4000, Decide::Filtered);
}

#[test]
fn moments_of_the_exact_path_alone() {
    check_moments(100, BINOMIAL_MAX_M + 7, 300, Decide::ExactOnly);
}

#[test]
fn a_full_range_is_split_in_half_exactly() {
    // M = N: every range point is an image, the lower half holds exactly n of them.
    assert!(draws(4, 16, 20, Decide::Filtered).iter().all(|&k| k == 8));
    assert!(draws(1, 2, 20, Decide::Filtered).iter().all(|&k| k == 1));
}

#[test]
fn the_law_of_a_small_case_matches_exact_probabilities() {
    // HG(8, 4, 4): P(k) = C(4,k)·C(4,4−k)/C(8,4) = (1, 16, 36, 16, 1)/70.
    let sample = draws(3, 4, 14_000, Decide::Filtered);
    let expected = [1.0, 16.0, 36.0, 16.0, 1.0].map(|x| x / 70.0 * 14_000.0);
    let mut counts = [0f64; 5];
    for k in sample {
        counts[k as usize] += 1.0;
    }
    let chi2: f64 = counts
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e).powi(2) / e)
        .sum();
    // 4 degrees of freedom: P(χ² > 23.5) < 1e-4.
    assert!(chi2 < 23.5, "χ² = {chi2}, counts {counts:?}");
}

#[test]
fn the_filter_bound_contains_the_exact_value() {
    for (half_bits, m) in [
        (99u32, 5000u64),
        (109, 1 << 30),
        (115, 1 << 52),
        (70, 100_000),
    ] {
        let p = Params::for_tests(half_bits, m);
        let sigma = (m as f64).sqrt() / 2.0;
        for offset in [-40.0, -7.5, -2.0, -0.3, 0.4, 1.0, 3.0, 9.0, 30.0] {
            let k = (p.mode as f64 + offset * sigma) as u64;
            let Some((f, err)) = log_ratio(&p, k) else {
                continue;
            };
            let exact = exact::log_ratio_f64(&p, k);
            assert!(
                (f - exact).abs() <= err,
                "filter {f} ± {err} misses {exact} at M = {m}, k = {k}"
            );
            assert!(err < 1e-6 * (1.0 + f.abs()), "filter bound {err} too loose");
        }
    }
}

/// `(log2 n, M)` for the rejection path: just past the binomial path, mid-sized, and the largest
/// domains the tree asks for.
const REJECTION_CASES: [(u32, u64); 4] = [
    (99, BINOMIAL_MAX_M + 1),
    (90, 100_001),
    (109, 1 << 30),
    (115, 1 << 52),
];

#[test]
fn the_envelope_lies_above_the_law_everywhere_it_was_checked() {
    for (half_bits, m) in REJECTION_CASES {
        let p = Params::for_tests(half_bits, m);
        let blocks = envelope_for_tests(&p);
        let (first, last) = (
            blocks[0].0,
            blocks.iter().map(|b| b.0 + b.1 - 1).max().unwrap_or(0),
        );
        assert!(
            blocks.iter().any(|b| b.0 == p.k_min),
            "support start not covered"
        );
        assert!(
            blocks.iter().any(|b| b.0 + b.1 - 1 == p.k_max),
            "support end not covered"
        );
        let total: u64 = blocks.iter().map(|b| b.1).sum();
        assert_eq!(
            total,
            p.k_max - p.k_min + 1,
            "blocks overlap or leave gaps ({first}..{last})"
        );
        for &(start, width, height) in &blocks {
            let bound = height as f64 / (1u64 << 48) as f64;
            for k in [start, start + width / 2, start + width - 1] {
                if let Some((f, _)) = log_ratio(&p, k) {
                    assert!(
                        f.exp() <= bound * (1.0 + 1e-9),
                        "ρ({k}) = {} above {bound}",
                        f.exp()
                    );
                }
            }
        }
    }
}

/// The closed-form squeeze never contradicts the exact value: for `u` in
/// `[r·2^-48, (r+1)·2^-48)` it may accept only if `u < ρ(k)` surely, and reject only if
/// `u ≥ ρ(k)` surely.
#[test]
fn the_squeeze_never_contradicts_the_exact_ratio() {
    for (half_bits, m) in REJECTION_CASES {
        let p = Params::for_tests(half_bits, m);
        let sigma = (m as f64).sqrt() / 2.0;
        for offset in [-12.0, -5.0, -2.5, -1.0, -0.2, 0.3, 1.1, 2.0, 4.0, 9.0] {
            let k = (p.mode as f64 + offset * sigma) as u64;
            let rho = exact::log_ratio_f64(&p, k).exp();
            let scaled = rho * (1u64 << 48) as f64;
            for r in [
                0u64,
                1,
                scaled as u64 / 2,
                scaled as u64,
                scaled as u64 + 1,
                scaled as u64 * 2 + 5,
            ] {
                match squeeze_for_tests(&p, k, r) {
                    Some(true) => assert!(
                        ((r + 1) as f64) <= scaled * (1.0 + 1e-9),
                        "accepted u ≥ ρ at M = {m}, k = {k}, r = {r}"
                    ),
                    Some(false) => assert!(
                        (r as f64) >= scaled * (1.0 - 1e-9),
                        "rejected u < ρ at M = {m}, k = {k}, r = {r}"
                    ),
                    None => {}
                }
            }
        }
    }
}
