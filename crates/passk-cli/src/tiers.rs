//! Dispatch from a tier name to its config validation and its cell runner.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

/// Checks that `config` is a complete, valid cell configuration for `tier`.
pub fn validate(tier: &str, config: &Map<String, Value>) -> Result<()> {
    match tier {
        "theory" => crate::theory::spec(config).map(|_| ()),
        other => bail!("tier {other:?} is not built into this binary"),
    }
}

/// Runs one cell of `tier` and writes its result files into `dir` (a fresh temporary directory).
pub fn run_cell(tier: &str, config: &Map<String, Value>, dir: &Path) -> Result<()> {
    match tier {
        "theory" => crate::theory::run(config, dir),
        other => bail!("tier {other:?} is not built into this binary"),
    }
}
