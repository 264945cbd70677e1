//! Loaders for the real math datasets stored as JSONL: GSM8K (`question`, `answer` ending in
//! `#### N`), MATH-500 (`problem`, `solution`, `answer`, `level`, `unique_id`) and SVAMP (`Body`,
//! `Question`, `Answer`, `ID`), from a path or from the Hugging Face hub cache (never
//! downloading).
//!
//! A malformed line is reported as `file:line`; [`OnMalformed`] decides whether it is skipped
//! and counted or fatal. Blank lines are ignored.
//!
//! Copies of the three datasets are vendored in this crate under `data/real/<name>/` (see
//! [`vendored_dir`], [`vendored_path`] and `data/real/SOURCES.md` for origins, commits and
//! licences). Measured on them (`cargo test -p passk-tasks --test real_data -- --nocapture`):
//! GSM8K test 1,319 / 1,319 and train 7,473 / 7,473 solutions verify against their own `####`
//! answer; MATH-500 500 / 500 gold answers verify against the last boxed answer of
//! their own solution (no misses); SVAMP 1,000 / 1,000 answers load and verify.

use crate::math::after_hashes;
use crate::prompt::{Check, Family, Prompt};
use serde::Deserialize;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Which dataset a JSONL file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// GSM8K.
    Gsm8k,
    /// MATH-500 (or any MATH JSONL with the same fields).
    Math500,
    /// SVAMP.
    Svamp,
}

/// What to do with a malformed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Record it in [`Loaded::skipped`] and continue.
    #[default]
    Skip,
    /// Stop with [`DataError::Malformed`].
    Fail,
}

/// Loader options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Policy for malformed lines.
    pub on_malformed: OnMalformed,
    /// Stop after this many prompts.
    pub limit: Option<usize>,
}

/// A malformed line: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// The prompts of a file and the lines skipped.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The prompts, in file order.
    pub prompts: Vec<Prompt>,
    /// Malformed lines that were skipped.
    pub skipped: Vec<BadLine>,
}

/// Loader failures.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A malformed line under [`OnMalformed::Fail`].
    #[error("{0} (use OnMalformed::Skip to skip such lines)")]
    Malformed(BadLine),
    /// The file is not in the local hub cache.
    #[error(
        "{file} of dataset {repo} is not in the Hugging Face cache ({cache}); download it where a \
         network exists (e.g. `huggingface-cli download --repo-type dataset {repo} {file}`) or set \
         HF_HOME"
    )]
    NotInCache {
        /// Dataset repository id.
        repo: String,
        /// File within it.
        file: String,
        /// The cache directory searched.
        cache: String,
    },
}

#[derive(Deserialize)]
struct Gsm8kRow {
    question: String,
    answer: String,
}

#[derive(Deserialize)]
struct MathRow {
    problem: String,
    solution: Option<String>,
    answer: String,
    #[serde(default)]
    level: Option<serde_json::Value>,
    #[serde(default)]
    unique_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SvampRow {
    body: String,
    question: String,
    answer: f64,
    #[serde(rename = "ID", default)]
    id: Option<String>,
}

/// Formats a JSON float answer as its shortest exact decimal text (`145.0` → `145`).
fn float_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn parse_row(kind: Dataset, stem: &str, line_no: usize, line: &str) -> Result<Prompt, String> {
    let base = |family, id: String, text: String, reference: String, check| Prompt {
        id,
        family,
        text,
        reference,
        difficulty: 0,
        check,
        split: None,
        cue_truthful: None,
        alt_reference: None,
        solution: None,
    };
    match kind {
        Dataset::Gsm8k => {
            let row: Gsm8kRow = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let gold = after_hashes(&row.answer)
                .filter(|s| !s.is_empty())
                .ok_or("answer has no `#### N` line")?;
            let gold = gold.replace(',', "");
            let mut p = base(
                Family::Gsm8k,
                format!("gsm8k:{stem}:{line_no}"),
                row.question,
                gold,
                Check::Gsm8k,
            );
            p.solution = Some(row.answer);
            Ok(p)
        }
        Dataset::Math500 => {
            let row: MathRow = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let id = row
                .unique_id
                .unwrap_or_else(|| format!("math:{stem}:{line_no}"));
            let mut p = base(Family::Math, id, row.problem, row.answer, Check::Math);
            p.difficulty = match row.level {
                Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0) as u32,
                Some(serde_json::Value::String(s)) => {
                    s.trim_start_matches("Level ").trim().parse().unwrap_or(0)
                }
                _ => 0,
            };
            p.solution = row.solution;
            Ok(p)
        }
        Dataset::Svamp => {
            let row: SvampRow = serde_json::from_str(line).map_err(|e| e.to_string())?;
            if !row.answer.is_finite() {
                return Err("Answer is not a finite number".into());
            }
            let body = row.body.trim();
            let sep = if body.ends_with(['.', '?', '!', ',']) {
                " "
            } else {
                ". "
            };
            let text = format!("{body}{sep}{}", row.question.trim());
            let id = row.id.unwrap_or_else(|| format!("svamp:{stem}:{line_no}"));
            Ok(base(
                Family::Svamp,
                id,
                text,
                float_text(row.answer),
                Check::Svamp,
            ))
        }
    }
}

