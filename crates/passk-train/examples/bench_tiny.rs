//! Times the pieces of the tiny tier on the `small` model: SFT steps (batch 128) and full RL
//! steps (32 prompts x 8 samples by default) split into sampling + verification, log-prob
//! forward + backward + clip + optimiser.
//!
//! `RAYON_NUM_THREADS=2 cargo run -p passk-train --release --example bench_tiny -- [sft_steps] [rl_steps] [samples]`

use std::time::Instant;

use candle_core::Device;
use passk_core::objective::objective_from_spec;
use passk_tasks::Mixture;
use passk_train::{
    apply_update, policy_loss, rollouts, train_sft, Optimizer, TinyCellConfig, Vocab,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let sft_steps = args.first().copied().unwrap_or(20) as u64;
    let rl_steps = args.get(1).copied().unwrap_or(10) as u64;
    let samples = args.get(2).copied().unwrap_or(8);

    let mut cfg = TinyCellConfig::reference(0.75, "pass1_rloo", 1);
    cfg.sft.stage1_steps = sft_steps;
    cfg.sft.stage2_steps = 0;
    cfg.rl.samples_per_prompt = samples;
    let t = Instant::now();
    let (model, log) = train_sft(&cfg, &Device::Cpu, &mut |_| {})?;
    let sft_ms = t.elapsed().as_secs_f64() * 1e3 / sft_steps.max(1) as f64;
    println!(
        "model small: {} parameters; SFT batch {}: {sft_ms:.1} ms/step over {sft_steps} steps \
         (loss {:.3} -> {:.3}); full warm start of {} steps extrapolates to {:.0} s",
        model.num_params(),
        cfg.sft.batch,
        log.first().map_or(f64::NAN, |r| r.loss),
        log.last().map_or(f64::NAN, |r| r.loss),
        1750 + 750,
        sft_ms * 2500.0 / 1e3
    );

    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(cfg.mixture.clone())?;
    let objective = objective_from_spec(&cfg.rl.objective)?;
    let mut opt = Optimizer::new(cfg.rl.optimizer, cfg.rl.lr, &model.params())?;
    let (mut sample_ms, mut update_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..rl_steps {
        let t0 = Instant::now();
        let groups = rollouts(&model, &vocab, &mixture, &cfg.rl, cfg.seed, step)?;
        let t1 = Instant::now();
        let loss = policy_loss(&model, &vocab, &groups, objective.as_ref())?;
        apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
        let t2 = Instant::now();
        sample_ms.push((t1 - t0).as_secs_f64() * 1e3);
        update_ms.push((t2 - t1).as_secs_f64() * 1e3);
        total_ms.push((t2 - t0).as_secs_f64() * 1e3);
    }
    println!(
        "RL step {} prompts x {samples} samples (median of {rl_steps}): total {:.1} ms = \
         sampling+verify {:.1} ms + log-prob fwd/bwd+clip+AdamW {:.1} ms",
        cfg.rl.prompts_per_step,
        median(total_ms),
        median(sample_ms),
        median(update_ms)
    );
    // The update with every sample weighted (pass1_rloo skips zero-weight rows, so force
    // non-zero weights by timing the loss over all rows with weight 1).
    let groups = rollouts(&model, &vocab, &mixture, &cfg.rl, cfg.seed, 0)?;
    let rows: Vec<(&[u32], &[u32], f64)> = groups
        .iter()
        .flat_map(|g| {
            g.completions
                .iter()
                .map(move |c| (g.prompt.as_slice(), c.as_slice(), 1.0))
        })
        .collect();
    let mut full = Vec::new();
    for step in 0..rl_steps.max(1) {
        let t = Instant::now();
        let loss = passk_train::weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?;
        apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
        full.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "update over all {} rows (none skipped): {:.1} ms (median)",
        rows.len(),
        median(full)
    );
    let params = model.params();
    let mut opt_only = Vec::new();
    for _ in 0..rl_steps.max(1) {
        let t = Instant::now();
        opt.step(&params, None)?;
        opt_only.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("AdamW step alone: {:.1} ms (median)", median(opt_only));

    // Same-run comparison of the generic candle ops against the fused CPU kernels, alternating
    // the two every iteration so that machine load affects both alike.
    let mut sft_rng = passk_core::rng::seeded(cfg.seed, &[12345]);
    let sft_inputs: Vec<(Vec<u32>, Vec<u32>)> = (0..cfg.sft.batch)
        .map(|_| {
            let p = mixture.sample(&mut sft_rng, passk_tasks::Split::Train)?;
            Ok((vocab.prompt(&p)?, vocab.reference(&p)?))
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let sft_rows: Vec<(&[u32], &[u32], f64)> = sft_inputs
        .iter()
        .map(|(p, r)| (p.as_slice(), r.as_slice(), 1.0))
        .collect();
    let prompts: Vec<Vec<u32>> = groups.iter().map(|g| g.prompt.clone()).collect();
    let mut model = model;
    let mut times = [
        [Vec::new(), Vec::new(), Vec::new()],
        [Vec::new(), Vec::new(), Vec::new()],
    ];
    for step in 0..rl_steps.max(1) {
        for (mode, fused) in [false, true].into_iter().enumerate() {
            model.set_fused_kernels(fused);
            let t = Instant::now();
            let loss = passk_train::weighted_logprob_sum(&model, &sft_rows, vocab.eos, vocab.pad)?;
            apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
            times[mode][0].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let loss = passk_train::weighted_logprob_sum(&model, &rows, vocab.eos, vocab.pad)?;
            apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
            times[mode][1].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let out = model.sample(
                &prompts,
                samples,
                mixture.max_reference_chars() + 1,
                vocab.eos,
                passk_policy::SamplingParams::default(),
                |p, s| (p * 1000 + s) as u64,
            )?;
            std::hint::black_box(out);
            times[mode][2].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let [generic, fused] = times.map(|m| m.map(median));
    for (i, what) in [
        "SFT-shaped update (batch 128, fwd+bwd+clip+AdamW)",
        "update over all rows",
        "sampling only",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{what}: generic ops {:.1} ms, fused kernels {:.1} ms (x{:.2})",
            generic[i],
            fused[i],
            generic[i] / fused[i]
        );
    }
    Ok(())
}
