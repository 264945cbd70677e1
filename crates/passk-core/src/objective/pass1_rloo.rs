//! `pass1_rloo`: REINFORCE with a leave-one-out mean baseline (unbiased for `∇p`).

use super::{check_finite, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "pass1_rloo",
    needs_k: false,
    description: "pass@1 REINFORCE, leave-one-out mean baseline: w_i = (r_i - mean_{j!=i} r_j)/n; unbiased",
};

/// Builds from a spec (`"pass1_rloo"`, `k=1` tolerated).
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is given and is not 1.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    params.allow_k_one()?;
    Ok(Box::new(Pass1Rloo))
}

/// REINFORCE leave-one-out: `w_i = (r_i − mean_{j≠i} r_j) / n`. The baseline of sample `i` does
/// not depend on `y_i`, so the estimate is unbiased for `∇p(x)`. Accepts any finite rewards;
/// needs `n >= 2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass1Rloo;

impl Objective for Pass1Rloo {
    fn name(&self) -> String {
        INFO.name.to_string()
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let n = check_finite(rewards)? as usize;
        if n < 2 {
            return Err(CoreError::GroupTooSmall {
                what: "pass1_rloo (its baseline is the mean of the other samples)".into(),
                needed: 2,
                got: n,
            });
        }
        let total: f64 = rewards.iter().sum();
        let nf = n as f64;
        Ok(rewards
            .iter()
            .map(|&r| (r - (total - r) / (nf - 1.0)) / nf)
            .collect())
    }

    fn k(&self) -> u32 {
        1
    }

    fn unbiased(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_by_hand() {
        // r = [1, 0, 0, 1]: LOO means 1/3, 2/3, 2/3, 1/3.
        let w = Pass1Rloo.weights(&[1.0, 0.0, 0.0, 1.0]).unwrap();
        let want = [(1.0 - 1.0 / 3.0) / 4.0, -(2.0 / 3.0) / 4.0, -(2.0 / 3.0) / 4.0, (2.0 / 3.0) / 4.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
        assert!(Pass1Rloo.weights(&[1.0, 1.0, 1.0]).unwrap().iter().all(|&x| x == 0.0));
        assert!(matches!(Pass1Rloo.weights(&[1.0]), Err(CoreError::GroupTooSmall { .. })));
        assert_eq!(Pass1Rloo.weights(&[]), Err(CoreError::EmptyGroup));
    }
}
