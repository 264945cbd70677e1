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
    // `passk run` refuses a shard with no cell: never start more shards than cells.
    let cap = max_shards(passk, files)?;
    shard_processes_capped(passk, &args, extra, cap)
}

/// Runs `passk <args> --shard i/n <extra>` as one single-threaded process per core (or
/// `PASSK_SHARDS`), and waits for all.
pub fn shard_processes(passk: &Path, args: &[&str], extra: &[&str]) -> Result<()> {
    shard_processes_capped(passk, args, extra, usize::MAX)
}

/// [`shard_processes`] with at most `cap` processes.
fn shard_processes_capped(passk: &Path, args: &[&str], extra: &[&str], cap: usize) -> Result<()> {
    let shards = match std::env::var("PASSK_SHARDS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("PASSK_SHARDS={v:?} is not a positive integer"))?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let shards = shards.min(cap).max(1);
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

/// The most shards `files` can use: the cells of the largest (a shard with no cell at all is
/// an error); no cap when a file is not one of `experiments/` (check-broken's variant).
fn max_shards(passk: &Path, files: &[String]) -> Result<usize> {
    let sh = xshell::Shell::new()?;
    let listed: Vec<crate::passk::Experiment> =
        crate::passk::json(&sh, passk, &["experiments", "experiments"], false)?;
    let mut largest = 0;
    for file in files {
        let name = Path::new(file).file_name();
        match listed
            .iter()
            .find(|e| Path::new(&e.file).file_name() == name)
        {
            Some(e) => largest = largest.max(e.cells),
            None => return Ok(usize::MAX),
        }
    }
    Ok(largest.max(1))
}
