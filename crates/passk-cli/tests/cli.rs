//! The `passk` binary's command line as a shell sees it: help and version on stdout with exit
//! status 0, usage errors on stderr with exit status 2, and a closed pipe ends it quietly.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn passk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_passk"))
        .args(args)
        .output()
        .expect("passk runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const COMMANDS: [&str; 16] = [
    "run",
    "slurm",
    "warm-starts",
    "list",
    "status",
    "experiments",
    "report",
    "manifest",
    "verify",
    "seal",
    "check",
    "compare",
    "gate",
    "lm-shape",
    "lm-random",
    "lm-bench",
];

#[test]
fn help_lists_every_command_and_each_command_has_its_own() {
    let out = passk(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let top = text(&out.stdout);
    for name in COMMANDS {
        assert!(
            top.contains(&format!("  {name} ")),
            "{name} missing from\n{top}"
        );
        let out = passk(&[name, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        let help = text(&out.stdout);
        assert!(help.contains(&format!("Usage: passk {name}")), "{help}");
        assert!(out.stderr.is_empty(), "{name}: {}", text(&out.stderr));
    }
    let run = text(&passk(&["run", "--help"]).stdout);
    for flag in ["--on-corrupt", "--shard <I/N>", "--cell", "exit status 3"] {
        assert!(run.contains(flag), "{flag} missing from\n{run}");
    }
}

#[test]
fn version_is_the_workspace_s() {
    let out = passk(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let line = text(&out.stdout);
    let base = format!("passk {}", env!("CARGO_PKG_VERSION"));
    assert!(
        line == format!("{base}\n") || line.starts_with(&format!("{base} (commit ")),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[test]
fn usage_errors_exit_2_with_clap_s_message() {
    for (args, says) in [
        (
            &["report", "--shard", "1/2"][..],
            "unexpected argument '--shard'",
        ),
        (&["run", "x.toml", "--no-such-flag"], "unexpected argument"),
        (&["nonsense"], "unrecognized subcommand"),
        (&["run"], "<experiment.toml>"),
        (&["run", "x.toml", "--shard", "3/2"], "I/N"),
        (&[], "Usage: passk"),
    ] {
        let out = passk(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // An input error (not a usage error) keeps its own message and status 1.
    let out = passk(&["list", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
}

/// `passk list ... | head`: the reader goes away while passk still writes. passk is ended by
/// SIGPIPE like other Unix tools, never a panic.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_it_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    // About 1,600 cells: a listing well over a pipe's 64 KiB buffer.
    let seps: Vec<String> = (1..=40).map(|i| format!("{}.0", i)).collect();
    let ks: Vec<String> = (1..=40).map(|k| k.to_string()).collect();
    let exp = format!(
        "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [{}]\n\
         separation = [{}]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
         feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
         one_step_eta = 0.01\n",
        ks.join(", "),
        seps.join(", ")
    );
    let file = dir.path().join("t.toml");
    std::fs::write(&file, exp).unwrap();
    let results = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_passk"))
        .args(["list", file.to_str().unwrap(), "--results"])
        .arg(Path::new(&results))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `head` exits before reading anything
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
}
