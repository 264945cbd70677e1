//! Parity of [`CausalLm`] with candle-transformers' Llama and Qwen2, gradients, KV cache and
//! sampling.

use std::collections::HashMap;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2};

use super::*;
use crate::model::SequenceBatch;
use crate::sample::SamplingParams;

/// The tiny shape used throughout: 2 layers, d = 64, 4 query heads over 2 KV heads.
pub(crate) fn tiny_config(model_type: &str, tied: bool) -> LmConfig {
    LmConfig {
        model_type: model_type.to_string(),
        vocab_size: 300,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 64,
        tie_word_embeddings: tied,
        attention_bias: None,
        bos_token_id: Some(1),
        eos_token_id: Some(TokenIds::One(2)),
        rope_scaling: None,
    }
}

/// The model's weights by name (for reference implementations and files).
pub(crate) fn tensor_map(model: &CausalLm) -> HashMap<String, Tensor> {
    model
        .all_params()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect()
}

pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub(crate) fn sample_tokens(b: usize, t: usize, vocab: u32, salt: u32) -> Tensor {
    let data: Vec<u32> = (0..b * t)
        .map(|i| (i as u32 * 37 + salt * 11 + 5) % vocab)
        .collect();
    Tensor::from_vec(data, (b, t), &Device::Cpu).unwrap()
}

/// Logits of every position of `tokens` from a reference that returns last-position logits,
/// by running it on each prefix.
fn by_prefix(tokens: &Tensor, mut last: impl FnMut(&Tensor) -> Tensor) -> Tensor {
    let t = tokens.dim(1).unwrap();
    let cols: Vec<Tensor> = (1..=t)
        .map(|l| {
            last(&tokens.narrow(1, 0, l).unwrap())
                .reshape(((), 1, 300))
                .unwrap()
        })
        .collect();
    Tensor::cat(&cols, 1).unwrap()
}

fn llama_reference(model: &CausalLm, tokens: &Tensor) -> Tensor {
    let c = model.config();
    let cfg = llama::Config {
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.kv_heads(),
        use_flash_attn: false,
        rms_norm_eps: c.rms_norm_eps,
        rope_theta: c.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: c.max_position_embeddings,
        tie_word_embeddings: c.tie_word_embeddings,
    };
    let vb = VarBuilder::from_tensors(tensor_map(model), DType::F32, &Device::Cpu);
    let reference = llama::Llama::load(vb, &cfg).unwrap();
    by_prefix(tokens, |x| {
        let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
        reference.forward(x, 0, &mut cache).unwrap()
    })
}

#[test]
fn llama_logits_match_candle_transformers() {
    for tied in [true, false] {
        let model = CausalLm::random(tiny_config("llama", tied), 3, &Device::Cpu).unwrap();
        let tokens = sample_tokens(3, 9, 300, 1);
        let ours = model.logits(&tokens).unwrap();
        let reference = llama_reference(&model, &tokens);
        let err = max_abs_diff(&ours, &reference);
        assert!(err < 1e-4, "tied={tied}: max abs diff {err}");
    }
}

