//! The shape of a Llama/Qwen2-family causal LM, read from a Hugging Face `config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};

/// One token id or several (Hugging Face writes `eos_token_id` either way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// The fields of a Hugging Face `config.json` that a Llama or Qwen2 decoder needs.
///
/// Unknown fields are ignored. `rope_scaling` other than absent/`null` is refused by
/// [`LmConfig::validate`] (Llama-3 frequency scaling is not implemented).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// `"llama"` or `"qwen2"` (decides the QKV-bias default).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width `d`.
    pub hidden_size: usize,
    /// Width of the SiLU-gated MLP.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Longest supported sequence (positions).
    pub max_position_embeddings: usize,
    /// Whether the output head reuses the token embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections have biases; absent means "yes for qwen2, no otherwise".
    #[serde(default)]
    pub attention_bias: Option<bool>,
    /// Beginning-of-sequence id, if any.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id(s), if any.
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// RoPE scaling; only absent/null is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
}

fn default_model_type() -> String {
    "llama".to_string()
}

fn default_rope_theta() -> f64 {
    10_000.0
}

impl LmConfig {
    /// Parses a `config.json` string and validates it.
    pub fn from_json_str(json: &str) -> Result<Self> {
        let cfg: LmConfig = serde_json::from_str(json)
            .map_err(|e| PolicyError::Config(format!("config.json does not parse: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a `config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text)
    }

    /// The config as pretty JSON (a valid Hugging Face `config.json`).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v projections carry a bias.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias
            .unwrap_or(self.model_type.eq_ignore_ascii_case("qwen2"))
    }

    /// The end-of-sequence ids named by the config (possibly empty).
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }

    /// Checks that the shape is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PolicyError::Config(m));
        let mt = self.model_type.to_ascii_lowercase();
        if mt != "llama" && mt != "qwen2" {
            return bad(format!(
                "model_type {:?} is not supported; use a llama or qwen2 checkpoint",
                self.model_type
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        let (h, kv, hd) = (self.num_attention_heads, self.kv_heads(), self.head_dim());
        if kv == 0 || h % kv != 0 {
            return bad(format!(
                "num_attention_heads {h} must be a positive multiple of num_key_value_heads {kv}"
            ));
        }
        if hd == 0 || hd % 2 != 0 {
            return bad(format!(
                "head_dim {hd} must be positive and even (RoPE pairs)"
            ));
        }
        if !(self.rms_norm_eps > 0.0 && self.rope_theta > 0.0) {
            return bad("rms_norm_eps and rope_theta must be positive".to_string());
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return bad(
                "rope_scaling is not supported (only plain RoPE); use a model without it"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// Number of scalar parameters of a model of this shape.
    pub fn num_params(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (
            self.num_attention_heads * self.head_dim(),
            self.kv_heads() * self.head_dim(),
        );
        let bias = if self.qkv_bias() { q + 2 * kv } else { 0 };
        let block = d * q + 2 * d * kv + q * d + bias + 3 * d * f + 2 * d;
        let head = if self.tie_word_embeddings { 0 } else { v * d };
        v * d + self.num_hidden_layers * block + d + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
      "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536,
      "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9,
      "num_hidden_layers": 30, "num_key_value_heads": 3, "rms_norm_eps": 1e-05,
      "rope_scaling": null, "rope_theta": 100000, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16", "vocab_size": 49152
    }"#;

    #[test]
    fn smollm2_config_parses_to_135m_parameters() {
        let cfg = LmConfig::from_json_str(SMOLLM2).unwrap();
        assert_eq!((cfg.kv_heads(), cfg.head_dim()), (3, 64));
        assert!(!cfg.qkv_bias());
        assert_eq!(cfg.eos_ids(), vec![2]);
        // 134,515,008 is SmolLM2-135M's published parameter count.
        assert_eq!(cfg.num_params(), 134_515_008);
        let back = LmConfig::from_json_str(&cfg.to_json_string()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn qwen2_defaults_to_qkv_bias_and_bad_shapes_are_refused() {
        let q = SMOLLM2.replace("\"llama\"", "\"qwen2\"");
        assert!(LmConfig::from_json_str(&q).unwrap().qkv_bias());
        let bad = SMOLLM2.replace("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4");
        assert!(LmConfig::from_json_str(&bad).is_err());
        let scaled = SMOLLM2.replace("null", "{\"rope_type\": \"llama3\"}");
        assert!(LmConfig::from_json_str(&scaled).is_err());
        let other = SMOLLM2.replace("\"llama\"", "\"gpt2\"");
        assert!(LmConfig::from_json_str(&other).is_err());
    }
}
