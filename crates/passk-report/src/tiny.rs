//! Tiny-tier figures and tables: held-out pass@1 over RL training per objective, and the
//! headline change of pass@1 from the warm start against the cue reliability q.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use passk_core::objective::objective_from_spec;
use passk_core::stats::{mean, t_interval};

use crate::error::ReportError;
use crate::load::{read_csv, read_json};
use crate::plot::{render_figure, Chart, Figure, Legend, Mark, Series};
use crate::tables::{fmt_f, Shown, Table};
use crate::theory::write_sidecar;
use passk_schema::cell::CellRecord;
use passk_schema::cell::CELL_FILE;
use passk_schema::eval::{EvalRow, FormatRow, EVAL_FILE, FORMAT_FILE};
use passk_schema::train::{TrainLogRow, TRAIN_LOG_FILE};

/// One tiny-tier cell as read from `results/<experiment>/<hash>/`.
#[derive(Debug, Clone)]
pub struct TinyCell {
    /// `cell.json`.
    pub record: CellRecord,
    /// `eval.csv`.
    pub eval: Vec<EvalRow>,
    /// `eval_format.csv` (empty where a cell has none).
    pub format: Vec<FormatRow>,
    /// Cue reliability q (`mixture.cue_reliability`).
    pub q: f64,
    /// The RL objective spec (`rl.objective`).
    pub objective: String,
    /// The cell's seed.
    pub seed: u64,
    /// `(step, conflict_cos)` of `train_log.csv` for the steps of a projected objective that
    /// logged one (empty for other objectives, or without a log).
    pub conflict: Vec<(u64, f64)>,
}

impl TinyCell {
    /// Held-out pass@k of `family` at `step`, if evaluated.
    pub fn pass_at(&self, step: u64, family: &str, k: u32) -> Option<f64> {
        self.eval
            .iter()
            .find(|r| r.step == step && r.family == family && r.k == k)
            .map(|r| r.pass_at_k)
    }

    /// The last evaluated step.
    pub fn last_step(&self) -> u64 {
        self.eval.iter().map(|r| r.step).max().unwrap_or(0)
    }

    /// Final minus warm-start held-out pass@k over all prompts.
    pub fn delta(&self, k: u32) -> Option<f64> {
        Some(self.pass_at(self.last_step(), "all", k)? - self.pass_at(0, "all", k)?)
    }

    /// The k its objective targets for the cell's group size (`rl.samples_per_prompt`), from
    /// the objective registry: 1 for pass@1 objectives, the group size for `tang_loo` without
    /// a `k`.
    pub fn objective_k(&self) -> u32 {
        let n = self
            .record
            .config
            .pointer("/rl/samples_per_prompt")
            .and_then(|v| v.as_u64())
            .and_then(|n| usize::try_from(n).ok());
        match (objective_from_spec(&self.objective), n) {
            (Ok(o), Some(n)) => o.k_for_group(n),
            _ => objective_k(&self.objective),
        }
    }
}

/// The k an objective spec targets, from the objective registry (`pkpo_loo_minus_one:k=4` →
/// 4, `pass1_rloo` → 1); 0 for an objective whose k is its group size (`tang_loo` without a
/// `k`: use [`TinyCell::objective_k`], which knows the group size). A spec the registry does
/// not know (a result written by another build) falls back to its `k=` field, else 1.
pub fn objective_k(spec: &str) -> u32 {
    objective_from_spec(spec).map_or_else(
        |_| {
            spec.split([':', ','])
                .find_map(|part| part.strip_prefix("k="))
                .and_then(|k| k.parse().ok())
                .unwrap_or(1)
        },
        |o| o.k(),
    )
}

