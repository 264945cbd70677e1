//! Helpers of the tests that drive an external program over the committed report (the browser
//! and LaTeX tests): where the figures are, where output goes, finding the program, and
//! running it with a time limit. Those tests are `#[ignore]`d (the program comes from Debian's
//! packages); `cargo xtask browser-test` and `cargo xtask latex-test` install it and run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The figures folder under test: `$PASSK_FIGURES`, or the repository's `figures/`.
pub fn figures_dir() -> PathBuf {
    let dir = std::env::var_os("PASSK_FIGURES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../figures"),
        PathBuf::from,
    );
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("figures folder {}: {e}", dir.display()))
}

/// A fresh, empty folder `<tmp>/<name>` for a test's output, kept after the test (`tmp`: the
/// test's `env!("CARGO_TARGET_TMPDIR")`, `<target>/tmp`).
pub fn out_dir(tmp: &str, name: &str) -> PathBuf {
    let dir = Path::new(tmp).join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// The first of `names` found on `PATH` (or the path in `$env_var`); panics saying how to
/// get it, so a missing program fails the test instead of skipping it.
pub fn find_program(env_var: &str, names: &[&str], xtask: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "none of {names:?} is on PATH (or set {env_var}): run `cargo xtask {xtask}`, which \
         installs it with apt-get and runs this test"
    )
}

/// Runs `cmd` to its end or for at most `limit` (then kills it and panics), capturing its
/// output.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} ran past {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    }
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let e = e.expect("a folder entry");
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if e.file_type().expect("a file type").is_dir() {
                stack.push(e.path());
            } else if name.ends_with(suffix) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
