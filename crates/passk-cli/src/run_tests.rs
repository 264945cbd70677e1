//! Tests of `crate::run`.

use super::*;

/// A two-cell theory experiment named `t`.
fn experiment() -> Experiment {
    let text = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2, 4]\n\
        separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
        feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
        one_step_eta = 0.01\n";
    crate::config::parse_experiment(text, Path::new("t.toml")).unwrap()
}

fn quiet() -> RunContext {
    RunContext {
        quiet: true,
        ..Default::default()
    }
}

/// Every entry name directly under `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// A pid no process has now (the highest free one).
fn dead_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (2..max)
        .rev()
        .find(|&p| !passk_train::lock::pid_alive(p))
        .unwrap()
}

#[test]
fn a_cell_another_process_runs_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let exp = experiment();
    let (a, b) = (&exp.cells[0].hash, &exp.cells[1].hash);
    // Another holder (another open of the lock file: to flock, another process).
    let held_path = lock_path(results, "t", a);
    std::fs::create_dir_all(results.join("t")).unwrap();
    let mut held = FileLock::try_acquire(&held_path).unwrap().unwrap();
    held.write_holder().unwrap();
    let stats = run_experiment(&exp, results, &quiet()).unwrap();
    assert_eq!(
        stats,
        RunStats {
            ran: 1,
            cached: 0,
            busy: 1,
            quarantined: 0,
            ..RunStats::default()
        }
    );
    assert!(!is_done(results, "t", a) && is_done(results, "t", b));
    assert!(held_path.is_file(), "only its holder removes a lock file");
    assert!(
        !lock_path(results, "t", b).exists(),
        "a finished cell's lock"
    );
    // Once the holder is gone the cell runs, and no lock file is left.
    drop(held);
    let stats = run_experiment(&exp, results, &quiet()).unwrap();
    assert_eq!(
        stats,
        RunStats {
            ran: 1,
            cached: 1,
            busy: 0,
            quarantined: 0,
            ..RunStats::default()
        }
    );
    let mut cells = vec![a.clone(), b.clone()];
    cells.sort();
    assert_eq!(names(&results.join("t")), cells);
}

#[test]
fn a_cell_being_run_is_not_copied_by_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment();
    let baseline = dir.path().join("baseline");
    run_experiment(&exp, &baseline, &quiet()).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("t")).unwrap();
    let held = FileLock::try_acquire(&lock_path(&out, "t", &exp.cells[0].hash))
        .unwrap()
        .unwrap();
    assert_eq!(reuse_cells(&exp, &baseline, &out, false).unwrap(), 1);
    assert!(!is_done(&out, "t", &exp.cells[0].hash));
    drop(held);
    assert_eq!(reuse_cells(&exp, &baseline, &out, false).unwrap(), 1);
    assert_eq!(names(&out.join("t")).len(), 2, "no lock file is left");
}

#[test]
fn orphans_are_removed_only_from_finished_cells_nobody_holds() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let exp = experiment();
    let (done, todo) = (&exp.cells[0].hash, &exp.cells[1].hash);
    let t = results.join("t");
    let write = |rel: &str| {
        let path = t.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"x").unwrap();
    };
    let (dead, me) = (dead_pid(), std::process::id());
    write(&format!("{done}/cell.json"));
    write(&format!("{done}/eval.csv"));
    write(&format!("{done}/.keep"));
    write(&format!("{done}/.eval.csv.tmp-{dead}-0"));
    write(&format!("{done}/.summary.json.{dead}.tmp"));
    write(&format!("{done}/probe-00000000/.gram.f32.{dead}-3.tmp"));
    write(&format!("{done}/.train_log.csv.{me}-1.tmp")); // its writer runs
    write(&format!(".tmp-{done}/eval.csv")); // a finished cell's leftover
    write(&format!(".tmp-{todo}/checkpoint.json")); // a checkpoint to resume
    write(&format!(".{todo}.copy/eval.csv")); // a killed `--reuse` copy
    write(&format!(".{done}.copy/eval.csv"));
    write(".tmp-0123456789abcdef/eval.csv"); // a cell no longer listed
    write(&format!(".lock-{done}"));
    write(&format!(".lock-{todo}"));

    // A finished cell whose lock is held keeps its temporary.
    let held = FileLock::try_acquire(&lock_path(results, "t", done))
        .unwrap()
        .unwrap();
    let removed = remove_orphans(&exp, results).unwrap();
    assert!(t.join(format!(".tmp-{done}")).is_dir());
    assert!(!t.join(".tmp-0123456789abcdef").exists());
    assert_eq!(removed.len(), 5, "{removed:?}");
    assert!(t.join(format!(".{done}.copy")).is_dir(), "its lock is held");
    drop(held);

    let removed = remove_orphans(&exp, results).unwrap();
    assert_eq!(
        removed,
        vec![
            t.join(format!(".{done}.copy")),
            t.join(format!(".tmp-{done}"))
        ]
    );
    // (The free lock file of the unfinished cell went with its copy staging.)
    let mut left = vec![done.clone(), format!(".tmp-{todo}")];
    left.sort();
    assert_eq!(names(&t), left);
    assert!(t.join(format!(".tmp-{todo}/checkpoint.json")).is_file());
    assert_eq!(
        names(&t.join(done)),
        [
            ".keep".to_string(),
            format!(".train_log.csv.{me}-1.tmp"),
            "cell.json".into(),
            "eval.csv".into(),
            "probe-00000000".into(),
        ]
    );
    assert!(names(&t.join(done).join("probe-00000000")).is_empty());

    // A shard leaves unlisted temporaries alone: another shard may own them.
    write(".tmp-0123456789abcdef/eval.csv");
    remove_orphans(&exp.shard(1, 2), results).unwrap();
    assert!(t.join(".tmp-0123456789abcdef").is_dir());
}

