//! Claims that compare an objective with a reference objective trained from the same warm
//! starts (`against`), paired by seed at one q: the mitigation criterion.

use std::collections::BTreeSet;

use passk_core::stats::{mean, t_interval};

use super::statistic::Versus;
use super::{measured, objectives_and_qs, Claim, Verdict};
use crate::tiny::TinyCell;

/// Evaluates `which` for the selected cells (one objective, one q) against the cells of
/// `claim.against` at the same q and seed among `cells`.
pub(super) fn evaluate_versus(
    claim: &Claim,
    which: Versus,
    cells: &[TinyCell],
    selected: &[&TinyCell],
) -> Result<Verdict, String> {
    let against = claim
        .against
        .as_deref()
        .ok_or("this statistic compares with a reference objective: give `against`")?;
    let (objectives, qs) = objectives_and_qs(selected);
    if objectives.len() != 1 || qs.len() != 1 {
        return Err(format!(
            "a paired comparison needs one objective and one q; the selection has objectives \
             {objectives:?} and q {qs:?}"
        ));
    }
    let seeds: BTreeSet<u64> = selected.iter().map(|c| c.seed).collect();
    let mut diffs = Vec::new();
    let mut used = 0;
    for &seed in &seeds {
        let cell = selected
            .iter()
            .find(|c| c.seed == seed)
            .expect("a seed of the selection");
        let reference = cells
            .iter()
            .find(|c| c.q == qs[0] && c.seed == seed && c.objective == against)
            .ok_or_else(|| {
                format!(
                    "no `{against}` cell at q = {} and seed {seed} to pair with",
                    qs[0]
                )
            })?;
        let (k, share) = match which {
            Versus::Pass1Mean | Versus::Pass1CiLow => (1, 1.0),
            Versus::PasskShareCiLow => (reference.objective_k(), claim.effect),
        };
        let diff = cell
            .delta(k)
            .zip(reference.delta(k))
            .map(|(a, b)| a - share * b)
            .filter(|d| d.is_finite());
        match diff {
            Some(d) => diffs.push(d),
            None => {
                return Err(format!(
                    "seed {seed} lacks a finite warm-start or final evaluation in one of the pair"
                ))
            }
        }
        used += 2;
    }
    let interval = t_interval(&diffs, 0.95).map(|i| (i.lo, i.hi));
    let value = match which {
        Versus::Pass1Mean => mean(&diffs),
        Versus::Pass1CiLow | Versus::PasskShareCiLow => {
            interval.ok_or("a t-interval needs at least 2 seeds")?.0
        }
    };
    Ok(measured(claim, value, Some(mean(&diffs)), interval, used))
}
