//! The tiny tier's cell: a transformer trained from scratch (SFT warm start), then RL with one
//! objective; results are held-out pass@k over training (see `passk_train`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use passk_policy::DeviceChoice;
use passk_train::{
    run_tiny_cell_with, Phase, Progress, RunOptions, TinyCellConfig, CHECKPOINT_FILE,
};
use serde_json::{Map, Value};

use crate::tiers::RunContext;

/// Parses and validates a tiny cell's config (every field required; see `TinyCellConfig`).
pub fn spec(config: &Map<String, Value>) -> Result<TinyCellConfig> {
    // The mixture type has serde defaults; a cell's hash must name every value it ran with.
    for key in ["cue_reliability", "reversed_share", "splits"] {
        if config.get("mixture").and_then(|m| m.get(key)).is_none() {
            anyhow::bail!(
                "key `mixture.{key}` is missing; give it explicitly (in [params.mixture] or as a \
                 matrix key \"mixture.{key}\") so the cell's hash names it"
            );
        }
    }
    // The error names the full key path of the value that does not fit (`rl.lr: invalid type`).
    let cfg: TinyCellConfig = serde_path_to_error::deserialize(Value::Object(config.clone()))
        .map_err(|e| {
            let at = e.path().to_string();
            let at = if at == "." {
                String::new()
            } else {
                format!("`{at}`: ")
            };
            anyhow::anyhow!(
                "{at}{}; a tiny cell needs exactly the keys model, mixture, seed, sft, rl, eval, \
                 checkpoint_every (see experiments/tiny.toml)",
                e.inner()
            )
        })?;
    cfg.validate()?;
    Ok(cfg)
}

/// Runs (or resumes) the cell in `dir`, then removes its checkpoints so only results remain.
pub fn run(config: &Map<String, Value>, dir: &Path, ctx: &RunContext) -> Result<()> {
    let cfg = spec(config)?;
    let device = ctx
        .device
        .parse::<DeviceChoice>()?
        .device()
        .context("cannot open the requested device")?;
    let options = RunOptions {
        device,
        stop_after: None,
        strict: ctx.strict,
    };
    let started = Instant::now();
    let mut last = Instant::now();
    let quiet = ctx.quiet;
    let mut progress = |p: Progress| {
        // Long phases report at most every 10 s, and always at their ends.
        if quiet || (last.elapsed().as_secs_f64() < 10.0 && p.step != p.total) {
            return;
        }
        last = Instant::now();
        let phase = match p.phase {
            Phase::Sft1 => "SFT stage 1 (reliable tag)",
            Phase::Sft2 => "SFT stage 2",
            Phase::Eval => "held-out eval at RL step",
            Phase::EvalPrompts => "held-out prompts sampled",
            Phase::Rl => "RL",
            Phase::Probe => "gradient probe at RL step",
        };
        ctx.log.line(&format!(
            "{phase} {}/{} ({:.0} s in this cell)",
            p.step,
            p.total,
            started.elapsed().as_secs_f64()
        ));
    };
    let outcome = run_tiny_cell_with(&cfg, dir, &ctx.cache_dir, &mut progress, &options)?;
    if !outcome.completed {
        anyhow::bail!("the tiny cell stopped before its last step; rerun to resume it");
    }
    // Checkpoints are for resuming; a finished cell keeps only its results.
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ckpt-") {
            std::fs::remove_dir_all(entry.path())?;
        } else if name == CHECKPOINT_FILE {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
