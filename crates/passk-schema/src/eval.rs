//! Held-out evaluations, written by the tiny and LM tiers at the warm start and after RL.

use serde::{Deserialize, Serialize};

/// [`EvalRow`] rows.
pub const EVAL_FILE: &str = "eval.csv";
/// [`FormatRow`] rows.
pub const FORMAT_FILE: &str = "eval_format.csv";
/// [`PromptOutcomeRow`] rows (LM tier).
pub const EVAL_PROMPTS_FILE: &str = "eval_prompts.csv";

/// Family label of the rows that pool every prompt.
pub const ALL_FAMILIES: &str = "all";

/// `eval.csv`: mean unbiased pass@k over the held-out prompts of one family at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// RL steps completed when evaluated (0 = the warm start).
    pub step: u64,
    /// Family name (`addition`, `reversed_addition`, ...) or [`ALL_FAMILIES`].
    pub family: String,
    /// The k of pass@k.
    pub k: u32,
    /// Mean over prompts of the unbiased pass@k estimate.
    pub pass_at_k: f64,
    /// Number of prompts averaged.
    pub n_prompts: usize,
}

/// `eval_format.csv`: how often a family's samples were the answer under the other rule (for
/// forward addition: answered reversed), and not the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatRow {
    /// RL steps completed when evaluated.
    pub step: u64,
    /// Family name (only families whose prompts carry an alternative reference).
    pub family: String,
    /// Share of samples equal to the other rule's answer (and not to the reference).
    pub other_format_share: f64,
    /// Number of samples counted.
    pub n_samples: usize,
}

/// `eval_prompts.csv`: one held-out prompt's samples by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptOutcomeRow {
    /// RL steps completed when evaluated.
    pub step: u64,
    /// The prompt's id.
    pub prompt: String,
    /// Its family name.
    pub family: String,
    /// Samples drawn.
    pub n_samples: u32,
    /// Samples judged correct.
    pub correct: u32,
    /// Finished samples with an answer of the wrong value (or invalid).
    pub wrong: u32,
    /// Finished samples in which the verifier found no answer (an extraction failure).
    pub no_answer: u32,
    /// Finished samples whose answer did not parse (an extraction failure).
    pub unparseable: u32,
    /// Samples that reached the token budget without a stop token (incorrect, not judged).
    pub cut_off: u32,
}
