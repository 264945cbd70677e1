//! `experiments/claims.toml`: named claims about results, each a statistic, a comparison and a
//! threshold, evaluated from the files under `results/` only.
//!
//! ```toml
//! [[claim]]
//! name = "exact.conflict_past_kstar"
//! experiment = "theory"              # results/<experiment>/
//! select = { separation = [0.5, 1.0] } # config filters: a value or a list of allowed values
//! statistic = "fraction_with_kstar"  # see `statistic::STATISTICS`
//! op = ">="                          # one of < <= > >=
//! threshold = 1.0
//! why = "why this threshold"
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ReportError;
use passk_core::stats::{mean, one_sided_t_pvalue, t_interval};

use crate::load::{load_theory_cells, TheoryCell};
use crate::tier::Tier;
use crate::tiny::{load_tiny_cells, TinyCell};

/// The probe block of the tiny mixture that carries the interference: pass@k-weighted reversed
/// prompts against the pass@1 direction of forward prompts (docs/feasibility.md §3, round 2).
pub const RF_BLOCK: &str = "reversed_addition->addition";

/// One claim as written in the claims file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Unique name, printed in the verdict table.
    pub name: String,
    /// The experiment whose results it reads.
    pub experiment: String,
    /// Config filters; a cell is used when every key matches.
    #[serde(default)]
    pub select: toml::Table,
    /// A name from [`STATISTICS`] (see [`Claim::stat`]).
    pub statistic: String,
    /// Comparison of the measured value against the threshold.
    pub op: String,
    /// The threshold.
    pub threshold: f64,
    /// Why the threshold is what it is.
    pub why: String,
    /// Read the committed baseline (`results/`) instead of the gate's fresh recomputation: for
    /// experiments too long to recompute in CI. Default false.
    #[serde(default)]
    pub baseline: bool,
    /// The effect size δ of the one-sided tests (`tiny_delta_*_p_*`): H1 is a change beyond
    /// δ; for `tiny_vs_passk_share_ci_low`, the share of the reference's gain. Default 0.
    #[serde(default)]
    pub effect: f64,
    /// The claim is known not to hold on the committed results (its `why` gives the measured
    /// value): the gate expects it to fail, and fails when it unexpectedly holds, so the file
    /// is updated rather than silently outdated. Default false.
    #[serde(default)]
    pub expected_failure: bool,
    /// The reference objective of the paired `tiny_vs_*` statistics (trained from the same
    /// warm starts, at the same q and seeds, in the same experiment); only those take it.
    #[serde(default)]
    pub against: Option<String>,
}

impl Claim {
    /// The statistic it names; `None` for a name [`STATISTICS`] lacks (a loaded claims file
    /// has none: [`load_claims`] refuses them).
    pub fn stat(&self) -> Option<Statistic> {
        Statistic::from_name(&self.statistic)
    }
}

/// A parsed claims file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    /// Experiment files that `cargo xtask check` recomputes from scratch before evaluating.
    pub gate: Vec<String>,
    /// The claims.
    pub claim: Vec<Claim>,
}

/// A claim's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The claim.
    pub claim: Claim,
    /// The statistic the threshold is applied to (a mean, a p-value, a bound of a confidence
    /// interval, ...), when it could be computed.
    pub measured: Option<f64>,
    /// The point estimate `interval` is about (the mean over seeds of the change, difference
    /// or slope), or for a claim without an interval the measured value itself; `None` when
    /// the statistic has no single estimate (probe claims over per-cell intervals).
    pub estimate: Option<f64>,
    /// A 95% confidence interval of `estimate`, when the statistic has one.
    pub interval: Option<(f64, f64)>,
    /// Number of cells the statistic used.
    pub cells: usize,
    /// Whether the gate accepts the verdict: the claim holds, or it is an
    /// [`Claim::expected_failure`] that was evaluated and does not hold.
    pub passed: bool,
    /// Why it failed to evaluate, if it did.
    pub error: Option<String>,
    /// It was not evaluated because the experiment it reads is not under the results
    /// directory (`error` says which and how to get it): the gate's fresh cells, which a plain
    /// `passk check` on a fresh clone lacks. Not a failure unless every claim is required
    /// (`passk check --strict`, what `cargo xtask check` runs).
    pub not_evaluated: bool,
}

