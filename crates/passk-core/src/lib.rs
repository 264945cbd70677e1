//! Pure mathematics for the pass@k interference suite (no tensors, no I/O), and the
//! process-wide write gate that lets a write finish before a stop ([`interrupt`]).
//!
//! * [`estimators`]: unbiased pass@k from `n` samples with `c` correct, the labelled plug-in
//!   estimate, the population value `1 − (1 − p)^k` and the weight `w_k(p) = k (1 − p)^(k−1)`.
//! * [`objective`]: objectives that turn one prompt's group of binary rewards into per-sample
//!   policy-gradient weights (pass@1 baselines, PKPO, Chen et al., Tang et al.), and a registry
//!   addressed by spec strings such as `"pkpo_loo_minus_one:k=4"`.
//! * [`interference`]: the interference kernel as a Gram matrix, agreement scores,
//!   `⟨∇J_k, ∇J_1⟩`, cosines and the first conflicting `k`.
//! * [`stats`]: means, Student-t intervals and p-values, percentile bootstrap.
//! * [`special`]: log-gamma, regularized incomplete beta and the Student-t distribution.
//! * [`rng`]: seeded, stream-split ChaCha8 generators.
//! * [`interrupt`]: write sections that a stop request (SIGTERM) lets finish.
//!
//! The maths is specified in `docs/theory.md`; every test vector of its §4 is a unit test here.

pub mod error;
pub mod estimators;
pub mod interference;
pub mod interrupt;
pub mod objective;
pub mod rng;
pub mod special;
pub mod stats;

pub use error::CoreError;
