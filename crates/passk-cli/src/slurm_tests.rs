//! Tests of `crate::slurm`.

use super::*;

const THEORY: &str = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2, 4, 8]\n\
    separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
    feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
    one_step_eta = 0.01\n";

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn layout() -> Layout {
    Layout {
        dir: "/shared/p/target/passk-slurm/x-1".into(),
        workdir: "/shared/p".into(),
        results: "/shared/p/results".into(),
        cache: "/shared/p/target/passk-cache".into(),
        figures: "/shared/p/figures".into(),
        logs: "/shared/p/target/passk-slurm/x-1/logs".into(),
    }
}

#[test]
fn options_parse_and_refuse_what_would_break_the_script() {
    let o = SlurmOptions::parse(&args(&[
        "e.toml",
        "--partition",
        "gpu",
        "--gpus",
        "2",
        "--max-concurrent",
        "4",
        "--dry-run",
    ]))
    .unwrap();
    assert_eq!(o.experiments, vec![PathBuf::from("e.toml")]);
    assert_eq!((o.device(), o.gpus(), o.dry_run), ("cuda", Some(2), true));
    let cuda = SlurmOptions::parse(&args(&["e.toml", "--device", "CUDA"])).unwrap();
    assert_eq!((cuda.device(), cuda.gpus()), ("cuda", Some(1)));
    let cpu = SlurmOptions::parse(&args(&["e.toml"])).unwrap();
    assert_eq!((cpu.device(), cpu.gpus(), cpu.cpus), ("cpu", None, 1));
    for (bad, says) in [
        (&["--dry-run"][..], "<experiment.toml>"),
        (&["e.toml", "--partition", "a b"], "one word"),
        (&["e.toml", "--account", "x'; rm"], "one word"),
        (&["e.toml", "--cpus", "0"], "positive"),
        (&["e.toml", "--gpus", "1", "--device", "cpu"], "--gpus"),
        (&["e.toml", "--device", "tpu"], "cpu|cuda|auto"),
        (&["e.toml", "--nodes", "2"], "unexpected argument '--nodes'"),
        (&["e.toml", "--time"], "a value is required"),
    ] {
        let e = format!("{:#}", SlurmOptions::parse(&args(bad)).unwrap_err());
        assert!(e.contains(says), "{bad:?}: {e}");
    }
}

#[test]
fn tasks_cover_the_missing_cells_only() {
    let dir = tempfile::tempdir().unwrap();
    let exp = crate::config::parse_experiment(THEORY, Path::new("t.toml")).unwrap();
    let results = dir.path().join("results");
    // Run the first cell, so only the other two are missing.
    let first = exp.only(std::slice::from_ref(&exp.cells[0].hash));
    let ctx = crate::tiers::RunContext {
        quiet: true,
        ..Default::default()
    };
    crate::run::run_experiment(&first, &results, &ctx).unwrap();
    let exps = vec![(PathBuf::from("/e/t.toml"), exp.clone())];
    let one = plan(&exps, &results, 1);
    let hashes: Vec<_> = exp.cells[1..].iter().map(|c| c.hash.clone()).collect();
    assert_eq!(
        one,
        vec![
            Task {
                experiment: "/e/t.toml".into(),
                cells: vec![hashes[0].clone()]
            },
            Task {
                experiment: "/e/t.toml".into(),
                cells: vec![hashes[1].clone()]
            }
        ]
    );
    let grouped = plan(&exps, &results, 5);
    assert_eq!(grouped.len(), 1);
    assert_eq!(
        tasks_text(&grouped),
        format!("/e/t.toml {},{}\n", hashes[0], hashes[1])
    );
}

