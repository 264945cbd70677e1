//! Interference statistics of one probe: per-prompt agreement, `⟨∇J_k, ∇J_1⟩` with bootstrap
//! intervals, cosines, k*, family blocks and a trimmed variant.

use std::collections::BTreeMap;

use passk_core::estimators::w_k;
use passk_core::interference::{conflict, k_star, try_agreement, try_block_inner, Gram};
use passk_core::rng::{seeded, uniform_index};
use passk_core::stats::{quantile_sorted, trimmed_mean};
use passk_schema::probe::{block_label, ProbeSummaryRow, BLOCK_GLOBAL, BLOCK_TRIMMED};
use serde::{Deserialize, Serialize};

use super::config::ProbeConfig;
use super::streams;
use crate::error::Result;

/// Level of every bootstrap interval of the probe.
pub const PROBE_CI_LEVEL: f64 = 0.95;

/// What the probe found for one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePromptStat {
    /// Family name (the true rule).
    pub family: String,
    /// Samples drawn (n).
    pub n_samples: usize,
    /// Correct samples (c).
    pub n_correct: usize,
    /// `p̂ = c / n`.
    pub p_hat: f64,
    /// `w_k(p̂) = k (1 − p̂)^(k−1)` for every k of the config, in order (a plug-in value).
    pub w_k: Vec<f64>,
    /// Agreement `â(x) = (1/N) Σ_x' κ̂(x, x')` (split-half diagonal): `⟨∇p(x), ∇J_1⟩`.
    pub agreement: f64,
    /// The unbiased diagonal `κ̂(x, x) = ⟨ĝ_A, ĝ_B⟩` (may be negative).
    pub kappa_self: f64,
    /// The naive diagonal `‖(ĝ_A + ĝ_B)/2‖²` (biased upward; for comparison only).
    pub kappa_self_naive: f64,
}

/// Everything one probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The training step the probe belongs to (0 = warm start).
    pub step: u64,
    /// The k values, in config order.
    pub ks: Vec<u32>,
    /// Per-prompt statistics, in probe-set order.
    pub prompts: Vec<ProbePromptStat>,
    /// The split-half Gram matrix `κ̂` (every entry unbiased for κ; not necessarily PSD).
    pub gram: Gram,
    /// Per k and block: [`BLOCK_GLOBAL`], [`BLOCK_TRIMMED`], then every ordered family pair.
    pub summary: Vec<ProbeSummaryRow>,
    /// The smallest k of the config whose global `⟨∇J_k, ∇J_1⟩` is negative, if any.
    pub k_star: Option<u32>,
}

impl ProbeResult {
    /// The summary row of `k` and `block`, if present.
    pub fn row(&self, k: u32, block: &str) -> Option<&ProbeSummaryRow> {
        self.summary.iter().find(|r| r.k == k && r.block == block)
    }
}

/// Per-prompt sample counts and family labels, the input of [`compute`] beside the Gram.
pub(crate) struct PromptCounts<'a> {
    pub n_samples: &'a [usize],
    pub n_correct: &'a [usize],
    pub families: &'a [String],
}

/// `gram` with its diagonal replaced by `diag`.
fn with_diagonal(gram: &Gram, diag: &[f64]) -> Gram {
    let mut g = gram.clone();
    for (i, d) in diag.iter().enumerate() {
        g.set(i, i, *d);
    }
    g
}

/// `Σ_{i,i'∈rows} u_i u_i' G_ii'`.
fn quad(gram: &Gram, u: &[f64], rows: &[usize]) -> f64 {
    rows.iter()
        .map(|&i| u[i] * rows.iter().map(|&j| u[j] * gram.get(i, j)).sum::<f64>())
        .sum()
}

fn cosine(inner: f64, a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        inner / (a.sqrt() * b.sqrt())
    } else {
        f64::NAN
    }
}

