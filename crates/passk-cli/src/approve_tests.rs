//! Tests of MANIFEST approval: what a run may and may not write into MANIFEST.

use super::*;
use crate::run::run_experiment;
use crate::tiers::RunContext;

/// A two-cell theory experiment named `t`, run into `results` with a MANIFEST; returns its
/// cells as `t/<hash>`.
fn committed(results: &Path) -> Vec<String> {
    let text = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2, 4]\n\
        separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
        feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
        one_step_eta = 0.01\n";
    let exp = crate::config::parse_experiment(text, Path::new("t.toml")).unwrap();
    let ctx = RunContext {
        quiet: true,
        ..Default::default()
    };
    run_experiment(&exp, results, &ctx).unwrap();
    let cells: Vec<String> = exp.cells.iter().map(|c| format!("t/{}", c.hash)).collect();
    let vouched = Vouched {
        cells: cells.iter().cloned().collect(),
        environment: false,
    };
    update(results, &vouched, false).unwrap();
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
    cells
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn manifest(results: &Path) -> Vec<u8> {
    std::fs::read(results.join(MANIFEST)).unwrap()
}

/// The first file of `cell` that is not its record.
fn a_file_of(results: &Path, cell: &str) -> std::path::PathBuf {
    let dir = results.join(cell);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("complete.json") && !p.ends_with("cell.json"))
        .collect();
    names.sort();
    names.remove(0)
}

#[test]
fn a_changed_listed_file_is_refused_by_name_and_manifest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let cells = committed(results);
    let before = manifest(results);
    let file = a_file_of(results, &cells[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = format!(
        "{:#}",
        update(results, &Vouched::default(), false).unwrap_err()
    );
    let rel = passk_report::manifest::relative(results, &file);
    assert!(err.contains(&format!("changed: {rel}")), "{err}");
    assert!(err.contains("--accept-changes"), "{err}");
    assert_eq!(manifest(results), before, "MANIFEST was rewritten");
    // Even when the cell's record is rewritten to match (a forged record).
    let cell_dir = results.join(&cells[0]);
    crate::record::write(&cell_dir, &cells[0][2..], &[], crate::record::Code::Unknown).unwrap();
    assert!(crate::record::check(&cell_dir).is_ok());
    assert!(update(results, &Vouched::default(), false).is_err());
    assert_eq!(manifest(results), before);
    // Approved on purpose, it is listed.
    let updated = update(results, &Vouched::default(), true).unwrap();
    assert!(updated.approved.contains(&(Change::Changed, rel.clone())));
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
}

#[test]
fn extra_and_missing_files_outside_vouched_cells_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let cells = committed(results);
    let before = manifest(results);
    std::fs::create_dir_all(results.join("warm-starts")).unwrap();
    std::fs::write(results.join("warm-starts/sft-00.safetensors"), b"w").unwrap();
    let err = format!(
        "{:#}",
        update(results, &Vouched::default(), false).unwrap_err()
    );
    assert!(
        err.contains("extra: warm-starts/sft-00.safetensors"),
        "{err}"
    );
    std::fs::remove_file(results.join("warm-starts/sft-00.safetensors")).unwrap();
    std::fs::remove_dir_all(results.join(&cells[1])).unwrap();
    let err = format!(
        "{:#}",
        update(results, &Vouched::default(), false).unwrap_err()
    );
    assert!(err.contains(&format!("missing: {}/", cells[1])), "{err}");
    assert_eq!(manifest(results), before);
    // A cell this process removed (pruned) may leave MANIFEST.
    let vouched = Vouched {
        cells: [cells[1].clone()].into(),
        environment: false,
    };
    update(results, &vouched, false).unwrap();
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
}

#[test]
fn a_new_cell_whose_record_verifies_is_approved_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let cells = committed(results);
    // Written by another process (a --cell run): unlisted, but its record verifies.
    let moved = results.join("u").join(&cells[0][2..]);
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    copy_tree(&results.join(&cells[0]), &moved);
    update(results, &Vouched::default(), false).unwrap();
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
    // The same, with a file that no longer matches its record.
    let other = results.join("v").join(&cells[1][2..]);
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    copy_tree(&results.join(&cells[1]), &other);
    std::fs::write(a_file_of(results, &format!("v/{}", &cells[1][2..])), b"x").unwrap();
    let err = format!(
        "{:#}",
        update(results, &Vouched::default(), false).unwrap_err()
    );
    assert!(
        err.contains(&format!("extra: v/{}/", &cells[1][2..])),
        "{err}"
    );
}

#[test]
fn environment_is_approved_only_when_this_process_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    committed(results);
    std::fs::write(results.join(crate::environment::FILE), b"{}").unwrap();
    assert!(update(results, &Vouched::default(), false).is_err());
    let vouched = Vouched {
        environment: true,
        ..Default::default()
    };
    update(results, &vouched, false).unwrap();
}

#[test]
fn cell_hashes_are_sixteen_lower_hex_digits() {
    assert!(is_cell_hash("06c729c2e3c1ee21"));
    for bad in [
        "notes",
        "06C729C2E3C1EE21",
        "06c729c2e3c1ee2",
        ".tmp-06c729c2e3c1ee21",
    ] {
        assert!(!is_cell_hash(bad), "{bad}");
    }
    assert_eq!(
        cell_of("e/06c729c2e3c1ee21/a.csv"),
        Some("e/06c729c2e3c1ee21")
    );
    assert_eq!(cell_of("e/06c729c2e3c1ee21"), None);
    assert_eq!(cell_of("warm-starts/sft-1.csv"), None);
}

#[test]
fn a_listed_cell_rewritten_by_a_run_is_approved_by_its_attestation_and_a_hand_edit_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let cells = committed(results);
    let before = manifest(results);
    let (exp, hash) = cells[0].split_once('/').unwrap();
    let cell = results.join(&cells[0]);
    // Rewritten as a run would (`--cell --force`, another process): new bytes, a fresh record,
    // then the attestation.
    let file = a_file_of(results, &cells[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(b'\n');
    std::fs::write(&file, &bytes).unwrap();
    crate::record::write(&cell, hash, &[], crate::record::Code::ThisBuild).unwrap();
    attest(results, exp, hash).unwrap();
    let marker = results.join(exp).join(format!(".written-{hash}"));
    assert!(marker.exists());
    update(results, &Vouched::default(), false).unwrap();
    assert_ne!(manifest(results), before);
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
    assert!(!marker.exists(), "a used attestation is removed");
    // A hand edit after an attestation: the record no longer matches it.
    attest(results, exp, hash).unwrap();
    let listed = manifest(results);
    bytes.push(b'x');
    std::fs::write(&file, &bytes).unwrap();
    crate::record::write(&cell, hash, &[], crate::record::Code::ThisBuild).unwrap();
    assert!(update(results, &Vouched::default(), false).is_err());
    assert_eq!(manifest(results), listed);
}
