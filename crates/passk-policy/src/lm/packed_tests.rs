//! The packed kernel against a scalar fused multiply-add chain, and the fallback against it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// What the packed kernel computes, element by element.
fn chain(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32], acc: bool) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f32;
            for kk in 0..k {
                s = a[i * k + kk].mul_add(w[j * k + kk], s);
            }
            let o = &mut out[i * n + j];
            *o = if acc { *o + s } else { s };
        }
    }
}

/// Row counts around the tile and block sizes, column counts around the panel width.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (1, 7, 48),
    (3, 33, 47),
    (8, 64, 49),
    (9, 17, 96),
    (15, 5, 100),
    (64, 40, 130),
    (MB + 3, 12, 50),
    (2 * MB + 9, 3, 16),
];

fn check(make: fn(Vec<f32>, usize, usize) -> Matrix, exact: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (m, k, n) in SHAPES {
        let (a, w) = (random(m * k, &mut rng), random(n * k, &mut rng));
        let start = random(m * n, &mut rng);
        let matrix = make(w.clone(), n, k);
        for acc in [false, true] {
            let (mut got, mut want) = (start.clone(), start.clone());
            matrix.matmul_t(&a, m, &mut got, acc);
            chain(&a, m, k, &w, n, &mut want, acc);
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                let ok = if exact {
                    g.to_bits() == e.to_bits()
                } else {
                    (g - e).abs() <= 1e-5 * (1.0 + e.abs()) * k as f32
                };
                assert!(
                    ok,
                    "m {m} k {k} n {n} acc {acc}: element {i} is {g}, want {e}"
                );
            }
        }
    }
}

#[test]
fn matrices_match_a_fused_multiply_add_chain() {
    // Packed where the CPU has AVX-512 (then bit for bit), the gemm fallback elsewhere.
    let packed = Matrix::new(vec![0.0; 2], 1, 2).is_packed();
    assert_eq!(packed, avx512());
    check(Matrix::new, packed);
}

#[test]
fn the_fallback_matches_a_fused_multiply_add_chain_up_to_rounding() {
    check(Matrix::rows_only, false);
}

#[test]
fn a_row_gives_the_same_bits_alone_and_in_any_batch() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (k, n) = (37, 101);
    let matrix = Matrix::new(random(n * k, &mut rng), n, k);
    let a = random(70 * k, &mut rng);
    let mut all = vec![0f32; 70 * n];
    matrix.matmul_t(&a, 70, &mut all, false);
    for i in [0, 9, 69] {
        let mut one = vec![0f32; n];
        matrix.matmul_t(&a[i * k..(i + 1) * k], 1, &mut one, false);
        // gemm may tile a lone row differently, so only the packed kernel promises bits.
        let same = |x: &f32, y: &f32| match matrix.is_packed() {
            true => x.to_bits() == y.to_bits(),
            false => (x - y).abs() <= 1e-5 * k as f32,
        };
        let row = &all[i * n..(i + 1) * n];
        assert!(
            one.iter().zip(row).all(|(x, y)| same(x, y)),
            "row {i} differs between batch 1 and batch 70"
        );
    }
}