/// Parses a claims file; errors name the file and say what is allowed.
pub fn parse_claims(text: &str, path: &Path) -> Result<ClaimsFile, ReportError> {
    let file: ClaimsFile = toml::from_str(text)
        .map_err(|e| ReportError::invalid(path, format!("malformed claims file: {e}")))?;
    let mut names = std::collections::BTreeSet::new();
    for claim in &file.claim {
        if !names.insert(claim.name.clone()) {
            return Err(ReportError::invalid(
                path,
                format!("claim `{}` is defined twice", claim.name),
            ));
        }
        if !["<", "<=", ">", ">="].contains(&claim.op.as_str()) {
            return Err(ReportError::invalid(
                path,
                format!(
                    "claim `{}`: op {:?} is not one of <, <=, >, >=",
                    claim.name, claim.op
                ),
            ));
        }
        if Statistic::from_name(&claim.statistic).is_none() {
            let known: Vec<_> = STATISTICS.iter().map(|(_, name, _)| *name).collect();
            return Err(ReportError::invalid(
                path,
                format!(
                    "claim `{}`: unknown statistic {:?}; known: {known:?}",
                    claim.name, claim.statistic
                ),
            ));
        }
        let versus = matches!(claim.stat(), Some(Statistic::TinyVs(_)));
        if versus != claim.against.is_some() {
            return Err(ReportError::invalid(
                path,
                format!(
                    "claim `{}`: `against` (the reference objective) is given with the \
                     tiny_vs_* statistics and only with them",
                    claim.name
                ),
            ));
        }
        // An infinite or NaN bound makes the comparison hold (or fail) whatever is measured.
        for (key, value) in [("threshold", claim.threshold), ("effect", claim.effect)] {
            if !value.is_finite() {
                return Err(ReportError::invalid(
                    path,
                    format!(
                        "claim `{}`: {key} = {value} is not a finite number, so the claim \
                         would hold or fail whatever is measured",
                        claim.name
                    ),
                ));
            }
        }
    }
    if file.claim.is_empty() {
        return Err(ReportError::invalid(path, "no [[claim]] entries"));
    }
    Ok(file)
}

/// Evaluates every claim against `results` (claims marked `baseline` against `baseline`); a
/// claim that cannot be evaluated fails.
pub fn evaluate(claims: &[Claim], results: &Path, baseline: &Path) -> Vec<Verdict> {
    claims
        .iter()
        .map(|c| {
            let mut v = evaluate_one(c, if c.baseline { baseline } else { results });
            if c.expected_failure && v.error.is_none() {
                v.passed = !v.passed;
            }
            v
        })
        .collect()
}

/// Whether the claim's comparison holds (as opposed to whether the gate accepts it).
pub fn holds(v: &Verdict) -> bool {
    v.error.is_none() && (v.passed != v.claim.expected_failure)
}

fn evaluate_one(claim: &Claim, results: &Path) -> Verdict {
    let failed = |error: String| Verdict {
        claim: claim.clone(),
        measured: None,
        estimate: None,
        interval: None,
        cells: 0,
        passed: false,
        error: Some(error),
        not_evaluated: false,
    };
    let dir = results.join(&claim.experiment);
    if !dir.exists() {
        return Verdict {
            not_evaluated: true,
            ..failed(format!(
                "{} does not exist: this claim reads the experiment `{}`, which the CI gate \
                 recomputes (`cargo xtask check`; or `passk run experiments/{}.toml --results \
                 DIR` then `passk check --results DIR`)",
                dir.display(),
                claim.experiment,
                claim.experiment
            ))
        };
    }
    let Some(stat) = claim.stat() else {
        return failed(format!("unknown statistic {:?}", claim.statistic));
    };
    if stat.tier() == Tier::Tiny {
        return match evaluate_tiny(claim, stat, &dir) {
            Ok(v) => v,
            Err(e) => failed(e),
        };
    }
    let cells = match load_theory_cells(&dir) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    let selected: Vec<&TheoryCell> = cells
        .iter()
        .filter(|c| matches(&claim.select, &c.record.config))
        .collect();
    if selected.is_empty() {
        return failed(format!(
            "no cell of `{}` matches select = {}; check the claim or run the experiment",
            claim.experiment, claim.select
        ));
    }
    match theory_statistic(stat, &selected).and_then(|v| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!(
                "the statistic is {v}: a selected cell holds a non-finite value"
            ))
        }
    }) {
        Ok(value) => measured(claim, value, Some(value), None, selected.len()),
        Err(e) => failed(e),
    }
}

