//! Completion records: `complete.json`, the last file a cell writes, proves the cell complete.
//!
//! A cell runs in its hidden temporary directory; when every result file and `cell.json` are
//! written, [`write`] adds `complete.json` (atomically) and only then is the directory renamed
//! into place. The record holds:
//!
//! - the cell's hash and tier, and the full sha256 of its configuration ([`config_sha256`]),
//!   which must be what `cell.json`'s configuration hashes to;
//! - the path, size and sha256 of every other file of the cell (hidden temporaries excluded);
//! - for the tiny tier, the warm start it started from: its SFT config hash and the sha256 of
//!   the cached `.safetensors` (from the cache's integrity sidecar at the end of the cell; `null`
//!   when the cache no longer holds it). The lm tier starts from a pretrained model file and
//!   records none;
//! - the code fingerprint of its tier in the build that ran it (`code`, see
//!   [`crate::provenance`]); absent in records from before fingerprints and in those `passk
//!   seal` writes (the code that computed a sealed cell is not known), which read as unknown,
//!   never as stale.
//!
//! A cell counts as done only when [`check`] passes: the record is there and names the
//! directory, `cell.json`'s configuration hashes to the directory name, and the files are
//! exactly those recorded, byte for byte. Everything in the record is a function of the cell's
//! files, configuration and code fingerprint (no time, host or path), so a cell computed twice
//! by one build gets the same record; the CI gate's byte-for-byte comparison with committed
//! cells covers it but for `code` (`cargo xtask check` compares records without it, since a
//! committed record holds the fingerprint of the build that made it, or none).
//!
//! A cell that fails the check is moved aside by [`quarantine`] (renamed to
//! `results/<experiment>/.quarantine/<hash>-<n>`, never deleted) and rerun, or `passk run
//! --on-corrupt stop` stops. Cells computed before records existed are given one by [`seal`]
//! only when every file matches `results/MANIFEST`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_report::manifest::{sha256_hex, Entry, MANIFEST};
use passk_report::tier::Tier;
use passk_schema::cell::{CompletionRecord, FileEntry, WarmStartRef, RECORD_FILE, RECORD_SCHEMA};
use serde_json::{Map, Value};

use crate::write::write_json;
pub use passk_report::record::{check, scan_files};
use passk_report::record::{compare_files, dir_name, read_cell_json};

/// Where cells that fail their check are moved: `results/<experiment>/.quarantine/`.
pub const QUARANTINE: &str = ".quarantine";

/// What a results directory holds for one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellState {
    /// No directory.
    Missing,
    /// A directory whose completion record verifies.
    Complete,
    /// A directory that fails the check, with the reason in words.
    Corrupt(String),
}

/// What `passk run` does with a cell that fails its check (`--on-corrupt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Move it aside to `.quarantine/` and rerun it (the default).
    #[default]
    Rerun,
    /// Stop before running anything, leaving it in place.
    Stop,
}

impl std::str::FromStr for OnCorrupt {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rerun" => Ok(OnCorrupt::Rerun),
            "stop" => Ok(OnCorrupt::Stop),
            other => bail!("--on-corrupt {other:?}: expected rerun|stop"),
        }
    }
}

/// The warm start of a cell of `tier` with `config`, its sha256 taken from the first of
/// `caches` that holds it; `None` for tiers without a warm start.
pub fn warm_start_of(
    tier: &str,
    config: &Map<String, Value>,
    caches: &[PathBuf],
) -> Result<Option<WarmStartRef>> {
    let warm_starts = Tier::from_name(tier).is_ok_and(|t| crate::tiers::entry(t).warm_starts);
    if !warm_starts {
        return Ok(None);
    }
    let cfg = crate::tiny::spec(config)?;
    let sha256 = caches
        .iter()
        .find_map(|c| passk_train::cached_warm_start_sha256(&cfg, c));
    Ok(Some(WarmStartRef {
        sft_hash: cfg.sft_hash(),
        sha256,
    }))
}

/// Whose code a record names: [`Code::ThisBuild`] for a cell this process computed,
/// [`Code::Unknown`] for one computed elsewhere (`passk seal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Record this build's fingerprint of the cell's tier.
    ThisBuild,
    /// Record none.
    Unknown,
}

/// The completion record of the finished cell `hash` in directory `dir` (its place, or its
/// temporary) as it is now.
pub fn build(dir: &Path, hash: &str, caches: &[PathBuf], code: Code) -> Result<CompletionRecord> {
    let hash = hash.to_string();
    let (cell, config, config_sha256) =
        read_cell_json(dir, &hash).map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?;
    Ok(CompletionRecord {
        schema: RECORD_SCHEMA,
        hash,
        warm_start: warm_start_of(&cell.tier, &config, caches)?,
        code: match code {
            Code::ThisBuild => crate::provenance::code_fingerprint(&cell.tier).map(String::from),
            Code::Unknown => None,
        },
        tier: cell.tier,
        config_sha256,
        files: scan_files(dir)?,
    })
}

/// Writes `dir/complete.json` (atomically) for the finished cell `hash` in directory `dir`;
/// the last write of a cell. `code` says whether this build computed it.
pub fn write(dir: &Path, hash: &str, caches: &[PathBuf], code: Code) -> Result<CompletionRecord> {
    let record = build(dir, hash, caches, code)?;
    write_json(&dir.join(RECORD_FILE), &record)?;
    Ok(record)
}

