//! Tiny-tier probe figures and the sign-prediction table, from the files the gradient probe
//! (`passk_train::write_probe`) writes into `<cell>/probe/step-<NNNNN>/`: `prompts.csv`,
//! `gram.csv` and `summary.csv`.
//!
//! Per cell with probes ([`render_probe`]): `⟨∇J_k, ∇J_1⟩` against k, one line per probe step
//! with the outline of its 95% bootstrap band, for the global statistic and every cross-family
//! block; agreement `â(x)` against `p̂(x)` coloured by family at the first and last probe step;
//! the Gram matrix sorted by family then `p̂` as a heatmap at the first and last probe step.
//! Over cells: how often the sign at the warm start predicts a fall of held-out pass@1
//! ([`sign_prediction_table`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use passk_schema::probe::{
    ProbeGramRow, ProbePromptRow, ProbeSummaryRow, BLOCK_GLOBAL, PROBE_DIR, PROMPTS_FILE,
    SUMMARY_FILE,
};

mod heatmap;

use heatmap::{heatmap, read_gram, render_heatmaps};

use crate::error::ReportError;
use crate::load::read_csv;
use crate::plot::{render_figure, Chart, Figure, Legend, Mark, Series, XScale};
use crate::tables::{fmt_e, fmt_f, Table};
use crate::theory::write_sidecar;
use crate::tiny::{load_tiny_cells, TinyCell};

/// Most heatmap cells per side; larger Gram matrices are averaged over square blocks.
const HEATMAP_MAX_SIDE: usize = 64;

/// One probe of a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeStep {
    /// The training step probed (0 = warm start).
    pub step: u64,
    /// `prompts.csv`.
    pub prompts: Vec<ProbePromptRow>,
    /// `gram.csv`.
    pub gram: Vec<ProbeGramRow>,
    /// `summary.csv`.
    pub summary: Vec<ProbeSummaryRow>,
}

/// One prompt of a probe step: index, family, `p̂`, agreement.
#[derive(Debug, Clone, PartialEq)]
struct PromptPoint {
    index: usize,
    family: String,
    p_hat: f64,
    agreement: f64,
}

impl ProbeStep {
    /// The summary row of `k` and `block`.
    pub fn row(&self, k: u32, block: &str) -> Option<&ProbeSummaryRow> {
        self.summary.iter().find(|r| r.k == k && r.block == block)
    }

    /// The k values of the summary, sorted.
    pub fn ks(&self) -> Vec<u32> {
        let set: BTreeSet<u32> = self.summary.iter().map(|r| r.k).collect();
        set.into_iter().collect()
    }

    /// The cross-family blocks `a->b` with `a != b`, sorted.
    pub fn cross_blocks(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .summary
            .iter()
            .filter(|r| matches!(r.block.split_once("->"), Some((a, b)) if a != b))
            .map(|r| r.block.clone())
            .collect();
        set.into_iter().collect()
    }

    /// The sum over every cross-family block of the inner product at `k` (the part of
    /// `⟨∇J_k, ∇J_1⟩` between different families); `None` without cross-family blocks.
    pub fn cross_family_inner(&self, k: u32) -> Option<f64> {
        let blocks = self.cross_blocks();
        if blocks.is_empty() {
            return None;
        }
        blocks
            .iter()
            .map(|b| self.row(k, b).map(|r| r.inner))
            .sum::<Option<f64>>()
    }

    /// One entry per prompt (the long format repeats prompts for every k), by index.
    fn points(&self) -> Vec<PromptPoint> {
        let mut by_index: BTreeMap<usize, PromptPoint> = BTreeMap::new();
        for r in &self.prompts {
            by_index.entry(r.index).or_insert_with(|| PromptPoint {
                index: r.index,
                family: r.family.clone(),
                p_hat: r.p_hat,
                agreement: r.agreement,
            });
        }
        by_index.into_values().collect()
    }
}

/// A tiny cell with its probes.
#[derive(Debug, Clone)]
pub struct ProbeCell {
    /// The cell (config, held-out evaluation).
    pub cell: TinyCell,
    /// Its probes, by step.
    pub steps: Vec<ProbeStep>,
}

