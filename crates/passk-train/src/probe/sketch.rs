//! The CountSketch projection of sketch mode, regenerated chunk by chunk from its seed.

use passk_core::rng::seeded;
use rand::RngCore;

use super::streams;

/// Coordinates whose buckets and signs come from one generator stream.
pub(crate) const SKETCH_CHUNK: usize = 1 << 16;

/// A seeded CountSketch `S: R^P → R^dim`: coordinate `j` goes to bucket `h(j)` with sign
/// `s(j) = ±1`, both drawn from the stream `(seed, PROBE_SKETCH, j / SKETCH_CHUNK)`. The bucket
/// and sign pairs are independent across coordinates, so `E[⟨Su, Sv⟩] = ⟨u, v⟩` and
/// `Var[⟨Su, Sv⟩] = (‖u‖²‖v‖² + ⟨u, v⟩² − 2 Σ_j u_j² v_j²) / dim` (the same as a dense
/// Rademacher projection scaled by `1/√dim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountSketch {
    /// Output dimension.
    pub dim: usize,
    /// Seed of the projection.
    pub seed: u64,
}

impl CountSketch {
    /// Sketches every vector in `vectors` (all of one length) in one pass over the projection.
    pub fn apply(&self, vectors: &[&[f32]]) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0f64; self.dim]; vectors.len()];
        let Some(len) = vectors.first().map(|v| v.len()) else {
            return out;
        };
        debug_assert!(vectors.iter().all(|v| v.len() == len));
        let dim = self.dim as u128;
        for (chunk, start) in (0..len).step_by(SKETCH_CHUNK).enumerate() {
            let mut rng = seeded(self.seed, &[streams::PROBE_SKETCH, chunk as u64]);
            for j in start..(start + SKETCH_CHUNK).min(len) {
                let u = rng.next_u64();
                let sign = if u & 1 == 1 { 1.0 } else { -1.0 };
                // (u >> 1) < 2^63, so this is < dim: a uniform bucket up to 2^-63 bias.
                let bucket = (((u >> 1) as u128 * dim) >> 63) as usize;
                for (v, o) in vectors.iter().zip(out.iter_mut()) {
                    o[bucket] += sign * f64::from(v[j]);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn sketched_inner_products_are_unbiased_and_seeded() {
        let len = 3 * SKETCH_CHUNK / 2 + 7; // spans two chunks
        let u: Vec<f32> = (0..len).map(|j| ((j % 13) as f32 - 6.0) / 7.0).collect();
        let v: Vec<f32> = (0..len)
            .map(|j| ((j % 7) as f32 - 2.5) / 3.0 + u[j])
            .collect();
        let exact: f64 = u
            .iter()
            .zip(&v)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let nu: f64 = u.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        let nv: f64 = v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        let dim = 64;
        let reps = 200;
        let mut mean = 0.0;
        for seed in 0..reps {
            let s = CountSketch { dim, seed }.apply(&[&u, &v]);
            mean += dot(&s[0], &s[1]) / reps as f64;
        }
        // The mean of 200 sketches has sd <= sqrt(2) |u||v| / sqrt(64 * 200).
        let sd = 2f64.sqrt() * nu * nv / ((dim * reps as usize) as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * sd,
            "mean sketched {mean} vs exact {exact} (sd {sd})"
        );
        let a = CountSketch { dim, seed: 5 }.apply(&[&u]);
        let b = CountSketch { dim, seed: 5 }.apply(&[&u]);
        let c = CountSketch { dim, seed: 6 }.apply(&[&u]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // A sketch of one vector preserves the coordinate sum of absolute signs structure:
        // sketching a one-hot vector gives a one-hot ±1.
        let mut e = vec![0.0f32; len];
        e[SKETCH_CHUNK + 3] = 1.0;
        let s = CountSketch { dim, seed: 1 }.apply(&[&e]);
        assert_eq!(s[0].iter().filter(|x| **x != 0.0).count(), 1);
        assert_eq!(s[0].iter().map(|x| x.abs()).sum::<f64>(), 1.0);
    }
}
