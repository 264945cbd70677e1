//! `passk warm-starts`: trains (or loads from the cache) the SFT warm starts of tiny experiments
//! and prints each one's held-out pass@1 per family, the profile a matched control is chosen on
//! before any RL cell runs. `--curve` instead follows stage 1 of each seed and profiles it at
//! several step counts in one run.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use passk_core::stats::{mean, sample_std};
use passk_policy::DeviceChoice;
use passk_schema::eval::ALL_FAMILIES;
use passk_train::{
    train_sft_observed, warm_start_checked, warm_start_profile, Evaluation, TinyCellConfig,
};

use crate::config::Experiment;

/// One profiled warm start: what it was, and its held-out pass@1 by family.
struct Profile {
    label: String,
    seed: u64,
    pass1: BTreeMap<String, f64>,
}

/// The distinct warm starts of `experiments` (by SFT hash), grouped by shared stage 1 so that a
/// shard trains each stage 1 once, then dealt round-robin over `shard = (i, n)`.
fn warm_start_groups(
    experiments: &[Experiment],
    shard: Option<(usize, usize)>,
) -> Result<Vec<Vec<TinyCellConfig>>> {
    let mut groups: Vec<(String, Vec<TinyCellConfig>)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for exp in experiments {
        if !crate::tiers::entry(exp.tier).warm_starts {
            bail!(
                "{}: tier `{}` has no SFT warm start; `passk warm-starts` takes tiny experiments",
                exp.path.display(),
                exp.tier
            );
        }
        for cell in &exp.cells {
            let cfg = crate::tiny::spec(&cell.config)?;
            if !seen.insert(cfg.sft_hash()) {
                continue;
            }
            let stage1 = cfg.sft_stage1_hash();
            match groups.iter_mut().find(|(h, _)| *h == stage1) {
                Some((_, g)) => g.push(cfg),
                None => groups.push((stage1, vec![cfg])),
            }
        }
    }
    Ok(groups
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(s, n)| i % n == s - 1))
        .map(|(_, (_, g))| g)
        .collect())
}

fn pass1_by_family(e: &Evaluation) -> BTreeMap<String, f64> {
    e.rows
        .iter()
        .filter(|r| r.k == 1)
        .map(|r| (r.family.clone(), r.pass_at_k))
        .collect()
}

fn describe(cfg: &TinyCellConfig) -> String {
    format!(
        "q={} stage1={} stage2={}",
        cfg.mixture.cue_reliability, cfg.sft.stage1_steps, cfg.sft.stage2_steps
    )
}

/// Trains or loads every warm start of `experiments` (in `cache`, like `passk run`) and prints
/// its held-out pass@1 per family, then the mean and spread over seeds. `strict`: a cached warm
/// start that fails its integrity check is an error, not retrained.
pub fn profile(
    experiments: &[Experiment],
    cache: &std::path::Path,
    shard: Option<(usize, usize)>,
    quiet: bool,
    strict: bool,
) -> Result<()> {
    let mut out = Vec::new();
    for group in warm_start_groups(experiments, shard)? {
        for cfg in group {
            if !quiet {
                eprintln!(
                    "warm start {} ({}, seed {})",
                    cfg.sft_hash(),
                    describe(&cfg),
                    cfg.seed
                );
            }
            let device = DeviceChoice::Cpu.device()?;
            let ws = warm_start_checked(&cfg, cache, &device, &mut |_| {}, strict)?;
            let e = warm_start_profile(&cfg, &ws.model)?;
            out.push(Profile {
                label: describe(&cfg),
                seed: cfg.seed,
                pass1: pass1_by_family(&e),
            });
            print_row(out.last().expect("just pushed"));
        }
    }
    print_summary(&out);
    Ok(())
}

/// For each distinct seed of `experiments`, trains stage 1 (reliable tag) up to the largest of
/// `steps` without touching the cache, and profiles the model after each of `steps`.
pub fn curve(
    experiments: &[Experiment],
    steps: &[u64],
    shard: Option<(usize, usize)>,
    quiet: bool,
) -> Result<()> {
    let Some(&last) = steps.iter().max() else {
        bail!("--curve needs at least one step count, e.g. --curve 500,600,700");
    };
    let mut out = Vec::new();
    // Warm starts that differ only in stage-1 length or stage 2 share one curve.
    let mut curves = std::collections::BTreeSet::new();
    for group in warm_start_groups(experiments, shard)? {
        let mut cfg = group[0].clone();
        cfg.mixture.cue_reliability = 1.0;
        cfg.sft.stage1_steps = last;
        cfg.sft.stage2_steps = 0;
        if !curves.insert(cfg.sft_stage1_hash()) {
            continue;
        }
        if !quiet {
            eprintln!("stage-1 curve of seed {} up to {last} steps", cfg.seed);
        }
        train_sft_observed(
            &cfg,
            &DeviceChoice::Cpu.device()?,
            &mut |stage, done, model| {
                if stage == 1 && steps.contains(&done) {
                    let mut at = cfg.clone();
                    at.sft.stage1_steps = done;
                    let e = warm_start_profile(&at, model)?;
                    out.push(Profile {
                        label: describe(&at),
                        seed: at.seed,
                        pass1: pass1_by_family(&e),
                    });
                    print_row(out.last().expect("just pushed"));
                }
                Ok(())
            },
        )?;
    }
    print_summary(&out);
    Ok(())
}

fn print_row(p: &Profile) {
    let families: Vec<String> = p.pass1.iter().map(|(f, v)| format!("{f} {v:.3}")).collect();
    println!(
        "{} seed {}: pass@1 {}",
        p.label,
        p.seed,
        families.join(", ")
    );
}

/// Mean ± sample standard deviation over seeds of each family's pass@1, per warm-start setting.
fn print_summary(profiles: &[Profile]) {
    let mut by_label: BTreeMap<&str, Vec<&Profile>> = BTreeMap::new();
    for p in profiles {
        by_label.entry(&p.label).or_default().push(p);
    }
    println!("\n| warm start | seeds | family | pass@1 mean | sd | per seed |");
    println!("|---|---|---|---|---|---|");
    for (label, ps) in by_label {
        let seeds: Vec<String> = ps.iter().map(|p| p.seed.to_string()).collect();
        let mut families: Vec<&String> = ps[0].pass1.keys().collect();
        families.sort_by_key(|f| (f.as_str() != ALL_FAMILIES, f.to_string()));
        for f in families {
            let v: Vec<f64> = ps.iter().filter_map(|p| p.pass1.get(f).copied()).collect();
            let each: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
            println!(
                "| {label} | {} | {f} | {:.3} | {:.3} | {} |",
                seeds.join(","),
                mean(&v),
                if v.len() > 1 {
                    sample_std(&v)
                } else {
                    f64::NAN
                },
                each.join(" / ")
            );
        }
    }
}
