//! Sequence log-probabilities of completions: the training pass of [`CausalLm`].
//!
//! Rows that share a prompt run it once, and with [`Trainable::LastBlocks`](super::Trainable)
//! the frozen blocks below the trainable ones run in the packed engine without a graph (see
//! `frozen.rs`).

use candle_core::{DType, Tensor};

use super::decode::Engine;
use super::frozen;
use super::head_op::HeadLogProb;
use super::model::{CausalLm, LmCache, LmWeights};
use super::ops::{head, log_softmax_last};
use crate::error::{PolicyError, Result};
use crate::fused;
use crate::model::SequenceBatch;

impl CausalLm {
    /// Log-probability of each row's completion: the sum over positions `t >= prompt_len` of
    /// `log pi(token_t | tokens_<t)` times `mask[b, t - prompt_len]`. `tokens` is `[B, T]` u32,
    /// `mask` is `[B, T - prompt_len]` f32; the result is `[B]` and differentiable.
    pub fn sequence_logprobs(
        &self,
        tokens: &Tensor,
        prompt_len: usize,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        if prompt_len == 0 || prompt_len >= t {
            return Err(PolicyError::Input(format!(
                "prompt_len must be in 1..{t} (the sequence length), got {prompt_len}"
            )));
        }
        let l = t - prompt_len;
        if mask.dims() != [b, l] || mask.dtype() != DType::F32 {
            return Err(PolicyError::Input(format!(
                "mask must be f32 of shape [{b}, {l}], got {:?} {:?}",
                mask.dtype(),
                mask.dims()
            )));
        }
        let w = self.weights(false)?;
        let h = self.completion_hidden(&w, tokens, prompt_len)?;
        let targets = tokens.narrow(1, prompt_len, l)?.contiguous()?;
        let picked = if self.device.is_cpu() && self.dtype == DType::F32 {
            let targets = targets.flatten_all()?.to_vec1::<u32>()?;
            let h = h.reshape((b * l, self.cfg.hidden_size))?;
            h.apply_op2(&w.head, HeadLogProb::new(targets, self.head_trains()))?
        } else if self.device.is_cpu() {
            let logits = head(&h, &w.head)?.reshape((b * l, self.cfg.vocab_size))?;
            let targets = targets.flatten_all()?.to_vec1::<u32>()?;
            logits.apply_op1(fused::PickLogProb(targets))?
        } else {
            let logits = head(&h, &w.head)?.reshape((b * l, self.cfg.vocab_size))?;
            log_softmax_last(&logits)?
                .gather(&targets.reshape((b * l, 1))?, 1)?
                .flatten_all()?
        };
        let mask = mask.to_device(&self.device)?;
        Ok((picked.reshape((b, l))? * mask)?.sum(1)?)
    }

