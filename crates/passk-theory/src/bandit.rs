//! Softmax contextual bandits with closed-form success probabilities and gradients.

use serde::{Deserialize, Serialize};

use crate::error::TheoryError;
use crate::math::{axpy, cosine, dot, pass_at_k_of_q, w_k_of_q};

/// One prompt of a [`SoftmaxBandit`]: its weight, its answers' features and which answers are correct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanditPrompt {
    /// Group label (for example "easy" or "hard"), used by reports.
    pub group: String,
    /// Unnormalised prompt weight m(x) >= 0; the bandit normalises the masses to sum to 1.
    pub mass: f64,
    /// A scalar summary of the prompt used on plot axes (the toy's s(x)).
    pub feature: f64,
    /// Feature vector phi(x, y) in R^d of every answer y (at least one answer).
    pub answers: Vec<Vec<f64>>,
    /// Indices into `answers` of the correct answers (may be empty: then p(x) = 0).
    pub correct: Vec<usize>,
}

/// A finite softmax bandit: prompts with masses, answers with features phi(x, y) in R^d, and the
/// shared-parameter policy pi(y|x) = softmax_y(theta . phi(x, y)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxBandit {
    dim: usize,
    prompts: Vec<BanditPrompt>,
    /// `is_correct[x][y]`, precomputed from `correct`.
    is_correct: Vec<Vec<bool>>,
}

/// Exact quantities of a bandit at one theta: per-prompt p(x), 1 - p(x), grad p(x), the masses,
/// grad J_1 and the agreement scores a(x) = <grad p(x), grad J_1>.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Normalised prompt masses m(x).
    pub mass: Vec<f64>,
    /// Success probability p(x) of every prompt.
    pub p: Vec<f64>,
    /// Failure probability 1 - p(x), computed directly (accurate when p is near 1).
    pub q: Vec<f64>,
    /// grad_theta p(x) of every prompt.
    pub grad_p: Vec<Vec<f64>>,
    /// grad J_1 = sum_x m(x) grad p(x).
    pub grad_j1: Vec<f64>,
    /// Agreement a(x) = <grad p(x), grad J_1> of every prompt.
    pub agreement: Vec<f64>,
}

impl Snapshot {
    /// pass@1, J_1 = sum_x m(x) p(x).
    pub fn j1(&self) -> f64 {
        self.mass.iter().zip(&self.p).map(|(m, p)| m * p).sum()
    }

    /// pass@k, J_k = sum_x m(x) (1 - (1 - p(x))^k).
    pub fn jk(&self, k: u32) -> f64 {
        self.mass
            .iter()
            .zip(&self.q)
            .map(|(m, q)| m * pass_at_k_of_q(*q, k))
            .sum()
    }

    /// pass@k weight w_k(p(x)) = k (1 - p(x))^(k-1) of every prompt.
    pub fn weights(&self, k: u32) -> Vec<f64> {
        self.q.iter().map(|q| w_k_of_q(*q, k)).collect()
    }

    /// grad J_k = sum_x m(x) w_k(p(x)) grad p(x).
    pub fn grad_jk(&self, k: u32) -> Vec<f64> {
        let mut g = vec![0.0; self.grad_j1.len()];
        for ((m, q), gp) in self.mass.iter().zip(&self.q).zip(&self.grad_p) {
            axpy(m * w_k_of_q(*q, k), gp, &mut g);
        }
        g
    }

    /// <grad J_k, grad J_1> computed from the two gradient vectors.
    pub fn inner(&self, k: u32) -> f64 {
        dot(&self.grad_jk(k), &self.grad_j1)
    }

    /// The same inner product through the conflict identity, sum_x m(x) w_k(p(x)) a(x).
    pub fn inner_by_identity(&self, k: u32) -> f64 {
        self.mass
            .iter()
            .zip(&self.q)
            .zip(&self.agreement)
            .map(|((m, q), a)| m * w_k_of_q(*q, k) * a)
            .sum()
    }

    /// cos(grad J_k, grad J_1); `None` when either gradient is zero.
    pub fn cosine(&self, k: u32) -> Option<f64> {
        cosine(&self.grad_jk(k), &self.grad_j1)
    }

    /// Interference kernel kappa(x, x') = <grad p(x), grad p(x')>.
    pub fn kappa(&self, x: usize, x_prime: usize) -> f64 {
        dot(&self.grad_p[x], &self.grad_p[x_prime])
    }