/// Loads every tiny cell under `experiment_dir`, sorted by hash.
pub fn load_tiny_cells(experiment_dir: &Path) -> Result<Vec<TinyCell>, ReportError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(experiment_dir)
        .map_err(|e| ReportError::io(experiment_dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut cells = Vec::new();
    for dir in dirs {
        let record: CellRecord = read_json(&dir.join(CELL_FILE))?;
        let eval: Vec<EvalRow> = read_csv(&dir.join(EVAL_FILE))?;
        let format_path = dir.join(FORMAT_FILE);
        let format: Vec<FormatRow> = if format_path.is_file() {
            read_csv(&format_path)?
        } else {
            Vec::new()
        };
        let config = &record.config;
        let bad =
            |key: &str| ReportError::invalid(dir.join(CELL_FILE), format!("config lacks `{key}`"));
        let q = config
            .pointer("/mixture/cue_reliability")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad("mixture.cue_reliability"))?;
        let objective = config
            .pointer("/rl/objective")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("rl.objective"))?
            .to_string();
        let seed = config
            .get("seed")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("seed"))?;
        let log_path = dir.join(TRAIN_LOG_FILE);
        let conflict = if log_path.is_file() {
            read_csv::<TrainLogRow>(&log_path)?
                .into_iter()
                .filter_map(|r| Some((r.step, r.conflict_cos?)))
                .collect()
        } else {
            Vec::new()
        };
        cells.push(TinyCell {
            record,
            eval,
            format,
            q,
            objective,
            seed,
            conflict,
        });
    }
    if cells.is_empty() {
        return Err(ReportError::NoCells {
            path: experiment_dir.to_path_buf(),
        });
    }
    Ok(cells)
}

