//! `group_projected:k=K`: `split_by_success:k=K` with the low-success prompts' pass@k gradient
//! projected off the other prompts' pass@1 gradient when the two conflict (a mitigation
//! candidate: gradient surgery between groups of prompts).
//!
//! Why, from the mechanism: the probe finds the conflict between groups, the pass@k-weighted
//! low-success prompts against the pass@1 direction of the rest, while the batch's gradients
//! as a whole mostly agree; so `conflict_projected`, which projects the whole pass@k step off
//! the whole pass@1 step, rarely fires. Here the trainer estimates the two parts separately
//! from the same samples: `g`, pass@k (PKPO `s^(loo−1)`) weights on the low-success groups
//! (the split of `split_by_success`: `k (1 − c/n)^(k−1) > 1`), and `a`, pass@1 (RLOO) weights
//! on the others. It steps along `g − min(0, ⟨g, a⟩) a / ‖a‖² + a`: where the low group's
//! update would lower the others' pass@1 to first order, that component is removed, and the
//! others keep their own pass@1 step. The logged `conflict_cos` is the cosine of `g` and `a`,
//! the cross-group interference of each step. Cost: a second backward pass per step.
//! Biased (a projection, and the group picks its side from its own rewards).

use super::pass1_rloo::Pass1Rloo;
use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::split_by_success::low_success;
use super::{check_binary, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "group_projected",
    needs_k: true,
    description: "split_by_success:k=K with the low-success groups' pass@k gradient projected off the other groups' pass1_rloo gradient when they conflict (same samples); biased",
};

/// Builds from a spec `"group_projected:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(GroupProjected {
        passk: PkpoLooMinusOne::new(params.require_k()?),
    }))
}

/// Pass@k weights on low-success groups (zero on the others); the anchor is pass@1 on the
/// others (zero on the low ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupProjected {
    passk: PkpoLooMinusOne,
}

/// The anchor: pass@1 RLOO weights on the groups that are not low-success for `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OthersPass1 {
    k: u32,
}

impl Objective for GroupProjected {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.passk.k())
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        if low_success(n, c, self.passk.k()) {
            self.passk.weights(rewards)
        } else {
            Ok(vec![0.0; rewards.len()])
        }
    }

    fn k(&self) -> u32 {
        self.passk.k()
    }

    fn unbiased(&self) -> bool {
        false
    }

    fn projection_anchor(&self) -> Option<Box<dyn Objective>> {
        Some(Box::new(OthersPass1 { k: self.passk.k() }))
    }

    fn projection_adds_anchor(&self) -> bool {
        true
    }
}

impl Objective for OthersPass1 {
    fn name(&self) -> String {
        format!("{}:k={} (anchor: pass@1 of the other groups)", INFO.name, self.k)
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        if low_success(n, c, self.k) {
            Ok(vec![0.0; rewards.len()])
        } else {
            Pass1Rloo.weights(rewards)
        }
    }

    fn k(&self) -> u32 {
        1
    }

    fn unbiased(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;

    /// Objective plus anchor weights are `split_by_success`'s: with no conflict the step is
    /// that objective's.
    #[test]
    fn the_two_parts_add_up_to_the_split_objective() {
        let o = objective_from_spec("group_projected:k=8").unwrap();
        let split = objective_from_spec("split_by_success:k=8").unwrap();
        let anchor = o.projection_anchor().expect("an anchor");
        assert!(o.projection_adds_anchor());
        for c in 0..=16 {
            let f: Vec<f64> = (0..16).map(|i| if i < c { 1.0 } else { 0.0 }).collect();
            let (g, a) = (o.weights(&f).unwrap(), anchor.weights(&f).unwrap());
            let s = split.weights(&f).unwrap();
            for ((g, a), s) in g.iter().zip(&a).zip(&s) {
                assert_eq!(g + a, *s, "c = {c}");
                assert!(*g == 0.0 || *a == 0.0, "disjoint groups");
            }
        }
        assert!(!objective_from_spec("conflict_projected:k=8")
            .unwrap()
            .projection_adds_anchor());
    }
}
