//! The pretrained-LM tier: one cell loads a Llama/Qwen2-family model (GGUF file, checkpoint
//! directory or hf-hub cache), trains its last blocks with RL on prompts asked in the model's
//! chat format, and measures held-out pass@k and the sketched gradient probe at the start and
//! at the end. Prompts come from a synthetic mixture or from a real dataset ([`LmDataConfig`]:
//! GSM8K, SVAMP, MATH-500); with `rl.steps = 0` and no probe a cell only evaluates.
//!
//! - [`LmCellConfig`] describes a cell; [`LmModelSource`] where the model comes from (a
//!   `$ENV` path is expanded when the cell runs; a missing model fails with
//!   [`SMOLLM2_HOWTO`]).
//! - [`LmCodec`] turns a task prompt into chat-formatted ids and judges completions by their
//!   last number (synthetic tasks) or the dataset's verifier.
//! - [`run_lm_cell`] runs a cell and writes `train_log.csv`, `eval.csv`, `eval_format.csv`,
//!   `eval_prompts.csv` ([`EVAL_PROMPTS_FILE`]), `probe/step-NNNNN/` and `summary.json`
//!   ([`LmSummary`]), each atomically. There is no
//!   checkpointing or resume in this tier: an interrupted cell starts over.

mod codec;
mod config;
mod data;

#[cfg(test)]
mod tests;

pub use codec::{question, ChatTemplate, LmCodec};
pub use config::{LmCellConfig, LmModelSource, LmPromptConfig, ResolvedSource, SMOLLM2_HOWTO};
pub use data::{LmData, LmDataConfig};

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device};
use passk_core::objective::objective_from_spec;
use passk_core::rng::seeded;
use passk_policy::lm::{hf_cache_snapshot, read_gguf, CausalLm, LmTokenizer, Trainable};
use passk_policy::DeviceChoice;
use passk_schema::eval::{
    EvalRow, FormatRow, PromptOutcomeRow, EVAL_FILE, EVAL_PROMPTS_FILE, FORMAT_FILE,
};
use passk_schema::lm::{LmProbeRow, LmSummary, SUMMARY_FILE};
use passk_schema::probe::{probe_dir, BLOCK_GLOBAL};
use passk_schema::train::{TrainLogRow, TRAIN_LOG_FILE};
use passk_tasks::{Mixture, Prompt, Split};
use rand::RngCore;

use crate::error::{io_err, Result, TrainError};
use crate::eval::{evaluate_in_chunks, EvalSpec};
use crate::files::{write_csv_atomic, write_json_atomic};
use crate::optim::Optimizer;
use crate::probe::{probe, write_probe, ProbeSet};
use crate::progress::{Phase, Progress};
use crate::prompts::TrainPrompts;
use crate::rl::rl_step;
use crate::streams;

/// Prompts per chunk of a held-out evaluation: a progress line after each (the LM sampler's
/// samples do not depend on the chunking, see `passk_policy::lm`).
const EVAL_CHUNK_PROMPTS: usize = 16;

/// Everything the evaluations and probes of a cell produced, in step order.
#[derive(Default)]
struct Measured {
    eval: Vec<EvalRow>,
    format: Vec<FormatRow>,
    prompts: Vec<PromptOutcomeRow>,
    probe: Vec<LmProbeRow>,
}

/// What [`run_lm_cell`] returns (also written to the cell directory).
#[derive(Debug, Clone, PartialEq)]
pub struct LmOutcome {
    /// The summary.
    pub summary: LmSummary,
    /// Every RL step's log row.
    pub train_log: Vec<TrainLogRow>,
    /// Both evaluations' rows.
    pub eval: Vec<EvalRow>,
}

/// Loads the model and tokenizer of `source` onto `device`, every parameter trainable. On a
/// GPU the model computes in bf16 with f32 norms, softmaxes and log-probabilities (see
/// [`CausalLm::set_compute_dtype`]); on the CPU in f32.
///
/// # Errors
/// Unreadable or inconsistent files, or a tokenizer that cannot be built.
pub fn load_lm(source: &ResolvedSource, device: &Device) -> Result<(CausalLm, LmTokenizer)> {
    let (mut model, tok) = load_lm_f32(source, device)?;
    if !device.is_cpu() {
        model.set_compute_dtype(DType::BF16)?;
    }
    Ok((model, tok))
}

