//! Integration-style tests of the training loop on the `nano` preset.

use std::path::Path;

use candle_core::Device;
use passk_core::objective::objective_from_spec;
use passk_policy::Gpt;
use passk_tasks::{Mixture, MixtureConfig, Split};

use passk_schema::eval::{EvalRow, ALL_FAMILIES, EVAL_FILE, FORMAT_FILE};
use passk_schema::probe::probe_dir;
use passk_schema::tiny::{TinySummary, SUMMARY_FILE};
use passk_schema::train::{TrainLogRow, TRAIN_LOG_FILE};

use crate::*;

fn nano() -> Gpt {
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    Gpt::new(cfg.gpt_config().unwrap(), 3, &Device::Cpu).unwrap()
}

/// A fixed batch: 3 prompts, 4 completions each; completion 0 and 2 are the reference answer
/// (reward 1), the others a wrong answer of the same length (reward 0).
fn fixed_groups(vocab: &Vocab) -> Vec<Group> {
    let mixture = Mixture::new(MixtureConfig::interference(0.75)).unwrap();
    let prompts = mixture.generate(Split::Train, 3, 11).unwrap();
    prompts
        .iter()
        .map(|p| {
            let good = vocab.reference(p).unwrap();
            let mut bad = good.clone();
            bad[0] = if bad[0] == good[1] { good[2] } else { good[1] };
            bad.reverse(); // the EOS moves to the front: a short wrong completion
            Group {
                prompt: vocab.prompt(p).unwrap(),
                completions: vec![good.clone(), bad.clone(), good, bad],
                rewards: vec![1.0, 0.0, 1.0, 0.0],
            }
        })
        .collect()
}

#[test]
fn every_parameter_gets_a_gradient_through_the_policy_loss() {
    let model = nano();
    let vocab = Vocab::synthetic();
    let groups = fixed_groups(&vocab);
    let objective = objective_from_spec("pass1_rloo").unwrap();
    let loss = policy_loss(&model, &vocab, &groups, objective.as_ref())
        .unwrap()
        .expect("non-zero weights");
    let grads = loss.backward().unwrap();
    for (name, var) in model.params() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Position rows beyond the sequence length legitimately get zero; the tensor as a
        // whole must not.
        assert!(norm > 0.0, "{name} has an all-zero gradient");
    }
}

#[test]
fn all_zero_weights_give_no_loss() {
    let model = nano();
    let vocab = Vocab::synthetic();
    let mut groups = fixed_groups(&vocab);
    for g in &mut groups {
        g.rewards = vec![1.0; 4];
    }
    let objective = objective_from_spec("pass1_rloo").unwrap();
    assert!(policy_loss(&model, &vocab, &groups, objective.as_ref())
        .unwrap()
        .is_none());
}

fn mean_logprob(model: &Gpt, vocab: &Vocab, groups: &[Group], rewarded: bool) -> f64 {
    let rows: Vec<(&[u32], &[u32])> = groups
        .iter()
        .flat_map(|g| {
            g.completions
                .iter()
                .zip(&g.rewards)
                .filter(move |(_, &r)| (r == 1.0) == rewarded)
                .map(move |(c, _)| (g.prompt.as_slice(), c.as_slice()))
        })
        .collect();
    let lp = logprobs(model, &rows, vocab.eos, vocab.pad).unwrap();
    lp.iter().sum::<f64>() / lp.len() as f64
}

#[test]
fn a_pass1_step_raises_the_log_prob_of_rewarded_samples() {
    let vocab = Vocab::synthetic();
    let groups = fixed_groups(&vocab);
    let objective = objective_from_spec("pass1_rloo").unwrap();
    for kind in [OptimizerKind::Sgd, OptimizerKind::Adamw] {
        let model = nano();
        let lr = if kind == OptimizerKind::Sgd {
            0.5
        } else {
            1e-3
        };
        let mut opt = Optimizer::new(kind, lr, &model.params()).unwrap();
        let good_before = mean_logprob(&model, &vocab, &groups, true);
        let bad_before = mean_logprob(&model, &vocab, &groups, false);
        let loss = policy_loss(&model, &vocab, &groups, objective.as_ref()).unwrap();
        let norm = apply_update(&model, &mut opt, loss, 10.0, 0).unwrap();
        assert!(norm > 0.0);
        let good_after = mean_logprob(&model, &vocab, &groups, true);
        let bad_after = mean_logprob(&model, &vocab, &groups, false);
        assert!(
            good_after > good_before,
            "{kind:?}: rewarded {good_before} -> {good_after}"
        );
        assert!(
            bad_after < bad_before,
            "{kind:?}: unrewarded {bad_before} -> {bad_after}"
        );
    }
}