    /// The full kernel (Gram) matrix kappa(x, x') over all prompt pairs.
    pub fn kernel(&self) -> Vec<Vec<f64>> {
        let n = self.grad_p.len();
        (0..n)
            .map(|i| (0..n).map(|j| self.kappa(i, j)).collect())
            .collect()
    }
}

impl SoftmaxBandit {
    /// Builds a bandit over R^`dim` from its prompts; masses are normalised to sum to 1.
    ///
    /// Fails when there are no prompts, `dim` is 0, a mass is negative or not finite, all masses are
    /// zero, a prompt has no answers, a feature vector has the wrong length or a non-finite entry,
    /// or a correct index is out of range or repeated.
    pub fn new(dim: usize, mut prompts: Vec<BanditPrompt>) -> Result<Self, TheoryError> {
        let bad = |msg: String| Err(TheoryError::InvalidBandit(msg));
        if dim == 0 {
            return bad("feature dimension is 0; use d >= 1".into());
        }
        if prompts.is_empty() {
            return bad("no prompts; give at least one".into());
        }
        let mut total = 0.0;
        let mut is_correct = Vec::with_capacity(prompts.len());
        for (i, pr) in prompts.iter().enumerate() {
            if !pr.mass.is_finite() || pr.mass < 0.0 {
                return bad(format!(
                    "prompt {i} has mass {}; masses must be finite and >= 0",
                    pr.mass
                ));
            }
            total += pr.mass;
            if pr.answers.is_empty() {
                return bad(format!("prompt {i} has no answers; give at least one"));
            }
            for (y, phi) in pr.answers.iter().enumerate() {
                if phi.len() != dim {
                    return bad(format!(
                        "prompt {i} answer {y} has a feature of length {} instead of {dim}",
                        phi.len()
                    ));
                }
                if phi.iter().any(|v| !v.is_finite()) {
                    return bad(format!("prompt {i} answer {y} has a non-finite feature"));
                }
            }
            let mut flags = vec![false; pr.answers.len()];
            for &c in &pr.correct {
                if c >= flags.len() {
                    return bad(format!(
                        "prompt {i} marks answer {c} correct but has only {} answers",
                        flags.len()
                    ));
                }
                if flags[c] {
                    return bad(format!("prompt {i} lists correct answer {c} twice"));
                }
                flags[c] = true;
            }
            is_correct.push(flags);
        }
        if !(total > 0.0 && total.is_finite()) {
            return bad("the masses sum to 0; give at least one prompt a positive mass".into());
        }
        for pr in &mut prompts {
            pr.mass /= total;
        }
        Ok(Self {
            dim,
            prompts,
            is_correct,
        })
    }

    /// Feature dimension d (the length of theta).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of prompts.
    pub fn n_prompts(&self) -> usize {
        self.prompts.len()
    }

    /// The prompts, with masses already normalised to sum to 1.
    pub fn prompts(&self) -> &[BanditPrompt] {
        &self.prompts
    }

    fn check(&self, theta: &[f64]) -> Result<(), TheoryError> {
        if theta.len() != self.dim {
            return Err(TheoryError::DimensionMismatch {
                expected: self.dim,
                got: theta.len(),
            });
        }
        Ok(())
    }

    /// The policy pi(.|x) over prompt `x`'s answers (numerically stable softmax).
    ///
    /// # Panics
    /// If `x` is out of range or `theta` has the wrong length.
    pub fn policy(&self, theta: &[f64], x: usize) -> Vec<f64> {
        assert_eq!(theta.len(), self.dim, "theta has the wrong dimension");
        let logits: Vec<f64> = self.prompts[x]
            .answers
            .iter()
            .map(|phi| dot(theta, phi))
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut pi: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
        let z: f64 = pi.iter().sum();
        for v in &mut pi {
            *v /= z;
        }
        pi
    }

