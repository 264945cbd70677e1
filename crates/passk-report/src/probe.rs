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

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use crate::load::{read_csv, rename_into_place, temp_path_for, write_atomic};
use crate::plot::{
    ensure_font, render_figure, Chart, Figure, Legend, Mark, Series, XScale, FONT_FAMILY,
};
use crate::tables::{fmt_e, fmt_f, Table};
use crate::theory::write_sidecar;
use crate::tiny::{load_tiny_cells, TinyCell};

/// The directory of a cell holding one `step-<NNNNN>` directory per probe.
pub const PROBE_DIR: &str = "probe";

/// The names of a probe step's files.
pub mod probe_files {
    /// [`super::ProbePromptRow`] rows.
    pub const PROMPTS: &str = "prompts.csv";
    /// The Gram matrix: upper triangle, row-major, little-endian f32 (see
    /// `passk_core::interference::Gram::to_upper_f32_le`).
    pub const GRAM: &str = "gram.f32";
    /// The Gram matrix as [`super::ProbeGramRow`] rows, in cells written before `gram.f32`.
    pub const GRAM_CSV: &str = "gram.csv";
    /// [`super::ProbeSummaryRow`] rows.
    pub const SUMMARY: &str = "summary.csv";
}

/// Block label of the global statistic.
pub const GLOBAL_BLOCK: &str = "global";

/// Most heatmap cells per side; larger Gram matrices are averaged over square blocks.
const HEATMAP_MAX_SIDE: usize = 64;

/// `prompts.csv`: one prompt at one k (long format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePromptRow {
    /// Position of the prompt in the probe set.
    pub index: usize,
    /// Family name.
    pub family: String,
    /// Samples drawn.
    pub n_samples: usize,
    /// Correct samples.
    pub n_correct: usize,
    /// `p̂ = n_correct / n_samples`.
    pub p_hat: f64,
    /// Agreement `â(x) = ⟨∇p(x), ∇J_1⟩`.
    pub agreement: f64,
    /// Unbiased split-half `κ̂(x, x)`.
    pub kappa_self: f64,
    /// Naive `‖ĝ(x)‖²`.
    pub kappa_self_naive: f64,
    /// The k of this row.
    pub k: u32,
    /// `w_k(p̂)`.
    pub w_k: f64,
}

/// `gram.csv`: `κ̂(x_i, x_j)` for `i <= j`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeGramRow {
    /// Row index.
    pub i: usize,
    /// Column index.
    pub j: usize,
    /// The kernel estimate.
    pub kappa: f64,
}

