//! What RL did in an LM experiment: the change of held-out pass@k from the start to the end of
//! training per objective and family (mean over seeds, 95% Student-t intervals), the same
//! change paired by seed against the pass@1 objective, the gradient probe's global statistic,
//! and a figure of pass@k against k before and after.
//!
//! Cells of one seed start from the same model and evaluate the same prompts, so their
//! difference is a paired comparison: the seed-to-seed spread of the starting point cancels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use passk_core::stats::{mean, t_interval};

use super::LmCell;
use crate::dose::{display_name, mean_ci};
use crate::error::ReportError;
use crate::plot::{Chart, Figure, Legend, Mark, Series, XScale};
use crate::tables::{fmt_f, Shown, Table};
use crate::theory::{render_with_sidecar, write_sidecar};
use crate::tiny::{ci_bound, ci_text, objective_k, Deltas, DeltasTable};

/// The objective the others are paired against.
const BASELINE: &str = "pass1_rloo";

/// Cells that trained with one objective and one setting of every other varied parameter
/// (seeds pooled).
struct Group<'a> {
    objective: String,
    /// The parameters other than the objective and the seed that vary between the
    /// experiment's training cells, as `path=value` (empty when only those two vary).
    setting: String,
    cells: Vec<&'a LmCell>,
}

impl Group<'_> {
    /// The objective's display name, with the setting when there is one.
    fn name(&self) -> String {
        if self.setting.is_empty() {
            display_name(&self.objective)
        } else {
            format!("{}, {}", display_name(&self.objective), self.setting)
        }
    }
}

/// Every leaf of `value` as (`a.b.c`, its JSON text).
fn leaves(value: &serde_json::Value, path: String, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(v, p, out);
            }
        }
        other => {
            out.insert(path, other.to_string());
        }
    }
}

/// Groups `cells` by objective and by the other parameters that vary among them; objectives
/// sorted by k, then by setting.
fn by_objective<'a>(cells: &[&'a LmCell]) -> Vec<Group<'a>> {
    let flat: Vec<BTreeMap<String, String>> = cells
        .iter()
        .map(|c| {
            let mut m = BTreeMap::new();
            leaves(&c.config, String::new(), &mut m);
            m.remove("seed");
            m.remove("rl.objective");
            m
        })
        .collect();
    let paths: BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    let varying: Vec<&String> = paths
        .into_iter()
        .filter(|p| {
            flat.iter()
                .map(|m| m.get(*p))
                .collect::<BTreeSet<_>>()
                .len()
                > 1
        })
        .collect();
    let mut groups: BTreeMap<(u32, String, String), Vec<&LmCell>> = BTreeMap::new();
    for (c, m) in cells.iter().zip(&flat) {
        let setting = varying
            .iter()
            .map(|p| format!("{p}={}", m.get(*p).map_or("-", String::as_str)))
            .collect::<Vec<_>>()
            .join(", ");
        groups
            .entry((objective_k(&c.objective), c.objective.clone(), setting))
            .or_default()
            .push(c);
    }
    groups
        .into_iter()
        .map(|((_, objective, setting), cells)| Group {
            objective,
            setting,
            cells,
        })
        .collect()
}

/// Δ pass@k of every cell in `group` (cells lacking either evaluation are an error).
fn deltas(group: &[&LmCell], family: &str, k: u32, dir: &Path) -> Result<Vec<f64>, ReportError> {
    group
        .iter()
        .map(|c| {
            c.delta(family, k).ok_or_else(|| {
                ReportError::invalid(
                    dir,
                    format!(
                        "cell `{}` lacks the start or final evaluation of {family} pass@{k}; \
                         rerun it",
                        c.label
                    ),
                )
            })
        })
        .collect()
}

