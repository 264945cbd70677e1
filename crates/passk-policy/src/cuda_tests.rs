//! Tests that need a CUDA device (built only with the `cuda` feature; run them with
//! `--ignored`, as scripts/gpu-check.sh does). Each compares the GPU with the CPU: the tiny
//! GPT (the CPU's fused kernels against CUDA's generic ops), the LM in f32 and bf16, and
//! seeded sampling.

use candle_core::{DType, Device, Tensor};

use crate::lm::CausalLm;
use crate::lm::LmConfig;
use crate::{DeviceChoice, Gpt, GptConfig, SamplingParams, SequenceBatch};

fn cuda() -> Device {
    let dev = DeviceChoice::Cuda.device().expect("a CUDA device");
    assert!(dev.is_cuda());
    dev
}

fn rows() -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..6u32)
        .map(|r| {
            let prompt = vec![1, 3 + r, 4, 5 + r % 3];
            let completion: Vec<u32> = (0..2 + r).map(|j| 3 + (r + 2 * j) % 13).collect();
            (prompt, completion)
        })
        .collect()
}

fn batch(device: &Device) -> SequenceBatch {
    let rows = rows();
    let pairs: Vec<(&[u32], &[u32])> = rows
        .iter()
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    SequenceBatch::new(&pairs, 2, 0, device).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.to_device(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Log-probs and the flattened gradient of their weighted sum.
fn value_and_grad(
    lp: Tensor,
    params: Vec<(String, candle_core::Var)>,
    dev: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25, -1.5, 0.75], dev).unwrap();
    let grads = (&lp * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = params
        .iter()
        .flat_map(|(_, v)| flat(grads.get(v.as_tensor()).unwrap()))
        .collect();
    (flat(&lp), g)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
#[ignore = "needs a CUDA device"]
fn cuda_device_opens() {
    cuda();
    assert!(DeviceChoice::Auto.device().unwrap().is_cuda());
}

#[test]
#[ignore = "needs a CUDA device"]
fn tiny_gpt_on_cuda_matches_the_cpu_fused_path() {
    let dev = cuda();
    let cpu = Gpt::new(GptConfig::nano(16), 5, &Device::Cpu).unwrap();
    let gpu = Gpt::new(GptConfig::nano(16), 5, &dev).unwrap();
    assert!(cpu.fused_kernels() && !gpu.fused_kernels());
    let (lp_c, g_c) = value_and_grad(
        cpu.batch_logprobs(&batch(&Device::Cpu)).unwrap(),
        cpu.params(),
        &Device::Cpu,
    );
    let (lp_g, g_g) = value_and_grad(
        gpu.batch_logprobs(&batch(&dev)).unwrap(),
        gpu.params(),
        &dev,
    );
    assert!(max_rel(&lp_g, &lp_c) < 1e-4, "{lp_g:?} vs {lp_c:?}");
    assert!(
        max_rel(&g_g, &g_c) < 1e-3,
        "gradient error {}",
        max_rel(&g_g, &g_c)
    );
}

fn small_lm() -> LmConfig {
    LmConfig::from_json_str(
        r#"{"model_type": "llama", "vocab_size": 512, "hidden_size": 128,
            "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 128, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": 2}"#,
    )
    .unwrap()
}

#[test]
#[ignore = "needs a CUDA device"]
fn lm_on_cuda_matches_cpu_in_f32_and_follows_it_in_bf16() {
    let dev = cuda();
    let cpu = CausalLm::random(small_lm(), 7, &Device::Cpu).unwrap();
    let mut gpu = CausalLm::random(small_lm(), 7, &dev).unwrap();
    let (lp_c, g_c) = value_and_grad(
        cpu.batch_logprobs(&batch(&Device::Cpu)).unwrap(),
        cpu.params(),
        &Device::Cpu,
    );
    let (lp_g, g_g) = value_and_grad(
        gpu.batch_logprobs(&batch(&dev)).unwrap(),
        gpu.params(),
        &dev,
    );
    assert!(max_rel(&lp_g, &lp_c) < 1e-4, "f32: {lp_g:?} vs {lp_c:?}");
    assert!(
        max_rel(&g_g, &g_c) < 1e-3,
        "f32 gradient error {}",
        max_rel(&g_g, &g_c)
    );
    gpu.set_compute_dtype(DType::BF16).unwrap();
    let (lp_b, g_b) = value_and_grad(
        gpu.batch_logprobs(&batch(&dev)).unwrap(),
        gpu.params(),
        &dev,
    );
    let err = lp_b
        .iter()
        .zip(&lp_c)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err < 0.15,
        "bf16 log-probs differ by {err}: {lp_b:?} vs {lp_c:?}"
    );
    let dot: f64 = g_b
        .iter()
        .zip(&g_c)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let norm = |g: &[f32]| g.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cos = dot / (norm(&g_b) * norm(&g_c));
    assert!(cos > 0.99, "bf16 gradient cosine {cos}");
}

#[test]
#[ignore = "needs a CUDA device"]
fn seeded_sampling_on_cuda_mostly_equals_the_cpu() {
    let dev = cuda();
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let prompts: Vec<Vec<u32>> = (0..4u32).map(|p| vec![1, 4 + p, 6, 8]).collect();
    let seed = |p: usize, s: usize| (p * 100 + s) as u64;
    let cpu = Gpt::new(GptConfig::nano(16), 9, &Device::Cpu).unwrap();
    let gpu = Gpt::new(GptConfig::nano(16), 9, &dev).unwrap();
    let a = cpu.sample(&prompts, 8, 6, 2, params, seed).unwrap();
    let b = gpu.sample(&prompts, 8, 6, 2, params, seed).unwrap();
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(
        same * 10 >= a.len() * 9,
        "{same} of {} GPT samples agree",
        a.len()
    );
    let lm_c = CausalLm::random(small_lm(), 3, &Device::Cpu).unwrap();
    let lm_g = CausalLm::random(small_lm(), 3, &dev).unwrap();
    let a = lm_c.sample(&prompts, 8, 6, &[2], params, seed).unwrap();
    let b = lm_g.sample(&prompts, 8, 6, &[2], params, seed).unwrap();
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(
        same * 10 >= a.len() * 9,
        "{same} of {} LM samples agree",
        a.len()
    );
}
