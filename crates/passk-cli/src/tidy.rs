//! Removing the hidden temporaries that killed writers leave beside the files they replace.
//!
//! Every atomic write goes through a hidden temporary beside its target (`.MANIFEST.tmp-<pid>-<n>`,
//! `.ENVIRONMENT.json.tmp-…`, `.README.md.tmp-…`; see `passk_schema::files::temp_path`). A
//! kill between its creation and its rename leaves it behind. `passk run` tidies the results
//! folder and `passk report` the folders of the documents it refills; only names a passk writer
//! makes, and only when that writer's process no longer runs on this machine.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use passk_train::lock::{pid_alive, temp_writer_pid};

/// Removes the hidden temporary files directly in `dir` (not below it) whose writer process is
/// dead; returns them. A missing `dir` holds none.
pub fn remove_dead_temporaries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    let mut dead = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && temp_writer_pid(&name).is_some_and(|pid| !pid_alive(pid)) {
            dead.push(entry.path());
        }
    }
    dead.sort();
    for path in dead {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: above the kernel's maximum.
    const DEAD: u32 = 4_194_304 + 17;

    #[test]
    fn removes_only_dead_writers_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let names = [
            format!(".MANIFEST.tmp-{DEAD}-0"),
            format!(".ENVIRONMENT.json.tmp-{DEAD}-3"),
            format!(".README.md.tmp-{me}-0"),
            "MANIFEST".to_string(),
            ".MANIFEST.lock".to_string(),
            ".notes".to_string(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let removed = remove_dead_temporaries(dir.path()).unwrap();
        assert_eq!(
            removed,
            vec![dir.path().join(&names[1]), dir.path().join(&names[0]),]
        );
        for n in &names[2..] {
            assert!(dir.path().join(n).exists(), "{n} was removed");
        }
        assert!(remove_dead_temporaries(&dir.path().join("none"))
            .unwrap()
            .is_empty());
    }
}
