//! `pkpo_loo_minus_one:k=K`: PKPO's `s^(loo−1)`, the project's default pass@k objective.

use super::{check_binary, check_k, one_minus_rho, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "pkpo_loo_minus_one",
    needs_k: true,
    description: "PKPO s^(loo-1): correct gets C(n-c, k-1)/C(n, k), wrong 0; unbiased; the default pass@k objective",
};

/// Builds from a spec `"pkpo_loo_minus_one:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(PkpoLooMinusOne::new(params.require_k()?)))
}

/// PKPO `s^(loo−1)_i = (1/C(n,k)) Σ_{S∋i} [max_S f − max_{S∖i} f]`. For binary rewards a correct
/// sample gets `C(n−c, k−1)/C(n, k)` (the chance that it is the only correct member of a random
/// k-subset containing it, times `k/n`) and a wrong one 0. Equal to `s_i − (k/n) ρ(n−1, c_{−i}, k−1)`,
/// a baseline independent of `y_i`, hence unbiased for `∇ pass@k`. Needs `k <= n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PkpoLooMinusOne {
    k: u32,
}

impl PkpoLooMinusOne {
    /// An `s^(loo−1)` objective for pass@k (`k >= 1`; `k <= n` is checked in `weights`).
    pub fn new(k: u32) -> Self {
        Self { k }
    }
}

impl Objective for PkpoLooMinusOne {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.k)
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        check_k(self.k, n)?;
        let k = self.k;
        // C(n−c, k−1)/C(n, k) = (k/n) · C((n−1)−(c−1), k−1)/C(n−1, k−1), computed without cancellation.
        let correct_weight = if c == 0 {
            0.0
        } else {
            k as f64 / n as f64 * one_minus_rho(n - 1, c - 1, k - 1)
        };
        Ok(rewards
            .iter()
            .map(|&r| if r == 1.0 { correct_weight } else { 0.0 })
            .collect())
    }

    fn k(&self) -> u32 {
        self.k
    }

    fn unbiased(&self) -> bool {
        true
    }
}
