//! Probe rollouts and per-prompt half-sample gradient estimates, stored exactly or sketched.

use candle_core::{DType, Var};
use passk_core::interference::Gram;
use passk_core::rng::seeded;
use passk_policy::{Policy, SamplingParams};
use rand::RngCore;

use super::config::{ProbeMode, ProbeSet};
use super::products::{add_block_products, dot_f64};
use super::sketch::CountSketch;
use super::streams;
use crate::batch::{weighted_logprob_sum, PromptCodec};
use crate::error::Result;
use crate::rl::Group;

/// Prompts sampled together in one batch (bounds the KV-cache memory).
const SAMPLE_CHUNK: usize = 64;

/// Parameter coordinates per block of the exact Gram accumulation (a cache-sized block).
const GRAM_BLOCK: usize = 2048;

/// Samples `n_samples` completions of every prompt of `set` at temperature 1 and verifies them.
/// Sample `s` of prompt `p` draws from the stream `(seed, PROBE_SAMPLES, step, p, s)`, so probe
/// samples are independent of training and evaluation and differ from step to step.
pub fn probe_rollouts<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    set: &ProbeSet,
    n_samples: usize,
    seed: u64,
    step: u64,
) -> Result<Vec<Group>> {
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let mut groups = Vec::with_capacity(set.len());
    for start in (0..set.len()).step_by(SAMPLE_CHUNK) {
        let end = (start + SAMPLE_CHUNK).min(set.len());
        let ids = &set.ids[start..end];
        let samples = model.sample_batch(
            ids,
            n_samples,
            set.max_new_tokens,
            vocab.stop_ids(),
            params,
            &|p, s| {
                seeded(
                    seed,
                    &[streams::PROBE_SAMPLES, step, (start + p) as u64, s as u64],
                )
                .next_u64()
            },
        )?;
        for (local, prompt_ids) in ids.iter().enumerate() {
            let prompt = &set.prompts[start + local];
            let completions = samples[local * n_samples..(local + 1) * n_samples].to_vec();
            let rewards = completions
                .iter()
                .map(|c| vocab.reward(prompt, c))
                .collect();
            groups.push(Group {
                prompt: prompt_ids.clone(),
                completions,
                rewards,
            });
        }
    }
    Ok(groups)
}

/// Per-sample weights `(r_i − b_i) / m` with the leave-one-out baseline
/// `b_i = (Σ_{j≠i} r_j) / (m − 1)` over the `m ≥ 2` rewards of one half.
pub(crate) fn loo_weights(rewards: &[f64]) -> Vec<f64> {
    let m = rewards.len() as f64;
    let total: f64 = rewards.iter().sum();
    rewards
        .iter()
        .map(|r| (r - (total - r) / (m - 1.0)) / m)
        .collect()
}

/// The flattened (parameter-name order) gradient of `Σ_i w_i log π(y_i | prompt)`; zeros when
/// every weight is zero.
pub(crate) fn weighted_gradient<P: Policy + ?Sized>(
    model: &P,
    params: &[(String, Var)],
    prompt: &[u32],
    completions: &[Vec<u32>],
    weights: &[f64],
    eos: u32,
    pad: u32,
) -> Result<Vec<f32>> {
    let total: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
    let mut out = vec![0.0f32; total];
    let rows: Vec<(&[u32], &[u32], f64)> = completions
        .iter()
        .zip(weights)
        .map(|(c, &w)| (prompt, c.as_slice(), w))
        .collect();
    let Some(loss) = weighted_logprob_sum(model, &rows, eos, pad)? else {
        return Ok(out);
    };
    let grads = loss.backward()?;
    let mut offset = 0;
    for (_, var) in params {
        let n = var.elem_count();
        if let Some(g) = grads.get(var.as_tensor()) {
            let v = g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            out[offset..offset + n].copy_from_slice(&v);
        }
        offset += n;
    }
    Ok(out)
}

/// The two half-sample estimates `ĝ_A`, `ĝ_B` of `∇p(x)` for one group: the first and the
/// second half of its samples, each `(1/m) Σ_i (r_i − b_i) ∇log π(y_i | x)` with the
/// leave-one-out baseline inside the half. Both are unbiased and independent.
pub(crate) fn half_gradients<P: Policy + ?Sized>(
    model: &P,
    params: &[(String, Var)],
    group: &Group,
    eos: u32,
    pad: u32,
) -> Result<[Vec<f32>; 2]> {
    let m = group.completions.len() / 2;
    let half = |range: std::ops::Range<usize>| {
        weighted_gradient(
            model,
            params,
            &group.prompt,
            &group.completions[range.clone()],
            &loo_weights(&group.rewards[range]),
            eos,
            pad,
        )
    };
    Ok([half(0..m)?, half(m..2 * m)?])
}

fn dot_f32(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += f64::from(x[l]) * f64::from(y[l]);
        }
    }
    let tail: f64 = ra
        .iter()
        .zip(rb)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// The per-prompt gradient estimates seen so far, in the form the Gram needs.
pub(crate) enum GradientStore {
    /// Exact mode: the mean of the halves `(ĝ_A + ĝ_B)/2` of every prompt (f32, row-major
    /// `N × P`), the unbiased diagonal `⟨ĝ_A, ĝ_B⟩` and the naive one `‖(ĝ_A + ĝ_B)/2‖²`.
    Exact {
        n_params: usize,
        means: Vec<f32>,
        diag: Vec<f64>,
        naive: Vec<f64>,
    },
    /// Sketch mode: the sketched halves of every prompt.
    Sketch {
        sketch: CountSketch,
        half_a: Vec<Vec<f64>>,
        half_b: Vec<Vec<f64>>,
    },
}

