//! Dispatch from a tier name to its config validation and its cell runner.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::{Map, Value};

/// Settings of a run that are not part of any cell's configuration (so not in its hash).
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Where reusable intermediate artefacts (SFT warm starts) are cached.
    pub cache_dir: PathBuf,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
    /// No progress output.
    pub quiet: bool,
    /// Fail instead of retraining (with a warning) when a cached SFT warm start fails its
    /// integrity check (`--strict`).
    pub strict: bool,
    /// What `passk run` does with a cell that fails its completion check (`--on-corrupt`).
    pub on_corrupt: crate::record::OnCorrupt,
    /// Rerun done cells not known to be computed by this build's code (their recorded code
    /// fingerprint differs, or they record none: `--force`); cells this build computed are
    /// kept.
    pub force: bool,
}

impl Default for RunContext {
    fn default() -> Self {
        Self {
            cache_dir: PathBuf::from("target/passk-cache"),
            device: "cpu".into(),
            quiet: false,
            strict: false,
            on_corrupt: crate::record::OnCorrupt::Rerun,
            force: false,
        }
    }
}

/// Whether `tier` resumes an interrupted cell from checkpoints in its temporary directory.
pub fn resumes(tier: &str) -> bool {
    tier == "tiny"
}

/// Checks that `config` is a complete, valid cell configuration for `tier`.
pub fn validate(tier: &str, config: &Map<String, Value>) -> Result<()> {
    match tier {
        "theory" => crate::theory::spec(config).map(|_| ()),
        "tiny" => crate::tiny::spec(config).map(|_| ()),
        "lm" => crate::lm::spec(config).map(|_| ()),
        other => bail!("tier {other:?} is not built into this binary"),
    }
}

/// Runs one cell of `tier` and writes its result files into `dir`, the cell's temporary
/// directory, which may hold a checkpoint of an interrupted run.
pub fn run_cell(
    tier: &str,
    config: &Map<String, Value>,
    dir: &Path,
    ctx: &RunContext,
) -> Result<()> {
    match tier {
        "theory" => crate::theory::run(config, dir),
        "tiny" => crate::tiny::run(config, dir, ctx),
        "lm" => crate::lm::run(config, dir, ctx),
        other => bail!("tier {other:?} is not built into this binary"),
    }
}
