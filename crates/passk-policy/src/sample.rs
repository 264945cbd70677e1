//! Batched autoregressive sampling with a KV cache on detached weights.

use std::collections::BTreeMap;

use candle_core::{Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{PolicyError, Result};
use crate::model::{Gpt, KvCache};

/// How each next token is drawn from the model's distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy (the lowest-id most likely token).
    pub temperature: f64,
    /// Nucleus mass in (0, 1]: only the most likely tokens whose probabilities first reach this
    /// mass are kept; 1 keeps every token.
    pub top_p: f64,
}

impl Default for SamplingParams {
    /// Plain sampling: temperature 1, no nucleus truncation.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
        }
    }
}

impl SamplingParams {
    /// Checks the ranges of both fields.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(PolicyError::Input(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(PolicyError::Input(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Draws a token id from `logits` using one uniform number from `rng`.
pub fn choose_token(logits: &[f32], params: &SamplingParams, rng: &mut ChaCha8Rng) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &x) in logits.iter().enumerate() {
            if x > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if params.temperature == 0.0 {
        return argmax();
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| ((x as f64 - max) / params.temperature).exp())
        .collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    if params.top_p < 1.0 {
        // Most likely first; ties broken by id so the order is total and deterministic.
        order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
        let total: f64 = weights.iter().sum();
        let mut cum = 0.0;
        let mut keep = 0;
        for &i in &order {
            cum += weights[i];
            keep += 1;
            if cum >= params.top_p * total {
                break;
            }
        }
        order.truncate(keep);
    }
    let kept: f64 = order.iter().map(|&i| weights[i]).sum();
    if !(kept.is_finite() && kept > 0.0) {
        return argmax();
    }
    let u: f64 = rng.random::<f64>() * kept;
    let mut cum = 0.0;
    for &i in &order {
        cum += weights[i];
        if u < cum {
            return i as u32;
        }
    }
    *order.last().expect("at least one token is kept") as u32
}

impl Gpt {
    /// Samples `n_per_prompt` completions of at most `max_new_tokens` tokens for every prompt,
    /// all in one batch per prompt length, with a KV cache and no autograd graph. Each prompt
    /// is run through the model once and its cache copied to its samples.
    ///
    /// Sample `s` of prompt `p` draws its randomness only from a ChaCha8 stream seeded with
    /// `seed_of(p, s)`, so the result does not depend on which other prompts share the batch,
    /// on their order or on the thread count. A completion stops after its first `eos` (which
    /// it includes). The output is prompt-major: index `p * n_per_prompt + s`.
    pub fn sample(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        eos: u32,
        params: SamplingParams,
        seed_of: impl Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>> {
        params.validate()?;
        let cfg = *self.config();
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(PolicyError::Input(format!("prompt {i} is empty")));
            }
            if p.len() + max_new_tokens > cfg.context {
                return Err(PolicyError::Input(format!(
                    "prompt {i} has {} tokens; with {max_new_tokens} new tokens it exceeds the \
                     context of {}",
                    p.len(),
                    cfg.context
                )));
            }
        }
        let mut out = vec![Vec::new(); prompts.len() * n_per_prompt];
        if max_new_tokens == 0 || out.is_empty() {
            return Ok(out);
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, p) in prompts.iter().enumerate() {
            groups.entry(p.len()).or_default().push(i);
        }
        let weights = self.weights(true);
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
            // cache row and of the last logits (a row's values do not depend on the other rows
            // of the batch, so this matches prefilling every sample; tested).
            let flat: Vec<u32> = members.iter().flat_map(|&p| prompts[p].clone()).collect();
            let input = Tensor::from_vec(flat, (members.len(), len), self.device())?;
            let mut cache = KvCache::new(&cfg);
            let logits = self.forward_cached_with(&weights, &mut cache, &input)?;
            let copies: Vec<u32> = (0..members.len() as u32)
                .flat_map(|m| std::iter::repeat_n(m, n_per_prompt))
                .collect();
            let copies = Tensor::from_vec(copies, rows.len(), self.device())?;
            cache.select_rows(&copies)?;
            let mut last = logits
                .narrow(1, len - 1, 1)?
                .squeeze(1)?
                .contiguous()?
                .index_select(&copies, 0)?;
            let mut done = vec![false; rows.len()];
            for step in 0..max_new_tokens {
                let table = last.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
                let mut next = Vec::with_capacity(rows.len());
                for (r, &(p, s)) in rows.iter().enumerate() {
                    if done[r] {
                        next.push(eos);
                        continue;
                    }
                    let tok = choose_token(&table[r], &params, &mut rngs[r]);
                    out[p * n_per_prompt + s].push(tok);
                    done[r] = tok == eos;
                    next.push(tok);
                }
                if step + 1 == max_new_tokens || done.iter().all(|&d| d) {
                    break;
                }
                let input = Tensor::from_vec(next, (rows.len(), 1), self.device())?;
                let logits = self.forward_cached_with(&weights, &mut cache, &input)?;
                last = logits.squeeze(D::Minus2)?;
            }
        }
        Ok(out)
    }
}
