//! The `passk` command line, declared with clap: each subcommand takes only its own flags (any
//! other is an error, exit status 2), and `--help` on each documents every flag.
//!
//! The subcommands, flags, positional arguments and defaults are those of the hand-written
//! parser this replaced; `override_usage` keeps each command's synopsis as it was written.
//! Over 600 lines because it is only declarations: every subcommand's flags with their help.
//!
//! Over 600 lines on purpose: every subcommand's flags and their help text in one file, so the
//! whole command line reads (and is reviewed) in one place.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::lm_tools::{LmBenchArgs, LmRandomArgs, LmShapeArgs};
use crate::record::OnCorrupt;
use crate::slurm::SlurmOptions;

// Each command's synopsis, as the hand-written usage text had it (continuation lines indented
// to follow `Usage: `).
const RUN_USAGE: &str = "\
passk run <experiment.toml>... [--results DIR] [--quiet] [--prune] [--cache DIR]
                 [--device D] [--shard I/N] [--cell HASH[,HASH...]] [--wait] [--reuse DIR]
                 [--strict] [--accept-changes] [--on-corrupt rerun|stop] [--force]";
const SLURM_USAGE: &str = "\
passk slurm <experiment.toml>... [--results DIR] [--cache DIR] [--figures DIR]
                   [--device D] [--partition P] [--account A] [--time T] [--cpus N] [--mem M]
                   [--gpus N] [--max-concurrent N] [--cells-per-task N] [--sbatch-extra FILE]
                   [--logs DIR] [--out DIR] [--job-name NAME] [--dry-run]";
const WARM_STARTS_USAGE: &str = "\
passk warm-starts <experiment.toml>... [--cache DIR] [--shard I/N]
                         [--curve S1,S2,...] [--strict] [--quiet]";
const LIST_USAGE: &str = "passk list <experiment.toml>... [--results DIR]";
const STATUS_USAGE: &str = "passk status <experiment.toml>... [--results DIR]";
const EXPERIMENTS_USAGE: &str = "passk experiments [DIR] [--json]";
const OBJECTIVES_USAGE: &str = "passk objectives [--json]";
const REPORT_USAGE: &str = "\
passk report [--results DIR] [--figures DIR] [--per-cell DIR] [--force] [--claims FILE]
                    [--quiet]";
const MANIFEST_USAGE: &str = "passk manifest [--results DIR] [--quiet]";
const VERIFY_USAGE: &str = "\
passk verify [--results DIR] [--figures DIR] [--claims FILE] [--against DIR]";
const SEAL_USAGE: &str = "passk seal [--results DIR] [--cache DIR]...";
const CHECK_USAGE: &str = "\
passk check [--claims FILE] [--results DIR] [--baseline DIR] [--strict]
                   [--experiment NAME] [--json]";
const COMPARE_USAGE: &str = "\
passk compare <experiment.toml> --objective SPEC... [--results DIR] [--out DIR]
                     [--cache DIR] [--device D] [--strict] [--force] [--on-corrupt rerun|stop]
                     [--shard I/N] [--quiet]";
const GATE_USAGE: &str = "passk gate [--claims FILE] [--json]";
const WARM_CACHE_USAGE: &str = "\
passk warm-cache [--cache DIR] [--committed DIR] [--seed] [--json]";
const LM_SHAPE_USAGE: &str = "passk lm-shape <model.gguf> <DIR>";
const LM_RANDOM_USAGE: &str = "passk lm-random <DIR> [SEED]";
const LM_BENCH_USAGE: &str = "\
passk lm-bench <DIR> [--device cpu|cuda] [--dtype f32,bf16] [--shape P,S,T]
                      [--reps N]";

/// passk: the pass@k interference suite's compute binary
#[derive(Parser, Debug)]
#[command(
    name = "passk",
    version,
    subcommand_required = true,
    arg_required_else_help = true,
    max_term_width = 100,
    after_help = "`passk <command> --help` shows one command in full.\n\
                  Defaults: --results results, --figures figures.\n\n\
                  Exit status: 0 success; 1 an error, or `check`/`verify` found a failure; \
                  2 a usage error; 3 `run` incomplete (cells another process is running were \
                  skipped); 130/143 stopped by SIGINT/SIGTERM (the next run resumes)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each repeats `args_override_self`: as before clap, a flag given twice takes