/// The trimmed mean of `values[i]` repeated `counts[i]` times.
fn trimmed_weighted(values: &[f64], counts: &[usize], trim: f64) -> f64 {
    let mut pairs: Vec<(f64, usize)> = values
        .iter()
        .zip(counts)
        .filter(|(_, &c)| c > 0)
        .map(|(&v, &c)| (v, c))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: usize = counts.iter().sum();
    let cut = (trim * total as f64).floor() as usize;
    let (lo, hi) = (cut, total - cut);
    let (mut pos, mut sum) = (0usize, 0.0);
    for (v, c) in pairs {
        let start = pos.max(lo);
        let end = (pos + c).min(hi);
        if end > start {
            sum += v * (end - start) as f64;
        }
        pos += c;
    }
    sum / (hi - lo) as f64
}

/// The statistics of [`ProbeResult`] from a split-half Gram, the naive diagonal and the counts.
/// Bootstrap replicates resample prompts with replacement (counts `c_i`) from the stream
/// `(seed, PROBE_BOOTSTRAP, step)`; every statistic is evaluated on the same replicates.
pub(crate) fn compute(
    gram: Gram,
    naive_diag: &[f64],
    counts: PromptCounts<'_>,
    cfg: &ProbeConfig,
    seed: u64,
    step: u64,
) -> Result<ProbeResult> {
    let n = gram.len();
    let nf = n as f64;
    let mass = vec![1.0; n];
    let p_hat: Vec<f64> = counts
        .n_correct
        .iter()
        .zip(counts.n_samples)
        .map(|(&c, &s)| c as f64 / s as f64)
        .collect();
    let ks = &cfg.ks;
    let naive_gram = with_diagonal(&gram, naive_diag);
    let agreement = try_agreement(&gram, &mass)?;
    let conflicts = conflict(&gram, &mass, &p_hat, ks)?;
    let naive_conflicts = conflict(&naive_gram, &mass, &p_hat, ks)?;
    // weights[ki][i] = w_k(p̂_i)
    let weights: Vec<Vec<f64>> = ks
        .iter()
        .map(|&k| p_hat.iter().map(|&p| w_k(p, k)).collect())
        .collect();
    let mut by_family: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, f) in counts.families.iter().enumerate() {
        by_family.entry(f.as_str()).or_default().push(i);
    }
    let fams: Vec<(&str, &Vec<usize>)> = by_family.iter().map(|(f, r)| (*f, r)).collect();

    // Point estimates.
    let mut summary = Vec::new();
    let ones = vec![1.0; n];
    for (ki, &k) in ks.iter().enumerate() {
        let c = &conflicts[ki];
        let nc = &naive_conflicts[ki];
        summary.push(ProbeSummaryRow {
            k,
            block: BLOCK_GLOBAL.to_string(),
            inner: c.inner,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            cosine: c.cosine.unwrap_or(f64::NAN),
            naive_cosine: nc.cosine.unwrap_or(f64::NAN),
        });
        let terms: Vec<f64> = (0..n).map(|i| weights[ki][i] * agreement[i]).collect();
        summary.push(ProbeSummaryRow {
            k,
            block: BLOCK_TRIMMED.to_string(),
            inner: trimmed_mean(&terms, cfg.trim),
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            cosine: f64::NAN,
            naive_cosine: f64::NAN,
        });
        for &(fa, rows) in &fams {
            for &(fb, cols) in &fams {
                let inner = try_block_inner(&gram, &mass, &p_hat, k, rows, cols)?;
                let cos = |g: &Gram| {
                    cosine(
                        inner * nf * nf,
                        quad(g, &weights[ki], rows),
                        quad(g, &ones, cols),
                    )
                };
                summary.push(ProbeSummaryRow {
                    k,
                    block: block_label(fa, fb),
                    inner,
                    ci_low: f64::NAN,
                    ci_high: f64::NAN,
                    cosine: cos(&gram),
                    naive_cosine: cos(&naive_gram),
                });
            }
        }
    }

    // Bootstrap over prompts: one replicate gives every statistic (same order as `summary`).
    if cfg.bootstrap > 0 {
        let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(cfg.bootstrap); summary.len()];
        let mut rng = seeded(seed, &[streams::PROBE_BOOTSTRAP, step]);
        let mut cnt = vec![0usize; n];
        let mut v_fam = vec![vec![0.0f64; n]; fams.len()];
        let mut v_all = vec![0.0f64; n];
        let mut terms = vec![0.0f64; n];
        for _ in 0..cfg.bootstrap {
            cnt.iter_mut().for_each(|c| *c = 0);
            for _ in 0..n {
                cnt[uniform_index(&mut rng, n)] += 1;
            }
            for (fi, &(_, cols)) in fams.iter().enumerate() {
                for (i, v) in v_fam[fi].iter_mut().enumerate() {
                    *v = cols
                        .iter()
                        .map(|&j| cnt[j] as f64 * gram.get(i, j))
                        .sum::<f64>();
                }
            }
            for i in 0..n {
                v_all[i] = v_fam.iter().map(|v| v[i]).sum();
            }
            let mut slot = 0;
            for w in &weights {
                let global: f64 = (0..n).map(|i| cnt[i] as f64 * w[i] * v_all[i]).sum();
                reps[slot].push(global / (nf * nf));
                for i in 0..n {
                    terms[i] = w[i] * v_all[i] / nf;
                }
                reps[slot + 1].push(trimmed_weighted(&terms, &cnt, cfg.trim));
                slot += 2;
                for &(_, rows) in &fams {
                    for v in &v_fam {
                        let s: f64 = rows.iter().map(|&i| cnt[i] as f64 * w[i] * v[i]).sum();
                        reps[slot].push(s / (nf * nf));
                        slot += 1;
                    }
                }
            }
        }
        let alpha = 1.0 - PROBE_CI_LEVEL;
        for (row, mut r) in summary.iter_mut().zip(reps) {
            r.sort_by(f64::total_cmp);
            row.ci_low = quantile_sorted(&r, 0.5 * alpha);
            row.ci_high = quantile_sorted(&r, 1.0 - 0.5 * alpha);
        }
    }

    let prompts = (0..n)
        .map(|i| ProbePromptStat {
            family: counts.families[i].clone(),
            n_samples: counts.n_samples[i],
            n_correct: counts.n_correct[i],
            p_hat: p_hat[i],
            w_k: weights.iter().map(|w| w[i]).collect(),
            agreement: agreement[i],
            kappa_self: gram.get(i, i),
            kappa_self_naive: naive_diag[i],
        })
        .collect();
    Ok(ProbeResult {
        step,
        ks: ks.clone(),
        prompts,
        gram,
        summary,
        k_star: k_star(&conflicts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeMode;

    fn cfg(bootstrap: usize) -> ProbeConfig {
        ProbeConfig {
            n_prompts: 4,
            n_samples: 4,
            ks: vec![1, 2, 4],
            mode: ProbeMode::Exact,
            memory_budget_mb: 1,
            bootstrap,
            trim: 0.25,
        }
    }

    #[test]
    fn trimmed_weighted_matches_trimmed_mean_of_the_expansion() {
        let values = [3.0, -1.0, 10.0, 0.5];
        let counts = [2, 0, 1, 3];
        let expanded = [3.0, 3.0, 10.0, 0.5, 0.5, 0.5];
        for trim in [0.0, 0.1, 0.2, 0.34, 0.49] {
            let a = trimmed_weighted(&values, &counts, trim);
            let b = trimmed_mean(&expanded, trim);
            assert!((a - b).abs() < 1e-12, "trim {trim}: {a} vs {b}");
        }
    }

    /// Four prompts in two families on the two-prompt bandit of docs/theory.md §4.4 (duplicated):
    /// the global inner products equal the published test vectors and the blocks sum to them.
    #[test]
    fn statistics_reproduce_the_bandit_test_vectors() {
        // κ from docs/theory.md §4.4: p_e = 0.880797, p_h = 0.047426, κ(e,h) = −0.0237163, and
        // the diagonals implied by a_e, a_h (a_e = (κ_ee + κ_eh)/2, a_h = (κ_eh + κ_hh)/2).
        let keh = -0.0237163;
        let kee = 2.0 * 0.0157010 - keh;
        let khh = 2.0 * -0.0016535 - keh;
        let idx = [0usize, 1, 0, 1]; // e, h, e, h
        let k = [[kee, keh], [keh, khh]];
        let mut gram = Gram::new(4);
        for i in 0..4 {
            for j in i..4 {
                gram.set(i, j, k[idx[i]][idx[j]]);
            }
        }
        // p̂ must be c/n: use n = 1_000_000 samples so c/n hits p to 6 digits.
        let n_samples = vec![1_000_000; 4];
        let n_correct = vec![880_797, 47_426, 880_797, 47_426];
        let families: Vec<String> = ["e", "h", "e", "h"].map(String::from).to_vec();
        let diag = gram.diagonal();
        let r = compute(
            gram,
            &diag,
            PromptCounts {
                n_samples: &n_samples,
                n_correct: &n_correct,
                families: &families,
            },
            &cfg(200),
            7,
            0,
        )
        .unwrap();
        for (k, want) in [(1, 0.0070237), (2, 0.0002965), (4, -0.0028053)] {
            let g = r.row(k, BLOCK_GLOBAL).unwrap();
            assert!(
                (g.inner - want).abs() < 2e-6,
                "k = {k}: {} vs {want}",
                g.inner
            );
            let blocks: f64 = ["e->e", "e->h", "h->e", "h->h"]
                .iter()
                .map(|b| r.row(k, b).unwrap().inner)
                .sum();
            assert!((blocks - g.inner).abs() < 1e-12);
            assert!(g.ci_low <= g.ci_high);
        }
        let c2 = r.row(2, BLOCK_GLOBAL).unwrap().cosine;
        assert!((c2 - 0.02999).abs() < 2e-4, "cosine k=2 {c2}");
        assert_eq!(r.k_star, Some(4));
        assert!((r.prompts[0].agreement - 0.0157010).abs() < 1e-7);
        // The naive diagonal equals the real one here, so the cosines agree.
        assert_eq!(
            r.row(4, BLOCK_GLOBAL).unwrap().naive_cosine,
            r.row(4, BLOCK_GLOBAL).unwrap().cosine
        );
    }

    #[test]
    fn bootstrap_interval_covers_the_estimate_and_is_seeded() {
        let mut gram = Gram::new(6);
        for i in 0..6 {
            for j in i..6 {
                gram.set(
                    i,
                    j,
                    ((i * 5 + j * 3) % 7) as f64 - 3.0 + if i == j { 6.0 } else { 0.0 },
                );
            }
        }
        let diag = gram.diagonal();
        let n_samples = vec![8; 6];
        let n_correct = vec![1, 2, 3, 4, 5, 6];
        let families: Vec<String> = ["a", "b", "a", "b", "a", "b"].map(String::from).to_vec();
        let run = |seed| {
            compute(
                gram.clone(),
                &diag,
                PromptCounts {
                    n_samples: &n_samples,
                    n_correct: &n_correct,
                    families: &families,
                },
                &cfg(300),
                seed,
                3,
            )
            .unwrap()
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
        for row in &a.summary {
            assert!(row.ci_low <= row.ci_high, "{row:?}");
            assert!(row.ci_low.is_finite() && row.ci_high.is_finite(), "{row:?}");
        }
        let g = a.row(2, BLOCK_GLOBAL).unwrap();
        assert!(g.ci_low < g.inner && g.inner < g.ci_high, "{g:?}");
        // Without resamples the intervals are NaN.
        let none = compute(
            gram.clone(),
            &diag,
            PromptCounts {
                n_samples: &n_samples,
                n_correct: &n_correct,
                families: &families,
            },
            &cfg(0),
            1,
            3,
        )
        .unwrap();
        assert!(none
            .summary
            .iter()
            .all(|r| r.ci_low.is_nan() && r.ci_high.is_nan()));
    }
}
