//! Tiny-tier figures and tables across q with their spread over seeds: the dose-response of
//! pass@1 and pass@k (95% intervals), per-family pass@1 over training (bands), hedging (forward
//! prompts answered reversed) and the warm-start profile the control is matched on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use passk_core::stats::{mean, sample_std, t_interval};

use crate::error::ReportError;
use crate::plot::{Chart, Figure, Legend, Mark, Series};
use crate::tables::{fmt_f, Table};
use crate::theory::{render_with_sidecar, write_sidecar};
use crate::tiny::{objective_k, objectives as sorted_objectives, qs as sorted_qs, TinyCell};

/// The family whose other-format answers measure hedging: forward prompts answered reversed.
const FORWARD: &str = "addition";
/// The families plotted over training.
const FAMILIES: [&str; 2] = ["addition", "reversed_addition"];

/// A readable name for an objective spec ([`crate::style::label`]).
pub fn display_name(spec: &str) -> String {
    crate::style::label(spec)
}

/// Mean and 95% Student-t interval (the mean twice with fewer than two values).
pub(crate) fn mean_ci(v: &[f64]) -> (f64, (f64, f64)) {
    let m = mean(v);
    (m, t_interval(v, 0.95).map_or((m, m), |i| (i.lo, i.hi)))
}

/// Whether the q = 1 cells had a warm start of their own (a control matched on warm-start
/// competence) rather than the q < 1 cells' SFT schedule.
fn matched_control(cells: &[TinyCell]) -> bool {
    let sft = |c: &TinyCell| c.record.config.get("sft").cloned();
    let control = cells.iter().find(|c| c.q == 1.0).map(sft);
    let other = cells.iter().find(|c| c.q < 1.0).map(sft);
    matches!((control, other), (Some(a), Some(b)) if a != b)
}

fn q_label(cells: &[TinyCell]) -> String {
    if matched_control(cells) {
        "cue reliability q (q = 1: matched control)".into()
    } else {
        "cue reliability q (q = 1: control)".into()
    }
}

fn group<'a>(cells: &'a [TinyCell], q: f64, objective: &str) -> Vec<&'a TinyCell> {
    cells
        .iter()
        .filter(|c| c.q == q && c.objective == objective)
        .collect()
}

/// Share of a family's samples answered in the other rule's format at `step`.
fn other_format(cell: &TinyCell, step: u64, family: &str) -> Option<f64> {
    cell.format
        .iter()
        .find(|r| r.step == step && r.family == family)
        .map(|r| r.other_format_share)
}

/// Points (one per q, objectives side by side) of `value` over each (q, objective) group.
fn per_q_series(
    cells: &[TinyCell],
    objectives: &[String],
    value: &dyn Fn(&TinyCell) -> Option<f64>,
) -> Vec<Series> {
    let qs = sorted_qs(cells);
    let spacing = qs.windows(2).map(|w| w[1] - w[0]).fold(1.0, f64::min);
    let mut out = Vec::new();
    for (i, objective) in objectives.iter().enumerate() {
        let offset = (i as f64 - (objectives.len() as f64 - 1.0) / 2.0) * spacing * 0.08;
        let (mut points, mut intervals) = (Vec::new(), Vec::new());
        let mut seeds = 0;
        for &q in &qs {
            let v: Vec<f64> = group(cells, q, objective)
                .into_iter()
                .filter_map(value)
                .collect();
            if v.is_empty() {
                continue;
            }
            seeds = seeds.max(v.len());
            let (m, ci) = mean_ci(&v);
            points.push((q + offset, m));
            intervals.push(ci);
        }
        if points.is_empty() {
            continue;
        }
        let color = crate::style::color_in(objectives, objective);
        out.push(
            Series::new(
                format!("{} (≤ {seeds} seeds)", display_name(objective)),
                points,
                Mark::LargePoints,
                color,
            )
            .with_intervals(intervals),
        );
    }
    out
}

