//! The exact tier's cell: config keys, validation, and the mapping onto result files.

use std::path::Path;

use anyhow::{bail, Context, Result};
use passk_schema::theory;
use passk_theory::{TheoryCellConfig, ToyConfig};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::write::{write_csv, write_json};

/// Every key a theory cell needs; all are required so that a cell's hash names all of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TheorySpec {
    /// k of the pass@k objective ascended.
    pub k: u32,
    /// Distance between the easy and hard feature means.
    pub separation: f64,
    /// Probability that a prompt is hard.
    pub p_hard: f64,
    /// Seed of the prompt draw.
    pub seed: u64,
    /// Number of prompts.
    pub n_prompts: usize,
    /// Standard deviation of the scalar feature within a group.
    pub feature_std: f64,
    /// Initial parameters (bias, slope).
    pub theta0: [f64; 2],
    /// The k values of the conflict scan at θ0.
    pub k_scan: Vec<u32>,
    /// Ascent step size.
    pub lr: f64,
    /// Ascent steps.
    pub steps: usize,
    /// Step size of the one-step descent-lemma check.
    pub one_step_eta: f64,
}

/// Parses and validates a theory cell's flat config.
pub fn spec(config: &Map<String, Value>) -> Result<TheorySpec> {
    let spec: TheorySpec = serde_json::from_value(Value::Object(config.clone())).map_err(|e| {
        anyhow::anyhow!(
            "{e}; a theory cell needs exactly the keys k, separation, p_hard, seed, n_prompts, \
             feature_std, theta0, k_scan, lr, steps, one_step_eta (in [matrix] or [params])"
        )
    })?;
    if spec.k < 1 {
        bail!("key `k` = {}: must be at least 1", spec.k);
    }
    if spec.k_scan.is_empty() || spec.k_scan.contains(&0) {
        bail!("key `k_scan`: must be a non-empty list of integers >= 1");
    }
    if spec.p_hard.is_nan() || spec.p_hard <= 0.0 || spec.p_hard >= 1.0 {
        bail!(
            "key `p_hard` = {}: must be a probability in (0, 1)",
            spec.p_hard
        );
    }
    if spec.separation.is_nan() || spec.separation < 0.0 {
        bail!("key `separation` = {}: must be >= 0", spec.separation);
    }
    if spec.feature_std.is_nan() || spec.feature_std <= 0.0 {
        bail!("key `feature_std` = {}: must be > 0", spec.feature_std);
    }
    if spec.n_prompts < 2 {
        bail!("key `n_prompts` = {}: must be at least 2", spec.n_prompts);
    }
    if spec.lr.is_nan() || spec.lr <= 0.0 || spec.one_step_eta.is_nan() || spec.one_step_eta <= 0.0
    {
        bail!("keys `lr` and `one_step_eta` must be > 0");
    }
    if spec.steps < 1 {
        bail!("key `steps` must be at least 1");
    }
    // Rough bytes held: trajectory rows (two objectives, about 128 bytes each) per step, and
    // per prompt its features and rows.
    let check = |key: &str, value: usize, per: u128, what: &str| -> Result<()> {
        let bytes = (value as u128).saturating_mul(per);
        if bytes > passk_train::MAX_PLANNED_BYTES {
            let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
            bail!(
                "key `{key}` = {value}: {what} would need about {:.3e} GiB, more than the {} GiB \
                 a cell may plan for; lower it",
                gib(bytes),
                gib(passk_train::MAX_PLANNED_BYTES)
            );
        }
        Ok(())
    };
    check(
        "steps",
        spec.steps,
        2 * 128,
        "the trajectory, two rows per step,",
    )?;
    check(
        "n_prompts",
        spec.n_prompts,
        (spec.theta0.len() as u128 + 16) * 8 * 4,
        "the prompt set",
    )?;
    Ok(spec)
}

/// Runs the cell and writes kscan.csv, prompts.csv, trajectory.csv and summary.json into `dir`.
pub fn run(config: &Map<String, Value>, dir: &Path) -> Result<()> {
    let s = spec(config)?;
    let cfg = TheoryCellConfig {
        toy: ToyConfig {
            n_prompts: s.n_prompts,
            p_hard: s.p_hard,
            separation: s.separation,
            feature_std: s.feature_std,
            theta0: s.theta0,
            seed: s.seed,
        },
        k: s.k,
        k_scan: s.k_scan.clone(),
        lr: s.lr,
        steps: s.steps,
        one_step_eta: s.one_step_eta,
    };
    let out = passk_theory::run_cell(&cfg).context("theory cell failed")?;
    write_csv(&dir.join(theory::KSCAN_FILE), &out.kscan)?;
    write_csv(&dir.join(theory::PROMPTS_FILE), &out.prompts)?;
    write_csv(&dir.join(theory::TRAJECTORY_FILE), &out.trajectory)?;
    write_json(&dir.join(theory::SUMMARY_FILE), &out.summary)?;
    Ok(())
}
