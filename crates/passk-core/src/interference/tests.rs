//! Tests of the interference statistics: docs/theory.md §4.4 two-prompt numbers, direct vector
//! products on random gradients, and the split-halves diagonal.

use super::*;
use crate::rng::{seeded, uniform_f64};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The docs/theory.md §4.4 bandit: θ = (0, 1), ψ_e = (1, 2), ψ_h = (1, −3), ∇p = p(1 − p) ψ.
fn two_prompt() -> (Gram, Vec<f64>, Vec<f64>) {
    let theta = [0.0, 1.0];
    let psis = [[1.0, 2.0], [1.0, -3.0]];
    let mut grads = Vec::new();
    let mut p = Vec::new();
    for psi in psis {
        let pi = sigmoid(theta[0] * psi[0] + theta[1] * psi[1]);
        p.push(pi);
        grads.push(
            psi.iter()
                .map(|x| pi * (1.0 - pi) * x)
                .collect::<Vec<f64>>(),
        );
    }
    (Gram::from_gradients(&grads).unwrap(), vec![0.5, 0.5], p)
}

#[test]
fn theory_two_prompt_numbers() {
    let (gram, mass, p) = two_prompt();
    assert!(close(p[0], 0.880_797, 1e-6) && close(p[1], 0.047_426, 1e-6));
    assert!(close(gram.get(0, 1), -0.023_716_3, 1e-7));
    assert_eq!(gram.get(0, 1), gram.get(1, 0));
    let a = agreement(&gram, &mass);
    assert!(close(a[0], 0.015_701_0, 1e-7) && close(a[1], -0.001_653_5, 1e-7));
    let ks = [1, 2, 3, 4, 16];
    let c = conflict(&gram, &mass, &p, &ks).unwrap();
    let want = [
        0.007_023_7,
        0.000_296_5,
        -0.001_915_9,
        -0.002_805_3,
        -0.006_382_3,
    ];
    for (ci, w) in c.iter().zip(want) {
        assert!(close(ci.inner, w, 1e-7), "k={}: {} vs {w}", ci.k, ci.inner);
    }
    assert!(close(c[1].cosine.unwrap(), 0.029_99, 1e-5));
    assert!(close(c[2].cosine.unwrap(), -0.119_73, 1e-5));
    assert!(close(c[4].cosine.unwrap(), -0.138_10, 1e-5));
    // k = 1: ∇J_k = ∇J_1, cosine 1, and no conflict.
    assert!(close(c[0].cosine.unwrap(), 1.0, 1e-12));
    assert!(close(c[0].norm_k_sq, c[0].norm_1_sq, 1e-15));
    assert_eq!(k_star(&c), Some(3));
    // The order of ks does not matter to k_star.
    let rev = conflict(&gram, &mass, &p, &[16, 4, 3, 2, 1]).unwrap();
    assert_eq!(k_star(&rev), Some(3));
    assert_eq!(k_star(&c[..2]), None);
    // Two-group threshold: the sign flips between k = 2 and k = 3.
    let ks = two_group_threshold(mass[0] * a[0], -mass[1] * a[1], p[1], p[0]).unwrap();
    assert!(ks > 2.0 && ks < 3.0, "k* = {ks}");
    assert_eq!(two_group_threshold(1.0, 0.0, 0.1, 0.5), None);
}

#[test]
fn conflict_matches_direct_vector_products() {
    let mut rng = seeded(5, &[1]);
    for trial in 0..20 {
        let n = 2 + trial % 6;
        let d = 1 + trial % 9;
        let grads: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..d).map(|_| 2.0 * uniform_f64(&mut rng) - 1.0).collect())
            .collect();
        let mass: Vec<f64> = (0..n).map(|_| uniform_f64(&mut rng) + 0.05).collect();
        let p: Vec<f64> = (0..n).map(|_| uniform_f64(&mut rng)).collect();
        let total: f64 = mass.iter().sum();
        let m: Vec<f64> = mass.iter().map(|x| x / total).collect();
        let ks = [1, 2, 3, 5, 8, 32];
        let gram = Gram::from_gradients(&grads).unwrap();
        let got = conflict(&gram, &mass, &p, &ks).unwrap();
        let combo = |weights: &dyn Fn(usize) -> f64| -> Vec<f64> {
            (0..d)
                .map(|t| (0..n).map(|i| weights(i) * grads[i][t]).sum())
                .collect()
        };
        let g1 = combo(&|i| m[i]);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        for c in &got {
            let gk = combo(&|i| m[i] * w_k(p[i], c.k));
            let tol = 1e-12 * (1.0 + dot(&gk, &gk));
            assert!(close(c.inner, dot(&gk, &g1), tol));
            assert!(close(c.norm_k_sq, dot(&gk, &gk), tol));
            assert!(close(c.norm_1_sq, dot(&g1, &g1), tol));
            let cos = dot(&gk, &g1) / (dot(&gk, &gk).sqrt() * dot(&g1, &g1).sqrt());
            assert!(close(c.cosine.unwrap(), cos, 1e-9));
            let all: Vec<usize> = (0..n).collect();
            assert!(close(
                block_inner(&gram, &mass, &p, c.k, &all, &all),
                c.inner,
                tol
            ));
            // Blocks partition the inner product.
            let (lo, hi) = all.split_at(n / 2);
            let parts: f64 = [lo, hi]
                .iter()
                .flat_map(|r| [lo, hi].map(|cl| block_inner(&gram, &mass, &p, c.k, r, cl)))
                .sum();
            assert!(close(parts, c.inner, tol));
        }
        // E_m[a] = ‖∇J_1‖².
        let a = agreement(&gram, &mass);
        let ea: f64 = a.iter().zip(&m).map(|(x, y)| x * y).sum();
        assert!(close(ea, dot(&g1, &g1), 1e-12));
    }
}

