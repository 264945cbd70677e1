//! `passk run --reuse` and `compare`: copying committed cells of the same configuration
//! instead of recomputing them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use passk_train::FileLock;

use crate::config::Experiment;
use crate::provenance::{code_state, CodeState};
use crate::run::{cell_dir, in_place, lock_path};

/// Copies into `out/<exp>/` every cell of `exp` that some experiment under `baseline` already
/// (`compare`'s committed results, `run --reuse`)
/// holds complete (its completion record verifies; a source that fails is skipped with a
/// warning) under the same hash (a cell's hash is its full configuration, not its
/// experiment's name or the code: the copy is what the build that committed it computed, and
/// `cargo xtask verify` ties it to the manifest); returns how many.
///
/// A source whose record names other code than this build's (its tier's sources changed
/// since, e.g. an objective was edited under the same name) is never copied: the cell runs
/// instead. One that names no code (made before fingerprints, or sealed) is copied, and
/// [`run_experiment`] then warns about it; with `force` (`--force`) it is not copied either.
pub fn reuse_cells(exp: &Experiment, baseline: &Path, out: &Path, force: bool) -> Result<usize> {
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
        // A cell in place is done, or corrupt and left to `run_experiment` to move aside.
        if in_place(out, &exp.name, &cell.hash) {
            continue;
        }
        let Some(source) = experiments
            .iter()
            .map(|e| e.join(&cell.hash))
            .filter(|d| d.is_dir())
            .filter(|d| match code_state(d) {
                CodeState::Same => true,
                CodeState::Unknown => !force,
                CodeState::Stale { .. } => {
                    eprintln!(
                        "note: not copying {}: it was computed by other code than this build's; \
                         the cell runs instead",
                        d.display()
                    );
                    false
                }
            })
            .find(|d| match crate::record::check(d) {
                Ok(()) => true,
                Err(why) => {
                    eprintln!(
                        "warning: not copying {}: it fails its completion check: {why}",
                        d.display()
                    );
                    false
                }
            })
        else {
            continue;
        };
        std::fs::create_dir_all(out.join(&exp.name))
            .with_context(|| format!("cannot create {}", out.join(&exp.name).display()))?;
        // A process running the cell holds its lock: leave the cell to it.
        let Some(lock) = FileLock::try_acquire(&lock_path(out, &exp.name, &cell.hash))? else {
            continue;
        };
        if in_place(out, &exp.name, &cell.hash) {
            lock.remove()?;
            continue;
        }
        let target = cell_dir(out, &exp.name, &cell.hash);
        let staging = target.with_file_name(format!(".{}.copy", cell.hash));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        copy_dir(&source, &staging)?;
        std::fs::rename(&staging, &target)
            .with_context(|| format!("cannot move {} into place", staging.display()))?;
        lock.remove()?;
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
