//! `check`: the CI gate. Recompute the gate experiments, evaluate every claim on them, verify
//! the committed results, and compare the fresh cells with their committed twins.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{gate, passk, project_root};

pub fn check(sh: &Shell, cuda: bool) -> Result<()> {
    let passk = passk::build(sh, cuda)?;
    let scratch = gate::scratch_dir();
    gate::recompute(sh, &passk, &scratch)?;
    // --strict: every claim must be evaluated (a missing experiment fails, not skips).
    let claims = cmd!(sh, "{passk} check --results {scratch} --strict").run();
    let verified = cmd!(sh, "{passk} verify").run();
    let stale = stale_committed_cells(&scratch, &project_root().join("results"))?;
    claims.context("a claim failed (table above)")?;
    verified.context("committed results or figures do not verify (messages above)")?;
    if !stale.is_empty() {
        for file in &stale {
            eprintln!("check: {file} differs from the gate's fresh recomputation");
        }
        bail!(
            "the committed results are stale: the code now computes other numbers for {} file(s); \
             delete the affected cells and run `cargo xtask reproduce all`",
            stale.len()
        );
    }
    println!("check: the gate's fresh cells that are also committed are byte-identical to them");
    Ok(())
}

/// Files of freshly computed gate cells that differ from a committed cell of the same hash.
/// (A cell's hash names its configuration, not the code; this is what ties the two.)
fn stale_committed_cells(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
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
    if name != "complete.json" {
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
        assert!(same_result("complete.json", Some(old.clone()), new));
        let other = br#"{"schema": 1, "hash": "cd", "code": "00ff", "files": []}"#;
        assert!(!same_result("complete.json", Some(old.clone()), other));
        assert!(!same_result("eval.csv", Some(old.clone()), new));
        assert!(same_result("eval.csv", Some(old.clone()), &old));
        assert!(!same_result("complete.json", None, new));
    }
}
