//! `passk slurm`: an experiment matrix as a Slurm job array.
//!
//! It writes, into a fresh folder (default `target/passk-slurm/<job name>-<unix time>/`):
//!
//! - `tasks.txt`: one line per array task, `<experiment.toml> <hash>[,<hash>...]`, the cells
//!   that were missing (or failed their completion check) when it was written;
//! - `array.sbatch`: the job array, one task per line of `tasks.txt`; task `i` runs
//!   `passk run <experiment.toml> --cell <hashes> --wait`, so a task whose cell another process
//!   runs (a requeued task's ghost, an overlapping submission) waits for it instead of failing;
//! - `final.sbatch`: submitted with `--dependency=afterok` on every task (so a task cancelled
//!   and requeued counts by its last run; see `submit.sh`); it checks that every cell is
//!   done, then runs `passk run` (nothing left to run: it writes `ENVIRONMENT.json` and
//!   `MANIFEST`) and `passk report` (figures), under `flock` on `<results>/.lock-slurm-final`
//!   so two final jobs never write at once;
//! - `submit.sh`: the two `sbatch` calls; `passk slurm` runs it unless `--dry-run`;
//! - `requeue.sh TASK...`: requeues cancelled or failed tasks and renews the final job's
//!   dependency (Slurm keeps a dependency on a cancelled task failed);
//! - `passk`: a copy of this binary, so rebuilding passk while the jobs wait changes nothing.
//!
//! Every path in the scripts is absolute: the folder, the results and the cache must be on a
//! filesystem every node sees. Array tasks are submitted with `--requeue`; a task stopped by
//! SIGTERM (preemption, `scancel`, the time limit) finishes its write, exits 143, and resumes
//! from its last checkpoint when it runs again ([`crate::signals`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::positive;
use crate::config::{load_experiment, Experiment};
use crate::record::{self, CellState};

/// The options of `passk slurm` (its command line, declared with clap; see `passk slurm --help`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SlurmOptions {
    /// The experiment files
    #[arg(value_name = "experiment.toml", required = true)]
    pub experiments: Vec<PathBuf>,
    /// The results folder (on a filesystem every node sees)
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// The warm-start cache of the cells (on a filesystem every node sees)
    #[arg(long, value_name = "DIR", default_value = "target/passk-cache")]
    pub cache: PathBuf,
    /// Where the final job writes the figures
    #[arg(long, value_name = "DIR", default_value = "figures")]
    pub figures: PathBuf,
    /// The cells' device: cpu|cuda|auto [default: cpu, or cuda with --gpus]; --device cuda
    /// alone asks for one GPU per task
    #[arg(long, value_name = "D", value_parser = device_word)]
    pub device: Option<String>,
    /// #SBATCH --partition
    #[arg(long, value_name = "P", value_parser = word)]
    pub partition: Option<String>,
    /// #SBATCH --account
    #[arg(long, value_name = "A", value_parser = word)]
    pub account: Option<String>,
    /// #SBATCH --time, per task
    #[arg(long, value_name = "T", value_parser = word)]
    pub time: Option<String>,
    /// --cpus-per-task and the threads of each task
    #[arg(long, value_name = "N", default_value = "1", value_parser = positive::<u32>)]
    pub cpus: u32,
    /// #SBATCH --mem, per task
    #[arg(long, value_name = "M", value_parser = word)]
    pub mem: Option<String>,
    /// GPUs per task (--gres=gpu:N); the cells then run with --device cuda
    #[arg(long, value_name = "N", value_parser = positive::<u32>)]
    pub gpus: Option<u32>,
    /// Run at most N tasks at once (--array=...%N)
    #[arg(long, value_name = "N", value_parser = positive::<u32>)]
    pub max_concurrent: Option<u32>,
    /// Group N cells of one experiment into each array task
    #[arg(long, value_name = "N", default_value = "1", value_parser = positive::<usize>)]
    pub cells_per_task: usize,
    /// A file whose #SBATCH lines are added to both scripts
    #[arg(long, value_name = "FILE")]
    pub sbatch_extra: Option<PathBuf>,
    /// The folder of the jobs' logs [default: <out>/logs]
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// The folder to write: scripts, tasks.txt, submit.sh and a copy of this binary [default:
    /// target/passk-slurm/<job name>-<unix time>/, printed]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The job name [default: passk-<first experiment's name>]
    #[arg(long, value_name = "NAME", value_parser = word)]
    pub job_name: Option<String>,
    /// Write and print the scripts, do not submit them (`bash <out>/submit.sh` does)
    #[arg(long)]
    pub dry_run: bool,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            experiments: Vec::new(),
            results: PathBuf::from("results"),
            cache: PathBuf::from("target/passk-cache"),
            figures: PathBuf::from("figures"),
            device: None,
            partition: None,
            account: None,
            time: None,
            cpus: 1,
            mem: None,
            gpus: None,
            max_concurrent: None,
            cells_per_task: 1,
            sbatch_extra: None,
            logs: None,
            out: None,
            job_name: None,
            dry_run: false,
        }
    }
}

