//! Exact (full-gradient) ascent on pass@1 or pass@k.

use serde::{Deserialize, Serialize};

use crate::bandit::SoftmaxBandit;
use crate::error::TheoryError;
use crate::math::axpy;

/// Which objective the ascent climbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AscentObjective {
    /// J_1 (pass@1).
    Pass1,
    /// J_k (pass@k) for the given k >= 1.
    PassK(u32),
}

/// The state of an ascent run before the update of step `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AscentStep {
    /// Step index; 0 is theta_0.
    pub step: usize,
    /// J_1 at this step.
    pub j1: f64,
    /// J_{track_k} at this step.
    pub jk: f64,
    /// cos(grad J_{track_k}, grad J_1) at this step; `None` when a gradient is zero.
    pub cosine: Option<f64>,
}

/// Runs `steps` steps of theta <- theta + lr * grad J (J chosen by `objective`) from `theta0`,
/// returning `steps + 1` records (step 0 included), each tracking J_1, J_{track_k} and their
/// gradients' cosine.
///
/// Fails when `theta0` has the wrong length or a non-finite entry, `lr` is not finite and > 0,
/// or `track_k` or the objective's k is 0.
pub fn ascent(
    bandit: &SoftmaxBandit,
    theta0: &[f64],
    objective: AscentObjective,
    lr: f64,
    steps: usize,
    track_k: u32,
) -> Result<Vec<AscentStep>, TheoryError> {
    let invalid = |field, reason: String| TheoryError::InvalidConfig { field, reason };
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(invalid("lr", format!("{lr} must be finite and > 0")));
    }
    if track_k == 0 {
        return Err(invalid("track_k", "0; use k >= 1".into()));
    }
    if objective == AscentObjective::PassK(0) {
        return Err(invalid("objective", "PassK(0); use k >= 1".into()));
    }
    if theta0.iter().any(|t| !t.is_finite()) {
        return Err(invalid(
            "theta0",
            format!("{theta0:?} has a non-finite entry"),
        ));
    }
    let mut theta = theta0.to_vec();
    let mut out = Vec::with_capacity(steps + 1);
    for step in 0..=steps {
        let snap = bandit.snapshot(&theta)?;
        out.push(AscentStep {
            step,
            j1: snap.j1(),
            jk: snap.jk(track_k),
            cosine: snap.cosine(track_k),
        });
        if step == steps {
            break;
        }
        let grad = match objective {
            AscentObjective::Pass1 => snap.grad_j1,
            AscentObjective::PassK(k) => snap.grad_jk(k),
        };
        axpy(lr, &grad, &mut theta);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::two_prompt_example;

    #[test]
    fn ascent_records_every_step_and_climbs_its_objective() {
        let ex = two_prompt_example();
        let run = ascent(&ex.bandit, &ex.theta, AscentObjective::PassK(4), 0.5, 50, 4).unwrap();
        assert_eq!(run.len(), 51);
        assert_eq!(run[0].step, 0);
        assert_eq!(run[50].step, 50);
        let s0 = ex.bandit.snapshot(&ex.theta).unwrap();
        assert_eq!(run[0].j1, s0.j1());
        assert_eq!(run[0].cosine, s0.cosine(4));
        // a small step size makes ascent monotone on its own objective
        for w in run.windows(2) {
            assert!(w[1].jk >= w[0].jk, "J_4 fell: {:?}", w);
        }
        let run1 = ascent(&ex.bandit, &ex.theta, AscentObjective::Pass1, 0.5, 50, 4).unwrap();
        for w in run1.windows(2) {
            assert!(w[1].j1 >= w[0].j1);
        }
        assert!(run1[0].cosine.unwrap() < 0.0);
    }

    #[test]
    fn ascent_rejects_bad_arguments() {
        let ex = two_prompt_example();
        let b = &ex.bandit;
        let t = &ex.theta;
        assert!(ascent(b, t, AscentObjective::Pass1, 0.0, 3, 2).is_err());
        assert!(ascent(b, t, AscentObjective::Pass1, f64::NAN, 3, 2).is_err());
        assert!(ascent(b, t, AscentObjective::Pass1, 0.1, 3, 0).is_err());
        assert!(ascent(b, t, AscentObjective::PassK(0), 0.1, 3, 2).is_err());
        assert!(ascent(b, &[0.0], AscentObjective::Pass1, 0.1, 3, 2).is_err());
        assert_eq!(
            ascent(b, t, AscentObjective::Pass1, 0.1, 0, 2)
                .unwrap()
                .len(),
            1
        );
    }
}
