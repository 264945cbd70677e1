//! The gradient-interference probe: on a fixed set of probe-split prompts, estimate the
//! interference kernel `κ(x, x') = ⟨∇p(x), ∇p(x')⟩` (docs/theory.md §2.2, §3.5) from samples of
//! the current policy, and from it the agreement `a(x)`, `⟨∇J_k, ∇J_1⟩` for every k with
//! bootstrap intervals over prompts, cosines, k*, family blocks and a trimmed variant.
//!
//! # Estimator
//!
//! For each prompt, `n` completions are sampled at temperature 1 and verified; `p̂ = c/n`. The
//! samples are split into two halves A and B (the first and the second n/2); each half gives
//! `ĝ_H(x) = (1/m) Σ_{i∈H} (r_i − b_i) ∇log π(y_i | x)` (m = n/2) with the leave-one-out
//! baseline `b_i` = mean reward of the other samples of the half, so both halves are unbiased
//! for `∇p(x)` and independent. The Gram matrix is
//! - diagonal `κ̂(x, x) = ⟨ĝ_A(x), ĝ_B(x)⟩` (unbiased; the naive `‖ĝ‖²` is biased upward by the
//!   estimator's variance and is kept only as `kappa_self_naive` / `naive_cosine`);
//! - off-diagonal `κ̂(x, x') = ⟨m(x), m(x')⟩` with `m = (ĝ_A + ĝ_B)/2` (unbiased because the
//!   samples of different prompts are independent).
//!
//! It is computed by one backward pass per half per prompt. Exact mode keeps every `m(x)`
//! (parameters flattened in name order, f32) and accumulates inner products in f64; sketch mode
//! keeps CountSketch projections of both halves ([`ProbeMode::Sketch`]). Exact mode refuses to
//! run when `N × parameters × 4` bytes exceed `memory_budget_mb` (the error says to use sketch
//! mode).
//!
//! `w_k(p̂)` is the plug-in weight (biased for `w_k(p)` at small n, and computed from the same
//! samples as the gradients; a known limitation). The robust variant is the trimmed mean over
//! prompts of the terms `w_k(p̂(x)) â(x)` (fraction `trim` dropped at each end), reported as
//! block `trimmed`; it estimates a robust location of the per-prompt contributions, not
//! `⟨∇J_k, ∇J_1⟩` itself.
//!
//! # Use in a cell
//!
//! Build the [`ProbeSet`] once per cell ([`ProbeSet::from_mixture`]); at the warm start and at
//! every evaluation step call [`probe`] with the step and [`write_probe`] into
//! [`probe_dir`]`(cell_dir, step)`. Random streams ([`streams`]): the prompt set from
//! `(seed, PROBE_SET)`, samples from `(seed, PROBE_SAMPLES, step, prompt, sample)`, bootstrap
//! from `(seed, PROBE_BOOTSTRAP, step)`; none is used by training, so probing does not change
//! a run.

mod config;
mod files;
mod gradients;
mod products;
mod sketch;
mod stats;

#[cfg(test)]
mod tests;

pub use config::{ProbeConfig, ProbeMode, ProbeSet};
pub use files::{probe_gram_rows, probe_prompt_rows, read_probe, write_probe, ProbeFiles};
pub use gradients::probe_rollouts;
pub use stats::{ProbePromptStat, ProbeResult, PROBE_CI_LEVEL};

use passk_policy::Policy;

use crate::batch::PromptCodec;
use crate::error::{Result, TrainError};
use crate::rl::Group;

/// Stream ids (first element of every `seeded(seed, stream)` path) of the probe's draws.
pub mod streams {
    /// The probe prompt set: `[PROBE_SET]`.
    pub const PROBE_SET: u64 = 0x5052_4f01;
    /// Probe samples: `[PROBE_SAMPLES, step, prompt, sample]`.
    pub const PROBE_SAMPLES: u64 = 0x5052_4f02;
    /// Bootstrap resampling of prompts: `[PROBE_BOOTSTRAP, step]`.
    pub const PROBE_BOOTSTRAP: u64 = 0x5052_4f03;
    /// Sketch-mode projection (with the sketch seed): `[PROBE_SKETCH, chunk]`.
    pub const PROBE_SKETCH: u64 = 0x5052_4f04;
}

/// Probes `model` on `set` at training step `step`: samples `cfg.n_samples` completions per
/// prompt (streams `(seed, PROBE_SAMPLES, step, p, s)`), verifies them, estimates the split-half
/// Gram matrix and returns every statistic of [`ProbeResult`]. Does not change the model.
///
/// # Errors
/// An invalid `cfg`, a memory budget too small for exact mode (use sketch mode), or a model or
/// tensor failure.
pub fn probe<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    set: &ProbeSet,
    cfg: &ProbeConfig,
    seed: u64,
    step: u64,
) -> Result<ProbeResult> {
    cfg.validate()?;
    cfg.check_memory(set.len(), model.num_trainable())?;
    let groups = probe_rollouts(model, vocab, set, cfg.n_samples, seed, step)?;
    probe_groups(
        model,
        vocab.eos(),
        vocab.pad(),
        &groups,
        &set.families(),
        cfg,
        seed,
        step,
    )
}

/// The probe's statistics from given rollouts (`groups[i]` belongs to family `families[i]`):
/// the part of [`probe`] after sampling, usable with any reward function. Each group needs an
/// even number (at least 4) of completions; `cfg.n_prompts` and `cfg.n_samples` are not used
/// (the groups decide).
///
/// # Errors
/// Mismatched lengths, too few prompts or samples, an invalid `cfg`, the memory budget, or a
/// model or tensor failure.
#[allow(clippy::too_many_arguments)]
pub fn probe_groups<P: Policy + ?Sized>(
    model: &P,
    eos: u32,
    pad: u32,
    groups: &[Group],
    families: &[String],
    cfg: &ProbeConfig,
    seed: u64,
    step: u64,
) -> Result<ProbeResult> {
    cfg.validate()?;
    let bad = |field: &str, problem: String| TrainError::Config {
        field: format!("probe.{field}"),
        problem,
    };
    if groups.len() != families.len() {
        return Err(bad(
            "n_prompts",
            format!(
                "{} groups but {} family labels; give one label per group",
                groups.len(),
                families.len()
            ),
        ));
    }
    if groups.len() < 2 {
        return Err(bad(
            "n_prompts",
            format!("{} prompts; the probe needs at least 2", groups.len()),
        ));
    }
    for (i, g) in groups.iter().enumerate() {
        let n = g.completions.len();
        if n < 4 || n % 2 != 0 || g.rewards.len() != n {
            return Err(bad(
                "n_samples",
                format!(
                    "prompt {i} has {n} completions and {} rewards; need an even number >= 4 of \
                     each",
                    g.rewards.len()
                ),
            ));
        }
    }
    let params = model.params();
    let n_params = model.num_trainable();
    cfg.check_memory(groups.len(), n_params)?;
    let mut store = gradients::GradientStore::new(cfg.mode, n_params, groups.len());
    for g in groups {
        store.push(gradients::half_gradients(model, &params, g, eos, pad)?);
    }
    let (gram, naive) = store.finish()?;
    let n_samples: Vec<usize> = groups.iter().map(|g| g.completions.len()).collect();
    let n_correct: Vec<usize> = groups
        .iter()
        .map(|g| g.rewards.iter().filter(|&&r| r > 0.5).count())
        .collect();
    stats::compute(
        gram,
        &naive,
        stats::PromptCounts {
            n_samples: &n_samples,
            n_correct: &n_correct,
            families,
        },
        cfg,
        seed,
        step,
    )
}