fn evaluate_tiny(claim: &Claim, stat: Statistic, dir: &Path) -> Result<Verdict, String> {
    let cells = load_tiny_cells(dir).map_err(|e| e.to_string())?;
    let selected: Vec<&TinyCell> = cells
        .iter()
        .filter(|c| matches(&claim.select, &c.record.config))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "no cell of `{}` matches select = {}",
            claim.experiment, claim.select
        ));
    }
    let delta = match stat {
        Statistic::TinyProbe(block) => return evaluate_probe(claim, block, dir, &selected),
        Statistic::TinyDid { upper } => return evaluate_did(claim, upper, &selected),
        Statistic::TinyTrend { p_value } => return evaluate_trend(claim, p_value, &selected),
        Statistic::TinySwitch(which) => return evaluate_switch(claim, which, dir, &selected),
        Statistic::TinyVs(which) => {
            return versus::evaluate_versus(claim, which, &cells, &selected)
        }
        Statistic::TinyDelta(delta) => delta,
        other => return Err(format!("{} is not a tiny-tier statistic", other.name())),
    };
    let first = selected[0];
    if let Some(other) = selected
        .iter()
        .find(|c| c.q != first.q || c.objective != first.objective)
    {
        return Err(format!(
            "the selection mixes q = {} / {} with q = {} / {}; select one q and one objective so the \
             interval is over seeds",
            first.q, first.objective, other.q, other.objective
        ));
    }
    let per_k = matches!(delta, Delta::PasskCiLow | Delta::PasskPAbove);
    let deltas: Vec<f64> = selected
        .iter()
        .filter_map(|c| c.delta(if per_k { c.objective_k() } else { 1 }))
        .collect();
    if deltas.len() != selected.len() || deltas.iter().any(|d| !d.is_finite()) {
        return Err("a selected cell lacks a finite warm-start or final evaluation".into());
    }
    let interval = t_interval(&deltas, 0.95).map(|i| (i.lo, i.hi));
    let p_value = |mu0: f64, less: bool| {
        one_sided_t_pvalue(&deltas, mu0, less)
            .ok_or("a one-sided t-test needs at least 2 seeds that differ")
    };
    let need_two = "a t-interval needs at least 2 seeds";
    let value = match delta {
        Delta::Pass1Mean => mean(&deltas),
        Delta::Pass1PBelow => p_value(-claim.effect, true)?,
        Delta::PasskPAbove => p_value(claim.effect, false)?,
        Delta::Pass1CiHigh => interval.ok_or(need_two)?.1,
        Delta::Pass1CiLow | Delta::PasskCiLow => interval.ok_or(need_two)?.0,
    };
    Ok(measured(
        claim,
        value,
        Some(mean(&deltas)),
        interval,
        selected.len(),
    ))
}