impl SlurmOptions {
    /// Parses the arguments after `passk slurm` (as the command line does), then [`Self::check`]s
    /// them.
    pub fn parse(raw: &[String]) -> Result<SlurmOptions> {
        let argv = ["passk", "slurm"].into_iter().map(String::from);
        let cli =
            <crate::cli::Cli as clap::Parser>::try_parse_from(argv.chain(raw.iter().cloned()))?;
        let crate::cli::Command::Slurm(o) = cli.command else {
            unreachable!("parsed as `passk slurm`")
        };
        o.check()?;
        Ok(o)
    }

    /// What clap cannot check: --gpus with --device cpu.
    pub fn check(&self) -> Result<()> {
        if self.gpus.is_some() && self.device.as_deref().is_some_and(|d| d == "cpu") {
            bail!("--gpus with --device cpu: the cells would not use the GPUs; drop one of them");
        }
        Ok(())
    }

    /// The device the cells run on: `--device`, else `cuda` with `--gpus`, else `cpu`.
    pub fn device(&self) -> &str {
        match (&self.device, self.gpus) {
            (Some(d), _) => d,
            (None, Some(_)) => "cuda",
            (None, None) => "cpu",
        }
    }

    /// GPUs per task: `--gpus`, or 1 for `--device cuda`.
    pub fn gpus(&self) -> Option<u32> {
        self.gpus.or((self.device() == "cuda").then_some(1))
    }
}

/// A value that goes into an `#SBATCH` line: one word, no quotes.
fn word(v: &str) -> Result<String> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_graphic() && !"'\"\\`$".contains(c))
    {
        bail!("expected one word without spaces or quotes, e.g. gpu");
    }
    Ok(v.to_string())
}

/// `--device`: checked as `passk run` checks it, kept as written (lower-cased).
fn device_word(v: &str) -> Result<String> {
    crate::cli::parse_device(v)?;
    Ok(v.to_ascii_lowercase())
}

/// One array task: an experiment file and the cells it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The experiment file (absolute).
    pub experiment: PathBuf,
    /// Its cells' hashes.
    pub cells: Vec<String>,
}

/// The array tasks for the cells of `experiments` that are not complete under `results`,
/// `per_task` cells of one experiment each, in matrix order.
pub fn plan(experiments: &[(PathBuf, Experiment)], results: &Path, per_task: usize) -> Vec<Task> {
    let mut tasks = Vec::new();
    for (file, exp) in experiments {
        let missing: Vec<String> = exp
            .cells
            .iter()
            .filter(|c| record::state(results, &exp.name, &c.hash) != CellState::Complete)
            .map(|c| c.hash.clone())
            .collect();
        for chunk in missing.chunks(per_task.max(1)) {
            tasks.push(Task {
                experiment: file.clone(),
                cells: chunk.to_vec(),
            });
        }
    }
    tasks
}

/// `text` quoted for bash (single quotes).
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn path_q(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// Where everything goes: absolute paths.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The folder holding the scripts and the binary copy.
    pub dir: PathBuf,
    /// The working directory of the jobs.
    pub workdir: PathBuf,
    /// `--results`, `--cache`, `--figures`, `--logs`.
    pub results: PathBuf,
    /// The warm-start cache.
    pub cache: PathBuf,
    /// The figures folder.
    pub figures: PathBuf,
    /// The log folder.
    pub logs: PathBuf,
}

