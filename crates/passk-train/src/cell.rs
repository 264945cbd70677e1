//! One tiny-tier cell end to end: warm start, RL with periodic evaluation, checkpoints and
//! resume, result files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use passk_core::objective::objective_from_spec;
use passk_core::rng::seeded;
use passk_policy::Gpt;
use passk_schema::eval::{EvalRow, FormatRow, EVAL_FILE, FORMAT_FILE};
use passk_schema::probe::probe_dir;
use passk_schema::tiny::{TinySummary, SUMMARY_FILE};
use passk_schema::train::{TrainLogRow, TRAIN_LOG_FILE};
use passk_tasks::{Mixture, Prompt, Split};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::batch::Vocab;
use crate::config::TinyCellConfig;
use crate::error::{io_err, Result, TrainError};
use crate::eval::{evaluate, EvalSpec, Evaluation};
use crate::files::{read_csv, read_json, write_csv_atomic, write_json_atomic};
use crate::optim::Optimizer;
use crate::probe::{probe, write_probe, ProbeSet};
use crate::progress::{Phase, Progress};
use crate::rl::rl_step;
use crate::sft::warm_start_checked;
use crate::streams;

/// Name of the pointer to the latest checkpoint in the cell directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// Options of [`run_tiny_cell_with`] beyond the config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where tensors live.
    pub device: Device,
    /// Return (without finishing) once this many RL steps are done: a test hook that simulates
    /// a kill. The work since the last checkpoint is lost, as in a real kill.
    pub stop_after: Option<u64>,
    /// Fail (instead of warning and retraining) when the cached warm start fails its integrity
    /// check (see [`crate::warm_start_checked`]).
    pub strict: bool,
}

impl Default for RunOptions {
    /// CPU, run to the end, retrain a damaged cached warm start.
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            stop_after: None,
            strict: false,
        }
    }
}

/// What [`run_tiny_cell`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyOutcome {
    /// The summary (also written to `summary.json`; absent on disk when stopped early).
    pub summary: TinySummary,
    /// Every RL step's log row.
    pub train_log: Vec<TrainLogRow>,
    /// Every evaluation row.
    pub eval: Vec<EvalRow>,
    /// Every other-format row.
    pub format: Vec<FormatRow>,
    /// False when [`RunOptions::stop_after`] stopped the run early.
    pub completed: bool,
}

/// The pointer written last when checkpointing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CheckpointPointer {
    step: u64,
    dir: String,
    config_hash: String,
    optimizer_steps: u64,
}

const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// The held-out prompts of a cell and how they are sampled: the same at every evaluation of
/// the cell, and shared by [`warm_start_profile`].
pub fn held_out_set(cfg: &TinyCellConfig, mixture: &Mixture) -> Result<(Vec<Prompt>, EvalSpec)> {
    let eval_set_seed = seeded(cfg.seed, &[streams::EVAL_SET]).next_u64();
    let prompts = mixture.generate_distinct(Split::Eval, cfg.eval.n_prompts, eval_set_seed)?;
    let spec = EvalSpec {
        n_samples: cfg.eval.n_samples,
        ks: cfg.eval.ks.clone(),
        temperature: cfg.rl.temperature,
        max_new_tokens: mixture.max_reference_chars() + 1,
        seed: cfg.seed,
    };
    Ok((prompts, spec))
}

/// The held-out evaluation a cell of `cfg` would record at RL step 0 if `model` were its warm
/// start: the same prompts, samples and streams, so the numbers equal its `eval.csv` step 0.
pub fn warm_start_profile(cfg: &TinyCellConfig, model: &Gpt) -> Result<Evaluation> {
    let mixture = Mixture::new(cfg.mixture.clone()).map_err(|e| TrainError::Config {
        field: format!("mixture.{}", e.field),
        problem: e.problem,
    })?;
    let (prompts, spec) = held_out_set(cfg, &mixture)?;
    evaluate(model, &Vocab::synthetic(), &prompts, &spec, 0)
}

