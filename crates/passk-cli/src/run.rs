//! Running an experiment's missing cells, each into its own results directory.
//!
//! A cell runs in `results/<experiment>/.tmp-<hash>/` and is renamed to
//! `results/<experiment>/<hash>/` only when every file is written, its completion record
//! (`complete.json`, see [`crate::record`]) last, so a directory named by a hash is complete.
//! A cell counts as done only when its record verifies; one that does not (edited, truncated,
//! deleted or added files, an edited `cell.json`, no record) is reported, moved aside to
//! `results/<experiment>/.quarantine/<hash>-<n>` and rerun, or, with
//! [`OnCorrupt::Stop`](crate::record::OnCorrupt), the run stops before running anything. A killed run leaves only the hidden temporary: the next run hands it
//! back to the tier, which resumes from any checkpoint inside it (the temporary of a tier without
//! checkpoints is emptied first); temporaries of cells the experiment no longer lists are removed.
//!
//! Two processes never run one cell at once: a cell runs under an exclusive lock on
//! `results/<experiment>/.lock-<hash>` (see [`passk_train::lock`]), taken without waiting. A
//! process that finds it held skips the cell, says which process holds it, and counts it in
//! [`RunStats::busy`], so its run ends incomplete; with [`Busy::Wait`] (`passk run --wait`) it
//! waits for the lock instead, then finds the cell done, or resumes the checkpoint of a holder
//! that died. The lock file names its holder (pid, host)
//! and is removed, still locked, once the cell is in place; like every hidden name it is never
//! listed in the manifest nor taken for a cell.
//!
//! At the start of a run, leftovers that no process can still be using are removed
//! ([`remove_orphans`]): the temporary of a finished cell, the free lock file of a finished cell,
//! hidden temporary files of dead writers inside finished cells, and (for the tiny tier) of
//! warm-start writers in the cache. The temporary of an unfinished cell is its checkpoint and is
//! kept.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use passk_schema::cell::{CellRecord, SCHEMA_VERSION};
use passk_train::lock::holder;
use passk_train::FileLock;
use serde_json::Value;

use crate::config::{describe, Experiment};
use crate::provenance::{code_state, short, CodeState};
use crate::record::{CellState, OnCorrupt};
use crate::tiers::RunContext;
use crate::write::write_json;

pub use crate::reuse::reuse_cells;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Cells computed now.
    pub ran: usize,
    /// Cells whose results already existed.
    pub cached: usize,
    /// Cells skipped because another process holds their lock (is running them): the
    /// experiment is not complete.
    pub busy: usize,
    /// Cells that failed their completion check, moved aside and rerun (counted in `ran`).
    pub quarantined: usize,
    /// Done cells computed by other code (another code fingerprint), kept (without
    /// `--force`; counted in `cached`).
    pub stale_code: usize,
    /// Done cells whose record names no code (before fingerprints, or sealed), kept (without
    /// `--force`; counted in `cached`).
    pub unknown_code: usize,
    /// Done cells rerun because of `--force` (counted in `ran`).
    pub forced: usize,
}

/// The directory of one cell's results.
pub fn cell_dir(results: &Path, experiment: &str, hash: &str) -> PathBuf {
    results.join(experiment).join(hash)
}

/// The lock file of one cell: `results/<experiment>/.lock-<hash>`.
pub fn lock_path(results: &Path, experiment: &str, hash: &str) -> PathBuf {
    results.join(experiment).join(format!(".lock-{hash}"))
}

/// Whether a cell's results are complete: its directory exists and its completion record
/// verifies ([`crate::record::check`]; this reads and hashes every file of the cell).
pub fn is_done(results: &Path, experiment: &str, hash: &str) -> bool {
    crate::record::state(results, experiment, hash) == CellState::Complete
}

/// Whether a cell's directory is in place (complete or not): its temporary and lock are
/// leftovers then.
pub(crate) fn in_place(results: &Path, experiment: &str, hash: &str) -> bool {
    cell_dir(results, experiment, hash).is_dir()
}

/// What a run does with a cell whose lock another process holds (is running it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Skip it and count it in [`RunStats::busy`] (the run ends incomplete).
    #[default]
    Skip,
    /// Wait for the lock, then find the cell done (or, if its holder died, resume it from the
    /// holder's checkpoint): `passk run --wait`, what a Slurm array task does.
    Wait,
}

/// The cells (`<experiment>/<hash>`) of `exp` a run may write or replace: those not complete
/// now (missing, or corrupt and so moved aside and rerun) and, with `force`, complete ones
/// whose record names other code or none. What `passk run` vouches for in MANIFEST.
pub fn to_write(exp: &Experiment, results: &Path, force: bool) -> Vec<String> {
    exp.cells
        .iter()
        .filter(
            |c| match crate::record::state(results, &exp.name, &c.hash) {
                CellState::Complete => {
                    force && code_state(&cell_dir(results, &exp.name, &c.hash)) != CodeState::Same
                }
                _ => true,
            },
        )
        .map(|c| format!("{}/{}", exp.name, c.hash))
        .collect()
}