/// its last value (a list flag such as `--cell` collects them all).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every cell of the experiments whose results are missing, then rewrite the manifest
    ///
    /// Run every cell of the experiments whose results are missing (resuming interrupted ones
    /// from their checkpoints), then rewrite the manifest (MANIFEST and ENVIRONMENT.json).
    ///
    /// A cell is done only when its completion record (complete.json: sha256 of each file, its
    /// config hash, its warm start) verifies; one that fails is reported, moved aside to
    /// results/<experiment>/.quarantine/<hash>-<n> (never deleted) and rerun, or with
    /// --on-corrupt stop the run stops before running anything.
    ///
    /// A cell another process is running (it holds results/<experiment>/.lock-<hash>) is skipped;
    /// the run then ends with exit status 3 (incomplete): rerun once that process has finished.
    ///
    /// Each new cell's record names the code that computed it: its tier's code fingerprint, the
    /// sha256 of the sources that determine its numbers (crates/passk-cli/build.rs lists them;
    /// test files excluded). A done cell with another fingerprint is KEPT with a warning (its
    /// numbers may be stale; `passk status` lists it); one with none (made before fingerprints,
    /// or sealed) is kept as of unknown code.
    ///
    /// For tiny experiments the committed warm starts in <results>/warm-starts/ that the cache
    /// lacks are copied into it first, when they match <results>/MANIFEST.
    ///
    /// SIGTERM or SIGINT: the write in progress (a file, a checkpoint, a finished cell's
    /// record) is completed, then passk exits with status 143 (130 for SIGINT); the next run
    /// resumes the cell from its last checkpoint.
    #[command(
        args_override_self = true,
        override_usage = RUN_USAGE
    )]
    Run(RunArgs),
    /// Write (and submit) a Slurm job array with one task per cell not yet done
    ///
    /// Write a Slurm job array with one task per cell not yet done (--cells-per-task N groups N
    /// cells of one experiment), each running `passk run --cell HASH --wait`, and a final job
    /// (--dependency=afterok) that checks every cell is done, writes ENVIRONMENT.json and
    /// MANIFEST and regenerates the figures; then submit both with sbatch (not with --dry-run).
    ///
    /// The scripts, tasks.txt, submit.sh and a copy of this binary go to --out; logs to --logs.
    /// Results, cache and that folder must be on a filesystem every node sees. Tasks are
    /// --requeue: one stopped by SIGTERM resumes from its last checkpoint when it runs again.
    #[command(
        args_override_self = true,
        override_usage = SLURM_USAGE
    )]
    Slurm(SlurmOptions),
    /// Train (or load) the SFT warm starts of tiny experiments and print their profile
    ///
    /// Train (or load from the cache) the SFT warm starts of tiny experiments and print each
    /// one's held-out pass@1 per family (the numbers its cells record at RL step 0), then the
    /// mean and spread over seeds: the profile a control is matched on before RL runs.
    #[command(
        args_override_self = true,
        override_usage = WARM_STARTS_USAGE
    )]
    WarmStarts(WarmStartsArgs),
    /// Print each cell's hash, status (done/missing/corrupt) and matrix coordinates
    #[command(
        args_override_self = true,
        override_usage = LIST_USAGE
    )]
    List(ListArgs),
    /// Print per experiment its counts, then each cell's hash, status and coordinates
    ///
    /// Print per experiment its counts, then each cell's hash, status and matrix coordinates:
    /// complete (done by this build's code), stale-code (done by other code: the sources of its
    /// tier changed since; `passk run --force` reruns it), unknown-code (done, but its record
    /// names no code: made before fingerprints, or sealed), missing, corrupt.
    #[command(
        args_override_self = true,
        override_usage = STATUS_USAGE
    )]
    Status(ListArgs),
    /// Print the experiment files in DIR that `reproduce all` runs
    ///
    /// Print the experiment files in DIR that `reproduce all` runs (`in_all`), one per line;
    /// with --json every experiment file in DIR (claims left out) as a JSON array, for `cargo
    /// xtask`: file, name, tier, in_all, cells (the matrix size), env (the environment variables
    /// its cells read: strings that are exactly "$NAME", the LM tier's model path) and devices
    /// (the `device` its cells ask for, if any).
    #[command(args_override_self = true, override_usage = EXPERIMENTS_USAGE)]
    Experiments(ExperimentsArgs),
    /// List the registered RL objectives (what `rl.objective` and `compare --objective` take)
    ///
    /// List the registered RL objectives, one per line: the name, whether the spec needs
    /// `:k=K`, and what it computes (including whether it is unbiased); with --json as a JSON
    /// array of {name, needs_k, description}.
    #[command(args_override_self = true, override_usage = OBJECTIVES_USAGE)]
    Objectives(ObjectivesArgs),
    /// Regenerate every figure and table under figures/ from results/ only
    ///
    /// Regenerate every figure and table under figures/ from results/ only, write the report
    /// page figures/index.html (experiments, cell counts, claim verdicts, every figure and
    /// table, provenance), and refill the generated blocks (`<!-- generated: PATH -->`) of the
    /// README.md beside figures/ and of docs/*.md. Refuses, writing nothing, while a cell
    /// under results/ fails its completion record.
    #[command(
        args_override_self = true,
        override_usage = REPORT_USAGE
    )]
    Report(ReportArgs),
    /// Rewrite results/MANIFEST (sha256 and size of every result file), approving every file
    /// as it now is; prints each change it approves
    #[command(
        args_override_self = true,
        override_usage = MANIFEST_USAGE
    )]
    Manifest(ManifestArgs),
    /// Fail when results, records, figures or generated doc blocks differ from their sources
    ///
    /// Fail (exit status 1) when a result file differs from MANIFEST, a cell from its
    /// completion record, figures/ from a fresh regeneration, or a generated block of README.md
    /// or docs/*.md from its source.
    ///
    /// With --against DIR (a fresh recomputation of some cells, e.g. the CI gate's
    /// target/passk-check), also when a cell there differs from the committed cell of the same
    /// hash: a file not byte-identical (a completion record compared without its code
    /// fingerprint). Cells not committed are not compared.
    #[command(
        args_override_self = true,
        override_usage = VERIFY_USAGE
    )]
    Verify(VerifyArgs),
    /// Give each cell without a completion record one, when its files match MANIFEST
    ///
    /// Give each cell without a completion record one, only when all its files match MANIFEST
    /// and its cell.json hashes to its name, and add the records to MANIFEST. Exit status 1
    /// when a cell is refused.
    #[command(
        args_override_self = true,
        override_usage = SEAL_USAGE
    )]
    Seal(SealArgs),
    /// Evaluate the claims and print a verdict table; exit status 1 when any claim fails
    ///
    /// Evaluate the claims and print a verdict table (the estimate with its 95% CI, the
    /// statistic the threshold tests, the verdict); exit status 1 when any claim fails.
    ///
    /// Claims marked `baseline = true` read the committed results in --baseline, the others
    /// --results. A claim whose experiment is not under its directory (on a fresh clone: the
    /// gate claims, which read the gate's fresh cells) is NOT EVALUATED, says how to get its
    /// cells, and does not fail the check; --strict makes it fail (`cargo xtask check` passes
    /// --strict with the gate's cells).
    ///
    /// --json prints, instead of the table, one JSON object (for `cargo xtask`): `claims`, each
    /// with name, experiment, statistic, op, threshold, baseline, expected_failure, verdict (the
    /// table's word), passed, not_evaluated, measured, estimate, ci ([low, high] or null), cells
    /// and error; then the counts failed and not_evaluated. The exit status is the same.
    #[command(
        args_override_self = true,
        override_usage = CHECK_USAGE
    )]
    Check(CheckArgs),
    /// Run new objectives on a tiny experiment's cells beside the committed baseline
    ///
    /// Run objective SPEC (repeat --objective for several) on the cells of a tiny experiment
    /// (its q, seeds and cached warm starts, the cache first seeded from the committed ones in
    /// --results/warm-starts/ as for run; cells already committed under --results with the same
    /// configuration are copied, not rerun) into --out, then print and write
    /// (out/compare.{csv,md,tex}, out/compare_tradeoff.{svg,png}) its changes of pass@1 and
    /// pass@k and end-of-training probe cosine beside the committed baseline in --results.
    ///
    /// Add an objective: one file in crates/passk-core/src/objective/ and one line in its
    /// `registry!`.
    #[command(
        args_override_self = true,
        override_usage = COMPARE_USAGE
    )]
    Compare(CompareArgs),
    /// Print the experiment files the CI gate recomputes before checking the claims
    ///
    /// Print the experiment files the CI gate recomputes before checking the claims (the
    /// claims file's `gate` list), one per line; with --json as {"experiments": [...]}.
    #[command(
        args_override_self = true,
        override_usage = GATE_USAGE
    )]
    Gate(GateArgs),
    /// Copy the committed SFT warm starts into a cache; list the cache's uncommitted ones
    ///
    /// With --seed, copy every committed warm-start file (sft-*) of --committed into --cache,
    /// replacing the cache's copy, atomically and under each warm start's lock, after checking
    /// every one against the MANIFEST of the results folder holding --committed (one that
    /// differs is an error and nothing is copied): how the CI gate starts its cache. Then print how many
    /// were copied and the warm starts (sft-<hash>.safetensors) in --cache that --committed
    /// lacks, i.e. that were trained there; with --json as one object: cache, committed,
    /// copied, not_committed.
    #[command(
        args_override_self = true,
        override_usage = WARM_CACHE_USAGE
    )]
    WarmCache(WarmCacheArgs),
    /// Write a GGUF model's config.json and tokenizer.json (no weights) into DIR
    ///
    /// Write the GGUF model's config.json and tokenizer.json (no weights) into DIR: with
    /// `lm-random`, a model of the same shape where the weights cannot be copied.
    #[command(
        args_override_self = true,
        override_usage = LM_SHAPE_USAGE
    )]
    LmShape(LmShapeArgs),
    /// Write DIR/model.safetensors: seeded random weights of the shape in DIR/config.json
    ///
    /// Write DIR/model.safetensors: seeded random f32 weights of the shape in DIR/config.json.
    /// DIR is then a model folder (`model = { dir = ... }` in an lm cell).
    #[command(
        args_override_self = true,
        override_usage = LM_RANDOM_USAGE
    )]
    LmRandom(LmRandomArgs),
    /// Time batched sampling and the log-prob forward + backward of the model in DIR
    ///
    /// Time the model in DIR: batched sampling of S samples for each of P prompts, T new tokens
    /// each, and the log-probability forward + backward of that batch with the last 4 blocks
    /// trainable; prints tokens/s and seconds (median of --reps runs, after one warm-up) for
    /// each dtype.
    #[command(
        args_override_self = true,
        override_usage = LM_BENCH_USAGE
    )]
    LmBench(LmBenchArgs),
}

