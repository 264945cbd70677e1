//! `pkpo_s:k=K`: PKPO's unbiased pass@k effective reward without a baseline.

use super::{check_binary, check_k, pkpo_s_value, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "pkpo_s",
    needs_k: true,
    description: "PKPO effective reward: k/n if correct else (k/n) rho(n-1, c, k-1); unbiased, no baseline",
};

/// Builds from a spec `"pkpo_s:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(PkpoS::new(params.require_k()?)))
}

/// PKPO (Walder & Karkhanis 2025) effective reward for binary rewards: a correct sample gets
/// `s_i = k/n`, a wrong one `(k/n) ρ(n−1, c, k−1)`. Equivalently `s_i` is the average over all
/// k-subsets of `max_S f`, credited to each member. Unbiased for `∇ pass@k`; needs `k <= n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PkpoS {
    k: u32,
}

impl PkpoS {
    /// A PKPO objective for pass@k (`k >= 1`; checked against `n` in `weights`).
    pub fn new(k: u32) -> Self {
        Self { k }
    }
}

impl Objective for PkpoS {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.k)
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        check_k(self.k, n)?;
        Ok(rewards
            .iter()
            .map(|&r| pkpo_s_value(n, c, self.k, r == 1.0))
            .collect())
    }

    fn k(&self) -> u32 {
        self.k
    }

    fn unbiased(&self) -> bool {
        true
    }
}
