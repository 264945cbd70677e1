//! `entropic:beta=B`: the entropic (exponential-utility) objective `(1/β) log E[e^(β r)]`, a
//! bounded reweighting toward low-success prompts (a mitigation candidate).
//!
//! Why, from the mechanism: pass@k's per-prompt weight `k (1 − p)^(k−1)` runs from k at p = 0
//! to 0 at p = 1, so pass@k training both piles the update onto low-success prompts and drops
//! the high-success ones. For binary rewards the entropic objective's gradient is
//! `(e^β − 1) / (β (1 + p (e^β − 1))) ∇p`: at β = 2 it weighs a prompt 3.2× at p = 0 and
//! 0.43× at p = 1, so low-success prompts still count more but the others are never dropped.
//! β → 0 gives pass@1. It is the utility behind risk-seeking policy optimisation (for example
//! risk-seeking GRPO, arXiv 2509.24261, which recommends β = 2; β = 2 is taken from there, not
//! tuned here). Weights: `w_i = (e^(β r_i) / m − 1) / (β n)` with `m` the group's mean of
//! `e^(β r)`, a ratio (plug-in) estimator and so biased.

use super::{check_finite, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "entropic",
    needs_k: false,
    description: "entropic utility (1/beta) log E[exp(beta r)], beta=B (default 2): w_i = (exp(beta r_i)/mean_j exp(beta r_j) - 1)/(beta n); biased (ratio estimator)",
};

/// β when the spec gives none.
pub const DEFAULT_BETA: f64 = 2.0;

/// Builds from a spec `"entropic"` or `"entropic:beta=B"` (B > 0, at most 50).
///
/// # Errors
/// [`CoreError::BadSpec`] when `beta` is not a number in (0, 50] or `k` is given and not 1.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    params.allow_k_one()?;
    let beta = params.take_f64("beta")?.unwrap_or(DEFAULT_BETA);
    if !(beta > 0.0 && beta <= 50.0) {
        return Err(params.error("beta must be in (0, 50]"));
    }
    Ok(Box::new(Entropic { beta }))
}

/// The entropic objective's plug-in weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entropic {
    beta: f64,
}

impl Objective for Entropic {
    fn name(&self) -> String {
        if self.beta == DEFAULT_BETA {
            INFO.name.to_string()
        } else {
            format!("{}:beta={}", INFO.name, self.beta)
        }
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let n = f64::from(check_finite(rewards)?);
        // Shifting by the largest reward keeps exp finite; the ratio does not change.
        let top = rewards.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = rewards.iter().map(|r| (self.beta * (r - top)).exp()).collect();
        let m = e.iter().sum::<f64>() / n;
        Ok(e.iter().map(|x| (x / m - 1.0) / (self.beta * n)).collect())
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

    #[test]
    fn weights_by_hand_and_the_spec() {
        let o = objective_from_spec("entropic").unwrap();
        assert_eq!(o.name(), "entropic");
        // r = [1, 0, 0, 0]: m = (e^2 + 3) / 4.
        let w = o.weights(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        let m = (2f64.exp() + 3.0) / 4.0;
        let want = [(2f64.exp() / m - 1.0) / 8.0, (1.0 / m - 1.0) / 8.0];
        assert!((w[0] - want[0]).abs() < 1e-15 && (w[1] - want[1]).abs() < 1e-15);
        assert!(w.iter().sum::<f64>().abs() < 1e-15, "a zero-sum baseline");
        assert!(o.weights(&[1.0, 1.0]).unwrap().iter().all(|x| x.abs() < 1e-15));
        let b = objective_from_spec("entropic:beta=0.5").unwrap();
        assert_eq!(b.name(), "entropic:beta=0.5");
        assert_eq!(objective_from_spec(&b.name()).unwrap().name(), b.name());
        assert!(objective_from_spec("entropic:beta=0").is_err());
        assert!(objective_from_spec("entropic:beta=x").is_err());
        assert!(objective_from_spec("entropic:k=8").is_err());
    }

    /// As β → 0 the expected weights approach pass@1's: per sample, (r − mean r)/n.
    #[test]
    fn small_beta_is_pass_1() {
        let o = objective_from_spec("entropic:beta=0.000001").unwrap();
        let r = [1.0, 0.0, 1.0, 0.0, 0.0];
        let mean = 0.4;
        for (w, r) in o.weights(&r).unwrap().iter().zip(r) {
            assert!((w - (r - mean) / 5.0).abs() < 1e-6);
        }
    }
}
