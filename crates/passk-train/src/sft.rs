//! Supervised warm start (two stages) and its on-disk cache.
//!
//! The cache holds, per warm start, `sft-<hash>.safetensors` (the weights), `sft-<hash>.csv`
//! (the loss log) and `sft-<hash>.json` (the sidecar: sha256 of the weights and the config
//! fields they were trained from), and per shared stage 1 `sft1-<hash>.{safetensors,
//! optimizer.safetensors,csv}` with its sidecar `sft1-<hash>.json` (the sha256 of all three).
//! Writers hold `.sft-<hash>.lock` (and `.sft1-<hash>.lock`), see [`crate::lock`]. A load
//! checks the sidecar (a warm start without one, as committed, is checked for finite weights
//! and given one; a stage 1 without one is not trusted) and that every weight is finite; a
//! failed check retrains from the last verified ancestor (stage 1 from scratch, stage 2 from a
//! verified stage 1) with a warning, or fails when strict, naming the file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use passk_core::rng::seeded;
use passk_policy::{clip_grad_norm, Gpt};
use passk_schema::train::SftLogRow;
use passk_tasks::{Mixture, Split};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::batch::{weighted_logprob_sum, Vocab};
use crate::config::{hex, OptimizerKind, TinyCellConfig};
use crate::error::{io_err, Result, TrainError};
use crate::lock::{pid_alive, temp_writer_pid, FileLock};
use crate::optim::Optimizer;
use crate::progress::{Phase, Progress};
use crate::streams;

/// Gradient-norm clip used during SFT.
pub const SFT_CLIP: f64 = 1.0;

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

/// Where [`train_sft_stages`] caches stage 1, and whether a cached stage 1 that fails its
/// check is an error (`strict`) instead of being retrained.
struct Stage1Cache<'a> {
    dir: &'a Path,
    strict: bool,
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

/// `sft1-<hash>.json`: what a cached stage 1's three files must be. Written before the model
/// is renamed into place, so a stage 1 in place always has one (a cache from before sidecars
/// existed does not, and its stage 1 is retrained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stage1Record {
    /// [`TinyCellConfig::sft_stage1_hash`] of the config it was trained from.
    stage1_hash: String,
    /// sha256 (lower-case hex) of `sft1-<hash>.safetensors`.
    model_sha256: String,
    /// sha256 of `sft1-<hash>.optimizer.safetensors`.
    optimizer_sha256: String,
    /// sha256 of `sft1-<hash>.csv`.
    log_sha256: String,
}

fn stage1_sidecar(dir: &Path, cfg: &TinyCellConfig) -> PathBuf {
    dir.join(format!("sft1-{}.json", cfg.sft_stage1_hash()))
}

fn file_sha256(path: &Path) -> std::result::Result<String, String> {
    std::fs::read(path)
        .map(|b| hex(&Sha256::digest(&b)))
        .map_err(|e| format!("{} is unreadable ({e})", path.display()))
}

/// A loaded stage 1: the model, its optimiser state and its loss log.
type Stage1 = (Gpt, Optimizer, Vec<SftLogRow>);

/// Checks the cached stage 1 of `cfg` in `dir` against its sidecar and loads it; `Err(why)`
/// when a file is missing, unreadable, differs from the sidecar, does not load or holds a
/// non-finite weight.
fn load_stage1(
    cfg: &TinyCellConfig,
    dir: &Path,
    device: &Device,
) -> Result<std::result::Result<Stage1, String>> {
    let sidecar = stage1_sidecar(dir, cfg);
    let checked = (|| {
        let record: Stage1Record = crate::files::read_json(&sidecar).map_err(|e| {
            format!(
                "its sidecar {} is missing or unreadable ({e})",
                sidecar.display()
            )
        })?;
        if record.stage1_hash != cfg.sft_stage1_hash() {
            return Err(format!(
                "{} records stage 1 {}, not {}",
                sidecar.display(),
                record.stage1_hash,
                cfg.sft_stage1_hash()
            ));
        }
        let [model_path, opt_path, log_path] = stage1_paths(cfg, dir);
        for (path, want) in [
            (&model_path, &record.model_sha256),
            (&opt_path, &record.optimizer_sha256),
            (&log_path, &record.log_sha256),
        ] {
            let found = file_sha256(path)?;
            if &found != want {
                return Err(format!(
                    "{} has sha256 {found} but {} records {want}",
                    path.display(),
                    sidecar.display()
                ));
            }
        }
        Ok([model_path, opt_path, log_path])
    })();
    let [model_path, opt_path, log_path] = match checked {
        Ok(paths) => paths,
        Err(why) => return Ok(Err(why)),
    };
    let model = match Gpt::from_checkpoint(cfg.gpt_config()?, &model_path, device) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("it does not load ({e})"))),
    };
    if let Some(name) = first_non_finite(&model)? {
        return Ok(Err(format!(
            "weight `{name}` holds a NaN or infinite value"
        )));
    }
    let mut opt = Optimizer::new(OptimizerKind::Adamw, cfg.sft.lr, &model.params())?;
    if let Err(e) = opt.load(&opt_path) {
        return Ok(Err(format!("its optimiser state does not load ({e})")));
    }
    let log = match crate::files::read_csv(&log_path) {
        Ok(l) => l,
        Err(e) => return Ok(Err(format!("its loss log does not parse ({e})"))),
    };
    Ok(Ok((model, opt, log)))
}