/// The text of `tasks.txt`.
pub fn tasks_text(tasks: &[Task]) -> String {
    let mut s = String::new();
    for t in tasks {
        let _ = writeln!(s, "{} {}", t.experiment.display(), t.cells.join(","));
    }
    s
}

fn common_header(o: &SlurmOptions, lay: &Layout, name: &str, extra: &str) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --chdir={}", lay.workdir.display());
    for (key, v) in [
        ("partition", &o.partition),
        ("account", &o.account),
        ("time", &o.time),
        ("mem", &o.mem),
    ] {
        if let Some(v) = v {
            let _ = writeln!(s, "#SBATCH --{key}={v}");
        }
    }
    s.push_str(extra);
    s
}

/// The job array script.
pub fn array_script(
    o: &SlurmOptions,
    lay: &Layout,
    name: &str,
    tasks: usize,
    extra: &str,
) -> String {
    let mut s = common_header(o, lay, name, extra);
    let limit = o.max_concurrent.map_or(String::new(), |n| format!("%{n}"));
    let _ = writeln!(s, "#SBATCH --array=0-{}{limit}", tasks.saturating_sub(1));
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", o.cpus);
    if let Some(g) = o.gpus() {
        let _ = writeln!(s, "#SBATCH --gres=gpu:{g}");
    }
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --output={}/%A_%a.out", lay.logs.display());
    let _ = write!(
        s,
        r#"
# Written by `passk slurm`. Task i runs the cells on line i+1 of tasks.txt. A task whose cell
# another process is running waits for it (--wait); one stopped by SIGTERM (preemption, scancel,
# the time limit) finishes its write, exits 143, and resumes from its last checkpoint when Slurm
# (or `scontrol requeue`) runs it again.
set -euo pipefail
PASSK={passk}
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {tasks})
read -r experiment cells <<<"$line"
export RAYON_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}} CANDLE_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
echo "passk task $SLURM_ARRAY_TASK_ID (job $SLURM_JOB_ID, restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname): $experiment $cells"
exec "$PASSK" run "$experiment" --cell "$cells" --wait \
    --results {results} --cache {cache} --device {device}
"#,
        passk = path_q(&lay.dir.join("passk")),
        tasks = path_q(&lay.dir.join("tasks.txt")),
        results = path_q(&lay.results),
        cache = path_q(&lay.cache),
        device = o.device(),
    );
    s
}

/// The final job's script: check, manifest, figures.
pub fn final_script(
    o: &SlurmOptions,
    lay: &Layout,
    name: &str,
    experiments: &[PathBuf],
    extra: &str,
) -> String {
    let mut s = common_header(o, lay, &format!("{name}-final"), extra);
    let _ = writeln!(s, "#SBATCH --cpus-per-task=1");
    let _ = writeln!(s, "#SBATCH --output={}/final_%j.out", lay.logs.display());
    let exps: Vec<String> = experiments.iter().map(|p| path_q(p)).collect();
    let _ = write!(
        s,
        r#"
# Written by `passk slurm`; runs after every array task succeeded (--dependency=afterok, see
# submit.sh).
set -euo pipefail
PASSK={passk}
EXPERIMENTS=({exps})
RESULTS={results}
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
# One final job at a time per results folder (overlapping submissions).
exec 9>"$RESULTS/.lock-slurm-final"
flock 9
not_done=$("$PASSK" list "${{EXPERIMENTS[@]}}" --results "$RESULTS" |
    awk '$1 ~ /^[0-9a-f]+$/ && $2 != "done"')
if [ -n "$not_done" ]; then
    echo "passk final: these cells are not done (see the array tasks' logs):"
    echo "$not_done"
    echo "rerun \`passk slurm\` with the same arguments to submit them again"
    exit 1
fi
# Nothing is left to run: this writes ENVIRONMENT.json (if missing) and MANIFEST.
"$PASSK" run "${{EXPERIMENTS[@]}}" --results "$RESULTS" --cache {cache} --device {device}
"$PASSK" report --results "$RESULTS" --figures {figures}
echo "passk final: done; \`passk verify --results $RESULTS --figures {figures}\` checks it"
"#,
        passk = path_q(&lay.dir.join("passk")),
        exps = exps.join(" "),
        results = path_q(&lay.results),
        cache = path_q(&lay.cache),
        device = o.device(),
        figures = path_q(&lay.figures),
    );
    s
}