#[test]
fn qwen2_logits_with_qkv_bias_match_candle_transformers() {
    let model = CausalLm::random(tiny_config("qwen2", true), 4, &Device::Cpu).unwrap();
    assert!(model.var("model.layers.1.self_attn.k_proj.bias").is_some());
    let c = model.config();
    let cfg = qwen2::Config {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.kv_heads(),
        max_position_embeddings: c.max_position_embeddings,
        sliding_window: c.max_position_embeddings,
        max_window_layers: c.num_hidden_layers,
        tie_word_embeddings: true,
        rope_theta: c.rope_theta,
        rms_norm_eps: c.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    let vb = VarBuilder::from_tensors(tensor_map(&model), DType::F32, &Device::Cpu);
    let mut reference = qwen2::ModelForCausalLM::new(&cfg, vb).unwrap();
    let tokens = sample_tokens(2, 8, 300, 2);
    let expected = by_prefix(&tokens, |x| {
        reference.clear_kv_cache();
        reference.forward(x, 0).unwrap()
    });
    let err = max_abs_diff(&model.logits(&tokens).unwrap(), &expected);
    assert!(err < 1e-4, "max abs diff {err}");
}

fn batch() -> SequenceBatch {
    let rows: Vec<(Vec<u32>, Vec<u32>)> = (0..4u32)
        .map(|r| {
            let prompt = vec![1, 10 + r, 20, 30 + r, 40];
            let completion: Vec<u32> = (0..3 + r).map(|j| 50 + (r * 7 + j * 13) % 200).collect();
            (prompt, completion)
        })
        .collect();
    let pairs: Vec<(&[u32], &[u32])> = rows
        .iter()
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    SequenceBatch::new(&pairs, 2, 0, &Device::Cpu).unwrap()
}

fn grads_of(model: &CausalLm) -> candle_core::backprop::GradStore {
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25], &Device::Cpu).unwrap();
    let lp = model.batch_logprobs(&batch()).unwrap();
    (lp * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

#[test]
fn every_trainable_parameter_gets_a_gradient_and_frozen_ones_none() {
    for model_type in ["llama", "qwen2"] {
        let mut model = CausalLm::random(tiny_config(model_type, true), 5, &Device::Cpu).unwrap();
        let grads = grads_of(&model);
        assert_eq!(model.params().len(), model.all_params().len());
        for (name, var) in model.params() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no grad"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{model_type} {name}: grad norm {norm}"
            );
        }
        model.set_trainable(Trainable::LastBlocks {
            blocks: 1,
            embeddings: false,
        });
        let names: Vec<String> = model.params().into_iter().map(|(n, _)| n).collect();
        assert!(names
            .iter()
            .all(|n| n.starts_with("model.layers.1.") || n == "model.norm.weight"));
        assert_eq!(names.len(), if model_type == "qwen2" { 13 } else { 10 });
        let grads = grads_of(&model);
        for (name, var) in model.all_params() {
            let has = grads.get(var.as_tensor()).is_some();
            assert_eq!(
                has,
                names.contains(&name),
                "{model_type} {name}: gradient presence"
            );
        }
    }
}

#[test]
fn sequence_logprobs_equal_log_softmax_of_the_logits() {
    let model = CausalLm::random(tiny_config("llama", false), 6, &Device::Cpu).unwrap();
    let b = batch();
    let lp = model.batch_logprobs(&b).unwrap().to_vec1::<f32>().unwrap();
    let logits = model.logits(&b.tokens).unwrap();
    let tokens = b.tokens.to_vec2::<u32>().unwrap();
    let mask = b.mask.to_vec2::<f32>().unwrap();
    for (r, row) in tokens.iter().enumerate() {
        let mut want = 0f64;
        for (j, m) in mask[r].iter().enumerate() {
            let pos = b.prompt_len + j;
            let l = logits.i((r, pos - 1)).unwrap().to_vec1::<f32>().unwrap();
            let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = l.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
            want += f64::from(*m) * (l[row[pos] as usize] as f64 - lse);
        }
        assert!(
            (lp[r] as f64 - want).abs() < 1e-4,
            "row {r}: {} vs {want}",
            lp[r]
        );
    }
}