/// `--results DIR`.
#[derive(Args, Debug, Clone)]
pub struct ResultsArg {
    /// The results folder: results/<experiment>/<cell hash>/, MANIFEST, ENVIRONMENT.json
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
}

/// `--figures DIR`.
#[derive(Args, Debug, Clone)]
pub struct FiguresArg {
    /// The figures folder (its README.md and docs/ siblings hold the generated blocks)
    #[arg(long, value_name = "DIR", default_value = "figures")]
    pub figures: PathBuf,
}

/// `--quiet`, also on when the environment sets `CI`.
#[derive(Args, Debug, Clone)]
pub struct QuietArg {
    /// No progress output or summaries (also when the environment variable CI is set)
    #[arg(long)]
    quiet: bool,
}

impl QuietArg {
    /// `--quiet`, or `CI` set in the environment (to any value).
    pub fn get(&self) -> bool {
        self.quiet || std::env::var_os("CI").is_some()
    }
}

/// `--cache DIR`.
#[derive(Args, Debug, Clone)]
pub struct CacheArg {
    /// Holds reusable SFT warm starts. A cached warm start is checked (sha256 and config
    /// against its sidecar sft-<hash>.json, finite weights); one that fails is retrained with a
    /// warning, or is an error with --strict
    #[arg(long, value_name = "DIR", default_value = "target/passk-cache")]
    pub cache: PathBuf,
}

