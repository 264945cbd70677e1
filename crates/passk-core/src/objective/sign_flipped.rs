//! `sign_flipped:k=K`: a deliberately broken objective, `pkpo_loo_minus_one:k=K` with every
//! weight negated, so training DESCENDS pass@k. It exists so that the CI gate can show it
//! rejects a broken objective (`cargo xtask ci` runs the smoke matrix with it in place of
//! pass@8 and expects `passk check` to fail). Never train with it for results.

use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::{Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "sign_flipped",
    needs_k: true,
    description: "BROKEN on purpose: -1 x pkpo_loo_minus_one:k=K (gradient descent on pass@k); the gate test's broken objective",
};

/// Builds from a spec `"sign_flipped:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(SignFlipped(PkpoLooMinusOne::new(
        params.require_k()?,
    ))))
}

/// Negated PKPO `s^(loo−1)` weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignFlipped(PkpoLooMinusOne);

impl Objective for SignFlipped {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.0.k())
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        Ok(self.0.weights(rewards)?.iter().map(|w| -w).collect())
    }

    fn k(&self) -> u32 {
        self.0.k()
    }

    fn unbiased(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;

    #[test]
    fn weights_are_negated_pass_k_weights() {
        let f = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = |s: &str| objective_from_spec(s).unwrap().weights(&f).unwrap();
        let good = w("pkpo_loo_minus_one:k=4");
        let bad = w("sign_flipped:k=4");
        assert!(good.iter().any(|x| *x != 0.0));
        assert!(good.iter().zip(&bad).all(|(g, b)| *b == -g));
    }
}
