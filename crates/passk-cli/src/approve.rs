//! Updating `results/MANIFEST` without approving what no one checked.
//!
//! MANIFEST is what `passk verify` (and so CI) holds the results to, so rewriting it from
//! whatever is on disk would launder any edit. A `passk run` therefore changes an entry only
//! when it can vouch for the file:
//!
//! - files of a cell this process wrote, or removed (`--prune`, a quarantined or `--force`d
//!   cell), and `ENVIRONMENT.json` when this process wrote it;
//! - files of a cell MANIFEST does not list at all (finished by a `--cell` run, a Slurm task or
//!   `--reuse`) whose completion record verifies;
//! - files of a listed cell that another `passk run` rewrote (a `--cell --force` rerun, a
//!   Slurm task rerunning a corrupt cell): a `--cell` run leaves `.written-<hash>` beside the cell
//!   with the sha256 of the record it wrote ([`attest`]); a record that verifies and matches it
//!   is approved, and the attestation is then removed. A hand edit has no attestation, and an
//!   attestation does not match a record edited after it.
//!
//! Anything else that differs (a listed cell's files, changed together with its record or not;
//! a committed warm start; an extra file) is refused by name, and MANIFEST is left as it was,
//! unless the caller approves changes on purpose (`--accept-changes`, `passk manifest`). Every
//! read-modify-write of MANIFEST holds `results/.MANIFEST.lock`, so two processes finishing
//! together never lose one's update.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use passk_report::manifest::{parse, render, scan, Entry, MANIFEST};

use crate::config::Experiment;

/// What this process wrote or removed under a results folder, so it may approve it.
#[derive(Debug, Default, Clone)]
pub struct Vouched {
    /// Cells (`<experiment>/<hash>`) this process wrote, replaced or deleted.
    pub cells: BTreeSet<String>,
    /// Whether this process wrote `ENVIRONMENT.json`.
    pub environment: bool,
}

/// How one file differs from MANIFEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Listed with other contents.
    Changed,
    /// Present, not listed.
    Added,
    /// Listed, absent.
    Removed,
}

impl Change {
    /// The word `passk verify` uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Added => "extra",
            Change::Removed => "missing",
        }
    }
}

/// The attestation a run leaves for the cell it just wrote: `results/<experiment>/.written-<hash>`.
fn attestation(results: &Path, cell: &str) -> std::path::PathBuf {
    let (exp, hash) = cell.split_once('/').unwrap_or(("", cell));
    results.join(exp).join(format!(".written-{hash}"))
}

fn record_sha(results: &Path, cell: &str) -> Option<String> {
    let bytes = std::fs::read(results.join(cell).join(passk_schema::cell::RECORD_FILE)).ok()?;
    Some(passk_report::manifest::sha256_hex(&bytes))
}

