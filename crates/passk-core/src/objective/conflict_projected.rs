//! `conflict_projected:k=K`: the pass@k step with its component against the pass@1 direction
//! removed (mitigation (a) of issue #6, in the spirit of PCGrad).
//!
//! Per step, the trainer estimates both gradients from the same samples: `g_k` with the
//! `pkpo_loo_minus_one:k=K` weights and `g_1` with the `pass1_rloo` weights, and steps along
//! `g_k − min(0, ⟨g_k, g_1⟩) g_1 / ‖g_1‖²`. When the two agree the gradient is plain pass@k's;
//! when they conflict the projected gradient is orthogonal to `g_1`, so a plain SGD step along
//! it does not lower the batch's pass@1 to first order. (An adaptive optimiser such as AdamW
//! rescales coordinates and adds momentum, so its update need not stay orthogonal.) Both
//! estimates share their sampling noise, which typically biases `⟨g_k, g_1⟩` upwards (the
//! projection fires less often than with independent estimates). The projection is global,
//! over all parameters and the whole batch: a conflict confined to a minority of prompts can
//! be outweighed by agreement elsewhere. Cost: a second forward and backward pass per step.

use super::pass1_rloo::Pass1Rloo;
use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::{Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "conflict_projected",
    needs_k: true,
    description: "pkpo_loo_minus_one:k=K with the component opposing the pass1_rloo gradient (same samples) projected out of each step; biased (a projection, not a gradient)",
};

/// Builds from a spec `"conflict_projected:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(ConflictProjected {
        passk: PkpoLooMinusOne::new(params.require_k()?),
    }))
}

/// Pass@k weights (PKPO `s^(loo−1)`) with the pass@1 RLOO objective as projection anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConflictProjected {
    passk: PkpoLooMinusOne,
}

impl Objective for ConflictProjected {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.passk.k())
    }

    /// The unprojected pass@k weights; the projection needs gradients, so the trainer applies it.
    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        self.passk.weights(rewards)
    }

    fn k(&self) -> u32 {
        self.passk.k()
    }

    fn unbiased(&self) -> bool {
        false
    }

    fn projection_anchor(&self) -> Option<Box<dyn Objective>> {
        Some(Box::new(Pass1Rloo))
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;

    #[test]
    fn weights_are_pass_k_and_the_anchor_is_pass_1() {
        let f = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let o = objective_from_spec("conflict_projected:k=4").unwrap();
        let pk = objective_from_spec("pkpo_loo_minus_one:k=4").unwrap();
        assert_eq!(o.weights(&f).unwrap(), pk.weights(&f).unwrap());
        let anchor = o.projection_anchor().expect("projected objectives name an anchor");
        assert_eq!(anchor.name(), "pass1_rloo");
        assert!(pk.projection_anchor().is_none());
        assert!(o.at_step(3, 10).is_none());
    }
}