/// `--device cpu|cuda|auto`.
#[derive(Args, Debug, Clone)]
pub struct DeviceArg {
    /// The device of the trained tiers (cuda needs a build with `--features cuda`; auto: cuda
    /// when there is one, else cpu)
    #[arg(long, value_name = "cpu|cuda|auto", default_value = "cpu", value_parser = parse_device)]
    pub device: passk_policy::DeviceChoice,
}

/// `--on-corrupt rerun|stop`.
#[derive(Args, Debug, Clone)]
pub struct OnCorruptArg {
    /// What to do with a done cell whose completion record fails: move it aside to
    /// .quarantine/ and rerun it, or stop before running anything
    #[arg(
        long,
        value_name = "rerun|stop",
        default_value = "rerun",
        value_parser = PossibleValuesParser::new(["rerun", "stop"])
            .map(|s| s.parse::<OnCorrupt>().expect("one of the possible values")),
    )]
    pub on_corrupt: OnCorrupt,
}

/// The options of `passk run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The experiment files (all are validated before anything runs)
    #[arg(value_name = "experiment.toml", required = true)]
    pub experiments: Vec<PathBuf>,
    #[command(flatten)]
    pub results: ResultsArg,
    #[command(flatten)]
    pub quiet: QuietArg,
    /// Delete cell directories the experiment no longer lists (otherwise a warning names them)
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub cache: CacheArg,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Run only every N-th cell in matrix order (keys sorted, the last varying fastest),
    /// starting at the I-th, so N processes (say one per core, each with RAYON_NUM_THREADS=1)
    /// share a matrix; with `seed` the last key they start on different warm starts. Each
    /// shard updates MANIFEST with the cells whose records verify, so the last to end lists all
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Run only the named cells (hashes as `passk list` prints them; repeat it or separate them
    /// by commas) and leave MANIFEST and ENVIRONMENT.json to a later `passk run` (which
    /// approves the cells by their records and attestations): what each task of a Slurm job
    /// array runs (`passk slurm`)
    #[arg(long = "cell", value_name = "HASH[,HASH...]", value_delimiter = ',', value_parser = parse_cell)]
    pub cells: Vec<String>,
    /// Wait for a cell another process is running instead of skipping it, then find it done,
    /// or resume it from its last checkpoint if that process died
    #[arg(long)]
    pub wait: bool,
    /// Copy, instead of running, every cell that the results folder DIR already holds complete
    /// under the same configuration hash (in any of its experiments), unless its record names
    /// other code than this build's; with --force only cells of this build's code
    #[arg(long, value_name = "DIR")]
    pub reuse: Option<PathBuf>,
    /// A cached warm start that fails its integrity check is an error, not retrained
    #[arg(long)]
    pub strict: bool,
    /// Also approve into MANIFEST files under the results folder that this run neither wrote
    /// nor could verify against a completion record (edited or added by hand); without it
    /// the run ends with an error that names them and leaves MANIFEST alone
    #[arg(long)]
    pub accept_changes: bool,
    #[command(flatten)]
    pub on_corrupt: OnCorruptArg,
    /// Rerun done cells whose record names other code (stale-code) or none (unknown-code);
    /// cells this build made are never rerun
    #[arg(long)]
    pub force: bool,
}

