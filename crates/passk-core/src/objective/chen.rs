//! `chen:k=K`: Chen et al. (2025) pass@k analytical advantage (BIASED).

use super::{check_binary, check_k, one_minus_rho, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "chen",
    needs_k: true,
    description: "Chen et al. analytical pass@k advantage A_pos/A_neg, normalised by sigma = sqrt(rho(1-rho)), weight A/n; BIASED",
};

/// Builds from a spec `"chen:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(Chen::new(params.require_k()?)))
}

/// Chen et al. ("Pass@k Training", arXiv 2508.10751) analytical advantage for binary rewards.
/// With `ρ = ρ(n, c, k)` and `σ = sqrt(ρ(1 − ρ))`:
/// `A_pos = (1 − ρ)/σ` for a correct sample and
/// `A_neg = (1 − ρ − C(n−c−1, k−1)/C(n−1, k−1))/σ` for a wrong one; the weight is `A/n`.
///
/// BIASED for `∇ pass@k`: the division by the data-dependent `σ` rescales each group. When
/// `σ = 0` (no correct sample, or fewer than `k` wrong ones so that `ρ = 1`) every weight is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chen {
    k: u32,
}

impl Chen {
    /// A Chen et al. objective for pass@k (`k >= 1`; `k <= n` is checked in `weights`).
    pub fn new(k: u32) -> Self {
        Self { k }
    }

    /// `(A_pos, A_neg)` for a group of `n` samples with `c` correct, or `None` when `σ = 0`.
    ///
    /// # Errors
    /// [`CoreError::InvalidK`] or [`CoreError::InvalidCount`] for impossible `(n, c, k)`.
    pub fn advantages(&self, n: u32, c: u32) -> Result<Option<(f64, f64)>, CoreError> {
        let k = self.k;
        check_k(k, n)?;
        if c > n {
            return Err(CoreError::InvalidCount { c, n });
        }
        let fail = one_minus_rho(n, c, k); // 1 − ρ
        let rho = 1.0 - fail;
        let sigma = (rho * fail).sqrt();
        if sigma == 0.0 {
            return Ok(None);
        }
        let a_pos = fail / sigma;
        // A wrong sample exists only when c < n; then C(n−c−1, k−1)/C(n−1, k−1) = 1 − ρ(n−1, c, k−1).
        let a_neg = if c < n {
            (fail - one_minus_rho(n - 1, c, k - 1)) / sigma
        } else {
            0.0
        };
        Ok(Some((a_pos, a_neg)))
    }
}

impl Objective for Chen {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.k)
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        let nf = n as f64;
        Ok(match self.advantages(n, c)? {
            None => vec![0.0; rewards.len()],
            Some((a_pos, a_neg)) => rewards
                .iter()
                .map(|&r| if r == 1.0 { a_pos / nf } else { a_neg / nf })
                .collect(),
        })
    }

    fn k(&self) -> u32 {
        self.k
    }

    fn unbiased(&self) -> bool {
        false
    }
}
