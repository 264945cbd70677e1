//! `pass1_grpo`: GRPO-style normalised advantage (BIASED).

use super::{check_finite, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "pass1_grpo",
    needs_k: false,
    description: "pass@1 GRPO advantage: w_i = (r_i - mean r)/(std r + 1e-4)/n (sample std); BIASED",
};

/// The `eps` added to the group standard deviation (as in common GRPO implementations).
pub const GRPO_EPS: f64 = 1e-4;

/// Builds from a spec (`"pass1_grpo"`, `k=1` tolerated).
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is given and is not 1.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    params.allow_k_one()?;
    Ok(Box::new(Pass1Grpo))
}

/// GRPO advantage `w_i = (r_i − mean r) / (std r + ε) / n` with the sample standard deviation
/// (divisor `n − 1`) and `ε = 1e-4`. BIASED for `∇p`: the mean includes `r_i` itself (a factor
/// `(n−1)/n`) and the data-dependent std rescales prompts. A group with all rewards equal gets
/// weights 0. Accepts any finite rewards; needs `n >= 2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass1Grpo;

impl Objective for Pass1Grpo {
    fn name(&self) -> String {
        INFO.name.to_string()
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let n = check_finite(rewards)? as usize;
        if n < 2 {
            return Err(CoreError::GroupTooSmall {
                what: "pass1_grpo (its std needs two samples)".into(),
                needed: 2,
                got: n,
            });
        }
        let nf = n as f64;
        let mean = rewards.iter().sum::<f64>() / nf;
        let var = rewards.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (nf - 1.0);
        let denom = var.sqrt() + GRPO_EPS;
        Ok(rewards.iter().map(|&r| (r - mean) / denom / nf).collect())
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
    use super::*;

    #[test]
    fn weights_by_hand() {
        // r = [1, 0, 0, 0]: mean 0.25, sample std sqrt(0.75/3) = 0.5.
        let w = Pass1Grpo.weights(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((w[0] - 0.75 / 0.5001 / 4.0).abs() < 1e-12);
        assert!((w[1] + 0.25 / 0.5001 / 4.0).abs() < 1e-12);
        assert!((w.iter().sum::<f64>()).abs() < 1e-15);
        assert!(Pass1Grpo.weights(&[0.0, 0.0]).unwrap().iter().all(|&x| x == 0.0));
        assert!(Pass1Grpo.weights(&[1.0]).is_err());
    }
}
