//! The paper's two-Gaussian toy (our concrete version, docs/theory.md §5) and the two-prompt
//! example of docs/theory.md §4.4.

use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::bandit::{BanditPrompt, SoftmaxBandit};
use crate::error::TheoryError;
use passk_core::rng::{seeded, uniform_f64};

/// Random stream used for drawing the toy's prompts (kept apart from any other use of the seed).
const TOY_STREAM: u64 = 0x0074_6f79; // ASCII "toy"

/// Group label of easy prompts (correct answer A).
pub const EASY: &str = "easy";
/// Group label of hard prompts (correct answer B).
pub const HARD: &str = "hard";

/// Parameters of the two-Gaussian toy bandit (see the crate docs for the construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToyConfig {
    /// Number of prompts (>= 2), each of mass 1/n_prompts.
    pub n_prompts: usize,
    /// Probability that a prompt is hard, in (0, 1).
    pub p_hard: f64,
    /// Distance between the two Gaussian means of s(x): +separation/2 (easy), -separation/2 (hard).
    pub separation: f64,
    /// Standard deviation of s(x) within each group (> 0).
    pub feature_std: f64,
    /// Starting parameter theta_0 = (bias, slope).
    pub theta0: [f64; 2],
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for ToyConfig {
    /// 64 prompts, 20% hard, separation 0.5 (overlapping groups), std 1, theta_0 = (2, 0), seed 0.
    fn default() -> Self {
        Self {
            n_prompts: 64,
            p_hard: 0.2,
            separation: 0.5,
            feature_std: 1.0,
            theta0: [2.0, 0.0],
            seed: 0,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TheoryError {
    TheoryError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

impl ToyConfig {
    /// Checks every field's range; the error names the first offending field.
    pub fn validate(&self) -> Result<(), TheoryError> {
        if self.n_prompts < 2 {
            return Err(invalid(
                "n_prompts",
                format!(
                    "{} < 2; use at least 2 (one easy, one hard)",
                    self.n_prompts
                ),
            ));
        }
        if !(self.p_hard > 0.0 && self.p_hard < 1.0) {
            return Err(invalid(
                "p_hard",
                format!("{} is not in the open interval (0, 1)", self.p_hard),
            ));
        }
        if !self.separation.is_finite() {
            return Err(invalid(
                "separation",
                format!("{} is not finite", self.separation),
            ));
        }
        if !(self.feature_std > 0.0 && self.feature_std.is_finite()) {
            return Err(invalid(
                "feature_std",
                format!("{} must be finite and > 0", self.feature_std),
            ));
        }
        if self.theta0.iter().any(|t| !t.is_finite()) {
            return Err(invalid(
                "theta0",
                format!("{:?} has a non-finite entry", self.theta0),
            ));
        }
        Ok(())
    }
}

/// Builds the toy bandit of `cfg`: uniform masses; each prompt hard with probability `p_hard`
/// (if the draw makes every prompt the same kind, the last prompt is switched to the other kind);
/// s(x) ~ N(+-separation/2, feature_std); answers A (phi = [1, s]) and B (phi = 0); easy prompts'
/// correct answer is A, hard prompts' is B. Groups are [`EASY`] and [`HARD`], `feature` is s(x).
pub fn build_toy(cfg: &ToyConfig) -> Result<SoftmaxBandit, TheoryError> {
    cfg.validate()?;
    let mut rng = seeded(cfg.seed, &[TOY_STREAM]);
    let mut hard: Vec<bool> = (0..cfg.n_prompts)
        .map(|_| uniform_f64(&mut rng) < cfg.p_hard)
        .collect();
    if hard.iter().all(|h| *h) || hard.iter().all(|h| !*h) {
        let last = hard.len() - 1;
        hard[last] = !hard[last];
    }
    let noise =
        Normal::new(0.0, cfg.feature_std).map_err(|e| invalid("feature_std", e.to_string()))?;
    let prompts = hard
        .iter()
        .map(|&is_hard| {
            let mean = if is_hard { -0.5 } else { 0.5 } * cfg.separation;
            let s = mean + noise.sample(&mut rng);
            BanditPrompt {
                group: if is_hard { HARD } else { EASY }.to_string(),
                mass: 1.0,
                feature: s,
                answers: vec![vec![1.0, s], vec![0.0, 0.0]],
                correct: vec![usize::from(is_hard)],
            }
        })
        .collect();
    SoftmaxBandit::new(2, prompts)
}

/// The two-prompt logistic bandit of docs/theory.md §4.4 with its theta: equal mass,
/// p(x) = sigma(theta . psi(x)) (a correct answer with phi = psi(x) and a wrong one with phi = 0),
/// psi_e = (1, 2) ("easy"), psi_h = (1, -3) ("hard"), theta = (0, 1).
#[derive(Debug, Clone, PartialEq)]
pub struct TwoPromptExample {
    /// The bandit; prompt 0 is easy, prompt 1 is hard.
    pub bandit: SoftmaxBandit,
    /// The parameter at which §4's numbers are evaluated.
    pub theta: Vec<f64>,
}

/// Builds the two-prompt example of docs/theory.md §4.4 (see [`TwoPromptExample`]).
pub fn two_prompt_example() -> TwoPromptExample {
    let prompt = |group: &str, psi: [f64; 2]| BanditPrompt {
        group: group.to_string(),
        mass: 1.0,
        feature: psi[1],
        answers: vec![psi.to_vec(), vec![0.0, 0.0]],
        correct: vec![0],
    };
    let bandit = SoftmaxBandit::new(2, vec![prompt(EASY, [1.0, 2.0]), prompt(HARD, [1.0, -3.0])])
        .expect("the fixed two-prompt example is well formed");
    TwoPromptExample {
        bandit,
        theta: vec![0.0, 1.0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn two_prompt_example_reproduces_theory_section_4() {
        let ex = two_prompt_example();
        let s = ex.bandit.snapshot(&ex.theta).unwrap();
        assert!(close(s.p[0], 0.880797, 1e-6), "p_e {}", s.p[0]);
        assert!(close(s.p[1], 0.047426, 1e-6), "p_h {}", s.p[1]);
        assert!(
            close(s.kappa(0, 1), -0.0237163, 1e-6),
            "kappa {}",
            s.kappa(0, 1)
        );
        assert!(
            close(s.agreement[0], 0.0157010, 1e-6),
            "a_e {}",
            s.agreement[0]
        );
        assert!(
            close(s.agreement[1], -0.0016535, 1e-6),
            "a_h {}",
            s.agreement[1]
        );
        let inner = [
            (1, 0.0070237),
            (2, 0.0002965),
            (3, -0.0019159),
            (4, -0.0028053),
            (16, -0.0063823),
        ];
        for (k, want) in inner {
            assert!(close(s.inner(k), want, 1e-6), "k={k}: {}", s.inner(k));
            assert!(close(s.inner_by_identity(k), want, 1e-6));
        }
        // docs/theory.md §4.4 prints the cosines to 5 decimals: check to half a unit in the
        // last digit ...
        for (k, want) in [(2, 0.02999), (3, -0.11973), (16, -0.13810)] {
            let c = s.cosine(k).unwrap();
            assert!(close(c, want, 5e-6), "cos k={k}: {c}");
        }
        // ... and every k against a hand-written closed form: grad p = sigma'(z) psi
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let (pe, ph) = (sig(2.0), sig(-3.0));
        let ge = [pe * (1.0 - pe), 2.0 * pe * (1.0 - pe)];
        let gh = [ph * (1.0 - ph), -3.0 * ph * (1.0 - ph)];
        let g1 = [(ge[0] + gh[0]) / 2.0, (ge[1] + gh[1]) / 2.0];
        for k in 1..=16 {
            let (we, wh) = (
                f64::from(k) * (1.0 - pe).powi(k as i32 - 1),
                f64::from(k) * (1.0 - ph).powi(k as i32 - 1),
            );
            let gk = [
                (we * ge[0] + wh * gh[0]) / 2.0,
                (we * ge[1] + wh * gh[1]) / 2.0,
            ];
            let inner = gk[0] * g1[0] + gk[1] * g1[1];
            let cos = inner / (gk[0].hypot(gk[1]) * g1[0].hypot(g1[1]));
            assert!(close(s.inner(k), inner, 1e-14) && close(s.cosine(k).unwrap(), cos, 1e-12));
        }
        assert!(close(s.cosine(1).unwrap(), 1.0, 1e-12));
    }

    #[test]
    fn toy_has_both_groups_and_the_stated_warm_start() {
        for (seed, p_hard) in (0..30).flat_map(|s| [(s, 0.05), (s, 0.95)]) {
            let cfg = ToyConfig {
                n_prompts: 3,
                p_hard,
                seed,
                ..ToyConfig::default()
            };
            let b = build_toy(&cfg).unwrap();
            let groups: Vec<&str> = b.prompts().iter().map(|p| p.group.as_str()).collect();
            assert!(
                groups.contains(&EASY) && groups.contains(&HARD),
                "{groups:?}"
            );
            let s = b.snapshot(&cfg.theta0).unwrap();
            for (pr, p) in b.prompts().iter().zip(&s.p) {
                // theta0 = (2, 0): pi(A|x) = sigma(2) = 0.8808 for every prompt
                let want = if pr.group == EASY { 0.880797 } else { 0.119203 };
                assert!(close(*p, want, 1e-6));
                assert!(close(pr.mass, 1.0 / 3.0, 1e-15));
            }
        }
    }

    #[test]
    fn toy_kernel_sign_follows_one_plus_product_of_features() {
        // kappa(easy, hard) = -v_e v_h (1 + s_e s_h), with v = sigma'(theta . psi)
        let cfg = ToyConfig {
            theta0: [0.5, 0.3],
            ..ToyConfig::default()
        };
        let b = build_toy(&cfg).unwrap();
        let s = b.snapshot(&cfg.theta0).unwrap();
        let v = |x: usize| s.p[x] * s.q[x];
        for e in 0..b.n_prompts() {
            for h in 0..b.n_prompts() {
                let (pe, ph) = (&b.prompts()[e], &b.prompts()[h]);
                if pe.group == EASY && ph.group == HARD {
                    let want = -v(e) * v(h) * (1.0 + pe.feature * ph.feature);
                    assert!(close(s.kappa(e, h), want, 1e-14));
                }
            }
        }
    }

    #[test]
    fn toy_is_deterministic_and_seed_dependent() {
        let cfg = ToyConfig::default();
        assert_eq!(build_toy(&cfg).unwrap(), build_toy(&cfg).unwrap());
        let other = ToyConfig { seed: 1, ..cfg };
        assert_ne!(build_toy(&cfg).unwrap(), build_toy(&other).unwrap());
    }

    #[test]
    fn invalid_toy_configs_name_the_field() {
        let base = ToyConfig::default();
        let cases: Vec<(ToyConfig, &str)> = vec![
            (
                ToyConfig {
                    n_prompts: 1,
                    ..base.clone()
                },
                "n_prompts",
            ),
            (
                ToyConfig {
                    p_hard: 0.0,
                    ..base.clone()
                },
                "p_hard",
            ),
            (
                ToyConfig {
                    p_hard: 1.0,
                    ..base.clone()
                },
                "p_hard",
            ),
            (
                ToyConfig {
                    p_hard: f64::NAN,
                    ..base.clone()
                },
                "p_hard",
            ),
            (
                ToyConfig {
                    separation: f64::INFINITY,
                    ..base.clone()
                },
                "separation",
            ),
            (
                ToyConfig {
                    feature_std: 0.0,
                    ..base.clone()
                },
                "feature_std",
            ),
            (
                ToyConfig {
                    theta0: [f64::NAN, 0.0],
                    ..base.clone()
                },
                "theta0",
            ),
        ];
        for (cfg, field) in cases {
            match build_toy(&cfg) {
                Err(TheoryError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected an error, got {other:?}"),
            }
        }
    }
}
