//! The switch point in q (pre-registered in experiments/tiny-dose.toml, "THE SWITCH POINT"):
//! where, scanning q upward, the mean over seeds of (a) the change of held-out pass@1 under
//! pass@8 and (b) the warm-start interference (cross-family blocks of ⟨∇J_8, ∇J_1⟩) first go
//! from below 0 to at least 0, with percentile-bootstrap intervals over seeds.

use std::collections::BTreeSet;

use passk_core::stats::bootstrap_ci;

use crate::probe::{load_probe_steps, ProbeStep};
use crate::tiny::TinyCell;

/// Bootstrap resamples of seeds.
pub const RESAMPLES: usize = 2000;
/// The RNG seed of the resampling (fixed: the same cells give the same interval).
pub const RNG_SEED: u64 = 20261207;
/// The k of the objective whose cells are read.
pub const K: u32 = 8;

/// One seed's curves over the q grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedCurves {
    /// The seed.
    pub seed: u64,
    /// Change of held-out pass@1 under pass@8 at each grid q.
    pub fall: Vec<f64>,
    /// Warm-start cross-family ⟨∇J_8, ∇J_1⟩ at each grid q.
    pub interference: Vec<f64>,
}

/// The two switch points with their intervals, and the gap between them.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchPoints {
    /// The q grid, ascending.
    pub qs: Vec<f64>,
    /// Seeds used.
    pub seeds: usize,
    /// q*_fall, with its 95% percentile interval.
    pub fall: (f64, (f64, f64)),
    /// q*_int, with its interval.
    pub interference: (f64, (f64, f64)),
    /// q*_fall − q*_int (paired resampling), with its interval.
    pub gap: (f64, (f64, f64)),
}

/// The first q, scanning `qs` upward, where `means` goes from below 0 to at least 0, linearly
/// interpolated; with no such crossing, `qs[0]` when every mean is at least 0, else the last q.
pub fn crossing(qs: &[f64], means: &[f64]) -> f64 {
    for i in 0..qs.len().saturating_sub(1) {
        let (a, b) = (means[i], means[i + 1]);
        if a < 0.0 && b >= 0.0 {
            return qs[i] + (0.0 - a) * (qs[i + 1] - qs[i]) / (b - a);
        }
    }
    if means.iter().all(|m| *m >= 0.0) {
        qs[0]
    } else {
        qs[qs.len() - 1]
    }
}

/// Per-seed curves from the selected cells: the objective with k = [`K`], every seed at every
/// q of the selection, each cell with a step-0 probe (read from `experiment_dir`).
pub fn seed_curves(
    experiment_dir: &std::path::Path,
    selected: &[&TinyCell],
) -> Result<(Vec<f64>, Vec<SeedCurves>), String> {
    curves_with(selected, &|cell: &TinyCell| {
        let steps =
            load_probe_steps(&experiment_dir.join(&cell.record.hash)).map_err(|e| e.to_string())?;
        warm_start_inner(cell, &steps)
    })
}

/// The warm-start cross-family ⟨∇J_8, ∇J_1⟩ of `cell` from its probe `steps`: step 0 exactly,
/// a later probe is not a stand-in for it.
pub fn warm_start_inner(cell: &TinyCell, steps: &[ProbeStep]) -> Result<f64, String> {
    let start = steps
        .iter()
        .find(|s| s.step == 0)
        .ok_or_else(|| format!("cell {} has no step-0 probe", cell.record.hash))?;
    start
        .cross_family_inner(K)
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            format!(
                "cell {}: no finite cross-family block at k = {K}",
                cell.record.hash
            )
        })
}

