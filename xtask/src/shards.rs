//! Running experiment files as several single-threaded `passk run --shard` processes.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::project_root;

/// Runs `files` as one `passk run --shard i/n` process per core, each single-threaded: two
/// one-thread processes do about 1.45x the work of one two-thread process on these CPUs
/// (docs/feasibility.md §4). `PASSK_SHARDS` overrides the number of processes.
pub fn run_sharded(passk: &Path, files: &[String], extra: &[&str]) -> Result<()> {
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
