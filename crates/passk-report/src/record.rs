//! What makes a cell directory complete: its completion record (`complete.json`) verifies.
//!
//! A cell is complete when the record is there and names the directory, `cell.json`'s
//! configuration hashes to the directory name ([`cell_hash`]), and the files are exactly those
//! recorded, byte for byte. `passk run` writes records (passk-cli's `record` module); every
//! reader of results (the report's loaders, the claims, `passk verify`) checks them here, so a
//! cell whose record fails never reaches a number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use passk_schema::cell::{CellRecord, CompletionRecord, FileEntry, RECORD_FILE, RECORD_SCHEMA};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The first 16 hex digits of [`config_sha256`]: a cell's hash, its directory's name.
pub fn cell_hash(tier: &str, config: &Map<String, Value>) -> String {
    config_sha256(tier, config)[..16].to_string()
}

/// The full sha256 (64 hex digits) over `tier`, a zero byte and the canonical JSON of the
/// config: what a cell's hash abbreviates, recorded whole in its completion record.
pub fn config_sha256(tier: &str, config: &Map<String, Value>) -> String {
    let canonical = serde_json::to_string(&Value::Object(config.clone()))
        .expect("a JSON map always serialises");
    let mut hasher = Sha256::new();
    hasher.update(tier.as_bytes());
    hasher.update([0u8]);
    hasher.update(canonical.as_bytes());
    crate::manifest::hex(&hasher.finalize())
}

/// Every non-hidden file under the cell directory `dir` except the top-level record, sorted.
pub fn scan_files(dir: &Path) -> Result<Vec<FileEntry>> {
    // The manifest's walk: the same files, hashes and `/`-joined relative paths, sorted.
    let files =
        crate::manifest::scan(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(files
        .into_iter()
        .filter(|(path, _)| path != RECORD_FILE)
        .map(|(path, e)| FileEntry {
            path,
            size: e.size,
            sha256: e.sha256,
        })
        .collect())
}

/// The directory's name.
pub fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads `cell.json` of the cell directory named `hash` and checks that it names that cell and
/// that its configuration hashes to it; returns the record, its configuration and the
/// configuration's [`config_sha256`].
pub fn read_cell_json(
    dir: &Path,
    hash: &str,
) -> Result<(CellRecord, Map<String, Value>, String), String> {
    let path = dir.join("cell.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("cell.json is unreadable ({e})"))?;
    let record: CellRecord =
        serde_json::from_slice(&bytes).map_err(|e| format!("cell.json does not parse ({e})"))?;
    let Value::Object(config) = &record.config else {
        return Err("cell.json's config is not a JSON object".into());
    };
    if record.hash != hash {
        return Err(format!("cell.json names cell {} instead", record.hash));
    }
    let found = cell_hash(&record.tier, config);
    if found != hash {
        return Err(format!(
            "cell.json's configuration hashes to {found}, not to its directory name (it was \
             edited)"
        ));
    }
    let sha = config_sha256(&record.tier, config);
    let config = config.clone();
    Ok((record, config, sha))
}

/// Checks the cell directory `dir` against its completion record; `Err` says what is wrong.
pub fn check(dir: &Path) -> std::result::Result<(), String> {
    let hash = dir_name(dir);
    let path = dir.join(RECORD_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no completion record ({RECORD_FILE}): the cell never finished, or it predates \
                 completion records (`passk seal` adds them to cells whose files match MANIFEST)"
            ))
        }
        Err(e) => return Err(format!("{RECORD_FILE} is unreadable ({e})")),
    };
    let record: CompletionRecord = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{RECORD_FILE} does not parse ({e})"))?;
    if record.schema != RECORD_SCHEMA {
        return Err(format!(
            "{RECORD_FILE} has schema {}, this build reads {RECORD_SCHEMA}",
            record.schema
        ));
    }
    if record.hash != hash {
        return Err(format!("{RECORD_FILE} names cell {} instead", record.hash));
    }
    let (cell, _, sha) = read_cell_json(dir, &hash)?;
    if cell.tier != record.tier || sha != record.config_sha256 {
        return Err(format!(
            "cell.json's tier and configuration ({}, sha256 {sha}) are not the recorded ones \
             ({}, {})",
            cell.tier, record.tier, record.config_sha256
        ));
    }
    let found = scan_files(dir).map_err(|e| format!("{e:#}"))?;
    let problems = compare_files(&record.files, &found);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// How the files `found` differ from `recorded`, at most five, then a count.
pub fn compare_files(recorded: &[FileEntry], found: &[FileEntry]) -> Vec<String> {
    let found: BTreeMap<&str, &FileEntry> = found.iter().map(|f| (f.path.as_str(), f)).collect();
    let recorded_map: BTreeMap<&str, &FileEntry> =
        recorded.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut problems = Vec::new();
    for r in recorded {
        match found.get(r.path.as_str()) {
            None => problems.push(format!("{} is missing", r.path)),
            Some(f) if f.size != r.size => problems.push(format!(
                "{} has {} bytes, {} recorded (truncated or extended)",
                r.path, f.size, r.size
            )),
            Some(f) if f.sha256 != r.sha256 => {
                problems.push(format!("{} differs from its recorded sha256", r.path))
            }
            Some(_) => {}
        }
    }
    for path in found.keys() {
        if !recorded_map.contains_key(path) {
            problems.push(format!("{path} is not recorded"));
        }
    }
    if problems.len() > 5 {
        let more = problems.len() - 5;
        problems.truncate(5);
        problems.push(format!("and {more} more"));
    }
    problems
}

/// Cell directories split by [`cells_by_check`]: those whose record verifies, and those that
/// fail with the reason.
pub type CheckedCells = (Vec<PathBuf>, Vec<(PathBuf, String)>);

/// The cell directories under `experiment_dir` (non-hidden folders, sorted), split into those
/// whose record verifies and those that fail, each failing one with the reason.
pub fn cells_by_check(experiment_dir: &Path) -> std::io::Result<CheckedCells> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(experiment_dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') && entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for dir in dirs {
        match check(&dir) {
            Ok(()) => good.push(dir),
            Err(why) => bad.push((dir, why)),
        }
    }
    Ok((good, bad))
}
