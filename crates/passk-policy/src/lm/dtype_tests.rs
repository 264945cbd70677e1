//! The LM's compute dtype ([`CausalLm::set_compute_dtype`]) on the CPU: f32 changes nothing,
//! bf16 follows f32 within bf16 rounding, in value and gradient.

use candle_core::{DType, Device, Tensor};

use super::tests::{max_abs_diff, tiny_config};
use super::CausalLm;
use crate::model::SequenceBatch;
use crate::sample::SamplingParams;

fn batch() -> SequenceBatch {
    let rows: Vec<(Vec<u32>, Vec<u32>)> = (0..4u32)
        .map(|r| {
            let prompt = vec![1, 10 + (r % 2), 20, 30, 40];
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

/// The batch log-probabilities and the gradient of a weighted sum of them, flattened in
/// parameter order.
fn value_and_grad(model: &CausalLm) -> (Tensor, Vec<f32>) {
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25], &Device::Cpu).unwrap();
    let lp = model.batch_logprobs(&batch()).unwrap();
    assert_eq!(lp.dtype(), DType::F32, "log-probs are f32 in every dtype");
    let grads = (&lp * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut g = Vec::new();
    for (name, var) in model.params() {
        let t = grads.get(var.as_tensor()).unwrap();
        assert_eq!(t.dtype(), DType::F32, "{name}: gradients are f32");
        g.extend(t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
    (lp, g)
}

#[test]
fn f32_compute_dtype_changes_no_bit() {
    let mut model = CausalLm::random(tiny_config("qwen2", false), 21, &Device::Cpu).unwrap();
    assert_eq!(model.compute_dtype(), DType::F32);
    let (lp0, g0) = value_and_grad(&model);
    model.set_compute_dtype(DType::BF16).unwrap();
    value_and_grad(&model);
    model.set_compute_dtype(DType::F32).unwrap();
    let (lp1, g1) = value_and_grad(&model);
    let bits = |t: &Tensor| -> Vec<u32> {
        t.to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    assert_eq!(bits(&lp0), bits(&lp1));
    assert!(g0.iter().zip(&g1).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn bf16_follows_f32_in_value_and_gradient() {
    for model_type in ["llama", "qwen2"] {
        let mut model = CausalLm::random(tiny_config(model_type, false), 22, &Device::Cpu).unwrap();
        let (lp32, g32) = value_and_grad(&model);
        model.set_compute_dtype(DType::BF16).unwrap();
        let (lp16, g16) = value_and_grad(&model);
        // Sums of 3-6 token log-probs of about -5.7 each: bf16 keeps ~3 significant digits.
        let err = max_abs_diff(&lp32, &lp16);
        assert!(err < 0.1, "{model_type}: log-probs differ by {err}");
        let dot: f64 = g32
            .iter()
            .zip(&g16)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let norm = |g: &[f32]| g.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (norm(&g32) * norm(&g16));
        assert!(cos > 0.99, "{model_type}: gradient cosine {cos}");
    }
}

#[test]
fn bf16_sampling_and_logits_run_and_unsupported_dtypes_are_refused() {
    let mut model = CausalLm::random(tiny_config("llama", true), 23, &Device::Cpu).unwrap();
    let prompts = vec![vec![1u32, 5, 9], vec![1, 7, 9]];
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let f32_out = model
        .sample(&prompts, 3, 5, &[], params, |p, s| (p * 10 + s) as u64)
        .unwrap();
    model.set_compute_dtype(DType::BF16).unwrap();
    let bf16_out = model
        .sample(&prompts, 3, 5, &[], params, |p, s| (p * 10 + s) as u64)
        .unwrap();
    assert!(bf16_out
        .iter()
        .all(|c| c.len() == 5 && c.iter().all(|&t| t < 300)));
    // The same uniforms: most first tokens agree (a draw near a boundary may flip).
    let same = f32_out
        .iter()
        .zip(&bf16_out)
        .filter(|(a, b)| a[0] == b[0])
        .count();
    assert!(same >= 4, "{same} of 6 first tokens agree");
    let tokens = Tensor::new(&[[1u32, 5, 9, 11]], &Device::Cpu).unwrap();
    assert_eq!(model.logits(&tokens).unwrap().dtype(), DType::F32);
    for bad in [DType::U32, DType::F64] {
        let e = model.set_compute_dtype(bad).unwrap_err().to_string();
        assert!(e.contains("f32, bf16 or f16"), "{e}");
    }
}
