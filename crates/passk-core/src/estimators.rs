//! pass@k estimators and the pass@k weight `w_k`.
//!
//! With `n` samples of which `c` are correct, the unbiased estimate of pass@k is
//! `ρ(n, c, k) = 1 − C(n−c, k)/C(n, k)` ([`pass_at_k`]). The plug-in `1 − (1 − c/n)^k`
//! ([`pass_at_k_plugin`]) is biased and must only be reported beside it, labelled.

use crate::CoreError;

/// Checks `1 <= k <= n` and `c <= n`.
fn check_nck(n: u32, c: u32, k: u32) -> Result<(), CoreError> {
    if k == 0 || k > n {
        return Err(CoreError::InvalidK { k, n });
    }
    if c > n {
        return Err(CoreError::InvalidCount { c, n });
    }
    Ok(())
}

/// Unbiased pass@k estimate `ρ(n, c, k) = 1 − C(n−c, k) / C(n, k)` from `n` samples with `c`
/// correct (Chen et al. 2021). Equals 1 when `n − c < k`.
///
/// Computed in the stable product form `1 − Π_{i=n−c+1..=n} (1 − k/i)`, summed in logs, so it
/// neither overflows nor loses the small values (accurate to ~1e-12 relative for n up to 10^4
/// and beyond).
///
/// # Errors
/// [`CoreError::InvalidK`] when `k == 0` or `k > n`; [`CoreError::InvalidCount`] when `c > n`.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> Result<f64, CoreError> {
    check_nck(n, c, k)?;
    Ok(rho_unchecked(n, c, k))
}

/// `ρ(n, c, k)` for already-validated arguments, extended with `ρ(n, c, 0) = 0` (pass@0 is 0).
/// Requires `k <= n` and `c <= n`.
pub(crate) fn rho_unchecked(n: u32, c: u32, k: u32) -> f64 {
    debug_assert!(k <= n && c <= n);
    if k == 0 || c == 0 {
        return 0.0;
    }
    if n - c < k {
        return 1.0;
    }
    // Every factor 1 − k/i has i >= n − c + 1 > k, so it lies in (0, 1).
    let kf = k as f64;
    let log_prod: f64 = ((n - c + 1)..=n).map(|i| (-kf / i as f64).ln_1p()).sum();
    -log_prod.exp_m1()
}

/// BIASED plug-in estimate `1 − (1 − c/n)^k`: the population formula evaluated at the sample
/// success rate. By Jensen's inequality it underestimates pass@k on average; report it only
/// beside [`pass_at_k`] and labelled "plug-in (biased)".
///
/// # Errors
/// [`CoreError::InvalidK`] when `k == 0` or `k > n`; [`CoreError::InvalidCount`] when `c > n`.
pub fn pass_at_k_plugin(n: u32, c: u32, k: u32) -> Result<f64, CoreError> {
    check_nck(n, c, k)?;
    Ok(pass_at_k_of_p(c as f64 / n as f64, k))
}

/// Population pass@k `1 − (1 − p)^k` of a prompt with per-sample success probability `p`.
///
/// Returns 0 for `k = 0` and NaN when `p` is not in `[0, 1]`.
pub fn pass_at_k_of_p(p: f64, k: u32) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if k == 0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    -(k as f64 * (-p).ln_1p()).exp_m1()
}