#[test]
fn evaluation_reports_every_family_and_k() {
    let model = nano();
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(MixtureConfig::interference(0.75)).unwrap();
    let prompts = mixture.generate_distinct(Split::Eval, 40, 5).unwrap();
    let spec = EvalSpec {
        n_samples: 4,
        ks: vec![1, 2, 4],
        temperature: 1.0,
        max_new_tokens: 5,
        seed: 1,
    };
    let e = evaluate(&model, &vocab, &prompts, &spec, 0).unwrap();
    let families: Vec<&str> = e.rows.iter().map(|r| r.family.as_str()).collect();
    assert_eq!(families[0], ALL_FAMILIES);
    assert!(families.contains(&"addition"));
    let all: Vec<&EvalRow> = e.rows.iter().filter(|r| r.family == ALL_FAMILIES).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].n_prompts, 40);
    for w in all.windows(2) {
        assert!(w[0].pass_at_k <= w[1].pass_at_k + 1e-12);
    }
    let per_family: usize = e
        .rows
        .iter()
        .filter(|r| r.family != ALL_FAMILIES && r.k == 1)
        .map(|r| r.n_prompts)
        .sum();
    assert_eq!(per_family, 40);
    for f in &e.format {
        assert!((0.0..=1.0).contains(&f.other_format_share));
    }
    // Same seed, same result.
    assert_eq!(evaluate(&model, &vocab, &prompts, &spec, 0).unwrap(), e);
    // Progress after each chunk of prompts; one chunk of all is `evaluate` itself.
    let mut seen = Vec::new();
    evaluate_in_chunks(&model, &vocab, &prompts, &spec, 0, 16, &mut |n| {
        seen.push(n)
    })
    .unwrap();
    assert_eq!(seen, [16, 32, 40]);
    seen.clear();
    let whole = evaluate_in_chunks(&model, &vocab, &prompts, &spec, 0, EVAL_CHUNK, &mut |n| {
        seen.push(n)
    });
    assert_eq!((whole.unwrap(), seen), (e, vec![40]));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The train log with the wall-clock column zeroed.
fn log_without_seconds(dir: &Path) -> Vec<TrainLogRow> {
    let mut rows: Vec<TrainLogRow> = crate::files::read_csv(&dir.join(TRAIN_LOG_FILE)).unwrap();
    for r in &mut rows {
        r.seconds = 0.0;
    }
    rows
}

