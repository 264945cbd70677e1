//! Per-step training logs.

use serde::{Deserialize, Serialize};

/// [`TrainLogRow`] rows.
pub const TRAIN_LOG_FILE: &str = "train_log.csv";

/// `train_log.csv`: one RL update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainLogRow {
    /// Index of the update (0-based).
    pub step: u64,
    /// Mean reward over all P × n samples.
    pub mean_reward: f64,
    /// Mean over prompts of the unbiased pass@1 from the n samples.
    pub pass_at_1: f64,
    /// The k the objective targets (1 for pass@1 objectives).
    pub k: u32,
    /// Mean over prompts of the unbiased pass@k from the n samples.
    pub pass_at_k: f64,
    /// Global gradient norm before clipping (0 when every weight was zero); for a projected
    /// objective, the norm of the projected gradient.
    pub grad_norm: f64,
    /// For a projected objective (`conflict_projected`): the cosine between its gradient and
    /// its anchor's (pass@1) before projection, estimated from this step's samples; the step
    /// was projected when it is negative. Empty for other objectives.
    #[serde(default)]
    pub conflict_cos: Option<f64>,
    /// Wall-clock seconds of the step (the only non-deterministic column).
    pub seconds: f64,
}

/// One SFT step of a warm start (`sft-<hash>.csv` beside its cached weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftLogRow {
    /// 1 (reliable tag) or 2 (the cell's cue reliability).
    pub stage: u32,
    /// Step within the stage.
    pub step: u64,
    /// Mean per-token cross-entropy (nats) of the batch before the update.
    pub loss: f64,
}
