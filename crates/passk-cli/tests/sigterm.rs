//! Preemption: `passk run` stopped by SIGTERM (what Slurm sends on `scancel`, preemption and the
//! time limit) exits 143 after finishing the write in progress, leaves no temporary of its own,
//! and the next run resumes the cell from its last checkpoint.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// tiny-smoke with a long RL phase (a few seconds), checkpointed every 20 steps.
fn long_experiment(dir: &Path) -> PathBuf {
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/tiny-smoke.toml");
    let text = std::fs::read_to_string(smoke).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = match line {
            "name = \"tiny-smoke\"" => "name = \"tiny-long\"",
            "checkpoint_every = 2" => "checkpoint_every = 20",
            "steps = 4" => "steps = 2000",
            "every = 2" => "every = 1000",
            l if l.starts_with("\"rl.objective\"") => "\"rl.objective\" = [\"pass1_rloo\"]",
            l if l.starts_with("\"mixture.cue_reliability\"") => {
                "\"mixture.cue_reliability\" = [0.75]"
            }
            l => l,
        };
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        out.contains("steps = 2000") && out.contains("[0.75]"),
        "{out}"
    );
    let path = dir.join("tiny-long.toml");
    std::fs::write(&path, out).unwrap();
    path
}

/// Every file name under `dir` (recursively).
fn all_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn passk(exp: &Path, results: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passk"));
    cmd.arg("run")
        .arg(exp)
        .arg("--results")
        .arg(results)
        .arg("--cache")
        .arg(cache)
        .arg("--quiet")
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1");
    cmd
}

#[test]
fn sigterm_finishes_the_write_exits_143_and_the_cell_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let exp = long_experiment(dir.path());
    let (results, cache) = (dir.path().join("results"), dir.path().join("cache"));
    let child = passk(&exp, &results, &cache)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait for the first checkpoint of the cell, then for one more, so the signal lands
    // mid-cell with some checkpoint to resume from.
    let exp_dir = results.join("tiny-long");
    let pointer = || {
        std::fs::read_dir(&exp_dir).ok().and_then(|mut d| {
            d.find_map(|e| {
                let p = e.ok()?.path().join("checkpoint.json");
                std::fs::read_to_string(p).ok()
            })
        })
    };
    let t0 = Instant::now();
    let first = loop {
        if let Some(text) = pointer() {
            break text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint came"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    while pointer().is_some_and(|t| t == first) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no second checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sending a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    // It stopped mid-cell: no cell in place, the temporary (its checkpoint) kept.
    let names = all_names(&results);
    assert!(names.iter().any(|n| n.starts_with(".tmp-")), "{names:?}");
    assert!(!names.iter().any(|n| n == "complete.json"), "{names:?}");
    // Every write it began was finished: no temporary file of its pid anywhere.
    for name in names.iter().chain(&all_names(&cache)) {
        assert_ne!(
            passk_train::lock::temp_writer_pid(name),
            Some(pid),
            "{name} was left by the stopped process"
        );
    }
    // The next run resumes from the checkpoint and completes the cell.
    let rerun = passk(&exp, &results, &cache).output().unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let cell = std::fs::read_dir(&exp_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("complete.json").is_file())
        .expect("the cell is complete");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cell.join("summary.json")).unwrap()).unwrap();
    let resumed = summary["resumed_from_step"].as_u64().unwrap_or(0);
    assert!(resumed >= 20, "the rerun started over: {summary}");
}