    /// (p(x), 1 - p(x), grad p(x)) for one prompt.
    ///
    /// grad p = sum_{y correct} pi(y)(phi_y - phibar), written as (1-p) m_c - p m_w with
    /// m_c = sum_{correct} pi phi and m_w = sum_{wrong} pi phi, which avoids cancellation.
    fn prompt_terms(&self, theta: &[f64], x: usize) -> (f64, f64, Vec<f64>) {
        let pi = self.policy(theta, x);
        let (mut p, mut q) = (0.0, 0.0);
        let mut mc = vec![0.0; self.dim];
        let mut mw = vec![0.0; self.dim];
        for ((pi_y, phi), &ok) in pi
            .iter()
            .zip(&self.prompts[x].answers)
            .zip(&self.is_correct[x])
        {
            if ok {
                p += pi_y;
                axpy(*pi_y, phi, &mut mc);
            } else {
                q += pi_y;
                axpy(*pi_y, phi, &mut mw);
            }
        }
        let grad: Vec<f64> = mc.iter().zip(&mw).map(|(c, w)| q * c - p * w).collect();
        (p, q, grad)
    }

    /// Every exact quantity at `theta` (see [`Snapshot`]).
    pub fn snapshot(&self, theta: &[f64]) -> Result<Snapshot, TheoryError> {
        self.check(theta)?;
        let n = self.prompts.len();
        let mut snap = Snapshot {
            mass: self.prompts.iter().map(|p| p.mass).collect(),
            p: Vec::with_capacity(n),
            q: Vec::with_capacity(n),
            grad_p: Vec::with_capacity(n),
            grad_j1: vec![0.0; self.dim],
            agreement: Vec::with_capacity(n),
        };
        for x in 0..n {
            let (p, q, g) = self.prompt_terms(theta, x);
            axpy(snap.mass[x], &g, &mut snap.grad_j1);
            snap.p.push(p);
            snap.q.push(q);
            snap.grad_p.push(g);
        }
        snap.agreement = snap.grad_p.iter().map(|g| dot(g, &snap.grad_j1)).collect();
        Ok(snap)
    }

    /// Success probability p(x) = sum_{y correct} pi(y|x).
    ///
    /// # Panics
    /// If `x` is out of range or `theta` has the wrong length.
    pub fn p(&self, theta: &[f64], x: usize) -> f64 {
        self.prompt_terms(theta, x).0
    }

    /// grad_theta p(x).
    ///
    /// # Panics
    /// If `x` is out of range or `theta` has the wrong length.
    pub fn grad_p(&self, theta: &[f64], x: usize) -> Vec<f64> {
        self.prompt_terms(theta, x).2
    }

    /// pass@1, J_1(theta).
    pub fn j1(&self, theta: &[f64]) -> Result<f64, TheoryError> {
        self.jk(theta, 1)
    }

    /// pass@k, J_k(theta) (k = 0 gives 0).
    pub fn jk(&self, theta: &[f64], k: u32) -> Result<f64, TheoryError> {
        self.check(theta)?;
        Ok((0..self.prompts.len())
            .map(|x| {
                let (_, q, _) = self.prompt_terms(theta, x);
                self.prompts[x].mass * pass_at_k_of_q(q, k)
            })
            .sum())
    }

    /// grad J_1(theta).
    pub fn grad_j1(&self, theta: &[f64]) -> Result<Vec<f64>, TheoryError> {
        Ok(self.snapshot(theta)?.grad_j1)
    }

