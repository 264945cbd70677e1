//! The trainers of the pass@k interference suite: for the tiny tier, a two-stage supervised
//! warm start on the `passk-tasks` synthetic mixtures; for any [`passk_policy::Policy`]
//! (the tiny transformer or a pretrained LM, see [`lm`]), a policy-gradient RL loop driven by
//! any `passk-core` objective, held-out evaluation of unbiased pass@k overall and per family,
//! the gradient-interference probe ([`probe`]), and checkpoint/resume.
//!
//! - [`TinyCellConfig`] describes one cell (model preset, mixture with cue reliability q, seed,
//!   [`SftConfig`], [`RlConfig`], [`EvalConfig`], checkpoint interval).
//! - [`warm_start`] trains (or loads from its cache) the SFT model shared by every cell with the
//!   same model, mixture, seed and SFT settings.
//! - [`run_tiny_cell`] runs a cell and writes `train_log.csv`, `eval.csv`, `eval_format.csv`
//!   and `summary.json`, whose rows are defined in `passk_schema` (shared with the report).
//! - [`lm`] is the pretrained-LM tier: [`lm::run_lm_cell`] trains the last blocks of a
//!   Llama/Qwen2-family model (SmolLM2) with the same RL code, generic over
//!   [`passk_policy::Policy`] and [`PromptCodec`].
//! - [`Optimizer`] is AdamW or SGD over name-sorted parameters with savable state.
//! - [`FileLock`] ([`lock`]) keeps two processes from running one cell or training one warm
//!   start at once.
//!
//! Every random draw comes from `passk_core::rng::seeded(seed, stream)` with the stream ids of
//! [`streams`] (initial weights from `passk_core::rng::weight_init`), so the same config gives bit-identical weights and logs (apart from the
//! wall-clock columns `seconds` and `wall_seconds`).

mod batch;
mod cell;
mod config;
mod error;
mod eval;
mod files;
pub mod lm;
pub mod lock;
mod optim;
mod probe;
mod progress;
mod prompts;
mod rl;
mod sft;

pub use batch::{logprobs, weighted_logprob_sum, PromptCodec, Vocab, WeightedRow};
pub use cell::{
    held_out_set, run_tiny_cell, run_tiny_cell_with, warm_start_profile, RunOptions, TinyOutcome,
    CHECKPOINT_FILE,
};
pub use config::{
    within_memory, CellProbe, EvalConfig, OptimizerKind, RlConfig, SftConfig, TinyCellConfig,
    MAX_BATCH, MAX_PLANNED_BYTES,
};
pub use error::{Result, TrainError};
pub use eval::{evaluate, evaluate_in_chunks, EvalSpec, Evaluation, EVAL_CHUNK};
pub use lock::FileLock;
pub use optim::{Optimizer, ADAMW_BETA1, ADAMW_BETA2, ADAMW_EPS, ADAMW_WEIGHT_DECAY};
pub use probe::{
    probe, probe_gram_rows, probe_groups, probe_prompt_rows, probe_rollouts, read_probe,
    streams as probe_streams, write_probe, ProbeConfig, ProbeFiles, ProbeMode, ProbePromptStat,
    ProbeResult, ProbeSet, PROBE_CI_LEVEL,
};
pub use progress::{Phase, Progress};
pub use prompts::{PromptPool, TrainPrompts};
pub use rl::{apply_projected_update, apply_update, policy_loss, rl_step, rollouts, Group};
pub use sft::{
    cached_warm_start_sha256, remove_orphaned_cache_temporaries, train_sft, train_sft_observed,
    warm_start, warm_start_checked, warm_start_path, warm_start_with, WarmStart, SFT_CLIP,
};

/// Stream ids (first element of every `seeded(seed, stream)` path) of the random draws.
pub mod streams {
    /// SFT batches: `[SFT, stage, step]`.
    pub const SFT: u64 = 0x5346_5401;
    /// RL prompt draws: `[RL_PROMPTS, step]`.
    pub const RL_PROMPTS: u64 = 0x524c_5001;
    /// RL samples: `[RL_SAMPLES, step, prompt, sample]`.
    pub const RL_SAMPLES: u64 = 0x524c_5302;
    /// The eval prompt set: `[EVAL_SET]`.
    pub const EVAL_SET: u64 = 0x4556_4c01;
    /// Eval samples: `[EVAL_SAMPLES, prompt, sample]`.
    pub const EVAL_SAMPLES: u64 = 0x4556_4c02;
}

#[cfg(test)]
mod tests;