/// The options of `passk warm-starts`.
#[derive(Args, Debug, Clone)]
pub struct WarmStartsArgs {
    /// The tiny experiment files
    #[arg(value_name = "experiment.toml", required = true)]
    pub experiments: Vec<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArg,
    /// Deal the warm starts sharing a stage 1 to N processes; this one does the I-th share
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Follow stage 1 (reliable tag) of each seed and profile it after each listed step count
    /// instead; the cache is not touched
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',', value_parser = parse_step)]
    pub curve: Option<Vec<u64>>,
    /// A cached warm start that fails its integrity check is an error, not retrained
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The options of `passk list` and `passk status`.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// The experiment files
    #[arg(value_name = "experiment.toml", required = true)]
    pub experiments: Vec<PathBuf>,
    #[command(flatten)]
    pub results: ResultsArg,
}

/// The options of `passk experiments`.
#[derive(Args, Debug, Clone)]
pub struct ExperimentsArgs {
    /// The folder of experiment files
    #[arg(value_name = "DIR", default_value = "experiments")]
    pub dir: PathBuf,
    /// Every experiment file in DIR, with what it needs to run, as a JSON array
    #[arg(long)]
    pub json: bool,
}

/// The options of `passk objectives`.
#[derive(Args, Debug, Clone)]
pub struct ObjectivesArgs {
    /// The registry as a JSON array
    #[arg(long)]
    pub json: bool,
}

/// The options of `passk report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub results: ResultsArg,
    #[command(flatten)]
    pub figures: FiguresArg,
    /// Also write each probed cell's own probe figures (inner products by probe step,
    /// agreement, Gram heatmap) into DIR/<experiment>/, named by cell hash
    #[arg(long, value_name = "DIR")]
    pub per_cell: Option<PathBuf>,
    /// Replace a --figures folder holding files report did not write (refused otherwise)
    #[arg(long)]
    pub force: bool,
    /// The claims file the report page (index.html) evaluates; the experiment files are read
    /// from its folder
    #[command(flatten)]
    pub claims: ClaimsArg,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The options of `passk manifest`.
