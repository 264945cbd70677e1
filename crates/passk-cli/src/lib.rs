//! The `passk` command line: runs experiment cells, regenerates figures, hashes and verifies
//! results, and checks the claims. `cargo xtask` drives it through the `passk` binary; the
//! end-to-end tests call [`run_cli`] in-process.

mod against;
mod approve;
pub mod cli;
pub mod compare;
pub mod config;
mod environment;
mod lm;
mod lm_tools;
pub mod machine;
mod page_files;
pub mod provenance;
pub mod record;
pub mod run;
pub mod signals;
pub mod slurm;
pub mod status;
pub mod term;
pub mod theory;
mod tidy;
pub mod tiers;
pub mod tiny;
mod warm_cache;
mod warm_starts;
pub mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use passk_report::{figures, readme};

use crate::cli::{
    CheckArgs, Cli, Command, CompareArgs, ExperimentsArgs, GateArgs, ListArgs, ManifestArgs,
    ReportArgs, RunArgs, SealArgs, VerifyArgs, WarmCacheArgs, WarmStartsArgs,
};

/// Runs the command line `raw` (without the program name). `--help` and `--version` print to
/// stdout and succeed; a usage error is a [`clap::Error`] (the binary prints it and exits with
/// its status, 2), other errors are input errors.
pub fn run_cli(raw: &[String]) -> Result<ExitCode> {
    let argv = std::iter::once("passk".to_string()).chain(raw.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            println!("{}", version());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) if e.exit_code() == 0 => {
            print!("{}", e.render());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    match cli.command {
        Command::Run(args) => cmd_run(&args),
        Command::Slurm(options) => slurm::cmd_slurm(&options),
        Command::Compare(args) => cmd_compare(&args),
        Command::List(args) => cmd_list(&args),
        Command::Status(args) => {
            let experiments = load_all(&args.experiments)?;
            print!("{}", status::render(&experiments, &args.results.results).0);
            Ok(ExitCode::SUCCESS)
        }
        Command::WarmStarts(args) => cmd_warm_starts(&args),
        Command::Experiments(args) => cmd_experiments(&args),
        Command::Objectives(args) => {
            let all = passk_core::objective::registered_objectives();
            if args.json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "name": o.name,
                            "needs_k": o.needs_k,
                            "description": o.description,
                        })
                    })
                    .collect();
                println!("{:#}", serde_json::Value::Array(rows));
            } else {
                for o in &all {
                    let spec = if o.needs_k {
                        format!("{}:k=K", o.name)
                    } else {
                        o.name.to_string()
                    };
                    println!("{spec:<26} {}", o.description);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => cmd_report(&args),
        Command::Manifest(args) => cmd_manifest(&args),
        Command::Verify(args) => cmd_verify(&args),
        Command::Seal(args) => cmd_seal(&args),
        Command::Check(args) => cmd_check(&args),
        Command::Gate(args) => cmd_gate(&args),
        Command::WarmCache(args) => cmd_warm_cache(&args),
        Command::LmShape(args) => {
            lm_tools::shape(&args.gguf, &args.dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::LmRandom(args) => {
            lm_tools::random(&args.dir, args.seed)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::LmBench(args) => {
            lm_tools::cmd_bench(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `passk --version`: the crate version and, when the binary's source folder is a git
/// checkout, its commit and whether tracked sources differ from it (`dirty`).
pub fn version() -> String {
    let base = format!("passk {}", env!("CARGO_PKG_VERSION"));
    match provenance::git_state() {
        Some((commit, dirty)) => format!(
            "{base} (commit {}{})",
            &commit[..commit.len().min(12)],
            if dirty { ", dirty" } else { "" }
        ),
        None => base,
    }
}

fn cmd_warm_starts(args: &WarmStartsArgs) -> Result<ExitCode> {
    let experiments = load_all(&args.experiments)?;
    let quiet = args.quiet.get();
    match &args.curve {
        Some(steps) => warm_starts::curve(&experiments, steps, args.shard, quiet)?,
        None => warm_starts::profile(
            &experiments,
            &args.cache.cache,
            args.shard,
            quiet,
            args.strict,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(args: &ReportArgs) -> Result<ExitCode> {
    let (results, figures) = (&args.results.results, &args.figures.figures);
    let claims = &args.claims.claims;
    // Leftovers of killed writers of the documents this refills.
    let readme = readme::readme_of(figures);
    let beside = readme.parent().unwrap_or(std::path::Path::new("."));
    for dir in [beside.to_path_buf(), beside.join("docs")] {
        tidy::remove_dead_temporaries(&dir)?;
    }
    if results.is_dir() {
        let failing = record::verify_all(results)?;
        if !failing.is_empty() {
            for f in &failing {
                eprintln!("CORRUPT: {f}");
            }
            bail!(
                "report: {} cell(s) under {} fail their completion records (listed above); no \
                 figure is drawn from them and nothing was written. `passk run` moves them \
                 aside and recomputes them; committed ones can be restored with `git checkout \
                 -- results/`",
                failing.len(),
                results.display()
            );
        }
    }
    let files = page_files::beside(results, claims)?;
    let written = figures::regenerate(results, figures, claims, &files, args.force)?;
    let refreshed = readme::sync_all(figures)?;
    if let Some(dir) = &args.per_cell {
        let n = figures::render_cell_figures(results, dir)?;
        eprintln!(
            "report: wrote {n} per-cell probe files under {}",
            dir.display()
        );
    }
    if !args.quiet.get() {
        eprintln!(
            "report: wrote {written} files under {}{}",
            figures.display(),
            if refreshed.is_empty() {
                String::new()
            } else {
                let names: Vec<String> =
                    refreshed.iter().map(|p| p.display().to_string()).collect();
                format!(" and refreshed {}", names.join(", "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_manifest(args: &ManifestArgs) -> Result<ExitCode> {
    let results = &args.results.results;
    if !results.is_dir() {
        bail!(
            "{} is not a folder: name the results folder with --results",
            results.display()
        );
    }
    let updated = approve::update(results, &approve::Vouched::default(), true)
        .with_context(|| format!("cannot write the manifest of {}", results.display()))?;
    // Says what it approves: this is the one command that lists files nobody verified.
    for (change, path) in &updated.approved {
        println!("manifest: approved {}: {path}", change.word());
    }
    if !args.quiet.get() {
        eprintln!(
            "manifest: {} files listed in {}/MANIFEST, {} change(s) approved",
            updated.listed,
            results.display(),
            updated.approved.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<config::Experiment>> {
    if paths.is_empty() {
        bail!("name at least one experiment file, e.g. experiments/theory.toml");
    }
    // Validate every file before running anything: a bad file writes nothing.
    let experiments = paths
        .iter()
        .map(|p| config::load_experiment(p))
        .collect::<Result<Vec<_>>>()?;
    let mut names = std::collections::BTreeSet::new();
    for exp in &experiments {
        if !names.insert(exp.name.clone()) {
            bail!(
                "two experiment files are named {:?}; names must be unique",
                exp.name
            );
        }
    }
    Ok(experiments)
}

fn cmd_compare(args: &CompareArgs) -> Result<ExitCode> {
    let ctx = tiers::RunContext {
        cache_dir: args.cache.cache.clone(),
        device: args.device.device.to_string(),
        quiet: args.quiet.get(),
        strict: args.strict,
        on_corrupt: args.on_corrupt.on_corrupt,
        force: args.force,
        log: term::Log::default(),
        label: args
            .shard
            .map_or_else(String::new, |(i, n)| format!("shard {i}/{n}")),
    };
    let Some(table) = compare::compare(
        &args.experiment,
        &args.objectives,
        &args.results.results,
        &args.out,
        &ctx,
        args.shard,
    )?
    else {
        let (i, n) = args.shard.unwrap_or((1, 1));
        println!(
            "compare: shard {i}/{n} ran its cells; `passk compare` without --shard prints the \
             table once every shard has finished"
        );
        return Ok(ExitCode::SUCCESS);
    };
    print!("{}", table.to_markdown());
    println!(
        "compare: table written to {0}/compare.{{csv,md,tex}}, figure to {0}/compare_tradeoff.{{svg,png}}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks, before anything is created, what would otherwise fail only at the first cell: the
/// device opens, the cache is a writable folder (or can be made), `--reuse` names a folder,
/// and the `--shard` has at least one cell.
fn validate_run(args: &RunArgs, experiments: &[config::Experiment]) -> Result<()> {
    let trained = experiments
        .iter()
        .any(|e| e.tier != passk_report::tier::Tier::Theory);
    if trained {
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

fn cmd_run(args: &RunArgs) -> Result<ExitCode> {
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
            label: args
                .shard
                .map_or_else(String::new, |(i, n)| format!("shard {i}/{n}")),
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
        // does not list as it is (killed between the two writes).
        if ran > 0 || !environment::listed_as_is(results) {
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

fn cmd_list(args: &ListArgs) -> Result<ExitCode> {
    for exp in load_all(&args.experiments)? {
        println!(
            "{} ({}, tier {}): {} cells",
            exp.name,
            exp.path.display(),
            exp.tier,
            exp.cells.len()
        );
        for cell in &exp.cells {
            let status = match record::state(&args.results.results, &exp.name, &cell.hash) {
                record::CellState::Complete => "done",
                record::CellState::Missing => "missing",
                record::CellState::Corrupt(_) => "corrupt",
            };
            println!(
                "  {}  {:<7}  {}",
                cell.hash,
                status,
                config::describe(&cell.coords)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_experiments(args: &ExperimentsArgs) -> Result<ExitCode> {
    if args.json {
        println!("{:#}", machine::experiments_json(&args.dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (file, exp) in machine::experiment_files(&args.dir)? {
        if exp.in_all {
            println!("{}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_gate(args: &GateArgs) -> Result<ExitCode> {
    let claims = &args.claims.claims;
    let text = std::fs::read_to_string(claims)
        .with_context(|| format!("cannot read {}", claims.display()))?;
    let gate = passk_report::claims::parse_claims(&text, claims)?.gate;
    if args.json {
        println!("{:#}", machine::gate_json(&gate));
    } else {
        for file in gate {
            println!("{file}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_warm_cache(args: &WarmCacheArgs) -> Result<ExitCode> {
    let (cache, committed) = (&args.cache.cache, &args.committed);
    let copied = if args.seed {
        warm_cache::copy_all(committed, cache)?
    } else {
        0
    };
    let trained = warm_cache::not_committed(cache, committed)?;
    if args.json {
        println!(
            "{:#}",
            machine::warm_cache_json(cache, committed, copied, &trained)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.seed {
        println!(
            "warm-cache: {copied} committed warm-start file(s) copied from {} to {}",
            committed.display(),
            cache.display()
        );
    }
    if trained.is_empty() {
        println!(
            "warm-cache: every warm start in {} is committed in {}",
            cache.display(),
            committed.display()
        );
    } else {
        println!(
            "warm-cache: {} warm start(s) in {} that {} lacks: {}",
            trained.len(),
            cache.display(),
            committed.display(),
            trained.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_verify(args: &VerifyArgs) -> Result<ExitCode> {
    let (results, figures) = (&args.results.results, &args.figures.figures);
    let mut problems: Vec<String> = passk_report::manifest::verify_manifest(results)
        .iter()
        .map(|p| format!("results/{p}"))
        .collect();
    if results.is_dir() {
        problems.extend(
            record::verify_all(results)?
                .into_iter()
                .map(|p| format!("results/{p}")),
        );
    }
    let claims = &args.claims.claims;
    match page_files::beside(results, claims) {
        Ok(files) => problems.extend(figures::verify(results, figures, claims, &files)?),
        Err(e) => problems.push(figures::unrenderable(&e)),
    }
    problems.extend(readme::verify(figures)?);
    let mut stale = 0;
    if let Some(fresh) = &args.against {
        for file in against::stale_committed_cells(fresh, results)? {
            problems.push(format!(
                "{file} differs from the fresh recomputation in {}",
                fresh.display()
            ));
            stale += 1;
        }
    }
    if problems.is_empty() {
        println!(
            "verify: every result file matches {}/MANIFEST, every cell its completion record, \
             and {} matches a fresh regeneration",
            results.display(),
            figures.display()
        );
        if let Some(fresh) = &args.against {
            println!(
                "verify: the cells of {} that are also committed are byte-identical to them",
                fresh.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("verify: {p}");
        }
        if stale > 0 {
            eprintln!(
                "verify: the committed results are stale: the code now computes other numbers \
                 for {stale} file(s); delete the affected cells and rerun them (`cargo xtask \
                 reproduce all`)"
            );
        }
        eprintln!("verify FAILED: {} problem(s)", problems.len());
        Ok(ExitCode::from(1))
    }
}

fn cmd_seal(args: &SealArgs) -> Result<ExitCode> {
    let results = &args.results.results;
    let caches = if args.caches.is_empty() {
        vec![
            PathBuf::from("target/passk-cache"),
            results.join("warm-starts"),
        ]
    } else {
        args.caches.clone()
    };
    let report = record::seal(results, &caches)?;
    for why in &report.refused {
        eprintln!("seal: not sealed: results/{why}");
    }
    println!(
        "seal: {} cell(s) sealed, {} already had a record that verifies, {} refused{}",
        report.sealed.len(),
        report.already,
        report.refused.len(),
        if report.without_warm_start_sha > 0 {
            format!(
                "; {} tiny cell(s) record no warm-start sha256 (no cache held it)",
                report.without_warm_start_sha
            )
        } else {
            String::new()
        }
    );
    Ok(if report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_check(args: &CheckArgs) -> Result<ExitCode> {
    let (claims_file, results) = (&args.claims.claims, &args.results.results);
    let text = std::fs::read_to_string(claims_file)
        .with_context(|| format!("cannot read {}", claims_file.display()))?;
    let mut claims = passk_report::claims::parse_claims(&text, claims_file)?.claim;
    if let Some(experiment) = &args.experiment {
        claims.retain(|c| &c.experiment == experiment);
        if claims.is_empty() {
            bail!(
                "{}: no claim reads experiment {experiment:?}",
                claims_file.display()
            );
        }
    }
    let mut verdicts = passk_report::claims::evaluate(&claims, results, &args.baseline);
    let unverified = withhold_unverified(&mut verdicts, results, &args.baseline)?;
    // A claim withheld because its cells fail their records fails the check even without
    // --strict: its data cannot be trusted, unlike an experiment that was simply not run.
    let failed = machine::failed(&verdicts, args.strict) + if args.strict { 0 } else { unverified };
    if args.json {
        println!("{:#}", machine::verdicts_json(&verdicts, args.strict));
        return Ok(if failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    print!("{}", passk_report::claims::render_table(&verdicts));
    let skipped = verdicts.iter().filter(|v| v.not_evaluated).count();
    let evaluated = verdicts.len() - skipped;
    if unverified > 0 {
        println!(
            "check: {unverified} claim(s) NOT EVALUATED because cells they read fail their \
             completion records (listed above; `passk verify` names them too): rerun them with \
             `passk run` (it moves them aside and recomputes them) or restore them"
        );
    }
    if failed > 0 {
        println!("check: {failed} of {} claims FAILED", verdicts.len());
        Ok(ExitCode::from(1))
    } else if skipped > 0 {
        println!(
            "check: all {evaluated} evaluated claims hold; {skipped} NOT EVALUATED (their \
             experiments are not under {}: the gate's fresh cells, see above). `cargo xtask \
             check` recomputes and requires them; --strict makes a claim not evaluated fail",
            results.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("check: all {} claims hold", verdicts.len());
        Ok(ExitCode::SUCCESS)
    }
}

/// Marks NOT EVALUATED every verdict whose experiment (under `results`, or `baseline` for a
/// baseline claim) holds a cell whose completion record fails: such a cell's numbers, and even
/// its coordinates (`cell.json`), are not to be trusted, so no verdict may rest on them.
/// Returns how many verdicts it withheld.
fn withhold_unverified(
    verdicts: &mut [passk_report::claims::Verdict],
    results: &std::path::Path,
    baseline: &std::path::Path,
) -> Result<usize> {
    let mut failing: std::collections::BTreeMap<PathBuf, Vec<String>> = Default::default();
    let mut withheld = 0;
    for v in verdicts.iter_mut() {
        let root = if v.claim.baseline { baseline } else { results };
        let dir = root.join(&v.claim.experiment);
        if !dir.is_dir() {
            continue;
        }
        if !failing.contains_key(&dir) {
            let (_, bad) = passk_report::record::cells_by_check(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            let names = bad
                .iter()
                .map(|(d, _)| passk_report::manifest::relative(root, d))
                .collect();
            failing.insert(dir.clone(), names);
        }
        let bad = &failing[&dir];
        if bad.is_empty() {
            continue;
        }
        v.not_evaluated = true;
        v.passed = false;
        v.measured = None;
        v.estimate = None;
        v.interval = None;
        v.error = Some(format!(
            "NOT EVALUATED: {} cell(s) of `{}` fail their completion record ({}{})",
            bad.len(),
            v.claim.experiment,
            bad.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            if bad.len() > 3 { ", ..." } else { "" }
        ));
        withheld += 1;
    }
    Ok(withheld)
}

#[cfg(test)]
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
