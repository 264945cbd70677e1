//! Scratch tool: SFT stage 1 on the round-2 mixture with overridable optimiser settings, then a
//! quick held-out pass@1 per family. Used to find why the warm start learns slowly.
//!
//! `cargo run -p passk-train --release --example sft_sweep -- <steps> <lr> <clip> <warmup> <cosine 0|1> <batch> <q>`

use std::time::Instant;

use candle_core::Device;
use passk_core::rng::seeded;
use passk_policy::{clip_grad_norm, Gpt};
use passk_tasks::{Mixture, Split};
use passk_train::{
    evaluate, weighted_logprob_sum, EvalSpec, Optimizer, OptimizerKind, TinyCellConfig, Vocab,
};
use rand::RngCore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let f = |i: usize, d: f64| a.get(i).map_or(d, |s| s.parse().unwrap());
    let steps = f(0, 750.0) as u64;
    let lr = f(1, 2e-3);
    let clip = f(2, 1.0);
    let warmup = f(3, 0.0) as u64;
    let cosine = f(4, 0.0) != 0.0;
    let batch = f(5, 128.0) as usize;
    let q = f(6, 1.0);
    let mut cfg = TinyCellConfig::reference(q, "pass1_rloo", 0);
    // Optional 8th argument: the share of pairs answered reversed (the families are reweighted
    // to match), e.g. 0.9 makes the reversed (least-significant-digit-first) answer the majority.
    if let Some(share) = a.get(7).map(|s| s.parse::<f64>().unwrap()) {
        cfg.mixture.reversed_share = share;
        cfg.mixture.families[0].weight = 1.0 - share;
        cfg.mixture.families[1].weight = share;
    }
    // Optional 9th argument: the operand digits of both families.
    if let Some(d) = a.get(8).map(|s| s.parse::<u32>().unwrap()) {
        for f in &mut cfg.mixture.families {
            f.difficulty = [d, d];
        }
    }
    let vocab = Vocab::synthetic();
    let model = Gpt::new(cfg.gpt_config()?, cfg.seed, &Device::Cpu)?;
    let params = model.params();
    let mut opt = Optimizer::new(OptimizerKind::Adamw, lr, &params)?;
    if let Ok(b2) = std::env::var("BETA2") {
        opt.set_beta2(b2.parse()?);
    }
    let mixture = Mixture::new(cfg.mixture.clone())?;
    let t0 = Instant::now();
    let mut acc = 0.0;
    for step in 0..steps {
        let mut l = lr;
        if step < warmup {
            l *= (step + 1) as f64 / warmup as f64;
        } else if cosine {
            let x = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
            l *= 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * x).cos());
        }
        opt.set_lr(l);
        let mut rng = seeded(cfg.seed, &[0x5346_5401, 1, step]);
        let prompts = (0..batch)
            .map(|_| mixture.sample(&mut rng, Split::Train))
            .collect::<Result<Vec<_>, _>>()?;
        let inputs: Vec<_> = prompts
            .iter()
            .map(|p| (vocab.prompt(p).unwrap(), vocab.reference(p).unwrap()))
            .collect();
        let tokens: usize = inputs.iter().map(|(_, r)| r.len()).sum();
        let rows: Vec<_> = inputs
            .iter()
            .map(|(p, r)| (p.as_slice(), r.as_slice(), 1.0))
            .collect();
        let sum = weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?.unwrap();
        let loss = sum.affine(-1.0 / tokens as f64, 0.0)?;
        acc += loss.to_scalar::<f32>()? as f64;
        let mut grads = loss.backward()?;
        if clip > 0.0 {
            clip_grad_norm(&mut grads, &params, clip)?;
        }
        opt.step(&params, Some(&grads))?;
        if (step + 1) % 125 == 0 {
            println!(
                "step {:5} loss(avg125) {:.4} lr {l:.2e} {:.0}s",
                step + 1,
                acc / 125.0,
                t0.elapsed().as_secs_f64()
            );
            acc = 0.0;
        }
    }
    let seed = seeded(cfg.seed, &[0x4556_4c01]).next_u64();
    let prompts = mixture.generate_distinct(Split::Eval, 200, seed)?;
    let spec = EvalSpec {
        n_samples: 8,
        ks: vec![1, 8],
        temperature: 1.0,
        max_new_tokens: mixture.max_reference_chars() + 1,
        seed: 1,
    };
    let e = evaluate(&model, &vocab, &prompts, &spec, steps)?;
    for r in e.rows {
        println!(
            "eval {} k={} {:.3} (n={})",
            r.family, r.k, r.pass_at_k, r.n_prompts
        );
    }
    Ok(())
}
