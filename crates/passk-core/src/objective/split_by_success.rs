//! `split_by_success:k=K`: pass@k weights on a prompt whose group succeeds rarely, pass@1
//! weights on the others (a mitigation candidate, experiments/tiny-candidates.toml).
//!
//! Why, from the mechanism: for a prompt of success `p` the pass@k gradient is
//! `k (1 − p)^(k−1) ∇p`, so pass@k training moves the weight of the update onto low-success
//! prompts and gives the high-success ones almost none (at k = 8, p = 0.9: 8·10⁻⁷). When the
//! low-success prompts' gradient interferes negatively with the rest, nothing in the update
//! holds the high-success prompts up, and pass@1 falls. This objective keeps pass@k's
//! emphasis where pass@k weighs a prompt more than pass@1 does, `k (1 − p̂)^(k−1) > 1` with `p̂`
//! the group's success rate (at k = 8 and n = 16: c ≤ 4 correct), and trains every other prompt
//! with pass@1, as pass@1 training would. The split is fixed by k alone, not tuned. Biased: the
//! group decides its own weighting from its own rewards.

use super::pass1_rloo::Pass1Rloo;
use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::{check_binary, Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "split_by_success",
    needs_k: true,
    description: "pkpo_loo_minus_one:k=K on groups where k(1-c/n)^(k-1) > 1 (low success), pass1_rloo on the rest; biased (the group picks its weighting)",
};

/// Builds from a spec `"split_by_success:k=K"`.
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing or 0.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    Ok(Box::new(SplitBySuccess::new(params.require_k()?)))
}

/// Whether pass@k weighs a prompt with `c` of `n` correct more than pass@1 does:
/// `k (1 − c/n)^(k−1) > 1`, the plug-in of the ratio of their expected gradients.
pub(crate) fn low_success(n: u32, c: u32, k: u32) -> bool {
    let p = f64::from(c) / f64::from(n);
    f64::from(k) * (1.0 - p).powi(k as i32 - 1) > 1.0
}

/// Pass@k (PKPO `s^(loo−1)`) weights on low-success groups, RLOO pass@1 weights on the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitBySuccess {
    passk: PkpoLooMinusOne,
}

impl SplitBySuccess {
    /// The split objective for pass@k (`k >= 1`; `k <= n` is checked in `weights`).
    pub fn new(k: u32) -> Self {
        Self {
            passk: PkpoLooMinusOne::new(k),
        }
    }
}

impl Objective for SplitBySuccess {
    fn name(&self) -> String {
        format!("{}:k={}", INFO.name, self.passk.k())
    }

    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        let (n, c) = check_binary(rewards)?;
        if low_success(n, c, self.passk.k()) {
            self.passk.weights(rewards)
        } else {
            Pass1Rloo.weights(rewards)
        }
    }

    fn k(&self) -> u32 {
        self.passk.k()
    }

    fn unbiased(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;
    use super::*;

    fn group(n: usize, c: usize) -> Vec<f64> {
        (0..n).map(|i| if i < c { 1.0 } else { 0.0 }).collect()
    }

    #[test]
    fn low_groups_get_pass_k_weights_and_the_rest_pass_1() {
        let o = objective_from_spec("split_by_success:k=8").unwrap();
        let pk = objective_from_spec("pkpo_loo_minus_one:k=8").unwrap();
        let p1 = objective_from_spec("pass1_rloo").unwrap();
        // k = 8, n = 16: 8 (1 - 4/16)^7 = 1.07 > 1, 8 (1 - 5/16)^7 = 0.58.
        for c in 0..=16 {
            let f = group(16, c);
            let want = if c <= 4 { pk.weights(&f) } else { p1.weights(&f) };
            assert_eq!(o.weights(&f).unwrap(), want.unwrap(), "c = {c}");
        }
        assert!(low_success(16, 4, 8) && !low_success(16, 5, 8));
        // k = 1 never prefers pass@k (1 · (1 − p)^0 = 1 is not > 1).
        assert!(!low_success(16, 0, 1));
        assert!(!o.unbiased());
        assert!(o.weights(&[0.5, 1.0]).is_err());
    }
}