/// The submission script.
pub fn submit_script(lay: &Layout, tasks: usize) -> String {
    format!(
        r#"#!/bin/bash
# Written by `passk slurm`: submits the array, then the final job that waits for it.
set -euo pipefail
command -v sbatch >/dev/null || {{
    echo "sbatch not found: run this script on a machine of the Slurm cluster (a login node)" >&2
    exit 1
}}
cd {dir}
mkdir -p {logs}
array=$(sbatch --parsable array.sbatch)
array=${{array%%;*}}
{dependency}
final=$(sbatch --parsable --dependency="$after" final.sbatch)
final=${{final%%;*}}
echo "$array $final" >>jobs.txt
echo "submitted: array job $array ({tasks} tasks), final job $final"
"#,
        dir = path_q(&lay.dir),
        logs = path_q(&lay.logs),
        dependency = dependency_line(tasks),
    )
}

/// The final job's dependency: `afterok` on each task by name (`<array>_<i>`) up to
/// [`PER_TASK_DEPENDENCY_LIMIT`] tasks, above it on the whole array (`afterok:<array>`). Slurm
/// (22.05) keeps either failed once a task was cancelled, even after the task is requeued and
/// succeeds; `requeue.sh` sets the per-task form again after requeueing, which Slurm then
/// evaluates afresh.
fn dependency_line(tasks: usize) -> String {
    if tasks <= PER_TASK_DEPENDENCY_LIMIT {
        format!(
            "after=afterok$(for i in $(seq 0 {}); do printf ':%s_%s' \"$array\" \"$i\"; done)",
            tasks.saturating_sub(1)
        )
    } else {
        "after=afterok:$array".to_string()
    }
}

/// The script that requeues cancelled or failed tasks and renews the final job's dependency.
pub fn requeue_script(lay: &Layout, tasks: usize) -> String {
    format!(
        r#"#!/bin/bash
# Written by `passk slurm`: `bash requeue.sh TASK...` requeues array tasks (by index) that were
# cancelled (scancel) or failed, then renews the final job's dependency on every task: Slurm
# keeps a dependency on a cancelled task failed even after the task is requeued. A requeued
# task resumes its cell from the last checkpoint.
set -euo pipefail
[ $# -ge 1 ] || {{ echo "usage: bash $0 TASK... (task indices, 0-based, as in tasks.txt)" >&2; exit 2; }}
cd {dir}
read -r array final < <(tail -1 jobs.txt)
for task in "$@"; do
    scontrol requeue "${{array}}_$task"
    # A requeued job may not start for about two minutes; let it start now.
    scontrol update JobId="${{array}}_$task" StartTime=now || true
done
{dependency}
scontrol update JobId="$final" Dependency="$after"
echo "requeued task(s) $* of array job $array; final job $final waits for them"
"#,
        dir = path_q(&lay.dir),
        dependency = dependency_line(tasks.min(PER_TASK_DEPENDENCY_LIMIT)),
    )
}

/// Up to this many tasks the final job depends on each task by name (see `submit.sh`).
pub const PER_TASK_DEPENDENCY_LIMIT: usize = 1000;

/// Reads `--sbatch-extra FILE`: `#SBATCH` lines (and comments, blank lines) only.
pub fn read_extra(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --sbatch-extra {}", path.display()))?;
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if !t.starts_with('#') {
            bail!(
                "{}:{}: {t:?} is not an #SBATCH line; --sbatch-extra takes `#SBATCH --option=value` \
                 lines (and # comments) only",
                path.display(),
                n + 1
            );
        }
        out.push_str(t);
        out.push('\n');
    }
    Ok(out)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(p))
}