/// Objectives in a stable order: pass@1 objectives first, then by k, then by name.
pub(crate) fn objectives(cells: &[TinyCell]) -> Vec<String> {
    let mut names: Vec<String> = cells
        .iter()
        .map(|c| c.objective.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by_key(|n| (objective_k(n), n.clone()));
    names
}

/// The distinct q values of `cells`, ascending.
pub(crate) fn qs(cells: &[TinyCell]) -> Vec<f64> {
    let mut v: Vec<f64> = cells.iter().map(|c| c.q).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

fn sources(
    out_dir: &Path,
    name: &str,
    kind: &str,
    caption: &str,
    files: &[PathBuf],
    cells: &[&TinyCell],
) -> Result<Vec<PathBuf>, ReportError> {
    let hashes = cells.iter().map(|c| c.record.hash.clone()).collect();
    write_sidecar(out_dir, name, kind, caption, files, hashes)
}

/// The trade-off figure: one panel per q, each objective a point at (mean Δ pass@k, mean
/// Δ pass@1) over its seeds with the 95% t-interval of Δ pass@1, and its seeds as small
/// unlabelled points beside. k is one for every objective, the largest any of them targets,
/// so pass@1-type objectives and mitigations sit on the same axis as pass@k training. Upper
/// right of the origin: pass@k gained without a pass@1 loss. `label` names an objective's
/// legend entry (so callers can mark new objectives).
pub fn tradeoff_figure(cells: &[TinyCell], stem: &str, label: &dyn Fn(&str) -> String) -> Figure {
    let objectives = objectives(cells);
    let k = objectives.iter().map(|o| objective_k(o)).max().unwrap_or(1);
    let mut panels = Vec::new();
    for q in qs(cells) {
        let mut chart = Chart::new(
            format!("Δ pass@1 against Δ pass@{k}, q = {q}"),
            format!("Δ pass@{k}"),
            "Δ pass@1 (mean, 95% CI over seeds)",
        );
        chart.zero_line = true;
        chart.legend = Legend::Outside;
        for objective in objectives.iter() {
            let color = crate::style::color_in(&objectives, objective);
            let group: Vec<&TinyCell> = cells
                .iter()
                .filter(|c| c.q == q && &c.objective == objective)
                .collect();
            let seeds: Vec<(f64, f64)> = group
                .iter()
                .filter_map(|c| Some((c.delta(k)?, c.delta(1)?)))
                .collect();
            if seeds.is_empty() {
                continue;
            }
            let xs: Vec<f64> = seeds.iter().map(|p| p.0).collect();
            let ys: Vec<f64> = seeds.iter().map(|p| p.1).collect();
            let (y, ci) = crate::dose::mean_ci(&ys);
            chart.series.push(
                Series::new(
                    format!("{} (mean of {} seeds)", label(objective), seeds.len()),
                    vec![(mean(&xs), y)],
                    Mark::LargePoints,
                    color,
                )
                .with_intervals(vec![ci]),
            );
            chart
                .series
                .push(Series::new(String::new(), seeds, Mark::Points, color));
        }
        panels.push(chart);
    }
    Figure {
        stem: stem.into(),
        width: 820 * panels.len().max(1) as u32,
        height: 480,
        panels,
    }
}

/// The change from the warm start of held-out pass@1 and of pass@k (k of the objective, all
/// prompts) over a group of cells of one q and one objective, one value per cell that has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Deltas {
    /// k of the group's objective (of its first cell).
    pub k: u32,
    /// Δ pass@1 per cell.
    pub pass1: Vec<f64>,
    /// Δ pass@k per cell.
    pub passk: Vec<f64>,
}

impl Deltas {
    /// The deltas of `group`; `None` when it is empty.
    pub fn of(group: &[&TinyCell]) -> Option<Self> {
        let k = group.first()?.objective_k();
        Some(Self {
            k,
            pass1: group.iter().filter_map(|c| c.delta(1)).collect(),
            passk: group.iter().filter_map(|c| c.delta(k)).collect(),
        })
    }

    /// Whether each of the group's `n` cells has both deltas.
    pub fn complete(&self, n: usize) -> bool {
        self.pass1.len() == n && self.passk.len() == n
    }
}

/// The 95% Student-t interval of `values` as a reader sees it, `[low, high]` rounded to three
/// decimals (`n/a` with fewer than two values).
pub fn ci_text(values: &[f64]) -> String {
    t_interval(values, 0.95).map_or("n/a".to_string(), |i| {
        format!("[{}, {}]", fmt_f(i.lo, 3), fmt_f(i.hi, 3))
    })
}

/// One bound (`high` or low) of the 95% Student-t interval of `values` at full precision
/// (shortest round-trip form), empty with fewer than two values.
pub fn ci_bound(values: &[f64], high: bool) -> String {
    t_interval(values, 0.95).map_or(String::new(), |i| {
        format!("{}", if high { i.hi } else { i.lo })
    })
}

/// A table of [`Deltas`], one row per group: the caller's `lead` columns, then Δ pass@1 and its
/// interval, k, Δ pass@k and its interval, the caller's `trail` columns, and last the interval
/// bounds. The CSV holds the bounds as numbers at full precision (`ci_low`, `ci_high`);
/// Markdown and LaTeX the rounded `[low, high]` a reader sees. The report's `deltas` table and
/// `passk compare`'s table are built with it.
#[derive(Debug, Clone)]
pub struct DeltasTable {
    /// The table so far.
    pub table: Table,
}

impl DeltasTable {
    /// An empty table with `lead` columns before the deltas and `trail` columns after them.
    pub fn new(name: &str, caption: &str, lead: &[&str], trail: &[&str]) -> Self {
        let mut columns: Vec<&str> = lead.to_vec();
        columns.extend([
            "Δ pass@1",
            "Δ pass@1 95% CI",
            "k",
            "Δ pass@k",
            "Δ pass@k 95% CI",
        ]);
        columns.extend(trail);
        let bounds = columns.len();
        columns.extend([
            "Δ pass@1 ci_low",
            "Δ pass@1 ci_high",
            "Δ pass@k ci_low",
            "Δ pass@k ci_high",
        ]);
        let mut table = Table::new(name, caption, &columns);
        let at = lead.len();
        table.shown = vec![(at + 1, Shown::TextOnly), (at + 4, Shown::TextOnly)];
        table
            .shown
            .extend((bounds..bounds + 4).map(|c| (c, Shown::CsvOnly)));
        Self { table }
    }

    /// Adds the row of `deltas` between the caller's `lead` and `trail` cells.
    pub fn push(&mut self, lead: Vec<String>, deltas: &Deltas, trail: Vec<String>) {
        let (d1, dk) = (&deltas.pass1, &deltas.passk);
        let mut row = lead;
        row.extend([
            fmt_f(mean(d1), 3),
            ci_text(d1),
            deltas.k.to_string(),
            fmt_f(mean(dk), 3),
            ci_text(dk),
        ]);
        row.extend(trail);
        row.extend([
            ci_bound(d1, false),
            ci_bound(d1, true),
            ci_bound(dk, false),
            ci_bound(dk, true),
        ]);
        self.table.rows.push(row);
    }
}

/// Renders the tiny-tier figures and tables of `cells` into `out_dir`; returns the paths, sorted.
pub fn render_tiny(cells: &[TinyCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if cells.is_empty() {
        return Err(ReportError::NoCells {
            path: out_dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let all: Vec<&TinyCell> = cells.iter().collect();
    let objectives = objectives(cells);
    let qs = qs(cells);
    let mut paths = Vec::new();

    // Held-out pass@1 over training: one panel per q, one line per objective (mean over seeds).
    let mut panels = Vec::new();
    for &q in &qs {
        let mut chart = Chart::new(
            format!("held-out pass@1, q = {q}"),
            "RL step",
            "pass@1 (all prompts)",
        );
        chart.legend = Legend::Outside;
        for objective in objectives.iter() {
            let color = crate::style::color_in(&objectives, objective);
            let group: Vec<&TinyCell> = cells
                .iter()
                .filter(|c| c.q == q && &c.objective == objective)
                .collect();
            let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for c in &group {
                for r in c.eval.iter().filter(|r| r.family == "all" && r.k == 1) {
                    by_step.entry(r.step).or_default().push(r.pass_at_k);
                }
            }
            let points = by_step.iter().map(|(s, v)| (*s as f64, mean(v))).collect();
            chart.series.push(Series::new(
                format!("{} ({} seeds)", crate::style::label(objective), group.len()),
                points,
                Mark::LineAndPoints,
                color,
            ));
        }
        panels.push(chart);
    }
    let figure = Figure {
        stem: "pass1_over_training".into(),
        width: 820 * qs.len().max(1) as u32,
        height: 480,
        panels,
    };
    let caption = "Held-out pass@1 (unbiased, all prompts) over RL steps, one panel per cue reliability q, one line per objective: mean over seeds.";
    let files = render_figure(&figure, out_dir)?;
    paths.extend(sources(
        out_dir,
        "pass1_over_training",
        "figure",
        caption,
        &files,
        &all,
    )?);

    paths.extend(crate::dose::render_dose(cells, out_dir)?);
    paths.extend(crate::mitigation::render_criterion(cells, out_dir)?);
    paths.extend(crate::mitigation::render_conflict(cells, out_dir)?);

    let figure = tradeoff_figure(cells, "tradeoff", &crate::style::label);
    let caption = "Change of held-out pass@k (k the largest any objective of the experiment targets, the same for every objective) against change of pass@1, from the warm start, one panel per q: large points are means over seeds with the 95% t-interval of the change of pass@1, small ones single seeds. Upper right of the origin: pass@k gained without losing pass@1.";
    let files = render_figure(&figure, out_dir)?;
    paths.extend(sources(
        out_dir, "tradeoff", "figure", caption, &files, &all,
    )?);

    // Table: per q and objective, deltas of pass@1 and of pass@k (the objective's k) with CIs.
    let mut table = DeltasTable::new(
        "deltas",
        "Change from the warm start of held-out pass@1 and pass@k (k of the objective; 1 for pass@1 objectives), all prompts: mean over seeds with a 95% Student-t interval (n/a with one seed).",
        &["q", "objective", "seeds", "warm-start pass@1"],
        &[],
    );
    for &q in &qs {
        for objective in &objectives {
            let group: Vec<&TinyCell> = cells
                .iter()
                .filter(|c| c.q == q && &c.objective == objective)
                .collect();
            let Some(deltas) = Deltas::of(&group) else {
                continue;
            };
            let start: Vec<f64> = group
                .iter()
                .filter_map(|c| c.pass_at(0, "all", 1))
                .collect();
            if !deltas.complete(group.len()) {
                return Err(ReportError::invalid(
                    out_dir,
                    format!(
                        "a cell of q = {q}, {objective} lacks the warm-start or final evaluation of \
                         pass@1 or pass@{}; rerun it",
                        deltas.k
                    ),
                ));
            }
            table.push(
                vec![
                    format!("{q}"),
                    objective.clone(),
                    group.len().to_string(),
                    fmt_f(mean(&start), 3),
                ],
                &deltas,
                Vec::new(),
            );
        }
    }
    let table = table.table;
    let files = table.write_all(out_dir)?;
    paths.extend(sources(
        out_dir,
        "deltas",
        "table",
        &table.caption,
        &files,
        &all,
    )?);
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objective_k_parses_specs() {
        assert_eq!(objective_k("pass1_rloo"), 1);
        assert_eq!(objective_k("pkpo_loo_minus_one:k=4"), 4);
        assert_eq!(objective_k("chen:k=8"), 8);
        // From the registry, not the spec text: tang_loo without a k targets the group size.
        assert_eq!(objective_k("tang_loo"), 0);
        assert_eq!(objective_k("conflict_projected:k=8"), 8);
        // A spec this build does not know keeps its k= field.
        assert_eq!(objective_k("someday:k=3"), 3);
    }
}
