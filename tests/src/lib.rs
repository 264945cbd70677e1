//! Fixtures for the end-to-end tests: a scratch project with small experiment files.

pub mod external;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A temporary project directory with `experiments/`, `results/` and `figures/`.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// An empty scratch project.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["experiments", "results", "figures"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("scratch layout");
        }
        Self { dir }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `root/rel`.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("parent dir");
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    /// Runs `passk` in-process with `--results`, `--figures` and `--cache` pointing into the
    /// scratch project, and `--quiet`: those of them the command takes.
    pub fn passk(&self, args: &[&str]) -> anyhow::Result<ExitCode> {
        let mut raw: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let takes: &[&str] = match args.first() {
            Some(&"run") | Some(&"compare") => &["--results", "--cache", "--quiet"],
            Some(&"warm-starts") => &["--cache", "--quiet"],
            Some(&"report") => &["--results", "--figures", "--quiet"],
            Some(&"verify") => &["--results", "--figures"],
            Some(&"slurm") => &["--results", "--figures", "--cache"],
            Some(&"manifest") => &["--results", "--quiet"],
            Some(&"seal") => &["--results", "--cache"],
            Some(&"list") | Some(&"status") | Some(&"check") => &["--results"],
            _ => &[],
        };
        for flag in takes {
            raw.push(flag.to_string());
            match *flag {
                "--results" => raw.push(self.path("results").display().to_string()),
                "--figures" => raw.push(self.path("figures").display().to_string()),
                "--cache" => raw.push(self.path("cache").display().to_string()),
                _ => {}
            }
        }
        passk_cli::run_cli(&raw)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// A small theory experiment: two separations (one interfering, one not), two k, one seed.
pub const SMALL_THEORY: &str = r#"
[experiment]
name = "theory"
tier = "theory"

[matrix]
separation = [0.5, 6.0]
p_hard = [0.2]
k = [4, 8]
seed = [0]

[params]
n_prompts = 32
feature_std = 1.0
theta0 = [2.0, 0.0]
k_scan = [1, 2, 4, 8, 16]
lr = 1.0
steps = 100
one_step_eta = 0.01
"#;

/// The repository's `experiments/<name>` file as text.
pub fn repo_experiment(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
