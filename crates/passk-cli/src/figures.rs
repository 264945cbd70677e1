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
//! ([`crate::page`]), which also reads the experiment files beside the claims file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_report::schema::CellRecord;

/// The list of the files the report generated, inside the figures folder.
pub const OUTPUTS: &str = ".passk-outputs";

/// Renders every experiment under `results` into `out/<experiment>/`, then `out/index.html`
/// (with the claims of `claims`); returns files written.
fn render_all(results: &Path, out: &Path, claims: &Path) -> Result<usize> {
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
            // The lm tier has tables only (pass@k and sample outcomes per cell).
            "lm" => written += passk_report::lm::report_lm(&source, &target)?.len(),
            other => bail!(
                "{}: tier {other:?} has no report in this build",
                source.display()
            ),
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::page::write(results, out, claims)?;
    Ok(written + 1)
}

/// Experiments under `results` (sorted) with the tier named by their first cell.
pub(crate) fn experiments(results: &Path) -> Result<Vec<(String, String)>> {
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
    refuse_overlap(results, &absolute(out)?, "--per-cell")?;
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

/// Replaces the figure set in `figures` with a fresh rendering of `results` (see the module
/// documentation for what it refuses and how a kill is survived); returns the files written.
/// The page reads the claims file `claims` and the experiment files beside it.
pub fn regenerate(results: &Path, figures: &Path, claims: &Path, force: bool) -> Result<usize> {
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
                rel == passk_report::html::INDEX
                    || names.contains(rel.split('/').next().unwrap_or(rel))
            }
        })?;
    }
    let staging = unique_dir(parent, &format!(".{name}.staging"));
    std::fs::create_dir(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| {
        let written = render_all(results, &staging, claims)?;
        let fresh: BTreeSet<String> = present_files(&staging)?.into_iter().collect();
        if !force {
            refuse_foreign(&target, listed.is_some(), |rel| match &listed {
                Some(list) => list.contains(rel),
                None => fresh.contains(rel),
            })?;
        }
        passk_report::atomic::write_atomic(&staging.join(OUTPUTS), outputs_text(&fresh).as_bytes())
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
            let rel = passk_report::manifest::relative(root, &entry.path());
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
/// of `claims`), one message per file.
pub fn verify(results: &Path, figures: &Path, claims: &Path) -> Result<Vec<String>> {
    let fresh = unique_dir(&std::env::temp_dir(), "passk-verify");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    std::fs::create_dir_all(&fresh)?;
    if let Err(e) = render_all(results, &fresh, claims) {
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
mod tests {
    use super::*;

    /// Runs a 4-cell theory experiment named `name` into `results`.
    fn theory_results(results: &Path, name: &str) {
        let text = format!(
            "[experiment]\nname = \"{name}\"\ntier = \"theory\"\n[matrix]\nk = [2, 4]\n\
             separation = [0.5, 6.0]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
             feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
             one_step_eta = 0.01\n"
        );
        let exp = crate::config::parse_experiment(&text, Path::new("t.toml")).unwrap();
        let ctx = crate::tiers::RunContext {
            quiet: true,
            ..Default::default()
        };
        crate::run::run_experiment(&exp, results, &ctx).unwrap();
    }

    /// A claims file that does not exist: the page says so.
    fn claims() -> PathBuf {
        PathBuf::from("no-such-folder/claims.toml")
    }

    /// Every entry name directly under `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    fn contents(root: &Path) -> BTreeMap<String, Vec<u8>> {
        present_files(root)
            .unwrap()
            .into_iter()
            .map(|rel| {
                let bytes = std::fs::read(root.join(&rel)).unwrap();
                (rel, bytes)
            })
            .collect()
    }

    #[test]
    fn report_owns_only_the_files_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (results, figures) = (dir.path().join("results"), dir.path().join("figures"));
        theory_results(&results, "alpha");
        theory_results(&results, "beta");
        regenerate(&results, &figures, &claims(), false).unwrap();
        let listed = read_outputs(&figures).unwrap().unwrap();
        let present: BTreeSet<String> = present_files(&figures).unwrap().into_iter().collect();
        assert_eq!(listed, present);
        assert!(listed.iter().any(|f| f.starts_with("alpha/")));
        assert!(listed.iter().any(|f| f.starts_with("beta/")));
        // The page is one of the owned files; it links both experiments' figures.
        assert!(listed.contains("index.html"), "{listed:?}");
        let page = std::fs::read_to_string(figures.join("index.html")).unwrap();
        for name in ["alpha", "beta"] {
            let img = format!("<img src=\"{name}/ascent.png\"");
            assert!(page.contains(&img), "{img}");
        }
        assert!(page.contains("cannot read no-such-folder/claims.toml"));
        assert!(verify(&results, &figures, &claims()).unwrap().is_empty());
        assert_eq!(names(dir.path()), ["figures", "results"], "no staging left");

        // A folder from before the list (what earlier builds wrote) is accepted and listed.
        let generated = contents(&figures);
        std::fs::remove_file(figures.join(OUTPUTS)).unwrap();
        regenerate(&results, &figures, &claims(), false).unwrap();
        assert_eq!(read_outputs(&figures).unwrap().unwrap(), listed);
        assert_eq!(contents(&figures), generated);

        // A file an earlier run generated but this one does not, and an experiment gone from
        // results/, are removed; nothing else is left.
        std::fs::write(figures.join("alpha/retired.svg"), "<svg/>").unwrap();
        let mut text = std::fs::read_to_string(figures.join(OUTPUTS)).unwrap();
        text.push_str("alpha/retired.svg\n");
        std::fs::write(figures.join(OUTPUTS), text).unwrap();
        std::fs::remove_dir_all(results.join("beta")).unwrap();
        regenerate(&results, &figures, &claims(), false).unwrap();
        assert!(!figures.join("alpha/retired.svg").exists());
        assert!(!figures.join("beta").exists());
        let now = contents(&figures);
        assert!(
            now.keys()
                .all(|f| f.starts_with("alpha/") || f == "index.html"),
            "{now:?}"
        );
        assert_eq!(
            read_outputs(&figures).unwrap().unwrap(),
            now.keys().cloned().collect::<BTreeSet<_>>()
        );
        assert!(verify(&results, &figures, &claims()).unwrap().is_empty());

        // A file passk did not write stops the report, and everything stays as it was.
        std::fs::write(figures.join("notes.txt"), "mine").unwrap();
        std::fs::write(figures.join("alpha/mine.txt"), "mine too").unwrap();
        let before = contents(&figures);
        let e = format!(
            "{:#}",
            regenerate(&results, &figures, &claims(), false).unwrap_err()
        );
        assert!(e.contains("--force") && e.contains("notes.txt"), "{e}");
        assert!(e.contains("alpha/mine.txt"), "{e}");
        assert_eq!(contents(&figures), before);
        assert_eq!(names(dir.path()), ["figures", "results"], "no staging left");
        // Without a list, the same holds (they are not files a fresh regeneration writes).
        std::fs::remove_file(figures.join(OUTPUTS)).unwrap();
        let e = format!(
            "{:#}",
            regenerate(&results, &figures, &claims(), false).unwrap_err()
        );
        assert!(e.contains("--force") && e.contains("notes.txt"), "{e}");
        assert!(figures.join("notes.txt").is_file());
        // The outputs list itself is checked by verify, not reported as a stray figure.
        std::fs::remove_file(figures.join("notes.txt")).unwrap();
        std::fs::remove_file(figures.join("alpha/mine.txt")).unwrap();
        std::fs::write(figures.join(OUTPUTS), "alpha/other.svg\n").unwrap();
        let problems = verify(&results, &figures, &claims()).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(OUTPUTS), "{problems:?}");
        // --force takes the folder over.
        std::fs::write(figures.join("notes.txt"), "mine").unwrap();
        regenerate(&results, &figures, &claims(), true).unwrap();
        assert!(!figures.join("notes.txt").exists());
        assert!(verify(&results, &figures, &claims()).unwrap().is_empty());
    }

    #[test]
    fn output_overlapping_results_is_refused_even_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("project/results");
        std::fs::create_dir_all(results.join("exp/0123456789abcdef")).unwrap();
        std::fs::write(results.join("MANIFEST"), "").unwrap();
        std::fs::write(results.join("exp/0123456789abcdef/cell.json"), "{}").unwrap();
        std::fs::write(dir.path().join("project/README.md"), "readme").unwrap();
        let before = contents(dir.path());
        for (figures, relation) in [
            (results.clone(), "it is the results"),
            (results.join("exp"), "it is inside the results"),
            (results.join("new/figures"), "it is inside the results"),
            (dir.path().join("project"), "it contains the results"),
            (results.join("exp/../../results"), "it is the results"),
        ] {
            for force in [false, true] {
                let e = format!(
                    "{:#}",
                    regenerate(&results, &figures, &claims(), force).unwrap_err()
                );
                assert!(e.contains(relation) && e.contains("--force"), "{e}");
            }
            let e = format!("{:#}", render_cell_figures(&results, &figures).unwrap_err());
            assert!(e.contains(relation) && e.contains("--per-cell"), "{e}");
            assert_eq!(contents(dir.path()), before, "{}", figures.display());
        }
        assert!(!results.join("new").exists());
    }

    #[test]
    fn leftovers_of_killed_reports_are_cleaned_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        std::fs::create_dir_all(&results).unwrap();
        let figures = dir.path().join("figures");
        let write = |rel: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        };
        // A folder of a live run (this process) is left alone; a dead one's are removed.
        let live = format!(".figures.staging-{}-999999", std::process::id());
        for rel in [
            "figures/.passk-outputs",
            "figures/a.txt",
            "figures/.staging-4194999-0/theory/x.svg",
            ".figures.staging-4194999-1/theory/x.svg",
            ".figures.old-4194999-2/a.txt",
            &format!("{live}/x.svg"),
        ] {
            write(rel);
        }
        std::fs::write(figures.join(OUTPUTS), "a.txt\n").unwrap();
        regenerate(&results, &figures, &claims(), false).unwrap();
        assert_eq!(names(dir.path()), [live.as_str(), "figures", "results"]);
        assert_eq!(
            names(&figures),
            [OUTPUTS, "index.html"],
            "a.txt is no longer generated"
        );

        // Killed between the two renames: no figures/, the old set aside. It is put back.
        std::fs::remove_dir_all(dir.path().join(&live)).unwrap();
        std::fs::rename(&figures, dir.path().join(".figures.old-4194999-3")).unwrap();
        write(".figures.staging-4194999-4/half.svg");
        recover(dir.path(), "figures").unwrap();
        assert_eq!(names(dir.path()), ["figures", "results"]);
        assert_eq!(names(&figures), [OUTPUTS, "index.html"]);
    }

    #[test]
    fn absolute_resolves_links_and_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        assert_eq!(
            absolute(&root.join("a/b/../c/d")).unwrap(),
            root.join("a/c/d")
        );
        assert_eq!(absolute(&root.join("a/./b")).unwrap(), root.join("a/b"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
            assert_eq!(
                absolute(&root.join("link/b/new")).unwrap(),
                root.join("a/b/new")
            );
        }
    }
}
