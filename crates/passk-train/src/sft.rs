//! Supervised warm start (two stages) and its on-disk cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use passk_core::rng::seeded;
use passk_policy::{clip_grad_norm, Gpt};
use passk_tasks::{Mixture, Split};
use serde::{Deserialize, Serialize};

use crate::batch::{weighted_logprob_sum, Vocab};
use crate::config::{OptimizerKind, TinyCellConfig};
use crate::error::{io_err, Result, TrainError};
use crate::optim::Optimizer;
use crate::progress::{Phase, Progress};
use crate::streams;

/// Gradient-norm clip used during SFT.
pub const SFT_CLIP: f64 = 1.0;

/// One SFT step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftLogRow {
    /// 1 (reliable tag) or 2 (the cell's cue reliability).
    pub stage: u32,
    /// Step within the stage.
    pub step: u64,
    /// Mean per-token cross-entropy (nats) of the batch before the update.
    pub loss: f64,
}

/// The outcome of [`warm_start_with`].
pub struct WarmStart {
    /// The warm-started model.
    pub model: Gpt,
    /// Where its weights are cached.
    pub path: PathBuf,
    /// Whether the weights were read from the cache (no training ran).
    pub reused: bool,
    /// Seconds spent (training or loading).
    pub seconds: f64,
}

/// Runs both SFT stages from a freshly initialised model and returns it with its per-step
/// losses. Deterministic in `cfg` (seed, model, mixture, sft).
pub fn train_sft(
    cfg: &TinyCellConfig,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Gpt, Vec<SftLogRow>)> {
    train_sft_stages(cfg, device, progress, None, &mut |_, _, _| Ok(()))
}

/// [`train_sft`] without a cache, calling `observe(stage, steps_done, model)` after every
/// optimiser step: competence curves along one run (the learning rate is constant, so the model
/// after `s` stage-1 steps is exactly the warm start of `stage1_steps = s`, `stage2_steps = 0`).
pub fn train_sft_observed(
    cfg: &TinyCellConfig,
    device: &Device,
    observe: &mut dyn FnMut(u32, u64, &Gpt) -> Result<()>,
) -> Result<Gpt> {
    Ok(train_sft_stages(cfg, device, &mut |_| {}, None, observe)?.0)
}

/// The stage-1 cache files of `cfg` in `dir`: model, optimiser state and loss log.
fn stage1_paths(cfg: &TinyCellConfig, dir: &Path) -> [PathBuf; 3] {
    let h = cfg.sft_stage1_hash();
    [
        dir.join(format!("sft1-{h}.safetensors")),
        dir.join(format!("sft1-{h}.optimizer.safetensors")),
        dir.join(format!("sft1-{h}.csv")),
    ]
}

