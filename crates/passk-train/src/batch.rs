//! Tokenisation helpers and the weighted sum of sequence log-probabilities shared by SFT and RL.

use std::collections::BTreeMap;

use candle_core::Tensor;
use passk_policy::{Policy, SequenceBatch};
use passk_tasks::tokenizer::{completion_text, prompt_ids, reference_ids};
use passk_tasks::{CharTokenizer, Prompt, StandardVerifier, Tokenizer, Verdict, Verifier};

use crate::error::Result;
use crate::prompts::TrainPrompts;

/// How a task prompt becomes model input and a sampled completion becomes a verdict: the
/// tiny tier's character [`Vocab`], or a pretrained LM's tokenizer with its chat template.
pub trait PromptCodec {
    /// Model input for `prompt`.
    fn prompt(&self, prompt: &Prompt) -> Result<Vec<u32>>;
    /// Ids that end a sampled completion (included in it).
    fn stop_ids(&self) -> &[u32];
    /// The id after which a completion's tokens stop counting in log-probabilities.
    fn eos(&self) -> u32;
    /// The id completions are padded with in a batch (masked out).
    fn pad(&self) -> u32;
    /// Most tokens sampled per completion for prompts of `source`.
    fn max_new_tokens(&self, source: &dyn TrainPrompts) -> usize;
    /// The text of a sampled completion as the verifier sees it, or `None` when it cannot be
    /// decoded (then it is incorrect).
    fn completion_text(&self, ids: &[u32]) -> Option<String>;
    /// Judges a decoded completion of `prompt` (the standard verifier by default).
    fn verify(&self, prompt: &Prompt, text: &str) -> Verdict {
        StandardVerifier.verify(prompt, text)
    }
    /// The binary reward of sampled completion `ids` of `prompt` (0 when undecodable).
    fn reward(&self, prompt: &Prompt, ids: &[u32]) -> f64 {
        match self.completion_text(ids) {
            Some(text) => self.verify(prompt, &text).reward(),
            None => 0.0,
        }
    }
}

/// The tokenizer of the tiny tier and its special ids.
pub struct Vocab {
    /// The synthetic character tokenizer.
    pub tok: CharTokenizer,
    /// End-of-sequence id.
    pub eos: u32,
    /// Padding id.
    pub pad: u32,
}

impl Vocab {
    /// The synthetic vocabulary (`CharTokenizer::synthetic`).
    pub fn synthetic() -> Self {
        let tok = CharTokenizer::synthetic();
        let eos = tok.eos_id().expect("the synthetic vocabulary has <eos>");
        let pad = tok.pad_id().expect("the synthetic vocabulary has <pad>");
        Self { tok, eos, pad }
    }

    /// Model input for `prompt` (BOS then the prompt text).
    pub fn prompt(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        Ok(prompt_ids(&self.tok, prompt)?)
    }

    /// SFT target for `prompt` (reference then EOS).
    pub fn reference(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        Ok(reference_ids(&self.tok, prompt)?)
    }
}

impl PromptCodec for Vocab {
    fn prompt(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        Vocab::prompt(self, prompt)
    }

    fn stop_ids(&self) -> &[u32] {
        std::slice::from_ref(&self.eos)
    }

    fn eos(&self) -> u32 {
        self.eos
    }

    fn pad(&self) -> u32 {
        self.pad
    }

    /// One token per character of the longest reference, plus `<eos>`.
    fn max_new_tokens(&self, source: &dyn TrainPrompts) -> usize {
        source.max_reference_chars() + 1
    }

    /// The ids before the first `<eos>`, `<pad>` dropped.
    fn completion_text(&self, ids: &[u32]) -> Option<String> {
        completion_text(&self.tok, ids).ok()
    }
}

/// One weighted row: prompt ids, completion ids, weight.
pub type WeightedRow<'a> = (&'a [u32], &'a [u32], f64);

/// `Σ_i w_i log π(completion_i | prompt_i)` as a differentiable scalar, or `None` when every
/// weight is zero (rows with weight 0 are skipped; they contribute nothing). Rows are batched
/// by prompt length, in increasing length and then input order, so the sum is deterministic.
pub fn weighted_logprob_sum<P: Policy + ?Sized>(
    model: &P,
    rows: &[WeightedRow<'_>],
    eos: u32,
    pad: u32,
) -> Result<Option<Tensor>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (p, _, w)) in rows.iter().enumerate() {
        if *w != 0.0 {
            groups.entry(p.len()).or_default().push(i);
        }
    }
    let mut total: Option<Tensor> = None;
    for members in groups.values() {
        let pairs: Vec<(&[u32], &[u32])> =
            members.iter().map(|&i| (rows[i].0, rows[i].1)).collect();
        let weights: Vec<f32> = members.iter().map(|&i| rows[i].2 as f32).collect();
        let batch = SequenceBatch::new(&pairs, eos, pad, model.device())?;
        let lp = model.batch_logprobs(&batch)?;
        let w = Tensor::from_vec(weights, members.len(), model.device())?;
        let part = (lp * w)?.sum_all()?;
        total = Some(match total {
            None => part,
            Some(t) => (t + part)?,
        });
    }
    Ok(total)
}

/// Per-row `log π(completion | prompt)` values (no graph kept), in input order.
pub fn logprobs<P: Policy + ?Sized>(
    model: &P,
    rows: &[(&[u32], &[u32])],
    eos: u32,
    pad: u32,
) -> Result<Vec<f64>> {
    let mut out = vec![0.0; rows.len()];
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (p, _)) in rows.iter().enumerate() {
        groups.entry(p.len()).or_default().push(i);
    }
    for members in groups.values() {
        let pairs: Vec<(&[u32], &[u32])> = members.iter().map(|&i| rows[i]).collect();
        let batch = SequenceBatch::new(&pairs, eos, pad, model.device())?;
        let lp = model.batch_logprobs_detached(&batch)?.to_vec1::<f32>()?;
        for (&i, v) in members.iter().zip(lp) {
            out[i] = v as f64;
        }
    }
    Ok(out)
}