impl GradientStore {
    /// An empty store for `mode` and a model of `n_params` parameters, with room for
    /// `n_prompts` prompts.
    pub fn new(mode: ProbeMode, n_params: usize, n_prompts: usize) -> Self {
        match mode {
            ProbeMode::Exact => Self::Exact {
                n_params,
                means: Vec::with_capacity(n_prompts * n_params),
                diag: Vec::with_capacity(n_prompts),
                naive: Vec::with_capacity(n_prompts),
            },
            ProbeMode::Sketch { dim, seed } => Self::Sketch {
                sketch: CountSketch { dim, seed },
                half_a: Vec::with_capacity(n_prompts),
                half_b: Vec::with_capacity(n_prompts),
            },
        }
    }

    /// Adds the next prompt's two half-sample gradients.
    pub fn push(&mut self, [a, b]: [Vec<f32>; 2]) {
        match self {
            Self::Exact {
                n_params,
                means,
                diag,
                naive,
            } => {
                debug_assert_eq!(a.len(), *n_params);
                diag.push(dot_f32(&a, &b));
                let start = means.len();
                means.extend(a.iter().zip(&b).map(|(x, y)| 0.5 * (x + y)));
                naive.push(dot_f32(&means[start..], &means[start..]));
            }
            Self::Sketch {
                sketch,
                half_a,
                half_b,
            } => {
                let [sa, sb]: [Vec<f64>; 2] = sketch
                    .apply(&[&a, &b])
                    .try_into()
                    .expect("two sketches for two vectors");
                half_a.push(sa);
                half_b.push(sb);
            }
        }
    }

    /// The split-half Gram matrix (diagonal `⟨ĝ_A, ĝ_B⟩`, off-diagonal `⟨m_i, m_j⟩` with
    /// `m_i = (ĝ_A + ĝ_B)/2`, every entry unbiased for κ) and the naive diagonal `‖m_i‖²`.
    pub fn finish(self) -> Result<(Gram, Vec<f64>)> {
        match self {
            Self::Exact {
                n_params,
                means,
                diag,
                naive,
            } => {
                let n = diag.len();
                let mut gram = Gram::new(n);
                let mut off = vec![0.0f64; n * n];
                let mut block = vec![0.0f64; n * GRAM_BLOCK];
                for start in (0..n_params).step_by(GRAM_BLOCK) {
                    let len = GRAM_BLOCK.min(n_params - start);
                    for i in 0..n {
                        let src = &means[i * n_params + start..i * n_params + start + len];
                        for (d, s) in block[i * len..(i + 1) * len].iter_mut().zip(src) {
                            *d = f64::from(*s);
                        }
                    }
                    add_block_products(&block[..n * len], len, &mut off);
                }
                for i in 0..n {
                    gram.set(i, i, diag[i]);
                    for j in (i + 1)..n {
                        gram.set(i, j, off[i * n + j]);
                    }
                }
                Ok((gram, naive))
            }
            Self::Sketch { half_a, half_b, .. } => {
                let gram = Gram::from_split_halves(&half_a, &half_b)?;
                let naive = half_a
                    .iter()
                    .zip(&half_b)
                    .map(|(a, b)| {
                        let m: Vec<f64> = a.iter().zip(b).map(|(x, y)| 0.5 * (x + y)).collect();
                        dot_f64(&m, &m)
                    })
                    .collect();
                Ok((gram, naive))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loo_weights_by_hand() {
        // m = 4, rewards 1,0,1,1: b = (2/3, 1, 2/3, 2/3).
        let w = loo_weights(&[1.0, 0.0, 1.0, 1.0]);
        let expect = [(1.0 - 2.0 / 3.0) / 4.0, -0.25, 1.0 / 12.0, 1.0 / 12.0];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        assert_eq!(loo_weights(&[1.0, 1.0]), vec![0.0, 0.0]);
        assert_eq!(loo_weights(&[0.0, 0.0, 0.0]), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn exact_store_matches_split_halves_gram() {
        let vecs: Vec<[Vec<f32>; 2]> = (0..3)
            .map(|i| {
                let a = (0..GRAM_BLOCK + 5)
                    .map(|j| ((i * 7 + j) % 11) as f32 - 5.0)
                    .collect();
                let b = (0..GRAM_BLOCK + 5)
                    .map(|j| ((i * 3 + 2 * j) % 5) as f32 - 2.0)
                    .collect();
                [a, b]
            })
            .collect();
        let to64 = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
        let a: Vec<Vec<f64>> = vecs.iter().map(|p| to64(&p[0])).collect();
        let b: Vec<Vec<f64>> = vecs.iter().map(|p| to64(&p[1])).collect();
        let reference = Gram::from_split_halves(&a, &b).unwrap();
        let mut store = GradientStore::new(ProbeMode::Exact, GRAM_BLOCK + 5, 3);
        for p in vecs {
            store.push(p);
        }
        let (gram, naive) = store.finish().unwrap();
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(gram.get(i, j), reference.get(i, j), "({i}, {j})");
            }
            let m: Vec<f64> = a[i].iter().zip(&b[i]).map(|(x, y)| 0.5 * (x + y)).collect();
            assert_eq!(naive[i], dot_f64(&m, &m));
        }
    }
}
