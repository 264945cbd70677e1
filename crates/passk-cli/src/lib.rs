//! The `passk` command line: runs experiment cells, regenerates figures, hashes and verifies
//! results, and checks the claims. `cargo xtask` drives it through the `passk` binary; the
//! end-to-end tests call [`run_cli`] in-process.

mod against;
mod approve;
pub mod cli;
mod commands;
pub mod compare;
pub mod config;
mod environment;
mod lm;
mod lm_tools;
pub mod machine;
mod page_files;
pub mod provenance;
pub mod record;
mod reuse;
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

pub use commands::run::RUN_INCOMPLETE;

use crate::cli::{
    Cli, Command, CompareArgs, ExperimentsArgs, GateArgs, ListArgs, ManifestArgs, ReportArgs,
    SealArgs, VerifyArgs, WarmCacheArgs, WarmStartsArgs,
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
        Command::Run(args) => commands::run::cmd_run(&args),
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
        Command::Check(args) => commands::check::cmd_check(&args),
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

pub(crate) fn load_all(paths: &[PathBuf]) -> Result<Vec<config::Experiment>> {
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
        label: tiers::shard_label(args.shard),
        attest: false,
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

#[cfg(test)]
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
