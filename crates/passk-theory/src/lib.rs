//! The exact (closed-form) tier of the pass@k interference suite.
//!
//! Softmax contextual bandits with a shared parameter theta in R^d, where every quantity of
//! docs/theory.md §2 is computed exactly: the per-prompt success probability p(x), its gradient,
//! pass@1 J_1, pass@k J_k and their gradients, the interference kernel
//! kappa(x, x') = <grad p(x), grad p(x')>, agreement scores a(x) = <grad p(x), grad J_1>, and exact
//! gradient-ascent runs.
//!
//! # The toy (our concrete version of the paper's §3.2)
//!
//! Only the opening of the paper's toy is known, so the constants here are this project's choice.
//! [`build_toy`] draws `n_prompts` prompts of equal mass; each is hard with probability `p_hard`
//! (from a seeded ChaCha8 generator; if every prompt came out the same kind the last one is
//! switched, so both groups exist). Features are psi(x) = [1, s(x)] with
//! s ~ N(+separation/2, feature_std) for easy prompts and N(-separation/2, feature_std) for hard
//! ones. There are two answers, A with phi(x, A) = psi(x) and B with phi(x, B) = 0, so
//! pi(A|x) = sigma(theta . psi(x)); easy prompts' correct answer is A and hard prompts' is B.
//! From theta_0 = (2, 0) the policy says A almost always (p_easy = 0.881, p_hard = 0.119), a
//! pass@1-style warm start. This is a linear classifier on two Gaussian classes:
//! kappa(easy, hard) = -v_e v_h (1 + s_e s_h) with v = sigma'(theta . psi). When the classes
//! overlap (small separation, s_e s_h > -1) the kernel is negative, so raising hard prompts'
//! p lowers easy ones', and pass@k, which up-weights hard prompts by w_k, hedges at pass@1's cost;
//! when they are well separated a separating theta exists, kappa > 0 and there is no conflict.
//! The tests check this numerically. Note that the conflict needs hard prompts to be the minority
//! (the default `p_hard` = 0.2): with p_hard = 0.5 and theta_0 = (2, 0) the bias components of
//! grad J_1 cancel and every prompt agrees with pass@1.
//!
//! What exact ascent shows on the default toy (separation 0.5, seed 0, k = 8): J_1 falls from
//! 0.809 to 0.567 while J_8 rises from 0.966 to 0.998; ascent on J_1 instead lowers J_8 (to 0.909).
//! At separation 6 no k in 1..=16 conflicts and ascent on J_8 raises J_1 (0.809 to 0.954). When
//! the first conflicting k is marginal (<grad J_k, grad J_1> near 0 at theta_0), J_1 only dips
//! along the pass@k path and can end above its start: a conflict at theta_0 is a first-order,
//! local statement.
//!
//! # Defaults
//!
//! [`TheoryCellConfig::default`] uses lr = 1 and 300 steps: on the toy the gradients are O(0.1),
//! so ascent stays monotone and theta moves by several units; a cell takes milliseconds.
//!
//! Numerics: softmax subtracts the max logit; p and 1 - p are summed separately over correct and
//! wrong answers, and grad p = (1 - p) m_c - p m_w (m_c, m_w: pi-weighted feature sums over
//! correct and wrong answers), so nothing cancels when p is near 0 or 1.

#![warn(missing_docs)]

mod ascent;
mod bandit;
mod cell;
mod error;
mod math;
mod toy;

pub use ascent::{ascent, AscentObjective, AscentStep};
pub use bandit::{BanditPrompt, Snapshot, SoftmaxBandit};
pub use cell::{run_cell, TheoryCellConfig, TheoryCellOutcome, DEFAULT_LR, DEFAULT_STEPS};
pub use error::TheoryError;
pub use toy::{build_toy, two_prompt_example, ToyConfig, TwoPromptExample, EASY, HARD};
