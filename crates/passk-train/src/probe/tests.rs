//! Validation of the probe on a toy where the exact kernel is known by enumeration: a `nano`
//! transformer, prompts of two tokens, completions of at most two tokens (every completion is
//! enumerable), and a reward that depends on both completion tokens.

use candle_core::{Device, Tensor};
use passk_core::estimators::w_k;
use passk_core::rng::seeded;
use passk_policy::{Gpt, GptConfig, SamplingParams};
use passk_tasks::{Mixture, MixtureConfig, Split, Tokenizer};
use rand::RngCore;

use super::gradients::weighted_gradient;
use super::*;
use crate::batch::{logprobs, Vocab};

const PAD: u32 = 0;
const BOS: u32 = 1;
const EOS: u32 = 2;
/// Completions stop after two tokens.
const MAX_NEW: usize = 2;

/// The toy: a nano model and, per prompt, the set of first tokens that can earn the reward.
/// The second token must be one of `SECOND` (any first-token match followed by `<eos>` or
/// another token outside `SECOND` fails).
struct Toy {
    model: Gpt,
    prompts: Vec<Vec<u32>>,
    first: Vec<Vec<u32>>,
    families: Vec<String>,
}

/// Second tokens that complete a correct answer.
const SECOND: std::ops::Range<u32> = 3..20;

impl Toy {
    /// Prompt `i` rewards first tokens `first[i]`; families alternate `easy`/`hard` by set size.
    fn new(first: Vec<Vec<u32>>, seed: u64) -> Self {
        let vocab = Vocab::synthetic().tok.vocab_size();
        let model = Gpt::new(GptConfig::nano(vocab), seed, &Device::Cpu).unwrap();
        let prompts = (0..first.len()).map(|i| vec![BOS, 3 + i as u32]).collect();
        let families = first
            .iter()
            .map(|s| if s.len() > 4 { "easy" } else { "hard" }.to_string())
            .collect();
        Self {
            model,
            prompts,
            first,
            families,
        }
    }

    fn two_prompts() -> Self {
        // An easy prompt (12 rewarded first tokens) and a hard one (2 other first tokens).
        Self::new(vec![(5..17).collect(), vec![20, 21]], 17)
    }

    fn reward(&self, prompt: usize, c: &[u32]) -> f64 {
        let ok = c.len() == 2 && self.first[prompt].contains(&c[0]) && SECOND.contains(&c[1]);
        f64::from(u8::from(ok))
    }

    /// Every completion the sampler can produce with `MAX_NEW` = 2.
    fn completions(&self) -> Vec<Vec<u32>> {
        let v = self.model.config().vocab_size as u32;
        let mut out = vec![vec![EOS]];
        for a in (0..v).filter(|&a| a != EOS) {
            for b in 0..v {
                out.push(vec![a, b]);
            }
        }
        out
    }

