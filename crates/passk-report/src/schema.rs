//! The on-disk schema of result files: one struct per CSV row or JSON file.
//!
//! Every tier writes its cells as `results/<experiment>/<cell hash>/<file>`; the report reads
//! only these types, so a figure never depends on how a result was computed.

use serde::{Deserialize, Serialize};

/// Version of the result schema, written into every `cell.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// `cell.json`: the canonical configuration of one cell and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Experiment name (the TOML file's `[experiment] name`).
    pub experiment: String,
    /// Tier that ran the cell (`theory`, `tiny`, `lm`).
    pub tier: String,
    /// First 16 hex digits of the sha256 of the canonical config JSON; the directory name.
    pub hash: String,
    /// The canonical configuration: matrix coordinates and parameters, keys sorted.
    pub config: serde_json::Value,
}

/// Theory tier: the names of the files in a cell directory.
pub mod theory_files {
    /// [`super::KScanRow`] rows.
    pub const KSCAN: &str = "kscan.csv";
    /// [`super::PromptRow`] rows.
    pub const PROMPTS: &str = "prompts.csv";
    /// [`super::TrajectoryRow`] rows.
    pub const TRAJECTORY: &str = "trajectory.csv";
    /// [`super::TheorySummary`].
    pub const SUMMARY: &str = "summary.json";
}

/// `kscan.csv`: the exact conflict between ∇J_k and ∇J_1 at the initial parameters, per k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KScanRow {
    /// The k of pass@k.
    pub k: u32,
    /// ⟨∇J_k, ∇J_1⟩.
    pub inner: f64,
    /// cos(∇J_k, ∇J_1); empty when a norm is zero.
    pub cosine: Option<f64>,
    /// ‖∇J_k‖.
    pub norm_k: f64,
    /// ‖∇J_1‖.
    pub norm_1: f64,
    /// |⟨∇J_k, ∇J_1⟩ − E_x[w_k(p(x)) a(x)]|: the conflict identity's numerical gap.
    pub identity_gap: f64,
}

/// `prompts.csv`: one prompt of a theory cell at the initial parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRow {
    /// Index of the prompt in the cell's prompt set.
    pub prompt: usize,
    /// Group label (`easy` or `hard` in the toy).
    pub group: String,
    /// Probability mass ρ(x).
    pub mass: f64,
    /// The scalar feature s(x) of the toy.
    pub feature: f64,
    /// Success probability p(x).
    pub p: f64,
    /// Agreement a(x) = ⟨∇p(x), ∇J_1⟩.
    pub agreement: f64,
    /// w_k(p(x)) for the cell's k.
    pub w_k: f64,
}

/// `trajectory.csv`: one step of exact gradient ascent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRow {
    /// Objective ascended: `pass@1` or `pass@k`.
    pub objective: String,
    /// Step index, 0 = initial parameters.
    pub step: usize,
    /// J_1 = pass@1 at this step.
    pub j1: f64,
    /// J_k for the cell's k at this step.
    pub jk: f64,
    /// cos(∇J_k, ∇J_1) at this step; empty when undefined.
    pub cosine: Option<f64>,
}

/// `summary.json`: the scalar results of a theory cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheorySummary {
    /// The cell's k.
    pub k: u32,
    /// The smallest scanned k with ⟨∇J_k, ∇J_1⟩ < 0 at the initial parameters, if any.
    pub k_star: Option<u32>,
    /// J_1 and J_k at the initial parameters.
    pub j1_start: f64,
    /// J_k at the initial parameters.
    pub jk_start: f64,
    /// J_1 after ascent on J_1.
    pub pass1_final_j1: f64,
    /// J_k after ascent on J_1.
    pub pass1_final_jk: f64,
    /// J_1 after ascent on J_k.
    pub passk_final_j1: f64,
    /// J_k after ascent on J_k.
    pub passk_final_jk: f64,
    /// Largest |conflict identity gap| over the k scan.
    pub max_identity_gap: f64,
    /// One small step θ + η∇J_k from the initial parameters: the step size η.
    pub one_step_eta: f64,
    /// Measured J_1(θ⁺) − J_1(θ).
    pub one_step_delta_j1: f64,
    /// First-order prediction η⟨∇J_1, ∇J_k⟩.
    pub one_step_first_order: f64,
}

/// Tiny tier: the names of the result files in a cell directory.
pub mod tiny_files {
    /// [`super::TinyEvalRow`] rows.
    pub const EVAL: &str = "eval.csv";
    /// The trainer's summary (`passk_train::TinySummary`).
    pub const SUMMARY: &str = "summary.json";
    /// [`super::TinyFormatRow`] rows.
    pub const FORMAT: &str = "eval_format.csv";
}

/// `eval_format.csv`: the share of a family's held-out samples answered under the other rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TinyFormatRow {
    /// RL step evaluated (0 = the warm start).
    pub step: u64,
    /// The family whose prompts were answered.
    pub family: String,
    /// Share of its samples equal to the other rule's answer (and not to the reference).
    pub other_format_share: f64,
    /// Samples counted.
    pub n_samples: usize,
}

/// `eval.csv`: held-out unbiased pass@k at one RL step for one family (`all` = every prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TinyEvalRow {
    /// RL step evaluated (0 = the warm start).
    pub step: u64,
    /// `all`, `addition` or `reversed_addition`.
    pub family: String,
    /// The k of pass@k.
    pub k: u32,
    /// Mean over prompts of the unbiased pass@k estimate.
    pub pass_at_k: f64,
    /// Prompts in the family.
    pub n_prompts: usize,
}
