//! Regenerating figures/ from results/, and checking that figures/ is what results/ gives.
//!
//! The report owns only the files it wrote. `figures/.passk-outputs` lists them (paths relative
//! to the folder), and [`regenerate`] refuses, unless `--force`, a folder holding any other file
//! (before the list exists, the files a fresh regeneration writes count as its own); it always
//! refuses an output folder that is, holds or lies inside the results folder. The new set is
//! rendered into a hidden sibling `.<figures>.staging-<pid>-<n>` and swapped in with two renames
//! (figures to `.<figures>.old-<pid>-<n>`, staging to figures; the old set is deleted only after
//! both), so a killed report leaves the old set or the new one. The next report removes a dead
//! run's staging and old folders, and puts back a figures folder lost between the two renames.
//! Beside the experiments' folders the set holds `index.html`, the page over all of them
//! ([`crate::page`]), which also shows the experiment files beside the claims file (read by the
//! caller and passed in).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::page::ExperimentFile;
use crate::tier::Tier;
use anyhow::{bail, Context, Result};
use passk_schema::cell::CellRecord;

/// The list of the files the report generated, inside the figures folder.
pub const OUTPUTS: &str = ".passk-outputs";

/// Renders every experiment under `results` into `out/<experiment>/`, then `out/index.html`
/// (with the claims of `claims` and the experiment files `files` beside it); returns files
/// written.
fn render_all(
    results: &Path,
    out: &Path,
    claims: &Path,
    files: &[ExperimentFile],
) -> Result<usize> {
    let mut written = 0;
    for (experiment, tier) in experiments(results)? {
        let target = out.join(&experiment);
        let source = results.join(&experiment);
        written += tier.render(&source, &target)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::page::write(results, out, claims, files)?;
    Ok(written + 1)
}

/// Experiments under `results` (sorted) with the tier named by their first cell.
pub fn experiments(results: &Path) -> Result<Vec<(String, Tier)>> {
    let mut out = Vec::new();
    if !results.is_dir() {
        bail!(
            "{} does not exist; run `cargo xtask reproduce all` first",
            results.display()
        );
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut cells: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path().join("cell.json")))
            .filter(|p| p.is_file())
            .collect();
        cells.sort();
        let Some(first) = cells.first() else { continue };
        let record: CellRecord = serde_json::from_slice(&std::fs::read(first)?)
            .with_context(|| format!("cannot parse {}", first.display()))?;
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let tier = Tier::from_name(&record.tier).with_context(|| format!("{}", first.display()))?;
        out.push((name, tier));
    }
    Ok(out)
}

/// Renders the per-cell probe figures of every tiny experiment under `results` into
/// `out/<experiment>/` (not part of figures/: they are many and named by cell hash).
pub fn render_cell_figures(results: &Path, out: &Path) -> Result<usize> {
    refuse_overlap(results, &absolute(out)?, "--per-cell")?;
    let mut written = 0;
    for (experiment, tier) in experiments(results)? {
        if tier != Tier::Tiny {
            continue;
        }
        let probed: Vec<_> = crate::probe::load_probe_cells(&results.join(&experiment))?
            .into_iter()
            .filter(|c| !c.steps.is_empty())
            .collect();
        written += crate::probe::render_probe_cells(&probed, &out.join(&experiment))?.len();
    }
    Ok(written)
}

/// Replaces the figure set in `figures` with a fresh rendering of `results` (see the module
/// documentation for what it refuses and how a kill is survived); returns the files written.
/// The page reads the claims file `claims` and shows the experiment files `files` beside it.
pub fn regenerate(
    results: &Path,
    figures: &Path,
    claims: &Path,
    files: &[ExperimentFile],
    force: bool,
) -> Result<usize> {
    let target = absolute(figures)?;
    refuse_overlap(results, &target, "--figures")?;
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        bail!(
            "--figures {}: the report needs a folder with a parent (it renders beside it)",
            figures.display()
        );
    };
    let name = name.to_string_lossy().into_owned();
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    recover(parent, &name)?;
    if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
        bail!("--figures {} is not a folder", target.display());
    }
    let listed = read_outputs(&target)?;
    if !force {
        // Refuse before rendering when a file cannot be passk's: one outside the list, or
        // without a list outside every experiment's folder and not the page (the report
        // writes only there).
        let names: BTreeSet<String> = match &listed {
            Some(_) => BTreeSet::new(),
            None => experiments(results)?.into_iter().map(|(n, _)| n).collect(),
        };
        refuse_foreign(&target, listed.is_some(), |rel| match &listed {
            Some(list) => list.contains(rel),
            None => {
                rel == crate::html::INDEX || names.contains(rel.split('/').next().unwrap_or(rel))
            }
        })?;
    }
    let staging = unique_dir(parent, &format!(".{name}.staging"));
    std::fs::create_dir(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| {
        let written = render_all(results, &staging, claims, files)?;
        let fresh: BTreeSet<String> = present_files(&staging)?.into_iter().collect();
        if !force {
            refuse_foreign(&target, listed.is_some(), |rel| match &listed {
                Some(list) => list.contains(rel),
                None => fresh.contains(rel),
            })?;
        }
        passk_schema::write_atomic(&staging.join(OUTPUTS), outputs_text(&fresh).as_bytes())
            .with_context(|| format!("cannot write {}", staging.join(OUTPUTS).display()))?;
        swap(&staging, &target, parent, &name)?;
        Ok(written)
    })();
    if result.is_err() && staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// `path` made absolute, through every symbolic link of its existing part (the rest, not yet
