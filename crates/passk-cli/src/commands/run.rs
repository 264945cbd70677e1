//! `passk run`: checks what would fail at the first cell, runs the missing cells of each
//! experiment (or a shard, or named cells), then writes ENVIRONMENT.json and updates MANIFEST
//! with what it wrote or verified ([`crate::approve`]).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::RunArgs;
use crate::{approve, config, environment, load_all, record, run, term, tidy, tiers, warm_cache};

/// Checks, before anything is created, what would otherwise fail only at the first cell: the
/// device opens, the cache is a writable folder (or can be made), `--reuse` names a folder,
/// and the `--shard` has at least one cell.
fn validate_run(args: &RunArgs, experiments: &[config::Experiment]) -> Result<()> {
    // Only the tiny tier runs on --device (an lm cell names its own device).
    let on_device = experiments
        .iter()
        .any(|e| e.tier == passk_report::tier::Tier::Tiny);
    if on_device {
        args.device
            .device
            .device()
            .map_err(|e| anyhow::anyhow!("--device {}: {e}", args.device.device))?;
    }
    if experiments.iter().any(|e| tiers::entry(e.tier).warm_starts) {
        writable_folder(&args.cache.cache, "--cache")?;
    }
    if let Some(from) = &args.reuse {
        if !from.is_dir() {
            bail!(
                "--reuse {}: not a folder; name a results folder (e.g. --reuse results)",
                from.display()
            );
        }
    }
    // A shard may lack cells of a small experiment, but one with no cell at all runs nothing
    // and would still exit 0.
    if let Some((i, n)) = args.shard {
        let cells: usize = experiments.iter().map(|e| e.shard(i, n).cells.len()).sum();
        let largest = experiments.iter().map(|e| e.cells.len()).max().unwrap_or(0);
        if cells == 0 {
            bail!(
                "--shard {i}/{n}: shard {i} of {n} has no cell of the experiment files given \
                 (the largest has {largest}); use at most {largest} shards"
            );
        }
    }
    let results = &args.results.results;
    if results.exists() && !results.is_dir() {
        bail!("--results {}: not a folder", results.display());
    }
    Ok(())
}

/// Fails unless `dir` is a folder this process can write in, or a path where one can be made
/// (its nearest existing ancestor is a writable folder); leaves nothing behind.
fn writable_folder(dir: &std::path::Path, flag: &str) -> Result<()> {
    let mut probe = dir;
    loop {
        if probe.exists() {
            break;
        }
        match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe = p,
            _ => return Ok(()),
        }
    }
    if !probe.is_dir() {
        bail!(
            "{flag} {}: {} is a file, not a folder",
            dir.display(),
            probe.display()
        );
    }
    let meta = std::fs::metadata(probe)?;
    let read_only = meta.permissions().readonly() || !access_writable(probe);
    if read_only {
        bail!(
            "{flag} {}: {} is not writable; name a folder this user can write in",
            dir.display(),
            probe.display()
        );
    }
    Ok(())
}

