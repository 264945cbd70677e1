//! The configuration of one tiny-tier cell: [`TinyCellConfig`] and its parts.

use passk_core::objective::objective_from_spec;
use passk_policy::GptConfig;
use passk_tasks::{CharTokenizer, MixtureConfig, Tokenizer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};
use crate::probe::ProbeConfig;

/// Supervised warm start: teacher-forced cross-entropy on prompt -> reference answer, in two
/// stages (stage 1 with the reliable tag q = 1, stage 2 at the cell's q).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Steps of stage 1 (mixture with cue reliability forced to 1).
    pub stage1_steps: u64,
    /// Steps of stage 2 (mixture at the cell's cue reliability).
    pub stage2_steps: u64,
    /// Prompts per SFT step.
    pub batch: usize,
    /// AdamW learning rate (constant).
    pub lr: f64,
}

/// Which optimiser an RL run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay ([`crate::optim::ADAMW_WEIGHT_DECAY`]).
    Adamw,
    /// Plain stochastic gradient descent (no momentum, no weight decay).
    Sgd,
}

/// The reinforcement-learning phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlConfig {
    /// Number of policy-gradient updates.
    pub steps: u64,
    /// Prompts per update (P).
    pub prompts_per_step: usize,
    /// Samples per prompt (n).
    pub samples_per_prompt: usize,
    /// Objective spec for `passk_core::objective::objective_from_spec`, e.g. `"pass1_rloo"` or
    /// `"pkpo_loo_minus_one:k=4"`.
    pub objective: String,
    /// `"adamw"` or `"sgd"`.
    pub optimizer: OptimizerKind,
    /// Learning rate (constant).
    pub lr: f64,
    /// Maximum global gradient norm (clipping threshold).
    pub clip: f64,
    /// Sampling temperature for rollouts and evaluation.
    pub temperature: f64,
}

/// Held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many RL steps (also at step 0 and at the end).
    pub every: u64,
    /// Number of distinct eval-split prompts (a fixed set for the whole run).
    pub n_prompts: usize,
    /// Samples per eval prompt.
    pub n_samples: usize,
    /// The k values at which unbiased pass@k is reported.
    pub ks: Vec<u32>,
}

/// Everything that determines one tiny-tier cell (warm start, RL, evaluation, checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TinyCellConfig {
    /// Model preset of `passk_policy::GptConfig::preset`: `nano`, `small` or `medium`.
    pub model: String,
    /// Task mixture (including the cue reliability q).
    pub mixture: MixtureConfig,
    /// Seed of every random stream of the cell (weights, prompts, samples, evaluation).
    pub seed: u64,
    /// Supervised warm start.
    pub sft: SftConfig,
    /// Reinforcement learning.
    pub rl: RlConfig,
    /// Held-out evaluation.
    pub eval: EvalConfig,
    /// Write a checkpoint every this many RL steps.
    pub checkpoint_every: u64,
    /// The gradient-interference probe, run at the warm start, every `probe.every` steps and
    /// at the end.
    pub probe: CellProbe,
}

/// When and how a cell probes its gradients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellProbe {
    /// Probe every this many RL steps (also at step 0 and at the end); 0 turns the probe off.
    pub every: u64,
    /// Whether to probe at step 0, the warm start (default true; the CI smoke matrix, whose
    /// claims read only the last probe, turns it off to save time).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub at_start: bool,
    /// The probe's settings.
    pub settings: ProbeConfig,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl CellProbe {
    /// No probing (the settings are the defaults and unused).
    pub fn off() -> Self {
        Self {
            every: 0,
            at_start: true,
            settings: ProbeConfig::default(),
        }
    }

    /// Whether the cell probes after `step` of `steps` RL steps.
    pub fn due(&self, step: u64, steps: u64) -> bool {
        self.every > 0
            && (step.is_multiple_of(self.every) || step == steps)
            && (step > 0 || self.at_start)
    }
}

