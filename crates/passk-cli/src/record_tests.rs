//! Tests of completion records: every tamper case of issue 18, quarantine, `--on-corrupt stop`,
//! sealing and `verify`.

use super::*;
use crate::config::cell_hash;
use crate::config::Experiment;
use crate::run::{cell_dir, run_experiment, RunStats};
use crate::tiers::RunContext;
use passk_schema::cell::CellRecord;

/// A two-cell theory experiment named `t`.
fn experiment() -> Experiment {
    let text = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2, 4]\n\
        separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
        feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
        one_step_eta = 0.01\n";
    crate::config::parse_experiment(text, Path::new("t.toml")).unwrap()
}

fn ctx(on_corrupt: OnCorrupt) -> RunContext {
    RunContext {
        quiet: true,
        on_corrupt,
        ..Default::default()
    }
}

/// Every file under `dir` (hidden ones too) with its bytes, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    passk_report::manifest::relative(dir, &p),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// A finished cell in `dir` named after its configuration, holding the files the tamper
/// cases name (tier theory: no warm start), with its record.
fn synthetic_cell(parent: &Path) -> PathBuf {
    let mut config = Map::new();
    config.insert("seed".into(), Value::from(0));
    config.insert("q".into(), Value::from(0.75));
    let hash = cell_hash("theory", &config);
    let dir = parent.join(&hash);
    let cell = CellRecord {
        schema: passk_schema::cell::SCHEMA_VERSION,
        experiment: "e".into(),
        tier: "theory".into(),
        hash,
        config: Value::Object(config),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("eval.csv"), "step,pass1\n0,0.000\n100,0.500\n").unwrap();
    std::fs::write(dir.join("train_log.csv"), "step,loss\n0,1.5\n").unwrap();
    std::fs::create_dir_all(dir.join("probe")).unwrap();
    std::fs::write(dir.join("probe/gram.f32"), [0u8; 64]).unwrap();
    write_json(&dir.join("cell.json"), &cell).unwrap();
    write_json(
        &dir.join("summary.json"),
        &serde_json::json!({"delta": 0.0}),
    )
    .unwrap();
    let record = write(&dir, &dir_name(&dir), &[], Code::ThisBuild).unwrap();
    assert_eq!(record.warm_start, None);
    assert_eq!(record.files.len(), 5);
    dir
}

/// The tamper cases of issue 18, applied to the cell directory `dir`; each with a word its
/// check failure must contain.
type Tamper = (&'static str, &'static str, fn(&Path));

#[test]
fn every_tamper_case_fails_the_check_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let original = synthetic_cell(tmp.path());
    assert_eq!(check(&original), Ok(()));
    let cases: Vec<Tamper> = vec![
        ("edited eval.csv", "eval.csv differs", |d| {
            // The edit: a Δpass@1 of 0.000 became 0.900 (same length).
            let text = std::fs::read_to_string(d.join("eval.csv")).unwrap();
            std::fs::write(d.join("eval.csv"), text.replace("0,0.000", "0,0.900")).unwrap();
        }),
        ("deleted train_log.csv", "train_log.csv is missing", |d| {
            std::fs::remove_file(d.join("train_log.csv")).unwrap()
        }),
        ("truncated file", "truncated", |d| {
            let f = std::fs::File::options()
                .write(true)
                .open(d.join("probe/gram.f32"))
                .unwrap();
            f.set_len(10).unwrap();
        }),
        ("cell.json config edited", "hashes to", |d| {
            let text = std::fs::read_to_string(d.join("cell.json")).unwrap();
            std::fs::write(d.join("cell.json"), text.replace("0.75", "0.9")).unwrap();
        }),
        ("only cell.json", "no completion record", |d| {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().unwrap() != "cell.json" {
                    if p.is_dir() {
                        std::fs::remove_dir_all(p).unwrap()
                    } else {
                        std::fs::remove_file(p).unwrap()
                    }
                }
            }
        }),
        ("an added file", "extra.csv is not recorded", |d| {
            std::fs::write(d.join("extra.csv"), "x").unwrap()
        }),
        ("a record naming another cell", "names cell", |d| {
            let text = std::fs::read_to_string(d.join(RECORD_FILE)).unwrap();
            let hash = dir_name(d);
            let other = text.replace(&format!("\"hash\": \"{hash}\""), "\"hash\": \"ffff\"");
            std::fs::write(d.join(RECORD_FILE), other).unwrap();
        }),
        ("an unreadable record", "does not parse", |d| {
            std::fs::write(d.join(RECORD_FILE), "{").unwrap()
        }),
    ];
    for (name, expected, tamper) in cases {
        let case = tempfile::tempdir().unwrap();
        let dir = case.path().join(dir_name(&original));
        for (rel, bytes) in snapshot(&original) {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        assert_eq!(check(&dir), Ok(()), "{name}: the copy verifies");
        tamper(&dir);
        let why = check(&dir).expect_err(name);
        assert!(why.contains(expected), "{name}: {why}");
    }
    // Hidden temporaries of writers are not part of a cell.
    std::fs::write(original.join(".eval.csv.123.tmp"), "x").unwrap();
    assert_eq!(check(&original), Ok(()));
}

