//! Seeding the warm-start cache from the warm starts committed under `results/warm-starts/`.
//!
//! A fresh clone has an empty cache, so `compare` and `run` would train every SFT warm start
//! again (minutes each) although some are committed. Before running, each committed
//! `sft-<hash>.{safetensors,csv}` the cache lacks is copied in, but only when its bytes match
//! the sha256 that `results/MANIFEST` lists for it: a tampered or unlisted file is left out
//! (and then trained, as before). A copied warm start still goes through the cache's own load
//! checks (finite weights; the sidecar where one exists). Each copy runs under the warm start's
//! lock (`<cache>/.sft-<hash>.lock`, see `passk_train::lock`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use passk_report::manifest::{parse, sha256_hex, MANIFEST};

/// The folder of committed warm starts inside a results directory.
pub const COMMITTED: &str = "warm-starts";

/// Copies into `cache` every committed warm-start file of `results` that the cache lacks and
/// whose contents match `results/MANIFEST`; returns how many were copied. No manifest or no
/// committed warm starts: nothing to do.
pub fn seed_from_committed(results: &Path, cache: &Path) -> Result<usize> {
    let Ok(text) = std::fs::read_to_string(results.join(MANIFEST)) else {
        return Ok(0);
    };
    let listed = parse(&text).map_err(anyhow::Error::msg)?;
    let prefix = format!("{COMMITTED}/");
    let mut copied = 0;
    for (path, entry) in &listed {
        let Some(name) = path.strip_prefix(&prefix).filter(|n| n.starts_with("sft-")) else {
            continue;
        };
        let target = cache.join(name);
        if target.exists() {
            continue;
        }
        let Ok(bytes) = std::fs::read(results.join(path)) else {
            continue;
        };
        if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
            eprintln!(
                "warning: {} does not match results/MANIFEST; not reusing it",
                results.join(path).display()
            );
            continue;
        }
        std::fs::create_dir_all(cache)
            .with_context(|| format!("cannot create {}", cache.display()))?;
        // Under the warm start's own lock (as its trainer holds it), so processes on several
        // machines seeding one shared cache never write one file at once.
        let hash = name["sft-".len()..].split('.').next().unwrap_or_default();
        let _lock = passk_train::FileLock::acquire(&cache.join(format!(".sft-{hash}.lock")))?;
        if target.exists() {
            continue;
        }
        passk_schema::write_atomic(&target, &bytes)?;
        copied += 1;
    }
    Ok(copied)
}

/// Whether `name` is a warm-start file of the cache (`sft-<hash>.safetensors`, its training log
/// `sft-<hash>.csv` or its sidecar `sft-<hash>.json`).
fn is_warm_start_file(name: &str) -> bool {
    name.starts_with("sft-")
}

/// Copies every warm-start file of the folder `committed` (`results/warm-starts/`) into
/// `cache`, replacing the cache's copy: for the CI gate. Each file must match the MANIFEST of
/// the results folder holding `committed` (its parent); one that differs or is not listed is an
/// error naming it, before anything is copied. Each copy is atomic (temporary, then rename) and
/// runs under the warm start's lock, as its trainer holds it. Returns how many files were
/// copied (0 when `committed` does not exist).
pub fn copy_all(committed: &Path, cache: &Path) -> Result<usize> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    if !committed.is_dir() {
        return Ok(0);
    }
    let results = committed.parent().unwrap_or(Path::new("."));
    let manifest_path = results.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {}: the committed warm starts are checked against it before they are \
             copied",
            manifest_path.display()
        )
    })?;
    let listed = parse(&text).map_err(anyhow::Error::msg)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(committed)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !is_warm_start_file(&name) {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = passk_report::manifest::relative(results, &path);
        match listed.get(&key) {
            Some(e) if e.size == bytes.len() as u64 && e.sha256 == sha256_hex(&bytes) => {}
            found => bail!(
                "{} {} {}; nothing was copied. Restore it (`git checkout -- {}`)",
                path.display(),
                if found.is_some() {
                    "differs from its entry in"
                } else {
                    "is not listed in"
                },
                manifest_path.display(),
                path.display()
            ),
        }
        files.push((name, bytes));
    }
    files.sort();
    for (name, bytes) in &files {
        let hash = name["sft-".len()..].split('.').next().unwrap_or_default();
        let _lock = passk_train::FileLock::acquire(&cache.join(format!(".sft-{hash}.lock")))?;
        passk_schema::write_atomic(&cache.join(name), bytes)
            .with_context(|| format!("cannot write {}", cache.join(name).display()))?;
    }
    Ok(files.len())
}

