//! `cargo xtask`: the project's task runner. Builds `passk` in release and drives it, reading
//! only its machine-readable (`--json`) outputs (src/passk.rs). This file dispatches; each job
//! lives in its own module.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

mod bench;
mod bench_lm;
mod check;
mod ci;
mod compare;
mod cuda;
mod external;
mod gate;
mod gpu_bundle;
mod passk;
mod reproduce;
mod shards;

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
                                 experiments/claims.toml (theory, and the tiny gate
                                 matrix from the committed warm starts in
                                 results/warm-starts/) into target/passk-check/,
                                 evaluate every claim, then verify the committed results
                                 (and that those the gate recomputed are byte-identical)
  compare --objective SPEC... [--experiment NAME] [--force]
                                 run objective SPEC (repeatable) on the cells of
                                 experiments/NAME.toml (default tiny-core, reusing
                                 cached warm starts) into target/passk-compare/ and
                                 print it beside the committed baseline; --force
                                 reruns cells not made by this build's code (after
                                 editing an objective under the same name)
  check-broken                   after `check`: rerun the gate matrix with pass@8
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
        ["reproduce", target] => reproduce::reproduce(&sh, target, cuda),
        ["reproduce", target, "--slurm", rest @ ..] => {
            reproduce::reproduce_slurm(&sh, target, cuda, rest)
        }
        ["slurm-test"] => ci::slurm_test(&passk::build(&sh, cuda)?),
        ["reproduce"] => bail!(
            "say what to reproduce: `cargo xtask reproduce all` or `cargo xtask reproduce theory`"
        ),
        ["report"] => {
            let passk = passk::build(&sh, cuda)?;
            cmd!(sh, "{passk} report").run()?;
            Ok(())
        }
        ["browser-test"] => external::browser_test(&sh),
        ["latex-test"] => external::latex_test(&sh),
        ["verify"] => {
            let passk = passk::build(&sh, cuda)?;
            cmd!(sh, "{passk} verify").run()?;
            Ok(())
        }
        ["check"] => check::check(&sh, cuda),
        ["compare", rest @ ..] => {
            let (objectives, experiment, force) = compare::compare_args(rest)?;
            compare::compare(&sh, &objectives, &experiment, force, cuda)
        }
        ["check-broken"] => {
            let passk = passk::build(&sh, cuda)?;
            gate::rejects_broken_objective(&sh, &passk, &gate::scratch_dir())
        }
        ["fault"] => ci::fault(&sh, &passk::build(&sh, cuda)?),
        ["ci"] => ci::ci(&sh),
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