    /// Exact `p(x)` and `∇p(x)` (flattened, f64) of every prompt, by enumeration.
    fn exact(&self) -> (Vec<f64>, Vec<Vec<f64>>) {
        let all = self.completions();
        let params = self.model.params();
        let mut ps = Vec::new();
        let mut grads = Vec::new();
        for (x, prompt) in self.prompts.iter().enumerate() {
            let rows: Vec<(&[u32], &[u32])> = all
                .iter()
                .map(|c| (prompt.as_slice(), c.as_slice()))
                .collect();
            let lp = logprobs(&self.model, &rows, EOS, PAD).unwrap();
            let total: f64 = lp.iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "enumeration covers {total}");
            let w: Vec<f64> = all
                .iter()
                .zip(&lp)
                .map(|(c, l)| self.reward(x, c) * l.exp())
                .collect();
            ps.push(w.iter().sum());
            let g = weighted_gradient(&self.model, &params, prompt, &all, &w, EOS, PAD).unwrap();
            grads.push(g.iter().map(|v| f64::from(*v)).collect());
        }
        (ps, grads)
    }

    /// Exact `J_1` (mean of p over the prompts).
    fn j1(&self) -> f64 {
        let p = self.exact_p();
        p.iter().sum::<f64>() / p.len() as f64
    }

    fn exact_p(&self) -> Vec<f64> {
        let all = self.completions();
        self.prompts
            .iter()
            .enumerate()
            .map(|(x, prompt)| {
                let rows: Vec<(&[u32], &[u32])> = all
                    .iter()
                    .map(|c| (prompt.as_slice(), c.as_slice()))
                    .collect();
                let lp = logprobs(&self.model, &rows, EOS, PAD).unwrap();
                all.iter()
                    .zip(&lp)
                    .map(|(c, l)| self.reward(x, c) * l.exp())
                    .sum()
            })
            .collect()
    }

    /// `n` sampled completions per prompt with rewards, from streams `(seed, 99, step, p, s)`.
    fn groups(&self, n: usize, seed: u64, step: u64) -> Vec<Group> {
        let samples = self
            .model
            .sample(
                &self.prompts,
                n,
                MAX_NEW,
                EOS,
                SamplingParams {
                    temperature: 1.0,
                    top_p: 1.0,
                },
                |p, s| seeded(seed, &[99, step, p as u64, s as u64]).next_u64(),
            )
            .unwrap();
        (0..self.prompts.len())
            .map(|p| {
                let completions = samples[p * n..(p + 1) * n].to_vec();
                let rewards = completions.iter().map(|c| self.reward(p, c)).collect();
                Group {
                    prompt: self.prompts[p].clone(),
                    completions,
                    rewards,
                }
            })
            .collect()
    }

    fn probe(&self, n: usize, cfg: &ProbeConfig, seed: u64, step: u64) -> ProbeResult {
        let groups = self.groups(n, seed, step);
        probe_groups(
            &self.model,
            EOS,
            PAD,
            &groups,
            &self.families,
            cfg,
            seed,
            step,
        )
        .unwrap()
    }

    /// Adds `eta · direction` (flattened, name order) to the parameters.
    fn shift(&self, direction: &[f64], eta: f64) {
        let mut offset = 0;
        for (_, var) in self.model.params() {
            let n = var.elem_count();
            let d: Vec<f32> = direction[offset..offset + n]
                .iter()
                .map(|v| (eta * v) as f32)
                .collect();
            let d = Tensor::from_vec(d, var.shape(), &Device::Cpu).unwrap();
            var.set(&(var.as_tensor() + d).unwrap()).unwrap();
            offset += n;
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn exact_gram(grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
    grads
        .iter()
        .map(|a| grads.iter().map(|b| dot(a, b)).collect())
        .collect()
}

fn cfg(ks: Vec<u32>, bootstrap: usize) -> ProbeConfig {
    ProbeConfig {
        n_prompts: 2,
        n_samples: 4,
        ks,
        mode: ProbeMode::Exact,
        memory_budget_mb: 256,
        bootstrap,
        trim: 0.1,
    }
}

#[test]
fn probe_gram_converges_to_the_exact_kernel() {
    let toy = Toy::two_prompts();
    let (p, grads) = toy.exact();
    let kappa = exact_gram(&grads);
    println!("exact p = {p:?}, kappa = {kappa:?}");
    let frob: f64 = kappa.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    let cfg = cfg(vec![1], 0);
    let mut errs = Vec::new();
    for n in [64usize, 1024] {
        let reps = 4;
        let mut err = 0.0;
        for rep in 0..reps {
            let r = toy.probe(n, &cfg, 100 + rep, 0);
            let e: f64 = (0..2)
                .flat_map(|i| (0..2).map(move |j| (i, j)))
                .map(|(i, j)| (r.gram.get(i, j) - kappa[i][j]).powi(2))
                .sum::<f64>()
                .sqrt();
            err += e / frob / reps as f64;
        }
        println!("n = {n}: mean relative Frobenius error {err:.4}");
        errs.push(err);
    }
    // 16× the samples: the error should fall about 4× (1/sqrt(n)); demand at least 2×.
    assert!(errs[1] < 0.5 * errs[0], "errors {errs:?}");
    assert!(errs[1] < 0.25, "n = 1024 still off by {}", errs[1]);
}

#[test]
fn split_half_diagonal_is_unbiased_and_the_naive_one_is_not() {
    let toy = Toy::two_prompts();
    let (_, grads) = toy.exact();
    let kappa = exact_gram(&grads);
    let cfg = cfg(vec![1], 0);
    let reps = 150;
    let (mut halves, mut naive) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
    for rep in 0..reps {
        let r = toy.probe(8, &cfg, 1000 + rep, 0);
        for i in 0..2 {
            halves[i].push(r.prompts[i].kappa_self);
            naive[i].push(r.prompts[i].kappa_self_naive);
        }
    }
    let mean_se = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        (m, (var / v.len() as f64).sqrt())
    };
    for i in 0..2 {
        let (mh, sh) = mean_se(&halves[i]);
        let (mn, sn) = mean_se(&naive[i]);
        let k = kappa[i][i];
        println!(
            "prompt {i}: exact {k:.4e}, split-half {mh:.4e} ± {sh:.1e}, naive {mn:.4e} ± {sn:.1e}"
        );
        assert!((mh - k).abs() < 4.0 * sh, "split-half diagonal biased");
        assert!(
            mn - k > 4.0 * sn,
            "naive diagonal not visibly biased upward"
        );
        assert!(mn > 1.5 * k, "naive bias too small to show: {mn} vs {k}");
    }
}

#[test]
fn predicted_change_of_pass1_matches_finite_differences() {
    let toy = Toy::two_prompts();
    let (p, grads) = toy.exact();
    let ks = vec![1, 2, 4, 8, 16];
    let r = toy.probe(1024, &cfg(ks.clone(), 200), 5, 0);
    let g1: Vec<f64> = (0..grads[0].len())
        .map(|j| 0.5 * (grads[0][j] + grads[1][j]))
        .collect();
    for &k in &ks {
        let gk: Vec<f64> = (0..grads[0].len())
            .map(|j| 0.5 * (w_k(p[0], k) * grads[0][j] + w_k(p[1], k) * grads[1][j]))
            .collect();
        let exact_inner = dot(&g1, &gk);
        let probe_inner = r.row(k, passk_schema::probe::BLOCK_GLOBAL).unwrap().inner;
        // A step that should move J_1 by about 1e-3; central differences cancel 2nd order.
        let eta = 1e-3 / exact_inner.abs();
        toy.shift(&gk, eta);
        let up = toy.j1();
        toy.shift(&gk, -2.0 * eta);
        let down = toy.j1();
        toy.shift(&gk, eta);
        let measured = 0.5 * (up - down);
        let predicted = eta * probe_inner;
        println!(
            "k = {k}: exact <dJk,dJ1> = {exact_inner:.4e}, probe {probe_inner:.4e}; \
             dJ1 measured {measured:.4e}, exact first order {:.4e}, probe prediction \
             {predicted:.4e}",
            eta * exact_inner
        );
        assert!(
            (measured - eta * exact_inner).abs() < 0.1 * measured.abs(),
            "finite differences disagree with the exact gradient"
        );
        assert_eq!(predicted.signum(), measured.signum(), "k = {k}: sign");
        let ratio = predicted / measured;
        assert!((0.6..1.6).contains(&ratio), "k = {k}: ratio {ratio}");
    }
}

#[test]
fn sketch_mode_approximates_exact_mode_and_improves_with_dim() {
    // Six prompts with different rewarded first tokens; the same samples in every mode.
    let toy = Toy::new(
        vec![
            (5..17).collect(),
            vec![20, 21],
            (5..9).collect(),
            (12..25).collect(),
            vec![7, 22, 23],
            (3..28).collect(),
        ],
        23,
    );
    let groups = toy.groups(16, 8, 0);
    let run = |mode| {
        let cfg = ProbeConfig {
            mode,
            ..cfg(vec![1, 4], 0)
        };
        probe_groups(&toy.model, EOS, PAD, &groups, &toy.families, &cfg, 8, 0).unwrap()
    };
    let exact = run(ProbeMode::Exact);
    let n = exact.gram.len();
    // Scale of each entry's sketch error: ‖m_i‖‖m_j‖ off the diagonal, and on it an upper
    // bound of ‖ĝ_A‖‖ĝ_B‖: (‖ĝ_A‖² + ‖ĝ_B‖²)/2 = 2‖m‖² − ⟨ĝ_A, ĝ_B⟩.
    let naive: Vec<f64> = exact.prompts.iter().map(|p| p.kappa_self_naive).collect();
    let scale = |i: usize, j: usize| {
        if i == j {
            2.0 * naive[i] - exact.gram.get(i, i)
        } else {
            (naive[i] * naive[j]).sqrt()
        }
    };
    let mut mean_err = Vec::new();
    for dim in [256usize, 1024, 4096] {
        let mut errs = Vec::new();
        for seed in 0..3 {
            let s = run(ProbeMode::Sketch { dim, seed });
            for i in 0..n {
                for j in i..n {
                    let diff = (s.gram.get(i, j) - exact.gram.get(i, j)).abs();
                    if scale(i, j) == 0.0 {
                        // A prompt whose rewards were all equal has a zero gradient.
                        assert_eq!(diff, 0.0);
                    } else {
                        errs.push(diff / scale(i, j));
                    }
                }
            }
            let ge = exact
                .row(4, passk_schema::probe::BLOCK_GLOBAL)
                .unwrap()
                .inner;
            let gs = s.row(4, passk_schema::probe::BLOCK_GLOBAL).unwrap().inner;
            if dim == 4096 {
                let w: Vec<f64> = exact.prompts.iter().map(|p| p.w_k[1]).collect();
                let bound: f64 = (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .map(|(i, j)| w[i] * scale(i, j))
                    .sum::<f64>()
                    / (n * n) as f64
                    * 6.0
                    / (dim as f64).sqrt();
                assert!(
                    (gs - ge).abs() < bound,
                    "global k=4: {gs} vs {ge} (bound {bound})"
                );
            }
        }
        let max = errs.iter().cloned().fold(0.0, f64::max);
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        println!("dim {dim}: normalised Gram error mean {mean:.4}, max {max:.4}");
        // The standard deviation of a sketched entry is at most sqrt(2)/sqrt(dim) in these units.
        assert!(
            max < 6.0 / (dim as f64).sqrt(),
            "dim {dim}: max error {max}"
        );
        mean_err.push(mean);
    }
    assert!(
        mean_err[2] < 0.5 * mean_err[0],
        "error does not shrink: {mean_err:?}"
    );
}

#[test]
fn exact_mode_refuses_to_exceed_the_memory_budget() {
    let toy = Toy::new(vec![vec![5]; 6], 1);
    let groups = toy.groups(4, 1, 0);
    let tight = ProbeConfig {
        memory_budget_mb: 1,
        ..cfg(vec![1], 0)
    };
    // 6 prompts × ~106k parameters × 4 bytes ≈ 2.5 MB > 1 MB.
    let err = probe_groups(&toy.model, EOS, PAD, &groups, &toy.families, &tight, 1, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("probe.memory_budget_mb") && err.contains("sketch"),
        "{err}"
    );
    let sketch = ProbeConfig {
        mode: ProbeMode::Sketch { dim: 1024, seed: 3 },
        ..tight.clone()
    };
    probe_groups(&toy.model, EOS, PAD, &groups, &toy.families, &sketch, 1, 0).unwrap();
    // The full entry point checks before sampling anything.
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(MixtureConfig::interference(0.75)).unwrap();
    let set = ProbeSet::from_mixture(&mixture, &vocab, 6, 0).unwrap();
    let err = probe(&toy.model, &vocab, &set, &tight, 0, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sketch"), "{err}");
}

#[test]
fn same_seed_is_bit_identical_and_steps_differ() {
    let toy = Toy::two_prompts();
    let cfg = cfg(vec![1, 2, 8], 100);
    let a = toy.probe(16, &cfg, 3, 4);
    let b = toy.probe(16, &cfg, 3, 4);
    let c = toy.probe(16, &cfg, 3, 5);
    // Debug output compares NaN fields too (PartialEq would not).
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_ne!(a.gram, c.gram);

    // The full pipeline on the task mixture: same seed, same samples and result; a different
    // step draws different samples.
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(MixtureConfig::interference(0.75)).unwrap();
    let set = ProbeSet::from_mixture(&mixture, &vocab, 6, 9).unwrap();
    let full = ProbeConfig {
        n_prompts: 6,
        ..cfg.clone()
    };
    let r1 = probe(&toy.model, &vocab, &set, &full, 9, 0).unwrap();
    let r2 = probe(&toy.model, &vocab, &set, &full, 9, 0).unwrap();
    assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
    let s0 = probe_rollouts(&toy.model, &vocab, &set, 4, 9, 0).unwrap();
    let s0b = probe_rollouts(&toy.model, &vocab, &set, 4, 9, 0).unwrap();
    let s1 = probe_rollouts(&toy.model, &vocab, &set, 4, 9, 1).unwrap();
    assert_eq!(s0, s0b);
    assert_ne!(s0, s1);
}

#[test]
fn probe_set_comes_from_the_probe_split_and_its_own_stream() {
    let vocab = Vocab::synthetic();
    let mixture = Mixture::new(MixtureConfig::interference(0.75)).unwrap();
    let set = ProbeSet::from_mixture(&mixture, &vocab, 32, 4).unwrap();
    assert_eq!(set.len(), 32);
    assert!(set.prompts.iter().all(|p| p.split == Some(Split::Probe)));
    let ids: std::collections::HashSet<_> = set.prompts.iter().map(|p| &p.id).collect();
    assert_eq!(ids.len(), 32, "prompts are distinct");
    // Not the set that the same seed gives the tasks crate's own probe stream.
    let plain = mixture.generate_distinct(Split::Probe, 32, 4).unwrap();
    assert_ne!(set.prompts, plain);
    assert_eq!(set.max_new_tokens, mixture.max_reference_chars() + 1);
    assert_eq!(set.families().len(), 32);
}

#[test]
fn files_round_trip_atomically() {
    let toy = Toy::two_prompts();
    let r = toy.probe(8, &cfg(vec![1, 4], 50), 2, 25);
    let tmp = tempfile::tempdir().unwrap();
    let dir = passk_schema::probe::probe_dir(tmp.path(), 25);
    assert!(dir.ends_with("probe/step-00025"));
    write_probe(&dir, &r).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["gram.f32", "prompts.csv", "summary.csv"]);
    let files = read_probe(&dir).unwrap();
    assert_eq!(files.prompts, probe_prompt_rows(&r));
    // The Gram is stored at f32 precision.
    let expected = probe_gram_rows(&r);
    assert_eq!(files.gram.len(), expected.len());
    for (a, b) in files.gram.iter().zip(&expected) {
        assert_eq!((a.i, a.j), (b.i, b.j));
        assert_eq!(a.kappa, f64::from(b.kappa as f32));
    }
    assert_eq!(files.gram.len(), 3); // upper triangle of 2 × 2
    assert_eq!(files.prompts.len(), 4); // 2 prompts × 2 ks
    assert_eq!(files.summary.len(), r.summary.len());
    for (a, b) in files.summary.iter().zip(&r.summary) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    // 2 ks × (global, trimmed, 4 family blocks).
    assert_eq!(r.summary.len(), 2 * 6);
    assert!(r.row(4, "easy->hard").is_some());
}

#[test]
fn config_validation_names_the_field() {
    let ok = ProbeConfig::default();
    ok.validate().unwrap();
    let json = serde_json::to_string(&ok).unwrap();
    assert_eq!(serde_json::from_str::<ProbeConfig>(&json).unwrap(), ok);
    let sketch = ProbeConfig {
        mode: ProbeMode::Sketch { dim: 4096, seed: 1 },
        ..ok.clone()
    };
    let json = serde_json::to_string(&sketch).unwrap();
    assert!(
        json.contains(r#""mode":{"kind":"sketch","dim":4096,"seed":1}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<ProbeConfig>(&json).unwrap(), sketch);
    let extra = json.replace("\"trim\"", "\"bogus\":1,\"trim\"");
    assert!(serde_json::from_str::<ProbeConfig>(&extra).is_err());
    let cases: Vec<(ProbeConfig, &str)> = vec![
        (
            ProbeConfig {
                n_prompts: 1,
                ..ok.clone()
            },
            "probe.n_prompts",
        ),
        (
            ProbeConfig {
                n_samples: 5,
                ..ok.clone()
            },
            "probe.n_samples",
        ),
        (
            ProbeConfig {
                n_samples: 2,
                ..ok.clone()
            },
            "probe.n_samples",
        ),
        (
            ProbeConfig {
                ks: vec![],
                ..ok.clone()
            },
            "probe.ks",
        ),
        (
            ProbeConfig {
                ks: vec![1, 0],
                ..ok.clone()
            },
            "probe.ks[1]",
        ),
        (
            ProbeConfig {
                mode: ProbeMode::Sketch { dim: 0, seed: 0 },
                ..ok.clone()
            },
            "probe.mode.dim",
        ),
        (
            ProbeConfig {
                memory_budget_mb: 0,
                ..ok.clone()
            },
            "probe.memory_budget_mb",
        ),
        (
            ProbeConfig {
                trim: 0.5,
                ..ok.clone()
            },
            "probe.trim",
        ),
    ];
    for (c, field) in cases {
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
    }
}
