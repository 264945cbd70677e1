//! The tiny tier's `summary.json`; its other files are [`crate::eval`]'s and
//! [`crate::train`]'s, and [`crate::probe`]'s under `probe/`.

use serde::{Deserialize, Serialize};

use crate::eval::{EvalRow, FormatRow};

/// [`TinySummary`].
pub const SUMMARY_FILE: &str = "summary.json";

/// `summary.json`: the warm-start and final evaluations and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TinySummary {
    /// Hash of the whole config.
    pub config_hash: String,
    /// Hash of the warm-start fields (name of the cached SFT weights).
    pub sft_hash: String,
    /// The objective spec trained.
    pub objective: String,
    /// The cue reliability q of the mixture.
    pub cue_reliability: f64,
    /// RL steps completed.
    pub rl_steps: u64,
    /// Evaluation at step 0 (the warm start), overall and per family, every k.
    pub warm_start: Vec<EvalRow>,
    /// Evaluation after the last step.
    #[serde(rename = "final")]
    pub final_eval: Vec<EvalRow>,
    /// Other-format shares at the warm start.
    pub warm_start_format: Vec<FormatRow>,
    /// Other-format shares after the last step.
    pub final_format: Vec<FormatRow>,
    /// The step this invocation resumed from, if it found a checkpoint.
    pub resumed_from_step: Option<u64>,
    /// Wall-clock seconds of this invocation (not deterministic).
    pub wall_seconds: f64,
}
