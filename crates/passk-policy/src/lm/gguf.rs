//! Reading llama.cpp GGUF files into a [`CausalLm`] (every tensor dequantised to f32) and
//! writing a model back as GGUF.
//!
//! llama.cpp's converter permutes the rows of the `llama` architecture's Q and K projections
//! so that rotary pairs are interleaved (`rope_i`). This module undoes that permutation when
//! reading (and applies it when writing), so the model always uses the Hugging Face
//! rotate-half layout and one forward pass (`rope_slow`) serves safetensors and GGUF alike.
//! `qwen2` GGUF files are not permuted (llama.cpp runs them with NEOX rope).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::config::{LmConfig, TokenIds};
use super::model::CausalLm;
use crate::error::{PolicyError, Result};

/// A GGUF file's metadata and its tensors, dequantised to f32 and renamed to Hugging Face
/// names (Q/K already un-permuted).
pub struct GgufCheckpoint {
    /// The model shape recovered from the metadata.
    pub config: LmConfig,
    /// Every tensor (f32, CPU) under its Hugging Face name.
    pub tensors: HashMap<String, Tensor>,
    /// The raw metadata (tokenizer, chat template, ...).
    pub metadata: HashMap<String, Value>,
}

fn bad(path: &Path, detail: impl Into<String>) -> PolicyError {
    PolicyError::Checkpoint {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The Hugging Face name of a llama.cpp tensor name, or `None` when it has no counterpart.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = rest.rsplit_once('.')?;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// The llama.cpp name of a Hugging Face tensor name (inverse of [`hf_name`]).
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, kind) = rest.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// Reorders the rows of a Q or K projection (`[heads * head_dim, ...]`) between the Hugging
/// Face rotate-half layout and llama.cpp's interleaved layout. `to_gguf` applies llama.cpp's
/// permutation, otherwise it is undone.
pub fn permute_rope_rows(w: &Tensor, heads: usize, to_gguf: bool) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return Err(PolicyError::Config(format!(
            "cannot permute {rows} rows over {heads} heads"
        )));
    }
    let half = rows / heads / 2;
    let rest: usize = dims[1..].iter().product();
    let (a, b) = if to_gguf { (2, half) } else { (half, 2) };
    Ok(w.reshape((heads, a, b, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

fn md_u32(md: &HashMap<String, Value>, key: &str) -> Option<usize> {
    md.get(key)
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize)
}

/// An f32 metadata value widened to the f64 with the same shortest decimal form (so 1e-5
/// stays 1e-5 rather than 9.99999974e-6).
fn md_f32(md: &HashMap<String, Value>, key: &str) -> Option<f64> {
    let v = md.get(key).and_then(|v| v.to_f32().ok())?;
    v.to_string().parse().ok()
}

/// Reads a GGUF file: metadata, config and every tensor dequantised to f32 under its Hugging
/// Face name.
pub fn read_gguf(path: impl AsRef<Path>) -> Result<GgufCheckpoint> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader)
        .map_err(|e| bad(path, format!("not a readable GGUF file: {e}")))?;
    let md = &content.metadata;
    let arch = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if arch != "llama" && arch != "qwen2" {
        return Err(bad(
            path,
            format!("architecture {arch:?} is not supported; use a llama or qwen2 GGUF"),
        ));
    }
    let need = |key: &str| {
        md_u32(md, &format!("{arch}.{key}"))
            .ok_or_else(|| bad(path, format!("metadata {arch}.{key} is missing")))
    };
    let heads = need("attention.head_count")?;
    let kv_heads = md_u32(md, &format!("{arch}.attention.head_count_kv")).unwrap_or(heads);
    let hidden = need("embedding_length")?;
    let embd = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| bad(path, "tensor token_embd.weight is missing"))?;
    // candle reports GGUF shapes in row-major order: `[vocab, hidden]`.
    let vocab_size = embd.shape.dims()[0];
    let head_dim = md_u32(md, &format!("{arch}.attention.key_length"))
        .or_else(|| md_u32(md, &format!("{arch}.rope.dimension_count")))
        .unwrap_or(hidden / heads.max(1));
    if content.tensor_infos.contains_key("rope_freqs.weight") {
        return Err(bad(path, "rope_freqs (scaled RoPE) is not supported"));
    }
    let eos = md_u32(md, "tokenizer.ggml.eos_token_id").map(|e| TokenIds::One(e as u32));
    let config = LmConfig {
        model_type: arch.clone(),
        vocab_size,
        hidden_size: hidden,
        intermediate_size: need("feed_forward_length")?,
        num_hidden_layers: need("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: Some(kv_heads),
        head_dim: (head_dim != hidden / heads.max(1)).then_some(head_dim),
        rms_norm_eps: md_f32(md, &format!("{arch}.attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-5),
        rope_theta: md_f32(md, &format!("{arch}.rope.freq_base")).unwrap_or(10_000.0),
        max_position_embeddings: need("context_length")?,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
        attention_bias: Some(content.tensor_infos.contains_key("blk.0.attn_q.bias")),
        bos_token_id: md_u32(md, "tokenizer.ggml.bos_token_id").map(|b| b as u32),
        eos_token_id: eos,
        rope_scaling: None,
    };
    config.validate()?;
    let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    let mut tensors = HashMap::new();
    for name in names {
        let hf = hf_name(&name).ok_or_else(|| {
            bad(
                path,
                format!("tensor {name} has no Hugging Face counterpart"),
            )
        })?;
        let q = content
            .tensor(&mut reader, &name, &Device::Cpu)
            .map_err(|e| bad(path, format!("tensor {name} does not read: {e}")))?;
        let mut t = q.dequantize(&Device::Cpu)?;
        if arch == "llama" {
            if hf.contains("self_attn.q_proj") {
                t = permute_rope_rows(&t, heads, false)?;
            } else if hf.contains("self_attn.k_proj") {
                t = permute_rope_rows(&t, kv_heads, false)?;
            }
        }
        tensors.insert(hf, t);
    }
    Ok(GgufCheckpoint {
        config,
        tensors,
        metadata: content.metadata,
    })
}

/// Writes `model` as a llama.cpp GGUF file with architecture metadata, `extra` metadata (for
/// example a tokenizer) and every matrix stored as `dtype` (vectors stay f32). Q/K rows are
/// permuted for `llama` models as llama.cpp expects.
pub fn write_gguf(
    model: &CausalLm,
    extra: &[(String, Value)],
    dtype: GgmlDType,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let cfg = model.config();
    let arch = cfg.model_type.to_ascii_lowercase();
    let k = |s: &str| format!("{arch}.{s}");
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.clone())),
        (k("block_count"), Value::U32(cfg.num_hidden_layers as u32)),
        (
            k("context_length"),
            Value::U32(cfg.max_position_embeddings as u32),
        ),
        (k("embedding_length"), Value::U32(cfg.hidden_size as u32)),
        (
            k("feed_forward_length"),
            Value::U32(cfg.intermediate_size as u32),
        ),
        (
            k("attention.head_count"),
            Value::U32(cfg.num_attention_heads as u32),
        ),
        (
            k("attention.head_count_kv"),
            Value::U32(cfg.kv_heads() as u32),
        ),
        (k("rope.dimension_count"), Value::U32(cfg.head_dim() as u32)),
        (
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(cfg.rms_norm_eps as f32),
        ),
        (k("rope.freq_base"), Value::F32(cfg.rope_theta as f32)),
    ];
    md.extend(extra.iter().cloned());
    let mut qtensors = Vec::new();
    for (name, var) in model.all_params() {
        let g = gguf_name(&name).expect("every parameter has a GGUF name");
        let mut t = var.as_tensor().to_device(&Device::Cpu)?;
        if arch == "llama" {
            if name.contains("self_attn.q_proj") {
                t = permute_rope_rows(&t, cfg.num_attention_heads, true)?;
            } else if name.contains("self_attn.k_proj") {
                t = permute_rope_rows(&t, cfg.kv_heads(), true)?;
            }
        }
        let q = if t.rank() == 1 {
            QTensor::quantize(&t, GgmlDType::F32)?
        } else {
            QTensor::quantize(&t, dtype)?
        };
        qtensors.push((g, q));
    }
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = File::create(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    gguf_file::write(&mut file, &md_refs, &t_refs)?;
    Ok(())
}

impl CausalLm {
    /// Loads a llama/qwen2 GGUF file onto `device`, every tensor dequantised to f32 (so it
    /// can train). Every parameter trains.
    pub fn from_gguf(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let ck = read_gguf(path)?;
        Self::from_tensors(ck.config, ck.tensors, device)
    }
}