#[test]
fn shared_prompt_passes_match_the_full_forward_in_value_and_gradient() {
    // Rows 0, 1, 3 share a prompt, row 2 differs; completions of one and several tokens.
    let model = CausalLm::random(tiny_config("qwen2", false), 13, &Device::Cpu).unwrap();
    let b = batch();
    let p = b.prompt_len;
    let mut tok = b.tokens.to_vec2::<u32>().unwrap();
    for r in [1, 3] {
        let first = tok[0][..p].to_vec();
        tok[r][..p].copy_from_slice(&first);
    }
    let flat: Vec<u32> = tok.iter().flatten().copied().collect();
    let t = tok[0].len();
    let tokens = Tensor::from_vec(flat, (4, t), &Device::Cpu).unwrap();
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25], &Device::Cpu).unwrap();
    for l in [1, t - p] {
        let x = tokens.narrow(1, 0, p + l).unwrap().contiguous().unwrap();
        let mask = b.mask.narrow(1, 0, l).unwrap().contiguous().unwrap();
        let shared = model.sequence_logprobs(&x, p, &mask).unwrap();
        // The same rows with every prompt made distinct by the full forward path.
        let logits = model.logits(&x).unwrap();
        let logp = super::ops::log_softmax_last(&logits.narrow(1, p - 1, l).unwrap()).unwrap();
        let tgt = x
            .narrow(1, p, l)
            .unwrap()
            .contiguous()
            .unwrap()
            .unsqueeze(2)
            .unwrap();
        let picked = logp.gather(&tgt, 2).unwrap().squeeze(2).unwrap();
        let plain = (picked * &mask).unwrap().sum(1).unwrap();
        assert!(max_abs_diff(&shared, &plain) < 1e-4, "l={l}");
        let gs = (&shared * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (&plain * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, var) in model.params() {
            let (a, c) = (
                gs.get(var.as_tensor()).unwrap(),
                gp.get(var.as_tensor()).unwrap(),
            );
            let scale = c.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            let scale = scale.to_scalar::<f32>().unwrap().max(1e-3);
            let err = max_abs_diff(a, c);
            assert!(
                err < 1e-4 * scale.max(1.0),
                "l={l} {name}: {err} (scale {scale})"
            );
        }
    }
}

#[test]
fn kv_cache_logits_equal_the_full_forward() {
    let model = CausalLm::random(tiny_config("qwen2", false), 7, &Device::Cpu).unwrap();
    let tokens = sample_tokens(3, 10, 300, 3);
    let full = model.logits(&tokens).unwrap();
    let mut cache = LmCache::new(&model);
    let mut parts = vec![model
        .forward_cached(&mut cache, &tokens.narrow(1, 0, 4).unwrap())
        .unwrap()];
    parts.push(
        model
            .forward_cached(&mut cache, &tokens.narrow(1, 4, 3).unwrap())
            .unwrap(),
    );
    for t in 7..10 {
        parts.push(
            model
                .forward_cached(&mut cache, &tokens.narrow(1, t, 1).unwrap())
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), 10);
    let cached = Tensor::cat(&parts, 1).unwrap();
    let err = max_abs_diff(&full, &cached);
    assert!(err < 1e-4, "max abs diff {err}");
    let wrong_rows = sample_tokens(2, 1, 300, 0);
    assert!(model.forward_cached(&mut cache, &wrong_rows).is_err());
}

#[test]
fn sampling_is_seeded_and_independent_of_batch_companions() {
    let model = CausalLm::random(tiny_config("llama", true), 8, &Device::Cpu).unwrap();
    let prompts = vec![vec![1, 5, 9], vec![1, 7], vec![1, 4, 4]];
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 0.95,
    };
    let seed = |p: usize, s: usize| (p * 1000 + s) as u64;
    let a = model.sample(&prompts, 3, 6, &[2], params, seed).unwrap();
    let b = model.sample(&prompts, 3, 6, &[2], params, seed).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 9);
    assert!(a.iter().all(|c| !c.is_empty() && c.len() <= 6));
    // Prompt 2 alone, with the seeds it had as prompt 2, gives the same completions.
    let alone = model
        .sample(&prompts[2..], 3, 6, &[2], params, |_, s| seed(2, s))
        .unwrap();
    assert_eq!(&alone[..], &a[6..9]);
    let other = model
        .sample(&prompts, 3, 6, &[2], params, |p, s| seed(p, s) + 1)
        .unwrap();
    assert_ne!(a, other);
}

#[test]
fn sampled_tokens_replay_from_full_forward_logits() {
    use rand::SeedableRng;
    let model = CausalLm::random(tiny_config("qwen2", false), 10, &Device::Cpu).unwrap();
    let prompts = vec![vec![1, 5, 9], vec![1, 7], vec![1, 8, 8]];
    let params = SamplingParams {
        temperature: 1.5,
        top_p: 0.9,
    };
    let seed = |p: usize, s: usize| (p * 31 + s) as u64;
    let out = model.sample(&prompts, 2, 5, &[2], params, seed).unwrap();
    for (p, prompt) in prompts.iter().enumerate() {
        for s in 0..2 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed(p, s));
            let mut seq = prompt.clone();
            let mut replay = Vec::new();
            while replay.len() < 5 && replay.last() != Some(&2) {
                let x = Tensor::new(seq.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap();
                let logits = model.logits(&x).unwrap().i((0, seq.len() - 1)).unwrap();
                let tok =
                    crate::sample::choose_token(&logits.to_vec1().unwrap(), &params, &mut rng);
                replay.push(tok);
                seq.push(tok);
            }
            assert_eq!(out[p * 2 + s], replay, "prompt {p} sample {s}");
        }
    }
}

