//! Batched autoregressive sampling from a [`CausalLm`] with a KV cache on detached weights.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::decode::{self, SampleJob};
use super::model::{CausalLm, LmCache};
use crate::error::{PolicyError, Result};
use crate::sample::{choose_token, SamplingParams};

/// Most samples the CPU sampler decodes at once (see [`CausalLm::sample`]): large enough for
/// efficient matmuls, small enough that the KV caches of long completions stay in memory.
pub const SAMPLE_MAX_ROWS: usize = 128;

impl CausalLm {
    /// Samples `n_per_prompt` completions of at most `max_new_tokens` tokens for every prompt,
    /// with a KV cache and no autograd graph. Each prompt is run through the model once and its
    /// keys and values shared by its samples.
    ///
    /// Sample `s` of prompt `p` draws its randomness only from a ChaCha8 stream seeded with
    /// `seed_of(p, s)` (one uniform per token, see [`choose_token`]), so a completion does not
    /// depend on which other prompts share the batch, their order, or the thread count (up to
    /// float rounding of batched matmuls). A completion stops after its first token in `stop`
    /// (which it includes). The output is prompt-major: index `p * n_per_prompt + s`.
    ///
    /// On the CPU this runs the inference engine of `decode.rs` (continuous batching of at
    /// most [`SAMPLE_MAX_ROWS`] samples, finished samples leave the batch at once), always in
    /// f32; on other devices it runs the differentiable model's ops on detached weights, in the
    /// model's compute dtype.
    pub fn sample(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        stop: &[u32],
        params: SamplingParams,
        seed_of: impl Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>> {
        self.check_sample_input(prompts, max_new_tokens, &params)?;
        if self.device().is_cpu() {
            let job = SampleJob {
                prompts,
                n_per_prompt,
                max_new_tokens,
                stop,
                params,
                max_rows: SAMPLE_MAX_ROWS,
            };
            return decode::sample(self, &job, seed_of);
        }
        self.sample_graph(prompts, n_per_prompt, max_new_tokens, stop, params, seed_of)
    }

    fn check_sample_input(
        &self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
        params: &SamplingParams,
    ) -> Result<()> {
        params.validate()?;
        let cfg = self.config();
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(PolicyError::Input(format!("prompt {i} is empty")));
            }
            if p.len() + max_new_tokens > cfg.max_position_embeddings {
                return Err(PolicyError::Input(format!(
                    "prompt {i} has {} tokens; with {max_new_tokens} new tokens it exceeds \
                     max_position_embeddings {}",
                    p.len(),
                    cfg.max_position_embeddings
                )));
            }
            if let Some(&t) = p.iter().find(|&&t| t as usize >= cfg.vocab_size) {
                return Err(PolicyError::Input(format!(
                    "prompt {i} has token id {t}, outside the vocabulary of {}",
                    cfg.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// [`CausalLm::sample`] through the differentiable model's ops (one batch per prompt
    /// length, every row decoded until all stop): the path for non-CPU devices, and the
    /// reference the CPU engine is tested against.
    pub(crate) fn sample_graph(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        stop: &[u32],
        params: SamplingParams,
        seed_of: impl Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>> {
        self.check_sample_input(prompts, max_new_tokens, &params)?;
        let mut out = vec![Vec::new(); prompts.len() * n_per_prompt];
        if max_new_tokens == 0 || out.is_empty() {
            return Ok(out);
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, p) in prompts.iter().enumerate() {
            groups.entry(p.len()).or_default().push(i);
        }
        let weights = self.weights(true)?;
        let pad = stop.first().copied().unwrap_or(0);
        for (len, members) in groups {
            let rows: Vec<(usize, usize)> = members
                .iter()
                .flat_map(|&p| (0..n_per_prompt).map(move |s| (p, s)))
                .collect();
            let mut rngs: Vec<ChaCha8Rng> = rows
                .iter()
                .map(|&(p, s)| ChaCha8Rng::seed_from_u64(seed_of(p, s)))
                .collect();
            // Prefill each distinct prompt once, then give every sample its own copy of the
            // cache row and of the last logits.
            let flat: Vec<u32> = members.iter().flat_map(|&p| prompts[p].clone()).collect();
            let input = Tensor::from_vec(flat, (members.len(), len), self.device())?;
            let mut cache = LmCache::new(self);
            let last = self.last_logits(&weights, &mut cache, &input)?;
            let copies: Vec<u32> = (0..members.len() as u32)
                .flat_map(|m| std::iter::repeat_n(m, n_per_prompt))
                .collect();
            let copies = Tensor::new(copies.as_slice(), self.device())?;
            cache.select_rows(&copies)?;
            let mut last = last.index_select(&copies, 0)?;
            let mut done = vec![false; rows.len()];
            for step in 0..max_new_tokens {
                let table = last.to_dtype(DType::F32)?.to_vec2::<f32>()?;
                let mut next = Vec::with_capacity(rows.len());
                for (r, &(p, s)) in rows.iter().enumerate() {
                    if done[r] {
                        next.push(pad);
                        continue;
                    }
                    let tok = choose_token(&table[r], &params, &mut rngs[r]);
                    out[p * n_per_prompt + s].push(tok);
                    done[r] = stop.contains(&tok);
                    next.push(tok);
                }
                if step + 1 == max_new_tokens || done.iter().all(|&d| d) {
                    break;
                }
                let input = Tensor::from_vec(next, (rows.len(), 1), self.device())?;
                last = self.last_logits(&weights, &mut cache, &input)?;
            }
        }
        Ok(out)
    }

    /// Greedy completion of one prompt (temperature 0), stopping at a `stop` token.
    pub fn greedy(&self, prompt: &[u32], max_new_tokens: usize, stop: &[u32]) -> Result<Vec<u32>> {
        let params = SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
        };
        let mut out = self.sample(
            &[prompt.to_vec()],
            1,
            max_new_tokens,
            stop,
            params,
            |_, _| 0,
        )?;
        Ok(out.remove(0))
    }
}