/// [`seed_curves`] with the warm-start interference of a cell from `inner`.
pub fn curves_with(
    selected: &[&TinyCell],
    inner: &dyn Fn(&TinyCell) -> Result<f64, String>,
) -> Result<(Vec<f64>, Vec<SeedCurves>), String> {
    let cells: Vec<&&TinyCell> = selected.iter().filter(|c| c.objective_k() == K).collect();
    let objectives: BTreeSet<&str> = cells.iter().map(|c| c.objective.as_str()).collect();
    if objectives.len() != 1 {
        return Err(format!(
            "the switch point reads one pass@{K} objective; the selection has {objectives:?}"
        ));
    }
    let mut qs: Vec<f64> = cells.iter().map(|c| c.q).collect();
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    if qs.len() < 2 {
        return Err(format!(
            "the switch point needs at least two q; the selection has {qs:?}"
        ));
    }
    let seeds: BTreeSet<u64> = cells.iter().map(|c| c.seed).collect();
    let mut curves = Vec::new();
    for &seed in &seeds {
        let (mut fall, mut interference) = (Vec::new(), Vec::new());
        for &q in &qs {
            let cell = cells
                .iter()
                .find(|c| c.q == q && c.seed == seed)
                .ok_or_else(|| format!("seed {seed} has no pass@{K} cell at q = {q}"))?;
            let delta = cell.delta(1).filter(|d| d.is_finite()).ok_or_else(|| {
                format!("cell {} lacks a finite change of pass@1", cell.record.hash)
            })?;
            fall.push(delta);
            interference.push(inner(cell)?);
        }
        curves.push(SeedCurves {
            seed,
            fall,
            interference,
        });
    }
    if curves.len() < 2 {
        return Err("a bootstrap over seeds needs at least 2 seeds".into());
    }
    Ok((qs, curves))
}

fn mean_curve(curves: &[&SeedCurves], pick: fn(&SeedCurves) -> &Vec<f64>) -> Vec<f64> {
    let n = curves.len() as f64;
    let len = pick(curves[0]).len();
    (0..len)
        .map(|i| curves.iter().map(|c| pick(c)[i]).sum::<f64>() / n)
        .collect()
}

/// Both switch points and their gap, point estimates from all seeds and percentile intervals
/// (`passk_core::stats::bootstrap_ci`) from [`RESAMPLES`] resamples of whole seeds (a seed's q
/// values stay together: they share stage 1).
pub fn switch_points(qs: &[f64], curves: &[SeedCurves]) -> SwitchPoints {
    fn fall_of(c: &SeedCurves) -> &Vec<f64> {
        &c.fall
    }
    fn int_of(c: &SeedCurves) -> &Vec<f64> {
        &c.interference
    }
    let all: Vec<&SeedCurves> = curves.iter().collect();
    let point = |set: &[&SeedCurves]| {
        let f = crossing(qs, &mean_curve(set, fall_of));
        let i = crossing(qs, &mean_curve(set, int_of));
        (f, i)
    };
    let (fall, interference) = point(&all);
    // One seed and RNG stream for all three: each resample of seeds is the same for the two
    // switch points, so their gap is paired.
    let interval = |stat: &dyn Fn(f64, f64) -> f64| {
        let ci = bootstrap_ci(curves.len(), RESAMPLES, 0.95, RNG_SEED, |idx| {
            let sample: Vec<&SeedCurves> = idx.iter().map(|&i| &curves[i]).collect();
            let (f, i) = point(&sample);
            stat(f, i)
        });
        (ci.lo, ci.hi)
    };
    SwitchPoints {
        qs: qs.to_vec(),
        seeds: curves.len(),
        fall: (fall, interval(&|f, _| f)),
        interference: (interference, interval(&|_, i| i)),
        gap: (fall - interference, interval(&|f, i| f - i)),
    }
}

/// Does the warm-start interference say more than q? The least-squares slope of the change of
/// pass@1 on the warm-start cross-family inner product after both are centred within each q
/// (q as a fixed effect, so only differences between seeds at the same q count), and the share
/// of the within-q variance of the change that it explains. `None` without within-q spread.
pub fn within_q_slope(curves: &[&SeedCurves]) -> Option<(f64, f64)> {
    let nq = curves.first()?.fall.len();
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..nq {
        let n = curves.len() as f64;
        let mx = curves.iter().map(|c| c.interference[i]).sum::<f64>() / n;
        let my = curves.iter().map(|c| c.fall[i]).sum::<f64>() / n;
        for c in curves {
            let (x, y) = (c.interference[i] - mx, c.fall[i] - my);
            sxy += x * y;
            sxx += x * x;
            syy += y * y;
        }
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / sxx, sxy * sxy / (sxx * syy)))
}

