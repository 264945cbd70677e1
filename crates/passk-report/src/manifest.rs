//! `results/MANIFEST`: sha256 and size of every result file, and its verification.
//!
//! Format: one line per file, `<sha256 hex>  <size in bytes>  <path relative to results/>`,
//! sorted by path, `/` as separator. Hidden files and directories (names starting with `.`)
//! are in-progress temporaries (an interrupted cell's checkpoints): they are neither listed nor
//! checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use passk_schema::write_atomic;

/// The manifest's file name inside the results directory.
pub const MANIFEST: &str = "MANIFEST";

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-case hex sha256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// What `verify` found wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed but absent.
    Missing(String),
    /// Present but not listed.
    Extra(String),
    /// Listed with other contents.
    Changed(String),
    /// The manifest itself is absent or unreadable.
    NoManifest(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "missing: {p} is listed in MANIFEST but absent"),
            Problem::Extra(p) => write!(f, "extra: {p} is not listed in MANIFEST"),
            Problem::Changed(p) => write!(f, "changed: {p} differs from its MANIFEST hash"),
            Problem::NoManifest(why) => write!(f, "no manifest: {why}"),
        }
    }
}

/// Lower-case hex of a sha256 digest of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every non-hidden file under `root` except the manifest, with its entry, keyed by relative path.
pub fn scan(root: &Path) -> std::io::Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = relative(root, &path);
            if rel == MANIFEST {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            out.insert(
                rel,
                Entry {
                    sha256: sha256_hex(&bytes),
                    size: bytes.len() as u64,
                },
            );
        }
    }
    Ok(out)
}

/// `path` relative to `root`, with `/` separators on every platform (as MANIFEST names files).
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Renders entries in the manifest format.
pub fn render(entries: &BTreeMap<String, Entry>) -> String {
    let mut text = String::new();
    for (path, e) in entries {
        text.push_str(&format!("{}  {}  {}\n", e.sha256, e.size, path));
    }
    text
}

/// Parses manifest text; errors name the line.
pub fn parse(text: &str) -> Result<BTreeMap<String, Entry>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.splitn(3, "  ");
        let (Some(sha), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "MANIFEST line {}: expected `<sha256>  <size>  <path>`",
                i + 1
            ));
        };
        let size = size
            .parse()
            .map_err(|_| format!("MANIFEST line {}: size {size:?} is not a number", i + 1))?;
        out.insert(
            path.to_string(),
            Entry {
                sha256: sha.to_string(),
                size,
            },
        );
    }
    Ok(out)
}

/// Writes `root/MANIFEST` for the files under `root`; returns the number listed. An unchanged
/// manifest is left alone (not rewritten), so a no-op run succeeds on read-only results.
pub fn write_manifest(root: &Path) -> std::io::Result<usize> {
    let entries = scan(root)?;
    let text = render(&entries);
    let path = root.join(MANIFEST);
    if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
        write_atomic(&path, text.as_bytes())?;
    }
    Ok(entries.len())
}

/// Compares the files under `root` with `root/MANIFEST`; empty when everything matches.
pub fn verify_manifest(root: &Path) -> Vec<Problem> {
    let text = match std::fs::read_to_string(root.join(MANIFEST)) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem::NoManifest(format!(
                "cannot read {}: {e}; run `cargo xtask reproduce all` to create it",
                root.join(MANIFEST).display()
            ))]
        }
    };
    let listed = match parse(&text) {
        Ok(l) => l,
        Err(e) => return vec![Problem::NoManifest(e)],
    };
    let present = match scan(root) {
        Ok(p) => p,
        Err(e) => {
            return vec![Problem::NoManifest(format!(
                "cannot scan {}: {e}",
                root.display()
            ))]
        }
    };
    let mut problems = Vec::new();
    for (path, entry) in &listed {
        match present.get(path) {
            None => problems.push(Problem::Missing(path.clone())),
            Some(found) if found != entry => problems.push(Problem::Changed(path.clone())),
            Some(_) => {}
        }
    }
    for path in present.keys() {
        if !listed.contains_key(path) {
            problems.push(Problem::Extra(path.clone()));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_one_changed_byte_missing_and_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_atomic(&root.join("exp/abc/summary.json"), b"{\"x\":1}").unwrap();
        write_atomic(&root.join("exp/abc/kscan.csv"), b"k\n1\n").unwrap();
        assert_eq!(write_manifest(root).unwrap(), 2);
        assert!(verify_manifest(root).is_empty());

        std::fs::write(root.join("exp/abc/summary.json"), b"{\"x\":2}").unwrap();
        assert_eq!(
            verify_manifest(root),
            vec![Problem::Changed("exp/abc/summary.json".into())]
        );
        std::fs::write(root.join("exp/abc/summary.json"), b"{\"x\":1}").unwrap();
        std::fs::remove_file(root.join("exp/abc/kscan.csv")).unwrap();
        std::fs::write(root.join("exp/new.csv"), b"").unwrap();
        let problems = verify_manifest(root);
        assert!(problems.contains(&Problem::Missing("exp/abc/kscan.csv".into())));
        assert!(problems.contains(&Problem::Extra("exp/new.csv".into())));
    }

    #[test]
    fn an_unchanged_manifest_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_atomic(&root.join("exp/abc/summary.json"), b"{}").unwrap();
        write_manifest(root).unwrap();
        let manifest = root.join(MANIFEST);
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let set_old = || {
            std::fs::File::options()
                .write(true)
                .open(&manifest)
                .unwrap()
                .set_modified(old)
                .unwrap()
        };
        set_old();
        let before = std::fs::read(&manifest).unwrap();
        assert_eq!(write_manifest(root).unwrap(), 1);
        assert_eq!(std::fs::read(&manifest).unwrap(), before);
        let modified = || std::fs::metadata(&manifest).unwrap().modified().unwrap();
        assert_eq!(modified(), old, "an unchanged manifest was rewritten");
        // A change is still written.
        write_atomic(&root.join("exp/abc/kscan.csv"), b"k\n").unwrap();
        assert_eq!(write_manifest(root).unwrap(), 2);
        assert_ne!(modified(), old);
        assert!(verify_manifest(root).is_empty());
    }

    #[test]
    fn hidden_lock_files_and_temporaries_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_atomic(&root.join("exp/abc/summary.json"), b"{}").unwrap();
        for hidden in [
            "exp/.lock-abc",
            "exp/.lock-def",
            "exp/.tmp-def/summary.json",
            "exp/abc/.summary.json.12-0.tmp",
        ] {
            write_atomic(&root.join(hidden), b"pid 1\nhost h\n").unwrap();
        }
        assert_eq!(write_manifest(root).unwrap(), 1);
        let text = std::fs::read_to_string(root.join(MANIFEST)).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.ends_with("  exp/abc/summary.json\n"), "{text}");
        assert!(verify_manifest(root).is_empty());
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn missing_manifest_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let problems = verify_manifest(dir.path());
        assert!(matches!(&problems[0], Problem::NoManifest(m) if m.contains("reproduce")));
    }
}
