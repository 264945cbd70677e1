//! The probe's result files: `prompts.csv`, `gram.f32` and `summary.csv` in one directory.

use std::path::{Path, PathBuf};

use passk_core::interference::Gram;
use serde::{Deserialize, Serialize};

use super::stats::{ProbeResult, ProbeSummaryRow};
use crate::error::{io_err, Result};
use crate::files::{read_csv, write_atomic, write_csv_atomic};

/// Per-prompt file (long format: one row per prompt and k).
pub const PROBE_PROMPTS_FILE: &str = "prompts.csv";
/// The Gram matrix, binary: `κ̂(i, j)` for `i <= j` in row-major order (i outer) as
/// little-endian f32, `n (n + 1) / 2` values for `n` probe prompts, no header (NumPy:
/// `np.fromfile(path, "<f4")`). Cells written before it hold `gram.csv` (long format, f64)
/// instead; [`read_probe`] reads either.
pub const PROBE_GRAM_FILE: &str = "gram.f32";
/// The earlier, text form of the Gram matrix: `i,j,kappa` rows (about 2.8 times larger).
pub const PROBE_GRAM_CSV_FILE: &str = "gram.csv";
/// The per-k, per-block statistics.
pub const PROBE_SUMMARY_FILE: &str = "summary.csv";

/// One row of `prompts.csv`: one prompt at one k (the prompt columns repeat for every k).
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
    /// Unbiased `κ̂(x, x)` from the two halves.
    pub kappa_self: f64,
    /// Naive `‖ĝ(x)‖²` (biased upward).
    pub kappa_self_naive: f64,
    /// The k of this row.
    pub k: u32,
    /// `w_k(p̂) = k (1 − p̂)^(k−1)`.
    pub w_k: f64,
}

/// One row of `gram.csv`: `κ̂(x_i, x_j)` for `i <= j`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeGramRow {
    /// Row prompt index.
    pub i: usize,
    /// Column prompt index (`>= i`).
    pub j: usize,
    /// The split-half kernel estimate.
    pub kappa: f64,
}

/// `<cell_dir>/probe/step-<NNNNN>`: where the probe of `step` is written.
pub fn probe_dir(cell_dir: &Path, step: u64) -> PathBuf {
    cell_dir.join("probe").join(format!("step-{step:05}"))
}

/// The rows of `prompts.csv` for `result`.
pub fn probe_prompt_rows(result: &ProbeResult) -> Vec<ProbePromptRow> {
    let mut rows = Vec::with_capacity(result.prompts.len() * result.ks.len());
    for (index, p) in result.prompts.iter().enumerate() {
        for (&k, &w) in result.ks.iter().zip(&p.w_k) {
            rows.push(ProbePromptRow {
                index,
                family: p.family.clone(),
                n_samples: p.n_samples,
                n_correct: p.n_correct,
                p_hat: p.p_hat,
                agreement: p.agreement,
                kappa_self: p.kappa_self,
                kappa_self_naive: p.kappa_self_naive,
                k,
                w_k: w,
            });
        }
    }
    rows
}

/// The rows of the Gram file for `result`.
pub fn probe_gram_rows(result: &ProbeResult) -> Vec<ProbeGramRow> {
    let n = result.gram.len();
    let mut rows = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            rows.push(ProbeGramRow {
                i,
                j,
                kappa: result.gram.get(i, j),
            });
        }
    }
    rows
}

/// Writes `prompts.csv`, `gram.f32` and `summary.csv` of `result` into `dir` (created if
/// missing), each through a temporary file and a rename.
pub fn write_probe(dir: &Path, result: &ProbeResult) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    write_csv_atomic(&dir.join(PROBE_PROMPTS_FILE), &probe_prompt_rows(result))?;
    write_atomic(&dir.join(PROBE_GRAM_FILE), &result.gram.to_upper_f32_le())?;
    write_csv_atomic(&dir.join(PROBE_SUMMARY_FILE), &result.summary)?;
    Ok(())
}

/// The three files of a probe directory, as written by [`write_probe`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeFiles {
    /// Rows of `prompts.csv`.
    pub prompts: Vec<ProbePromptRow>,
    /// Rows of the Gram file (f32 precision from `gram.f32`).
    pub gram: Vec<ProbeGramRow>,
    /// Rows of `summary.csv`.
    pub summary: Vec<ProbeSummaryRow>,
}

/// Reads the files [`write_probe`] wrote into `dir`.
pub fn read_probe(dir: &Path) -> Result<ProbeFiles> {
    Ok(ProbeFiles {
        prompts: read_csv(&dir.join(PROBE_PROMPTS_FILE))?,
        gram: read_gram(dir)?,
        summary: read_csv(&dir.join(PROBE_SUMMARY_FILE))?,
    })
}

/// The Gram rows of a probe directory, from `gram.f32` or, in older cells, `gram.csv`.
fn read_gram(dir: &Path) -> Result<Vec<ProbeGramRow>> {
    let binary = dir.join(PROBE_GRAM_FILE);
    if !binary.exists() {
        return read_csv(&dir.join(PROBE_GRAM_CSV_FILE));
    }
    let bytes = std::fs::read(&binary).map_err(io_err(&binary))?;
    let gram = Gram::from_upper_f32_le(&bytes).ok_or_else(|| crate::error::TrainError::Format {
        path: binary,
        detail: "its length is not n (n + 1) / 2 f32 values".into(),
    })?;
    Ok(gram
        .upper_entries()
        .map(|(i, j, kappa)| ProbeGramRow { i, j, kappa })
        .collect())
}