/// [`within_q_slope`] over all seeds, with a 95% percentile interval of the slope from
/// [`RESAMPLES`] resamples of whole seeds (`bootstrap_ci`; a resample without within-q spread,
/// every draw the same seed, counts as NaN and sorts last).
pub fn within_q_slope_ci(curves: &[SeedCurves]) -> Option<(f64, f64, (f64, f64))> {
    let all: Vec<&SeedCurves> = curves.iter().collect();
    let (slope, r2) = within_q_slope(&all)?;
    let ci = bootstrap_ci(curves.len(), RESAMPLES, 0.95, RNG_SEED, |idx| {
        let sample: Vec<&SeedCurves> = idx.iter().map(|&i| &curves[i]).collect();
        within_q_slope(&sample).map_or(f64::NAN, |(b, _)| b)
    });
    Some((slope, r2, (ci.lo, ci.hi)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_within_q_slope_ignores_differences_between_q() {
        // The change of pass@1 is 0.5 x interference plus a q effect that interference does
        // not carry: the within-q slope recovers 0.5 exactly.
        let curves: Vec<SeedCurves> = (0..4)
            .map(|s| {
                let x = [s as f64, 2.0 * s as f64 + 1.0];
                SeedCurves {
                    seed: s,
                    fall: vec![0.5 * x[0] - 3.0, 0.5 * x[1] + 7.0],
                    interference: x.to_vec(),
                }
            })
            .collect();
        let (b, r2, (lo, hi)) = within_q_slope_ci(&curves).unwrap();
        assert!(
            (b - 0.5).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12,
            "{b} {r2}"
        );
        assert!(lo <= b && b <= hi);
    }

    #[test]
    fn crossing_interpolates_the_first_rise_through_zero() {
        let qs = [0.6, 0.75, 0.8, 0.85, 0.9];
        // Below zero up to 0.8, then 0.02 at 0.85: a quarter of the way from 0.8 (-0.06).
        let m = [-0.1, -0.1, -0.06, 0.02, 0.03];
        assert!((crossing(&qs, &m) - 0.8375).abs() < 1e-12);
        assert_eq!(
            crossing(&qs, &[0.1; 5]),
            0.6,
            "never below 0: the lower edge"
        );
        assert_eq!(
            crossing(&qs, &[-0.1; 5]),
            0.9,
            "never rises: the upper edge"
        );
        // Scanning upward, the first rise counts, not a later one.
        let m = [-0.1, 0.1, -0.1, 0.1, 0.1];
        assert!((crossing(&qs, &m) - 0.675).abs() < 1e-12);
    }

    #[test]
    fn the_bootstrap_recovers_a_known_switch_and_is_deterministic() {
        let qs = vec![0.6, 0.75, 0.8, 0.85, 0.9];
        // Every seed crosses between 0.8 and 0.85; interference likewise, a little earlier.
        let curves: Vec<SeedCurves> = (0..6)
            .map(|s| {
                let jitter = 0.005 * s as f64;
                SeedCurves {
                    seed: s,
                    fall: vec![-0.2, -0.15, -0.05 + jitter, 0.05 + jitter, 0.06],
                    interference: vec![-3.0, -2.0, 1.0 + jitter, 2.0, 3.0],
                }
            })
            .collect();
        let a = switch_points(&qs, &curves);
        assert_eq!(a, switch_points(&qs, &curves));
        let (f, (lo, hi)) = a.fall;
        assert!(0.8 < lo && lo <= f && f <= hi && hi < 0.85, "{:?}", a.fall);
        let (i, (ilo, ihi)) = a.interference;
        assert!(
            0.75 < ilo && ilo <= i && i <= ihi && ihi < 0.8,
            "{:?}",
            a.interference
        );
        assert!(a.gap.0 > 0.0 && a.gap.1 .0 > 0.0, "{:?}", a.gap);
    }
}