/// created, is joined as written, `..` taken lexically).
fn absolute(path: &Path) -> Result<PathBuf> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut head = full.clone();
    let mut tail = Vec::new();
    let mut out = loop {
        if let Ok(resolved) = head.canonicalize() {
            break resolved;
        }
        match head.components().next_back() {
            Some(Component::Normal(_) | Component::CurDir | Component::ParentDir) => {
                tail.push(
                    head.components()
                        .next_back()
                        .expect("checked")
                        .as_os_str()
                        .to_owned(),
                );
                head.pop();
            }
            _ => break head,
        }
    };
    for part in tail.iter().rev() {
        match part.to_str() {
            Some("..") => {
                out.pop();
            }
            Some(".") => {}
            _ => out.push(part),
        }
    }
    Ok(out)
}

/// Refuses report output (`flag` names the option) that is, holds or lies inside `results`.
fn refuse_overlap(results: &Path, output: &Path, flag: &str) -> Result<()> {
    let results = absolute(results)?;
    let relation = if *output == results {
        "is"
    } else if results.starts_with(output) {
        "contains"
    } else if output.starts_with(&results) {
        "is inside"
    } else {
        return Ok(());
    };
    bail!(
        "refusing {flag} {}: it {relation} the results folder {}, and the report's output there \
         would delete or corrupt results; choose a folder outside it (--force does not override \
         this)",
        output.display(),
        results.display()
    )
}

/// Fails naming the files under `figures` that `owned` does not accept.
fn refuse_foreign(figures: &Path, listed: bool, owned: impl Fn(&str) -> bool) -> Result<()> {
    if !figures.is_dir() {
        return Ok(());
    }
    let foreign: Vec<String> = present_files(figures)?
        .into_iter()
        .filter(|rel| !owned(rel))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let mut shown = foreign
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if foreign.len() > 5 {
        shown.push_str(&format!(" and {} more", foreign.len() - 5));
    }
    let why = if listed {
        format!("not in its {OUTPUTS} list")
    } else {
        format!("it has no {OUTPUTS} list yet, and a fresh regeneration writes no such file")
    };
    bail!(
        "refusing to replace {}: it holds {} file(s) that `passk report` did not write ({why}): \
         {shown}. The report replaces its whole output folder: move them out or choose another \
         --figures folder, or pass --force to replace it anyway (deleting them)",
        figures.display(),
        foreign.len()
    )
}