/// Renders the figures and tables of this module; returns their paths.
pub fn render_dose(cells: &[TinyCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let objectives = sorted_objectives(cells);
    let hashes = || cells.iter().map(|c| c.record.hash.clone()).collect();
    let mut paths = Vec::new();
    let qs = sorted_qs(cells);
    let x_range = (qs[0] - 0.06, qs[qs.len() - 1] + 0.06);

    // Dose-response: Δ pass@1 and Δ pass@k against q.
    let mut p1 = Chart::new(
        "Δ held-out pass@1 from the warm start",
        q_label(cells),
        "Δ pass@1 (mean, 95% CI over seeds)",
    );
    p1.series = per_q_series(cells, &objectives, &|c| c.delta(1));
    let passk: Vec<String> = objectives
        .iter()
        .filter(|o| objective_k(o) != 1)
        .cloned()
        .collect();
    let mut pk = Chart::new(
        "Δ held-out pass@k, k of the objective",
        q_label(cells),
        "Δ pass@k (mean, 95% CI over seeds)",
    );
    pk.series = per_q_series(cells, &passk, &|c| c.delta(c.objective_k()));
    for chart in [&mut p1, &mut pk] {
        chart.zero_line = true;
        chart.x_range = Some(x_range);
        chart.legend = Legend::Outside;
    }
    let figure = Figure {
        stem: "delta_vs_q".into(),
        width: 1640,
        height: 520,
        panels: vec![p1, pk],
    };
    let caption = "Change from the warm start of held-out pass@1 (left) and of pass@k at the objective's k (right) against the cue reliability q: mean over seeds with 95% Student-t intervals; objectives are drawn side by side at each q. Below zero the objective lowered the measure.";
    paths.extend(render_with_sidecar(&figure, out_dir, caption, hashes())?);

    // Per-family pass@1 over training, bands over seeds.
    for family in FAMILIES {
        if !cells
            .iter()
            .any(|c| c.eval.iter().any(|r| r.family == family))
        {
            continue;
        }
        let mut panels = Vec::new();
        for &q in &qs {
            let mut chart = Chart::new(
                format!("{family}, q = {q}"),
                "RL step",
                "held-out pass@1 (mean, 95% band)",
            );
            chart.legend = Legend::Outside;
            chart.y_range = Some((0.0, 1.0));
            for objective in &objectives {
                let g = group(cells, q, objective);
                let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for c in &g {
                    for r in c.eval.iter().filter(|r| r.family == family && r.k == 1) {
                        by_step.entry(r.step).or_default().push(r.pass_at_k);
                    }
                }
                if by_step.is_empty() {
                    continue;
                }
                let stats: Vec<(f64, (f64, f64, f64))> = by_step
                    .iter()
                    .map(|(s, v)| {
                        let (m, (lo, hi)) = mean_ci(v);
                        (*s as f64, (m, lo.max(0.0), hi.min(1.0)))
                    })
                    .collect();
                chart.series.push(
                    Series::new(
                        format!("{} ({} seeds)", display_name(objective), g.len()),
                        stats.iter().map(|(s, (m, _, _))| (*s, *m)).collect(),
                        Mark::LineAndPoints,
                        crate::style::color_in(&objectives, objective),
                    )
                    .with_intervals(stats.iter().map(|(_, (_, lo, hi))| (*lo, *hi)).collect()),
                );
            }
            panels.push(chart);
        }
        let stem = format!("pass1_over_training_{family}");
        let figure = Figure {
            stem: stem.clone(),
            width: 760 * panels.len() as u32,
            height: 480,
            panels,
        };
        let caption = format!(
            "Held-out pass@1 of the {family} family over RL steps, one panel per q, one line per objective: mean over seeds with a 95% Student-t band."
        );
        paths.extend(render_with_sidecar(&figure, out_dir, &caption, hashes())?);
    }

    paths.extend(render_hedging(cells, &objectives, out_dir, x_range)?);
    paths.extend(render_profile(cells, out_dir)?);
    paths.extend(render_relative(cells, &objectives, out_dir)?);
    Ok(paths)
}

/// Hedging: the share of forward prompts' samples answered reversed, at the warm start and at
/// the end of RL, against q (figure and table).
fn render_hedging(
    cells: &[TinyCell],
    objectives: &[String],
    out_dir: &Path,
    x_range: (f64, f64),
) -> Result<Vec<PathBuf>, ReportError> {
    if !cells.iter().any(|c| !c.format.is_empty()) {
        return Ok(Vec::new());
    }
    let hashes = || cells.iter().map(|c| c.record.hash.clone()).collect();
    let end = |c: &TinyCell| other_format(c, c.last_step(), FORWARD);
    let start = |c: &TinyCell| other_format(c, 0, FORWARD);
    let mut chart = Chart::new(
        "hedging: forward prompts answered reversed",
        q_label(cells),
        "share of forward samples (mean, 95% CI)",
    );
    chart.series = per_q_series(cells, objectives, &end);
    let mut ws = per_q_series(cells, &objectives[..1], &start);
    for s in &mut ws {
        s.label = "warm start".into();
        s.color = 7;
        s.mark = Mark::Points;
    }
    chart.series.extend(ws);
    chart.zero_line = true;
    chart.x_range = Some(x_range);
    chart.legend = Legend::Outside;
    let figure = Figure {
        stem: "hedging".into(),
        width: 980,
        height: 520,
        panels: vec![chart],
    };
    let caption = "Share of the forward (addition) prompts' held-out samples that gave the reversed answer, at the end of RL per objective and at the warm start (grey), against q: mean over seeds with 95% Student-t intervals. A pass@k objective that hedges raises it.";
    let mut paths = Vec::new();
    paths.extend(render_with_sidecar(&figure, out_dir, caption, hashes())?);

    let mut table = Table::new(
        "hedging",
        "Share of forward (addition) held-out samples answered reversed: warm start and end of RL, mean over seeds; the change with its 95% Student-t interval over seeds.",
        &["q", "objective", "seeds", "warm start", "end of RL", "change", "change 95% CI low", "change 95% CI high"],
    );
    for q in sorted_qs(cells) {
        for objective in objectives {
            let g = group(cells, q, objective);
            let pairs: Vec<(f64, f64)> = g
                .iter()
                .filter_map(|c| Some((start(c)?, end(c)?)))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let changes: Vec<f64> = pairs.iter().map(|(a, b)| b - a).collect();
            let (m, (lo, hi)) = mean_ci(&changes);
            table.rows.push(vec![
                format!("{q}"),
                display_name(objective),
                pairs.len().to_string(),
                fmt_f(mean(&pairs.iter().map(|p| p.0).collect::<Vec<_>>()), 3),
                fmt_f(mean(&pairs.iter().map(|p| p.1).collect::<Vec<_>>()), 3),
                fmt_f(m, 3),
                fmt_f(lo, 4),
                fmt_f(hi, 4),
            ]);
        }
    }
    let files = table.write_all(out_dir)?;
    paths.extend(write_sidecar(
        out_dir,
        "hedging",
        "table",
        &table.caption,
        &files,
        hashes(),
    )?);
    Ok(paths)
}

/// The objective pass@k training is compared with, from the same warm starts.
const BASELINE: &str = "pass1_rloo";

/// The relative effect per q: the change of held-out pass@1 under each pass@k objective minus
/// its change under pass@1 training from the same warm start (same q and seed), over seeds.
/// Unlike the change from the warm start, this does not reward an arm for having more room to
/// rise (issue 29: the matched control gains under both objectives).
fn render_relative(
    cells: &[TinyCell],
    objectives: &[String],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut table = Table::new(
        "relative_effect",
        "Relative effect: change of held-out pass@1 (final − warm start) under a pass@k objective minus the change under pass@1 training (RLOO) from the same warm start, paired by seed; mean with its 95% Student-t interval over the seeds that have both cells.",
        &["q", "objective", "seeds", "Δ pass@1 (pass@k)", "Δ pass@1 (pass@1)", "relative effect", "95% CI low", "95% CI high"],
    );
    for q in sorted_qs(cells) {
        let baseline = group(cells, q, BASELINE);
        for objective in objectives.iter().filter(|o| o.as_str() != BASELINE) {
            let pairs: Vec<(f64, f64)> = group(cells, q, objective)
                .iter()
                .filter_map(|c| {
                    let b = baseline.iter().find(|b| b.seed == c.seed)?;
                    Some((c.delta(1)?, b.delta(1)?))
                })
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let diffs: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
            let (m, (lo, hi)) = mean_ci(&diffs);
            let col = |i: usize| {
                mean(
                    &pairs
                        .iter()
                        .map(|p| if i == 0 { p.0 } else { p.1 })
                        .collect::<Vec<_>>(),
                )
            };
            table.rows.push(vec![
                format!("{q}"),
                display_name(objective),
                pairs.len().to_string(),
                fmt_f(col(0), 3),
                fmt_f(col(1), 3),
                fmt_f(m, 3),
                fmt_f(lo, 3),
                fmt_f(hi, 3),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Ok(Vec::new());
    }
    let files = table.write_all(out_dir)?;
    write_sidecar(
        out_dir,
        "relative_effect",
        "table",
        &table.caption,
        &files,
        cells.iter().map(|c| c.record.hash.clone()).collect(),
    )
}

/// The warm-start profile: held-out pass@1 per family at RL step 0, one value per (q, seed)
/// (every objective of a seed starts from the same warm start), mean, spread and per seed.
fn render_profile(cells: &[TinyCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let hashes = || cells.iter().map(|c| c.record.hash.clone()).collect();
    let matched = matched_control(cells);
    let mut table = Table::new(
        "warm_start_profile",
        "Held-out pass@1 of the SFT warm start (RL step 0) per family and q: mean and sample standard deviation over seeds, and each seed's value (seeds in order).",
        &["q", "family", "seeds", "mean", "sd", "min", "max", "per seed"],
    );
    for q in sorted_qs(cells) {
        let mut by_seed: BTreeMap<u64, &TinyCell> = BTreeMap::new();
        for c in cells.iter().filter(|c| c.q == q) {
            by_seed.entry(c.seed).or_insert(c);
        }
        let mut families: Vec<String> = by_seed
            .values()
            .flat_map(|c| {
                c.eval
                    .iter()
                    .filter(|r| r.step == 0)
                    .map(|r| r.family.clone())
            })
            .collect();
        families.sort_by_key(|f| (f != "all", f.clone()));
        families.dedup();
        for family in families {
            let v: Vec<f64> = by_seed
                .values()
                .filter_map(|c| c.pass_at(0, &family, 1))
                .collect();
            let label = if q == 1.0 && matched {
                "1 (matched control)".to_string()
            } else {
                format!("{q}")
            };
            table.rows.push(vec![
                label,
                family,
                v.len().to_string(),
                fmt_f(mean(&v), 3),
                if v.len() > 1 {
                    fmt_f(sample_std(&v), 3)
                } else {
                    "n/a".into()
                },
                fmt_f(v.iter().copied().fold(f64::INFINITY, f64::min), 3),
                fmt_f(v.iter().copied().fold(f64::NEG_INFINITY, f64::max), 3),
                v.iter()
                    .map(|x| fmt_f(*x, 3))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ]);
        }
    }
    let files = table.write_all(out_dir)?;
    write_sidecar(
        out_dir,
        "warm_start_profile",
        "table",
        &table.caption,
        &files,
        hashes(),
    )
}
