//! One policy-gradient step: sample, verify, weight by the objective, update.

use std::time::Instant;

use candle_core::{DType, Tensor};
use passk_core::estimators::pass_at_k;
use passk_core::objective::Objective;
use passk_core::rng::seeded;
use passk_policy::{clip_grad_norm, Policy, SamplingParams};
use passk_schema::train::TrainLogRow;
use rand::RngCore;

use crate::batch::{weighted_logprob_sum, PromptCodec};
use crate::config::RlConfig;
use crate::error::{Result, TrainError};
use crate::optim::Optimizer;
use crate::prompts::TrainPrompts;
use crate::streams;

/// One prompt's rollouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Sampled completion ids (each ending at its first `<eos>` or at the length limit).
    pub completions: Vec<Vec<u32>>,
    /// Binary rewards of the completions.
    pub rewards: Vec<f64>,
}

/// Samples and verifies the rollouts of RL step `step`: `prompts_per_step` prompts drawn from
/// `source` with the stream `(seed, RL_PROMPTS, step)`, `samples_per_prompt` samples each,
/// sample `s` of prompt `p` from the stream `(seed, RL_SAMPLES, step, p, s)`.
pub fn rollouts<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    source: &dyn TrainPrompts,
    rl: &RlConfig,
    seed: u64,
    step: u64,
) -> Result<Vec<Group>> {
    let mut rng = seeded(seed, &[streams::RL_PROMPTS, step]);
    let prompts = (0..rl.prompts_per_step)
        .map(|_| source.draw(&mut rng))
        .collect::<Result<Vec<_>>>()?;
    let ids = prompts
        .iter()
        .map(|p| vocab.prompt(p))
        .collect::<Result<Vec<_>>>()?;
    let n = rl.samples_per_prompt;
    let params = SamplingParams {
        temperature: rl.temperature,
        top_p: 1.0,
    };
    let max_new = vocab.max_new_tokens(source);
    let samples = model.sample_batch(&ids, n, max_new, vocab.stop_ids(), params, &|p, s| {
        seeded(seed, &[streams::RL_SAMPLES, step, p as u64, s as u64]).next_u64()
    })?;
    let mut groups = Vec::with_capacity(prompts.len());
    for (i, (prompt, ids)) in prompts.iter().zip(ids).enumerate() {
        let completions: Vec<Vec<u32>> = samples[i * n..(i + 1) * n].to_vec();
        let rewards = completions
            .iter()
            .map(|c| vocab.reward(prompt, c))
            .collect();
        groups.push(Group {
            prompt: ids,
            completions,
            rewards,
        });
    }
    Ok(groups)
}

/// The policy-gradient loss `-(1/P) Σ_prompts Σ_i w_i log π(y_i | x)` with the objective's
/// per-sample weights, or `None` when every weight is zero.
pub fn policy_loss<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    vocab: &C,
    groups: &[Group],
    objective: &dyn Objective,
) -> Result<Option<Tensor>> {
    let mut rows = Vec::new();
    for g in groups {
        let w = objective.weights(&g.rewards)?;
        for (c, wi) in g.completions.iter().zip(w) {
            rows.push((g.prompt.as_slice(), c.as_slice(), wi));
        }
    }
    let sum = weighted_logprob_sum(model, &rows, vocab.eos(), vocab.pad())?;
    Ok(match sum {
        Some(s) => Some(s.affine(-1.0 / groups.len().max(1) as f64, 0.0)?),
        None => None,
    })
}

/// Back-propagates `loss`, clips the global gradient norm to `clip` and applies `opt`;
/// returns the norm before clipping. With no loss the optimiser steps on zero gradients.
pub fn apply_update<P: Policy + ?Sized>(
    model: &P,
    opt: &mut Optimizer,
    loss: Option<Tensor>,
    clip: f64,
    step: u64,
) -> Result<f64> {
    let params = model.params();
    let Some(loss) = loss else {
        opt.step(&params, None)?;
        return Ok(0.0);
    };
    let mut grads = loss.backward()?;
    let norm = clipped_norm(&mut grads, &params, clip, step)?;
    opt.step(&params, Some(&grads))?;
    Ok(norm)
}