/// Runs one cell on the CPU to the end (see [`run_tiny_cell_with`]).
pub fn run_tiny_cell(
    cfg: &TinyCellConfig,
    cell_dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<TinyOutcome> {
    run_tiny_cell_with(cfg, cell_dir, cache_dir, progress, &RunOptions::default())
}

struct State {
    train_log: Vec<TrainLogRow>,
    eval: Vec<EvalRow>,
    format: Vec<FormatRow>,
}

/// Runs one cell: warm start (cached in `cache_dir`), then `rl.steps` updates with evaluation at
/// step 0, every `eval.every` steps and at the end, checkpoints every `checkpoint_every` steps
/// into `cell_dir` (resumed from automatically), and writes `train_log.csv`, `eval.csv`,
/// `eval_format.csv` and `summary.json` into `cell_dir`.
pub fn run_tiny_cell_with(
    cfg: &TinyCellConfig,
    cell_dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn FnMut(Progress),
    options: &RunOptions,
) -> Result<TinyOutcome> {
    let started = Instant::now();
    cfg.validate()?;
    std::fs::create_dir_all(cell_dir).map_err(io_err(cell_dir))?;
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(cfg.mixture.clone()).map_err(|e| TrainError::Config {
        field: format!("mixture.{}", e.field),
        problem: e.problem,
    })?;
    let objective = objective_from_spec(&cfg.rl.objective)?;
    let config_hash = cfg.full_hash();
    let device = &options.device;

    let pointer_path = cell_dir.join(CHECKPOINT_FILE);
    let (model, mut opt, mut state, start_step) = if pointer_path.exists() {
        let pointer: CheckpointPointer = read_json(&pointer_path)?;
        if pointer.config_hash != config_hash {
            return Err(TrainError::Checkpoint {
                path: pointer_path,
                detail: format!(
                    "it was written for config {} but this config hashes to {config_hash}",
                    pointer.config_hash
                ),
            });
        }
        let dir = cell_dir.join(&pointer.dir);
        let model = Gpt::from_checkpoint(cfg.gpt_config()?, dir.join(MODEL_FILE), device)?;
        let mut opt = Optimizer::new(cfg.rl.optimizer, cfg.rl.lr, &model.params())?;
        opt.load(&dir.join(OPTIMIZER_FILE))?;
        let state = State {
            train_log: read_csv(&dir.join(TRAIN_LOG_FILE))?,
            eval: read_csv(&dir.join(EVAL_FILE))?,
            format: read_csv(&dir.join(FORMAT_FILE))?,
        };
        if state.train_log.len() as u64 != pointer.step || opt.steps() != pointer.optimizer_steps {
            return Err(TrainError::Checkpoint {
                path: dir,
                detail: "the log length or optimiser step does not match the checkpoint step"
                    .into(),
            });
        }
        (model, opt, state, Some(pointer.step))
    } else {
        let ws = warm_start_checked(cfg, cache_dir, device, progress, options.strict)?;
        let opt = Optimizer::new(cfg.rl.optimizer, cfg.rl.lr, &ws.model.params())?;
        let state = State {
            train_log: Vec::new(),
            eval: Vec::new(),
            format: Vec::new(),
        };
        (ws.model, opt, state, None)
    };

    let (eval_prompts, spec) = held_out_set(cfg, &mixture)?;
    let probe_set = if cfg.probe.every > 0 {
        Some(ProbeSet::from_mixture(
            &mixture,
            &vocab,
            cfg.probe.settings.n_prompts,
            cfg.seed,
        )?)
    } else {
        None
    };
    let steps = cfg.rl.steps;
    let mut step = start_step.unwrap_or(0);
    loop {
        if options.stop_after == Some(step) && step < steps {
            return Ok(outcome(cfg, config_hash, state, start_step, started, false));
        }
        if step % cfg.eval.every == 0 || step == steps {
            progress(Progress {
                phase: Phase::Eval,
                step,
                total: steps,
            });
            let e = evaluate(&model, &vocab, &eval_prompts, &spec, step)?;
            state.eval.extend(e.rows);
            state.format.extend(e.format);
        }
        if let Some(set) = probe_set.as_ref().filter(|_| cfg.probe.due(step, steps)) {
            progress(Progress {
                phase: Phase::Probe,
                step,
                total: steps,
            });
            // Deterministic, so a probe repeated after a resume rewrites identical files.
            let r = probe(&model, &vocab, set, &cfg.probe.settings, cfg.seed, step)?;
            write_probe(&probe_dir(cell_dir, step), &r)?;
        }
        if step == steps {
            break;
        }
        progress(Progress {
            phase: Phase::Rl,
            step,
            total: steps,
        });
        let row = rl_step(
            &model,
            &mut opt,
            &vocab,
            &mixture,
            &cfg.rl,
            objective.as_ref(),
            cfg.seed,
            step,
        )?;
        state.train_log.push(row);
        step += 1;
        if step % cfg.checkpoint_every == 0 || step == steps {
            write_checkpoint(cell_dir, &config_hash, step, &model, &opt, &state)?;
        }
    }
    progress(Progress {
        phase: Phase::Rl,
        step: steps,
        total: steps,
    });
    let result = outcome(cfg, config_hash, state, start_step, started, true);
    write_tables(cell_dir, &result.train_log, &result.eval, &result.format)?;
    write_json_atomic(&cell_dir.join(SUMMARY_FILE), &result.summary)?;
    Ok(result)
}

fn outcome(
    cfg: &TinyCellConfig,
    config_hash: String,
    state: State,
    resumed_from_step: Option<u64>,
    started: Instant,
    completed: bool,
) -> TinyOutcome {
    let last = state.train_log.len() as u64;
    let at =
        |s: u64| -> Vec<EvalRow> { state.eval.iter().filter(|r| r.step == s).cloned().collect() };
    let fmt_at = |s: u64| -> Vec<FormatRow> {
        state
            .format
            .iter()
            .filter(|r| r.step == s)
            .cloned()
            .collect()
    };
    let summary = TinySummary {
        config_hash,
        sft_hash: cfg.sft_hash(),
        objective: cfg.rl.objective.clone(),
        cue_reliability: cfg.mixture.cue_reliability,
        rl_steps: last,
        warm_start: at(0),
        final_eval: if completed { at(last) } else { Vec::new() },
        warm_start_format: fmt_at(0),
        final_format: if completed { fmt_at(last) } else { Vec::new() },
        resumed_from_step,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    TinyOutcome {
        summary,
        train_log: state.train_log,
        eval: state.eval,
        format: state.format,
        completed,
    }
}

fn write_tables(
    dir: &Path,
    train_log: &[TrainLogRow],
    eval: &[EvalRow],
    format: &[FormatRow],
) -> Result<()> {
    write_csv_atomic(&dir.join(TRAIN_LOG_FILE), train_log)?;
    write_csv_atomic(&dir.join(EVAL_FILE), eval)?;
    write_csv_atomic(&dir.join(FORMAT_FILE), format)
}

/// Writes `ckpt-<step>/` completely, then points `checkpoint.json` at it (atomic rename), then
/// removes older checkpoint directories. The logs are also written to the cell directory. A
/// stop request (SIGTERM) waits until all of it is done.
fn write_checkpoint(
    cell_dir: &Path,
    config_hash: &str,
    step: u64,
    model: &Gpt,
    opt: &Optimizer,
    state: &State,
) -> Result<()> {
    // A stop (SIGTERM) lets the whole checkpoint be written (passk_core::interrupt).
    let _section = passk_core::interrupt::write_section();
    let name = format!("ckpt-{step:08}");
    let dir = cell_dir.join(&name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    model.save(dir.join(MODEL_FILE))?;
    opt.save(&dir.join(OPTIMIZER_FILE))?;
    write_tables(&dir, &state.train_log, &state.eval, &state.format)?;
    let pointer = CheckpointPointer {
        step,
        dir: name.clone(),
        config_hash: config_hash.to_string(),
        optimizer_steps: opt.steps(),
    };
    write_json_atomic(&cell_dir.join(CHECKPOINT_FILE), &pointer)?;
    write_tables(cell_dir, &state.train_log, &state.eval, &state.format)?;
    let entries = std::fs::read_dir(cell_dir).map_err(io_err(cell_dir))?;
    let mut stale: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("ckpt-") && n != name
        })
        .map(|e| e.path())
        .collect();
    stale.sort();
    for old in stale {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}
