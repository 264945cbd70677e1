//! Times the gradient-interference probe against one RL step on the `small` model (untrained
//! weights of `TinyCellConfig::reference`): the probe of N = 256 probe prompts × n = 8 samples
//! (exact mode, 1000 bootstrap resamples) and one RL step of 32 prompts × 16 samples
//! (rollouts + `policy_loss` + `apply_update`, AdamW).
//!
//! An untrained model answers nothing correctly, so every leave-one-out weight would be zero
//! and no backward pass would run. Both timings therefore replace the verifier's rewards by
//! seeded coin flips (probability 1/2) after sampling: the cost is then that of a policy whose
//! groups all carry signal (the worst case).
//!
//! A plain timed program (no criterion; one probe takes tens of seconds):
//! `RAYON_NUM_THREADS=2 cargo bench -p passk-train --bench probe -- [n_prompts] [n_samples]`

use std::time::Instant;

use candle_core::Device;
use passk_core::objective::objective_from_spec;
use passk_core::rng::seeded;
use passk_policy::Gpt;
use passk_tasks::Mixture;
use passk_train::{
    apply_update, policy_loss, probe_groups, probe_rollouts, rollouts, Group, Optimizer,
    ProbeConfig, ProbeMode, ProbeSet, TinyCellConfig, Vocab,
};
use rand::RngCore;

fn coin_flips(groups: &mut [Group], seed: u64) {
    let mut rng = seeded(seed, &[0xC01]);
    for g in groups {
        for r in &mut g.rewards {
            *r = f64::from(u8::from(rng.next_u64() & 1 == 1));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_prompts = args.first().copied().unwrap_or(256);
    let n_samples = args.get(1).copied().unwrap_or(8);
    let cfg = TinyCellConfig::reference(0.75, "pass1_rloo", 0);
    let model = Gpt::new(cfg.gpt_config()?, 0, &Device::Cpu)?;
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(cfg.mixture.clone())?;
    let probe_cfg = ProbeConfig {
        n_prompts,
        n_samples,
        ks: vec![1, 2, 4, 8],
        mode: ProbeMode::Exact,
        memory_budget_mb: 4096,
        bootstrap: 1000,
        trim: 0.1,
    };
    let set = ProbeSet::from_mixture(&mixture, &vocab, n_prompts, cfg.seed)?;
    let families = set.families();
    println!(
        "small model: {} parameters; probe {n_prompts} prompts x {n_samples} samples, exact mode",
        model.num_params()
    );

    let t0 = Instant::now();
    let mut groups = probe_rollouts(&model, &vocab, &set, n_samples, cfg.seed, 0)?;
    let t_sample = t0.elapsed().as_secs_f64();
    coin_flips(&mut groups, 1);
    let t1 = Instant::now();
    let result = probe_groups(
        &model, vocab.eos, vocab.pad, &groups, &families, &probe_cfg, cfg.seed, 0,
    )?;
    let t_rest = t1.elapsed().as_secs_f64();
    let probe_s = t_sample + t_rest;
    std::hint::black_box(&result);
    println!(
        "probe: {probe_s:.2} s = sampling+verify {t_sample:.2} s + gradients, Gram and \
         statistics {t_rest:.2} s"
    );

    let objective = objective_from_spec(&cfg.rl.objective)?;
    let mut opt = Optimizer::new(cfg.rl.optimizer, cfg.rl.lr, &model.params())?;
    let mut times = Vec::new();
    for step in 0..3 {
        let t = Instant::now();
        let mut groups = rollouts(&model, &vocab, &mixture, &cfg.rl, cfg.seed, step)?;
        coin_flips(&mut groups, 100 + step);
        let loss = policy_loss(&model, &vocab, &groups, objective.as_ref())?;
        apply_update(&model, &mut opt, loss, cfg.rl.clip, step)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let rl_s = times[1];
    println!(
        "RL step {} prompts x {} samples (median of 3): {rl_s:.3} s; probe / RL step = {:.0}",
        cfg.rl.prompts_per_step,
        cfg.rl.samples_per_prompt,
        probe_s / rl_s
    );
    Ok(())
}
