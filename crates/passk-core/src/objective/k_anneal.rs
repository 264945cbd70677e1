//! `k_anneal:k=K[,to=T]`: pass@k training whose k falls linearly from K to T (default 1) over
//! the RL run (mitigation (b) of issue #6).
//!
//! At step `t` of `S` the trainer uses `pkpo_loo_minus_one:k=k_t` with
//! `k_t = round(K + (T − K) t / (S − 1))`: early steps explore with the pass@K weighting, the
//! last ones consolidate with pass@T. The objective's own `k` is K, the pass@k whose gain it
//! should keep.

use super::pkpo_loo_minus_one::PkpoLooMinusOne;
use super::{Objective, ObjectiveInfo, SpecParams};
use crate::CoreError;

/// Registry entry.
pub const INFO: ObjectiveInfo = ObjectiveInfo {
    name: "k_anneal",
    needs_k: true,
    description: "pkpo_loo_minus_one with k falling linearly from K to T (default 1) over the RL steps; each step is unbiased for its own pass@k_t, the run follows no single objective",
};

/// Builds from a spec `"k_anneal:k=K"` or `"k_anneal:k=K,to=T"` (`1 <= T <= K`).
///
/// # Errors
/// [`CoreError::BadSpec`] when `k` is missing, or `to` is 0 or above `k`.
pub fn build(params: &mut SpecParams) -> Result<Box<dyn Objective>, CoreError> {
    let from = params.require_k()?;
    let to = params.take_u32("to")?.unwrap_or(1);
    if to == 0 || to > from {
        return Err(params.error(&format!("to must be between 1 and k = {from}, got {to}")));
    }
    Ok(Box::new(KAnneal { from, to }))
}

/// The schedule's end points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KAnneal {
    from: u32,
    to: u32,
}

impl KAnneal {
    /// The k used at step `step` of `steps`.
    pub fn k_at(&self, step: u64, steps: u64) -> u32 {
        if steps <= 1 {
            return self.from;
        }
        let frac = step.min(steps - 1) as f64 / (steps - 1) as f64;
        let k = f64::from(self.from) + (f64::from(self.to) - f64::from(self.from)) * frac;
        k.round() as u32
    }
}

impl Objective for KAnneal {
    fn name(&self) -> String {
        match self.to {
            1 => format!("{}:k={}", INFO.name, self.from),
            to => format!("{}:k={},to={to}", INFO.name, self.from),
        }
    }

    /// The weights of the first step (pass@K); the trainer asks [`Objective::at_step`].
    fn weights(&self, rewards: &[f64]) -> Result<Vec<f64>, CoreError> {
        PkpoLooMinusOne::new(self.from).weights(rewards)
    }

    fn k(&self) -> u32 {
        self.from
    }

    fn unbiased(&self) -> bool {
        false
    }

    fn at_step(&self, step: u64, steps: u64) -> Option<Box<dyn Objective>> {
        Some(Box::new(PkpoLooMinusOne::new(self.k_at(step, steps))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::objective_from_spec;
    use super::KAnneal;

    #[test]
    fn k_falls_linearly_from_k_to_t() {
        let a = KAnneal { from: 8, to: 1 };
        assert_eq!(a.k_at(0, 150), 8);
        assert_eq!(a.k_at(149, 150), 1);
        assert_eq!(a.k_at(500, 150), 1);
        assert_eq!(a.k_at(0, 1), 8);
        let ks: Vec<u32> = (0..150).map(|t| a.k_at(t, 150)).collect();
        assert!(ks.windows(2).all(|w| w[1] <= w[0]), "non-increasing");
        assert_eq!(ks[75], 4); // 8 - 7 * 75/149 = 4.48
        let o = objective_from_spec("k_anneal:k=8").unwrap();
        let f = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let at = |t| o.at_step(t, 150).unwrap().weights(&f).unwrap();
        let w = |s: &str| objective_from_spec(s).unwrap().weights(&f).unwrap();
        assert_eq!(at(0), w("pkpo_loo_minus_one:k=8"));
        assert_eq!(at(149), w("pkpo_loo_minus_one:k=1"));
        assert_eq!(o.k(), 8);
        assert_eq!(
            objective_from_spec("k_anneal:k=8,to=2").unwrap().name(),
            "k_anneal:k=8,to=2"
        );
        assert!(objective_from_spec("k_anneal:k=4,to=5").is_err());
        assert!(objective_from_spec("k_anneal:k=4,to=0").is_err());
    }
}
