//! What the probe measures ([`ProbeConfig`], [`ProbeMode`]) and on which prompts ([`ProbeSet`]).

use passk_core::rng::seeded;
use passk_tasks::{Mixture, Prompt, Split};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::streams;
use crate::batch::PromptCodec;
use crate::error::{Result, TrainError};

/// How per-prompt gradients are stored before their inner products are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeMode {
    /// Full parameter vectors (flattened in parameter-name order); inner products accumulated
    /// in f64. Needs `n_prompts × parameters × 4` bytes within the memory budget.
    Exact,
    /// A seeded CountSketch to `dim` dimensions: every parameter coordinate goes to one of `dim`
    /// buckets with a random sign (a sparse Rademacher projection `S` with `E[SᵀS] = I`), so
    /// sketched inner products are unbiased for the exact ones, with standard deviation at most
    /// `√2 ‖u‖ ‖v‖ / √dim`. The projection is regenerated chunk by chunk from `seed` and never
    /// stored.
    Sketch {
        /// Sketch dimension.
        dim: usize,
        /// Seed of the projection (part of the config, hence of the cell hash).
        seed: u64,
    },
}

/// The gradient-interference probe: how many prompts and samples, which k, how gradients are
/// stored, and the statistics' settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Number of distinct probe-split prompts (N).
    pub n_prompts: usize,
    /// Samples per prompt (n); even and at least 4, split into two halves of n/2.
    pub n_samples: usize,
    /// The k values at which `⟨∇J_k, ∇J_1⟩` is reported.
    pub ks: Vec<u32>,
    /// Exact gradients or a sketch.
    pub mode: ProbeMode,
    /// Most megabytes the stored gradients may take (exact: N × parameters × 4 bytes; sketch:
    /// N × dim × 16 bytes).
    pub memory_budget_mb: usize,
    /// Bootstrap resamples over prompts for the confidence intervals (0: no intervals, NaN).
    pub bootstrap: usize,
    /// Fraction trimmed from each end for the robust (trimmed-mean) statistic, in [0, 0.5).
    pub trim: f64,
}

impl Default for ProbeConfig {
    /// 256 prompts × 16 samples, k ∈ {1, 2, 4, 8}, exact gradients within 2 GiB, 1000 bootstrap
    /// resamples, 10% trimmed from each end.
    fn default() -> Self {
        Self {
            n_prompts: 256,
            n_samples: 16,
            ks: vec![1, 2, 4, 8],
            mode: ProbeMode::Exact,
            memory_budget_mb: 2048,
            bootstrap: 1000,
            trim: 0.1,
        }
    }
}

fn bad(field: &str, problem: impl Into<String>) -> TrainError {
    TrainError::Config {
        field: format!("probe.{field}"),
        problem: problem.into(),
    }
}

impl ProbeConfig {
    /// Checks every field; the error names the field (`probe.<name>`) and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.n_prompts < 2 {
            return Err(bad(
                "n_prompts",
                "must be at least 2 (a Gram matrix needs pairs)",
            ));
        }
        if self.n_samples < 4 || !self.n_samples.is_multiple_of(2) {
            return Err(bad(
                "n_samples",
                format!(
                    "is {}; it must be even and at least 4 (two halves of at least 2 samples \
                     each, for the leave-one-out baseline)",
                    self.n_samples
                ),
            ));
        }
        if self.ks.is_empty() {
            return Err(bad("ks", "must list at least one k"));
        }
        if let Some(i) = self.ks.iter().position(|&k| k == 0) {
            return Err(bad(&format!("ks[{i}]"), "is 0; every k must be at least 1"));
        }
        if let ProbeMode::Sketch { dim, .. } = self.mode {
            if dim == 0 {
                return Err(bad("mode.dim", "must be at least 1"));
            }
        }
        if self.memory_budget_mb == 0 {
            return Err(bad("memory_budget_mb", "must be positive"));
        }
        if !(0.0..0.5).contains(&self.trim) {
            return Err(bad(
                "trim",
                format!("is {}; it must lie in [0, 0.5)", self.trim),
            ));
        }
        Ok(())
    }

    /// Bytes the stored gradients of `n_prompts` prompts need for a model of `n_params`
    /// parameters in this mode.
    pub fn storage_bytes(&self, n_prompts: usize, n_params: usize) -> u128 {
        match self.mode {
            ProbeMode::Exact => n_prompts as u128 * n_params as u128 * 4,
            ProbeMode::Sketch { dim, .. } => n_prompts as u128 * dim as u128 * 16,
        }
    }

    /// Fails (naming `probe.memory_budget_mb` and saying to use sketch mode) when the stored
    /// gradients would exceed the budget.
    pub fn check_memory(&self, n_prompts: usize, n_params: usize) -> Result<()> {
        let need = self.storage_bytes(n_prompts, n_params);
        let budget = self.memory_budget_mb as u128 * 1024 * 1024;
        if need <= budget {
            return Ok(());
        }
        let need_mb = need.div_ceil(1024 * 1024);
        Err(bad(
            "memory_budget_mb",
            match self.mode {
                ProbeMode::Exact => format!(
                    "is {} MB but exact mode would hold {n_prompts} full gradients of \
                     {n_params} parameters ({need_mb} MB); use mode = {{ kind = \"sketch\", \
                     dim = 4096, seed = ... }}, fewer prompts, or a larger budget",
                    self.memory_budget_mb
                ),
                ProbeMode::Sketch { dim, .. } => format!(
                    "is {} MB but {n_prompts} sketches of dimension {dim} need {need_mb} MB; \
                     lower mode.dim or raise the budget",
                    self.memory_budget_mb
                ),
            },
        ))
    }
}

/// A fixed set of probe prompts with their model inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSet {
    /// The prompts (their `family` labels the family blocks).
    pub prompts: Vec<Prompt>,
    /// Model input of each prompt (BOS then the prompt text).
    pub ids: Vec<Vec<u32>>,
    /// Most tokens sampled per completion.
    pub max_new_tokens: usize,
}

impl ProbeSet {
    /// `n_prompts` distinct prompts of the probe split ([`Split::Probe`]), drawn with a seed
    /// derived from the stream `(seed, PROBE_SET)`, independent of the training and evaluation
    /// draws; at most `vocab.max_new_tokens(mixture)` tokens are sampled per completion.
    pub fn from_mixture<C: PromptCodec + ?Sized>(
        mixture: &Mixture,
        vocab: &C,
        n_prompts: usize,
        seed: u64,
    ) -> Result<Self> {
        let set_seed = seeded(seed, &[streams::PROBE_SET]).next_u64();
        let prompts = mixture.generate_distinct(Split::Probe, n_prompts, set_seed)?;
        Self::from_prompts(prompts, vocab, vocab.max_new_tokens(mixture))
    }

    /// A probe set from explicit prompts.
    pub fn from_prompts<C: PromptCodec + ?Sized>(
        prompts: Vec<Prompt>,
        vocab: &C,
        max_new_tokens: usize,
    ) -> Result<Self> {
        let ids = prompts
            .iter()
            .map(|p| vocab.prompt(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            prompts,
            ids,
            max_new_tokens,
        })
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether the set has no prompts.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// The family name of every prompt, in order.
    pub fn families(&self) -> Vec<String> {
        self.prompts
            .iter()
            .map(|p| p.family.name().to_string())
            .collect()
    }
}