/// Difference-in-differences over seeds: the selection must hold one objective and two q.
fn evaluate_did(claim: &Claim, upper: bool, selected: &[&TinyCell]) -> Result<Verdict, String> {
    let (objectives, qs) = objectives_and_qs(selected);
    if objectives.len() != 1 || qs.len() != 2 {
        return Err(format!(
            "a difference-in-differences needs one objective and two q values; the selection \
             has objectives {objectives:?} and q {qs:?}"
        ));
    }
    let delta = |q: f64, seed: u64| {
        selected
            .iter()
            .find(|c| c.q == q && c.seed == seed)
            .and_then(|c| c.delta(1))
    };
    let seeds: std::collections::BTreeSet<u64> = selected.iter().map(|c| c.seed).collect();
    let mut diffs = Vec::new();
    for &seed in &seeds {
        match (delta(qs[0], seed), delta(qs[1], seed)) {
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() => diffs.push(lo - hi),
            _ => {
                return Err(format!(
                    "seed {seed} lacks a finite change of pass@1 at q = {} or q = {}",
                    qs[0], qs[1]
                ))
            }
        }
    }
    let interval = t_interval(&diffs, 0.95)
        .map(|i| (i.lo, i.hi))
        .ok_or("a t-interval needs at least 2 seeds")?;
    let value = if upper { interval.1 } else { interval.0 };
    Ok(measured(
        claim,
        value,
        Some(mean(&diffs)),
        Some(interval),
        selected.len(),
    ))
}

/// The pre-registered switch point: see [`switch`].
fn evaluate_switch(
    claim: &Claim,
    which: Switch,
    dir: &Path,
    selected: &[&TinyCell],
) -> Result<Verdict, String> {
    let (qs, curves) = switch::seed_curves(dir, selected)?;
    let points = switch::switch_points(&qs, &curves);
    let cells = curves.len() * qs.len();
    let (estimate, interval) = match which {
        Switch::FallCiLow | Switch::FallCiHigh => points.fall,
        Switch::GapCiAbsMax => points.gap,
    };
    let value = match which {
        Switch::FallCiLow => interval.0,
        Switch::FallCiHigh => interval.1,
        Switch::GapCiAbsMax => interval.0.abs().max(interval.1.abs()),
    };
    Ok(measured(
        claim,
        value,
        Some(estimate),
        Some(interval),
        cells,
    ))
}

/// The distinct objectives and the distinct q values (ascending) of `selected`.
fn objectives_and_qs<'a>(
    selected: &[&'a TinyCell],
) -> (std::collections::BTreeSet<&'a str>, Vec<f64>) {
    let objectives = selected.iter().map(|c| c.objective.as_str()).collect();
    let mut qs: Vec<f64> = selected.iter().map(|c| c.q).collect();
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    (objectives, qs)
}

/// The verdict of a statistic `value` that could be computed, with the estimate and interval
/// it comes from.
fn measured(
    claim: &Claim,
    value: f64,
    estimate: Option<f64>,
    interval: Option<(f64, f64)>,
    cells: usize,
) -> Verdict {
    Verdict {
        claim: claim.clone(),
        measured: Some(value),
        estimate,
        interval,
        cells,
        passed: compare(value, &claim.op, claim.threshold),
        error: None,
        not_evaluated: false,
    }
}

/// Dose-response over seeds: each seed's least-squares slope of the change of pass@1 on q
/// (the selection must hold one objective and at least three q values, every seed at each).
fn evaluate_trend(claim: &Claim, p_value: bool, selected: &[&TinyCell]) -> Result<Verdict, String> {
    let (objectives, qs) = objectives_and_qs(selected);
    if objectives.len() != 1 || qs.len() < 3 {
        return Err(format!(
            "a trend needs one objective and at least three q values; the selection has \
             objectives {objectives:?} and q {qs:?}"
        ));
    }
    let seeds: std::collections::BTreeSet<u64> = selected.iter().map(|c| c.seed).collect();
    let mut slopes = Vec::new();
    for &seed in &seeds {
        let mut points = Vec::new();
        for &q in &qs {
            match selected
                .iter()
                .find(|c| c.q == q && c.seed == seed)
                .and_then(|c| c.delta(1))
            {
                Some(d) if d.is_finite() => points.push((q, d)),
                _ => {
                    return Err(format!(
                        "seed {seed} lacks a finite change of pass@1 at q = {q}"
                    ))
                }
            }
        }
        slopes.push(least_squares_slope(&points));
    }
    let interval = t_interval(&slopes, 0.95)
        .map(|i| (i.lo, i.hi))
        .ok_or("a t-interval needs at least 2 seeds")?;
    let value = if p_value {
        one_sided_t_pvalue(&slopes, 0.0, false)
            .ok_or("a one-sided t-test needs at least 2 seeds that differ")?
    } else {
        interval.0
    };
    Ok(measured(
        claim,
        value,
        Some(mean(&slopes)),
        Some(interval),
        selected.len(),
    ))
}

