//! `cargo xtask gpu-bundle [DIR] [--test]`: everything the prepared GPU check needs, in one
//! folder of at most 64 MiB to copy to a GPU machine that has no Rust and no network.
//!
//! DIR (default `target/gpu-bundle`) holds `gpu-check.sh` and `compare_tiny.py` (from
//! `scripts/`), `bin/passk.gz` (the CUDA build, stripped and gzipped: its embedded kernels make
//! it 65 MB), `tests/passk_policy.gz` (passk-policy's test binary of the CUDA build, whose
//! ignored tests need a device; the script unpacks both), `lm-shape/` (SmolLM2-135M's
//! `config.json` and `tokenizer.json`, written by `passk lm-shape` from `$PASSK_SMOLLM2_GGUF`),
//! the experiment files `tiny-smoke.toml`, `lm-gpu-smoke.toml` and `lm-gpu-pair.toml`, and
//! `BUILD.txt` (commit, CUDA release, compute capability).
//!
//! `--test` then runs `gpu-check.sh --cpu` from the bundle on this machine, with the link
//! stubs standing in for the CUDA libraries (nothing calls them on the CPU): every step but the
//! device tests and the LM pair, which are listed instead. About 3 minutes on 2 cores.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::cuda::{self, Toolkit, FEATURES};

/// The most that can be copied to the GPU machine at once.
const LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Builds the bundle into `dir` (default `target/gpu-bundle`); with `test`, runs its `--cpu`
/// check here.
pub fn bundle(root: &Path, dir: Option<&Path>, test: bool) -> Result<()> {
    let dir = dir.map_or_else(|| root.join("target").join("gpu-bundle"), Path::to_path_buf);
    let gguf = std::env::var_os("PASSK_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .context(
            "gpu-bundle takes SmolLM2's shape and tokenizer from its GGUF file: set \
             PASSK_SMOLLM2_GGUF (see experiments/lm.toml for where to get it)",
        )?;
    let sh = Shell::new()?;
    sh.change_dir(root);
    let passk = cuda::build_passk(&Shell::new()?, root)?;
    let toolkit = Toolkit::ensure(&sh, root)?;
    toolkit.apply(&sh, root)?;
    let tests = test_binary(&sh)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for sub in ["bin", "tests", "lm-shape"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let bundled = dir.join("bin").join("passk");
    let bundled_tests = dir.join("tests").join("passk_policy");
    std::fs::copy(&passk, &bundled)?;
    std::fs::copy(&tests, &bundled_tests)?;
    // The embedded kernels make each binary about 65 MB even stripped; gzip brings it to 17.
    cmd!(sh, "strip {bundled} {bundled_tests}")
        .run()
        .context("strip (binutils) is needed to shrink the binaries")?;
    let copies = [
        ("scripts/gpu-check.sh", "gpu-check.sh"),
        ("scripts/compare_tiny.py", "compare_tiny.py"),
        ("experiments/tiny-smoke.toml", "tiny-smoke.toml"),
        ("scripts/gpu-check/lm-gpu-smoke.toml", "lm-gpu-smoke.toml"),
        ("scripts/gpu-check/lm-gpu-pair.toml", "lm-gpu-pair.toml"),
    ];
    for (from, to) in copies {
        std::fs::copy(root.join(from), dir.join(to)).with_context(|| format!("copying {from}"))?;
    }
    // The CUDA binary runs here on the CPU with the link stubs in place of the libraries.
    let libs = toolkit.stub_runtime_path()?;
    let shape = dir.join("lm-shape");
    cmd!(sh, "{bundled} lm-shape {gguf} {shape}")
        .env("LD_LIBRARY_PATH", &libs)
        .run()
        .context("writing SmolLM2's shape and tokenizer")?;
    cmd!(sh, "gzip -9 {bundled} {bundled_tests}")
        .run()
        .context("gzip is needed to shrink the binaries")?;
    let commit = cmd!(sh, "git rev-parse HEAD").read().unwrap_or_default();
    let dirty = !cmd!(sh, "git status --porcelain")
        .read()
        .unwrap_or_default()
        .is_empty();
    std::fs::write(
        dir.join("BUILD.txt"),
        format!(
            "passk CUDA bundle: commit {commit}{}; CUDA {} (pip wheels, link stubs), \
             CUDA_COMPUTE_CAP={}; features {FEATURES}\n",
            if dirty {
                " with uncommitted changes"
            } else {
                ""
            },
            cuda::CUDA_RELEASE,
            std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_string()),
        ),
    )?;
    let size = folder_bytes(&dir)?;
    eprintln!(
        "gpu-bundle: {} ({:.1} MiB); copy it to the GPU machine and run `bash gpu-check.sh` there",
        dir.display(),
        size as f64 / 1048576.0
    );
    if size > LIMIT_BYTES {
        bail!(
            "the bundle is {:.1} MiB, over the 64 MiB that can be copied at once",
            size as f64 / 1048576.0
        );
    }
    if test {
        let out = root.join("target").join("gpu-check-cpu");
        let script = dir.join("gpu-check.sh");
        cmd!(sh, "bash {script} --cpu")
            .env("PASSK_GPU_LIBS", &libs)
            .env("OUT", &out)
            .run()
            .context("gpu-check.sh --cpu failed; its log is in target/gpu-check-cpu")?;
    }
    Ok(())
}

/// Builds passk-policy's test binary with CUDA (release, sharing the kernels of the passk
/// build) and returns its path.
fn test_binary(sh: &Shell) -> Result<PathBuf> {
    let json = cmd!(
        sh,
        "cargo test --release --no-run -p passk-policy --lib --features passk-policy/cuda --message-format=json"
    )
    .read()
    .context("building passk-policy's CUDA tests failed")?;
    json.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .find(|m| m["target"]["name"] == "passk_policy")
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built no passk-policy test binary")
}

/// The bytes of every file under `dir`.
fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
