//! Probe figures pooled over seeds: `⟨∇J_k, ∇J_1⟩` against k at the warm start and after RL per
//! objective, one panel per q, mean over seeds with a 95% interval over seeds, for all probe
//! prompts and for the block that carries the interference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::claims::RF_BLOCK;
use crate::dose::{display_name, mean_ci};
use crate::error::ReportError;
use crate::plot::{Chart, Figure, Legend, Mark, Series, XScale};
use passk_schema::probe::BLOCK_GLOBAL;

use crate::probe::{ProbeCell, ProbeStep};
use crate::theory::render_with_sidecar;
use crate::tiny::objective_k;

/// One line of a panel: the inner products of `block` at each k over several seeds' probes.
fn pooled_series(label: String, steps: &[&ProbeStep], block: &str, color: usize) -> Option<Series> {
    let mut by_k: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for s in steps {
        for k in s.ks() {
            if let Some(r) = s.row(k, block).filter(|r| r.inner.is_finite()) {
                by_k.entry(k).or_default().push(r.inner);
            }
        }
    }
    if by_k.is_empty() {
        return None;
    }
    let mut points = Vec::new();
    let mut intervals = Vec::new();
    for (k, v) in &by_k {
        let (m, ci) = mean_ci(v);
        points.push((f64::from(*k), m));
        intervals.push(ci);
    }
    Some(
        Series::new(
            format!("{label} ({} seeds)", steps.len()),
            points,
            Mark::LineAndPoints,
            color,
        )
        .with_intervals(intervals),
    )
}

fn panels(cells: &[ProbeCell], block: &str) -> Vec<Chart> {
    let y = if block == BLOCK_GLOBAL {
        "⟨∇J_k, ∇J_1⟩, all prompts (mean, 95% CI)".to_string()
    } else {
        format!("block {block} of ⟨∇J_k, ∇J_1⟩ (mean, 95% CI)")
    };
    let mut qs: Vec<f64> = cells.iter().map(|c| c.cell.q).collect();
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    let mut objectives: Vec<String> = cells.iter().map(|c| c.cell.objective.clone()).collect();
    objectives.sort_by_key(|o| (objective_k(o), o.clone()));
    objectives.dedup();
    let mut out = Vec::new();
    for q in qs {
        let at_q: Vec<&ProbeCell> = cells.iter().filter(|c| c.cell.q == q).collect();
        let mut chart = Chart::new(format!("q = {q}"), "k", y.clone());
        chart.x_scale = XScale::Log2;
        chart.zero_line = true;
        chart.legend = Legend::Outside;
        // Every objective of a seed starts from the same warm start: one probe per seed.
        let mut seen = BTreeSet::new();
        let start: Vec<&ProbeStep> = at_q
            .iter()
            .filter(|c| seen.insert(c.cell.seed))
            .filter_map(|c| c.steps.first().filter(|s| s.step == 0))
            .collect();
        chart.series.extend(pooled_series(
            "warm start".into(),
            &start,
            block,
            crate::style::REFERENCE,
        ));
        for objective in objectives.iter() {
            let end: Vec<&ProbeStep> = at_q
                .iter()
                .filter(|c| &c.cell.objective == objective)
                .filter_map(|c| c.steps.last().filter(|s| s.step > 0))
                .collect();
            let label = format!("after {}", display_name(objective));
            chart.series.extend(pooled_series(
                label,
                &end,
                block,
                crate::style::color_in(&objectives, objective),
            ));
        }
        if !chart.series.is_empty() {
            out.push(chart);
        }
    }
    out
}

/// Renders `probe_inner_vs_k` (all probe prompts) and `probe_block_inner_vs_k` (the block
/// reversed_addition->addition) into `out_dir`; returns their paths.
pub fn render_pooled(cells: &[ProbeCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let hashes: BTreeSet<String> = cells.iter().map(|c| c.cell.record.hash.clone()).collect();
    let mut paths = Vec::new();
    for (stem, block, what) in [
        ("probe_inner_vs_k", BLOCK_GLOBAL, "all probe prompts (split-half Gram)"),
        (
            "probe_block_inner_vs_k",
            RF_BLOCK,
            "the block reversed_addition->addition: the pass@k-weighted gradients of reversed prompts against the pass@1 direction of forward prompts",
        ),
    ] {
        let panels = panels(cells, block);
        if panels.is_empty() {
            continue;
        }
        let figure = Figure {
            stem: stem.into(),
            width: 760 * panels.len() as u32,
            height: 480,
            panels,
        };
        let caption = format!(
            "The gradient probe's ⟨∇J_k, ∇J_1⟩ against k for {what}, one panel per q: at the warm start (grey, one probe per seed) and after RL with each objective; mean over seeds with a 95% Student-t band over seeds. Below zero: a pass@k step lowers pass@1 to first order."
        );
        paths.extend(render_with_sidecar(&figure, out_dir, &caption, hashes.clone())?);
    }
    Ok(paths)
}