/// `passk slurm`: writes the scripts and, unless `--dry-run`, submits them.
pub fn cmd_slurm(o: &SlurmOptions) -> Result<ExitCode> {
    o.check()?;
    let mut experiments = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for file in &o.experiments {
        let exp = load_experiment(file)?;
        if !names.insert(exp.name.clone()) {
            bail!(
                "two experiment files are named {:?}; names must be unique",
                exp.name
            );
        }
        experiments.push((absolute(file)?, exp));
    }
    let tasks = plan(&experiments, &o.results, o.cells_per_task);
    let cells: usize = tasks.iter().map(|t| t.cells.len()).sum();
    if tasks.is_empty() {
        println!(
            "slurm: every cell is done under {}; nothing to submit (`passk report` regenerates the figures)",
            o.results.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let name = o
        .job_name
        .clone()
        .unwrap_or_else(|| format!("passk-{}", experiments[0].1.name));
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = absolute(
        &o.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("target/passk-slurm/{name}-{stamp}"))),
    )?;
    if dir.exists() {
        bail!("{} exists; pick another --out folder", dir.display());
    }
    let lay = Layout {
        workdir: absolute(Path::new("."))?,
        results: absolute(&o.results)?,
        cache: absolute(&o.cache)?,
        figures: absolute(&o.figures)?,
        logs: absolute(&o.logs.clone().unwrap_or_else(|| dir.join("logs")))?,
        dir,
    };
    let extra = match &o.sbatch_extra {
        Some(f) => read_extra(f)?,
        None => String::new(),
    };
    // Written under a temporary name and renamed: a folder that exists is complete.
    let staging = lay.dir.with_file_name(format!(
        ".{}.tmp-{}",
        lay.dir
            .file_name()
            .map_or("slurm".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let exe = std::env::current_exe().context("cannot find the passk binary")?;
    std::fs::copy(&exe, staging.join("passk"))
        .with_context(|| format!("cannot copy {} into {}", exe.display(), staging.display()))?;
    let files: Vec<PathBuf> = experiments.iter().map(|(f, _)| f.clone()).collect();
    for (file, text) in [
        ("tasks.txt", tasks_text(&tasks)),
        (
            "array.sbatch",
            array_script(o, &lay, &name, tasks.len(), &extra),
        ),
        ("final.sbatch", final_script(o, &lay, &name, &files, &extra)),
        ("submit.sh", submit_script(&lay, tasks.len())),
        ("requeue.sh", requeue_script(&lay, tasks.len())),
    ] {
        std::fs::write(staging.join(file), text)
            .with_context(|| format!("cannot write {}", staging.join(file).display()))?;
    }
    std::fs::rename(&staging, &lay.dir)
        .with_context(|| format!("cannot move {} into place", lay.dir.display()))?;
    // Slurm does not create the folder of --output: a task without it fails unlogged.
    std::fs::create_dir_all(&lay.logs)
        .with_context(|| format!("cannot create {}", lay.logs.display()))?;
    println!(
        "slurm: {cells} cell(s) in {} array task(s); scripts in {}",
        tasks.len(),
        lay.dir.display()
    );
    println!(
        "slurm: array script {}",
        lay.dir.join("array.sbatch").display()
    );
    if o.dry_run {
        println!(
            "slurm: --dry-run: nothing submitted; `bash {}` submits it",
            lay.dir.join("submit.sh").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let status = std::process::Command::new("bash")
        .arg(lay.dir.join("submit.sh"))
        .status();
    match status {
        Ok(s) if s.success() => Ok(ExitCode::SUCCESS),
        Ok(_) => bail!(
            "sbatch failed (message above); the scripts stay in {}: fix the options, or submit \
             with `bash {}`",
            lay.dir.display(),
            lay.dir.join("submit.sh").display()
        ),
        Err(e) => bail!(
            "cannot run bash for {}: {e}",
            lay.dir.join("submit.sh").display()
        ),
    }
}

#[cfg(test)]
#[path = "slurm_tests.rs"]
mod tests;
