//! The exact tier's files: the conflict between ∇J_k and ∇J_1 at the initial parameters, and
//! two runs of exact gradient ascent.

use serde::{Deserialize, Serialize};

/// [`KScanRow`] rows.
pub const KSCAN_FILE: &str = "kscan.csv";
/// [`PromptRow`] rows.
pub const PROMPTS_FILE: &str = "prompts.csv";
/// [`TrajectoryRow`] rows.
pub const TRAJECTORY_FILE: &str = "trajectory.csv";
/// [`TheorySummary`].
pub const SUMMARY_FILE: &str = "summary.json";

/// `kscan.csv`: ⟨∇J_k, ∇J_1⟩ at the initial parameters for one k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KScanRow {
    /// The k of pass@k.
    pub k: u32,
    /// ⟨∇J_k, ∇J_1⟩, from the gradient vectors.
    pub inner: f64,
    /// cos(∇J_k, ∇J_1); empty when a gradient is zero.
    pub cosine: Option<f64>,
    /// ‖∇J_k‖.
    pub norm_k: f64,
    /// ‖∇J_1‖.
    pub norm_1: f64,
    /// |⟨∇J_k, ∇J_1⟩ − Σ_x m(x) w_k(p(x)) a(x)|: the conflict identity's numerical residual.
    pub identity_gap: f64,
}

/// `prompts.csv`: one prompt's exact quantities at the initial parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRow {
    /// Index of the prompt in the cell's prompt set.
    pub prompt: usize,
    /// Group label (`easy` or `hard`).
    pub group: String,
    /// Normalised mass m(x).
    pub mass: f64,
    /// The toy's scalar feature s(x).
    pub feature: f64,
    /// Success probability p(x).
    pub p: f64,
    /// Agreement a(x) = ⟨∇p(x), ∇J_1⟩.
    pub agreement: f64,
    /// w_k(p(x)) for the cell's k.
    pub w_k: f64,
}

/// `trajectory.csv`: one step of one of the two ascent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRow {
    /// The objective climbed: `pass@1` or `pass@k`.
    pub objective: String,
    /// Step index, 0 = the initial parameters.
    pub step: usize,
    /// J_1 at this step.
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
    /// J_1 at the initial parameters.
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
    /// Largest identity_gap over the k scan.
    pub max_identity_gap: f64,
    /// The step size η of the single step θ + η∇J_k from the initial parameters.
    pub one_step_eta: f64,
    /// Exact J_1(θ + η∇J_k) − J_1(θ).
    pub one_step_delta_j1: f64,
    /// Its first-order prediction η⟨∇J_1, ∇J_k⟩.
    pub one_step_first_order: f64,
}