fn bad(field: &str, problem: impl Into<String>) -> TrainError {
    TrainError::Config {
        field: field.to_string(),
        problem: problem.into(),
    }
}

impl RlConfig {
    /// Checks the RL fields (sizes, rates, the objective spec and that its k fits the group
    /// size); the error names the field as `rl.<name>`.
    pub fn validate(&self) -> Result<()> {
        at_least_one("rl.prompts_per_step", self.prompts_per_step)?;
        at_least_one("rl.samples_per_prompt", self.samples_per_prompt)?;
        for (field, n) in [
            ("rl.prompts_per_step", self.prompts_per_step),
            ("rl.samples_per_prompt", self.samples_per_prompt),
        ] {
            if n > MAX_BATCH {
                return Err(bad(field, format!("is {n}; at most {MAX_BATCH}")));
            }
        }
        positive_finite("rl.lr", self.lr)?;
        positive_finite("rl.clip", self.clip)?;
        positive_finite("rl.temperature", self.temperature)?;
        let objective =
            objective_from_spec(&self.objective).map_err(|e| bad("rl.objective", e.to_string()))?;
        let n = self.samples_per_prompt;
        let k = objective.k_for_group(n);
        if k as usize > n {
            return Err(bad(
                "rl.objective",
                format!("targets k = {k} but rl.samples_per_prompt is {n}; need k <= n"),
            ));
        }
        objective
            .weights(&vec![0.0; n])
            .map_err(|e| bad("rl.samples_per_prompt", e.to_string()))?;
        Ok(())
    }
}

/// The most memory (bytes) one cell may plan to hold: sizes whose rough estimate exceeds it are
/// refused up front, naming the key, instead of failing to allocate mid-run (64 GiB).
pub const MAX_PLANNED_BYTES: u128 = 64 << 30;

/// The largest group or batch size checked before any estimate (2^20): a bound the objective
/// checks below may allocate up to.
pub const MAX_BATCH: usize = 1 << 20;

/// Refuses `field` (whose value is `value`) when `bytes`, a rough estimate of what it makes a
/// cell hold (`what`), exceeds [`MAX_PLANNED_BYTES`].
pub fn within_memory(field: &str, value: u128, bytes: u128, what: &str) -> Result<()> {
    if bytes <= MAX_PLANNED_BYTES {
        return Ok(());
    }
    let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
    Err(bad(
        field,
        format!(
            "is {value}: {what} would need about {:.3e} GiB, more than the {} GiB a cell may \
             plan for; lower it",
            gib(bytes),
            gib(MAX_PLANNED_BYTES)
        ),
    ))
}

/// Rough bytes of one sequence's forward and backward pass through `g` (activations of every
/// layer and the logits, kept for the backward pass, f32).
fn sequence_bytes(g: &GptConfig) -> u128 {
    let t = g.context as u128;
    let per_token = (g.n_layer * g.d_model * (2 * g.mlp_ratio + 8) + g.vocab_size) as u128 * 4 * 3;
    let attention = (g.n_layer * g.n_head) as u128 * t * t * 4 * 3;
    t * per_token + attention
}

fn positive_finite(field: &str, x: f64) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(bad(field, format!("must be finite and > 0, got {x}")))
    }
}

fn at_least_one<T: PartialOrd + From<u8> + std::fmt::Display>(field: &str, x: T) -> Result<()> {
    if x >= T::from(1u8) {
        Ok(())
    } else {
        Err(bad(field, format!("must be >= 1, got {x}")))
    }
}