/// [`train_sft`], reusing (or saving) the stage-1 model and optimiser in `stage1_cache`: every
/// q shares stage 1, which is most of the warm start's cost. Loading is exact, so the result is
/// bit-identical to training both stages in one go.
fn train_sft_stages(
    cfg: &TinyCellConfig,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    stage1_cache: Option<&Path>,
    observe: &mut dyn FnMut(u32, u64, &Gpt) -> Result<()>,
) -> Result<(Gpt, Vec<SftLogRow>)> {
    cfg.validate()?;
    let vocab = Vocab::synthetic();
    let mut model = Gpt::new(cfg.gpt_config()?, cfg.seed, device)?;
    let mut opt = Optimizer::new(OptimizerKind::Adamw, cfg.sft.lr, &model.params())?;
    let mut log = Vec::new();
    let mut skip_stage1 = false;
    if let Some(dir) = stage1_cache {
        let [model_path, opt_path, log_path] = stage1_paths(cfg, dir);
        // The model file is renamed into place last, so its presence means all three exist.
        if model_path.exists() {
            model = Gpt::from_checkpoint(cfg.gpt_config()?, &model_path, device)?;
            opt = Optimizer::new(OptimizerKind::Adamw, cfg.sft.lr, &model.params())?;
            opt.load(&opt_path)?;
            log = crate::files::read_csv(&log_path)?;
            skip_stage1 = true;
        }
    }
    let params = model.params();
    let mut reliable = cfg.mixture.clone();
    reliable.cue_reliability = 1.0;
    let stages = [
        (
            1u32,
            Mixture::new(reliable).map_err(config_err)?,
            cfg.sft.stage1_steps,
            Phase::Sft1,
        ),
        (
            2u32,
            Mixture::new(cfg.mixture.clone()).map_err(config_err)?,
            cfg.sft.stage2_steps,
            Phase::Sft2,
        ),
    ];
    for (stage, mixture, steps, phase) in stages {
        if stage == 1 && skip_stage1 {
            continue;
        }
        for step in 0..steps {
            progress(Progress {
                phase,
                step,
                total: steps,
            });
            let mut rng = seeded(cfg.seed, &[streams::SFT, stage as u64, step]);
            let prompts = (0..cfg.sft.batch)
                .map(|_| mixture.sample(&mut rng, Split::Train))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut inputs = Vec::with_capacity(prompts.len());
            for p in &prompts {
                inputs.push((vocab.prompt(p)?, vocab.reference(p)?));
            }
            let tokens: usize = inputs.iter().map(|(_, r)| r.len()).sum();
            let rows: Vec<_> = inputs
                .iter()
                .map(|(p, r)| (p.as_slice(), r.as_slice(), 1.0))
                .collect();
            let sum = weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?
                .expect("SFT rows all have weight 1");
            let loss = sum.affine(-1.0 / tokens as f64, 0.0)?;
            let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    phase: "sft",
                    step,
                    detail: format!("loss {value} in stage {stage}"),
                });
            }
            let mut grads = loss.backward()?;
            clip_grad_norm(&mut grads, &params, SFT_CLIP)?;
            opt.step(&params, Some(&grads))?;
            log.push(SftLogRow {
                stage,
                step,
                loss: value,
            });
            observe(stage, step + 1, &model)?;
        }
        progress(Progress {
            phase,
            step: steps,
            total: steps,
        });
        if let (1, Some(dir)) = (stage, stage1_cache) {
            save_stage1(cfg, dir, &model, &opt, &log)?;
        }
    }
    Ok((model, log))
}

/// Saves the stage-1 model, optimiser and log under temporary names, then renames them into
/// place, the model last.
fn save_stage1(
    cfg: &TinyCellConfig,
    dir: &Path,
    model: &Gpt,
    opt: &Optimizer,
    log: &[SftLogRow],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let [model_path, opt_path, log_path] = stage1_paths(cfg, dir);
    crate::files::write_csv_atomic(&log_path, log)?;
    let tmp_opt = unique_tmp(&opt_path);
    opt.save(&tmp_opt)?;
    std::fs::rename(&tmp_opt, &opt_path).map_err(io_err(&opt_path))?;
    let tmp_model = unique_tmp(&model_path);
    model.save(&tmp_model)?;
    std::fs::rename(&tmp_model, &model_path).map_err(io_err(&model_path))
}

/// A hidden temporary name beside `path`, unique to this process and call, so concurrent
/// writers of the same cache entry never see or clobber each other's half-written files.
fn unique_tmp(path: &Path) -> PathBuf {
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

fn config_err(e: passk_tasks::ConfigError) -> TrainError {
    TrainError::Config {
        field: format!("mixture.{}", e.field),
        problem: e.problem,
    }
}

/// The cache file of the warm start of `cfg`: `<cache_dir>/sft-<sft_hash>.safetensors`.
pub fn warm_start_path(cfg: &TinyCellConfig, cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("sft-{}.safetensors", cfg.sft_hash()))
}

/// The warm-started model of `cfg` on the CPU, trained once and cached in `cache_dir`.
pub fn warm_start(cfg: &TinyCellConfig, cache_dir: &Path) -> Result<Gpt> {
    Ok(warm_start_with(cfg, cache_dir, &Device::Cpu, &mut |_| {})?.model)
}