/// Back-propagates the losses of `objective` and of its projection `anchor` (both from the
/// same `groups`), removes from the objective's gradient `g` its component against the
/// anchor's `a` — `g − min(0, ⟨g, a⟩) a / ‖a‖²`, plus `a` when
/// [`Objective::projection_adds_anchor`] — then clips and applies it like [`apply_update`]. Returns the norm before clipping and the cosine of `g` and `a` (`None`
/// when either is zero).
#[allow(clippy::too_many_arguments)]
pub fn apply_projected_update<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    opt: &mut Optimizer,
    vocab: &C,
    groups: &[Group],
    objective: &dyn Objective,
    anchor: &dyn Objective,
    clip: f64,
    step: u64,
) -> Result<(f64, Option<f64>)> {
    let params = model.params();
    let adds_anchor = objective.projection_adds_anchor();
    let Some(loss) = policy_loss(model, vocab, groups, objective)? else {
        if adds_anchor {
            // Nothing to project: the step is the anchor's alone.
            let anchor_loss = policy_loss(model, vocab, groups, anchor)?;
            if let Some(l) = &anchor_loss {
                check_finite_loss(l, step)?;
            }
            return Ok((apply_update(model, opt, anchor_loss, clip, step)?, None));
        }
        opt.step(&params, None)?;
        return Ok((0.0, None));
    };
    check_finite_loss(&loss, step)?;
    let mut grads = loss.backward()?;
    let mut cos = None;
    if let Some(anchor_loss) = policy_loss(model, vocab, groups, anchor)? {
        check_finite_loss(&anchor_loss, step)?;
        let anchor_grads = anchor_loss.backward()?;
        let (mut dot, mut gg, mut aa) = (0.0, 0.0, 0.0);
        for (_, var) in &params {
            let g = grads.get(var.as_tensor());
            let a = anchor_grads.get(var.as_tensor());
            if let Some(g) = g {
                gg += sum_f64(&g.sqr()?)?;
            }
            if let Some(a) = a {
                aa += sum_f64(&a.sqr()?)?;
                if let Some(g) = g {
                    dot += sum_f64(&(g * a)?)?;
                }
            }
        }
        if ![dot, gg, aa].iter().all(|v| v.is_finite()) {
            return Err(TrainError::Diverged {
                phase: "rl",
                step,
                detail: format!("projection inner products dot {dot}, |g|^2 {gg}, |a|^2 {aa}"),
            });
        }
        if gg > 0.0 && aa > 0.0 {
            cos = Some(dot / (gg.sqrt() * aa.sqrt()));
        }
        if dot < 0.0 && aa > 0.0 {
            let scale = dot / aa;
            for (_, var) in &params {
                let Some(a) = anchor_grads.get(var.as_tensor()) else {
                    continue;
                };
                let projected = match grads.get(var.as_tensor()) {
                    Some(g) => (g - (a * scale)?)?,
                    None => (a * -scale)?,
                };
                grads.insert(var.as_tensor(), projected);
            }
        }
        if adds_anchor {
            for (_, var) in &params {
                let Some(a) = anchor_grads.get(var.as_tensor()) else {
                    continue;
                };
                let sum = match grads.get(var.as_tensor()) {
                    Some(g) => (g + a)?,
                    None => a.clone(),
                };
                grads.insert(var.as_tensor(), sum);
            }
        }
    }
    let norm = clipped_norm(&mut grads, &params, clip, step)?;
    opt.step(&params, Some(&grads))?;
    Ok((norm, cos))
}

/// Clips `grads` to `clip` and returns the norm before clipping, or `Diverged` when it is not
/// finite.
fn clipped_norm(
    grads: &mut candle_core::backprop::GradStore,
    params: &[(String, candle_core::Var)],
    clip: f64,
    step: u64,
) -> Result<f64> {
    let norm = clip_grad_norm(grads, params, clip)?;
    if norm.is_finite() {
        Ok(norm)
    } else {
        Err(TrainError::Diverged {
            phase: "rl",
            step,
            detail: format!("gradient norm {norm}"),
        })
    }
}

fn sum_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
}

fn check_finite_loss(loss: &Tensor, step: u64) -> Result<()> {
    let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if v.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Diverged {
            phase: "rl",
            step,
            detail: format!("loss {v}"),
        })
    }
}

/// Runs RL step `step` on `model` (rollouts, weights, update) and returns its log row. A
/// scheduled objective contributes the objective of this step ([`Objective::at_step`]); a
/// projected one is applied with [`apply_projected_update`].
#[allow(clippy::too_many_arguments)]
pub fn rl_step<P: Policy + ?Sized, C: PromptCodec + ?Sized>(
    model: &P,
    opt: &mut Optimizer,
    vocab: &C,
    source: &dyn TrainPrompts,
    rl: &RlConfig,
    objective: &dyn Objective,
    seed: u64,
    step: u64,
) -> Result<TrainLogRow> {
    let start = Instant::now();
    let groups = rollouts(model, vocab, source, rl, seed, step)?;
    let scheduled = objective.at_step(step, rl.steps);
    let active: &dyn Objective = scheduled.as_deref().unwrap_or(objective);
    let (grad_norm, conflict_cos) = match active.projection_anchor() {
        Some(anchor) => apply_projected_update(
            model,
            opt,
            vocab,
            &groups,
            active,
            anchor.as_ref(),
            rl.clip,
            step,
        )?,
        None => {
            let loss = policy_loss(model, vocab, &groups, active)?;
            if let Some(l) = &loss {
                check_finite_loss(l, step)?;
            }
            (apply_update(model, opt, loss, rl.clip, step)?, None)
        }
    };
    let n = rl.samples_per_prompt;
    let k = objective.k_for_group(n);
    let (mut reward, mut p1, mut pk) = (0.0, 0.0, 0.0);
    for g in &groups {
        let c: f64 = g.rewards.iter().sum();
        reward += c;
        p1 += pass_at_k(n as u32, c as u32, 1)?;
        pk += pass_at_k(n as u32, c as u32, k)?;
    }
    let p = groups.len() as f64;
    Ok(TrainLogRow {
        step,
        mean_reward: reward / (p * n as f64),
        pass_at_1: p1 / p,
        k,
        pass_at_k: pk / p,
        grad_norm,
        conflict_cos,
        seconds: start.elapsed().as_secs_f64(),
    })
}