/// The fields that determine the warm start, hashed for the cache key.
#[derive(Serialize)]
struct SftKey<'a> {
    model: &'a str,
    mixture: &'a MixtureConfig,
    seed: u64,
    sft: &'a SftConfig,
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TinyCellConfig {
    /// Checks every field; the error names the field (dotted path) and what is allowed.
    pub fn validate(&self) -> Result<()> {
        GptConfig::preset(&self.model, 1).map_err(|e| bad("model", e.to_string()))?;
        self.check_sizes()?;
        self.mixture.validate().map_err(|e| TrainError::Config {
            field: format!("mixture.{}", e.field),
            problem: e.problem,
        })?;
        at_least_one("sft.batch", self.sft.batch)?;
        positive_finite("sft.lr", self.sft.lr)?;
        self.rl.validate()?;
        at_least_one("eval.every", self.eval.every)?;
        at_least_one("eval.n_prompts", self.eval.n_prompts)?;
        at_least_one("eval.n_samples", self.eval.n_samples)?;
        if self.eval.ks.is_empty() {
            return Err(bad("eval.ks", "must list at least one k"));
        }
        for (i, &k) in self.eval.ks.iter().enumerate() {
            if k == 0 || k as usize > self.eval.n_samples {
                return Err(bad(
                    &format!("eval.ks[{i}]"),
                    format!(
                        "is {k}; every k must satisfy 1 <= k <= eval.n_samples ({})",
                        self.eval.n_samples
                    ),
                ));
            }
        }
        at_least_one("checkpoint_every", self.checkpoint_every)?;
        if self.probe.every > 0 {
            self.probe.settings.validate()?;
            let params = self.gpt_config()?.num_params();
            self.probe
                .settings
                .check_memory(self.probe.settings.n_prompts, params)?;
        }
        Ok(())
    }

    /// Refuses sizes this cell could not hold (rough estimates against [`MAX_PLANNED_BYTES`]),
    /// before anything is allocated; the error names the key.
    fn check_sizes(&self) -> Result<()> {
        let g = self.gpt_config()?;
        let seq = sequence_bytes(&g);
        let (p, n) = (
            self.rl.prompts_per_step as u128,
            self.rl.samples_per_prompt as u128,
        );
        let (field, value) = if n >= p {
            ("rl.samples_per_prompt", n)
        } else {
            ("rl.prompts_per_step", p)
        };
        within_memory(
            field,
            value,
            p.saturating_mul(n).saturating_mul(seq),
            "one RL step's rl.prompts_per_step x rl.samples_per_prompt sequences",
        )?;
        // A training-log row per step (about 256 bytes with its evaluation share).
        within_memory(
            "rl.steps",
            self.rl.steps as u128,
            (self.rl.steps as u128).saturating_mul(256),
            "the training log, a row per step,",
        )?;
        for (field, steps) in [
            ("sft.stage1_steps", self.sft.stage1_steps),
            ("sft.stage2_steps", self.sft.stage2_steps),
        ] {
            within_memory(
                field,
                steps as u128,
                (steps as u128).saturating_mul(64),
                "the SFT loss log, a row per step,",
            )?;
        }
        let batch = self.sft.batch as u128;
        within_memory(
            "sft.batch",
            batch,
            batch.saturating_mul(seq),
            "one SFT batch",
        )?;
        let samples = self.eval.n_samples as u128;
        within_memory(
            "eval.n_samples",
            samples,
            samples.saturating_mul(seq),
            "one held-out prompt's samples",
        )?;
        let prompts = self.eval.n_prompts as u128;
        within_memory(
            "eval.n_prompts",
            prompts,
            prompts
                .saturating_mul(samples)
                .saturating_mul(g.context as u128 * 8),
            "the held-out completions (eval.n_prompts x eval.n_samples)",
        )
    }

    /// The model shape for the synthetic character vocabulary.
    pub fn gpt_config(&self) -> Result<GptConfig> {
        let vocab = CharTokenizer::synthetic().vocab_size();
        GptConfig::preset(&self.model, vocab).map_err(|e| bad("model", e.to_string()))
    }

    /// SHA-256 (hex, first 16 characters) of exactly the fields that determine the warm start:
    /// model, mixture, seed and sft. Cells that differ only in RL or evaluation share it.
    pub fn sft_hash(&self) -> String {
        let json = serde_json::to_string(&self.sft_key()).expect("config serialises to JSON");
        hex(&Sha256::digest(json.as_bytes()))[..16].to_string()
    }

    /// The fields [`Self::sft_hash`] hashes (model, mixture, seed, sft), serialisable: recorded
    /// beside a cached warm start so a load can check what it was trained from.
    pub(crate) fn sft_key(&self) -> impl Serialize + '_ {
        SftKey {
            model: &self.model,
            mixture: &self.mixture,
            seed: self.seed,
            sft: &self.sft,
        }
    }

    /// SHA-256 (hex, first 16 characters) of the fields that determine SFT stage 1: model,
    /// mixture with the cue made reliable, seed, stage-1 steps, batch and learning rate. Cells
    /// that differ only in q share it (and the cached stage-1 model).
    pub fn sft_stage1_hash(&self) -> String {
        let mut mixture = self.mixture.clone();
        mixture.cue_reliability = 1.0;
        let sft = SftConfig {
            stage2_steps: 0,
            ..self.sft.clone()
        };
        let key = SftKey {
            model: &self.model,
            mixture: &mixture,
            seed: self.seed,
            sft: &sft,
        };
        let json = serde_json::to_string(&key).expect("config serialises to JSON");
        hex(&Sha256::digest(json.as_bytes()))[..16].to_string()
    }

    /// SHA-256 (hex, first 16 characters) of the whole config, stored in checkpoints so that a
    /// cell directory is never resumed under a different config.
    pub fn full_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("config serialises to JSON");
        hex(&Sha256::digest(json.as_bytes()))[..16].to_string()
    }

    /// The reference tiny design on the `small` model (the benches', examples' and tests' cell;
    /// docs/feasibility.md derives it): SFT 1750 steps with the reliable tag then 750 at q
    /// (batch 128, lr 2e-3); RL 200 steps of 32 prompts x 16 samples, AdamW lr 1e-4, clip 1,
    /// temperature 1; evaluation every 25 steps on 400 prompts x 16 samples at k = 1, 2, 4, 8,
    /// 16; a checkpoint every 25 steps.
    pub fn reference(q: f64, objective: &str, seed: u64) -> Self {
        Self {
            model: "small".into(),
            mixture: MixtureConfig::interference(q),
            seed,
            sft: SftConfig {
                stage1_steps: 1750,
                stage2_steps: 750,
                batch: 128,
                lr: 2e-3,
            },
            rl: RlConfig {
                steps: 200,
                prompts_per_step: 32,
                samples_per_prompt: 16,
                objective: objective.into(),
                optimizer: OptimizerKind::Adamw,
                lr: 1e-4,
                clip: 1.0,
                temperature: 1.0,
            },
            eval: EvalConfig {
                every: 25,
                n_prompts: 400,
                n_samples: 16,
                ks: vec![1, 2, 4, 8, 16],
            },
            checkpoint_every: 25,
            probe: CellProbe {
                every: 100,
                at_start: true,
                settings: ProbeConfig::default(),
            },
        }
    }

    /// A small config for tests and smoke runs: `nano` model, the interference mixture at q,
    /// a few steps of everything.
    pub fn nano_smoke(q: f64, objective: &str) -> Self {
        Self {
            model: "nano".into(),
            mixture: MixtureConfig::interference(q),
            seed: 7,
            sft: SftConfig {
                stage1_steps: 4,
                stage2_steps: 2,
                batch: 16,
                lr: 2e-3,
            },
            rl: RlConfig {
                steps: 4,
                prompts_per_step: 4,
                samples_per_prompt: 4,
                objective: objective.into(),
                optimizer: OptimizerKind::Adamw,
                lr: 1e-3,
                clip: 1.0,
                temperature: 1.0,
            },
            eval: EvalConfig {
                every: 2,
                n_prompts: 8,
                n_samples: 4,
                ks: vec![1, 4],
            },
            checkpoint_every: 2,
            probe: CellProbe::off(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: TrainError) -> String {
        match e {
            TrainError::Config { field, .. } => field,
            other => panic!("expected a config error, got {other}"),
        }
    }

    #[test]
    fn the_probe_schedule_can_skip_the_warm_start() {
        let mut p = CellProbe::off();
        assert!(!p.due(0, 10));
        p.every = 5;
        let due: Vec<u64> = (0..=12).filter(|&s| p.due(s, 12)).collect();
        assert_eq!(due, [0, 5, 10, 12]);
        p.at_start = false;
        let due: Vec<u64> = (0..=12).filter(|&s| p.due(s, 12)).collect();
        assert_eq!(due, [5, 10, 12]);
        // absent from the file = true, and true is not written back (cell hashes keep)
        let json = serde_json::json!({ "every": 5, "settings": ProbeConfig::default() });
        let parsed: CellProbe = serde_json::from_value(json).unwrap();
        assert!(parsed.at_start);
        assert!(!serde_json::to_string(&parsed).unwrap().contains("at_start"));
    }

    #[test]
    fn smoke_config_is_valid_and_round_trips() {
        let cfg = TinyCellConfig::nano_smoke(0.75, "pkpo_loo_minus_one:k=4");
        cfg.validate().unwrap();
        TinyCellConfig::reference(0.75, "pkpo_loo_minus_one:k=8", 1)
            .validate()
            .unwrap();
        let json = serde_json::to_string(&cfg).unwrap();
        let back: TinyCellConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn validation_names_the_field() {
        let base = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
        let mut c = base.clone();
        c.rl.objective = "pkpo_loo_minus_one:k=8".into();
        assert_eq!(field_of(c.validate().unwrap_err()), "rl.objective");
        let mut c = base.clone();
        c.eval.ks = vec![1, 5];
        assert_eq!(field_of(c.validate().unwrap_err()), "eval.ks[1]");
        let mut c = base.clone();
        c.rl.samples_per_prompt = 1;
        assert_eq!(field_of(c.validate().unwrap_err()), "rl.samples_per_prompt");
        let mut c = base.clone();
        c.model = "huge".into();
        assert_eq!(field_of(c.validate().unwrap_err()), "model");
        let mut c = base.clone();
        c.sft.lr = f64::NAN;
        assert_eq!(field_of(c.validate().unwrap_err()), "sft.lr");
        let mut c = base.clone();
        c.mixture.cue_reliability = 1.5;
        assert!(field_of(c.validate().unwrap_err()).starts_with("mixture."));
        let mut c = base;
        c.checkpoint_every = 0;
        assert_eq!(field_of(c.validate().unwrap_err()), "checkpoint_every");
    }

    #[test]
    fn unknown_and_missing_fields_are_rejected() {
        let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
        let mut v = serde_json::to_value(&cfg).unwrap();
        v["rl"]["momentum"] = serde_json::json!(0.9);
        assert!(serde_json::from_value::<TinyCellConfig>(v).is_err());
        let mut v = serde_json::to_value(&cfg).unwrap();
        v["eval"].as_object_mut().unwrap().remove("ks");
        assert!(serde_json::from_value::<TinyCellConfig>(v).is_err());
    }

    #[test]
    fn sft_hash_depends_only_on_warm_start_fields() {
        let a = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
        let mut b = a.clone();
        b.rl.objective = "pkpo_loo_minus_one:k=4".into();
        b.rl.lr = 0.5;
        b.eval.n_prompts = 99;
        assert_eq!(a.sft_hash(), b.sft_hash());
        assert_ne!(a.full_hash(), b.full_hash());
        let mut c = a.clone();
        c.mixture.cue_reliability = 1.0;
        assert_ne!(a.sft_hash(), c.sft_hash());
        let mut d = a.clone();
        d.seed += 1;
        assert_ne!(a.sft_hash(), d.sft_hash());
        assert_eq!(a.sft_hash().len(), 16);
    }
}
