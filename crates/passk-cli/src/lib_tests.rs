//! Tests of `crate`.

use std::path::Path;

use super::*;

const THEORY: &str = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2]\n\
    separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
    feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
    one_step_eta = 0.01\n";

fn cli(args: &[&str]) -> Result<ExitCode> {
    run_cli(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn an_unknown_device_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY).unwrap();
    let results = dir.path().join("results");
    let (exp, res) = (exp.to_str().unwrap(), results.to_str().unwrap());
    for command in [
        vec!["run", exp, "--results", res, "--device", "banana"],
        vec!["compare", exp, "--objective", "x", "--device", "banana"],
    ] {
        let e = format!("{:#}", cli(&command).unwrap_err());
        assert!(e.contains("banana") && e.contains("cpu|cuda|auto"), "{e}");
    }
    assert!(!results.exists(), "nothing ran");
    assert_eq!(cli::parse_device("CUDA").unwrap().to_string(), "cuda");
    assert_eq!(cli::parse_device("auto").unwrap().to_string(), "auto");
}

#[test]
fn a_run_with_nothing_to_do_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY).unwrap();
    let results = dir.path().join("results");
    let args = [
        "run",
        exp.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
    ];
    assert_eq!(cli(&args).unwrap(), ExitCode::SUCCESS);
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("ENVIRONMENT.json")).unwrap()).unwrap();
    assert_eq!(env["device"], "cpu");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    let written = ["MANIFEST", "ENVIRONMENT.json"];
    for f in written {
        std::fs::File::options()
            .write(true)
            .open(results.join(f))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // Read-only results (this binds only when the tests do not run as root).
    #[cfg(unix)]
    let set_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&results, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    #[cfg(unix)]
    set_mode(0o555);
    let second = cli(&args);
    #[cfg(unix)]
    set_mode(0o755);
    assert_eq!(second.unwrap(), ExitCode::SUCCESS);
    for f in written {
        let modified = std::fs::metadata(results.join(f))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, old, "{f} was rewritten");
    }
    assert!(passk_report::manifest::verify_manifest(&results).is_empty());
}

#[test]
fn a_run_that_skips_a_cell_another_process_runs_exits_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY).unwrap();
    let results = dir.path().join("results");
    let hash = config::load_experiment(&exp).unwrap().cells[0].hash.clone();
    std::fs::create_dir_all(results.join("t")).unwrap();
    let lock = run::lock_path(&results, "t", &hash);
    let held = passk_train::FileLock::try_acquire(&lock).unwrap().unwrap();
    let args = [
        "run",
        exp.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
        "--strict",
    ];
    assert_eq!(cli(&args).unwrap(), ExitCode::from(RUN_INCOMPLETE));
    assert!(!run::is_done(&results, "t", &hash));
    drop(held);
    // --wait: a process another test thread forks just then holds a copy of the lock's file
    // descriptor until it execs (flock belongs to the open file), which can keep the lock
    // taken for a moment after the drop; a skipping run would exit 3 on that.
    let mut wait = args.to_vec();
    wait.push("--wait");
    assert_eq!(cli(&wait).unwrap(), ExitCode::SUCCESS);
    assert!(run::is_done(&results, "t", &hash) && !lock.exists());
    let strict = |args: &[&str]| match parse(args).command {
        Command::Run(a) => a.strict,
        other => panic!("{other:?}"),
    };
    assert!(strict(&["run", "e.toml", "--strict"]) && !strict(&["run", "e.toml"]));
}

#[test]
fn report_refuses_a_foreign_file_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let figures = dir.path().join("figures");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::create_dir_all(&figures).unwrap();
    std::fs::write(figures.join("keep.txt"), "mine").unwrap();
    let (res, fig) = (results.to_str().unwrap(), figures.to_str().unwrap());
    let e = format!(
        "{:#}",
        cli(&["report", "--results", res, "--figures", fig, "--quiet"]).unwrap_err()
    );
    assert!(e.contains("keep.txt") && e.contains("--force"), "{e}");
    assert!(figures.join("keep.txt").is_file());
    let forced = [
        "report",
        "--results",
        res,
        "--figures",
        fig,
        "--quiet",
        "--force",
    ];
    assert_eq!(cli(&forced).unwrap(), ExitCode::SUCCESS);
    assert!(!figures.join("keep.txt").exists());
    assert!(figures.join(figures::OUTPUTS).is_file());
}

