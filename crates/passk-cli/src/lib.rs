//! The `passk` command line: runs experiment cells, regenerates figures, hashes and verifies
//! results, and checks the claims. `cargo xtask` drives it through the `passk` binary; the
//! end-to-end tests call [`run_cli`] in-process.

pub mod compare;
pub mod config;
mod environment;
pub mod figures;
mod lm;
mod lm_tools;
mod page;
pub mod provenance;
pub mod readme;
pub mod record;
pub mod run;
pub mod signals;
pub mod slurm;
pub mod status;
pub mod theory;
pub mod tiers;
pub mod tiny;
mod usage;
mod warm_cache;
mod warm_starts;
pub mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::usage::{usage_of, USAGE};

struct Args {
    positional: Vec<String>,
    results: PathBuf,
    figures: PathBuf,
    claims: PathBuf,
    baseline: PathBuf,
    quiet: bool,
    prune: bool,
    strict: bool,
    cache: PathBuf,
    reuse: Option<PathBuf>,
    device: passk_policy::DeviceChoice,
    force: bool,
    on_corrupt: record::OnCorrupt,
    caches: Vec<PathBuf>,
    shard: Option<(usize, usize)>,
    cells: Vec<String>,
    wait: bool,
    curve: Option<Vec<u64>>,
    per_cell: Option<PathBuf>,
    objective: Vec<String>,
    out: PathBuf,
}

fn parse_args(raw: &[String]) -> Result<Args> {
    let mut args = Args {
        positional: Vec::new(),
        results: PathBuf::from("results"),
        figures: PathBuf::from("figures"),
        claims: PathBuf::from("experiments/claims.toml"),
        baseline: PathBuf::from("results"),
        quiet: std::env::var_os("CI").is_some(),
        prune: false,
        strict: false,
        cache: PathBuf::from("target/passk-cache"),
        reuse: None,
        device: passk_policy::DeviceChoice::Cpu,
        force: false,
        on_corrupt: record::OnCorrupt::Rerun,
        caches: Vec::new(),
        shard: None,
        cells: Vec::new(),
        wait: false,
        curve: None,
        per_cell: None,
        objective: Vec::new(),
        out: PathBuf::from("target/passk-compare"),
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value; see `passk --help`"))
        };
        match arg.as_str() {
            "--results" => args.results = value("--results")?.into(),
            "--figures" => args.figures = value("--figures")?.into(),
            "--claims" => args.claims = value("--claims")?.into(),
            "--baseline" => args.baseline = value("--baseline")?.into(),
            "--objective" => args.objective.push(value("--objective")?),
            "--out" => args.out = value("--out")?.into(),
            "--cache" => {
                args.cache = value("--cache")?.into();
                args.caches.push(args.cache.clone());
            }
            "--on-corrupt" => args.on_corrupt = value("--on-corrupt")?.parse()?,
            "--reuse" => args.reuse = Some(value("--reuse")?.into()),
            "--device" => args.device = parse_device(&value("--device")?)?,
            "--shard" => args.shard = Some(parse_shard(&value("--shard")?)?),
            "--cell" => args.cells.extend(parse_cells(&value("--cell")?)?),
            "--wait" => args.wait = true,
            "--per-cell" => args.per_cell = Some(value("--per-cell")?.into()),
            "--curve" => args.curve = Some(parse_steps(&value("--curve")?)?),
            "--quiet" => args.quiet = true,
            "--prune" => args.prune = true,
            "--strict" => args.strict = true,
            "--force" => args.force = true,
            flag if flag.starts_with("--") => bail!("unknown option {flag}; see `passk --help`"),
            other => args.positional.push(other.to_string()),
        }
    }
    Ok(args)
}

/// Parses `--device` before anything runs: an unknown device is an error, never recorded.
fn parse_device(text: &str) -> Result<passk_policy::DeviceChoice> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("--device {text:?}: unknown device; expected cpu|cuda|auto"))
}

/// Parses a comma-separated list of positive step counts.
fn parse_steps(text: &str) -> Result<Vec<u64>> {
    text.split(',')
        .map(|s| match s.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("--curve {text:?}: expected positive step counts, e.g. --curve 500,600,700"),
        })
        .collect()
}

/// Parses `--cell HASH[,HASH...]`: cell hashes as `passk list` prints them.
fn parse_cells(text: &str) -> Result<Vec<String>> {
    text.split(',')
        .map(|h| {
            let h = h.trim();
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("--cell {text:?}: expected cell hashes as `passk list` prints them, e.g. --cell 0123abcd4567ef89");
            }
            Ok(h.to_ascii_lowercase())
        })
        .collect()
}

/// Parses `I/N` (1-based shard I of N).
fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => Ok((i, n)),
        _ => bail!("--shard {text:?}: expected I/N with 1 <= I <= N, e.g. --shard 1/2"),
    }
}

