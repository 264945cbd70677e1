//! `cargo xtask bench --peer` (the tiny engine's step times beside PyTorch eager) and
//! `cargo xtask bench --lm` (SmolLM2 sampling throughput beside Hugging Face transformers),
//! each measured in one run with the two engines alternating.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// Options of `bench --peer`.
pub struct PeerOptions {
    /// Rounds; each runs passk then PyTorch once per thread count, and the table shows the
    /// median over rounds.
    pub rounds: usize,
    /// Timed repetitions per piece within a round.
    pub reps: usize,
    /// Thread counts to measure (both engines get the same count).
    pub threads: Vec<usize>,
    /// The Python interpreter that has torch, when not found automatically.
    pub python: Option<PathBuf>,
}

impl PeerOptions {
    /// Parses `--rounds N --reps N --threads 1,2 --python PATH`.
    pub fn parse(args: &[&str]) -> Result<Self> {
        let mut opts = Self {
            rounds: 3,
            reps: 9,
            threads: vec![1, 2],
            python: None,
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            match flag {
                "--rounds" => opts.rounds = value.parse().context("--rounds takes a count")?,
                "--reps" => opts.reps = value.parse().context("--reps takes a count")?,
                "--threads" => {
                    opts.threads = value
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .context("--threads takes counts like 1,2")?
                }
                "--python" => opts.python = Some(PathBuf::from(value)),
                other => bail!("unknown option {other} for `bench --peer`"),
            }
        }
        if opts.rounds == 0 || opts.reps == 0 || opts.threads.contains(&0) {
            bail!("--rounds, --reps and --threads must be positive");
        }
        Ok(opts)
    }
}

/// The interpreter to use for the PyTorch peer, or why there is none.
pub(crate) fn find_python(
    sh: &Shell,
    root: &Path,
    explicit: Option<&Path>,
    modules: &str,
) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => std::env::var_os("PASSK_TORCH_PYTHON")
            .map(PathBuf::from)
            .into_iter()
            .chain([
                root.join("target/torch-venv/bin/python"),
                PathBuf::from("python3"),
            ])
            .collect(),
    };
    for python in &candidates {
        let code = format!("import {modules}");
        let probe = cmd!(sh, "{python} -c {code}").quiet().ignore_stderr().run();
        if probe.is_ok() {
            return Ok(python.clone());
        }
    }
    let packages = modules.replace(", ", " ");
    Err(format!(
        "no Python with {modules} among {candidates:?}; install one with `python3 -m venv \
         target/torch-venv && target/torch-venv/bin/pip install {packages}` (or pass --python)"
    ))
}

/// `name ms` lines into a map (other lines are comments).
pub(crate) fn parse_times(out: &str) -> Result<BTreeMap<String, f64>> {
    let mut times = BTreeMap::new();
    for line in out
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, ms) = line
            .split_once(' ')
            .with_context(|| format!("unexpected benchmark line {line:?}"))?;
        times.insert(name.to_string(), ms.trim().parse()?);
    }
    Ok(times)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs both engines `rounds` times per thread count, alternating, and prints the table.
pub fn peer(sh: &Shell, root: &Path, opts: &PeerOptions) -> Result<()> {
    cmd!(
        sh,
        "cargo build --release --quiet -p passk-train --example peer_step"
    )
    .run()
    .context("building the peer_step example failed")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let passk = target.join("release/examples/peer_step");
    let python = find_python(sh, root, opts.python.as_deref(), "torch");
    if let Err(why) = &python {
        println!("bench --peer: PyTorch column left empty: {why}");
    }
    let peer_args: Vec<String> = cmd!(sh, "{passk} --peer-args")
        .read()?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let reps = opts.reps.to_string();
    let script = root.join("bench/torch_peer.py");
    for &threads in &opts.threads {
        let n = threads.to_string();
        let _env = sh.push_env("CANDLE_NUM_THREADS", &n);
        let _env2 = sh.push_env("RAYON_NUM_THREADS", &n);
        let mut ours: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut theirs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut torch_version = String::new();
        for round in 1..=opts.rounds {
            eprintln!(
                "bench --peer: {threads} thread(s), round {round}/{}",
                opts.rounds
            );
            for (k, v) in parse_times(&cmd!(sh, "{passk} --reps {reps}").read()?)? {
                ours.entry(k).or_default().push(v);
            }
            if let Ok(python) = &python {
                let peer_args = &peer_args;
                let out = cmd!(
                    sh,
                    "{python} {script} --reps {reps} --threads {n} {peer_args...}"
                )
                .ignore_stderr()
                .read()?;
                if let Some(first) = out.lines().find(|l| l.starts_with("# torch")) {
                    torch_version = first.trim_start_matches("# ").to_string();
                }
                for (k, v) in parse_times(&out)? {
                    theirs.entry(k).or_default().push(v);
                }
            }
        }
        println!();
        println!(
            "{threads} thread(s) each, median of {} rounds x {} reps; peer: {}",
            opts.rounds,
            opts.reps,
            if torch_version.is_empty() {
                "none"
            } else {
                &torch_version
            }
        );
        println!("| piece | passk ms | PyTorch eager ms | passk / PyTorch |");
        println!("|---|---:|---:|---:|");
        for (piece, v) in ours {
            let a = median(v);
            match theirs.remove(&piece).map(median) {
                Some(b) => println!("| {piece} | {a:.1} | {b:.1} | {:.2} |", a / b),
                None => println!("| {piece} | {a:.1} | | |"),
            }
        }
    }
    Ok(())
}