#[test]
fn sizes_a_machine_cannot_hold_are_refused_naming_the_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let tiny = std::fs::read_to_string(root.join("tiny-smoke.toml")).unwrap();
    let theory = std::fs::read_to_string(root.join("theory.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    for (base, from, to, key) in [
        (
            &tiny,
            "samples_per_prompt = 8",
            "samples_per_prompt = 100000000",
            "rl.samples_per_prompt",
        ),
        (
            &tiny,
            "prompts_per_step = 4",
            "prompts_per_step = 1000000",
            "rl.prompts_per_step",
        ),
        (&tiny, "\nsteps = 4", "\nsteps = 1000000000000", "rl.steps"),
        (
            &tiny,
            "stage1_steps = 6",
            "stage1_steps = 1000000000000",
            "sft.stage1_steps",
        ),
        (
            &tiny,
            "n_samples = 8",
            "n_samples = 100000000",
            "eval.n_samples",
        ),
        (&theory, "steps = 300", "steps = 1000000000000", "`steps`"),
    ] {
        assert!(base.contains(from), "{from}");
        let exp = dir.path().join("e.toml");
        std::fs::write(&exp, base.replacen(from, to, 1)).unwrap();
        let args = ["run", exp.to_str().unwrap(), "--results"];
        let mut args: Vec<&str> = args.to_vec();
        args.push(results.to_str().unwrap());
        let e = format!("{:#}", cli(&args).unwrap_err());
        assert!(e.contains(key) && e.contains("GiB"), "{to}: {e}");
        assert!(!results.exists(), "{to}: nothing ran");
    }
}

/// `passk ARGS...` parsed, or a panic with clap's message.
fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("passk").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn on_corrupt_takes_rerun_or_stop_and_seal_takes_no_files() {
    let on_corrupt = |args: &[&str]| match parse(args).command {
        Command::Run(a) => a.on_corrupt.on_corrupt,
        other => panic!("{other:?}"),
    };
    let stop = on_corrupt(&["run", "e.toml", "--on-corrupt", "stop"]);
    assert_eq!(stop, record::OnCorrupt::Stop);
    assert_eq!(on_corrupt(&["run", "e.toml"]), record::OnCorrupt::Rerun);
    let e = format!(
        "{:#}",
        cli(&["run", "e.toml", "--on-corrupt", "ignore"]).unwrap_err()
    );
    assert!(e.contains("rerun") && e.contains("stop"), "{e}");
    assert!(cli(&["seal", "x.toml"]).is_err());
}

#[test]
fn each_command_has_its_own_help_and_the_binary_a_version() {
    for help in [
        &["run", "--help"][..],
        &["help", "check"],
        &["verify", "-h"],
        &["--version"],
        &["--help"],
    ] {
        assert_eq!(cli(help).unwrap(), ExitCode::SUCCESS, "{help:?}");
    }
    assert!(cli(&["nonsense", "--help"]).is_err());
    assert!(cli(&[]).is_err(), "no command is a usage error");
}

#[test]
fn run_cell_runs_only_the_named_cells_and_leaves_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY.replace("k = [2]", "k = [2, 4, 8]")).unwrap();
    let results = dir.path().join("results");
    let (exp, res) = (exp.to_str().unwrap(), results.to_str().unwrap());
    let all = config::load_experiment(Path::new(exp)).unwrap();
    let hashes: Vec<&str> = all.cells.iter().map(|c| c.hash.as_str()).collect();
    let picked = format!("{},{}", hashes[0], hashes[2].to_uppercase());
    let args = ["run", exp, "--results", res, "--quiet", "--wait", "--cell"];
    let mut with_cell = args.to_vec();
    with_cell.push(&picked);
    assert_eq!(cli(&with_cell).unwrap(), ExitCode::SUCCESS);
    let done = |h: &str| run::is_done(&results, "t", h);
    assert!(done(hashes[0]) && !done(hashes[1]) && done(hashes[2]));
    assert!(
        !results.join("MANIFEST").exists() && !results.join("ENVIRONMENT.json").exists(),
        "--cell leaves the manifest to a later run"
    );
    let mut unknown = args.to_vec();
    unknown.push("00000000deadbeef");
    let e = format!("{:#}", cli(&unknown).unwrap_err());
    assert!(
        e.contains("00000000deadbeef") && e.contains("passk list"),
        "{e}"
    );
    let mut bad = args.to_vec();
    bad.push("not-a-hash");
    assert!(cli(&bad).is_err());
    // --prune deletes cells the matrix lost, never the ones --cell left out.
    let mut prune = args[..5].to_vec();
    prune.extend(["--prune", "--cell", hashes[1]]);
    assert_eq!(cli(&prune).unwrap(), ExitCode::SUCCESS);
    assert!(done(hashes[0]) && done(hashes[1]) && done(hashes[2]));
    // A plain run does the rest and writes the manifest.
    assert_eq!(cli(&args[..5]).unwrap(), ExitCode::SUCCESS);
    assert!(done(hashes[1]) && results.join("MANIFEST").is_file());
}