/// Runs every cell of `exp` that has no results yet, skipping cells other processes run.
pub fn run_experiment(exp: &Experiment, results: &Path, ctx: &RunContext) -> Result<RunStats> {
    run_experiment_with(exp, results, ctx, Busy::Skip)
}

/// Runs every cell of `exp` that has no results yet; `busy` says what to do with a cell another
/// process is running.
pub fn run_experiment_with(
    exp: &Experiment,
    results: &Path,
    ctx: &RunContext,
    busy_cells: Busy,
) -> Result<RunStats> {
    let quiet = ctx.quiet;
    let exp_dir = results.join(&exp.name);
    std::fs::create_dir_all(&exp_dir)
        .with_context(|| format!("cannot create {}", exp_dir.display()))?;
    remove_orphans(exp, results)?;
    if crate::tiers::entry(exp.tier).warm_starts {
        passk_train::remove_orphaned_cache_temporaries(&ctx.cache_dir)?;
    }
    let states: Vec<CellState> = exp
        .cells
        .iter()
        .map(|c| crate::record::state(results, &exp.name, &c.hash))
        .collect();
    let corrupt: Vec<String> = exp
        .cells
        .iter()
        .zip(&states)
        .filter_map(|(c, s)| match s {
            CellState::Corrupt(why) => Some(format!("{}/{}: {why}", exp.name, c.hash)),
            _ => None,
        })
        .collect();
    if !corrupt.is_empty() && ctx.on_corrupt == OnCorrupt::Stop {
        for c in &corrupt {
            eprintln!("CORRUPT: {c}");
        }
        anyhow::bail!(
            "{}: {} cell(s) under {} fail their completion check (listed above); stopped \
             (--on-corrupt stop) with nothing run or moved. `passk run` without it moves them \
             aside to .quarantine/ and reruns them",
            exp.name,
            corrupt.len(),
            exp_dir.display()
        );
    }
    // Done cells not known to be this build's: warned about, or rerun with --force.
    let codes: Vec<Option<CodeState>> = exp
        .cells
        .iter()
        .zip(&states)
        .map(|(c, s)| {
            (*s == CellState::Complete).then(|| code_state(&cell_dir(results, &exp.name, &c.hash)))
        })
        .collect();
    let stale_code = codes
        .iter()
        .filter(|c| matches!(c, Some(CodeState::Stale { .. })))
        .count();
    let unknown_code = codes
        .iter()
        .filter(|c| **c == Some(CodeState::Unknown))
        .count();
    let forced: std::collections::BTreeSet<&str> = if ctx.force {
        exp.cells
            .iter()
            .zip(&codes)
            .filter(|(_, c)| c.as_ref().is_some_and(|c| *c != CodeState::Same))
            .map(|(c, _)| c.hash.as_str())
            .collect()
    } else {
        Default::default()
    };
    warn_code(exp, ctx, stale_code, unknown_code);
    let todo: Vec<_> = exp
        .cells
        .iter()
        .zip(&states)
        .filter(|(c, s)| **s != CellState::Complete || forced.contains(c.hash.as_str()))
        .map(|(c, _)| c)
        .collect();
    let mut stats = RunStats {
        cached: exp.cells.len() - todo.len(),
        stale_code: if ctx.force { 0 } else { stale_code },
        unknown_code: if ctx.force { 0 } else { unknown_code },
        ..RunStats::default()
    };
    let mut busy = Vec::new();
    // Lines of several shard processes share one terminal: each says whose it is.
    let prefix = if ctx.label.is_empty() {
        String::new()
    } else {
        format!("[{}] ", ctx.label)
    };
    if !quiet {
        crate::term::say(&format!(
            "{prefix}{}: {} cells, {} cached, {} to run",
            exp.name,
            exp.cells.len(),
            stats.cached,
            todo.len()
        ));
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
        let lock_file = lock_path(results, &exp.name, &cell.hash);
        let mut taken = FileLock::try_acquire(&lock_file)?;
        if taken.is_none() && busy_cells == Busy::Wait {
            let who = holder(&lock_file);
            bar.suspend(|| {
                eprintln!(
                    "{}: cell {} is being run by another process ({who}); waiting for it",
                    exp.name, cell.hash
                )
            });
            taken = Some(FileLock::acquire(&lock_file)?);
        }
        let Some(mut lock) = taken else {
            bar.inc(1);
            if is_done(results, &exp.name, &cell.hash) {
                // Finished by its holder since the list was made.
                stats.cached += 1;
                continue;
            }
            let who = holder(&lock_file);
            bar.suspend(|| {
                eprintln!(
                    "{}: cell {} is being run by another process ({who}); skipped",
                    exp.name, cell.hash
                )
            });
            stats.busy += 1;
            busy.push(cell.hash.clone());
            continue;
        };
        match crate::record::state(results, &exp.name, &cell.hash) {
            CellState::Complete if forced.contains(cell.hash.as_str()) => {
                let dir = cell_dir(results, &exp.name, &cell.hash);
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {} to rerun it", dir.display()))?;
                stats.forced += 1;
            }
            CellState::Complete => {
                // Another process finished it between the listing and the lock.
                lock.remove()?;
                stats.cached += 1;
                bar.inc(1);
                continue;
            }
            CellState::Corrupt(why) => {
                let aside = crate::record::quarantine(results, &exp.name, &cell.hash)?;
                bar.suspend(|| {
                    eprintln!(
                        "CORRUPT: {}/{} fails its completion check: {why}; moved aside to {} \
                         and rerun",
                        exp.name,
                        cell.hash,
                        aside.display()
                    )
                });
                stats.quarantined += 1;
            }
            CellState::Missing => {}
        }
        lock.write_holder()?;
        let cell_ctx = RunContext {
            log: cell_log(&bar, &prefix, &exp.name, &cell.hash),
            ..ctx.clone()
        };
        if let Err(e) = run_locked_cell(exp, results, &cell_ctx, cell) {
            // The temporary stays (a checkpoint to resume from); the lock file goes.
            let _ = lock.remove();
            return Err(e);
        }
        // The cell is in place: release the lock and remove its file.
        lock.remove()?;
        stats.ran += 1;
        bar.inc(1);
        if logged && (last_line.elapsed().as_secs_f64() >= 1.0 || stats.ran == total) {
            last_line = Instant::now();
            crate::term::say(&format!(
                "{prefix}  [{}/{}] {} ({}) in {:.2}s",
                stats.ran,
                total,
                cell.hash,
                describe(&cell.coords),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    bar.finish_and_clear();
    if !busy.is_empty() {
        eprintln!(
            "{}: INCOMPLETE: {} cell(s) skipped because another process is running them ({}); \
             rerun `passk run` once it has finished",
            exp.name,
            busy.len(),
            busy.join(", ")
        );
    }
    Ok(stats)
}

/// Where the stage lines of one cell go: on a terminal into the progress bar's message (the
/// bar keeps its line and shows the cell's current stage), otherwise (logs, CI) as lines
/// naming the process's shard and the cell.
fn cell_log(bar: &ProgressBar, prefix: &str, experiment: &str, hash: &str) -> crate::term::Log {
    let (bar, head) = (bar.clone(), format!("{prefix}{experiment}/{hash}: "));
    crate::term::Log::new(move |line: &str| {
        if bar.is_hidden() {
            crate::term::say(&format!("{head}{line}"));
        } else {
            bar.set_message(format!("{head}{line}"));
        }
    })
}

/// Says (one line each) how many done cells of `exp` were computed by other code and how
/// many name no code; the first always, the second unless quiet.
fn warn_code(exp: &Experiment, ctx: &RunContext, stale: usize, unknown: usize) {
    let now = crate::provenance::code_fingerprint(exp.tier.as_str()).map_or("?", short);
    let file = exp.path.display();
    if stale > 0 && ctx.force {
        eprintln!(
            "{}: --force: rerunning {stale} done cell(s) computed by other code (their code \
             fingerprint is not this build's {now})",
            exp.name
        );
    } else if stale > 0 {
        eprintln!(
            "warning: {}: {stale} done cell(s) were computed by other code (their code \
             fingerprint is not this build's {now}: the {} tier's sources changed since); they \
             are KEPT and their numbers may be stale. `passk status {file}` lists them; rerun \
             them with --force",
            exp.name, exp.tier
        );
    }
    if unknown > 0 && ctx.force {
        eprintln!(
            "{}: --force: rerunning {unknown} done cell(s) that record no code fingerprint",
            exp.name
        );
    } else if unknown > 0 && !ctx.quiet {
        eprintln!(
            "note: {}: {unknown} done cell(s) record no code fingerprint (computed before \
             fingerprints were recorded, or sealed); kept. If you changed the {} tier's code \
             since they were made, rerun them with --force",
            exp.name, exp.tier
        );
    }
}

/// Runs one cell whose lock this process holds, in its temporary directory, and renames the
/// temporary into place.
fn run_locked_cell(
    exp: &Experiment,
    results: &Path,
    ctx: &RunContext,
    cell: &crate::config::Cell,
) -> Result<()> {
    let exp_dir = results.join(&exp.name);
    let tmp = exp_dir.join(format!(".tmp-{}", cell.hash));
    if tmp.exists() && !crate::tiers::entry(exp.tier).resumes {
        // Nothing to resume: start clean so no stale file is renamed into the cell.
        std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let record = CellRecord {
        schema: SCHEMA_VERSION,
        experiment: exp.name.clone(),
        tier: exp.tier.as_str().to_string(),
        hash: cell.hash.clone(),
        config: Value::Object(cell.config.clone()),
    };
    (crate::tiers::entry(exp.tier).run)(&cell.config, &tmp, ctx).with_context(|| {
        format!(
            "{}: cell {} ({})",
            exp.name,
            cell.hash,
            describe(&cell.coords)
        )
    })?;
    write_json(&tmp.join("cell.json"), &record)?;
    // Hidden temporaries a killed earlier holder left in a resumed temporary stay out of the
    // cell (the record ignores them; this keeps them from being renamed into place).
    remove_dead_temporaries(&tmp, &mut Vec::new())?;
    // The completion record last: only a directory whose record verifies is complete. A stop
    // (SIGTERM) lets the record and the rename into place finish.
    let _section = passk_core::interrupt::write_section();
    crate::record::write(
        &tmp,
        &cell.hash,
        std::slice::from_ref(&ctx.cache_dir),
        crate::record::Code::ThisBuild,
    )?;
    let dir = cell_dir(results, &exp.name, &cell.hash);
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot move {} into place", dir.display()))?;
    if ctx.attest {
        crate::approve::attest(results, &exp.name, &cell.hash)?;
    }
    Ok(())
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
        // A folder whose name is no cell hash was not made by passk: never pruned.
        if !crate::approve::is_cell_hash(&name) || !entry.file_type()?.is_dir() {
            continue;
        }
        if !exp.cells.iter().any(|c| c.hash == name) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    Ok(stale)
}

/// Removes, under `results/<experiment>/`, what no process can still be using; each under the
/// cell's lock, taken without waiting (a held lock means its holder is still at work, so its
/// files are left alone):
///
/// - `.tmp-<hash>` of a finished cell (a leftover: the cell is already in place), and, unless
///   the experiment is a shard (another shard may own it), of a cell the experiment no longer
///   lists. The temporary of a listed unfinished cell is its checkpoint and is kept.
/// - `.lock-<hash>` of a finished or unlisted cell (a killed holder's; a free lock file blocks
///   nobody, this only tidies).
/// - `.<hash>.copy`, the staging folder of a copy by `--reuse` that did not finish (a copy
///   restarts from scratch, so there is nothing to resume).
/// - Hidden temporary files (`.<file>.<pid>[-<n>].tmp`, `.<file>.tmp-<pid>[-<n>]`) inside
///   finished cells whose writer process no longer runs.
///
/// Returns what was removed.
pub fn remove_orphans(exp: &Experiment, results: &Path) -> Result<Vec<PathBuf>> {
    let dir = results.join(&exp.name);
    let mut removed = Vec::new();
    if !dir.is_dir() {
        return Ok(removed);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let copy = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".copy"))
            .filter(|h| crate::approve::is_cell_hash(h));
        // Only names this crate makes: a cell's hash after the prefix (`.tmp-notes` is not).
        let hash_of = |h: &'static str| -> Option<&str> {
            name.strip_prefix(h)
                .filter(|h| crate::approve::is_cell_hash(h))
        };
        let (hash, is_tmp) = match (hash_of(".tmp-"), hash_of(".lock-"), copy) {
            (Some(h), _, _) => (h, true),
            (_, Some(h), _) => (h, false),
            (_, _, Some(h)) => (h, true),
            _ => {
                if !name.starts_with('.') && in_place(results, &exp.name, &name) {
                    remove_dead_temporaries(&path, &mut removed)?;
                }
                continue;
            }
        };
        let listed = exp.cells.iter().any(|c| c.hash == hash);
        let finished = in_place(results, &exp.name, hash);
        if copy.is_none() && !(finished || (!listed && !exp.sharded)) {
            continue;
        }
        if !path.exists() {
            continue; // a lock file already removed with its temporary
        }
        let Some(lock) = FileLock::try_acquire(&lock_path(results, &exp.name, hash))? else {
            continue;
        };
        if is_tmp {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            removed.push(path);
        }
        lock.remove()?;
    }
    Ok(removed)
}

/// Removes the hidden temporary files under the finished cell directory `dir` whose writer
/// no longer runs.
fn remove_dead_temporaries(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() && !name.starts_with('.') {
                stack.push(entry.path());
            }
        }
        removed.extend(crate::tidy::remove_dead_temporaries(&d)?);
    }
    Ok(())
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