/// The warm starts (`sft-<hash>.safetensors`) in `cache` that the folder `committed` lacks:
/// trained in that cache, not copied from the committed ones. Sorted; empty when `cache` does
/// not exist.
pub fn not_committed(cache: &Path, committed: &Path) -> Result<Vec<String>> {
    if !cache.is_dir() {
        return Ok(Vec::new());
    }
    let mut trained = Vec::new();
    for entry in std::fs::read_dir(cache)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_warm_start_file(&name)
            && name.ends_with(".safetensors")
            && !committed.join(&name).is_file()
        {
            trained.push(name);
        }
    }
    trained.sort();
    Ok(trained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_listed_matching_files_the_cache_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let (results, cache) = (dir.path().join("results"), dir.path().join("cache"));
        let ws = results.join(COMMITTED);
        std::fs::create_dir_all(&ws).unwrap();
        for (name, body) in [
            ("sft-aa.safetensors", "weights a"),
            ("sft-aa.csv", "log a"),
            ("sft-bb.safetensors", "weights b"),
            ("sft-cc.safetensors", "weights c"),
        ] {
            std::fs::write(ws.join(name), body).unwrap();
        }
        passk_report::manifest::write_manifest(&results).unwrap();
        // After the manifest: b is tampered with, and an unlisted d appears.
        std::fs::write(ws.join("sft-bb.safetensors"), "weights B").unwrap();
        std::fs::write(ws.join("sft-dd.safetensors"), "weights d").unwrap();
        // The cache already holds its own c.
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join("sft-cc.safetensors"), "cached c").unwrap();
        assert_eq!(seed_from_committed(&results, &cache).unwrap(), 2);
        let read = |n: &str| std::fs::read_to_string(cache.join(n)).ok();
        assert_eq!(read("sft-aa.safetensors").as_deref(), Some("weights a"));
        assert_eq!(read("sft-aa.csv").as_deref(), Some("log a"));
        assert_eq!(read("sft-bb.safetensors"), None);
        assert_eq!(read("sft-cc.safetensors").as_deref(), Some("cached c"));
        assert_eq!(read("sft-dd.safetensors"), None);
        // A second call has nothing left to do; no manifest, nothing at all.
        assert_eq!(seed_from_committed(&results, &cache).unwrap(), 0);
        assert_eq!(seed_from_committed(dir.path(), &cache).unwrap(), 0);
    }

    #[test]
    fn copy_all_copies_every_warm_start_file_and_not_committed_names_the_trained_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (committed, cache) = (dir.path().join("ws"), dir.path().join("cache"));
        assert_eq!(
            copy_all(&committed, &cache).unwrap(),
            0,
            "no committed folder"
        );
        assert!(cache.is_dir());
        std::fs::create_dir_all(&committed).unwrap();
        for (name, body) in [
            ("sft-aa.safetensors", "a"),
            ("sft-aa.csv", "log a"),
            ("README.md", "not a warm start"),
        ] {
            std::fs::write(committed.join(name), body).unwrap();
        }
        std::fs::write(cache.join("sft-aa.safetensors"), "stale").unwrap();
        // Without a MANIFEST beside them, nothing is copied.
        assert!(copy_all(&committed, &cache).is_err());
        passk_report::manifest::write_manifest(dir.path()).unwrap();
        assert_eq!(copy_all(&committed, &cache).unwrap(), 2);
        let read = |n: &str| std::fs::read_to_string(cache.join(n)).ok();
        assert_eq!(read("sft-aa.safetensors").as_deref(), Some("a"), "replaced");
        assert_eq!(read("README.md"), None);
        assert!(not_committed(&cache, &committed).unwrap().is_empty());
        std::fs::write(cache.join("sft-bb.safetensors"), "trained").unwrap();
        std::fs::write(cache.join("sft-bb.csv"), "log").unwrap();
        assert_eq!(
            not_committed(&cache, &committed).unwrap(),
            ["sft-bb.safetensors"]
        );
        assert!(not_committed(&dir.path().join("none"), &committed)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn copy_all_refuses_a_committed_file_that_differs_from_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let (committed, cache) = (dir.path().join("warm-starts"), dir.path().join("cache"));
        std::fs::create_dir_all(&committed).unwrap();
        std::fs::write(committed.join("sft-aa.safetensors"), "a").unwrap();
        std::fs::write(committed.join("sft-bb.safetensors"), "b").unwrap();
        passk_report::manifest::write_manifest(dir.path()).unwrap();
        std::fs::write(committed.join("sft-bb.safetensors"), "B").unwrap();
        let err = format!("{:#}", copy_all(&committed, &cache).unwrap_err());
        assert!(
            err.contains("sft-bb.safetensors") && err.contains("differs"),
            "{err}"
        );
        assert!(
            !cache.join("sft-aa.safetensors").exists(),
            "copied before the check"
        );
        std::fs::write(committed.join("sft-cc.safetensors"), "c").unwrap();
        std::fs::write(committed.join("sft-bb.safetensors"), "b").unwrap();
        let err = format!("{:#}", copy_all(&committed, &cache).unwrap_err());
        assert!(
            err.contains("sft-cc.safetensors") && err.contains("not listed"),
            "{err}"
        );
    }
}