/// Whether this process may create a file in `dir` (tried with a hidden temporary that is
/// removed at once; root ignores permission bits, so the bits alone do not say).
fn access_writable(dir: &std::path::Path) -> bool {
    // Named as a temporary, so a kill here leaves what the next run tidies.
    let probe = dir.join(format!(".write-test.tmp-{}-0", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

pub fn cmd_run(args: &RunArgs) -> Result<ExitCode> {
    let experiments = load_all(&args.experiments)?;
    validate_run(args, &experiments)?;
    let (results, cache) = (&args.results.results, &args.cache.cache);
    let (quiet, device) = (args.quiet.get(), args.device.device.to_string());
    if experiments.iter().any(|e| tiers::entry(e.tier).warm_starts) {
        warm_cache::seed_from_committed(results, cache)?;
    }
    // What this run may approve into MANIFEST: the cells it writes or removes.
    let mut vouched = approve::Vouched::default();
    // MANIFEST's and ENVIRONMENT.json's temporaries from killed runs.
    tidy::remove_dead_temporaries(results)?;
    // Against the whole matrix, before `--cell` narrows it: the other cells are not orphans.
    for exp in &experiments {
        for dir in &run::stale_cells(exp, results)? {
            if args.prune {
                std::fs::remove_dir_all(dir)?;
                vouched
                    .cells
                    .insert(passk_report::manifest::relative(results, dir));
                eprintln!("pruned {}", dir.display());
            } else {
                eprintln!(
                    "warning: {} is not a cell of {} (changed matrix?); it still feeds the report. \
                     Rerun with --prune to delete it.",
                    dir.display(),
                    exp.path.display()
                );
            }
        }
    }
    let experiments = select_cells(experiments, &args.cells)?;
    let mut ran = 0;
    let mut busy = 0;
    for exp in &experiments {
        let ctx = tiers::RunContext {
            cache_dir: cache.clone(),
            device: device.clone(),
            quiet,
            strict: args.strict,
            on_corrupt: args.on_corrupt.on_corrupt,
            force: args.force,
            log: term::Log::default(),
            label: tiers::shard_label(args.shard),
            // A `--cell` run leaves MANIFEST to a later run, which needs its word for the cells.
            attest: !args.cells.is_empty(),
        };
        let exp = &match args.shard {
            Some((i, n)) => exp.shard(i, n),
            None => exp.clone(),
        };
        if let Some(from) = &args.reuse {
            let copied = run::reuse_cells(exp, from, results, args.force)?;
            if copied > 0 && !quiet {
                println!(
                    "{}: {copied} cells copied from {}",
                    exp.name,
                    from.display()
                );
            }
        }
        vouched
            .cells
            .extend(run::to_write(exp, results, args.force));
        let wait = if args.wait {
            run::Busy::Wait
        } else {
            run::Busy::Skip
        };
        let stats = run::run_experiment_with(exp, results, &ctx, wait)?;
        ran += stats.ran;
        busy += stats.busy;
        if stats.quarantined > 0 {
            eprintln!(
                "{}: {} corrupt cell(s) were moved aside to {}/{}/{} and rerun (messages above)",
                exp.name,
                stats.quarantined,
                results.display(),
                exp.name,
                record::QUARANTINE
            );
        }
        if stats.busy > 0 {
            println!(
                "{}: ran {} cells, {} already done, {} skipped (run by another process)",
                exp.name, stats.ran, stats.cached, stats.busy
            );
        } else {
            println!(
                "{}: ran {} cells, {} already done",
                exp.name, stats.ran, stats.cached
            );
        }
    }
    if !args.cells.is_empty() {
        // Many `--cell` runs (Slurm array tasks) end at once: the manifest, a walk over every
        // result file, is left to one later `passk run` or `passk manifest`.
        if !quiet {
            eprintln!(
                "run: --cell given: MANIFEST and ENVIRONMENT.json left to a later `passk run`"
            );
        }
    } else {
        // Also when a run killed after its last cell left none, or left one that MANIFEST
        // does not list as it is (killed between the two writes), and when this run approves
        // cells that `--cell` runs of this build made.
        if ran > 0
            || !environment::listed_as_is(results)
            || approve::adopts_cells_of_this_build(results, &experiments)
        {
            environment::write(results, &device)?;
            vouched.environment = true;
        }
        approve::update(results, &vouched, args.accept_changes)
            .with_context(|| format!("the manifest of {} was not updated", results.display()))?;
    }
    if busy > 0 {
        eprintln!(
            "run INCOMPLETE: {busy} cell(s) were skipped because another process is running \
             them (messages above); the results are not complete. Rerun once it has finished \
             (exit status {RUN_INCOMPLETE})."
        );
        return Ok(ExitCode::from(RUN_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// With `--cell`: the experiments holding the named cells, each cut down to them (as a shard,
/// so temporaries of its other cells are left alone); an error names a hash no experiment has.
fn select_cells(
    experiments: Vec<config::Experiment>,
    cells: &[String],
) -> Result<Vec<config::Experiment>> {
    if cells.is_empty() {
        return Ok(experiments);
    }
    for hash in cells {
        if !experiments
            .iter()
            .any(|e| e.cells.iter().any(|c| &c.hash == hash))
        {
            bail!(
                "--cell {hash}: no cell of the experiment files given has this hash; \
                 `passk list <experiment.toml>` prints them"
            );
        }
    }
    Ok(experiments
        .into_iter()
        .map(|e| e.only(cells))
        .filter(|e| !e.cells.is_empty())
        .collect())
}

/// The exit status of a `passk run` that skipped cells other processes were running.
pub const RUN_INCOMPLETE: u8 = 3;