/// Every file (anything not a directory, links included) under `root`, as a `/`-separated
/// relative path, except the top-level outputs list.
fn present_files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let rel = crate::manifest::relative(root, &entry.path());
            if rel != OUTPUTS {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The outputs list of `figures`, or `None` when it has none.
fn read_outputs(figures: &Path) -> Result<Option<BTreeSet<String>>> {
    let path = figures.join(OUTPUTS);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            text.lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The outputs list naming `files`. Its header names the file where this code lived when the
/// committed figures/ were written (passk-cli's figures.rs, now passk-report's), kept as is so
/// that a regeneration leaves figures/ byte-identical.
fn outputs_text(files: &BTreeSet<String>) -> String {
    let mut text = String::from(
        "# The files `passk report` generated in this folder, one relative path a line. It\n\
         # replaces the folder only while it holds nothing else (see passk-cli's figures.rs).\n",
    );
    for rel in files {
        text.push_str(rel);
        text.push('\n');
    }
    text
}

/// Puts `staging` in the place of `target` with two renames, keeping the old set until both
/// are done (the next report restores it when a kill comes between them).
fn swap(staging: &Path, target: &Path, parent: &Path, name: &str) -> Result<()> {
    // A stop (SIGTERM) lets both renames finish.
    let _section = passk_core::interrupt::write_section();
    let old = unique_dir(parent, &format!(".{name}.old"));
    let had_old = std::fs::symlink_metadata(target).is_ok();
    if had_old {
        std::fs::rename(target, &old)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    if let Err(e) = std::fs::rename(staging, target) {
        if had_old {
            let _ = std::fs::rename(&old, target);
        }
        return Err(e)
            .with_context(|| format!("cannot move the new figures to {}", target.display()));
    }
    if had_old {
        if let Err(e) = std::fs::remove_dir_all(&old) {
            eprintln!(
                "report: warning: cannot remove the previous figures {} ({e}); the next report \
                 removes it",
                old.display()
            );
        }
    }
    Ok(())
}

/// Cleans what a dead report left beside `parent/name`: its staging folders, its moved-aside
/// old set (put back first when the kill came between the two renames and no figures folder
/// is left), and the `.staging-*` folders that earlier builds rendered inside figures/.
fn recover(parent: &Path, name: &str) -> Result<()> {
    let target = parent.join(name);
    let staging = format!(".{name}.staging-");
    let old = format!(".{name}.old-");
    let mut stale_old = Vec::new();
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = file.strip_prefix(&old) {
            if dead(rest) {
                stale_old.push(entry.path());
            }
        } else if let Some(rest) = file.strip_prefix(&staging) {
            if dead(rest) {
                stale.push(entry.path());
            }
        }
    }
    stale_old.sort();
    if std::fs::symlink_metadata(&target).is_err() {
        if let Some(previous) = stale_old.pop() {
            std::fs::rename(&previous, &target).with_context(|| {
                format!(
                    "cannot put back {} as {}",
                    previous.display(),
                    target.display()
                )
            })?;
            eprintln!(
                "report: put back {} from a report killed while replacing it",
                target.display()
            );
        }
    }
    stale.extend(stale_old);
    if target.is_dir() {
        for entry in std::fs::read_dir(&target)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.strip_prefix(".staging-").is_some_and(dead) {
                stale.push(entry.path());
            }
        }
    }
    for path in stale {
        let removed = if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed
            .with_context(|| format!("cannot remove {} left by a killed report", path.display()))?;
    }
    Ok(())
}

/// Whether the process named by a `<pid>-<n>` suffix is gone (a live one, this process
/// included, may still be rendering). Where processes cannot be looked up, any other is gone.
fn dead(suffix: &str) -> bool {
    let Some(Ok(pid)) = suffix.split('-').next().map(str::parse::<u32>) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    !(proc.join("self").exists() && proc.join(pid.to_string()).exists())
}

/// Differences between `figures` and a fresh rendering of `results` (the page with the claims
/// of `claims` and the experiment files `experiment_files`), one message per file.
pub fn verify(
    results: &Path,
    figures: &Path,
    claims: &Path,
    experiment_files: &[ExperimentFile],
) -> Result<Vec<String>> {
    let fresh = unique_dir(&std::env::temp_dir(), "passk-verify");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    std::fs::create_dir_all(&fresh)?;
    if let Err(e) = render_all(results, &fresh, claims, experiment_files) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Ok(vec![unrenderable(&e)]);
    }
    let problems = (|| {
        let want = files(&fresh)?;
        let have = if figures.is_dir() {
            files(figures)?
        } else {
            BTreeMap::new()
        };
        let mut problems = Vec::new();
        for (rel, bytes) in &want {
            match have.get(rel) {
                None => problems.push(format!("figures/{rel} is missing (run `cargo xtask report`)")),
                Some(b) if b != bytes => problems.push(format!(
                    "figures/{rel} differs from a fresh regeneration of results/ (run `cargo xtask report`)"
                )),
                Some(_) => {}
            }
        }
        for rel in have.keys().filter(|r| !want.contains_key(*r)) {
            problems.push(format!(
                "figures/{rel} is not produced from results/ (stale or hand-made)"
            ));
        }
        // The outputs list (hidden, so not compared above), when there is one, names exactly
        // the files a regeneration writes.
        if let Some(listed) = read_outputs(figures)? {
            let generated: BTreeSet<String> = present_files(&fresh)?.into_iter().collect();
            if listed != generated {
                problems.push(format!(
                    "figures/{OUTPUTS} does not list exactly the generated files (run `cargo xtask report`)"
                ));
            }
        }
        Ok(problems)
    })();
    let _ = std::fs::remove_dir_all(&fresh);
    problems
}

/// The problem `passk verify` reports when figures/ cannot be rendered from results/ (`e`
/// says why).
pub fn unrenderable(e: &anyhow::Error) -> String {
    format!("figures/ cannot be regenerated from results/: {e:#}")
}

/// A fresh path under `parent` unique to this process and call (tests run passk in parallel).
fn unique_dir(parent: &Path, prefix: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    parent.join(format!("{prefix}-{}-{n}", std::process::id()))
}

fn files(root: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(&entry.path())
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(entry.path())?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
