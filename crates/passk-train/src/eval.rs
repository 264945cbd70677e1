//! Held-out evaluation: unbiased pass@k overall and per family, and the share of answers given
//! in the other family's format.

use std::collections::BTreeMap;

use passk_core::estimators::pass_at_k;
use passk_core::rng::seeded;
use passk_policy::{Policy, SamplingParams};
use passk_schema::eval::{EvalRow, FormatRow, PromptOutcomeRow, ALL_FAMILIES};
use passk_tasks::{Failure, Prompt, Verdict};
use rand::RngCore;

use crate::batch::PromptCodec;
use crate::error::Result;
use crate::streams;

/// Prompts sampled together in one batch by [`evaluate`] (bounds memory).
pub const EVAL_CHUNK: usize = 64;

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// pass@k rows for every k, overall first then by family name.
    pub rows: Vec<EvalRow>,
    /// Other-format shares by family name.
    pub format: Vec<FormatRow>,
    /// Every prompt's outcome counts, in prompt order.
    pub prompts: Vec<PromptOutcomeRow>,
}

/// How to sample during an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    /// Samples per prompt.
    pub n_samples: usize,
    /// The k values reported.
    pub ks: Vec<u32>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens generated per sample.
    pub max_new_tokens: usize,
    /// Seed of the sampling streams.
    pub seed: u64,
}

/// Evaluates `model` on `prompts` as `spec` says and labels the rows with `step`.
///
/// Sample `s` of prompt `p` draws from the stream `(seed, EVAL_SAMPLES, p, s)`, the same at
/// every step (common random numbers across evaluations; independent of training streams).
pub fn evaluate<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    prompts: &[Prompt],
    spec: &EvalSpec,
    step: u64,
) -> Result<Evaluation> {
    evaluate_in_chunks(model, vocab, prompts, spec, step, EVAL_CHUNK, &mut |_| {})
}

/// [`evaluate`], sampling `chunk` prompts at a time and calling `on_sampled` with the number
/// of prompts sampled so far after each chunk (progress for long evaluations). The chunk size
/// changes the numbers only for a policy whose samples depend on their batch companions (the
/// tiny policy's may; the LM sampler's do not).
pub fn evaluate_in_chunks<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    prompts: &[Prompt],
    spec: &EvalSpec,
    step: u64,
    chunk: usize,
    on_sampled: &mut dyn FnMut(usize),
) -> Result<Evaluation> {
    let EvalSpec {
        n_samples,
        ref ks,
        temperature,
        max_new_tokens,
        seed,
    } = *spec;
    let params = SamplingParams {
        temperature,
        top_p: 1.0,
    };
    // Per prompt: number correct; per family: (other-format count, samples).
    let mut correct = Vec::with_capacity(prompts.len());
    let mut outcomes = Vec::with_capacity(prompts.len());
    let mut other: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let chunk_size = chunk.max(1);
    for (chunk_index, chunk) in prompts.chunks(chunk_size).enumerate() {
        let base = chunk_index * chunk_size;
        let ids = chunk
            .iter()
            .map(|p| vocab.prompt(p))
            .collect::<Result<Vec<_>>>()?;
        let samples = model.sample_batch(
            &ids,
            n_samples,
            max_new_tokens,
            vocab.stop_ids(),
            params,
            &|p, s| seeded(seed, &[streams::EVAL_SAMPLES, (base + p) as u64, s as u64]).next_u64(),
        )?;
        for (j, prompt) in chunk.iter().enumerate() {
            let mut c = 0u32;
            let mut row = PromptOutcomeRow {
                step,
                prompt: prompt.id.clone(),
                family: prompt.family.name().to_string(),
                n_samples: n_samples as u32,
                correct: 0,
                wrong: 0,
                no_answer: 0,
                unparseable: 0,
                cut_off: 0,
            };
            for s in 0..n_samples {
                let completion = &samples[j * n_samples + s];
                let text = vocab.completion_text(completion);
                let ok = match &text {
                    Some(t) => {
                        let verdict = vocab.verify(prompt, t);
                        match &verdict {
                            Verdict::Correct { .. } => row.correct += 1,
                            Verdict::Incorrect { reason, .. } => match reason {
                                Failure::NoAnswer => row.no_answer += 1,
                                Failure::Unparseable { .. } => row.unparseable += 1,
                                _ => row.wrong += 1,
                            },
                        }
                        verdict.is_correct()
                    }
                    None => {
                        row.cut_off += 1;
                        false
                    }
                };
                c += u32::from(ok);
                if let Some(alt) = &prompt.alt_reference {
                    let e = other.entry(prompt.family.name()).or_default();
                    e.1 += 1;
                    if text.as_deref() == Some(alt.as_str()) && alt != &prompt.reference {
                        e.0 += 1;
                    }
                }
            }
            correct.push(c);
            outcomes.push(row);
        }
        on_sampled(base + chunk.len());
    }
    let mut by_family: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in prompts.iter().enumerate() {
        by_family.entry(p.family.name()).or_default().push(i);
    }
    let all: Vec<usize> = (0..prompts.len()).collect();
    let groups =
        std::iter::once((ALL_FAMILIES, &all)).chain(by_family.iter().map(|(f, v)| (*f, v)));
    let n = n_samples as u32;
    let mut rows = Vec::new();
    for (family, members) in groups {
        for &k in ks.iter() {
            let mut total = 0.0;
            for &i in members {
                total += pass_at_k(n, correct[i], k)?;
            }
            rows.push(EvalRow {
                step,
                family: family.to_string(),
                k,
                pass_at_k: total / members.len() as f64,
                n_prompts: members.len(),
            });
        }
    }
    let format = other
        .into_iter()
        .map(|(family, (hits, total))| FormatRow {
            step,
            family: family.to_string(),
            other_format_share: hits as f64 / total as f64,
            n_samples: total,
        })
        .collect();
    Ok(Evaluation {
        rows,
        format,
        prompts: outcomes,
    })
}