/// Reads every `step-<NNNNN>` directory under `<cell_dir>/probe`, sorted by step; empty when
/// the cell has no probe directory.
pub fn load_probe_steps(cell_dir: &Path) -> Result<Vec<ProbeStep>, ReportError> {
    let root = cell_dir.join(PROBE_DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut steps = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(|e| ReportError::io(&root, e))? {
        let entry = entry.map_err(|e| ReportError::io(&root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        steps.push(ProbeStep {
            step,
            prompts: read_csv(&dir.join(PROMPTS_FILE))?,
            gram: read_gram(&dir)?,
            summary: read_csv(&dir.join(SUMMARY_FILE))?,
        });
    }
    steps.sort_by_key(|s| s.step);
    Ok(steps)
}

/// The tiny cells of `experiment_dir` that have probes, with their probes.
pub fn load_probe_cells(experiment_dir: &Path) -> Result<Vec<ProbeCell>, ReportError> {
    let mut out = Vec::new();
    for cell in load_tiny_cells(experiment_dir)? {
        let steps = load_probe_steps(&experiment_dir.join(&cell.record.hash))?;
        if !steps.is_empty() {
            out.push(ProbeCell { cell, steps });
        }
    }
    Ok(out)
}

/// One cell's signs at the warm start and whether its held-out pass@1 fell: the input of
/// [`sign_prediction_table`].
#[derive(Debug, Clone, PartialEq)]
pub struct SignRow {
    /// Cue reliability q.
    pub q: f64,
    /// RL objective spec.
    pub objective: String,
    /// Seed.
    pub seed: u64,
    /// The objective's k (1 for pass@1 objectives).
    pub k: u32,
    /// Global `⟨∇J_k, ∇J_1⟩` at the first probe step.
    pub global_inner: f64,
    /// Sum of the cross-family blocks at the first probe step (`None` with one family).
    pub cross_inner: Option<f64>,
    /// Final minus warm-start held-out pass@1 (all prompts).
    pub pass1_delta: f64,
}

/// One [`SignRow`] per cell whose first probe reports the objective's k and whose held-out
/// pass@1 was evaluated at the warm start and at the end.
pub fn sign_rows(cells: &[ProbeCell]) -> Vec<SignRow> {
    cells
        .iter()
        .filter_map(|c| {
            // The warm start is step 0 exactly: a cell without that probe has no sign to give.
            let first = c.steps.iter().find(|s| s.step == 0)?;
            let k = c.cell.objective_k();
            Some(SignRow {
                q: c.cell.q,
                objective: c.cell.objective.clone(),
                seed: c.cell.seed,
                k,
                global_inner: first.row(k, BLOCK_GLOBAL)?.inner,
                cross_inner: first.cross_family_inner(k),
                pass1_delta: c.cell.delta(1)?,
            })
        })
        .collect()
}

/// How often a negative sign at the warm start goes with a fall of held-out pass@1: one row
/// per predictor (`global`, `cross-family`) with the counts of the four outcomes and the share
/// of cells whose outcome the sign got right (negative and fell, or non-negative and did not
/// fall). A cross-family row counts only cells with more than one family.
pub fn sign_prediction_table(rows: &[SignRow]) -> Table {
    let mut table = Table::new(
        "probe_sign_prediction",
        "Does the sign of ⟨∇J_k, ∇J_1⟩ at the warm start (step 0; k of the RL objective) predict a fall of held-out pass@1 (final − warm start < 0)? Pass@k cells only: for a pass@1 objective (k = 1) the global inner product is ‖∇J_1‖² ≥ 0, so it agrees with 'no fall' by construction and is no prediction. Global: all probe prompts; cross-family: the sum of the blocks between different families. Counts of cells by sign and outcome; 'agreement' is the share of cells where a negative sign went with a fall or a non-negative sign with no fall. Cells sharing a warm start are not independent.",
        &["predictor", "cells", "negative, fell", "negative, held", "non-negative, fell", "non-negative, held", "agreement"],
    );
    fn global(r: &SignRow) -> Option<f64> {
        Some(r.global_inner)
    }
    fn cross(r: &SignRow) -> Option<f64> {
        r.cross_inner
    }
    type Predictor = fn(&SignRow) -> Option<f64>;
    let predictors: [(&str, Predictor); 2] = [("global", global), ("cross-family", cross)];
    for (name, value) in predictors {
        let mut counts = [0usize; 4];
        for r in rows.iter().filter(|r| r.k > 1) {
            let Some(v) = value(r) else { continue };
            if !v.is_finite() || !r.pass1_delta.is_finite() {
                continue;
            }
            let slot = match (v < 0.0, r.pass1_delta < 0.0) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            counts[slot] += 1;
        }
        let n: usize = counts.iter().sum();
        let agreement = if n == 0 {
            "n/a".to_string()
        } else {
            fmt_f((counts[0] + counts[3]) as f64 / n as f64, 2)
        };
        let mut row = vec![name.to_string(), n.to_string()];
        row.extend(counts.iter().map(|c| c.to_string()));
        row.push(agreement);
        table.rows.push(row);
    }
    table
}

/// The per-cell table of signs behind [`sign_prediction_table`].
fn sign_detail_table(rows: &[SignRow]) -> Table {
    let mut table = Table::new(
        "probe_signs",
        "Per cell: the objective's k, ⟨∇J_k, ∇J_1⟩ at the warm start (global and summed over cross-family blocks) and the change of held-out pass@1 from the warm start.",
        &["q", "objective", "seed", "k", "global ⟨∇J_k, ∇J_1⟩", "cross-family", "Δ pass@1"],
    );
    for r in rows {
        table.rows.push(vec![
            format!("{}", r.q),
            r.objective.clone(),
            r.seed.to_string(),
            r.k.to_string(),
            fmt_e(r.global_inner, 3),
            r.cross_inner.map_or("n/a".to_string(), |v| fmt_e(v, 3)),
            fmt_f(r.pass1_delta, 3),
        ]);
    }
    table
}

fn cell_label(c: &TinyCell) -> String {
    format!("q = {}, {}, seed {}", c.q, c.objective, c.seed)
}

/// `⟨∇J_k, ∇J_1⟩` of `block` against k: one line per step and the outline of its CI band.
fn inner_chart(cell: &ProbeCell, block: &str, title: String) -> Chart {
    let mut chart = Chart::new(title, "k", "⟨∇J_k, ∇J_1⟩");
    chart.x_scale = XScale::Log2;
    chart.zero_line = true;
    chart.legend = Legend::Outside;
    for (color, step) in cell.steps.iter().enumerate() {
        let rows: Vec<&ProbeSummaryRow> = step
            .ks()
            .into_iter()
            .filter_map(|k| step.row(k, block))
            .collect();
        let line = rows.iter().map(|r| (f64::from(r.k), r.inner)).collect();
        chart.series.push(Series::new(
            format!("step {}", step.step),
            line,
            Mark::LineAndPoints,
            color,
        ));
        let mut band: Vec<(f64, f64)> = rows.iter().map(|r| (f64::from(r.k), r.ci_low)).collect();
        band.extend(rows.iter().rev().map(|r| (f64::from(r.k), r.ci_high)));
        if let Some(&first) = band.first() {
            band.push(first);
        }
        if band.iter().all(|p| p.1.is_finite()) && !band.is_empty() {
            chart.series.push(Series::new(
                format!("step {} 95% CI", step.step),
                band,
                Mark::DashedLine,
                color,
            ));
        }
    }
    chart
}

/// Agreement against `p̂`, one point series per family.
fn agreement_chart(step: &ProbeStep, families: &[String]) -> Chart {
    let mut chart = Chart::new(
        format!("step {}", step.step),
        "p(x) estimated from the probe samples",
        "agreement a(x) = ⟨∇p(x), ∇J_1⟩",
    );
    chart.zero_line = true;
    chart.legend = Legend::Outside;
    let points = step.points();
    for (color, family) in families.iter().enumerate() {
        let pts = points
            .iter()
            .filter(|p| &p.family == family)
            .map(|p| (p.p_hat, p.agreement))
            .collect();
        chart
            .series
            .push(Series::new(family.clone(), pts, Mark::Points, color));
    }
    chart
}

/// The first and the last probe step (one step if there is only one).
fn first_last(steps: &[ProbeStep]) -> Vec<&ProbeStep> {
    match steps {
        [] => Vec::new(),
        [only] => vec![only],
        [first, .., last] => vec![first, last],
    }
}

/// Renders the probe figures pooled over seeds (`probe_inner_vs_k`, `probe_block_inner_vs_k`)
/// and the tables `probe_sign_prediction` and `probe_signs` into `out_dir`, each with a
/// `.sources.json` sidecar; returns the paths, sorted.
pub fn render_probe(cells: &[ProbeCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if cells.is_empty() {
        return Err(ReportError::NoCells {
            path: out_dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let mut paths = crate::probe_pooled::render_pooled(cells, out_dir)?;
    let rows = sign_rows(cells);
    let all: BTreeSet<String> = cells.iter().map(|c| c.cell.record.hash.clone()).collect();
    let mut tables = vec![sign_prediction_table(&rows), sign_detail_table(&rows)];
    tables.extend(switch_table(cells).into_iter().flatten());
    for table in tables {
        let files = table.write_all(out_dir)?;
        paths.extend(write_sidecar(
            out_dir,
            &table.name,
            "table",
            &table.caption,
            &files,
            all.clone(),
        )?);
    }
    paths.sort();
    Ok(paths)
}

/// The switch point in q (`claims::switch`, pre-registered in experiments/tiny-dose.toml): per
/// q the mean over seeds of the change of pass@1 under pass@8 and of the warm-start
/// cross-family ⟨∇J_8, ∇J_1⟩, then the two switch points and their gap; `None` for an
/// experiment without pass@8 cells at two or more q < 1, every seed at each.
fn switch_table(cells: &[ProbeCell]) -> Option<[Table; 2]> {
    use crate::claims::switch;
    let tiny: Vec<&TinyCell> = cells
        .iter()
        .map(|c| &c.cell)
        .filter(|c| c.q < 1.0)
        .collect();
    let steps_of = |cell: &TinyCell| {
        let found = cells
            .iter()
            .find(|c| c.cell.record.hash == cell.record.hash);
        switch::warm_start_inner(cell, found.map_or(&[][..], |c| &c.steps))
    };
    let (qs, curves) = switch::curves_with(&tiny, &steps_of).ok()?;
    let points = switch::switch_points(&qs, &curves);
    let mut table = Table::new(
        "switch_point",
        &format!(
            "The switch point in q (pre-registered, experiments/tiny-dose.toml): per q, the mean over {} seeds of the change of held-out pass@1 under pass@8 and of the warm-start cross-family ⟨∇J_8, ∇J_1⟩ with 95% Student-t intervals; q*_fall and q*_int are the first q, scanning up, where each mean rises through 0 (linear interpolation; the grid edge when it never does), with 95% percentile intervals from {} resamples of whole seeds.",
            points.seeds,
            switch::RESAMPLES
        ),
        &["quantity", "q", "estimate", "95% CI low", "95% CI high"],
    );
    for (i, q) in qs.iter().enumerate() {
        for (name, pick) in [
            ("Δ pass@1 under pass@8", 0),
            ("warm-start cross-family ⟨∇J_8, ∇J_1⟩", 1),
        ] {
            let v: Vec<f64> = curves
                .iter()
                .map(|c| {
                    if pick == 0 {
                        c.fall[i]
                    } else {
                        c.interference[i]
                    }
                })
                .collect();
            let (m, (lo, hi)) = crate::dose::mean_ci(&v);
            let f = |x: f64| if pick == 0 { fmt_f(x, 3) } else { fmt_e(x, 3) };
            table
                .rows
                .push(vec![name.into(), format!("{q}"), f(m), f(lo), f(hi)]);
        }
    }
    for (name, (est, (lo, hi))) in [
        ("q*_fall", points.fall),
        ("q*_int", points.interference),
        ("q*_fall − q*_int", points.gap),
    ] {
        table.rows.push(vec![
            name.into(),
            String::new(),
            fmt_f(est, 3),
            fmt_f(lo, 3),
            fmt_f(hi, 3),
        ]);
    }
    let mut beyond = Table::new(
        "interference_beyond_q",
        &format!(
            "EXPLORATORY (not pre-registered; written after the cells were seen): does the warm-start cross-family ⟨∇J_8, ∇J_1⟩ say more about the change of held-out pass@1 under pass@8 than q does? Both are centred within each q (q as a fixed effect, so only differences between the {} seeds at one q count); the slope of the change on the interference, its 95% percentile interval from {} resamples of whole seeds, and the share of the within-q variance of the change it explains. A positive slope: seeds whose warm start interferes more (more negative) lose more pass@1.",
            points.seeds,
            switch::RESAMPLES
        ),
        &["q values", "cells", "slope", "95% CI low", "95% CI high", "within-q R²"],
    );
    if let Some((b, r2, (lo, hi))) = switch::within_q_slope_ci(&curves) {
        beyond.rows.push(vec![
            qs.iter()
                .map(|q| q.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            (qs.len() * curves.len()).to_string(),
            fmt_e(b, 3),
            fmt_e(lo, 3),
            fmt_e(hi, 3),
            fmt_f(r2, 3),
        ]);
    }
    Some([table, beyond])
}

/// Renders the probe figures of each cell (file stems `probe_<hash>_inner_vs_k`,
/// `probe_<hash>_agreement`, `probe_<hash>_gram`) into `out_dir`: opt-in
/// (`passk report --per-cell DIR`), as they are many and named by hash.
pub fn render_probe_cells(
    cells: &[ProbeCell],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let mut paths = Vec::new();
    for c in cells {
        let hash = &c.cell.record.hash;
        let label = cell_label(&c.cell);
        let one = BTreeSet::from([hash.clone()]);
        let Some(first) = c.steps.first() else {
            continue;
        };

        let mut panels = vec![inner_chart(
            c,
            BLOCK_GLOBAL,
            format!("all prompts ({label})"),
        )];
        for block in first.cross_blocks() {
            panels.push(inner_chart(c, &block, format!("block {block}")));
        }
        let stem = format!("probe_{hash}_inner_vs_k");
        let figure = Figure {
            stem: stem.clone(),
            width: 820 * panels.len() as u32,
            height: 500,
            panels,
        };
        let files = render_figure(&figure, out_dir)?;
        let caption = format!("⟨∇J_k, ∇J_1⟩ from the gradient probe against k ({label}), one line per probe step (RL steps completed) with the outline of its 95% bootstrap band over prompts (dashed). Left: all probe prompts (split-half Gram); other panels: family a's pass@k-weighted gradient against family b's pass@1 direction (block a->b). Below zero: gradient conflict.");
        paths.extend(write_sidecar(
            out_dir,
            &stem,
            "figure",
            &caption,
            &files,
            one.clone(),
        )?);

        let families: Vec<String> = first
            .points()
            .into_iter()
            .map(|p| p.family)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let panels = first_last(&c.steps)
            .into_iter()
            .map(|s| agreement_chart(s, &families))
            .collect::<Vec<_>>();
        let stem = format!("probe_{hash}_agreement");
        let figure = Figure {
            stem: stem.clone(),
            width: 820 * panels.len() as u32,
            height: 500,
            panels,
        };
        let files = render_figure(&figure, out_dir)?;
        let caption = format!("Agreement â(x) = ⟨∇p(x), ∇J_1⟩ against the probe's p̂(x), coloured by family, at the first and last probe step ({label}). Below zero: improving the prompt alone lowers pass@1 to first order.");
        paths.extend(write_sidecar(
            out_dir,
            &stem,
            "figure",
            &caption,
            &files,
            one.clone(),
        )?);

        let stem = format!("probe_{hash}_gram");
        let maps = first_last(&c.steps)
            .into_iter()
            .map(|s| heatmap(s, &out_dir.join(format!("{stem}.svg"))))
            .collect::<Result<Vec<_>, _>>()?;
        let files = render_heatmaps(&maps, &stem, out_dir)?;
        let caption = format!("The split-half Gram matrix κ̂(x, x') of the probe prompts ({label}), sorted by family then p̂, at the first and last probe step; blue negative (interference), vermillion positive, saturating at the largest off-diagonal |κ̂|; black lines separate families. Large probe sets are shown as block means.");
        paths.extend(write_sidecar(
            out_dir, &stem, "figure", &caption, &files, one,
        )?);
    }
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
#[path = "probe_tests.rs"]
pub(crate) mod tests;
