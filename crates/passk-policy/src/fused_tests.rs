//! Tests of `fused.rs` (kept in their own file so that file stays under 600 lines).

use candle_core::{Device, Tensor};
use rand::Rng;

use crate::{Gpt, GptConfig, SequenceBatch};
use passk_core::rng::seeded;

/// A nano model whose every parameter (norm gains and biases included) is perturbed, so
/// no gradient term vanishes by symmetry.
fn perturbed(seed: u64) -> Gpt {
    let model = Gpt::new(GptConfig::nano(16), seed, &Device::Cpu).unwrap();
    let mut rng = seeded(seed, &[99]);
    for (_, var) in model.params() {
        let n = var.elem_count();
        let noise: Vec<f32> = (0..n).map(|_| rng.random_range(-0.3f32..0.3)).collect();
        let noise = Tensor::from_vec(noise, var.shape(), &Device::Cpu).unwrap();
        var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    }
    model
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn fused_kernels_match_the_generic_ops_in_value_and_gradient() {
    let mut model = perturbed(5);
    assert!(model.fused_kernels(), "the CPU default is fused");
    let rows: Vec<(Vec<u32>, Vec<u32>)> = (0..6)
        .map(|r| {
            let prompt = vec![1, 3 + r as u32, 4, 5 + (r % 3) as u32];
            let completion: Vec<u32> = (0..2 + r).map(|j| 3 + ((r + 2 * j) % 13) as u32).collect();
            (prompt, completion)
        })
        .collect();
    let pairs: Vec<(&[u32], &[u32])> = rows
        .iter()
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    let batch = SequenceBatch::new(&pairs, 2, 0, &Device::Cpu).unwrap();
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25, -1.5, 0.75], &Device::Cpu).unwrap();
    let mut run = |fused: bool| {
        model.set_fused_kernels(fused);
        let lp = model.batch_logprobs(&batch).unwrap();
        let loss = (&lp * &weights).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g: Vec<(String, Vec<f32>)> = model
            .params()
            .into_iter()
            .map(|(n, v)| (n, flat(grads.get(v.as_tensor()).unwrap())))
            .collect();
        (flat(&lp), g)
    };
    let (lp_f, g_f) = run(true);
    let (lp_g, g_g) = run(false);
    for (a, b) in lp_f.iter().zip(&lp_g) {
        assert!((a - b).abs() < 1e-4, "log-prob {a} vs {b}");
    }
    for ((name, a), (_, b)) in g_f.iter().zip(&g_g) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err < 1e-4 * scale.max(1.0),
            "{name}: max error {err} (scale {scale})"
        );
        assert!(scale > 1e-6, "{name}: zero gradient");
    }
}

#[test]
fn interleaved_dot_products_round_like_a_plain_sum() {
    let mut rng = seeded(3, &[1]);
    let mut v = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-2f32..2.0)).collect() };
    let q = v(32);
    let keys: Vec<Vec<f32>> = (0..21).map(|_| v(32)).collect();
    for n in 0..=keys.len() {
        let mut out = vec![f32::NAN; n];
        super::dots(&q, |j| &keys[j], &mut out);
        for (j, o) in out.iter().enumerate() {
            let want = q.iter().zip(&keys[j]).map(|(a, c)| a * c).sum::<f32>();
            assert_eq!(o.to_bits(), want.to_bits(), "key {j} of {n}");
        }
    }
    // The empty sum's sign of zero too.
    let mut out = [0f32; 8];
    super::dots(&[-0.0; 4], |_| &[1.0; 4], &mut out);
    let want = [-0.0f32; 4].iter().map(|a| a * 1.0).sum::<f32>();
    assert!(out.iter().all(|o| o.to_bits() == want.to_bits()));
}