/// `summary.csv`: a statistic of `⟨∇J_k, ∇J_1⟩` for one k and block (`global`, `trimmed` or
/// `a->b`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummaryRow {
    /// The k of pass@k.
    pub k: u32,
    /// `global`, `trimmed` or `a->b` (family a's pass@k-weighted gradient against family b's
    /// pass@1 direction).
    pub block: String,
    /// Point estimate.
    pub inner: f64,
    /// Lower end of the 95% bootstrap interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Cosine from the split-half Gram (NaN where undefined).
    pub cosine: f64,
    /// Cosine with the naive diagonal.
    pub naive_cosine: f64,
}

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
            prompts: read_csv(&dir.join(probe_files::PROMPTS))?,
            gram: read_gram(&dir)?,
            summary: read_csv(&dir.join(probe_files::SUMMARY))?,
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
            let first = c.steps.first()?;
            let k = c.cell.objective_k();
            Some(SignRow {
                q: c.cell.q,
                objective: c.cell.objective.clone(),
                seed: c.cell.seed,
                k,
                global_inner: first.row(k, GLOBAL_BLOCK)?.inner,
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
        "Does the sign of ⟨∇J_k, ∇J_1⟩ at the warm start (k of the RL objective) predict a fall of held-out pass@1 (final − warm start < 0)? Global: all probe prompts; cross-family: the sum of the blocks between different families. Counts of cells by sign and outcome; 'agreement' is the share of cells where a negative sign went with a fall or a non-negative sign with no fall.",
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
        for r in rows {
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

/// A heatmap panel: the Gram matrix of one step, ordered by family then `p̂`, averaged over
/// blocks of `block` prompts, with family boundaries.
struct Heatmap {
    title: String,
    /// Cell values (block means), row-major `side × side`.
    values: Vec<f64>,
    side: usize,
    /// Family boundaries in cell units.
    boundaries: Vec<f64>,
    /// Colour scale: ±`scale` saturates.
    scale: f64,
}

/// The Gram rows of a probe step directory, from `gram.f32` or, in older cells, `gram.csv`.
fn read_gram(dir: &Path) -> Result<Vec<ProbeGramRow>, ReportError> {
    let binary = dir.join(probe_files::GRAM);
    if !binary.exists() {
        return read_csv(&dir.join(probe_files::GRAM_CSV));
    }
    let bytes = std::fs::read(&binary).map_err(|e| ReportError::io(&binary, e))?;
    let gram = passk_core::interference::Gram::from_upper_f32_le(&bytes).ok_or_else(|| {
        ReportError::invalid(
            &binary,
            "its length is not n (n + 1) / 2 f32 values; rerun the cell",
        )
    })?;
    Ok(gram
        .upper_entries()
        .map(|(i, j, kappa)| ProbeGramRow { i, j, kappa })
        .collect())
}

fn heatmap(step: &ProbeStep, path: &Path) -> Result<Heatmap, ReportError> {
    let mut points = step.points();
    let n = points.len();
    let bad = |m: String| ReportError::invalid(path, m);
    if n == 0 {
        return Err(bad(format!("probe step {} has no prompts", step.step)));
    }
    let mut full = vec![f64::NAN; n * n];
    for r in &step.gram {
        if r.i >= n || r.j >= n {
            return Err(bad(format!(
                "the Gram matrix of step {} has index ({}, {}) beyond its {n} prompts; rerun the probe",
                step.step, r.i, r.j
            )));
        }
        full[r.i * n + r.j] = r.kappa;
        full[r.j * n + r.i] = r.kappa;
    }
    points.sort_by(|a, b| {
        a.family
            .cmp(&b.family)
            .then(a.p_hat.total_cmp(&b.p_hat))
            .then(a.index.cmp(&b.index))
    });
    let block = n.div_ceil(HEATMAP_MAX_SIDE);
    let side = n.div_ceil(block);
    let mut values = vec![0.0; side * side];
    let mut counts = vec![0usize; side * side];
    let mut off_diag_max: f64 = 0.0;
    for (a, pa) in points.iter().enumerate() {
        for (b, pb) in points.iter().enumerate() {
            let v = full[pa.index * n + pb.index];
            if v.is_finite() {
                values[(a / block) * side + b / block] += v;
                counts[(a / block) * side + b / block] += 1;
                if a != b {
                    off_diag_max = off_diag_max.max(v.abs());
                }
            }
        }
    }
    for (v, c) in values.iter_mut().zip(&counts) {
        *v = if *c > 0 { *v / *c as f64 } else { f64::NAN };
    }
    let boundaries = points
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].family != w[1].family)
        .map(|(i, _)| (i + 1) as f64 / block as f64)
        .collect();
    let scale = if off_diag_max > 0.0 {
        off_diag_max
    } else {
        values
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0, |m: f64, v| m.max(v.abs()))
            .max(1e-300)
    };
    let families: BTreeSet<&str> = points.iter().map(|p| p.family.as_str()).collect();
    let fam_list: Vec<&str> = families.into_iter().collect();
    Ok(Heatmap {
        title: format!(
            "step {}: estimated κ ({}; ±{} saturates{})",
            step.step,
            fam_list.join(" | "),
            fmt_e(scale, 2),
            if block > 1 {
                format!("; {block}×{block} block means")
            } else {
                String::new()
            }
        ),
        values,
        side,
        boundaries,
        scale,
    })
}