/// The pass@k weight `w_k(p) = k (1 − p)^(k−1) = d/dp [1 − (1 − p)^k]`, so that
/// `∇J_k = E_x[w_k(p(x)) ∇p(x)]`.
///
/// `w_1(p) == 1.0` exactly for every `p` in `[0, 1]`; `w_0 = 0`. Returns NaN when `p` is not in
/// `[0, 1]`.
pub fn w_k(p: f64, k: u32) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    match k {
        0 => 0.0,
        1 => 1.0,
        _ => k as f64 * (1.0 - p).powf((k - 1) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::ln_binomial;
    use proptest::prelude::*;

    /// Exact C(n, k) in u128 (fits for n <= 120).
    fn binom_u128(n: u32, k: u32) -> u128 {
        if k > n {
            return 0;
        }
        let k = k.min(n - k);
        let mut r: u128 = 1;
        for i in 0..k {
            r = r * (n - i) as u128 / (i + 1) as u128;
        }
        r
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn theory_vectors() {
        assert!(close(pass_at_k(8, 2, 4).unwrap(), 0.785_714_285_714, 1e-9));
        assert!(close(pass_at_k(16, 1, 8).unwrap(), 0.5, 1e-12));
        assert!(close(pass_at_k(100, 3, 50).unwrap(), 0.878_788, 1e-6));
        assert_eq!(pass_at_k(10, 0, 5).unwrap(), 0.0);
        assert_eq!(pass_at_k(5, 5, 5).unwrap(), 1.0);
    }

    #[test]
    fn errors() {
        assert_eq!(pass_at_k(5, 1, 0), Err(CoreError::InvalidK { k: 0, n: 5 }));
        assert_eq!(pass_at_k(5, 1, 6), Err(CoreError::InvalidK { k: 6, n: 5 }));
        assert_eq!(
            pass_at_k(5, 6, 2),
            Err(CoreError::InvalidCount { c: 6, n: 5 })
        );
        assert_eq!(pass_at_k(0, 0, 1), Err(CoreError::InvalidK { k: 1, n: 0 }));
        assert!(pass_at_k_plugin(5, 6, 2).is_err());
        assert!(pass_at_k_plugin(5, 2, 0).is_err());
    }

    #[test]
    fn exact_against_rationals_small_n() {
        for n in 1..=100u32 {
            for c in 0..=n {
                for k in 1..=n {
                    let num = binom_u128(n - c, k);
                    let den = binom_u128(n, k);
                    // 1 − num/den computed as an exact integer difference before dividing.
                    let want = (den - num) as f64 / den as f64;
                    let got = pass_at_k(n, c, k).unwrap();
                    assert!(
                        (got - want).abs() <= 1e-13 * want.max(1e-300) + 1e-300,
                        "n={n} c={c} k={k}: got {got}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_n_against_exact_rationals() {
        // For c <= 9, C(n−c, k)/C(n, k) = Π_{j<c} (n−k−j)/(n−j) has numerator and denominator
        // below 10^36, so 1 − ratio = (den − num)/den is exact in u128 before one rounding.
        let n = 10_000u32;
        for c in 0..=9u32 {
            for &k in &[
                1u32, 2, 3, 10, 100, 1_000, 5_000, 9_990, 9_991, 9_999, 10_000,
            ] {
                let got = pass_at_k(n, c, k).unwrap();
                let want = if n - c < k {
                    1.0
                } else {
                    let mut num: u128 = 1;
                    let mut den: u128 = 1;
                    for j in 0..c {
                        num *= (n - k - j) as u128;
                        den *= (n - j) as u128;
                    }
                    (den - num) as f64 / den as f64
                };
                assert!(
                    (got - want).abs() <= 1e-12 * want,
                    "n={n} c={c} k={k}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn large_n_against_log_gamma() {
        let n = 10_000u32;
        for &c in &[10u32, 50, 500, 3_000, 9_000] {
            for &k in &[1u32, 2, 10, 100, 1_000, 5_000, 9_999, 10_000] {
                let got = pass_at_k(n, c, k).unwrap();
                let want = if n - c < k {
                    1.0
                } else {
                    let ln_ratio =
                        ln_binomial((n - c) as u64, k as u64) - ln_binomial(n as u64, k as u64);
                    -ln_ratio.exp_m1()
                };
                assert!(got.is_finite() && (0.0..=1.0).contains(&got));
                // ln Γ near 8e4 carries ~1e-11 absolute error, hence the absolute term.
                assert!(
                    (got - want).abs() <= 1e-8 * want + 1e-10,
                    "n={n} c={c} k={k}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn plugin_is_biased_and_labelled_value() {
        // 1 − (1 − 2/8)^4 = 1 − 0.75^4 = 0.68359375, below the unbiased 0.7857.
        assert!(close(
            pass_at_k_plugin(8, 2, 4).unwrap(),
            0.683_593_75,
            1e-15
        ));
        // Expectation of the unbiased estimator under Binomial(n, p) equals 1 − (1 − p)^k,
        // while the plug-in's expectation does not.
        let (n, k, p) = (8u32, 4u32, 0.2f64);
        let mut e_unbiased = 0.0;
        let mut e_plugin = 0.0;
        for c in 0..=n {
            let prob = binom_u128(n, c) as f64 * p.powi(c as i32) * (1.0 - p).powi((n - c) as i32);
            e_unbiased += prob * pass_at_k(n, c, k).unwrap();
            e_plugin += prob * pass_at_k_plugin(n, c, k).unwrap();
        }
        let truth = pass_at_k_of_p(p, k);
        assert!(close(e_unbiased, truth, 1e-13));
        assert!((e_plugin - truth).abs() > 1e-3);
    }

    #[test]
    fn population_and_weight() {
        assert!(close(pass_at_k_of_p(0.25, 4), 1.0 - 0.75f64.powi(4), 1e-15));
        assert_eq!(pass_at_k_of_p(1.0, 3), 1.0);
        assert_eq!(pass_at_k_of_p(0.0, 3), 0.0);
        assert_eq!(pass_at_k_of_p(0.3, 0), 0.0);
        assert!(pass_at_k_of_p(1.5, 2).is_nan());
        for &p in &[0.0, 1e-9, 0.3, 0.5, 0.999, 1.0] {
            assert_eq!(w_k(p, 1), 1.0);
        }
        assert_eq!(w_k(0.0, 4), 4.0);
        assert_eq!(w_k(1.0, 4), 0.0);
        assert!(close(w_k(0.5, 3), 0.75, 1e-15));
        assert!(w_k(-0.1, 2).is_nan());
        // w_k is the derivative of pass@k in p (central difference).
        for &k in &[2u32, 3, 8] {
            let p = 0.37;
            let h = 1e-6;
            let num = (pass_at_k_of_p(p + h, k) - pass_at_k_of_p(p - h, k)) / (2.0 * h);
            assert!(close(num, w_k(p, k), 1e-7));
        }
    }

    proptest! {
        #[test]
        fn k1_is_mean_and_kn_is_indicator(n in 1u32..400, c_frac in 0.0f64..=1.0) {
            let c = ((n as f64) * c_frac).floor() as u32;
            let v1 = pass_at_k(n, c, 1).unwrap();
            prop_assert!((v1 - c as f64 / n as f64).abs() < 1e-12);
            let vn = pass_at_k(n, c, n).unwrap();
            prop_assert_eq!(vn, if c > 0 { 1.0 } else { 0.0 });
        }

        #[test]
        fn monotone_in_c_and_k_and_bounded(n in 1u32..300, k_frac in 0.0f64..=1.0) {
            let k = 1 + ((n - 1) as f64 * k_frac).floor() as u32;
            let mut prev = -1.0;
            for c in 0..=n {
                let v = pass_at_k(n, c, k).unwrap();
                prop_assert!((0.0..=1.0).contains(&v));
                prop_assert!(v >= prev, "not monotone in c at n={} c={} k={}", n, c, k);
                prev = v;
                if k < n {
                    prop_assert!(pass_at_k(n, c, k + 1).unwrap() >= v - 1e-15);
                }
            }
        }
    }
}
