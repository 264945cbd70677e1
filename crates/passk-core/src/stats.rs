//! Descriptive statistics, Student-t intervals and tests, and the percentile bootstrap.

use crate::rng::{seeded, uniform_index};
use crate::special::{student_t_cdf, student_t_quantile};
use serde::{Deserialize, Serialize};

/// Stream id used by [`bootstrap_ci`] under its seed (ASCII "boot").
pub const BOOTSTRAP_STREAM: u64 = 0x626f_6f74;

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        f64::NAN
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Sample standard deviation (divisor `n − 1`); NaN when `n < 2`.
pub fn sample_std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// A confidence interval `[lo, hi]` at confidence `level` (e.g. 0.95).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Confidence level in (0, 1).
    pub level: f64,
}

impl Interval {
    /// Whether `v` lies in `[lo, hi]`.
    pub fn contains(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// Whether `level` is in the open interval (0, 1) (false for NaN).
fn valid_level(level: f64) -> bool {
    level > 0.0 && level < 1.0
}

fn valid_sample(x: &[f64]) -> bool {
    x.len() >= 2 && x.iter().all(|v| v.is_finite())
}

/// Two-sided Student-t confidence interval for the mean: `mean ± t_{(1+level)/2, n−1} · s/√n`.
///
/// `None` when `n < 2`, a value is not finite, or `level` is not in (0, 1).
pub fn t_interval(x: &[f64], level: f64) -> Option<Interval> {
    if !valid_sample(x) || !valid_level(level) {
        return None;
    }
    let n = x.len() as f64;
    let half = student_t_quantile(0.5 * (1.0 + level), n - 1.0) * sample_std(x) / n.sqrt();
    let m = mean(x);
    Some(Interval {
        lo: m - half,
        hi: m + half,
        level,
    })
}

/// One-sided one-sample t-test p-value for the mean against `mu0`: with
/// `t = (mean − mu0)/(s/√n)` and `n − 1` degrees of freedom, `P(T <= t)` when
/// `alternative_less` (H1: mean < mu0), else `P(T >= t)` (H1: mean > mu0). For a paired test
/// pass the differences.
///
/// `None` when `n < 2`, a value is not finite, or the sample has zero variance (t undefined).
pub fn one_sided_t_pvalue(x: &[f64], mu0: f64, alternative_less: bool) -> Option<f64> {
    if !valid_sample(x) || !mu0.is_finite() {
        return None;
    }
    let s = sample_std(x);
    if s == 0.0 {
        return None;
    }
    let n = x.len() as f64;
    let t = (mean(x) - mu0) / (s / n.sqrt());
    let df = n - 1.0;
    Some(if alternative_less {
        student_t_cdf(t, df)
    } else {
        student_t_cdf(-t, df)
    })
}

/// Quantile of sorted data by linear interpolation between order statistics (type 7:
/// position `q (n − 1)`). NaN for empty input.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Percentile bootstrap interval of a statistic over `n_items` items.
///
/// Each of `resamples` replicates draws `n_items` indices uniformly with replacement from
/// `0..n_items` and evaluates `stat(&indices)`; the interval is the `(1 ∓ level)/2` quantiles
/// (type 7) of the replicates. Draws come from [`seeded`]`(seed, &[BOOTSTRAP_STREAM])` via
/// [`uniform_index`], so the result is a deterministic function of the arguments. NaN ends when
/// `n_items == 0`, `resamples == 0` or `level` is not in (0, 1); NaN replicates sort last.
pub fn bootstrap_ci(
    n_items: usize,
    resamples: usize,
    level: f64,
    seed: u64,
    stat: impl Fn(&[usize]) -> f64,
) -> Interval {
    if n_items == 0 || resamples == 0 || !valid_level(level) {
        return Interval {
            lo: f64::NAN,
            hi: f64::NAN,
            level,
        };
    }
    let mut rng = seeded(seed, &[BOOTSTRAP_STREAM]);
    let mut idx = vec![0usize; n_items];
    let mut reps: Vec<f64> = (0..resamples)
        .map(|_| {
            for slot in idx.iter_mut() {
                *slot = uniform_index(&mut rng, n_items);
            }
            stat(&idx)
        })
        .collect();
    reps.sort_by(f64::total_cmp);
    let alpha = 1.0 - level;
    Interval {
        lo: quantile_sorted(&reps, 0.5 * alpha),
        hi: quantile_sorted(&reps, 1.0 - 0.5 * alpha),
        level,
    }
}

/// Mean after dropping `floor(trim · n)` values from each end of the sorted data, for
/// `trim ∈ [0, 0.5)`. NaN for empty input or `trim` outside that range.
pub fn trimmed_mean(x: &[f64], trim: f64) -> f64 {
    if x.is_empty() || !(0.0..0.5).contains(&trim) {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = (trim * v.len() as f64).floor() as usize;
    mean(&v[cut..v.len() - cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::uniform_f64;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mean_and_std() {
        assert!(close(mean(&[1.0, 2.0, 6.0]), 3.0, 1e-15));
        assert!(close(sample_std(&[1.0, 2.0, 6.0]), 7f64.sqrt(), 1e-15));
        assert!(mean(&[]).is_nan());
        assert!(sample_std(&[1.0]).is_nan());
    }

    #[test]
    fn t_interval_by_hand() {
        // mean 2, s = 1, n = 3: half width t_{0.975,2} / sqrt(3).
        let ci = t_interval(&[1.0, 2.0, 3.0], 0.95).unwrap();
        let half = 4.302_653 / 3f64.sqrt();
        assert!(close(ci.lo, 2.0 - half, 1e-6) && close(ci.hi, 2.0 + half, 1e-6));
        assert!(ci.contains(2.0) && !ci.contains(5.0));
        assert_eq!(ci.level, 0.95);
        assert!(t_interval(&[1.0], 0.95).is_none());
        assert!(t_interval(&[1.0, 2.0], 1.0).is_none());
        assert!(t_interval(&[1.0, f64::NAN], 0.9).is_none());
    }

    #[test]
    fn t_pvalue_by_closed_form() {
        // df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t²)).
        let x = [1.0, 2.0, 6.0];
        let t = 3.0 / (7f64.sqrt() / 3f64.sqrt());
        let upper = 0.5 - t / (2.0 * (2.0 + t * t).sqrt());
        assert!(close(
            one_sided_t_pvalue(&x, 0.0, false).unwrap(),
            upper,
            1e-12
        ));
        assert!(close(
            one_sided_t_pvalue(&x, 0.0, true).unwrap(),
            1.0 - upper,
            1e-12
        ));
        // At mu0 = mean the p-value is 1/2 either way.
        assert!(close(
            one_sided_t_pvalue(&x, 3.0, true).unwrap(),
            0.5,
            1e-12
        ));
        assert!(one_sided_t_pvalue(&[2.0, 2.0], 0.0, true).is_none());
        assert!(one_sided_t_pvalue(&[2.0], 0.0, true).is_none());
    }

    #[test]
    fn bootstrap_is_deterministic_and_sensible() {
        let mut rng = seeded(1, &[3]);
        let data: Vec<f64> = (0..200).map(|_| uniform_f64(&mut rng)).collect();
        let stat = |idx: &[usize]| idx.iter().map(|&i| data[i]).sum::<f64>() / idx.len() as f64;
        let a = bootstrap_ci(data.len(), 2_000, 0.95, 42, stat);
        let b = bootstrap_ci(data.len(), 2_000, 0.95, 42, stat);
        assert_eq!(a, b);
        assert_eq!(a.lo.to_bits(), b.lo.to_bits());
        let c = bootstrap_ci(data.len(), 2_000, 0.95, 43, stat);
        assert_ne!(a, c);
        // Close to the normal-theory interval mean ± 1.96 s/√n.
        let m = mean(&data);
        let half = 1.96 * sample_std(&data) / (data.len() as f64).sqrt();
        assert!(a.contains(m));
        assert!(
            close(a.hi - a.lo, 2.0 * half, 0.15 * 2.0 * half),
            "{a:?} vs ±{half}"
        );
        assert!(bootstrap_ci(0, 10, 0.95, 1, stat).lo.is_nan());
    }

    #[test]
    fn quantiles_and_trimmed_mean() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
        assert!(close(quantile_sorted(&s, 0.5), 2.5, 1e-15));
        assert!(close(
            trimmed_mean(&[100.0, 1.0, 2.0, 3.0, -50.0], 0.2),
            2.0,
            1e-15
        ));
        assert_eq!(trimmed_mean(&[1.0, 5.0], 0.0), 3.0);
        assert!(trimmed_mean(&[1.0], 0.5).is_nan());
    }
}