    /// grad J_k(theta).
    pub fn grad_jk(&self, theta: &[f64], k: u32) -> Result<Vec<f64>, TheoryError> {
        Ok(self.snapshot(theta)?.grad_jk(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random bandit: d in 2..=5, 3..=6 answers per prompt, 1..=3 correct answers (sometimes 0).
    fn random_bandit(seed: u64) -> (SoftmaxBandit, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = rng.random_range(2..=5);
        let n = rng.random_range(2..=6);
        let prompts = (0..n)
            .map(|i| {
                let n_ans = rng.random_range(3..=6);
                let answers: Vec<Vec<f64>> = (0..n_ans)
                    .map(|_| (0..d).map(|_| rng.random_range(-2.0..2.0)).collect())
                    .collect();
                let n_correct = if i == 0 { 0 } else { rng.random_range(1..=3) };
                let correct = (0..n_correct).collect();
                BanditPrompt {
                    group: format!("g{}", i % 2),
                    mass: rng.random_range(0.1..2.0),
                    feature: 0.0,
                    answers,
                    correct,
                }
            })
            .collect();
        let theta = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        (SoftmaxBandit::new(d, prompts).unwrap(), theta)
    }

    /// Central finite difference of `f` at `theta` along every coordinate.
    fn fd(theta: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let h = 1e-5;
        (0..theta.len())
            .map(|i| {
                let mut a = theta.to_vec();
                let mut b = theta.to_vec();
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{what}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn gradients_match_finite_differences_on_random_bandits() {
        for seed in 0..20 {
            let (b, theta) = random_bandit(seed);
            let snap = b.snapshot(&theta).unwrap();
            for x in 0..b.n_prompts() {
                let num = fd(&theta, |t| b.p(t, x));
                assert_close(&snap.grad_p[x], &num, 1e-8, "grad p");
            }
            let num = fd(&theta, |t| b.j1(t).unwrap());
            assert_close(&snap.grad_j1, &num, 1e-8, "grad J_1");
            for k in [1, 2, 3, 7, 16] {
                let num = fd(&theta, |t| b.jk(t, k).unwrap());
                assert_close(&snap.grad_jk(k), &num, 1e-8, "grad J_k");
            }
        }
    }

    #[test]
    fn identities_hold_on_random_bandits() {
        for seed in 100..120 {
            let (b, theta) = random_bandit(seed);
            let s = b.snapshot(&theta).unwrap();
            // masses sum to one, p + q = 1, prompt 0 has no correct answer
            assert!((s.mass.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (p, q) in s.p.iter().zip(&s.q) {
                assert!((p + q - 1.0).abs() < 1e-12);
            }
            assert_eq!(s.p[0], 0.0);
            // E_x[a(x)] = |grad J_1|^2 and a(x) = E_x'[kappa(x, x')]
            let mean_a: f64 = s.mass.iter().zip(&s.agreement).map(|(m, a)| m * a).sum();
            assert!((mean_a - dot(&s.grad_j1, &s.grad_j1)).abs() < 1e-14);
            let kern = s.kernel();
            for (x, row) in kern.iter().enumerate() {
                let mean: f64 = row.iter().zip(&s.mass).map(|(k, m)| k * m).sum();
                assert!((mean - s.agreement[x]).abs() < 1e-14);
                for (y, k) in row.iter().enumerate() {
                    assert_eq!(*k, kern[y][x]);
                }
            }
            // conflict identity, and J_1 = J_k at k = 1
            for k in 1..=16 {
                assert!((s.inner(k) - s.inner_by_identity(k)).abs() < 1e-14);
            }
            assert!(s.inner(1) >= 0.0);
            assert!((s.j1() - s.jk(1)).abs() < 1e-15);
            assert!((s.j1() - b.j1(&theta).unwrap()).abs() < 1e-15);
        }
    }

    #[test]
    fn softmax_is_stable_for_huge_logits() {
        let (b, theta) = random_bandit(7);
        let big: Vec<f64> = theta.iter().map(|t| t * 1e4).collect();
        let s = b.snapshot(&big).unwrap();
        assert!(s.p.iter().chain(&s.q).all(|v| v.is_finite()));
        assert!(s.grad_p.iter().flatten().all(|v| v.is_finite()));
        for x in 0..b.n_prompts() {
            let pi = b.policy(&big, x);
            assert!((pi.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn malformed_bandits_and_thetas_are_rejected() {
        let ok = BanditPrompt {
            group: "a".into(),
            mass: 1.0,
            feature: 0.0,
            answers: vec![vec![1.0, 0.0], vec![0.0, 0.0]],
            correct: vec![0],
        };
        assert!(SoftmaxBandit::new(2, vec![ok.clone()]).is_ok());
        assert!(SoftmaxBandit::new(2, vec![]).is_err());
        assert!(SoftmaxBandit::new(3, vec![ok.clone()]).is_err());
        let mut bad = ok.clone();
        bad.correct = vec![0, 0];
        assert!(SoftmaxBandit::new(2, vec![bad]).is_err());
        let mut bad = ok.clone();
        bad.correct = vec![2];
        assert!(SoftmaxBandit::new(2, vec![bad]).is_err());
        let mut bad = ok.clone();
        bad.mass = -1.0;
        assert!(SoftmaxBandit::new(2, vec![bad]).is_err());
        let mut bad = ok.clone();
        bad.mass = 0.0;
        let err = SoftmaxBandit::new(2, vec![bad]).unwrap_err();
        assert!(err.to_string().contains("positive mass"), "{err}");
        let b = SoftmaxBandit::new(2, vec![ok]).unwrap();
        assert_eq!(
            b.snapshot(&[1.0]).unwrap_err(),
            TheoryError::DimensionMismatch {
                expected: 2,
                got: 1
            }
        );
    }
}
