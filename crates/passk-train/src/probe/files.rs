//! The probe's result files: `prompts.csv`, `gram.f32` and `summary.csv` in one directory.

use std::path::Path;

use passk_schema::probe::{
    ProbeGramRow, ProbePromptRow, ProbeSummaryRow, GRAM_FILE, PROMPTS_FILE, SUMMARY_FILE,
};

use super::stats::ProbeResult;
use crate::error::{io_err, Result};
use crate::files::{read_csv, write_atomic, write_csv_atomic};

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
    write_csv_atomic(&dir.join(PROMPTS_FILE), &probe_prompt_rows(result))?;
    write_atomic(&dir.join(GRAM_FILE), &result.gram.to_upper_f32_le())?;
    write_csv_atomic(&dir.join(SUMMARY_FILE), &result.summary)?;
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
        prompts: read_csv(&dir.join(PROMPTS_FILE))?,
        gram: passk_schema::probe::read_gram_rows(dir).map_err(io_err(dir))?,
        summary: read_csv(&dir.join(SUMMARY_FILE))?,
    })
}