/// [`train_sft`], reusing (or saving) the stage-1 model and optimiser in `stage1_cache`: every
/// q shares stage 1, which is most of the warm start's cost. Loading is exact, so the result is
/// bit-identical to training both stages in one go.
fn train_sft_stages(
    cfg: &TinyCellConfig,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    stage1_cache: Option<Stage1Cache>,
    observe: &mut dyn FnMut(u32, u64, &Gpt) -> Result<()>,
) -> Result<(Gpt, Vec<SftLogRow>)> {
    cfg.validate()?;
    let vocab = Vocab::synthetic();
    let mut model = Gpt::new(cfg.gpt_config()?, cfg.seed, device)?;
    let mut opt = Optimizer::new(OptimizerKind::Adamw, cfg.sft.lr, &model.params())?;
    let mut log = Vec::new();
    let mut skip_stage1 = false;
    // Held from the cache check until stage 1 is saved (or loaded): processes training
    // different q of one seed train the shared stage 1 once.
    let mut stage1_lock = None;
    if let Some(Stage1Cache { dir, strict }) = &stage1_cache {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        stage1_lock = Some(FileLock::acquire(
            &dir.join(format!(".sft1-{}.lock", cfg.sft_stage1_hash())),
        )?);
        let [model_path, ..] = stage1_paths(cfg, dir);
        // The model file is renamed into place last, so its presence means all four exist.
        if model_path.exists() {
            match load_stage1(cfg, dir, device)? {
                Ok((m, o, l)) => {
                    (model, opt, log) = (m, o, l);
                    skip_stage1 = true;
                    drop(stage1_lock.take());
                }
                Err(detail) if *strict => {
                    return Err(TrainError::WarmStart {
                        path: model_path,
                        detail,
                    })
                }
                // Still holding the lock: train stage 1 again from the fresh model.
                Err(detail) => eprintln!(
                    "warning: cached stage-1 model {} failed its integrity check: {detail}; \
                     retraining stage 1",
                    model_path.display()
                ),
            }
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
        if let (1, Some(cache)) = (stage, &stage1_cache) {
            save_stage1(cfg, cache.dir, &model, &opt, &log)?;
            drop(stage1_lock.take());
        }
    }
    Ok((model, log))
}

/// Saves the stage-1 log, optimiser, sidecar and model, each under a temporary name renamed
/// into place, the model last (its presence means the other three are in place).
fn save_stage1(
    cfg: &TinyCellConfig,
    dir: &Path,
    model: &Gpt,
    opt: &Optimizer,
    log: &[SftLogRow],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    // The three files belong together: a stop (SIGTERM) lets all of them be written.
    let _section = passk_core::interrupt::write_section();
    let [model_path, opt_path, log_path] = stage1_paths(cfg, dir);
    crate::files::write_csv_atomic(&log_path, log)?;
    let tmp_opt = unique_tmp(&opt_path);
    opt.save(&tmp_opt)?;
    std::fs::rename(&tmp_opt, &opt_path).map_err(io_err(&opt_path))?;
    let tmp_model = unique_tmp(&model_path);
    model.save(&tmp_model)?;
    let sha = |p: &Path| file_sha256(p).map_err(|e| io_err(p)(std::io::Error::other(e)));
    let record = Stage1Record {
        stage1_hash: cfg.sft_stage1_hash(),
        model_sha256: sha(&tmp_model)?,
        optimizer_sha256: sha(&opt_path)?,
        log_sha256: sha(&log_path)?,
    };
    crate::files::write_json_atomic(&stage1_sidecar(dir, cfg), &record)?;
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

/// The integrity sidecar of a cached warm start: `<cache_dir>/sft-<sft_hash>.json`.
fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// `sft-<hash>.json`: what a cached warm start's bytes and configuration must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WarmStartRecord {
    /// Lower-case hex sha256 of the `.safetensors` file.
    sha256: String,
    /// [`TinyCellConfig::sft_hash`] of the config it was trained from.
    sft_hash: String,
    /// The fields that hash hashes (model, mixture, seed, sft).
    config: serde_json::Value,
}

impl WarmStartRecord {
    fn new(cfg: &TinyCellConfig, weights: &[u8]) -> Self {
        Self {
            sha256: hex(&Sha256::digest(weights)),
            sft_hash: cfg.sft_hash(),
            config: serde_json::to_value(cfg.sft_key()).expect("config serialises to JSON"),
        }
    }
}

/// The sha256 (lower-case hex) of the warm start of `cfg` cached in `cache_dir`: the one its
/// sidecar records when the sidecar names this config, otherwise (no sidecar, as for the
/// committed `results/warm-starts/`) computed from the `.safetensors` file; `None` when the
/// cache holds no warm start of `cfg` or its sidecar names another config. Nothing is checked
/// or written here: a load ([`warm_start_checked`]) checks the file against its sidecar.
pub fn cached_warm_start_sha256(cfg: &TinyCellConfig, cache_dir: &Path) -> Option<String> {
    let path = warm_start_path(cfg, cache_dir);
    let sidecar = sidecar_path(&path);
    if sidecar.exists() {
        let record = crate::files::read_json::<WarmStartRecord>(&sidecar).ok()?;
        return (record.sft_hash == cfg.sft_hash()).then_some(record.sha256);
    }
    let bytes = std::fs::read(&path).ok()?;
    Some(hex(&Sha256::digest(&bytes)))
}

/// The warm-started model of `cfg` on the CPU, trained once and cached in `cache_dir`.
pub fn warm_start(cfg: &TinyCellConfig, cache_dir: &Path) -> Result<Gpt> {
    Ok(warm_start_with(cfg, cache_dir, &Device::Cpu, &mut |_| {})?.model)
}

/// [`warm_start_checked`] that retrains (with a warning on stderr) a cached warm start that
/// fails its integrity check.
pub fn warm_start_with(
    cfg: &TinyCellConfig,
    cache_dir: &Path,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<WarmStart> {
    warm_start_checked(cfg, cache_dir, device, progress, false)
}

/// The warm-started model of `cfg`: loaded from `<cache_dir>/sft-<hash>.safetensors` when that
/// exists and passes its integrity check, otherwise trained with [`train_sft`] and saved there
/// atomically (with its loss log beside it as `sft-<hash>.csv` and its sidecar as
/// `sft-<hash>.json`).
///
/// The whole check-train-save runs under `<cache_dir>/.sft-<hash>.lock`, so a warm start that
/// several processes need at once is trained by one of them while the others wait, then load
/// it. The check: the sha256 of the file and the config in the sidecar must match, and every
/// weight must be finite (also for a file without sidecar, which is then given one). A failed
/// check is an error when `strict`; otherwise a warning on stderr, and the warm start is
/// retrained (bit-identical to a first training: the same config gives the same weights).
pub fn warm_start_checked(
    cfg: &TinyCellConfig,
    cache_dir: &Path,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    strict: bool,
) -> Result<WarmStart> {
    cfg.validate()?;
    let start = Instant::now();
    let path = warm_start_path(cfg, cache_dir);
    std::fs::create_dir_all(cache_dir).map_err(io_err(cache_dir))?;
    let _lock = FileLock::acquire(&cache_dir.join(format!(".sft-{}.lock", cfg.sft_hash())))?;
    if path.exists() {
        match load_checked(cfg, &path, device)? {
            Ok(model) => {
                return Ok(WarmStart {
                    model,
                    path,
                    reused: true,
                    seconds: start.elapsed().as_secs_f64(),
                })
            }
            Err(detail) if strict => return Err(TrainError::WarmStart { path, detail }),
            Err(detail) => eprintln!(
                "warning: cached warm start {} failed its integrity check: {detail}; \
                 retraining it",
                path.display()
            ),
        }
    }
    let (model, log) = train_sft_stages(
        cfg,
        device,
        progress,
        Some(Stage1Cache {
            dir: cache_dir,
            strict,
        }),
        &mut |_, _, _| Ok(()),
    )?;
    let csv_path = path.with_extension("csv");
    // Log, weights and sidecar belong together: a stop (SIGTERM) lets all of them be written.
    let _section = passk_core::interrupt::write_section();
    crate::files::write_csv_atomic(&csv_path, &log)?;
    let tmp = unique_tmp(&path);
    model.save(&tmp)?;
    let saved = std::fs::read(&tmp).map_err(io_err(&tmp));
    let record = match saved {
        Ok(bytes) => WarmStartRecord::new(cfg, &bytes),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(&path)(e)
    })?;
    crate::files::write_json_atomic(&sidecar_path(&path), &record)?;
    Ok(WarmStart {
        model,
        path,
        reused: false,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Loads the cached warm start at `path` if it passes its integrity check; `Ok(Err(why))`
/// when it does not. A file without sidecar that passes is given one.
fn load_checked(
    cfg: &TinyCellConfig,
    path: &Path,
    device: &Device,
) -> Result<std::result::Result<Gpt, String>> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let found = WarmStartRecord::new(cfg, &bytes);
    let sidecar = sidecar_path(path);
    let recorded = if sidecar.exists() {
        match crate::files::read_json::<WarmStartRecord>(&sidecar) {
            Ok(r) => Some(r),
            Err(e) => return Ok(Err(format!("its sidecar is unreadable ({e})"))),
        }
    } else {
        None
    };
    if let Some(r) = &recorded {
        if r.sft_hash != found.sft_hash || r.config != found.config {
            return Ok(Err(format!(
                "{} records config {} but this config hashes to {}",
                sidecar.display(),
                r.sft_hash,
                found.sft_hash
            )));
        }
        if r.sha256 != found.sha256 {
            return Ok(Err(format!(
                "its sha256 is {} but {} records {}",
                found.sha256,
                sidecar.display(),
                r.sha256
            )));
        }
    }
    let model = match Gpt::from_checkpoint(cfg.gpt_config()?, path, device) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("it does not load ({e})"))),
    };
    if let Some(name) = first_non_finite(&model)? {
        return Ok(Err(format!(
            "weight `{name}` holds a NaN or infinite value"
        )));
    }
    if recorded.is_none() {
        // An older cache entry (or a committed warm start): later loads verify against this.
        crate::files::write_json_atomic(&sidecar, &found)?;
    }
    Ok(Ok(model))
}