/// Blue (negative) through white to vermillion (positive).
fn diverging(v: f64, scale: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(200, 200, 200);
    }
    let t = (v / scale).clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        (0.0, 114.0, 178.0)
    } else {
        (213.0, 94.0, 0.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + a * (c - 255.0)).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

fn draw_heatmaps<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    maps: &[Heatmap],
    path: &Path,
) -> Result<(), ReportError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ReportError::Plot {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    };
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, maps.len().max(1)));
    for (area, map) in areas.iter().zip(maps) {
        let s = map.side as f64;
        let mut ctx = ChartBuilder::on(area)
            .caption(&map.title, (FONT_FAMILY, 16))
            .margin(14)
            .x_label_area_size(30)
            .y_label_area_size(30)
            .build_cartesian_2d(0.0..s, s..0.0)
            .map_err(err)?;
        ctx.configure_mesh()
            .disable_mesh()
            .x_desc("prompt (by family, then estimated p)")
            .y_desc("prompt")
            .axis_desc_style((FONT_FAMILY, 13))
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(err)?;
        let side = map.side;
        ctx.draw_series((0..side * side).map(|c| {
            let (i, j) = ((c / side) as f64, (c % side) as f64);
            Rectangle::new(
                [(j, i), (j + 1.0, i + 1.0)],
                diverging(map.values[c], map.scale).filled(),
            )
        }))
        .map_err(err)?;
        for &b in &map.boundaries {
            ctx.draw_series(LineSeries::new(
                vec![(b, 0.0), (b, s)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            ctx.draw_series(LineSeries::new(
                vec![(0.0, b), (s, b)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes heatmap panels as `<dir>/<stem>.svg` and `.png` (atomically); returns both paths.
fn render_heatmaps(maps: &[Heatmap], stem: &str, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    ensure_font()?;
    let (w, h) = (560 * maps.len().max(1) as u32, 600);
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw_heatmaps(root, maps, &svg_path)?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = temp_path_for(&png_path);
    let drawn = {
        let root = BitMapBackend::new(&tmp, (w, h)).into_drawing_area();
        draw_heatmaps(root, maps, &png_path)
    };
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    rename_into_place(&tmp, &png_path)?;
    Ok(vec![svg_path, png_path])
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
    for table in [sign_prediction_table(&rows), sign_detail_table(&rows)] {
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
            GLOBAL_BLOCK,
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
pub(crate) mod tests {
    use super::*;
    use crate::load::CELL_FILE;
    use crate::schema::{CellRecord, TinyEvalRow, SCHEMA_VERSION};

    fn write_csv<T: Serialize>(path: &Path, rows: &[T]) {
        let mut w = csv::Writer::from_path(path).unwrap();
        for r in rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
    }

    /// A probe step of 6 prompts (3 `addition`, 3 `reversed_addition`) where the cross-family
    /// kernel is `cross` and within-family entries are positive.
    fn write_step(dir: &Path, cross: f64) {
        std::fs::create_dir_all(dir).unwrap();
        let fam = |i: usize| {
            if i % 2 == 0 {
                "addition"
            } else {
                "reversed_addition"
            }
        };
        let n = 6;
        let kappa = |i: usize, j: usize| {
            if fam(i) == fam(j) {
                1.0 + 0.1 * (i + j) as f64
            } else {
                cross
            }
        };
        let ks = [1u32, 2, 8];
        let mut prompts = Vec::new();
        for i in 0..n {
            let agreement = (0..n).map(|j| kappa(i, j)).sum::<f64>() / n as f64;
            for &k in &ks {
                prompts.push(ProbePromptRow {
                    index: i,
                    family: fam(i).into(),
                    n_samples: 8,
                    n_correct: i,
                    p_hat: i as f64 / 8.0,
                    agreement,
                    kappa_self: kappa(i, i),
                    kappa_self_naive: 2.0 * kappa(i, i),
                    k,
                    w_k: f64::from(k) * (1.0 - i as f64 / 8.0).powi(k as i32 - 1),
                });
            }
        }
        let gram: Vec<ProbeGramRow> = (0..n)
            .flat_map(|i| (i..n).map(move |j| (i, j)))
            .map(|(i, j)| ProbeGramRow {
                i,
                j,
                kappa: kappa(i, j),
            })
            .collect();
        let mut summary = Vec::new();
        for &k in &ks {
            let sign = if k == 1 { 1.0 } else { cross.signum() };
            for (block, inner) in [
                ("global", 0.5 * sign),
                ("trimmed", 0.4 * sign),
                ("addition->addition", 0.3),
                ("addition->reversed_addition", 0.1 * cross),
                ("reversed_addition->addition", 0.2 * cross),
                ("reversed_addition->reversed_addition", 0.3),
            ] {
                summary.push(ProbeSummaryRow {
                    k,
                    block: block.into(),
                    inner,
                    ci_low: inner - 0.1,
                    ci_high: inner + 0.1,
                    cosine: if block == "trimmed" {
                        f64::NAN
                    } else {
                        0.3 * sign
                    },
                    naive_cosine: f64::NAN,
                });
            }
        }
        write_csv(&dir.join(probe_files::PROMPTS), &prompts);
        // The packed binary form of new cells where the step directory ends in 0, else older
        // cells' CSV, so both readers are exercised.
        if dir.to_string_lossy().ends_with("00000") {
            let mut g = passk_core::interference::Gram::new(n);
            for r in &gram {
                g.set(r.i, r.j, r.kappa);
                g.set(r.j, r.i, r.kappa);
            }
            std::fs::write(dir.join(probe_files::GRAM), g.to_upper_f32_le()).unwrap();
        } else {
            write_csv(&dir.join(probe_files::GRAM_CSV), &gram);
        }
        write_csv(&dir.join(probe_files::SUMMARY), &summary);
    }

    /// A tiny cell with probes at steps 0 and 100 and held-out pass@1 moving by `delta`.
    fn write_cell(exp: &Path, hash: &str, q: f64, objective: &str, cross: f64, delta: f64) {
        write_cell_seeded(exp, hash, q, objective, 0, cross, delta);
    }

    /// [`write_cell`] with a seed; the block reversed_addition->addition is `0.2 cross ± 0.1`.
    pub(crate) fn write_cell_seeded(
        exp: &Path,
        hash: &str,
        q: f64,
        objective: &str,
        seed: u64,
        cross: f64,
        delta: f64,
    ) {
        let dir = exp.join(hash);
        std::fs::create_dir_all(&dir).unwrap();
        let record = CellRecord {
            schema: SCHEMA_VERSION,
            experiment: "fixture".into(),
            tier: "tiny".into(),
            hash: hash.into(),
            config: serde_json::json!({
                "mixture": {"cue_reliability": q},
                "rl": {"objective": objective},
                "seed": seed
            }),
        };
        std::fs::write(dir.join(CELL_FILE), serde_json::to_string(&record).unwrap()).unwrap();
        let eval = [(0, 0.8), (200, 0.8 + delta)]
            .map(|(step, p)| TinyEvalRow {
                step,
                family: "all".into(),
                k: 1,
                pass_at_k: p,
                n_prompts: 400,
            })
            .to_vec();
        write_csv(&dir.join("eval.csv"), &eval);
        write_step(&dir.join(PROBE_DIR).join("step-00000"), cross);
        write_step(&dir.join(PROBE_DIR).join("step-00100"), cross * 2.0);
    }

    fn fixture(exp: &Path) {
        // Interference: cross-family kernel negative, pass@1 falls under pass@8.
        write_cell(
            exp,
            "aaaa000000000000",
            0.75,
            "pkpo_loo_minus_one:k=8",
            -0.5,
            -0.1,
        );
        // Control: positive kernel, pass@1 rises.
        write_cell(
            exp,
            "bbbb000000000000",
            1.0,
            "pkpo_loo_minus_one:k=8",
            0.5,
            0.02,
        );
        // A pass@1 cell (k = 1: positive global sign) that nevertheless fell.
        write_cell(exp, "cccc000000000000", 0.75, "pass1_rloo", -0.5, -0.01);
    }

    #[test]
    fn loads_renders_and_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        fixture(&exp);
        let cells = load_probe_cells(&exp).unwrap();
        assert_eq!(cells.len(), 3);
        assert_eq!(
            cells[0].steps.iter().map(|s| s.step).collect::<Vec<_>>(),
            [0, 100]
        );
        let first = &cells[0].steps[0];
        assert_eq!(first.ks(), [1, 2, 8]);
        assert_eq!(
            first.cross_blocks(),
            ["addition->reversed_addition", "reversed_addition->addition"]
        );
        let cross = first.cross_family_inner(8).unwrap();
        assert!((cross - (0.1 + 0.2) * -0.5).abs() < 1e-12);
        assert!(first.row(8, "trimmed").unwrap().cosine.is_nan());

        let out = tmp.path().join("fig");
        let paths = render_probe(&cells, &out).unwrap();
        for stem in ["probe_inner_vs_k", "probe_block_inner_vs_k"] {
            for ext in ["svg", "png", "sources.json"] {
                assert!(
                    paths.contains(&out.join(format!("{stem}.{ext}"))),
                    "missing {stem}"
                );
            }
        }
        assert!(!paths
            .iter()
            .any(|p| p.to_string_lossy().contains("aaaa000000000000")));
        let paths = render_probe_cells(&cells, &out).unwrap();
        for stem in ["inner_vs_k", "agreement", "gram"] {
            for ext in ["svg", "png", "sources.json"] {
                let p = out.join(format!("probe_aaaa000000000000_{stem}.{ext}"));
                assert!(paths.contains(&p), "missing {p:?}");
            }
        }
        for ext in ["csv", "md", "tex", "sources.json"] {
            assert!(out.join(format!("probe_sign_prediction.{ext}")).is_file());
        }
        let svg = std::fs::read_to_string(out.join("probe_aaaa000000000000_gram.svg")).unwrap();
        assert!(svg.contains("<rect"), "heatmap cells drawn");

        // Same inputs, same bytes.
        let again = tmp.path().join("fig2");
        render_probe_cells(&cells, &again).unwrap();
        for p in &paths {
            let q = again.join(p.file_name().unwrap());
            assert_eq!(
                std::fs::read(p).unwrap(),
                std::fs::read(&q).unwrap(),
                "{p:?}"
            );
        }
    }

    #[test]
    fn sign_table_counts_outcomes() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        fixture(&exp);
        let cells = load_probe_cells(&exp).unwrap();
        let rows = sign_rows(&cells);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].k, 8);
        assert!(rows[0].global_inner < 0.0 && rows[0].pass1_delta < 0.0);
        assert_eq!(rows[2].k, 1);
        let table = sign_prediction_table(&rows);
        // global: aaaa negative & fell, bbbb non-negative & held, cccc non-negative & fell.
        assert_eq!(table.rows[0], ["global", "3", "1", "0", "1", "1", "0.67"]);
        // cross-family: aaaa negative & fell, bbbb non-negative & held, cccc negative & fell.
        assert_eq!(
            table.rows[1],
            ["cross-family", "3", "2", "0", "0", "1", "1.00"]
        );
        table.validate().unwrap();
        assert_eq!(sign_prediction_table(&[]).rows[0][6], "n/a");
    }

    #[test]
    fn heatmap_orders_by_family_then_p_and_averages_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        write_step(tmp.path(), -0.5);
        let steps = load_probe_steps(tmp.path().parent().unwrap()).unwrap();
        assert!(steps.is_empty(), "no probe/ directory: no steps");
        let dir = tmp.path().join("cell");
        write_step(&dir.join(PROBE_DIR).join("step-00007"), -0.5);
        let steps = load_probe_steps(&dir).unwrap();
        let map = heatmap(&steps[0], Path::new("x.svg")).unwrap();
        assert_eq!(map.side, 6);
        assert_eq!(map.boundaries, [3.0]);
        // The first three rows are the additions (even indices, p̂ ascending): κ between
        // additions 0 and 2 is 1.2; across families -0.5.
        assert!((map.values[1] - 1.2).abs() < 1e-12);
        assert_eq!(map.values[3], -0.5);
        assert_eq!(diverging(-1.0, 1.0), RGBColor(0, 114, 178));
        assert_eq!(diverging(0.0, 1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(5.0, 1.0), RGBColor(213, 94, 0));
    }
}