/// The warm-started model of `cfg`: loaded from `<cache_dir>/sft-<hash>.safetensors` when that
/// exists, otherwise trained with [`train_sft`] and saved there atomically (with its loss log
/// beside it as `sft-<hash>.csv`).
pub fn warm_start_with(
    cfg: &TinyCellConfig,
    cache_dir: &Path,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<WarmStart> {
    cfg.validate()?;
    let start = Instant::now();
    let path = warm_start_path(cfg, cache_dir);
    if path.exists() {
        let model = Gpt::from_checkpoint(cfg.gpt_config()?, &path, device)?;
        return Ok(WarmStart {
            model,
            path,
            reused: true,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let (model, log) =
        train_sft_stages(
            cfg,
            device,
            progress,
            Some(cache_dir),
            &mut |_, _, _| Ok(()),
        )?;
    let csv_path = path.with_extension("csv");
    crate::files::write_csv_atomic(&csv_path, &log)?;
    let tmp = unique_tmp(&path);
    model.save(&tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(&path)(e)
    })?;
    Ok(WarmStart {
        model,
        path,
        reused: false,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter of `a` equals `b`'s bit for bit.
    fn assert_same_weights(a: &Gpt, b: &Gpt) {
        for ((name, va), (_, vb)) in a.params().iter().zip(b.params()) {
            let flat = |v: &candle_core::Var| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            };
            assert_eq!(flat(va), flat(&vb), "{name}");
        }
    }

    #[test]
    fn sft_lowers_its_loss() {
        let mut cfg = TinyCellConfig::nano_smoke(1.0, "pass1_rloo");
        cfg.sft.stage1_steps = 30;
        cfg.sft.stage2_steps = 0;
        cfg.sft.batch = 32;
        let (_, log) = train_sft(&cfg, &Device::Cpu, &mut |_| {}).unwrap();
        let first: f64 = log[..5].iter().map(|r| r.loss).sum::<f64>() / 5.0;
        let last: f64 = log[25..].iter().map(|r| r.loss).sum::<f64>() / 5.0;
        assert!(last < 0.7 * first, "loss {first} -> {last}");
    }

    #[test]
    fn warm_start_is_cached_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
        let mut phases = Vec::new();
        let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |p| {
            phases.push(p.phase)
        })
        .unwrap();
        assert!(!a.reused);
        assert!(phases.contains(&Phase::Sft1) && phases.contains(&Phase::Sft2));
        assert!(a.path.exists() && a.path.with_extension("csv").exists());
        let b = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
        assert!(b.reused);
        assert_same_weights(&a.model, &b.model);
        // A cell that differs only in RL settings shares the file.
        let mut other = cfg.clone();
        other.rl.objective = "pkpo_loo_minus_one:k=4".into();
        assert_eq!(warm_start_path(&other, dir.path()), a.path);
        // Another q reuses the cached stage 1 and matches training both stages from scratch.
        let mut control = cfg.clone();
        control.mixture.cue_reliability = 1.0;
        assert_eq!(control.sft_stage1_hash(), cfg.sft_stage1_hash());
        let reused = warm_start_with(&control, dir.path(), &Device::Cpu, &mut |p| {
            assert_ne!(p.phase, Phase::Sft1, "stage 1 should come from the cache")
        })
        .unwrap();
        let (fresh, _) = train_sft(&control, &Device::Cpu, &mut |_| {}).unwrap();
        assert_same_weights(&reused.model, &fresh);
        // Training again from scratch gives the same weights (determinism).
        let (again, _) = train_sft(&cfg, &Device::Cpu, &mut |_| {}).unwrap();
        assert_same_weights(&a.model, &again);
    }

    #[test]
    fn an_observed_stage_one_passes_through_every_shorter_warm_start() {
        // With a constant learning rate, the model after t steps of a longer stage 1 is the
        // warm start of `stage1_steps = t, stage2_steps = 0`: `passk warm-starts --curve`
        // profiles candidate warm starts from one run.
        let mut long = TinyCellConfig::nano_smoke(1.0, "pass1_rloo");
        long.sft.stage1_steps = 6;
        long.sft.stage2_steps = 0;
        let mut at_four = None;
        let mut seen = Vec::new();
        train_sft_observed(&long, &Device::Cpu, &mut |stage, done, model| {
            seen.push((stage, done));
            if done == 4 {
                at_four = Some(flat_weights(model));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (1..=6).map(|t| (1, t)).collect::<Vec<_>>());
        let mut short = long.clone();
        short.sft.stage1_steps = 4;
        let (direct, _) = train_sft(&short, &Device::Cpu, &mut |_| {}).unwrap();
        assert_eq!(at_four.unwrap(), flat_weights(&direct));
    }

    fn flat_weights(model: &Gpt) -> Vec<(String, Vec<f32>)> {
        model
            .params()
            .iter()
            .map(|(name, v)| {
                let t = v.as_tensor().flatten_all().unwrap();
                (name.to_string(), t.to_vec1::<f32>().unwrap())
            })
            .collect()
    }
}
