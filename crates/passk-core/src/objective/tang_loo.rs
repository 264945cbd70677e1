//! `tang_loo`: Tang et al. (2025) leave-one-out pass@n objective (k equals the group size).

use super::{check_binary, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "tang_loo",
    needs_k: false,
    description: "Tang et al. leave-one-out at k = n: w_i = max(f) - max_{j!=i} f; unbiased for grad pass@n",
};

/// Builds from a spec `"tang_loo"` or `"tang_loo:k=K"` (then groups must have exactly K samples).
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is given as 0 or not an integer.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    match params.take_u32("k")? {
        Some(0) => Err(params.error("k must be >= 1")),
        k => Ok(Box::new(TangLoo::new(k))),
    }
}

/// Tang et al. (ICML 2025) leave-one-out control variate for the max of `n` samples, with binary
/// rewards: `w_i = max_j f_j − max_{j≠i} f_j` (max over an empty set is 0). Only a sample that
/// is the unique correct one gets weight 1; everything else gets 0. Unbiased for `∇ pass@n`
/// (`k = n`, the group size), identical to `s^(loo−1)` at `k = n`.
///
/// Without a fixed `k`, [`Objective::k`] returns 0 ("k = group size"); use
/// [`Objective::k_for_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TangLoo {
    k: Option<u32>,
}

impl TangLoo {
    /// `k = None`: k is each group's size; `Some(k)`: groups must have exactly `k` samples.
    pub fn new(k: Option<u32>) -> Self {
        Self { k }
    }
}

impl Objective for TangLoo {
    fn name(&self) -> String {
        match self.k {
            None => INFO.name.to_string(),
            Some(k) => format!("{}:k={k}", INFO.name),
        }
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        if let Some(k) = self.k {
            if k != n {
                return Err(CoreError::DimensionMismatch {
                    what: format!("group size for tang_loo:k={k} (k must equal n; use 'tang_loo' to follow n)"),
                    expected: k as usize,
                    got: n as usize,
                });
            }
        }
        // max f − max_{j≠i} f is 1 only for the unique correct sample.
        Ok(rewards
            .iter()
            .map(|&r| if r == 1.0 && c == 1 { 1.0 } else { 0.0 })
            .collect())
    }

    fn k(&self) -> u32 {
        self.k.unwrap_or(0)
    }

    fn unbiased(&self) -> bool {
        true
    }
}
