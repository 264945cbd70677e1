//! The pipeline end to end on the exact tier: run, cache, report, manifest, verify, bad input.

use std::process::ExitCode;

use passk_e2e::{repo_experiment, Scratch, SMALL_THEORY};

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir` with its bytes, sorted by relative path.
fn contents_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn run_is_cached_verified_and_detects_one_changed_byte() {
    let s = Scratch::new();
    let exp = s.write("experiments/theory.toml", SMALL_THEORY);
    let exp = exp.to_str().unwrap();
    assert_eq!(s.passk(&["run", exp]).unwrap(), ExitCode::SUCCESS);
    let cells: Vec<_> = std::fs::read_dir(s.path("results/theory"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cells.len(), 4, "2 separations x 2 k");
    for cell in &cells {
        for f in [
            "cell.json",
            "kscan.csv",
            "prompts.csv",
            "trajectory.csv",
            "summary.json",
        ] {
            assert!(cell.join(f).is_file(), "{} lacks {f}", cell.display());
        }
    }
    assert_eq!(s.passk(&["report"]).unwrap(), ExitCode::SUCCESS);
    let before = files_under(&s.path("results"));
    let mtimes: Vec<_> = cells
        .iter()
        .map(|c| {
            std::fs::metadata(c.join("summary.json"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();

    // A second run does no work: same files, untouched.
    assert_eq!(s.passk(&["run", exp]).unwrap(), ExitCode::SUCCESS);
    assert_eq!(files_under(&s.path("results")), before);
    for (c, m) in cells.iter().zip(&mtimes) {
        assert_eq!(
            std::fs::metadata(c.join("summary.json"))
                .unwrap()
                .modified()
                .unwrap(),
            *m
        );
    }

    assert_eq!(s.passk(&["verify"]).unwrap(), ExitCode::SUCCESS);
    let target = cells[0].join("kscan.csv");
    let mut bytes = std::fs::read(&target).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'1' { b'2' } else { b'1' };
    std::fs::write(&target, &bytes).unwrap();
    assert_eq!(s.passk(&["verify"]).unwrap(), ExitCode::from(1));
}

#[test]
fn figures_are_a_pure_function_of_results() {
    let s = Scratch::new();
    let exp = s.write("experiments/theory.toml", SMALL_THEORY);
    s.passk(&["run", exp.to_str().unwrap()]).unwrap();
    s.passk(&["report"]).unwrap();
    let first = contents_under(&s.path("figures"));
    assert!(first.iter().any(|(f, _)| f.ends_with(".png")));
    assert!(first.iter().any(|(f, _)| f.ends_with(".svg")));
    s.passk(&["report"]).unwrap();
    let second = contents_under(&s.path("figures"));
    assert_eq!(first, second);
    // A hand-made file in figures/ is reported by verify.
    s.write("figures/theory/extra.txt", "x");
    s.passk(&["manifest"]).unwrap();
    assert_eq!(s.passk(&["verify"]).unwrap(), ExitCode::from(1));
}

#[test]
fn killed_run_leaves_no_complete_looking_cell_and_resumes() {
    let s = Scratch::new();
    let exp = s.write("experiments/theory.toml", SMALL_THEORY);
    // Simulate a kill mid-cell: a temporary directory with a partial file.
    s.write("results/theory/.tmp-0123456789abcdef/kscan.csv", "k,inn");
    // And a listed cell killed half-way: its temporary holds a truncated file.
    let first = passk_cli::config::load_experiment(&exp).unwrap().cells[0]
        .hash
        .clone();
    s.write(&format!("results/theory/.tmp-{first}/kscan.csv"), "k,inn");
    s.passk(&["run", exp.to_str().unwrap()]).unwrap();
    assert!(!s.path("results/theory/.tmp-0123456789abcdef").exists());
    assert!(!s.path(&format!("results/theory/.tmp-{first}")).exists());
    assert_eq!(
        std::fs::read_dir(s.path("results/theory")).unwrap().count(),
        4
    );

    // The resumed cell equals one computed without interruption.
    let clean = Scratch::new();
    let exp2 = clean.write("experiments/theory.toml", SMALL_THEORY);
    clean.passk(&["run", exp2.to_str().unwrap()]).unwrap();
    for f in [
        "kscan.csv",
        "prompts.csv",
        "trajectory.csv",
        "summary.json",
        "cell.json",
    ] {
        let rel = format!("results/theory/{first}/{f}");
        assert_eq!(
            std::fs::read(s.path(&rel)).unwrap(),
            std::fs::read(clean.path(&rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn bad_input_names_file_and_key_and_writes_nothing() {
    let cases = [
        ("k = [4, 8]", "k = [0, 8]", "k"),
        ("p_hard = [0.2]", "p_hard = [1.2]", "p_hard"),
        ("seed = [0]", "seed = []", "empty"),
        ("lr = 1.0", "lr = 1.0\nlearning_rate = 2.0", "learning_rate"),
        ("[matrix]", "[matrix\n", "malformed"),
    ];
    for (from, to, needle) in cases {
        let s = Scratch::new();
        let exp = s.write("experiments/bad.toml", &SMALL_THEORY.replace(from, to));
        let err = s.passk(&["run", exp.to_str().unwrap()]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("bad.toml"), "{msg}");
        assert!(msg.contains(needle), "expected {needle:?} in {msg}");
        assert!(
            files_under(&s.path("results")).is_empty(),
            "wrote files for {to}"
        );
    }
}

#[test]
fn claims_pass_on_the_toy_and_fail_when_the_threshold_is_wrong() {
    let s = Scratch::new();
    let exp = s.write("experiments/theory.toml", SMALL_THEORY);
    s.passk(&["run", exp.to_str().unwrap()]).unwrap();
    let claims = r#"
gate = []

[[claim]]
name = "conflict at low separation"
experiment = "theory"
select = { separation = 0.5 }
statistic = "fraction_with_kstar"
op = ">="
threshold = 1.0
why = "test"

[[claim]]
name = "pass@k ascent lowers J_1 at low separation"
experiment = "theory"
select = { separation = 0.5 }
statistic = "max_passk_delta_j1"
op = "<"
threshold = 0.0
why = "test"

[[claim]]
name = "no conflict at high separation"
experiment = "theory"
select = { separation = 6.0 }
statistic = "fraction_with_kstar"
op = "<="
threshold = 0.0
why = "test"
"#;
    let path = s.write("experiments/claims.toml", claims);
    let path = path.to_str().unwrap();
    assert_eq!(
        s.passk(&["check", "--claims", path]).unwrap(),
        ExitCode::SUCCESS
    );
    // The same statistic with the control's cells must fail the interference claim.
    let wrong = claims.replacen(
        "select = { separation = 0.5 }",
        "select = { separation = 6.0 }",
        1,
    );
    let path = s.write("experiments/wrong.toml", &wrong);
    assert_eq!(
        s.passk(&["check", "--claims", path.to_str().unwrap()])
            .unwrap(),
        ExitCode::from(1)
    );
}

#[test]
fn tiny_smoke_runs_reports_and_leaves_only_results() {
    let s = Scratch::new();
    let exp = s.write(
        "experiments/tiny-smoke.toml",
        &repo_experiment("tiny-smoke.toml"),
    );
    let exp = exp.to_str().unwrap();
    assert_eq!(s.passk(&["run", exp]).unwrap(), ExitCode::SUCCESS);
    let files = files_under(&s.path("results/tiny-smoke"));
    assert_eq!(files.iter().filter(|f| f.ends_with("cell.json")).count(), 4);
    assert!(
        files
            .iter()
            .all(|f| !f.contains("ckpt-") && !f.contains("checkpoint")),
        "{files:?}"
    );
    // Every cell probed its gradients at the warm start and later.
    assert_eq!(
        files.iter().filter(|f| f.ends_with("summary.csv")).count(),
        4 * 3,
        "probes at steps 0, 2 and 4: {files:?}"
    );
    // Warm starts are cached outside results/ and shared by the cells of one q; their first
    // stage (reliable tag) is shared by both q.
    let cached = files_under(&s.path("cache"));
    let count = |prefix: &str| {
        cached
            .iter()
            .filter(|f| f.starts_with(prefix) && f.ends_with(".safetensors"))
            .count()
    };
    assert_eq!(count("sft-"), 2, "{cached:?}");
    assert_eq!(count("sft1-"), 2, "stage-1 model and optimiser: {cached:?}");
    assert_eq!(s.passk(&["report"]).unwrap(), ExitCode::SUCCESS);
    assert!(s.path("figures/tiny-smoke/delta_vs_q.png").is_file());
    assert!(s.path("figures/tiny-smoke/deltas.md").is_file());
    assert!(s
        .path("figures/tiny-smoke/probe_sign_prediction.md")
        .is_file());
    let before = files_under(&s.path("results"));
    assert_eq!(s.passk(&["run", exp]).unwrap(), ExitCode::SUCCESS);
    assert_eq!(files_under(&s.path("results")), before);
    assert_eq!(s.passk(&["verify"]).unwrap(), ExitCode::SUCCESS);

    // Tiny claims read the same cells: a change of pass@1 lies in [-1, 1]; a t-interval
    // over one seed cannot be formed, so a claim on it fails loudly.
    let claim = |statistic: &str, op: &str, threshold: f64| {
        format!(
            "gate = []\n[[claim]]\nname = \"c\"\nexperiment = \"tiny-smoke\"\n\
             select = {{ \"rl.objective\" = \"pass1_rloo\", \"mixture.cue_reliability\" = 1.0 }}\nstatistic = \"{statistic}\"\n\
             op = \"{op}\"\nthreshold = {threshold:?}\nwhy = \"test\"\n"
        )
    };
    let check = |text: String| {
        let path = s.write("experiments/claims.toml", &text);
        s.passk(&["check", "--claims", path.to_str().unwrap()])
            .unwrap()
    };
    assert_eq!(
        check(claim("tiny_delta_pass1_mean", "<=", 1.0)),
        ExitCode::SUCCESS
    );
    assert_eq!(
        check(claim("tiny_delta_pass1_mean", ">", 1.0)),
        ExitCode::from(1)
    );
    assert_eq!(
        check(claim("tiny_delta_pass1_ci_high", "<", 1.0)),
        ExitCode::from(1)
    );
}

#[test]
fn tiny_config_errors_name_the_key() {
    let s = Scratch::new();
    let text = repo_experiment("tiny-smoke.toml")
        .replace("samples_per_prompt = 8", "samples_per_prompt = 2");
    let exp = s.write("experiments/bad.toml", &text);
    let msg = format!(
        "{:#}",
        s.passk(&["run", exp.to_str().unwrap()]).unwrap_err()
    );
    assert!(msg.contains("bad.toml"), "{msg}");
    assert!(
        msg.contains("rl.objective") && msg.contains("k <= n"),
        "{msg}"
    );
    assert!(files_under(&s.path("results")).is_empty());
}

#[test]
fn committed_theory_results_match_the_experiment_file() {
    // A cell's directory is named by the hash of its config: if hashing or the experiment file
    // changed without a rerun, the committed results would silently stop being used.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let exp = passk_cli::config::load_experiment(&root.join("experiments/theory.toml")).unwrap();
    for cell in &exp.cells {
        let dir = root.join("results/theory").join(&cell.hash);
        assert!(
            dir.join("cell.json").is_file(),
            "no committed cell {}",
            dir.display()
        );
    }
    let committed = std::fs::read_dir(root.join("results/theory"))
        .unwrap()
        .count();
    assert_eq!(
        committed,
        exp.cells.len(),
        "results/theory holds cells the file no longer lists"
    );
}

#[test]
fn tiny_mixture_defaults_must_be_explicit() {
    let s = Scratch::new();
    let text = repo_experiment("tiny-smoke.toml").replace("reversed_share = 0.1\n", "");
    let exp = s.write("experiments/implicit.toml", &text);
    let msg = format!(
        "{:#}",
        s.passk(&["run", exp.to_str().unwrap()]).unwrap_err()
    );
    assert!(msg.contains("mixture.reversed_share"), "{msg}");
}

#[test]
fn shards_together_run_every_cell_once() {
    let s = Scratch::new();
    let exp = s.write("experiments/theory.toml", SMALL_THEORY);
    let exp = exp.to_str().unwrap();
    for shard in ["1/3", "2/3", "3/3"] {
        assert_eq!(
            s.passk(&["run", exp, "--shard", shard]).unwrap(),
            ExitCode::SUCCESS
        );
    }
    assert_eq!(
        std::fs::read_dir(s.path("results/theory")).unwrap().count(),
        4
    );
    assert!(s.passk(&["run", exp, "--shard", "4/3"]).is_err());
    assert_eq!(
        s.passk(&["verify"]).unwrap(),
        ExitCode::from(1),
        "figures not yet rendered"
    );
    s.passk(&["report"]).unwrap();
    assert_eq!(s.passk(&["verify"]).unwrap(), ExitCode::SUCCESS);
}

#[test]
fn stray_file_arguments_are_rejected_not_ignored() {
    let s = Scratch::new();
    let msg = format!(
        "{:#}",
        s.passk(&["check", "experiments/claims.toml"]).unwrap_err()
    );
    assert!(msg.contains("--claims"), "{msg}");
}

#[test]
fn compare_runs_a_new_objective_beside_the_committed_baseline() {
    let s = Scratch::new();
    let exp = s.write(
        "experiments/tiny-smoke.toml",
        &repo_experiment("tiny-smoke.toml"),
    );
    let exp = exp.to_str().unwrap();
    assert_eq!(s.passk(&["run", exp]).unwrap(), ExitCode::SUCCESS);
    let out = s.path("compare");
    let out_arg = out.to_str().unwrap();
    let code = s
        .passk(&[
            "compare",
            exp,
            "--objective",
            "pkpo_loo_minus_one:k=2",
            "--out",
            out_arg,
        ])
        .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    let table = std::fs::read_to_string(out.join("compare.md")).unwrap();
    // Per q: the two baseline objectives and the new one.
    assert_eq!(table.matches("k=2 (new) |").count(), 2, "{table}");
    assert_eq!(table.matches("| pass1\\_rloo |").count(), 2, "{table}");
    assert!(table.contains("end cos"), "{table}");
    // The CSV holds the intervals' bounds as numbers, like the report's deltas.csv.
    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().contains("Δ pass@1 ci_low"),
        "{csv}"
    );
    assert!(!csv.contains('['), "{csv}");
    assert!(out.join("compare_tradeoff.svg").is_file());
    assert!(out.join("compare_tradeoff.png").is_file());
    // The new cells live under --out, not in results/.
    assert!(!s.path("results/tiny-smoke-compare").exists());
    assert_eq!(
        files_under(&out.join("tiny-smoke-compare"))
            .iter()
            .filter(|f| f.ends_with("cell.json"))
            .count(),
        2
    );
    // An unknown objective is refused before anything runs.
    assert!(s
        .passk(&["compare", exp, "--objective", "nope", "--out", out_arg])
        .is_err());
}
