//! The gradient probe's files: one directory `probe/step-<NNNNN>/` per probed step of a cell,
//! holding `prompts.csv`, `gram.f32` and `summary.csv`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The directory of a cell holding one `step-<NNNNN>` directory per probe.
pub const PROBE_DIR: &str = "probe";
/// [`ProbePromptRow`] rows.
pub const PROMPTS_FILE: &str = "prompts.csv";
/// The Gram matrix, binary: `κ̂(i, j)` for `i <= j` in row-major order (i outer) as
/// little-endian f32, `n (n + 1) / 2` values for `n` probe prompts, no header (NumPy:
/// `np.fromfile(path, "<f4")`).
pub const GRAM_FILE: &str = "gram.f32";
/// The earlier, text form of the Gram matrix ([`ProbeGramRow`] rows, about 2.8 times larger),
/// in cells written before [`GRAM_FILE`].
pub const GRAM_CSV_FILE: &str = "gram.csv";
/// [`ProbeSummaryRow`] rows.
pub const SUMMARY_FILE: &str = "summary.csv";

/// Block label of the statistic over all prompts.
pub const BLOCK_GLOBAL: &str = "global";
/// Block label of the trimmed-mean statistic.
pub const BLOCK_TRIMMED: &str = "trimmed";

/// The block label `a->b` of the pass@k-weighted gradient of family `a` against the pass@1
/// direction of family `b`.
pub fn block_label(a: &str, b: &str) -> String {
    format!("{a}->{b}")
}

/// `<cell_dir>/probe/step-<NNNNN>`: where the probe of `step` is written.
pub fn probe_dir(cell_dir: &Path, step: u64) -> PathBuf {
    cell_dir.join(PROBE_DIR).join(format!("step-{step:05}"))
}

/// `prompts.csv`: one prompt at one k (long format: the prompt columns repeat for every k).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePromptRow {
    /// Position of the prompt in the probe set.
    pub index: usize,
    /// Family name.
    pub family: String,
    /// Samples drawn.
    pub n_samples: usize,
    /// Correct samples.
    pub n_correct: usize,
    /// `p̂ = n_correct / n_samples`.
    pub p_hat: f64,
    /// Agreement `â(x) = ⟨∇p(x), ∇J_1⟩` (split-half diagonal).
    pub agreement: f64,
    /// Unbiased `κ̂(x, x)` from the two halves (may be negative).
    pub kappa_self: f64,
    /// Naive `‖ĝ(x)‖²` (biased upward).
    pub kappa_self_naive: f64,
    /// The k of this row.
    pub k: u32,
    /// `w_k(p̂) = k (1 − p̂)^(k−1)`.
    pub w_k: f64,
}

/// `gram.csv`: `κ̂(x_i, x_j)` for `i <= j`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeGramRow {
    /// Row prompt index.
    pub i: usize,
    /// Column prompt index (`>= i`).
    pub j: usize,
    /// The split-half kernel estimate.
    pub kappa: f64,
}

/// `summary.csv`: a statistic of `⟨∇J_k, ∇J_1⟩` for one k and one block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummaryRow {
    /// The k of pass@k.
    pub k: u32,
    /// [`BLOCK_GLOBAL`] (all prompts), [`BLOCK_TRIMMED`] (trimmed mean over prompts of
    /// `w_k(p̂) â(x)`) or `a->b` ([`block_label`]).
    pub block: String,
    /// The point estimate. Global: `(1/N) Σ_x w_k(p̂(x)) â(x)`. Trimmed: the mean of the same
    /// per-prompt terms after dropping `trim · N` from each end. Block `a->b`:
    /// `(1/N²) Σ_{x∈a} Σ_{x'∈b} w_k(p̂(x)) κ̂(x, x')`, so the blocks sum to the global value.
    pub inner: f64,
    /// Lower end of the percentile-bootstrap interval over prompts (95%).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Cosine from the split-half Gram (NaN when a squared norm is `<= 0`, or for `trimmed`).
    /// For a block, the cosine of family a's pass@k-weighted gradient with family b's pass@1
    /// gradient.
    pub cosine: f64,
    /// The same cosine with the naive diagonal `‖ĝ‖²` (biased toward 0 and toward positive
    /// values; reported only to show the bias).
    pub naive_cosine: f64,
}

/// The Gram rows of a probe step directory: from [`GRAM_FILE`] (f32 precision) or, in cells
/// written before it, [`GRAM_CSV_FILE`].
pub fn read_gram_rows(dir: &Path) -> std::io::Result<Vec<ProbeGramRow>> {
    let binary = dir.join(GRAM_FILE);
    if !binary.exists() {
        return crate::files::read_csv(&dir.join(GRAM_CSV_FILE));
    }
    let bytes = std::fs::read(&binary)?;
    let gram = passk_core::interference::Gram::from_upper_f32_le(&bytes).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "its length is not n (n + 1) / 2 f32 values; rerun the cell",
        )
    })?;
    Ok(gram
        .upper_entries()
        .map(|(i, j, kappa)| ProbeGramRow { i, j, kappa })
        .collect())
}
