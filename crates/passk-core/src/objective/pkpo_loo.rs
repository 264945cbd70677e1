//! `pkpo_loo:k=K`: PKPO effective reward minus a leave-one-out pass@k baseline.

use super::{check_binary, check_k, pkpo_s_value, rho, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "pkpo_loo",
    needs_k: true,
    description: "PKPO s_i minus (k/n) rho(n-1, c_{-i}, k), a baseline from the other samples (this suite's variant, not the published PKPO LOO); unbiased, needs k < n",
};

/// Builds from a spec `"pkpo_loo:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(PkpoLoo::new(params.require_k()?)))
}

/// PKPO with a leave-one-out baseline: `w_i = s_i − (k/n) ρ(n−1, c_{−i}, k)`, where `c_{−i}` counts
/// the correct samples other than `i`. The baseline is an unbiased pass@k estimate from the other
/// `n − 1` samples, independent of `y_i`, so the weights stay unbiased for `∇ pass@k`. Needs
/// `k < n` (the baseline uses k of the other samples).
///
/// This is this suite's own variant, not the published PKPO leave-one-out estimator: the
/// published one subtracts the mean of the other samples' s-values, `(k/(n−1)) ρ_{−i}` in the
/// paper's notation, where this one subtracts `(k/n) ρ(n−1, c_{−i}, k)`. Both baselines are
/// independent of `y_i`, so both keep the weights unbiased; they differ in scale and hence in
/// variance. No committed experiment trains with `pkpo_loo`; the experiments use
/// `pkpo_loo_minus_one`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PkpoLoo {
    k: u32,
}

impl PkpoLoo {
    /// A PKPO-LOO objective for pass@k (`k >= 1`; `k < n` is checked in `weights`).
    pub fn new(k: u32) -> Self {
        Self { k }
    }
}

impl Objective for PkpoLoo {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.k)
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        check_k(self.k, n)?;
        if self.k >= n {
            return Err(CoreError::GroupTooSmall {
                what: format!("pkpo_loo:k={} (its baseline needs k of the other n-1 samples)", self.k),
                needed: self.k as usize + 1,
                got: n as usize,
            });
        }
        let k = self.k;
        let scale = k as f64 / n as f64;
        Ok(rewards
            .iter()
            .map(|&r| {
                let correct = r == 1.0;
                let c_other = c - u32::from(correct);
                pkpo_s_value(n, c, k, correct) - scale * rho(n - 1, c_other, k)
            })
            .collect())
    }

    fn k(&self) -> u32 {
        self.k
    }

    fn unbiased(&self) -> bool {
        true
    }
}
