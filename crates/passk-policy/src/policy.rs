//! The [`Policy`] trait: what policy-gradient training and the gradient probe need from a
//! model, implemented by the tiny [`Gpt`] and the pretrained [`CausalLm`].

use candle_core::{Device, Tensor, Var};

use crate::error::{PolicyError, Result};
use crate::lm::CausalLm;
use crate::model::{Gpt, SequenceBatch};
use crate::sample::SamplingParams;

/// A differentiable autoregressive policy over token ids.
///
/// Object safe: training code takes `&P where P: Policy + ?Sized`, so `&dyn Policy` works too.
pub trait Policy {
    /// The trainable parameters with their names, sorted by name (the optimiser's and the
    /// probe's order).
    fn params(&self) -> Vec<(String, Var)>;

    /// Number of trainable scalar weights (the length of a flattened gradient).
    fn num_trainable(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The device holding the weights.
    fn device(&self) -> &Device;

    /// `[B]` log-probabilities of the batch's completions, differentiable in [`Policy::params`].
    fn batch_logprobs(&self, batch: &SequenceBatch) -> Result<Tensor>;

    /// The values of [`Policy::batch_logprobs`] without building a graph (evaluation only).
    fn batch_logprobs_detached(&self, batch: &SequenceBatch) -> Result<Tensor> {
        Ok(self.batch_logprobs(batch)?.detach())
    }

    /// Samples `n_per_prompt` completions of at most `max_new_tokens` tokens for every prompt
    /// (prompt-major output: index `p * n_per_prompt + s`). Sample `s` of prompt `p` draws only
    /// from a ChaCha8 stream seeded with `seed_of(p, s)`; a completion ends after its first
    /// token in `stop` (included).
    fn sample_batch(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        stop: &[u32],
        params: SamplingParams,
        seed_of: &dyn Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>>;
}

impl Policy for Gpt {
    fn params(&self) -> Vec<(String, Var)> {
        Gpt::params(self)
    }

    fn num_trainable(&self) -> usize {
        self.num_params()
    }

    fn device(&self) -> &Device {
        Gpt::device(self)
    }

    fn batch_logprobs(&self, batch: &SequenceBatch) -> Result<Tensor> {
        Gpt::batch_logprobs(self, batch)
    }

    fn batch_logprobs_detached(&self, batch: &SequenceBatch) -> Result<Tensor> {
        Gpt::batch_logprobs_detached(self, batch)
    }

    /// The GPT stops at one end-of-sequence id: `stop` must hold exactly one.
    fn sample_batch(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        stop: &[u32],
        params: SamplingParams,
        seed_of: &dyn Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>> {
        let [eos] = stop else {
            return Err(PolicyError::Input(format!(
                "the tiny GPT stops at exactly one <eos> id, got {} stop ids",
                stop.len()
            )));
        };
        self.sample(prompts, n_per_prompt, max_new_tokens, *eos, params, seed_of)
    }
}

impl Policy for CausalLm {
    fn params(&self) -> Vec<(String, Var)> {
        CausalLm::params(self)
    }

    fn num_trainable(&self) -> usize {
        CausalLm::num_trainable(self)
    }

    fn device(&self) -> &Device {
        CausalLm::device(self)
    }

    fn batch_logprobs(&self, batch: &SequenceBatch) -> Result<Tensor> {
        CausalLm::batch_logprobs(self, batch)
    }

    fn sample_batch(
        &self,
        prompts: &[Vec<u32>],
        n_per_prompt: usize,
        max_new_tokens: usize,
        stop: &[u32],
        params: SamplingParams,
        seed_of: &dyn Fn(usize, usize) -> u64,
    ) -> Result<Vec<Vec<u32>>> {
        self.sample(prompts, n_per_prompt, max_new_tokens, stop, params, seed_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GptConfig;

    #[test]
    fn gpt_policy_matches_inherent_methods() {
        let dev = Device::Cpu;
        let gpt = Gpt::new(GptConfig::nano(12), 3, &dev).unwrap();
        let policy: &dyn Policy = &gpt;
        assert_eq!(policy.num_trainable(), gpt.num_params());
        assert_eq!(policy.params().len(), gpt.params().len());
        let prompts = vec![vec![1u32, 5, 6], vec![1, 7]];
        let seed = |p: usize, s: usize| (p * 10 + s) as u64;
        let a = policy
            .sample_batch(&prompts, 2, 4, &[2], SamplingParams::default(), &seed)
            .unwrap();
        let b = gpt
            .sample(&prompts, 2, 4, 2, SamplingParams::default(), seed)
            .unwrap();
        assert_eq!(a, b);
        let err = policy
            .sample_batch(&prompts, 2, 4, &[2, 3], SamplingParams::default(), &seed)
            .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
}