/// Loads a JSONL file of `kind`.
pub fn load(kind: Dataset, path: &Path, opts: LoadOptions) -> Result<Loaded, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("data")
        .to_string();
    let mut out = Loaded::default();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        if opts.limit.is_some_and(|l| out.prompts.len() >= l) {
            break;
        }
        match parse_row(kind, &stem, i + 1, &line) {
            Ok(p) => out.prompts.push(p),
            Err(message) => {
                let bad = BadLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message,
                };
                match opts.on_malformed {
                    OnMalformed::Skip => out.skipped.push(bad),
                    OnMalformed::Fail => return Err(DataError::Malformed(bad)),
                }
            }
        }
    }
    Ok(out)
}

/// Loads GSM8K JSONL (`question`, `answer`).
pub fn load_gsm8k(path: &Path, opts: LoadOptions) -> Result<Loaded, DataError> {
    load(Dataset::Gsm8k, path, opts)
}

/// Loads MATH / MATH-500 JSONL (`problem`, `solution`, `answer`, ...).
pub fn load_math500(path: &Path, opts: LoadOptions) -> Result<Loaded, DataError> {
    load(Dataset::Math500, path, opts)
}

/// Loads SVAMP JSONL (`Body`, `Question`, `Answer`, ...).
pub fn load_svamp(path: &Path, opts: LoadOptions) -> Result<Loaded, DataError> {
    load(Dataset::Svamp, path, opts)
}

/// The folder holding the vendored copies of the real datasets: `data/real` inside this
/// crate's source directory, with one subfolder per dataset (`gsm8k/` with `train.jsonl` and
/// `test.jsonl`, `math500/test.jsonl`, `svamp/test.jsonl`).
///
/// The path is fixed at compile time from `CARGO_MANIFEST_DIR`, so it points into the checkout
/// this crate was built from; a binary moved to another machine must be given its data paths
/// explicitly.
pub fn vendored_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("real")
}

/// The vendored JSONL file of `kind` for `split` (`"test"`, or `"train"` for GSM8K), i.e.
/// `vendored_dir()/<name>/<split>.jsonl` with `<name>` one of `gsm8k`, `math500`, `svamp`.
/// The file is not checked for existence; [`load`] reports a missing one as [`DataError::Io`].
pub fn vendored_path(kind: Dataset, split: &str) -> PathBuf {
    let name = match kind {
        Dataset::Gsm8k => "gsm8k",
        Dataset::Math500 => "math500",
        Dataset::Svamp => "svamp",
    };
    vendored_dir().join(name).join(format!("{split}.jsonl"))
}

/// Locates `file` of hub dataset `repo` (e.g. `HuggingFaceH4/MATH-500`, `test.jsonl`) in the
/// Hugging Face cache at `cache_dir` (or `HF_HOME`'s hub cache when `None`). Never downloads.
pub fn hub_cache_file(
    repo: &str,
    file: &str,
    cache_dir: Option<&Path>,
) -> Result<PathBuf, DataError> {
    let cache = match cache_dir {
        Some(dir) => hf_hub::Cache::new(dir.to_path_buf()),
        None => hf_hub::Cache::from_env(),
    };
    cache
        .dataset(repo.to_string())
        .get(file)
        .ok_or_else(|| DataError::NotInCache {
            repo: repo.to_string(),
            file: file.to_string(),
            cache: cache.path().display().to_string(),
        })
}

/// Loads a hub dataset JSONL file from the local Hugging Face cache.
pub fn load_from_hub_cache(
    kind: Dataset,
    repo: &str,
    file: &str,
    cache_dir: Option<&Path>,
    opts: LoadOptions,
) -> Result<Loaded, DataError> {
    load(kind, &hub_cache_file(repo, file, cache_dir)?, opts)
}

#[cfg(test)]
mod tests;
