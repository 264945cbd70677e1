//! Model shapes and seeded random initialisation: [`param_shapes`], [`CausalLm::random`].

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand_distr::{Distribution, StandardNormal};

use super::config::LmConfig;
use super::model::CausalLm;
use crate::error::Result;
use passk_core::rng::weight_init;

/// The Hugging Face names and shapes of every parameter of a model of shape `cfg`.
pub fn param_shapes(cfg: &LmConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (q, kv) = (
        cfg.num_attention_heads * cfg.head_dim(),
        cfg.kv_heads() * cfg.head_dim(),
    );
    let mut out = vec![
        ("model.embed_tokens.weight".to_string(), vec![v, d]),
        ("model.norm.weight".to_string(), vec![d]),
    ];
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    for i in 0..cfg.num_hidden_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        out.extend([
            (p("input_layernorm.weight"), vec![d]),
            (p("post_attention_layernorm.weight"), vec![d]),
            (p("self_attn.q_proj.weight"), vec![q, d]),
            (p("self_attn.k_proj.weight"), vec![kv, d]),
            (p("self_attn.v_proj.weight"), vec![kv, d]),
            (p("self_attn.o_proj.weight"), vec![d, q]),
            (p("mlp.gate_proj.weight"), vec![f, d]),
            (p("mlp.up_proj.weight"), vec![f, d]),
            (p("mlp.down_proj.weight"), vec![d, f]),
        ]);
        if cfg.qkv_bias() {
            out.extend([
                (p("self_attn.q_proj.bias"), vec![q]),
                (p("self_attn.k_proj.bias"), vec![kv]),
                (p("self_attn.v_proj.bias"), vec![kv]),
            ]);
        }
    }
    out.sort();
    out
}

impl CausalLm {
    /// A model of shape `cfg` with seeded random weights: matrices N(0, 0.02), biases
    /// N(0, 0.02), norm gains 1 + N(0, 0.1) (not exactly 1, so tests see every gradient term).
    /// Each parameter draws from its own stream keyed by `seed` and its name.
    pub fn random(cfg: LmConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let mut tensors = HashMap::new();
        for (name, shape) in param_shapes(&cfg) {
            let n: usize = shape.iter().product();
            let mut rng = weight_init(seed, &name);
            let norm = name.ends_with("norm.weight");
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    if norm {
                        (1.0 + 0.1 * z) as f32
                    } else {
                        (0.02 * z) as f32
                    }
                })
                .collect();
            tensors.insert(name, Tensor::from_vec(data, shape, device)?);
        }
        Self::from_tensors(cfg, tensors, device)
    }
}