/// The least-squares slope of y on x through `points` (at least two distinct x).
pub fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

/// Statistics of the warm-start probe block [`RF_BLOCK`] over the selected cells.
fn evaluate_probe(
    claim: &Claim,
    block: ProbeBlock,
    dir: &Path,
    selected: &[&TinyCell],
) -> Result<Verdict, String> {
    let mut intervals = Vec::new();
    for cell in selected {
        let steps = crate::probe::load_probe_steps(&dir.join(&cell.record.hash))
            .map_err(|e| e.to_string())?;
        let at_end = matches!(
            block,
            ProbeBlock::EndCiHighMax | ProbeBlock::EndNegativeShare
        );
        // The warm start is step 0 exactly; a cell without it has no warm-start probe.
        let first = if at_end {
            steps.last()
        } else {
            steps.iter().find(|s| s.step == 0)
        }
        .ok_or_else(|| {
            format!(
                "cell {} has no {} probe",
                cell.record.hash,
                if at_end { "" } else { "step-0" }
            )
        })?;
        let k = cell.objective_k();
        let row = first.row(k, RF_BLOCK).ok_or_else(|| {
            format!(
                "cell {}: the probe at step {} has no block {RF_BLOCK} at k = {k}",
                cell.record.hash, first.step
            )
        })?;
        if !(row.ci_low.is_finite() && row.ci_high.is_finite()) {
            return Err(format!(
                "cell {}: the block's interval is not finite (bootstrap off?)",
                cell.record.hash
            ));
        }
        intervals.push((row.ci_low, row.ci_high));
    }
    let value = match block {
        ProbeBlock::CiHighMax | ProbeBlock::EndCiHighMax => {
            intervals.iter().map(|i| i.1).fold(f64::MIN, f64::max)
        }
        ProbeBlock::CiLowMin => intervals.iter().map(|i| i.0).fold(f64::MAX, f64::min),
        ProbeBlock::NegativeShare | ProbeBlock::EndNegativeShare => {
            intervals.iter().filter(|i| i.1 < 0.0).count() as f64 / intervals.len() as f64
        }
    };
    Ok(measured(claim, value, None, None, selected.len()))
}

fn compare(value: f64, op: &str, threshold: f64) -> bool {
    match op {
        "<" => value < threshold,
        "<=" => value <= threshold,
        ">" => value > threshold,
        ">=" => value >= threshold,
        _ => false,
    }
}

fn matches(select: &toml::Table, config: &Value) -> bool {
    select.iter().all(|(key, wanted)| {
        // A dotted key (`"rl.objective"`) names a field of a nested table.
        let pointer = format!("/{}", key.replace('.', "/"));
        let Some(have) = config.pointer(&pointer) else {
            return false;
        };
        match wanted {
            toml::Value::Array(options) => options.iter().any(|o| same(o, have)),
            single => same(single, have),
        }
    })
}

fn same(wanted: &toml::Value, have: &Value) -> bool {
    match wanted {
        toml::Value::Integer(i) => have.as_f64() == Some(*i as f64),
        toml::Value::Float(f) => have.as_f64() == Some(*f),
        toml::Value::String(s) => have.as_str() == Some(s),
        toml::Value::Boolean(b) => have.as_bool() == Some(*b),
        _ => false,
    }
}

mod render;
mod theory_tier;
pub(crate) use render::{number, tested_label};
pub use render::{render_table, verdict_word};
use theory_tier::theory_statistic;

mod statistic;
mod versus;
pub use statistic::{Delta, ProbeBlock, Statistic, Switch, Tested, Versus, STATISTICS};
pub mod switch;

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