/// A named way of damaging a cell directory.
type RunTamper = (&'static str, fn(&Path));

/// The theory-cell versions of the tamper cases, for a run.
fn run_tampers() -> Vec<RunTamper> {
    vec![
        ("edited kscan.csv", |d| {
            let mut text = std::fs::read(d.join("kscan.csv")).unwrap();
            let last = text.len() - 2;
            text[last] = if text[last] == b'1' { b'2' } else { b'1' };
            std::fs::write(d.join("kscan.csv"), text).unwrap();
        }),
        ("deleted trajectory.csv", |d| {
            std::fs::remove_file(d.join("trajectory.csv")).unwrap()
        }),
        ("truncated summary.json", |d| {
            let f = std::fs::File::options()
                .write(true)
                .open(d.join("summary.json"))
                .unwrap();
            f.set_len(3).unwrap();
        }),
        ("cell.json config edited", |d| {
            let text = std::fs::read_to_string(d.join("cell.json")).unwrap();
            std::fs::write(d.join("cell.json"), text.replace("0.2", "0.3")).unwrap();
        }),
        ("only cell.json", |d| {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().unwrap() != "cell.json" {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }),
    ]
}

#[test]
fn a_run_moves_a_tampered_cell_aside_and_reruns_it_identically() {
    let exp = experiment();
    for (name, tamper) in run_tampers() {
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path();
        run_experiment(&exp, results, &ctx(OnCorrupt::Rerun)).unwrap();
        let hash = &exp.cells[0].hash;
        let dir = cell_dir(results, "t", hash);
        let clean = snapshot(&dir);
        tamper(&dir);
        let tampered = snapshot(&dir);
        assert!(!crate::run::is_done(results, "t", hash), "{name}");

        // --on-corrupt stop: an error naming the cell, nothing moved or run.
        let e = format!(
            "{:#}",
            run_experiment(&exp, results, &ctx(OnCorrupt::Stop)).unwrap_err()
        );
        assert!(
            e.contains("completion check") && e.contains("stop"),
            "{name}: {e}"
        );
        assert_eq!(snapshot(&dir), tampered, "{name}");
        assert!(!results.join("t").join(QUARANTINE).exists(), "{name}");

        let stats = run_experiment(&exp, results, &ctx(OnCorrupt::Rerun)).unwrap();
        assert_eq!(
            stats,
            RunStats {
                ran: 1,
                cached: 1,
                busy: 0,
                quarantined: 1,
                ..RunStats::default()
            },
            "{name}"
        );
        assert_eq!(
            snapshot(&dir),
            clean,
            "{name}: the rerun cell is byte-identical"
        );
        let aside = results.join("t").join(QUARANTINE).join(format!("{hash}-1"));
        assert_eq!(snapshot(&aside), tampered, "{name}: kept, never deleted");
        // A second corruption goes beside the first.
        tamper(&dir);
        run_experiment(&exp, results, &ctx(OnCorrupt::Rerun)).unwrap();
        assert!(aside.with_file_name(format!("{hash}-2")).is_dir(), "{name}");
        assert_eq!(snapshot(&dir), clean, "{name}");
    }
}

#[test]
fn verify_names_a_bad_cell_and_seal_reproduces_the_record_a_run_writes() {
    // A run's record but for its code fingerprint, which a sealed one lacks.
    let without_code = |bytes: Vec<u8>| {
        let mut record: CompletionRecord = serde_json::from_slice(&bytes).unwrap();
        assert!(record.code.is_some());
        record.code = None;
        serde_json::to_vec_pretty(&record).unwrap()
    };
    let sealed = |bytes: Vec<u8>| {
        let record: CompletionRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.code, None, "a sealed cell's code is not known");
        serde_json::to_vec_pretty(&record).unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path();
    let exp = experiment();
    run_experiment(&exp, results, &ctx(OnCorrupt::Rerun)).unwrap();
    passk_report::manifest::write_manifest(results).unwrap();
    assert!(verify_all(results).unwrap().is_empty());
    let (a, b) = (&exp.cells[0].hash, &exp.cells[1].hash);
    let records: Vec<Vec<u8>> = [a, b]
        .iter()
        .map(|h| without_code(std::fs::read(cell_dir(results, "t", h).join(RECORD_FILE)).unwrap()))
        .collect();

    // Cells from before records: a manifest without them.
    for h in [a, b] {
        std::fs::remove_file(cell_dir(results, "t", h).join(RECORD_FILE)).unwrap();
    }
    passk_report::manifest::write_manifest(results).unwrap();
    let problems = verify_all(results).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("no completion record"), "{problems:?}");

    // One of them was edited after the manifest was written: seal refuses it.
    let kscan = cell_dir(results, "t", b).join("kscan.csv");
    let good = std::fs::read(&kscan).unwrap();
    std::fs::write(&kscan, b"k,inner\n1,0.9\n").unwrap();
    let report = seal(results, &[]).unwrap();
    assert_eq!(report.sealed, vec![cell_dir(results, "t", a)]);
    assert_eq!(report.refused.len(), 1);
    assert!(
        report.refused[0].contains(b.as_str()) && report.refused[0].contains("MANIFEST"),
        "{:?}",
        report.refused
    );
    assert_eq!(
        sealed(std::fs::read(cell_dir(results, "t", a).join(RECORD_FILE)).unwrap()),
        records[0],
        "a sealed record is the one the run wrote, without the code fingerprint"
    );
    // Restored, it is sealed too; the manifest then lists both records and verifies.
    std::fs::write(&kscan, good).unwrap();
    let report = seal(results, &[]).unwrap();
    assert_eq!((report.sealed.len(), report.already), (1, 1));
    assert_eq!(
        sealed(std::fs::read(cell_dir(results, "t", b).join(RECORD_FILE)).unwrap()),
        records[1]
    );
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
    assert!(verify_all(results).unwrap().is_empty());

    // A cell's file edited and its manifest entry "fixed": the record still catches it.
    std::fs::write(&kscan, b"k,inner\n1,0.9\n").unwrap();
    passk_report::manifest::write_manifest(results).unwrap();
    let problems = verify_all(results).unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("kscan.csv"), "{problems:?}");
}