/// Records that this process wrote cell `hash` of `experiment` (its record's sha256), so a
/// later MANIFEST update by another process may approve the cell's changed entries.
pub fn attest(results: &Path, experiment: &str, hash: &str) -> Result<()> {
    let cell = format!("{experiment}/{hash}");
    let sha = record_sha(results, &cell)
        .with_context(|| format!("cannot read the record of {cell} just written"))?;
    let path = attestation(results, &cell);
    passk_schema::write_atomic(&path, sha.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a run attested cell `cell` as it is now and its record verifies.
fn attested(results: &Path, cell: &str) -> bool {
    let Ok(said) = std::fs::read_to_string(attestation(results, cell)) else {
        return false;
    };
    record_sha(results, cell).as_deref() == Some(said.trim())
        && crate::record::check(&results.join(cell)).is_ok()
}

/// What [`update`] did.
#[derive(Debug, Default)]
pub struct Updated {
    /// Files now listed.
    pub listed: usize,
    /// The changes written, each with its path.
    pub approved: Vec<(Change, String)>,
}

/// Whether a complete cell of `experiments` that MANIFEST does not list yet (finished by a
/// `--cell` run or a Slurm task) records this build's code: then this build's
/// `ENVIRONMENT.json` describes it, and the run that approves it writes one.
pub fn adopts_cells_of_this_build(results: &Path, experiments: &[Experiment]) -> bool {
    let listed: BTreeSet<String> = std::fs::read_to_string(results.join(MANIFEST))
        .ok()
        .and_then(|text| parse(&text).ok())
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
    experiments.iter().any(|exp| {
        exp.cells.iter().any(|cell| {
            let rel = format!("{}/{}/complete.json", exp.name, cell.hash);
            let dir = results.join(&exp.name).join(&cell.hash);
            !listed.contains(&rel)
                && crate::run::in_place(results, &exp.name, &cell.hash)
                && crate::provenance::code_state(&dir) == crate::provenance::CodeState::Same
        })
    })
}

/// Whether `name` is a cell directory's name: 16 lower-case hex digits.
pub fn is_cell_hash(name: &str) -> bool {
    name.len() == 16
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<experiment>/<hash>` when `path` (relative to results) lies inside a cell directory.
fn cell_of(path: &str) -> Option<&str> {
    let mut parts = path.splitn(3, '/');
    let (exp, hash, _) = (parts.next()?, parts.next()?, parts.next()?);
    is_cell_hash(hash).then(|| &path[..exp.len() + 1 + hash.len()])
}

/// Rewrites `results/MANIFEST` for the files now present, under its lock, when every change
/// is one `vouched` (or a verifying new cell) accounts for, or `accept_changes`; otherwise an
/// error lists the files it will not approve and MANIFEST is left alone. A missing or
/// unreadable MANIFEST counts as listing nothing.
pub fn update(results: &Path, vouched: &Vouched, accept_changes: bool) -> Result<Updated> {
    let _lock = passk_train::FileLock::acquire(&results.join(".MANIFEST.lock"))?;
    let path = results.join(MANIFEST);
    let old: BTreeMap<String, Entry> = match std::fs::read_to_string(&path) {
        Ok(text) => match parse(&text) {
            Ok(m) => m,
            Err(e) if accept_changes => {
                eprintln!("warning: {}: {e}; rewriting it", path.display());
                BTreeMap::new()
            }
            Err(e) => bail!(
                "{}: {e}; it was left alone. Restore it (`git checkout -- {}`) or rebuild it \
                 on purpose with `passk manifest`",
                path.display(),
                path.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let present = scan(results).with_context(|| format!("cannot scan {}", results.display()))?;
    let mut changes = Vec::new();
    for (p, e) in &present {
        match old.get(p) {
            None => changes.push((Change::Added, p.clone())),
            Some(o) if o != e => changes.push((Change::Changed, p.clone())),
            Some(_) => {}
        }
    }
    changes.extend(
        old.keys()
            .filter(|p| !present.contains_key(*p))
            .map(|p| (Change::Removed, p.clone())),
    );
    changes.sort_by(|a, b| a.1.cmp(&b.1));
    if !accept_changes {
        let listed_cells: BTreeSet<&str> = old.keys().filter_map(|p| cell_of(p)).collect();
        let mut verified: BTreeMap<&str, bool> = BTreeMap::new();
        let mut refused = Vec::new();
        for (change, p) in &changes {
            let ok = if p == crate::environment::FILE {
                vouched.environment
            } else if let Some(cell) = cell_of(p) {
                *verified.entry(cell).or_insert_with(|| {
                    let dir = results.join(cell);
                    if !dir.exists() {
                        // Gone: only a cell this process removed (pruned) may leave MANIFEST.
                        vouched.cells.contains(cell)
                    } else if vouched.cells.contains(cell) || !listed_cells.contains(cell) {
                        // Written here, or new to MANIFEST: its record must verify.
                        crate::record::check(&dir).is_ok()
                    } else {
                        attested(results, cell)
                    }
                })
            } else {
                false
            };
            if !ok {
                refused.push(format!("  {}: {p}", change.word()));
            }
        }
        if !refused.is_empty() {
            let n = refused.len();
            if n > 20 {
                refused.truncate(20);
                refused.push(format!("  and {} more", n - 20));
            }
            bail!(
                "{n} file(s) under {} differ from MANIFEST and this run neither wrote them nor \
                 could verify them against a completion record:\n{}\nMANIFEST was left as it \
                 was (`passk verify` reports the same files). Restore them (for committed \
                 results: `git checkout -- results/`, or delete a cell to rerun it), or approve \
                 them on purpose with `passk manifest` or `passk run --accept-changes`",
                results.display(),
                refused.join("\n")
            );
        }
    }
    let text = render(&present);
    if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
        passk_schema::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Attestations of cells now listed as they are have served their purpose.
    for cell in present
        .keys()
        .filter_map(|p| cell_of(p))
        .collect::<BTreeSet<_>>()
    {
        let marker = attestation(results, cell);
        if marker.exists() && attested(results, cell) {
            let _ = std::fs::remove_file(marker);
        }
    }
    Ok(Updated {
        listed: present.len(),
        approved: changes,
    })
}

#[cfg(test)]
#[path = "approve_tests.rs"]
mod tests;
