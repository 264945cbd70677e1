//! Regenerating figures/ from results/, and checking that figures/ is what results/ gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_report::schema::CellRecord;

/// Renders every experiment under `results` into `out/<experiment>/`; returns files written.
fn render_all(results: &Path, out: &Path) -> Result<usize> {
    let mut written = 0;
    for (experiment, tier) in experiments(results)? {
        let target = out.join(&experiment);
        let source = results.join(&experiment);
        match tier.as_str() {
            "theory" => {
                let cells = passk_report::load::load_theory_cells(&source)?;
                written += passk_report::theory::render_theory(&cells, &target)?.len();
            }
            "tiny" => {
                let cells = passk_report::tiny::load_tiny_cells(&source)?;
                written += passk_report::tiny::render_tiny(&cells, &target)?.len();
                let probed: Vec<_> = passk_report::probe::load_probe_cells(&source)?
                    .into_iter()
                    .filter(|c| !c.steps.is_empty())
                    .collect();
                if !probed.is_empty() {
                    written += passk_report::probe::render_probe(&probed, &target)?.len();
                }
            }
            // The lm tier has no figures yet; its cells are still listed in the manifest.
            "lm" => eprintln!(
                "report: {} (tier lm) has no figures in this build; its cells are in results/ only",
                source.display()
            ),
            other => bail!(
                "{}: tier {other:?} has no report in this build",
                source.display()
            ),
        }
    }
    Ok(written)
}

/// Experiments under `results` (sorted) with the tier named by their first cell.
fn experiments(results: &Path) -> Result<Vec<(String, String)>> {
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
        out.push((name, record.tier));
    }
    Ok(out)
}

/// Renders the per-cell probe figures of every tiny experiment under `results` into
/// `out/<experiment>/` (not part of figures/: they are many and named by cell hash).
pub fn render_cell_figures(results: &Path, out: &Path) -> Result<usize> {
    let mut written = 0;
    for (experiment, tier) in experiments(results)? {
        if tier != "tiny" {
            continue;
        }
        let probed: Vec<_> = passk_report::probe::load_probe_cells(&results.join(&experiment))?
            .into_iter()
            .filter(|c| !c.steps.is_empty())
            .collect();
        written += passk_report::probe::render_probe_cells(&probed, &out.join(&experiment))?.len();
    }
    Ok(written)
}

/// Replaces the contents of `figures` with a fresh rendering of `results`.
pub fn regenerate(results: &Path, figures: &Path) -> Result<usize> {
    std::fs::create_dir_all(figures)
        .with_context(|| format!("cannot create {}", figures.display()))?;
    let staging = unique_dir(figures, ".staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let written = match render_all(results, &staging) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    for entry in std::fs::read_dir(figures)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if name.starts_with(".staging-") && entry.path() != staging {
                std::fs::remove_dir_all(entry.path())?;
            }
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    for entry in std::fs::read_dir(&staging)? {
        let entry = entry?;
        std::fs::rename(entry.path(), figures.join(entry.file_name()))?;
    }
    std::fs::remove_dir_all(&staging)?;
    Ok(written)
}

/// Differences between `figures` and a fresh rendering of `results`, one message per file.
pub fn verify(results: &Path, figures: &Path) -> Result<Vec<String>> {
    let fresh = unique_dir(&std::env::temp_dir(), "passk-verify");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    std::fs::create_dir_all(&fresh)?;
    if let Err(e) = render_all(results, &fresh) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Ok(vec![format!(
            "figures/ cannot be regenerated from results/: {e:#}"
        )]);
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
        Ok(problems)
    })();
    let _ = std::fs::remove_dir_all(&fresh);
    problems
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