/// The name of the first parameter of `model` holding a NaN or infinity.
fn first_non_finite(model: &Gpt) -> Result<Option<String>> {
    for (name, var) in model.params() {
        let values = var
            .as_tensor()
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        if values.iter().any(|v| !v.is_finite()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Removes the leftover temporaries of warm-start writers that died: hidden files in
/// `cache_dir` named as this crate writes temporaries of `sft-<hash>.*` and `sft1-<hash>.*`
/// (see [`temp_writer_pid`]) whose writer pid no longer runs on this machine and whose lock
/// (`.sft-<hash>.lock`, `.sft1-<hash>.lock`) nobody holds. Nothing else is touched. Returns the
/// files removed.
pub fn remove_orphaned_cache_temporaries(cache_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return Ok(removed);
    };
    let mut candidates = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(cache_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_writer_pid(&name) else {
            continue;
        };
        let body = name.trim_start_matches('.');
        let Some((prefix, rest)) = body
            .strip_prefix("sft-")
            .map(|r| ("sft", r))
            .or_else(|| body.strip_prefix("sft1-").map(|r| ("sft1", r)))
        else {
            continue;
        };
        let hash = rest.split('.').next().unwrap_or_default();
        let is_file = entry.file_type().map_err(io_err(cache_dir))?.is_file();
        if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !is_file {
            continue;
        }
        candidates.push((entry.path(), pid, format!(".{prefix}-{hash}.lock")));
    }
    candidates.sort();
    for (path, pid, lock) in candidates {
        if pid_alive(pid) {
            continue;
        }
        let Some(_held) = FileLock::try_acquire(&cache_dir.join(lock))? else {
            continue;
        };
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "sft_tests.rs"]
mod tests;
