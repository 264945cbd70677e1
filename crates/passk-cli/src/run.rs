//! Running an experiment's missing cells, each into its own results directory.
//!
//! A cell runs in `results/<experiment>/.tmp-<hash>/` and is renamed to
//! `results/<experiment>/<hash>/` only when every file is written, so a directory named by a
//! hash is always complete. A killed run leaves only the hidden temporary: the next run hands it
//! back to the tier, which resumes from any checkpoint inside it (the temporary of a tier without
//! checkpoints is emptied first); temporaries of cells the experiment no longer lists are removed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use passk_report::schema::{CellRecord, SCHEMA_VERSION};
use serde_json::Value;

use crate::config::{describe, Experiment};
use crate::tiers::RunContext;
use crate::write::write_json;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Cells computed now.
    pub ran: usize,
    /// Cells whose results already existed.
    pub cached: usize,
}

/// The directory of one cell's results.
pub fn cell_dir(results: &Path, experiment: &str, hash: &str) -> PathBuf {
    results.join(experiment).join(hash)
}

/// Whether a cell's results are complete (its directory exists with `cell.json`).
pub fn is_done(results: &Path, experiment: &str, hash: &str) -> bool {
    cell_dir(results, experiment, hash)
        .join("cell.json")
        .is_file()
}

/// Runs every cell of `exp` that has no results yet.
pub fn run_experiment(exp: &Experiment, results: &Path, ctx: &RunContext) -> Result<RunStats> {
    let quiet = ctx.quiet;
    let exp_dir = results.join(&exp.name);
    std::fs::create_dir_all(&exp_dir)
        .with_context(|| format!("cannot create {}", exp_dir.display()))?;
    if !exp.sharded {
        // Another shard's process may own temporaries of cells not in this shard.
        remove_stale_temporaries(exp, &exp_dir)?;
    }
    let todo: Vec<_> = exp
        .cells
        .iter()
        .filter(|c| !is_done(results, &exp.name, &c.hash))
        .collect();
    let mut stats = RunStats {
        ran: 0,
        cached: exp.cells.len() - todo.len(),
    };
    if !quiet {
        eprintln!(
            "{}: {} cells, {} cached, {} to run",
            exp.name,
            exp.cells.len(),
            stats.cached,
            todo.len()
        );
    }
    let bar = ProgressBar::new(todo.len() as u64);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} cells, {elapsed} elapsed, ETA {eta} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(exp.name.clone());
    // Without a terminal (logs, CI) print a line per cell, at most one a second.
    let logged = !quiet && bar.is_hidden();
    let mut last_line = Instant::now();
    let total = todo.len();
    for cell in todo {
        let started = Instant::now();
        let tmp = exp_dir.join(format!(".tmp-{}", cell.hash));
        if tmp.exists() && !crate::tiers::resumes(&exp.tier) {
            // Nothing to resume: start clean so no stale file is renamed into the cell.
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot clear {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let record = CellRecord {
            schema: SCHEMA_VERSION,
            experiment: exp.name.clone(),
            tier: exp.tier.clone(),
            hash: cell.hash.clone(),
            config: Value::Object(cell.config.clone()),
        };
        crate::tiers::run_cell(&exp.tier, &cell.config, &tmp, ctx).with_context(|| {
            format!(
                "{}: cell {} ({})",
                exp.name,
                cell.hash,
                describe(&cell.coords)
            )
        })?;
        // cell.json last: its presence marks the directory complete.
        write_json(&tmp.join("cell.json"), &record)?;
        let dir = cell_dir(results, &exp.name, &cell.hash);
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot move {} into place", dir.display()))?;
        stats.ran += 1;
        bar.inc(1);
        if logged && (last_line.elapsed().as_secs_f64() >= 1.0 || stats.ran == total) {
            last_line = Instant::now();
            eprintln!(
                "  [{}/{}] {} ({}) in {:.2}s",
                stats.ran,
                total,
                cell.hash,
                describe(&cell.coords),
                started.elapsed().as_secs_f64()
            );
        }
    }
    bar.finish_and_clear();
    Ok(stats)
}

/// Cell directories under `results/<experiment>/` that the experiment no longer lists.
pub fn stale_cells(exp: &Experiment, results: &Path) -> Result<Vec<PathBuf>> {
    let dir = results.join(&exp.name);
    let mut stale = Vec::new();
    if !dir.is_dir() {
        return Ok(stale);
    }
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_dir() {
            continue;
        }
        if !exp.cells.iter().any(|c| c.hash == name) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    Ok(stale)
}

fn remove_stale_temporaries(exp: &Experiment, dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(hash) = name.strip_prefix(".tmp-") {
            if !exp.cells.iter().any(|c| c.hash == hash) {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
    }
    Ok(())
}

/// Copies into `out/<exp>/` every cell of `exp` that some experiment under `baseline` already
/// (`compare`'s committed results, `run --reuse`)
/// holds complete under the same hash (a cell's hash is its full configuration, not its
/// experiment's name or the code: the copy is what the build that committed it computed, and
/// `cargo xtask verify` ties it to the manifest); returns how many.
pub fn reuse_cells(exp: &Experiment, baseline: &Path, out: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(baseline) else {
        return Ok(0);
    };
    let mut experiments: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    experiments.sort();
    let mut reused = 0;
    for cell in &exp.cells {
        if is_done(out, &exp.name, &cell.hash) {
            continue;
        }
        let Some(source) = experiments
            .iter()
            .map(|e| e.join(&cell.hash))
            .find(|d| d.join("cell.json").is_file())
        else {
            continue;
        };
        let target = cell_dir(out, &exp.name, &cell.hash);
        let staging = target.with_file_name(format!(".{}.copy", cell.hash));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        copy_dir(&source, &staging)?;
        std::fs::rename(&staging, &target)
            .with_context(|| format!("cannot move {} into place", staging.display()))?;
        reused += 1;
    }
    Ok(reused)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