#[test]
fn check_skips_claims_whose_experiment_is_absent_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.toml");
    std::fs::write(
        &claims,
        "gate = []\n[[claim]]\nname = \"g.gap\"\nexperiment = \"gate_only\"\n\
         statistic = \"max_identity_gap\"\nop = \"<\"\nthreshold = 1e-9\nwhy = \"w\"\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let base = [
        "check",
        "--claims",
        claims.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    assert_eq!(cli(&base).unwrap(), ExitCode::SUCCESS, "not evaluated");
    let strict: Vec<&str> = base.iter().copied().chain(["--strict"]).collect();
    assert_eq!(cli(&strict).unwrap(), ExitCode::from(1), "--strict: fails");
    // Present but empty: evaluated, and it fails without --strict too.
    std::fs::create_dir_all(results.join("gate_only")).unwrap();
    assert_eq!(cli(&base).unwrap(), ExitCode::from(1));
}

#[test]
fn check_experiment_refuses_a_name_no_claim_reads() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.toml");
    std::fs::write(
        &claims,
        "gate = []\n[[claim]]\nname = \"t.a\"\nexperiment = \"theory\"\n\
         statistic = \"max_identity_gap\"\nop = \"<\"\nthreshold = 1e-6\nwhy = \"w\"\n",
    )
    .unwrap();
    let c = claims.to_str().unwrap();
    let e = format!(
        "{:#}",
        cli(&["check", "--claims", c, "--experiment", "smoke", "--json"]).unwrap_err()
    );
    assert!(e.contains("no claim reads experiment \"smoke\""), "{e}");
    // The claim of `theory` is evaluated (its results are absent: not evaluated, which --strict
    // makes a failure, as without --json).
    let res = dir.path().join("none");
    let r = res.to_str().unwrap();
    let args = [
        "check",
        "--claims",
        c,
        "--results",
        r,
        "--experiment",
        "theory",
        "--json",
    ];
    assert_eq!(cli(&args).unwrap(), ExitCode::SUCCESS);
    let strict = [&args[..], &["--strict"]].concat();
    assert_eq!(cli(&strict).unwrap(), ExitCode::from(1));
}

#[test]
fn the_run_that_approves_cells_of_cell_runs_writes_their_environment() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY).unwrap();
    let results = dir.path().join("results");
    let (exp_s, res) = (exp.to_str().unwrap(), results.to_str().unwrap());
    let plain = ["run", exp_s, "--results", res, "--quiet"];
    assert_eq!(cli(&plain).unwrap(), ExitCode::SUCCESS);
    // An environment MANIFEST lists as it is, which a run with nothing new leaves alone.
    let env = results.join("ENVIRONMENT.json");
    std::fs::write(&env, "{}").unwrap();
    assert_eq!(
        cli(&["manifest", "--results", res, "--quiet"]).unwrap(),
        ExitCode::SUCCESS
    );
    assert_eq!(cli(&plain).unwrap(), ExitCode::SUCCESS);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), "{}");
    // A cell run alone (`--cell`, as Slurm tasks do), then approved by a plain run: that run
    // writes the environment of the build that made it.
    std::fs::write(&exp, THEORY.replace("k = [2]", "k = [2, 4]")).unwrap();
    let all = config::load_experiment(&exp).unwrap();
    let new = all
        .cells
        .iter()
        .map(|c| c.hash.as_str())
        .find(|h| !run::is_done(&results, "t", h))
        .expect("a new cell");
    let cell = ["run", exp_s, "--results", res, "--quiet", "--cell", new];
    assert_eq!(cli(&cell).unwrap(), ExitCode::SUCCESS);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), "{}");
    assert_eq!(cli(&plain).unwrap(), ExitCode::SUCCESS);
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&env).unwrap()).unwrap();
    assert!(written.get("code_fingerprints").is_some(), "{written}");
}