#[derive(Args, Debug, Clone)]
pub struct ManifestArgs {
    #[command(flatten)]
    pub results: ResultsArg,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The options of `passk verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub results: ResultsArg,
    #[command(flatten)]
    pub figures: FiguresArg,
    #[command(flatten)]
    pub claims: ClaimsArg,
    /// A fresh recomputation whose cells must equal the committed ones of the same hash
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
}

/// The options of `passk seal`.
#[derive(Args, Debug, Clone)]
pub struct SealArgs {
    #[command(flatten)]
    pub results: ResultsArg,
    /// Where tiny cells' warm starts are looked up, to record their sha256: the first DIR
    /// holding it (repeatable; default target/passk-cache, then <results>/warm-starts)
    #[arg(long = "cache", value_name = "DIR")]
    pub caches: Vec<PathBuf>,
}

/// `--claims FILE`.
#[derive(Args, Debug, Clone)]
pub struct ClaimsArg {
    /// The claims file
    #[arg(long, value_name = "FILE", default_value = "experiments/claims.toml")]
    pub claims: PathBuf,
}

/// The options of `passk check`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub claims: ClaimsArg,
    #[command(flatten)]
    pub results: ResultsArg,
    /// The committed results that claims marked `baseline = true` read
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub baseline: PathBuf,
    /// A claim NOT EVALUATED (its experiment absent) fails the check
    #[arg(long)]
    pub strict: bool,
    /// Evaluate only the claims that read experiment NAME (an error when there is none)
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Print the verdicts as JSON instead of the table
    #[arg(long)]
    pub json: bool,
}

/// The options of `passk compare`.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// The tiny experiment file
    #[arg(value_name = "experiment.toml")]
    pub experiment: PathBuf,
    /// An objective as crates/passk-core/src/objective/ names it, e.g.
    /// pkpo_loo_minus_one:k=4 (repeat it for several)
    #[arg(long = "objective", value_name = "SPEC", required = true)]
    pub objectives: Vec<String>,
    #[command(flatten)]
    pub results: ResultsArg,
    /// Where the new cells, tables and figures go
    #[arg(long, value_name = "DIR", default_value = "target/passk-compare")]
    pub out: PathBuf,
    #[command(flatten)]
    pub cache: CacheArg,
    #[command(flatten)]
    pub device: DeviceArg,
    /// A cached warm start that fails its integrity check is an error, not retrained
    #[arg(long)]
    pub strict: bool,
    /// Also rerun committed cells that record no code fingerprint (every cell from before
    /// fingerprints) instead of copying them with a warning. Cells whose record names other
    /// code than this build's (an objective edited under the same name) always rerun
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub on_corrupt: OnCorruptArg,
    /// Run only shard I of N of the cells (1-based), and no table: `cargo xtask compare` runs
    /// one such process per core, then `passk compare` without it for the table
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The options of `passk gate`.
#[derive(Args, Debug, Clone)]
pub struct GateArgs {
    #[command(flatten)]
    pub claims: ClaimsArg,
    /// Print {"experiments": [...]} instead of one file per line
    #[arg(long)]
    pub json: bool,
}

/// The options of `passk warm-cache`.
#[derive(Args, Debug, Clone)]
pub struct WarmCacheArgs {
    #[command(flatten)]
    pub cache: CacheArg,
    /// The committed warm starts
    #[arg(long, value_name = "DIR", default_value = "results/warm-starts")]
    pub committed: PathBuf,
    /// First copy every committed warm-start file into the cache
    #[arg(long)]
    pub seed: bool,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

/// Parses `--device` before anything runs: an unknown device is an error, never recorded.
pub fn parse_device(text: &str) -> anyhow::Result<passk_policy::DeviceChoice> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("unknown device {text:?}; expected cpu|cuda|auto"))
}

/// Parses one of `--curve`'s step counts: a positive whole number.
fn parse_step(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected positive step counts, e.g. --curve 500,600,700".to_string()),
    }
}

/// Parses one hash of `--cell HASH[,HASH...]` (as `passk list` prints them), lower-cased.
fn parse_cell(text: &str) -> Result<String, String> {
    let h = text.trim();
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "expected cell hashes as `passk list` prints them, e.g. --cell 0123abcd4567ef89"
                .to_string(),
        );
    }
    Ok(h.to_ascii_lowercase())
}

/// Parses `I/N` (1-based shard I of N).
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let parsed = text.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => Ok((i, n)),
        _ => Err("expected I/N with 1 <= I <= N, e.g. --shard 1/2".to_string()),
    }
}

/// Parses a positive whole number.
pub fn positive<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + Default + PartialOrd,
{
    text.parse::<T>()
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| "expected a positive whole number, e.g. 2".to_string())
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
