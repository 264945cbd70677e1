//! Step times of the tiny engine on the `small` model, printed one `name median_ms` line per
//! piece so that `cargo xtask bench --peer` can set them beside `bench/torch_peer.py` (the
//! same shapes in PyTorch eager). Threads come from `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS`.
//!
//! Pieces (median over `--reps` runs after two warm-ups):
//! - `forward_256x14`: sequence log-probabilities of 256 rows of 10 + 4 tokens, no graph;
//! - `step_256x14`: the same plus backward, gradient clipping and AdamW;
//! - `sample_32x8x5`: 32 prompts x 8 samples x 5 new tokens with the KV cache;
//! - `sft_step_b128`: one SFT step of tiny-core (batch 128, 2-digit addition with the tag);
//! - `rl_step_32x16`: one RL step of tiny-core's shape: 32 prompts x 16 samples drawn and
//!   verified, then the weighted log-probability loss over all 512 rows, backward, clip and
//!   AdamW. The model is freshly initialised, so every row runs to the length limit (as in the
//!   peer) and every row is given weight 1 (a fresh model earns no reward, and zero-weight rows
//!   would be skipped).
//!
//! `cargo run --release -p passk-train --example peer_step -- [--reps N] [--only NAME]`;
//! `-- --peer-args` prints the row lengths of the tiny-core pieces as the peer's flags.

use std::time::Instant;

use candle_core::Device;
use passk_core::rng::seeded;
use passk_policy::{clip_grad_norm, Gpt, SamplingParams, SequenceBatch};
use passk_tasks::{Mixture, Split};
use passk_train::{
    apply_update, rollouts, weighted_logprob_sum, Optimizer, OptimizerKind, PromptCodec,
    TinyCellConfig, Vocab,
};

type Error = Box<dyn std::error::Error>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `reps` calls of `f` after two untimed ones.
fn time(reps: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    for _ in 0..2 {
        f()?;
    }
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(ms))
}

/// The 10-token prompts of the policy benches: `<bos>`, a tag and 8 digits.
fn synthetic_prompts(n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            let mut p = vec![1u32, 13];
            p.extend((0..8).map(|j| 3 + ((i * 7 + j * 3) % 10) as u32));
            p
        })
        .collect()
}

/// tiny-core's configuration at q = 0.75 (2-digit operands).
fn tiny_core() -> TinyCellConfig {
    let mut cfg = TinyCellConfig::reference(0.75, "pass1_rloo", 0);
    for f in &mut cfg.mixture.families {
        f.difficulty = [2, 2];
    }
    cfg
}

fn main() -> Result<(), Error> {
    passk_policy::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let reps: usize = flag("--reps").map_or(Ok(9), |s| s.parse())?;
    let only = flag("--only");
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let dev = Device::Cpu;
    let cfg = tiny_core();
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(cfg.mixture.clone())?;
    if args.iter().any(|a| a == "--peer-args") {
        // The row lengths of the tiny-core pieces, as flags of bench/torch_peer.py.
        let mut rng = seeded(cfg.seed, &[7]);
        let (mut prompt, mut reference) = (0, 0);
        for _ in 0..cfg.sft.batch {
            let p = mixture.sample(&mut rng, Split::Train)?;
            prompt = prompt.max(vocab.prompt(&p)?.len());
            reference = reference.max(vocab.reference(&p)?.len());
        }
        let new = vocab.max_new_tokens(&mixture);
        println!(
            "--sft-prompt {prompt} --sft-reference {reference} --rl-prompt {prompt} --rl-new {new}"
        );
        return Ok(());
    }
    let model = Gpt::new(cfg.gpt_config()?, 0, &dev)?;
    let params = model.params();
    let mut opt = Optimizer::new(OptimizerKind::Adamw, 1e-5, &params)?;

    let prompts = synthetic_prompts(256);
    let completions: Vec<Vec<u32>> = (0..256)
        .map(|i| (0..4).map(|j| 3 + ((i + j) % 10) as u32).collect())
        .collect();
    let rows: Vec<(&[u32], &[u32])> = prompts
        .iter()
        .zip(&completions)
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    let batch = SequenceBatch::new(&rows, vocab.eos, vocab.pad, &dev)?;
    if wanted("forward_256x14") {
        let ms = time(reps, || {
            std::hint::black_box(model.batch_logprobs_detached(&batch)?);
            Ok(())
        })?;
        println!("forward_256x14 {ms:.3}");
    }
    if wanted("step_256x14") {
        let ms = time(reps, || {
            let loss = model.batch_logprobs(&batch)?.mean_all()?.neg()?;
            let mut grads = loss.backward()?;
            clip_grad_norm(&mut grads, &params, 1.0)?;
            opt.step(&params, Some(&grads))?;
            Ok(())
        })?;
        println!("step_256x14 {ms:.3}");
    }
    if wanted("sample_32x8x5") {
        let ps = synthetic_prompts(32);
        let ms = time(reps, || {
            let out = model.sample(&ps, 8, 5, 0, SamplingParams::default(), |p, s| {
                (p * 8 + s) as u64
            })?;
            std::hint::black_box(out);
            Ok(())
        })?;
        println!("sample_32x8x5 {ms:.3}");
    }

    if wanted("sft_step_b128") {
        let mut step = 0u64;
        let ms = time(reps, || {
            let mut rng = seeded(cfg.seed, &[7, step]);
            step += 1;
            let mut inputs = Vec::with_capacity(cfg.sft.batch);
            for _ in 0..cfg.sft.batch {
                let p = mixture.sample(&mut rng, Split::Train)?;
                inputs.push((vocab.prompt(&p)?, vocab.reference(&p)?));
            }
            let tokens: usize = inputs.iter().map(|(_, r)| r.len()).sum();
            let rows: Vec<_> = inputs
                .iter()
                .map(|(p, r)| (p.as_slice(), r.as_slice(), 1.0))
                .collect();
            let sum =
                weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?.ok_or("no rows")?;
            let loss = sum.affine(-1.0 / tokens as f64, 0.0)?;
            let mut grads = loss.backward()?;
            clip_grad_norm(&mut grads, &params, 1.0)?;
            opt.step(&params, Some(&grads))?;
            Ok(())
        })?;
        println!("sft_step_b128 {ms:.3}");
    }
    if wanted("rl_step_32x16") {
        let mut step = 0u64;
        let ms = time(reps, || {
            let groups = rollouts(&model, &vocab, &mixture, &cfg.rl, cfg.seed, step)?;
            let rows: Vec<_> = groups
                .iter()
                .flat_map(|g| {
                    g.completions
                        .iter()
                        .map(|c| (g.prompt.as_slice(), c.as_slice(), 1.0))
                })
                .collect();
            let loss = weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?
                .map(|s| s.affine(-1.0 / groups.len() as f64, 0.0))
                .transpose()?;
            apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
            step += 1;
            Ok(())
        })?;
        println!("rl_step_32x16 {ms:.3}");
    }
    Ok(())
}
