//! The statistics a claim can test on theory-tier cells (see `statistic.rs`).

use super::Statistic;
use crate::load::TheoryCell;

/// The statistic `stat` over the selected theory cells `cells`, or why it has no value.
pub(super) fn theory_statistic(stat: Statistic, cells: &[&TheoryCell]) -> Result<f64, String> {
    // NaN-propagating: f64::max/min would skip a NaN and let a broken cell pass.
    let max = |it: &mut dyn Iterator<Item = f64>| {
        it.fold(f64::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        })
    };
    let min = |it: &mut dyn Iterator<Item = f64>| {
        it.fold(f64::INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        })
    };
    let fraction = |hits: usize, of: usize| {
        if of == 0 {
            Err("no cell qualifies for this statistic".to_string())
        } else {
            Ok(hits as f64 / of as f64)
        }
    };
    match stat {
        Statistic::MaxIdentityGap => Ok(max(&mut cells.iter().map(|c| c.summary.max_identity_gap))),
        Statistic::FractionWithKstar => fraction(
            cells.iter().filter(|c| c.summary.k_star.is_some()).count(),
            cells.len(),
        ),
        Statistic::FractionNegativeBeyondKstar => {
            let with: Vec<_> = cells
                .iter()
                .filter_map(|c| c.summary.k_star.map(|k| (c, k)))
                .collect();
            let hits = with
                .iter()
                .filter(|(c, k_star)| {
                    c.kscan
                        .iter()
                        .filter(|r| r.k >= *k_star)
                        .all(|r| r.inner < 0.0)
                })
                .count();
            fraction(hits, with.len())
        }
        Statistic::MaxPasskDeltaJ1 => Ok(max(&mut cells
            .iter()
            .map(|c| c.summary.passk_final_j1 - c.summary.j1_start))),
        Statistic::MinPasskDeltaJ1 => Ok(min(&mut cells
            .iter()
            .map(|c| c.summary.passk_final_j1 - c.summary.j1_start))),
        Statistic::MinPasskDeltaJk => Ok(min(&mut cells
            .iter()
            .map(|c| c.summary.passk_final_jk - c.summary.jk_start))),
        Statistic::MinPass1DeltaJ1 => Ok(min(&mut cells
            .iter()
            .map(|c| c.summary.pass1_final_j1 - c.summary.j1_start))),
        Statistic::MaxOneStepDeltaJ1InConflict => {
            let conflict: Vec<_> = cells
                .iter()
                .filter(|c| c.summary.one_step_first_order < 0.0)
                .collect();
            if conflict.is_empty() {
                return Err("no selected cell has a negative first-order one-step change".into());
            }
            Ok(max(&mut conflict
                .iter()
                .map(|c| c.summary.one_step_delta_j1)))
        }
        Statistic::MaxOneStepRelativeError => Ok(max(&mut cells.iter().map(|c| {
            let s = &c.summary;
            (s.one_step_delta_j1 - s.one_step_first_order).abs()
                / s.one_step_first_order.abs().max(1e-300)
        }))),
        other => Err(format!(
            "statistic {} is not defined for the theory tier",
            other.name()
        )),
    }
}