#[test]
fn lock_files_are_neither_listed_nor_stale() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let exp = experiment();
    run_experiment(&exp, results, &quiet()).unwrap();
    let t = results.join("t");
    let _held = FileLock::try_acquire(&t.join(".lock-0123456789abcdef"))
        .unwrap()
        .unwrap();
    let _other = FileLock::try_acquire(&lock_path(results, "t", &exp.cells[0].hash))
        .unwrap()
        .unwrap();
    assert!(stale_cells(&exp, results).unwrap().is_empty());
    let n = passk_report::manifest::write_manifest(results).unwrap();
    let manifest = std::fs::read_to_string(results.join("MANIFEST")).unwrap();
    assert!(!manifest.contains(".lock-"), "{manifest}");
    assert_eq!(n, manifest.lines().count());
    assert!(passk_report::manifest::verify_manifest(results).is_empty());
}

#[test]
fn a_waiting_run_takes_over_once_the_holder_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().to_path_buf();
    let exp = experiment();
    let a = exp.cells[0].hash.clone();
    std::fs::create_dir_all(results.join("t")).unwrap();
    // The holder: another open of the lock file (to flock, another process), as a killed
    // Slurm task's ghost would hold it.
    let held = FileLock::try_acquire(&lock_path(&results, "t", &a))
        .unwrap()
        .unwrap();
    let (r, e) = (results.clone(), exp.clone());
    let waiter = std::thread::spawn(move || run_experiment_with(&e, &r, &quiet(), Busy::Wait));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "the waiter did not wait for the lock"
    );
    assert!(!is_done(&results, "t", &a));
    drop(held);
    let stats = waiter.join().unwrap().unwrap();
    assert_eq!(
        stats,
        RunStats {
            ran: 2,
            cached: 0,
            busy: 0,
            quarantined: 0,
            ..RunStats::default()
        }
    );
    assert!(is_done(&results, "t", &a));
    // A waiter that finds the cell finished by its holder counts it done and runs nothing.
    let again = FileLock::try_acquire(&lock_path(&results, "t", &a))
        .unwrap()
        .unwrap();
    drop(again);
    let stats = run_experiment_with(&exp, &results, &quiet(), Busy::Wait).unwrap();
    assert_eq!((stats.ran, stats.cached, stats.busy), (0, 2, 0));
}

/// Rewrites the code fingerprint in the record of the cell directory `dir`, as if another
/// build (`Some`) or one from before fingerprints (`None`) had computed it.
fn set_code(dir: &Path, code: Option<&str>) {
    let path = dir.join(passk_schema::cell::RECORD_FILE);
    let mut record: passk_schema::cell::CompletionRecord =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record.code = code.map(String::from);
    write_json(&path, &record).unwrap();
}

fn record_code(dir: &Path) -> Option<String> {
    let path = dir.join(passk_schema::cell::RECORD_FILE);
    let record: passk_schema::cell::CompletionRecord =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record.code
}

#[test]
fn cells_of_other_code_are_kept_with_a_warning_and_rerun_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    let exp = experiment();
    run_experiment(&exp, results, &quiet()).unwrap();
    let (a, b) = (
        cell_dir(results, "t", &exp.cells[0].hash),
        cell_dir(results, "t", &exp.cells[1].hash),
    );
    let now = crate::provenance::code_fingerprint("theory").map(String::from);
    assert_eq!(record_code(&a), now, "a run records this build's code");
    let files_b = std::fs::read(b.join("kscan.csv")).unwrap();
    // "The objective's code was edited": cell a by another build, b from before fingerprints.
    set_code(&a, Some("00ff"));
    set_code(&b, None);
    let kept = run_experiment(&exp, results, &quiet()).unwrap();
    assert_eq!(
        (kept.ran, kept.cached, kept.stale_code, kept.unknown_code),
        (0, 2, 1, 1)
    );
    assert_eq!(record_code(&a).as_deref(), Some("00ff"), "kept, not rerun");
    // The copy `compare` makes: a cell of other code is never copied (it reruns), one of
    // unknown code only without --force.
    let out = dir.path().join("out");
    assert_eq!(reuse_cells(&exp, results, &out, true).unwrap(), 0);
    assert_eq!(reuse_cells(&exp, results, &out, false).unwrap(), 1);
    assert!(is_done(&out, "t", &exp.cells[1].hash) && !is_done(&out, "t", &exp.cells[0].hash));
    // --force reruns both; the new records name this build, the numbers are the same.
    let force = RunContext {
        force: true,
        ..quiet()
    };
    let rerun = run_experiment(&exp, results, &force).unwrap();
    assert_eq!((rerun.ran, rerun.forced, rerun.cached), (2, 2, 0));
    assert_eq!(record_code(&a), now);
    assert_eq!(record_code(&b), now);
    assert!(is_done(results, "t", &exp.cells[1].hash));
    assert_eq!(std::fs::read(b.join("kscan.csv")).unwrap(), files_b);
    // Cells of this build are never rerun, even with --force.
    let again = run_experiment(&exp, results, &force).unwrap();
    assert_eq!((again.ran, again.cached), (0, 2));
}
