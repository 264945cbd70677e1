//! Building `passk` and reading its machine-readable outputs (`--json`): xtask parses no
//! experiment TOML and no human-readable passk output, only the small structs below.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use xshell::{cmd, Shell};

use crate::{cuda, project_root};

/// Builds the `passk` binary in release (with `cuda`, the CUDA build in target/cuda) and
/// returns its path.
pub fn build(sh: &Shell, cuda: bool) -> Result<PathBuf> {
    if cuda {
        // A shell of its own: the CUDA environment must not leak into later commands.
        return cuda::build_passk(&Shell::new()?, &project_root());
    }
    // Not --quiet: a cold build takes minutes, and cargo's progress says what it is doing.
    cmd!(sh, "cargo build --release -p passk-cli --bin passk")
        .run()
        .context("building passk failed")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release").join("passk"))
}

/// Runs `passk <args> --json` and reads its stdout as `T`. A nonzero exit status is accepted
/// when `any_status` (`passk check` exits 1 when a claim fails, and still prints its JSON).
pub fn json<T: DeserializeOwned>(
    sh: &Shell,
    passk: &Path,
    args: &[&str],
    any_status: bool,
) -> Result<T> {
    let out = cmd!(sh, "{passk} {args...} --json")
        .ignore_status()
        .output()?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let what = format!("`passk {} --json`", args.join(" "));
    if !out.status.success() && !any_status {
        anyhow::bail!("{what} failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{what} printed no valid JSON"))
}

/// One experiment file, from `passk experiments DIR --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// The path, as `passk run` takes it.
    pub file: String,
    /// `[experiment] tier`.
    pub tier: String,
    /// The number of cells of its matrix.
    pub cells: usize,
    /// Whether `reproduce all` runs it.
    pub in_all: bool,
    /// The environment variables its cells read (`"$NAME"` strings).
    pub env: Vec<String>,
    /// The devices its cells ask for.
    pub devices: Vec<String>,
}

/// `passk experiments DIR --json`.
pub fn experiments(sh: &Shell, passk: &Path, dir: &str) -> Result<Vec<Experiment>> {
    json(sh, passk, &["experiments", dir], false)
}

/// One claim's verdict, from `passk check --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    /// The claim's name.
    pub name: String,
    /// PASS, FAIL, XFAIL, XPASS or NOT EVALUATED.
    pub verdict: String,
    /// The point estimate; null when not computed (or not finite).
    pub estimate: Option<f64>,
}

/// `passk check --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    /// Each claim's verdict, in file order.
    pub claims: Vec<Verdict>,
    /// How many claims fail the check (its exit status is 1 when any does).
    pub failed: usize,
}

/// `passk gate --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Gate {
    /// The experiment files the gate recomputes.
    pub experiments: Vec<String>,
}

/// `passk warm-cache --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct WarmCache {
    /// Committed warm-start files copied into the cache (with `--seed`).
    pub copied: usize,
    /// Warm starts in the cache that the committed folder lacks (trained there).
    pub not_committed: Vec<String>,
}

/// `passk warm-cache --cache CACHE --committed results/warm-starts [--seed] --json`.
pub fn warm_cache(sh: &Shell, passk: &Path, cache: &Path, seed: bool) -> Result<WarmCache> {
    let committed = project_root().join("results/warm-starts");
    let (cache, committed) = (cache.display().to_string(), committed.display().to_string());
    let mut args = vec!["warm-cache", "--cache", &cache, "--committed", &committed];
    if seed {
        args.push("--seed");
    }
    json(sh, passk, &args, false)
}