/// Runs the command line `raw` (without the program name); errors are usage or input errors.
pub fn run_cli(raw: &[String]) -> Result<ExitCode> {
    let Some(command) = raw.first() else {
        print!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    if command == "--help" || command == "-h" || command == "help" {
        match raw.get(1).and_then(|c| usage_of(c)) {
            Some(block) => print!("{block}"),
            None => print!("{USAGE}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if command == "--version" || command == "-V" {
        println!("passk {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    if raw[1..].iter().any(|a| a == "--help" || a == "-h") {
        let Some(block) = usage_of(command) else {
            bail!("unknown command {command:?}; `passk --help` lists them");
        };
        print!("{block}");
        return Ok(ExitCode::SUCCESS);
    }
    if command == "slurm" {
        return slurm::cmd_slurm(&raw[1..]);
    }
    if lm_tools::dispatch(command, &raw[1..])?.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    let args = parse_args(&raw[1..])?;
    let takes_files = matches!(
        command.as_str(),
        "run" | "list" | "status" | "experiments" | "compare" | "warm-starts"
    );
    if !takes_files && !args.positional.is_empty() {
        bail!(
            "`passk {command}` takes no file arguments (got {:?}); use the options shown by \
             `passk --help`, e.g. --claims FILE or --results DIR",
            args.positional
        );
    }
    match command.as_str() {
        "run" => cmd_run(&args),
        "compare" => cmd_compare(&args),
        "list" => cmd_list(&args),
        "status" => {
            let experiments = load_all(&args.positional)?;
            print!("{}", status::render(&experiments, &args.results).0);
            Ok(ExitCode::SUCCESS)
        }
        "warm-starts" => {
            let experiments = load_all(&args.positional)?;
            match &args.curve {
                Some(steps) => warm_starts::curve(&experiments, steps, args.shard, args.quiet)?,
                None => warm_starts::profile(
                    &experiments,
                    &args.cache,
                    args.shard,
                    args.quiet,
                    args.strict,
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        "experiments" => cmd_experiments(&args),
        "report" => {
            let written =
                figures::regenerate(&args.results, &args.figures, &args.claims, args.force)?;
            let readme = readme::sync(&args.figures)?;
            if let Some(dir) = &args.per_cell {
                let n = figures::render_cell_figures(&args.results, dir)?;
                eprintln!(
                    "report: wrote {n} per-cell probe files under {}",
                    dir.display()
                );
            }
            if !args.quiet {
                eprintln!(
                    "report: wrote {written} files under {}{}",
                    args.figures.display(),
                    if readme {
                        format!(
                            " and refreshed {}",
                            readme::readme_of(&args.figures).display()
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        "manifest" => {
            let n = passk_report::manifest::write_manifest(&args.results).with_context(|| {
                format!("cannot write the manifest of {}", args.results.display())
            })?;
            if !args.quiet {
                eprintln!(
                    "manifest: {n} files listed in {}/MANIFEST",
                    args.results.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        "verify" => cmd_verify(&args),
        "seal" => cmd_seal(&args),
        "check" => cmd_check(&args),
        "gate" => {
            let text = std::fs::read_to_string(&args.claims)
                .with_context(|| format!("cannot read {}", args.claims.display()))?;
            for file in passk_report::claims::parse_claims(&text, &args.claims)?.gate {
                println!("{file}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command {other:?}; see `passk --help`"),
    }
}

fn load_all(paths: &[String]) -> Result<Vec<config::Experiment>> {
    if paths.is_empty() {
        bail!("name at least one experiment file, e.g. experiments/theory.toml");
    }
    // Validate every file before running anything: a bad file writes nothing.
    let experiments = paths
        .iter()
        .map(|p| config::load_experiment(Path::new(p)))
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

fn cmd_compare(args: &Args) -> Result<ExitCode> {
    let [exp] = args.positional.as_slice() else {
        bail!("compare takes one experiment file, e.g. `passk compare experiments/tiny-core.toml --objective pkpo_loo_minus_one:k=4`");
    };
    if args.objective.is_empty() {
        bail!("compare needs --objective SPEC (repeat it for several; see crates/passk-core/src/objective/)");
    }
    let ctx = tiers::RunContext {
        cache_dir: args.cache.clone(),
        device: args.device.to_string(),
        quiet: args.quiet,
        strict: args.strict,
        on_corrupt: args.on_corrupt,
        force: args.force,
    };
    let table = compare::compare(
        Path::new(exp),
        &args.objective,
        &args.results,
        &args.out,
        &ctx,
    )?;
    print!("{}", table.to_markdown());
    println!(
        "compare: table written to {0}/compare.{{csv,md,tex}}, figure to {0}/compare_tradeoff.{{svg,png}}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_run(args: &Args) -> Result<ExitCode> {
    let experiments = load_all(&args.positional)?;
    if experiments.iter().any(|e| e.tier == "tiny") {
        warm_cache::seed_from_committed(&args.results, &args.cache)?;
    }
    let experiments = select_cells(experiments, &args.cells)?;
    let mut ran = 0;
    let mut busy = 0;
    for exp in &experiments {
        let stale = run::stale_cells(exp, &args.results)?;
        for dir in &stale {
            if args.prune {
                std::fs::remove_dir_all(dir)?;
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
        let ctx = tiers::RunContext {
            cache_dir: args.cache.clone(),
            device: args.device.to_string(),
            quiet: args.quiet,
            strict: args.strict,
            on_corrupt: args.on_corrupt,
            force: args.force,
        };
        let exp = &match args.shard {
            Some((i, n)) => exp.shard(i, n),
            None => exp.clone(),
        };
        if let Some(from) = &args.reuse {
            let copied = run::reuse_cells(exp, from, &args.results, args.force)?;
            if copied > 0 && !args.quiet {
                println!(
                    "{}: {copied} cells copied from {}",
                    exp.name,
                    from.display()
                );
            }
        }
        let wait = if args.wait {
            run::Busy::Wait
        } else {
            run::Busy::Skip
        };
        let stats = run::run_experiment_with(exp, &args.results, &ctx, wait)?;
        ran += stats.ran;
        busy += stats.busy;
        if stats.quarantined > 0 {
            eprintln!(
                "{}: {} corrupt cell(s) were moved aside to {}/{}/{} and rerun (messages above)",
                exp.name,
                stats.quarantined,
                args.results.display(),
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
        if !args.quiet {
            eprintln!(
                "run: --cell given: MANIFEST and ENVIRONMENT.json left to a later `passk run`"
            );
        }
    } else {
        // Also when a run killed after its last cell but before this line left none.
        if ran > 0 || !args.results.join("ENVIRONMENT.json").exists() {
            environment::write(&args.results, &args.device.to_string())?;
        }
        passk_report::manifest::write_manifest(&args.results)
            .with_context(|| format!("cannot write the manifest of {}", args.results.display()))?;
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

fn cmd_list(args: &Args) -> Result<ExitCode> {
    for exp in load_all(&args.positional)? {
        println!(
            "{} ({}, tier {}): {} cells",
            exp.name,
            exp.path.display(),
            exp.tier,
            exp.cells.len()
        );
        for cell in &exp.cells {
            let status = match record::state(&args.results, &exp.name, &cell.hash) {
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

fn cmd_experiments(args: &Args) -> Result<ExitCode> {
    let dir = args
        .positional
        .first()
        .map_or_else(|| PathBuf::from("experiments"), PathBuf::from);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let Ok(table) = text.parse::<toml::Table>() else {
            bail!("{}: malformed TOML", file.display());
        };
        if !table.contains_key("experiment") {
            continue; // claims and other non-experiment files
        }
        let exp = config::load_experiment(&file)?;
        if exp.in_all {
            println!("{}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_verify(args: &Args) -> Result<ExitCode> {
    let mut problems: Vec<String> = passk_report::manifest::verify_manifest(&args.results)
        .iter()
        .map(|p| format!("results/{p}"))
        .collect();
    if args.results.is_dir() {
        problems.extend(
            record::verify_all(&args.results)?
                .into_iter()
                .map(|p| format!("results/{p}")),
        );
    }
    problems.extend(figures::verify(&args.results, &args.figures, &args.claims)?);
    problems.extend(readme::verify(&args.figures)?);
    if problems.is_empty() {
        println!(
            "verify: every result file matches {}/MANIFEST, every cell its completion record, \
             and {} matches a fresh regeneration",
            args.results.display(),
            args.figures.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("verify: {p}");
        }
        eprintln!("verify FAILED: {} problem(s)", problems.len());
        Ok(ExitCode::from(1))
    }
}

fn cmd_seal(args: &Args) -> Result<ExitCode> {
    let caches = if args.caches.is_empty() {
        vec![args.cache.clone(), args.results.join("warm-starts")]
    } else {
        args.caches.clone()
    };
    let report = record::seal(&args.results, &caches)?;
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

fn cmd_check(args: &Args) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.claims)
        .with_context(|| format!("cannot read {}", args.claims.display()))?;
    let claims = passk_report::claims::parse_claims(&text, &args.claims)?;
    let verdicts = passk_report::claims::evaluate(&claims.claim, &args.results, &args.baseline);
    print!("{}", passk_report::claims::render_table(&verdicts));
    let skipped = verdicts.iter().filter(|v| v.not_evaluated).count();
    let failed = verdicts
        .iter()
        .filter(|v| !v.passed && (args.strict || !v.not_evaluated))
        .count();
    let evaluated = verdicts.len() - skipped;
    if failed > 0 {
        println!("check: {failed} of {} claims FAILED", verdicts.len());
        Ok(ExitCode::from(1))
    } else if skipped > 0 {
        println!(
            "check: all {evaluated} evaluated claims hold; {skipped} NOT EVALUATED (their \
             experiments are not under {}: the gate's fresh cells, see above). `cargo xtask \
             check` recomputes and requires them; --strict makes a claim not evaluated fail",
            args.results.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("check: all {} claims hold", verdicts.len());
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