fn load_lm_f32(source: &ResolvedSource, device: &Device) -> Result<(CausalLm, LmTokenizer)> {
    let from_dir = |dir: &Path| -> Result<(CausalLm, LmTokenizer)> {
        let model = CausalLm::from_dir(dir, device)?;
        let tok = LmTokenizer::from_file(dir.join("tokenizer.json"))?;
        Ok((model, tok))
    };
    match source {
        ResolvedSource::Gguf(path) => {
            let ck = read_gguf(path)?;
            let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
            let model = CausalLm::from_tensors(ck.config, ck.tensors, device)?;
            Ok((model, tok))
        }
        ResolvedSource::Dir(dir) => from_dir(dir),
        ResolvedSource::Hf { repo, revision } => from_dir(&hf_cache_snapshot(repo, revision)?),
    }
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Runs one LM cell into `cell_dir`: load, evaluate and probe at step 0, `rl.steps` RL
/// updates of the last `trainable_blocks` blocks (AdamW or SGD, clipped), evaluate and probe
/// again, write the files. `progress` gets phase reports; `note` gets one-line messages
/// (model size, probe memory).
///
/// Random streams as in the tiny tier (`streams`, probe streams), keyed by `cfg.seed`.
///
/// # Errors
/// An invalid config, a missing model (the message says how to get it), an unavailable
/// device, a model or tensor failure, or an unwritable directory.
pub fn run_lm_cell(
    cfg: &LmCellConfig,
    cell_dir: &Path,
    progress: &mut dyn FnMut(Progress),
    note: &mut dyn FnMut(&str),
) -> Result<LmOutcome> {
    let started = Instant::now();
    cfg.validate()?;
    let source = cfg.model.resolve()?;
    let device = cfg
        .device
        .parse::<DeviceChoice>()?
        .device()
        .map_err(|e| TrainError::Config {
            field: "device".into(),
            problem: format!(
                "{e}; a cuda cell needs `--features cuda` and an NVIDIA GPU, otherwise use the \
                 cpu smoke variant (experiments/lm-smoke.toml)"
            ),
        })?;
    std::fs::create_dir_all(cell_dir).map_err(io_err(cell_dir))?;
    let t = Instant::now();
    let (mut model, tok) = load_lm(&source, &device)?;
    model.set_trainable(Trainable::LastBlocks {
        blocks: cfg.trainable_blocks,
        embeddings: false,
    });
    let load_seconds = secs(t);
    let n_params = model.num_params();
    let n_trainable = model.num_trainable();
    let codec = LmCodec::new(
        tok,
        cfg.prompt.template,
        &cfg.prompt.instruction,
        cfg.prompt.max_new_tokens,
    )?;
    let (sketch_bytes, gradient_bytes) = match &cfg.probe {
        Some(p) => (
            p.storage_bytes(p.n_prompts, n_trainable) as u64,
            2 * 4 * n_trainable as u64,
        ),
        None => (0, 0),
    };
    let probe_note = match &cfg.probe {
        Some(p) => format!(
            "probe memory: {} prompts x sketch dim x 2 halves x 8 B = {:.2} MB of sketches + \
             {:.1} MB for one prompt's two dense f32 gradients",
            p.n_prompts,
            sketch_bytes as f64 / 1e6,
            gradient_bytes as f64 / 1e6
        ),
        None => "no probe (evaluation only)".to_string(),
    };
    note(&format!(
        "model: {n_params} weights, {n_trainable} trainable (last {} blocks), computing in \
         {:?}, loaded in {load_seconds:.1} s; {probe_note}",
        cfg.trainable_blocks,
        model.compute_dtype(),
    ));

    let objective = objective_from_spec(&cfg.rl.objective)?;
    let n_probe = cfg.probe.as_ref().map_or(0, |p| p.n_prompts);
    let (eval_prompts, probe_set, train): (Vec<Prompt>, Option<ProbeSet>, Box<dyn TrainPrompts>) =
        match (&cfg.mixture, &cfg.data) {
            (Some(m), _) => {
                let mixture = Mixture::new(m.clone()).map_err(|e| TrainError::Config {
                    field: format!("mixture.{}", e.field),
                    problem: e.problem,
                })?;
                let eval_set_seed = seeded(cfg.seed, &[streams::EVAL_SET]).next_u64();
                let eval =
                    mixture.generate_distinct(Split::Eval, cfg.eval.n_prompts, eval_set_seed)?;
                let probe_set = match n_probe {
                    0 => None,
                    n => Some(ProbeSet::from_mixture(&mixture, &codec, n, cfg.seed)?),
                };
                (eval, probe_set, Box::new(mixture))
            }
            (None, Some(d)) => {
                let data = d.select(cfg.eval.n_prompts, n_probe)?;
                let probe_set = match n_probe {
                    0 => None,
                    _ => Some(ProbeSet::from_prompts(
                        data.probe,
                        &codec,
                        cfg.prompt.max_new_tokens,
                    )?),
                };
                (data.eval, probe_set, Box::new(data.train))
            }
            (None, None) => {
                return Err(TrainError::Config {
                    field: "mixture".into(),
                    problem: "no prompt source: give [params.mixture] or [params.data]".into(),
                })
            }
        };
    for p in &eval_prompts {
        question(p)?;
    }
    let spec = EvalSpec {
        n_samples: cfg.eval.n_samples,
        ks: cfg.eval.ks.clone(),
        temperature: cfg.rl.temperature,
        max_new_tokens: cfg.prompt.max_new_tokens,
        seed: cfg.seed,
    };
    let mut opt = Optimizer::new(cfg.rl.optimizer, cfg.rl.lr, &model.params())?;
    let steps = cfg.rl.steps;
    let (mut eval_seconds, mut probe_seconds, mut rl_seconds) = (0.0, 0.0, 0.0);
    let mut m = Measured::default();
    let mut train_log: Vec<TrainLogRow> = Vec::new();
    let mut measure = |step: u64,
                       progress: &mut dyn FnMut(Progress),
                       model: &CausalLm,
                       m: &mut Measured|
     -> Result<()> {
        progress(Progress {
            phase: Phase::Eval,
            step,
            total: steps,
        });
        let t = Instant::now();
        let total = eval_prompts.len() as u64;
        let mut sampled = |done: usize| {
            progress(Progress {
                phase: Phase::EvalPrompts,
                step: done as u64,
                total,
            })
        };
        let e = evaluate_in_chunks(
            model,
            &codec,
            &eval_prompts,
            &spec,
            step,
            EVAL_CHUNK_PROMPTS,
            &mut sampled,
        )?;
        eval_seconds += secs(t);
        m.eval.extend(e.rows);
        m.format.extend(e.format);
        m.prompts.extend(e.prompts);
        let (Some(probe_set), Some(probe_cfg)) = (&probe_set, &cfg.probe) else {
            return Ok(());
        };
        progress(Progress {
            phase: Phase::Probe,
            step,
            total: steps,
        });
        let t = Instant::now();
        let r = probe(model, &codec, probe_set, probe_cfg, cfg.seed, step)?;
        probe_seconds += secs(t);
        write_probe(&probe_dir(cell_dir, step), &r)?;
        for &k in &r.ks {
            if let Some(row) = r.row(k, BLOCK_GLOBAL) {
                m.probe.push(LmProbeRow {
                    step,
                    k,
                    inner: row.inner,
                    ci_low: row.ci_low,
                    ci_high: row.ci_high,
                    // NaN (undefined) is stored as JSON null either way.
                    cosine: Some(row.cosine).filter(|c| c.is_finite()),
                });
            }
        }
        Ok(())
    };
    measure(0, progress, &model, &mut m)?;
    for step in 0..steps {
        progress(Progress {
            phase: Phase::Rl,
            step,
            total: steps,
        });
        let t = Instant::now();
        let row = rl_step(
            &model,
            &mut opt,
            &codec,
            train.as_ref(),
            &cfg.rl,
            objective.as_ref(),
            cfg.seed,
            step,
        )?;
        rl_seconds += secs(t);
        train_log.push(row);
        write_csv_atomic(&cell_dir.join(TRAIN_LOG_FILE), &train_log)?;
    }
    progress(Progress {
        phase: Phase::Rl,
        step: steps,
        total: steps,
    });
    if steps > 0 {
        measure(steps, progress, &model, &mut m)?;
    }
    let Measured {
        eval: eval_rows,
        format: format_rows,
        prompts: prompt_rows,
        probe: probe_rows,
    } = m;
    let at =
        |s: u64| -> Vec<EvalRow> { eval_rows.iter().filter(|r| r.step == s).cloned().collect() };
    let fmt_at = |s: u64| -> Vec<FormatRow> {
        format_rows
            .iter()
            .filter(|r| r.step == s)
            .cloned()
            .collect()
    };
    let summary = LmSummary {
        config_hash: cfg.full_hash(),
        objective: cfg.rl.objective.clone(),
        n_params,
        n_trainable,
        rl_steps: steps,
        warm_start: at(0),
        final_eval: at(steps),
        warm_start_format: fmt_at(0),
        final_format: fmt_at(steps),
        probe: probe_rows,
        probe_sketch_bytes: sketch_bytes,
        probe_gradient_bytes: gradient_bytes,
        load_seconds,
        rl_seconds,
        eval_seconds,
        probe_seconds,
        wall_seconds: secs(started),
    };
    write_csv_atomic(&cell_dir.join(TRAIN_LOG_FILE), &train_log)?;
    write_csv_atomic(&cell_dir.join(EVAL_FILE), &eval_rows)?;
    write_csv_atomic(&cell_dir.join(FORMAT_FILE), &format_rows)?;
    write_csv_atomic(&cell_dir.join(EVAL_PROMPTS_FILE), &prompt_rows)?;
    write_json_atomic(&cell_dir.join(SUMMARY_FILE), &summary)?;
    Ok(LmOutcome {
        summary,
        train_log,
        eval: eval_rows,
    })
}