fn final_params(dir: &Path, cfg: &TinyCellConfig) -> Vec<(String, Vec<u32>)> {
    let model = Gpt::from_checkpoint(
        cfg.gpt_config().unwrap(),
        dir.join(format!("ckpt-{:08}", cfg.rl.steps))
            .join("model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    model
        .params()
        .into_iter()
        .map(|(n, v)| {
            let bits = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect();
            (n, bits)
        })
        .collect()
}

fn assert_same_results(a: &Path, b: &Path, cfg: &TinyCellConfig) {
    assert_eq!(log_without_seconds(a), log_without_seconds(b));
    assert_eq!(read(&a.join(EVAL_FILE)), read(&b.join(EVAL_FILE)));
    assert_eq!(read(&a.join(FORMAT_FILE)), read(&b.join(FORMAT_FILE)));
    assert!(
        final_params(a, cfg) == final_params(b, cfg),
        "final parameters differ"
    );
}

#[test]
fn same_config_gives_identical_files() {
    let root = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pkpo_loo_minus_one:k=4");
    let mut seen = Vec::new();
    let a = run_tiny_cell(
        &cfg,
        &root.path().join("a"),
        &root.path().join("cache_a"),
        &mut |p| seen.push(p),
    )
    .unwrap();
    let b = run_tiny_cell(
        &cfg,
        &root.path().join("b"),
        &root.path().join("cache_b"),
        &mut |_| {},
    )
    .unwrap();
    assert!(a.completed && b.completed);
    assert_eq!(a.train_log.len(), 4);
    // Evaluations at 0, 2 and 4: 3 families-or-all x 2 ks each (some families may be absent).
    let steps: Vec<u64> = a.eval.iter().map(|r| r.step).collect();
    assert!(steps.contains(&0) && steps.contains(&2) && steps.contains(&4));
    assert!(seen
        .iter()
        .any(|p| p.phase == Phase::Rl && p.step == 4 && p.total == 4));
    assert_same_summary(&a.summary, &b.summary);
    assert_same_results(&root.path().join("a"), &root.path().join("b"), &cfg);
    let on_disk: TinySummary =
        crate::files::read_json(&root.path().join("a").join(SUMMARY_FILE)).unwrap();
    assert_eq!(on_disk.final_eval, a.summary.final_eval);
    assert!(!a.summary.warm_start.is_empty() && !a.summary.final_eval.is_empty());
    // `passk warm-starts` profiles a warm start with exactly the cell's step-0 evaluation.
    let model = warm_start(&cfg, &root.path().join("cache_a")).unwrap();
    let profile = warm_start_profile(&cfg, &model).unwrap();
    let step0: Vec<EvalRow> = a.eval.iter().filter(|r| r.step == 0).cloned().collect();
    assert_eq!(profile.rows, step0);
}

fn assert_same_summary(a: &TinySummary, b: &TinySummary) {
    let mut a = a.clone();
    let mut b = b.clone();
    a.wall_seconds = 0.0;
    b.wall_seconds = 0.0;
    assert_eq!(a, b);
}

#[test]
fn kill_and_resume_gives_bit_identical_results() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    cfg.rl.steps = 5;
    cfg.checkpoint_every = 2;
    // Probes at 0, 2, 4 and 5: the one at step 2 is repeated after the resume.
    cfg.probe = crate::CellProbe {
        every: 2,
        at_start: true,
        settings: crate::ProbeConfig {
            n_prompts: 6,
            n_samples: 4,
            ks: vec![1, 4],
            bootstrap: 20,
            ..crate::ProbeConfig::default()
        },
    };
    let cache = root.path().join("cache");
    let full = root.path().join("full");
    let whole = run_tiny_cell(&cfg, &full, &cache, &mut |_| {}).unwrap();
    assert_eq!(whole.summary.resumed_from_step, None);

    let cut = root.path().join("cut");
    let opts = RunOptions {
        stop_after: Some(3),
        ..RunOptions::default()
    };
    let partial = run_tiny_cell_with(&cfg, &cut, &cache, &mut |_| {}, &opts).unwrap();
    assert!(!partial.completed);
    assert_eq!(partial.train_log.len(), 3);
    assert!(!cut.join(SUMMARY_FILE).exists());
    // The last checkpoint is at step 2; step 2 is redone after the resume.
    let resumed = run_tiny_cell(&cfg, &cut, &cache, &mut |_| {}).unwrap();
    assert_eq!(resumed.summary.resumed_from_step, Some(2));
    assert!(resumed.completed);
    assert_same_results(&full, &cut, &cfg);
    for step in [0, 2, 4, 5] {
        let (a, b) = (probe_dir(&full, step), probe_dir(&cut, step));
        for f in ["prompts.csv", "gram.f32", "summary.csv"] {
            assert_eq!(read(&a.join(f)), read(&b.join(f)), "probe step {step} {f}");
        }
    }
    let mut a = whole.summary.clone();
    a.resumed_from_step = Some(2);
    assert_same_summary(&a, &resumed.summary);
    // Only the latest checkpoint directory is kept.
    let ckpts = std::fs::read_dir(&cut)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("ckpt-")
        })
        .count();
    assert_eq!(ckpts, 1);
    // A different config refuses to resume this directory.
    let mut other = cfg.clone();
    other.rl.lr *= 2.0;
    match run_tiny_cell(&other, &cut, &cache, &mut |_| {}) {
        Err(TrainError::Checkpoint { .. }) => {}
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

/// `pass2` times the pass@2 PKPO weights plus `pass1` times pass@1 RLOO's, projected against
/// pass@1 RLOO: with `pass2 = 0` its gradient is exactly parallel (`pass1 > 0`) or opposed
/// (`pass1 < 0`) to the anchor's; otherwise partly conflicting.
struct ProjectedMix {
    pass2: f64,
    pass1: f64,
}

impl passk_core::objective::Objective for ProjectedMix {
    fn name(&self) -> String {
        format!("projected_mix:{},{}", self.pass2, self.pass1)
    }
    fn weights(&self, rewards: &[f64]) -> std::result::Result<Vec<f64>, passk_core::CoreError> {
        let a = objective_from_spec("pkpo_loo_minus_one:k=2")
            .unwrap()
            .weights(rewards)?;
        let b = objective_from_spec("pass1_rloo")
            .unwrap()
            .weights(rewards)?;
        Ok(a.iter()
            .zip(b)
            .map(|(x, y)| self.pass2 * x + self.pass1 * y)
            .collect())
    }
    fn k(&self) -> u32 {
        2
    }
    fn unbiased(&self) -> bool {
        false
    }
    fn projection_anchor(&self) -> Option<Box<dyn passk_core::objective::Objective>> {
        Some(objective_from_spec("pass1_rloo").unwrap())
    }
}

#[test]
fn the_projected_update_removes_only_the_opposing_component() {
    let vocab = Vocab::synthetic();
    let groups = fixed_groups(&vocab);
    let anchor = objective_from_spec("pass1_rloo").unwrap();
    let snapshot = |m: &Gpt| -> Vec<Vec<f32>> {
        m.params()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    // Opposed (g = -a): the projection leaves nothing, so SGD does not move the weights.
    let model = nano();
    let before = snapshot(&model);
    let mut opt = Optimizer::new(OptimizerKind::Sgd, 0.5, &model.params()).unwrap();
    let (norm, cos) = apply_projected_update(
        &model,
        &mut opt,
        &vocab,
        &groups,
        &ProjectedMix {
            pass2: 0.0,
            pass1: -1.0,
        },
        anchor.as_ref(),
        1e9,
        0,
    )
    .unwrap();
    assert!((cos.unwrap() + 1.0).abs() < 1e-5, "cos {cos:?}");
    let moved: f32 = before
        .iter()
        .zip(snapshot(&model))
        .flat_map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f32::max);
    assert!(moved < 1e-6, "opposed step moved a weight by {moved}");
    assert!(norm < 1e-3, "projected norm {norm}");
    // Agreeing (g = 2a): no projection, the step equals the plain update of the same loss.
    let (a, b) = (nano(), nano());
    let mut opt_a = Optimizer::new(OptimizerKind::Sgd, 0.5, &a.params()).unwrap();
    let mut opt_b = Optimizer::new(OptimizerKind::Sgd, 0.5, &b.params()).unwrap();
    let doubled = ProjectedMix {
        pass2: 0.0,
        pass1: 2.0,
    };
    let (_, cos) = apply_projected_update(
        &a,
        &mut opt_a,
        &vocab,
        &groups,
        &doubled,
        anchor.as_ref(),
        1e9,
        0,
    )
    .unwrap();
    assert!((cos.unwrap() - 1.0).abs() < 1e-5, "cos {cos:?}");
    let loss = policy_loss(&b, &vocab, &groups, &doubled).unwrap();
    apply_update(&b, &mut opt_b, loss, 1e9, 0).unwrap();
    assert_eq!(snapshot(&a), snapshot(&b));
}

#[test]
fn a_conflicting_projected_sgd_step_is_orthogonal_to_the_anchor_gradient() {
    let vocab = Vocab::synthetic();
    let groups = fixed_groups(&vocab);
    let anchor = objective_from_spec("pass1_rloo").unwrap();
    let flat = |m: &Gpt| -> Vec<f64> {
        m.params()
            .iter()
            .flat_map(|(_, v)| {
                let t: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                t.into_iter().map(f64::from)
            })
            .collect()
    };
    let model = nano();
    // the anchor's gradient at the starting point, flattened in parameter order
    let anchor_loss = policy_loss(&model, &vocab, &groups, anchor.as_ref())
        .unwrap()
        .unwrap();
    let grads = anchor_loss.backward().unwrap();
    let a: Vec<f64> = model
        .params()
        .iter()
        .flat_map(|(_, v)| {
            let g: Vec<f32> = grads
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            g.into_iter().map(f64::from)
        })
        .collect();
    let before = flat(&model);
    let mut opt = Optimizer::new(OptimizerKind::Sgd, 0.1, &model.params()).unwrap();
    let objective = ProjectedMix {
        pass2: 1.0,
        pass1: -3.0,
    };
    let (_, cos) = apply_projected_update(
        &model,
        &mut opt,
        &vocab,
        &groups,
        &objective,
        anchor.as_ref(),
        1e9,
        0,
    )
    .unwrap();
    let cos = cos.unwrap();
    assert!(
        cos < 0.0 && cos > -0.999,
        "not a partial conflict: cos {cos}"
    );
    let step: Vec<f64> = flat(&model)
        .iter()
        .zip(&before)
        .map(|(x, y)| x - y)
        .collect();
    let dot: f64 = step.iter().zip(&a).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let step_cos = dot / (norm(&step) * norm(&a));
    assert!(norm(&step) > 0.0);
    assert!(step_cos.abs() < 1e-3, "step against anchor: cos {step_cos}");
}

/// `scale` times pass@1 RLOO's weights, projected against pass@1 RLOO with the anchor added
/// back (as `group_projected` does).
struct AddsAnchor {
    scale: f64,
}

impl passk_core::objective::Objective for AddsAnchor {
    fn name(&self) -> String {
        format!("adds_anchor:{}", self.scale)
    }
    fn weights(&self, rewards: &[f64]) -> std::result::Result<Vec<f64>, passk_core::CoreError> {
        let w = objective_from_spec("pass1_rloo")
            .unwrap()
            .weights(rewards)?;
        Ok(w.iter().map(|x| self.scale * x).collect())
    }
    fn k(&self) -> u32 {
        1
    }
    fn unbiased(&self) -> bool {
        false
    }
    fn projection_anchor(&self) -> Option<Box<dyn passk_core::objective::Objective>> {
        Some(objective_from_spec("pass1_rloo").unwrap())
    }
    fn projection_adds_anchor(&self) -> bool {
        true
    }
}

#[test]
fn a_projection_that_adds_the_anchor_back_keeps_the_anchor_step() {
    let vocab = Vocab::synthetic();
    let groups = fixed_groups(&vocab);
    let anchor = objective_from_spec("pass1_rloo").unwrap();
    let params = |m: &Gpt| -> Vec<Vec<f32>> {
        m.params()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    // Opposed (g = -a) and empty (g = 0): the projected g vanishes, the step is a's alone.
    for scale in [-1.0, 0.0] {
        let (a, b) = (nano(), nano());
        let mut opt_a = Optimizer::new(OptimizerKind::Sgd, 0.5, &a.params()).unwrap();
        let mut opt_b = Optimizer::new(OptimizerKind::Sgd, 0.5, &b.params()).unwrap();
        let objective = AddsAnchor { scale };
        apply_projected_update(
            &a,
            &mut opt_a,
            &vocab,
            &groups,
            &objective,
            anchor.as_ref(),
            1e9,
            0,
        )
        .unwrap();
        let loss = policy_loss(&b, &vocab, &groups, anchor.as_ref()).unwrap();
        apply_update(&b, &mut opt_b, loss, 1e9, 0).unwrap();
        let (pa, pb) = (params(&a), params(&b));
        let gap = pa
            .iter()
            .flatten()
            .zip(pb.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(gap < 1e-6, "scale {scale}: steps differ by {gap}");
    }
}