#[test]
fn split_halves_diagonal_is_unbiased() {
    // True gradients; each half estimate adds independent uniform[−1, 1] noise (variance 1/3).
    let g = [
        vec![0.5, -1.0, 0.2, 0.0, 0.3],
        vec![-0.4, 0.1, 0.9, 0.6, -0.2],
        vec![0.0; 5],
    ];
    let d = 5.0;
    let trials = 20_000;
    let mut rng = seeded(17, &[2]);
    let mut sum_split = Gram::new(3);
    let mut sum_naive = Gram::new(3);
    for _ in 0..trials {
        let mut noisy = || -> Vec<Vec<f64>> {
            g.iter()
                .map(|gi| {
                    gi.iter()
                        .map(|x| x + 2.0 * uniform_f64(&mut rng) - 1.0)
                        .collect()
                })
                .collect()
        };
        let (a, b) = (noisy(), noisy());
        let split = Gram::from_split_halves(&a, &b).unwrap();
        let means: Vec<Vec<f64>> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| x.iter().zip(y).map(|(u, v)| 0.5 * (u + v)).collect())
            .collect();
        let naive = Gram::from_gradients(&means).unwrap();
        for i in 0..3 {
            for j in i..3 {
                sum_split.set(i, j, sum_split.get(i, j) + split.get(i, j));
                sum_naive.set(i, j, sum_naive.get(i, j) + naive.get(i, j));
            }
        }
    }
    let truth = Gram::from_gradients(&g).unwrap();
    for i in 0..3 {
        for j in i..3 {
            let mean_split = sum_split.get(i, j) / trials as f64;
            assert!(
                close(mean_split, truth.get(i, j), 0.03),
                "({i},{j}) {mean_split}"
            );
        }
        // The naive diagonal is biased upward by d · Var(noise of the mean) = d/6.
        let mean_naive = sum_naive.get(i, i) / trials as f64;
        assert!(
            close(mean_naive - truth.get(i, i), d / 6.0, 0.05),
            "naive bias {mean_naive}"
        );
    }
    // Prompt 2 has zero gradient: a single split-halves diagonal can be negative.
    let a = vec![vec![1.0, 0.0]];
    let b = vec![vec![-1.0, 0.5]];
    assert_eq!(Gram::from_split_halves(&a, &b).unwrap().get(0, 0), -1.0);
}

#[test]
fn non_psd_gram_gives_no_cosine() {
    let mut gram = Gram::new(2);
    gram.set(0, 0, -1.0);
    gram.set(1, 1, 0.5);
    let c = conflict(&gram, &[1.0, 0.0], &[0.2, 0.3], &[1, 2]).unwrap();
    assert!(c.iter().all(|x| x.cosine.is_none() && x.norm_1_sq < 0.0));
}

#[test]
fn errors() {
    assert_eq!(Gram::from_gradients(&[]), Err(CoreError::EmptyGroup));
    assert!(matches!(
        Gram::from_gradients(&[vec![1.0], vec![1.0, 2.0]]),
        Err(CoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        Gram::from_split_halves(&[vec![1.0]], &[vec![1.0], vec![2.0]]),
        Err(CoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        Gram::from_split_halves(&[vec![1.0]], &[vec![1.0, 2.0]]),
        Err(CoreError::DimensionMismatch { .. })
    ));
    let (gram, mass, p) = two_prompt();
    assert_eq!(conflict(&gram, &mass, &p, &[0]), Err(CoreError::ZeroK));
    assert!(matches!(
        conflict(&gram, &[1.0], &p, &[1]),
        Err(CoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        conflict(&gram, &[0.0, 0.0], &p, &[1]),
        Err(CoreError::InvalidMass(_))
    ));
    assert!(matches!(
        conflict(&gram, &[-1.0, 2.0], &p, &[1]),
        Err(CoreError::InvalidMass(_))
    ));
    assert_eq!(
        conflict(&gram, &mass, &[0.5, 1.5], &[1]),
        Err(CoreError::ProbabilityOutOfRange(1.5))
    );
    assert!(try_block_inner(&gram, &mass, &p, 2, &[0], &[2]).is_err());
    assert!(try_agreement(&gram, &[1.0]).is_err());
}

#[test]
fn gram_round_trips_through_its_f32_file_form() {
    let mut g = Gram::new(3);
    let values = [[1.5, -0.25, 1e-3], [-0.25, 2.0, 0.1], [1e-3, 0.1, -7.0]];
    for (i, row) in values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            g.set(i, j, *v);
        }
    }
    let bytes = g.to_upper_f32_le();
    assert_eq!(bytes.len(), 4 * 6);
    assert_eq!(&bytes[4..8], &(-0.25f32).to_le_bytes());
    let back = Gram::from_upper_f32_le(&bytes).unwrap();
    for (i, row) in values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            assert_eq!(back.get(i, j), f64::from(*v as f32));
        }
    }
    assert!(Gram::from_upper_f32_le(&bytes[..20]).is_none());
    assert!(Gram::from_upper_f32_le(&bytes[..23]).is_none());
    assert_eq!(Gram::from_upper_f32_le(&[]).unwrap().len(), 0);
}