/// The state of cell `hash` of `experiment` under `results`.
pub fn state(results: &Path, experiment: &str, hash: &str) -> CellState {
    let dir = results.join(experiment).join(hash);
    if !dir.exists() {
        return CellState::Missing;
    }
    match check(&dir) {
        Ok(()) => CellState::Complete,
        Err(why) => CellState::Corrupt(why),
    }
}

/// Moves the cell directory `results/<experiment>/<hash>` to
/// `results/<experiment>/.quarantine/<hash>-<n>` (the first free `n` from 1); returns where.
/// The caller holds the cell's lock.
pub fn quarantine(results: &Path, experiment: &str, hash: &str) -> Result<PathBuf> {
    let dir = results.join(experiment).join(hash);
    let aside = results.join(experiment).join(QUARANTINE);
    std::fs::create_dir_all(&aside)
        .with_context(|| format!("cannot create {}", aside.display()))?;
    let target = (1u32..)
        .map(|n| aside.join(format!("{hash}-{n}")))
        .find(|p| !p.exists())
        .expect("some n is free");
    std::fs::rename(&dir, &target).with_context(|| {
        format!(
            "cannot move the corrupt cell {} aside to {}",
            dir.display(),
            target.display()
        )
    })?;
    Ok(target)
}

/// The cell directories under `results`: every non-hidden directory two levels down
/// (`<experiment>/<hash>`), sorted.
pub fn cell_dirs(results: &Path) -> Result<Vec<PathBuf>> {
    let mut cells = Vec::new();
    for exp in sorted_subdirs(results)? {
        cells.extend(sorted_subdirs(&exp)?);
    }
    Ok(cells)
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') && entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every cell under `results` whose completion record does not verify, as
/// `<experiment>/<hash>: <why>`.
pub fn verify_all(results: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for dir in cell_dirs(results)? {
        if let Err(why) = check(&dir) {
            problems.push(format!(
                "{}: {why}",
                passk_report::manifest::relative(results, &dir)
            ));
        }
    }
    Ok(problems)
}

/// What [`seal`] did.
#[derive(Debug, Default)]
pub struct SealReport {
    /// Cells given a record now.
    pub sealed: Vec<PathBuf>,
    /// Cells whose record already verified.
    pub already: usize,
    /// Tiny cells sealed without the sha256 of their warm start (no cache held it).
    pub without_warm_start_sha: usize,
    /// Cells not sealed, with the reason (a file differs from MANIFEST, a bad record, busy).
    pub refused: Vec<String>,
}

/// Gives every cell under `results` without a completion record one, but only when each of
/// its files matches `results/MANIFEST` (sha256 and size, none missing or extra) and its
/// `cell.json` hashes to its directory name; then adds the new records to the manifest (and
/// nothing else: a file that differs from it stays a `verify` failure). Warm-start sha256s of
/// tiny cells are taken from the first of `caches` that holds them. Cells another process
/// holds the lock of are refused.
pub fn seal(results: &Path, caches: &[PathBuf]) -> Result<SealReport> {
    let manifest_path = results.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let mut manifest = passk_report::manifest::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut report = SealReport::default();
    for dir in cell_dirs(results)? {
        let rel = passk_report::manifest::relative(results, &dir);
        if dir.join(RECORD_FILE).exists() {
            match check(&dir) {
                Ok(()) => report.already += 1,
                Err(why) => report.refused.push(format!("{rel}: {why}")),
            }
            continue;
        }
        if let Err(why) = matches_manifest(&dir, &rel, &manifest) {
            report.refused.push(format!("{rel}: {why}"));
            continue;
        }
        let (exp, hash) = rel.split_once('/').expect("two levels down");
        let lock_file = crate::run::lock_path(results, exp, hash);
        let Some(lock) = passk_train::FileLock::try_acquire(&lock_file)? else {
            report
                .refused
                .push(format!("{rel}: another process holds its lock"));
            continue;
        };
        // Sealed cells were computed by code this process cannot name.
        let record = write(&dir, hash, caches, Code::Unknown)?;
        lock.remove()?;
        if record
            .warm_start
            .as_ref()
            .is_some_and(|w| w.sha256.is_none())
        {
            report.without_warm_start_sha += 1;
        }
        let bytes = std::fs::read(dir.join(RECORD_FILE))?;
        manifest.insert(
            format!("{rel}/{RECORD_FILE}"),
            Entry {
                sha256: sha256_hex(&bytes),
                size: bytes.len() as u64,
            },
        );
        report.sealed.push(dir);
    }
    if !report.sealed.is_empty() {
        passk_schema::write_atomic(
            &manifest_path,
            passk_report::manifest::render(&manifest).as_bytes(),
        )
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    }
    Ok(report)
}

/// Whether the files of the cell directory `dir` (`rel` under results) are exactly those
/// `manifest` lists under it, and its `cell.json` hashes to its name.
fn matches_manifest(
    dir: &Path,
    rel: &str,
    manifest: &BTreeMap<String, Entry>,
) -> std::result::Result<(), String> {
    read_cell_json(dir, &dir_name(dir))?;
    let prefix = format!("{rel}/");
    let listed: Vec<FileEntry> = manifest
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, e)| FileEntry {
            path: p[prefix.len()..].to_string(),
            size: e.size,
            sha256: e.sha256.clone(),
        })
        .collect();
    if listed.is_empty() {
        return Err("MANIFEST lists none of its files".into());
    }
    let found = scan_files(dir).map_err(|e| format!("{e:#}"))?;
    let problems = compare_files(&listed, &found);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("differs from MANIFEST: {}", problems.join("; ")))
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