#[test]
fn greedy_follows_the_full_forward_argmax() {
    let model = CausalLm::random(tiny_config("qwen2", true), 9, &Device::Cpu).unwrap();
    let prompt = vec![1u32, 17, 23, 99];
    let out = model.greedy(&prompt, 5, &[]).unwrap();
    assert_eq!(out.len(), 5);
    let mut seq = prompt.clone();
    for &tok in &out {
        let x = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = model.logits(&x).unwrap().i((0, seq.len() - 1)).unwrap();
        let want = logits.argmax(0).unwrap().to_scalar::<u32>().unwrap();
        assert_eq!(tok, want);
        seq.push(tok);
    }
}

#[test]
fn bad_inputs_are_refused() {
    let model = CausalLm::random(tiny_config("llama", true), 1, &Device::Cpu).unwrap();
    let too_big = Tensor::new(&[[1u32, 300]], &Device::Cpu).unwrap();
    assert!(model.logits(&too_big).is_err());
    let too_long = sample_tokens(1, 65, 300, 0);
    assert!(model.logits(&too_long).is_err());
    let mut map = tensor_map(&model);
    map.remove("model.norm.weight");
    assert!(CausalLm::from_tensors(tiny_config("llama", true), map, &Device::Cpu).is_err());
    let mut map = tensor_map(&model);
    map.insert(
        "extra.weight".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(CausalLm::from_tensors(tiny_config("llama", true), map, &Device::Cpu).is_err());
}

#[test]
fn frozen_blocks_in_the_engine_match_the_autograd_pass_in_value_and_gradient() {
    let b = batch();
    let p = b.prompt_len;
    let tok = b.tokens.to_vec2::<u32>().unwrap();
    let t = tok[0].len();
    // Prompt sharing: none (rows differ after one common token), some (rows 0, 1, 3), all.
    let layouts: [&[usize]; 3] = [&[], &[1, 3], &[1, 2, 3]];
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25], &Device::Cpu).unwrap();
    for (kind, tied) in [("llama", true), ("qwen2", false)] {
        let mut model = CausalLm::random(tiny_config(kind, tied), 21, &Device::Cpu).unwrap();
        for blocks in [0, 1] {
            model.set_trainable(Trainable::LastBlocks {
                blocks,
                embeddings: false,
            });
            assert_eq!(model.frozen_lower_blocks(), 2 - blocks);
            for same in layouts {
                let mut rows = tok.clone();
                for &r in same {
                    let first = rows[0][..p].to_vec();
                    rows[r][..p].copy_from_slice(&first);
                }
                let flat: Vec<u32> = rows.iter().flatten().copied().collect();
                let tokens = Tensor::from_vec(flat, (4, t), &Device::Cpu).unwrap();
                let mut pass = |engine: bool| {
                    model.set_frozen_engine(engine);
                    let lp = model.sequence_logprobs(&tokens, p, &b.mask).unwrap();
                    let g = (&lp * &weights)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    (lp, g)
                };
                let (fast, gf) = pass(true);
                let (slow, gs) = pass(false);
                model.set_frozen_engine(true);
                let what = format!("{kind} blocks={blocks} shared={same:?}");
                assert!(max_abs_diff(&fast, &slow) < 1e-4, "{what}: logprobs");
                for (name, var) in model.params() {
                    let (a, c) = (
                        gf.get(var.as_tensor()).expect("a gradient"),
                        gs.get(var.as_tensor()).expect("a gradient"),
                    );
                    let scale = c.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
                    let scale = scale.to_scalar::<f32>().unwrap().max(1.0);
                    let err = max_abs_diff(a, c);
                    assert!(err < 1e-4 * scale, "{what} {name}: {err} (scale {scale})");
                }
            }
        }
    }
}
