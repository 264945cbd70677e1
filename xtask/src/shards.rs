//! Running experiment files as several single-threaded `passk run --shard` processes.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::project_root;

/// Runs `files` as one `passk run --shard i/n` process per core, each single-threaded: two
/// one-thread processes do about 1.45x the work of one two-thread process on these CPUs
/// (docs/feasibility.md §4). `PASSK_SHARDS` overrides the number of processes.
pub fn run_sharded(passk: &Path, files: &[String], extra: &[&str]) -> Result<()> {
    let mut args = vec!["run"];
    args.extend(files.iter().map(String::as_str));
    shard_processes(passk, &args, extra)
}

/// Runs `passk <args> --shard i/n <extra>` as one single-threaded process per core (or
/// `PASSK_SHARDS`), and waits for all.
pub fn shard_processes(passk: &Path, args: &[&str], extra: &[&str]) -> Result<()> {
    let shards = match std::env::var("PASSK_SHARDS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("PASSK_SHARDS={v:?} is not a positive integer"))?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "{shards} shard process(es) of `passk {}`, one thread each",
        args[0]
    );
    let children = (1..=shards)
        .map(|i| {
            std::process::Command::new(passk)
                .current_dir(project_root())
                .args(args)
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
