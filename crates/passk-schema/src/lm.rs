//! The LM tier's `summary.json`; its other files are [`crate::eval`]'s and
//! [`crate::train`]'s, and [`crate::probe`]'s under `probe/`.

use serde::{Deserialize, Serialize};

use crate::eval::{EvalRow, FormatRow};

/// [`LmSummary`].
pub const SUMMARY_FILE: &str = "summary.json";

/// The global probe statistic of one k at one step, as kept in [`LmSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmProbeRow {
    /// RL steps completed when probed.
    pub step: u64,
    /// The k of `⟨∇J_k, ∇J_1⟩`.
    pub k: u32,
    /// The point estimate (block `global`).
    pub inner: f64,
    /// Bootstrap interval, lower end.
    pub ci_low: f64,
    /// Bootstrap interval, upper end.
    pub ci_high: f64,
    /// Cosine of `∇J_k` with `∇J_1` from the split-half Gram; `None` (`null`) when a
    /// split-half squared norm came out `<= 0`, as it can when few samples succeed.
    pub cosine: Option<f64>,
}

/// `summary.json` of an LM cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmSummary {
    /// Hash of the whole config.
    pub config_hash: String,
    /// The objective spec trained.
    pub objective: String,
    /// Weights in the model.
    pub n_params: usize,
    /// Weights that train (the last `trainable_blocks` blocks and the final norm).
    pub n_trainable: usize,
    /// RL steps completed.
    pub rl_steps: u64,
    /// Evaluation before RL, overall and per family, every k.
    pub warm_start: Vec<EvalRow>,
    /// Evaluation after the last step.
    #[serde(rename = "final")]
    pub final_eval: Vec<EvalRow>,
    /// Other-format shares before RL (forward/reversed addition only; usually empty here).
    pub warm_start_format: Vec<FormatRow>,
    /// Other-format shares after the last step.
    pub final_format: Vec<FormatRow>,
    /// The probe's global statistics at step 0 and at the end.
    pub probe: Vec<LmProbeRow>,
    /// Bytes of the stored sketches: prompts × sketch dim × 2 halves × 8 bytes (f64).
    pub probe_sketch_bytes: u64,
    /// Bytes of the two dense f32 half-sample gradients held while one prompt is sketched:
    /// 2 × trainable weights × 4 bytes.
    pub probe_gradient_bytes: u64,
    /// Seconds spent loading the model.
    pub load_seconds: f64,
    /// Seconds of RL updates (rollouts included).
    pub rl_seconds: f64,
    /// Seconds of both evaluations.
    pub eval_seconds: f64,
    /// Seconds of both probes.
    pub probe_seconds: f64,
    /// Wall-clock seconds of the whole cell (not deterministic).
    pub wall_seconds: f64,
}
