//! `passk verify --against DIR`: the committed cells that a fresh recomputation (the CI gate's,
//! in DIR) computed differently. A cell's hash names its configuration, not the code; this is
//! what ties the two.

use std::path::Path;

use anyhow::Result;

use passk_schema::cell::RECORD_FILE as RECORD;

/// Files of the cells in `fresh` that differ from the committed cell of the same hash in
/// `committed`, as `results/<experiment>/<hash>/<file>`, sorted. Cells `committed` lacks are not
/// compared; MANIFEST, ENVIRONMENT.json and hidden files are not cells' files.
pub fn stale_committed_cells(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    let mut stack = vec![fresh.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "MANIFEST" || name == "ENVIRONMENT.json" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(fresh)?;
            let twin = committed.join(rel);
            // Only cells committed under the same hash are comparable.
            if twin.parent().is_some_and(|p| p.is_dir())
                && !same_result(&name, std::fs::read(&twin).ok(), &std::fs::read(&path)?)
            {
                stale.push(format!("results/{}", rel.display()));
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// Whether a fresh result file equals its committed twin: byte for byte, but for a completion
/// record's code fingerprint (`"code"`, the build that computed the cell, which a committed
/// record names differently or, from before fingerprints, not at all).
fn same_result(name: &str, committed: Option<Vec<u8>>, fresh: &[u8]) -> bool {
    let Some(committed) = committed else {
        return false;
    };
    if name != RECORD {
        return committed == fresh;
    }
    let without_code = |bytes: &[u8]| -> Option<serde_json::Value> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        value.as_object_mut()?.remove("code");
        Some(value)
    };
    match (without_code(&committed), without_code(fresh)) {
        (Some(a), Some(b)) => a == b,
        _ => committed == fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_compared_without_its_code_fingerprint_other_files_byte_for_byte() {
        let old = br#"{"schema": 1, "hash": "ab", "files": []}"#.to_vec();
        let new = br#"{"schema": 1, "hash": "ab", "code": "00ff", "files": []}"#;
        assert!(same_result(RECORD, Some(old.clone()), new));
        let other = br#"{"schema": 1, "hash": "cd", "code": "00ff", "files": []}"#;
        assert!(!same_result(RECORD, Some(old.clone()), other));
        assert!(!same_result("eval.csv", Some(old.clone()), new));
        assert!(same_result("eval.csv", Some(old.clone()), &old));
        assert!(!same_result(RECORD, None, new));
    }

    #[test]
    fn only_cells_committed_under_the_same_hash_are_compared() {
        let dir = tempfile::tempdir().unwrap();
        let (fresh, committed) = (dir.path().join("fresh"), dir.path().join("results"));
        let write = |root: &Path, rel: &str, body: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        write(&fresh, "e/aa/eval.csv", "1");
        write(&committed, "e/aa/eval.csv", "1");
        write(&fresh, "e/bb/eval.csv", "2");
        write(&committed, "e/bb/eval.csv", "3");
        write(&fresh, "e/bb/extra.csv", "x");
        write(&fresh, "e/cc/eval.csv", "new cell");
        write(&fresh, "MANIFEST", "m");
        write(&fresh, "e/.lock-aa", "");
        assert_eq!(
            stale_committed_cells(&fresh, &committed).unwrap(),
            ["results/e/bb/eval.csv", "results/e/bb/extra.csv"]
        );
    }
}