#[test]
fn the_scripts_say_what_they_run() {
    let o = SlurmOptions::parse(&args(&[
        "e.toml",
        "--partition",
        "gpu",
        "--account",
        "lab",
        "--time",
        "01:00:00",
        "--mem",
        "8G",
        "--cpus",
        "4",
        "--gpus",
        "1",
        "--max-concurrent",
        "3",
    ]))
    .unwrap();
    let lay = layout();
    let extra = "#SBATCH --qos=long\n";
    let array = array_script(&o, &lay, "passk-t", 7, extra);
    for line in [
        "#SBATCH --job-name=passk-t",
        "#SBATCH --array=0-6%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --time=01:00:00",
        "#SBATCH --mem=8G",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --requeue",
        "#SBATCH --qos=long",
        "#SBATCH --chdir=/shared/p",
        "#SBATCH --output=/shared/p/target/passk-slurm/x-1/logs/%A_%a.out",
        "--cell \"$cells\" --wait",
        "--results /shared/p/results --cache /shared/p/target/passk-cache --device cuda",
    ] {
        assert!(array.contains(line), "{line} missing from\n{array}");
    }
    // Every #SBATCH line comes before the first command (sbatch stops reading there).
    let first_command = array.find("set -euo").unwrap();
    assert!(array.rfind("#SBATCH").unwrap() < first_command);
    let fin = final_script(&o, &lay, "passk-t", &["/e/a b.toml".into()], extra);
    assert!(fin.contains("#SBATCH --job-name=passk-t-final"));
    assert!(fin.contains("EXPERIMENTS=('/e/a b.toml')"), "{fin}");
    assert!(!fin.contains("--gres") && !fin.contains("--array"));
    assert!(fin.contains("flock 9") && fin.contains("report --results"));
    let submit = submit_script(&lay, 7);
    assert!(
        submit.contains("--dependency=\"$after\" final.sbatch"),
        "{submit}"
    );
    assert!(submit.contains("$(seq 0 6)"), "{submit}");
    let big = submit_script(&lay, PER_TASK_DEPENDENCY_LIMIT + 1);
    assert!(big.contains("after=afterok:$array"), "{big}");
    // The per-task list, as bash expands it.
    let line = dependency_line(3).replace("\"$array\"", "42");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{line}; echo \"$after\""))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "afterok:42_0:42_1:42_2\n"
    );
    let requeue = requeue_script(&lay, 7);
    assert!(
        requeue.contains("scontrol requeue \"${array}_$task\""),
        "{requeue}"
    );
    assert!(requeue.contains("Dependency=\"$after\""), "{requeue}");
}

#[test]
fn quoting_and_extra_lines() {
    assert_eq!(quote("/a/b-c.toml"), "/a/b-c.toml");
    assert_eq!(quote("it's"), "'it'\\''s'");
    assert_eq!(quote(""), "''");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "\n#SBATCH --qos=x\n  # a comment\n").unwrap();
    assert_eq!(read_extra(&good).unwrap(), "#SBATCH --qos=x\n# a comment\n");
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "#SBATCH --qos=x\nmodule load cuda\n").unwrap();
    let e = format!("{:#}", read_extra(&bad).unwrap_err());
    assert!(e.contains(":2:") && e.contains("#SBATCH"), "{e}");
}

#[test]
fn a_dry_run_writes_the_folder_and_submits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("t.toml");
    std::fs::write(&exp, THEORY).unwrap();
    let out = dir.path().join("job");
    let results = dir.path().join("results");
    let code = cmd_slurm(
        &SlurmOptions::parse(&args(&[
            exp.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--dry-run",
        ]))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    for f in [
        "array.sbatch",
        "final.sbatch",
        "submit.sh",
        "requeue.sh",
        "tasks.txt",
        "passk",
        "logs",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("tasks.txt"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert!(!results.exists(), "a dry run runs nothing");
    // The folder is not overwritten.
    let again = cmd_slurm(
        &SlurmOptions::parse(&args(&[
            exp.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]))
        .unwrap(),
    );
    assert!(format!("{:#}", again.unwrap_err()).contains("exists"));
}