/// Renders `deltas`, `paired` and `probe` tables and the `pass_at_k_vs_k` figure for the
/// training cells among `cells`; nothing when no cell trained.
pub(crate) fn report_training(
    cells: &[LmCell],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let trained: Vec<&LmCell> = cells.iter().filter(|c| c.steps > 0).collect();
    if trained.is_empty() {
        return Ok(Vec::new());
    }
    let groups = by_objective(&trained);
    let hashes: BTreeSet<String> = trained.iter().map(|c| c.hash.clone()).collect();
    let mut families: Vec<String> = trained
        .iter()
        .flat_map(|c| c.eval.iter().map(|r| r.family.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|f| f != "all")
        .collect();
    families.insert(0, "all".to_string());
    // The largest k an objective targets, among the evaluated ks: an objective whose k is its
    // group size (k = 0 in the registry), or a k the evaluation skipped, falls back to the
    // largest evaluated k rather than failing the report.
    let evaluated: BTreeSet<u32> = trained
        .iter()
        .flat_map(|c| c.eval.iter().map(|r| r.k))
        .collect();
    let largest = evaluated.iter().copied().max().unwrap_or(1);
    let k_max = groups
        .iter()
        .map(|g| match objective_k(&g.objective) {
            k if evaluated.contains(&k) => k,
            _ => largest,
        })
        .max()
        .unwrap_or(1);
    let mut paths = Vec::new();
    let mut table = DeltasTable::new(
        "deltas",
        &format!(
            "Change of held-out pass@1 and pass@{k_max} from the start to the end of RL, per \
             objective and family: mean over seeds with a 95% Student-t interval (n/a with one \
             seed). Start: pass@1 before training."
        ),
        &["objective", "family", "seeds", "start pass@1"],
        &[],
    );
    for g in &groups {
        for family in &families {
            let d = Deltas {
                k: k_max,
                pass1: deltas(&g.cells, family, 1, out_dir)?,
                passk: deltas(&g.cells, family, k_max, out_dir)?,
            };
            let start: Vec<f64> = g.cells.iter().filter_map(|c| c.at(0, family, 1)).collect();
            let lead = vec![
                g.name(),
                family.clone(),
                g.cells.len().to_string(),
                fmt_f(mean(&start), 3),
            ];
            table.push(lead, &d, Vec::new());
        }
    }
    paths.extend(sidecar(table.table, out_dir, &hashes)?);
    paths.extend(paired_table(&groups, &families, k_max, out_dir, &hashes)?);
    paths.extend(probe_table(&groups, out_dir, &hashes)?);
    paths.extend(figure(&groups, out_dir, &hashes)?);
    Ok(paths)
}

fn sidecar(
    table: Table,
    out_dir: &Path,
    hashes: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    let files = table.write_all(out_dir)?;
    write_sidecar(
        out_dir,
        &table.name,
        "table",
        &table.caption,
        &files,
        hashes.clone(),
    )
}

/// Per seed, an objective's Δ minus the pass@1 objective's Δ of the same seed.
fn paired_table(
    groups: &[Group<'_>],
    families: &[String],
    k_max: u32,
    out_dir: &Path,
    hashes: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    if !groups.iter().any(|g| g.objective == BASELINE) {
        return Ok(Vec::new());
    }
    let mut table = Table::new(
        "paired",
        &format!(
            "Each objective against pass@1 training, paired by seed (same start, same prompts): \
             its Δ held-out pass@1 and Δ pass@{k_max} minus those of the pass@1 objective, mean \
             over the seeds both have with a 95% Student-t interval. Below zero: lower than under \
             pass@1 training."
        ),
        &[
            "objective",
            "family",
            "seeds",
            "Δ pass@1 − pass@1 training",
            "95% CI",
            "k",
            "Δ pass@k − pass@1 training",
            "95% CI (k)",
            "pass@1 ci_low",
            "pass@1 ci_high",
            "pass@k ci_low",
            "pass@k ci_high",
        ],
    );
    table.shown = vec![
        (4, Shown::TextOnly),
        (7, Shown::TextOnly),
        (8, Shown::CsvOnly),
        (9, Shown::CsvOnly),
        (10, Shown::CsvOnly),
        (11, Shown::CsvOnly),
    ];
    for g in groups.iter().filter(|g| g.objective != BASELINE) {
        let Some(base) = groups
            .iter()
            .find(|b| b.objective == BASELINE && b.setting == g.setting)
            .map(|b| &b.cells)
        else {
            continue;
        };
        for family in families {
            let (mut d1, mut dk) = (Vec::new(), Vec::new());
            for c in &g.cells {
                let Some(b) = base.iter().find(|b| b.seed == c.seed) else {
                    continue;
                };
                if let (Some(x), Some(y)) = (c.delta(family, 1), b.delta(family, 1)) {
                    d1.push(x - y);
                }
                if let (Some(x), Some(y)) = (c.delta(family, k_max), b.delta(family, k_max)) {
                    dk.push(x - y);
                }
            }
            table.rows.push(vec![
                g.name(),
                family.clone(),
                d1.len().to_string(),
                fmt_f(mean(&d1), 3),
                ci_text(&d1),
                k_max.to_string(),
                fmt_f(mean(&dk), 3),
                ci_text(&dk),
                ci_bound(&d1, false),
                ci_bound(&d1, true),
                ci_bound(&dk, false),
                ci_bound(&dk, true),
            ]);
        }
    }
    sidecar(table, out_dir, hashes)
}

/// The probe's global `⟨∇J_k, ∇J_1⟩` and cosine at the first and last probe, mean over seeds.
fn probe_table(
    groups: &[Group<'_>],
    out_dir: &Path,
    hashes: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    if groups
        .iter()
        .all(|g| g.cells.iter().all(|c| c.probe.is_empty()))
    {
        return Ok(Vec::new());
    }
    let mut table = Table::new(
        "probe",
        "The sketched gradient probe on held-out probe prompts at the start (RL step 0) and the \
         end of training: ⟨∇J_k, ∇J_1⟩ (global) and the cosine of ∇J_k with ∇J_1, mean over \
         seeds; the inner product's 95% Student-t interval over seeds. A positive inner product \
         means a small pass@k step also raises pass@1. The cosine is undefined (n/a) in a cell \
         whose split-half estimate of a squared norm came out negative, which happens when few \
         probe samples succeed; its column says in how many seeds it was defined.",
        &[
            "objective",
            "RL step",
            "k",
            "seeds",
            "⟨∇J_k, ∇J_1⟩",
            "95% CI",
            "cosine",
        ],
    );
    for g in groups {
        let mut keys: BTreeSet<(u64, u32)> = BTreeSet::new();
        for c in &g.cells {
            keys.extend(c.probe.iter().map(|p| (p.step, p.k)));
        }
        for (step, k) in keys {
            let rows: Vec<_> = g
                .cells
                .iter()
                .filter_map(|c| c.probe.iter().find(|p| p.step == step && p.k == k))
                .collect();
            let inner: Vec<f64> = rows.iter().map(|p| p.inner).collect();
            let cosine: Vec<f64> = rows.iter().filter_map(|p| p.cosine).collect();
            table.rows.push(vec![
                g.name(),
                step.to_string(),
                k.to_string(),
                rows.len().to_string(),
                crate::tables::fmt_e(mean(&inner), 3),
                t_interval(&inner, 0.95).map_or("n/a".to_string(), |i| {
                    format!(
                        "[{}, {}]",
                        crate::tables::fmt_e(i.lo, 2),
                        crate::tables::fmt_e(i.hi, 2)
                    )
                }),
                if cosine.is_empty() {
                    "n/a".to_string()
                } else {
                    format!(
                        "{} ({} of {})",
                        fmt_f(mean(&cosine), 3),
                        cosine.len(),
                        rows.len()
                    )
                },
            ]);
        }
    }
    sidecar(table, out_dir, hashes)
}

/// Held-out pass@k against k before RL (each seed's start once) and after, per objective, with
/// bands over seeds; and the change, with a zero line.
fn figure(
    groups: &[Group<'_>],
    out_dir: &Path,
    hashes: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    let ks: Vec<u32> = groups
        .iter()
        .flat_map(|g| g.cells.iter().flat_map(|c| c.eval.iter().map(|r| r.k)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut level = Chart::new(
        "Held-out pass@k before and after RL",
        "k",
        "pass@k (all prompts)",
    );
    level.x_scale = XScale::Log2;
    level.legend = Legend::LowerRight;
    let mut change = Chart::new("Change from the start of RL", "k", "Δ pass@k (end − start)");
    change.x_scale = XScale::Log2;
    change.zero_line = true;
    change.legend = Legend::LowerRight;
    // The objectives of one seed and setting share their start: count it once.
    let mut seen = BTreeSet::new();
    let starts: Vec<&LmCell> = groups
        .iter()
        .flat_map(|g| g.cells.iter().map(move |c| (g.setting.as_str(), *c)))
        .filter(|(setting, c)| seen.insert((*setting, c.seed)))
        .map(|(_, c)| c)
        .collect();
    let series = |cells: &[&LmCell], value: &dyn Fn(&LmCell, u32) -> Option<f64>| {
        let mut points = Vec::new();
        let mut bands = Vec::new();
        for &k in &ks {
            let v: Vec<f64> = cells.iter().filter_map(|c| value(c, k)).collect();
            if v.is_empty() {
                continue;
            }
            let (m, band) = mean_ci(&v);
            points.push((f64::from(k), m));
            bands.push(band);
        }
        (points, bands)
    };
    let start_of = |c: &LmCell, k: u32| c.at(0, "all", k);
    let (p, b) = series(&starts, &start_of);
    level
        .series
        .push(Series::new("before RL", p, Mark::DashedLine, 7).with_intervals(b));
    // Each objective its fixed colour, unless one objective runs in several settings (then
    // the groups are told apart by position).
    let names: Vec<&str> = groups.iter().map(|g| g.objective.as_str()).collect();
    let unique = names
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == names.len();
    let styled = crate::style::colors(&names);
    for (i, g) in groups.iter().enumerate() {
        let i = if unique { styled[i] } else { i };
        let end_of = |c: &LmCell, k: u32| c.at(c.steps, "all", k);
        let (p, b) = series(&g.cells, &end_of);
        let name = format!("after {}", g.name());
        level
            .series
            .push(Series::new(name, p, Mark::LineAndPoints, i).with_intervals(b));
        let delta_of = |c: &LmCell, k: u32| c.delta("all", k);
        let (p, b) = series(&g.cells, &delta_of);
        change
            .series
            .push(Series::new(g.name(), p, Mark::LineAndPoints, i).with_intervals(b));
    }
    let figure = Figure {
        stem: "pass_at_k_vs_k".into(),
        width: 1640,
        height: 560,
        panels: vec![level, change],
    };
    let caption = "Held-out pass@k against k (all prompts) before RL (dashed; the objectives of a \
                   seed share it) and after RL per objective (left), and the change from the \
                   start (right): mean over seeds with 95% Student-t bands.";
    render_with_sidecar(&figure, out_dir, caption, hashes.clone())
}
