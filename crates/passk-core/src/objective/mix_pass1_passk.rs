//! `mix_pass1_passk:k=K,percent=P`: pass@1 plus pass@k, `(1 − λ) J_1 + λ J_k` with λ = P/100
//! (default 50).
//! Also the README's worked example of adding an objective: this file and one `registry!` line.

use super::pass1_rloo::Pass1Rloo;
use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::{Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "mix_pass1_passk",
    needs_k: true,
    description: "(1 - P/100) * pass1_rloo + P/100 * pkpo_loo_minus_one:k=K; unbiased for the gradient of (1 - lambda) J_1 + lambda J_k",
};

/// The pass@k share when the spec gives none.
pub const DEFAULT_PERCENT: u32 = 50;

/// Builds from a spec `"mix_pass1_passk:k=K,percent=P"` (P in 0..=100, the pass@k share;
/// default 50).
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or `percent` exceeds 100.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    let k = params.require_k()?;
    match params.take_u32("percent")?.unwrap_or(DEFAULT_PERCENT) {
        p if p <= 100 => Ok(Box::new(MixPass1Passk {
            pass1: Pass1Rloo,
            passk: PkpoLooMinusOne::new(k),
            percent: p,
        })),
        _ => Err(params.error("percent must be between 0 and 100")),
    }
}

/// The per-sample weights `(1 − λ) w^{pass@1} + λ w^{pass@k}` of RLOO pass@1 and PKPO
/// `s^(loo−1)`: both are unbiased in the same `Σ_i w_i ∇log π(y_i|x)` convention, so the mix is
/// unbiased for `∇[(1 − λ) p(x) + λ pass@k(x)]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixPass1Passk {
    pass1: Pass1Rloo,
    passk: PkpoLooMinusOne,
    percent: u32,
}

impl Objective for MixPass1Passk {
    fn name(&self) -> String {
        match self.percent {
            DEFAULT_PERCENT => format!("{}:k={}", INFO.name, self.passk.k()),
            p => format!("{}:k={},percent={p}", INFO.name, self.passk.k()),
        }
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let lambda = f64::from(self.percent) / 100.0;
        let a = self.pass1.weights(rewards)?;
        let b = self.passk.weights(rewards)?;
        Ok(a.iter()
            .zip(&b)
            .map(|(x, y)| (1.0 - lambda) * x + lambda * y)
            .collect())
    }

    fn k(&self) -> u32 {
        self.passk.k()
    }

    fn unbiased(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;

    #[test]
    fn mixes_the_two_weightings() {
        let f = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = |spec: &str| objective_from_spec(spec).unwrap().weights(&f).unwrap();
        let p1 = w("pass1_rloo");
        let pk = w("pkpo_loo_minus_one:k=4");
        assert_eq!(w("mix_pass1_passk:k=4,percent=0"), p1);
        assert_eq!(w("mix_pass1_passk:k=4,percent=100"), pk);
        for ((m, a), b) in w("mix_pass1_passk:k=4,percent=25").iter().zip(&p1).zip(&pk) {
            assert!((m - (0.75 * a + 0.25 * b)).abs() < 1e-15);
        }
        let o = objective_from_spec("mix_pass1_passk:k=4,percent=25").unwrap();
        assert_eq!(o.name(), "mix_pass1_passk:k=4,percent=25");
        assert_eq!(o.k(), 4);
        assert_eq!(
            w("mix_pass1_passk:k=4"),
            w("mix_pass1_passk:k=4,percent=50")
        );
        assert!(objective_from_spec("mix_pass1_passk:k=4,percent=101").is_err());
    }
}