    /// Hidden states `[B, L, d]` that predict the completion tokens `tokens[:, P..]`
    /// (positions `P - 1 .. T - 1`). Rows with identical prompts share one pass over the
    /// prompt: the distinct prompts are run once, their keys/values copied to every row
    /// (differentiably), and only the completions are run per row. Frozen lower blocks run
    /// in the packed engine when [`CausalLm::frozen_lower_blocks`] allows.
    fn completion_hidden(&self, w: &LmWeights, tokens: &Tensor, p: usize) -> Result<Tensor> {
        let (b, t) = self.check_input(tokens, None)?;
        let l = t - p;
        let rows = tokens.to_vec2::<u32>()?;
        let mut distinct: Vec<&[u32]> = Vec::new();
        let mut row_of = Vec::with_capacity(b);
        for row in &rows {
            let i = match distinct.iter().position(|d| *d == &row[..p]) {
                Some(i) => i,
                None => {
                    distinct.push(&row[..p]);
                    distinct.len() - 1
                }
            };
            row_of.push(i as u32);
        }
        // The pass's input: token ids, or the residual stream `[B, T, d]` entering block
        // `first` from the engine.
        let first = self.frozen_lower_blocks();
        let lower = if first > 0 {
            let engine = Engine::lower(self, first, t)?;
            let x = frozen::residuals(&engine, &rows, p);
            Some(Tensor::from_vec(
                x,
                (b, t, self.cfg.hidden_size),
                &self.device,
            )?)
        } else {
            None
        };
        let d = self.cfg.hidden_size;
        let run = |rows: &Tensor, x: Option<Tensor>, cache: Option<&mut LmCache>| match x {
            Some(x) => {
                let (n, len) = (x.dim(0)?, x.dim(1)?);
                self.blocks_from(w, x.reshape((n * len, d))?, first, (n, len), cache)
            }
            None => self.hidden(w, rows, cache),
        };
        if distinct.len() == b {
            let h = run(tokens, lower, None)?;
            return Ok(h.narrow(1, p - 1, l)?.contiguous()?);
        }
        let flat: Vec<u32> = distinct.iter().flat_map(|d| d.iter().copied()).collect();
        let unique = Tensor::from_vec(flat, (distinct.len(), p), &self.device)?;
        let firsts: Vec<u32> = (0..distinct.len())
            .map(|g| row_of.iter().position(|&r| r as usize == g).expect("a row") as u32)
            .collect();
        let firsts = Tensor::new(firsts.as_slice(), &self.device)?;
        let prompt_x = match &lower {
            Some(x) => Some(x.index_select(&firsts, 0)?.narrow(1, 0, p)?.contiguous()?),
            None => None,
        };
        let mut cache = LmCache::new(self);
        let hp = run(&unique, prompt_x, Some(&mut cache))?;
        let rows = Tensor::new(row_of.as_slice(), &self.device)?;
        cache.select_rows(&rows)?;
        let first_h = hp
            .narrow(1, p - 1, 1)?
            .contiguous()?
            .index_select(&rows, 0)?;
        if l == 1 {
            return Ok(first_h.contiguous()?);
        }
        let rest = tokens.narrow(1, p, l - 1)?.contiguous()?;
        let rest_x = match &lower {
            Some(x) => Some(x.narrow(1, p, l - 1)?.contiguous()?),
            None => None,
        };
        let hc = run(&rest, rest_x, Some(&mut cache))?;
        Ok(Tensor::cat(&[&first_h, &hc], 1)?)
    }

    /// How many leading blocks a training pass may run in the packed engine: those before
    /// the first block with a trainable parameter, when the embedding is frozen too, on the
    /// CPU in f32 (the engine's only setting); 0 otherwise.
    pub(super) fn frozen_lower_blocks(&self) -> usize {
        if !self.frozen_engine
            || !self.device.is_cpu()
            || self.dtype != DType::F32
            || self.trainable.contains("model.embed_tokens.weight")
        {
            return 0;
        }
        (0..self.cfg.num_hidden_layers)
            .take_while(|i| {
                let prefix = format!("model.layers.{i}.");
                !self.trainable.iter().any(|n| n.starts_with(&prefix))
            })
            .count()
    }

    /// Whether the output head's weight (the embedding when tied) trains.
    fn head_trains(&self) -> bool {
        let name = if self.cfg.tie_word_embeddings {
            "model.embed_tokens.weight"
        } else {
            "lm_head.weight"
        };
        self.trainable.contains(name)
    }

    /// Turns the packed-engine path for frozen lower blocks on or off (on by default).
    #[cfg(test)]
    pub(crate) fn set_frozen_engine(&mut self, on: bool) {
        self.frozen_engine = on;
    }

    /// [`CausalLm::sequence_logprobs`] of a prepared [`SequenceBatch`].
    pub fn batch_logprobs(&self, batch: &SequenceBatch) -> Result<Tensor> {
        self.sequence_logprobs(&batch.tokens, batch.prompt_len, &batch.mask)
    }
}
