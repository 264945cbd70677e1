//! Figures and tables of the exact ("theory") tier.
//!
//! [`render_theory`] turns the cells of one theory experiment into
//! - `cosine_vs_k`: cos(∇J_k, ∇J_1) at the initial parameters against k, one line per separation;
//! - `ascent`: J_1 and J_k along exact ascent on pass@1 and on pass@k, for the lowest and the
//!   highest separation;
//! - `agreement_vs_p`: each prompt's agreement a(x) against p(x), with w_k(p) scaled onto the
//!   same axis;
//! - the tables `kstar` and `final_objectives`;
//!
//! and for each a sidecar `<name>.sources.json` with its caption and the sorted hashes of the
//! cells it was made from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ReportError;
use crate::load::{write_json_atomic, TheoryCell, TheoryKey};
use crate::plot::{render_figure, Chart, Figure, Legend, Mark, Series, XScale};
use crate::tables::{fmt_mean_range, fmt_param, Table};

/// Objective names used in `trajectory.csv`.
const PASS1: &str = "pass@1";
const PASSK: &str = "pass@k";

/// The sidecar written beside every figure and table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Sources {
    /// Figure or table name (the file stem).
    pub name: String,
    /// `figure` or `table`.
    pub kind: String,
    /// What the figure or table shows, including which cells and how they were aggregated.
    pub caption: String,
    /// File names written for it (without the sidecar).
    pub files: Vec<String>,
    /// Hashes of the cells it was made from, sorted.
    pub cells: Vec<String>,
}

/// A cell with its parsed coordinates.
struct Keyed<'a> {
    cell: &'a TheoryCell,
    key: TheoryKey,
}

/// Sorted distinct values (by total order; `-0.0` and `0.0` are kept apart only if both occur).
fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| a == b);
    v
}

/// Writes `figure` or `table` outputs' sidecar and returns all paths.
fn write_sources(
    out_dir: &Path,
    name: &str,
    kind: &str,
    caption: &str,
    files: &[PathBuf],
    cells: &[&Keyed<'_>],
) -> Result<Vec<PathBuf>, ReportError> {
    let hashes = cells.iter().map(|c| c.cell.hash().to_string()).collect();
    write_sidecar(out_dir, name, kind, caption, files, hashes)
}

/// Renders `figure` into `out_dir` and writes its `.sources.json` sidecar; returns all paths.
pub(crate) fn render_with_sidecar(
    figure: &crate::plot::Figure,
    out_dir: &Path,
    caption: &str,
    hashes: BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    let files = crate::plot::render_figure(figure, out_dir)?;
    write_sidecar(out_dir, &figure.stem, "figure", caption, &files, hashes)
}

/// Writes `<name>.sources.json` for outputs `files` made from the cells `hashes`; returns
/// `files` plus the sidecar.
pub(crate) fn write_sidecar(
    out_dir: &Path,
    name: &str,
    kind: &str,
    caption: &str,
    files: &[PathBuf],
    hashes: BTreeSet<String>,
) -> Result<Vec<PathBuf>, ReportError> {
    let sources = Sources {
        name: name.to_string(),
        kind: kind.to_string(),
        caption: caption.to_string(),
        files: files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
        cells: hashes.into_iter().collect(),
    };
    let path = out_dir.join(format!("{name}.sources.json"));
    write_json_atomic(&path, &sources)?;
    let mut all = files.to_vec();
    all.push(path);
    Ok(all)
}

/// Renders every theory figure and table of `cells` into `out_dir` and returns the written
/// paths, sorted. Needs `separation`, `p_hard`, `k` and `seed` in every cell's config.
pub fn render_theory(cells: &[TheoryCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if cells.is_empty() {
        return Err(ReportError::NoCells {
            path: out_dir.to_path_buf(),
        });
    }
    let mut keyed = cells
        .iter()
        .map(|cell| {
            Ok(Keyed {
                cell,
                key: cell.key()?,
            })
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    keyed.sort_by(|a, b| a.cell.hash().cmp(b.cell.hash()));

    let mut paths = Vec::new();
    for built in [cosine_vs_k(&keyed), ascent(&keyed), agreement_vs_p(&keyed)] {
        paths.extend(built.write(out_dir)?);
    }
    for table in [kstar_table(&keyed), final_objectives_table(&keyed)] {
        let files = table.write_all(out_dir)?;
        let all: Vec<&Keyed> = keyed.iter().collect();
        paths.extend(write_sources(
            out_dir,
            &table.name,
            "table",
            &table.caption,
            &files,
            &all,
        )?);
    }
    paths.sort();
    Ok(paths)
}

/// Loads every cell of the theory experiment at `experiment_dir` and renders its figures and
/// tables into `out_dir` (see [`render_theory`]); an empty experiment is an error.
pub fn report_theory(experiment_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let cells = crate::load::load_theory_cells(experiment_dir)?;
    if cells.is_empty() {
        return Err(ReportError::NoCells {
            path: experiment_dir.to_path_buf(),
        });
    }
    render_theory(&cells, out_dir)
}

/// Cells grouped by seed (ascending), each group sorted by hash.
fn by_seed<'a, 'b>(cells: &[&'b Keyed<'a>]) -> BTreeMap<u64, Vec<&'b Keyed<'a>>> {
    let mut map: BTreeMap<u64, Vec<&Keyed>> = BTreeMap::new();
    for c in cells {
        map.entry(c.key.seed).or_default().push(c);
    }
    map
}

/// The p_hard the figures use: the one covering the most separations, then the most cells,
/// then the smallest.
fn main_p_hard(keyed: &[Keyed<'_>]) -> f64 {
    let mut best: Option<(usize, usize, f64)> = None;
    for ph in distinct(keyed.iter().map(|c| c.key.p_hard)) {
        let cells: Vec<&Keyed> = keyed.iter().filter(|c| c.key.p_hard == ph).collect();
        let seps = distinct(cells.iter().map(|c| c.key.separation)).len();
        if best.is_none_or(|(bs, bc, _)| (seps, cells.len()) > (bs, bc)) {
            best = Some((seps, cells.len(), ph));
        }
    }
    best.map_or(f64::NAN, |b| b.2)
}

/// `n` in Unicode subscript digits (`8` → `₈`).
fn subscript(n: u32) -> String {
    n.to_string()
        .chars()
        .map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// A figure ready to render, its caption and the cells it was made from.
struct Built<'a, 'b> {
    figure: Figure,
    caption: String,
    used: Vec<&'b Keyed<'a>>,
}

impl Built<'_, '_> {
    fn write(&self, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let files = render_figure(&self.figure, out_dir)?;
        write_sources(
            out_dir,
            &self.figure.stem,
            "figure",
            &self.caption,
            &files,
            &self.used,
        )
    }
}

fn cosine_vs_k<'a, 'b>(keyed: &'b [Keyed<'a>]) -> Built<'a, 'b> {
    let p0 = main_p_hard(keyed);
    let separations = distinct(keyed.iter().map(|c| c.key.separation));
    let mut chart = Chart::new(
        format!("cos(∇Jₖ, ∇J₁) at θ₀ against k (p_hard = {})", fmt_param(p0)),
        "k of pass@k (log scale)",
        "cos(∇Jₖ, ∇J₁) at the initial parameters",
    );
    chart.zero_line = true;
    chart.x_scale = XScale::Log2;
    chart.legend = Legend::Outside;
    let mut used = Vec::new();
    let mut seed_counts = Vec::new();
    for (i, &sep) in separations.iter().enumerate() {
        let group: Vec<&Keyed> = keyed
            .iter()
            .filter(|c| c.key.separation == sep && c.key.p_hard == p0)
            .collect();
        if group.is_empty() {
            continue;
        }
        // Per seed: the mean over that seed's cells (their k scans coincide); then the mean
        // over seeds, skipping undefined cosines.
        let mut per_k: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        let seeds = by_seed(&group);
        for cells in seeds.values() {
            let mut seed_k: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
            for c in cells {
                for row in &c.cell.kscan {
                    if let Some(cos) = row.cosine {
                        seed_k.entry(row.k).or_default().push(cos);
                    }
                }
            }
            for (k, v) in seed_k {
                per_k.entry(k).or_default().extend(mean(&v));
            }
        }
        let points = per_k
            .iter()
            .filter_map(|(&k, v)| mean(v).map(|m| (f64::from(k), m)))
            .collect();
        chart.series.push(Series::new(
            format!("separation {} ({} seeds)", fmt_param(sep), seeds.len()),
            points,
            Mark::LineAndPoints,
            i,
        ));
        seed_counts.push(seeds.len());
        used.extend(group);
    }
    let caption = format!(
        "Cosine between the pass@k and pass@1 gradients at the initial parameters, against k, one line per feature separation, for p_hard = {} (the p_hard covering the most separations; ties go to the smallest); each point is the mean over seeds (seeds per line: {:?}) of the exact cosine from kscan.csv, skipping seeds where it is undefined. Below the zero line, an ascent step on pass@k lowers pass@1 to first order.",
        fmt_param(p0),
        seed_counts
    );
    let figure = Figure {
        stem: "cosine_vs_k".into(),
        width: 1100,
        height: 600,
        panels: vec![chart],
    };
    Built {
        figure,
        caption,
        used,
    }
}

/// The representative cells: the lowest and the highest separation (one if equal), each at
/// the main p_hard ([`main_p_hard`]), smallest seed and largest k, first by hash.
fn representatives<'a, 'b>(keyed: &'b [Keyed<'a>]) -> Vec<&'b Keyed<'a>> {
    let p0 = main_p_hard(keyed);
    let seps = distinct(
        keyed
            .iter()
            .filter(|c| c.key.p_hard == p0)
            .map(|c| c.key.separation),
    );
    let mut chosen_seps = vec![seps[0]];
    if seps.len() > 1 {
        chosen_seps.push(seps[seps.len() - 1]);
    }
    chosen_seps
        .into_iter()
        .filter_map(|sep| {
            let group: Vec<&Keyed> = keyed
                .iter()
                .filter(|c| c.key.separation == sep && c.key.p_hard == p0)
                .collect();
            let seed = group.iter().map(|c| c.key.seed).min()?;
            let k = group
                .iter()
                .filter(|c| c.key.seed == seed)
                .map(|c| c.key.k)
                .max()?;
            group
                .into_iter()
                .find(|c| c.key.seed == seed && c.key.k == k)
        })
        .collect()
}

fn describe(c: &Keyed<'_>) -> String {
    format!(
        "separation {}, p_hard {}, k {}, seed {}",
        fmt_param(c.key.separation),
        fmt_param(c.key.p_hard),
        c.key.k,
        c.key.seed
    )
}

fn trajectory(c: &Keyed<'_>, objective: &str, jk: bool) -> Vec<(f64, f64)> {
    c.cell
        .trajectory
        .iter()
        .filter(|r| r.objective == objective)
        .map(|r| (r.step as f64, if jk { r.jk } else { r.j1 }))
        .collect()
}

fn ascent<'a, 'b>(keyed: &'b [Keyed<'a>]) -> Built<'a, 'b> {
    let reps = representatives(keyed);
    let mut panels = Vec::new();
    for c in &reps {
        let mut chart = Chart::new(
            format!("Exact ascent, {}", describe(c)),
            "ascent step",
            "objective value (probability)",
        );
        chart.legend = Legend::Outside;
        let k = c.key.k;
        for (objective, color) in [(PASS1, 0), (PASSK, 1)] {
            let name = if objective == PASS1 {
                "pass@1".to_string()
            } else {
                format!("pass@{k}")
            };
            chart.series.push(Series::new(
                format!("J₁ under {name} ascent"),
                trajectory(c, objective, false),
                Mark::Line,
                color,
            ));
            chart.series.push(Series::new(
                format!("J{} under {name} ascent", subscript(k)),
                trajectory(c, objective, true),
                Mark::DashedLine,
                color,
            ));
        }
        panels.push(chart);
    }
    let which: Vec<String> = reps
        .iter()
        .map(|c| format!("{} (cell {})", describe(c), c.cell.hash()))
        .collect();
    let caption = format!(
        "pass@1 (J_1, solid) and pass@k (J_k, dashed) along exact gradient ascent on the pass@1 objective and on the pass@k objective, for the lowest and the highest feature separation at the p_hard covering the most separations, smallest seed and largest k: {}.",
        which.join("; ")
    );
    let figure = Figure {
        stem: "ascent".into(),
        width: 820 * panels.len() as u32,
        height: 560,
        panels,
    };
    Built {
        figure,
        caption,
        used: reps,
    }
}

fn agreement_vs_p<'a, 'b>(keyed: &'b [Keyed<'a>]) -> Built<'a, 'b> {
    let reps = representatives(keyed);
    let mut panels = Vec::new();
    let mut scales = Vec::new();
    for c in &reps {
        let k = c.cell.summary.k;
        let mut chart = Chart::new(
            format!("Agreement a(x) against p(x), {}", describe(c)),
            "success probability p(x) at θ₀",
            "agreement a(x) = ⟨∇p(x), ∇J₁⟩",
        );
        chart.zero_line = true;
        chart.x_range = Some((0.0, 1.0));
        chart.legend = Legend::Outside;
        let groups: BTreeSet<&str> = c.cell.prompts.iter().map(|p| p.group.as_str()).collect();
        for (i, g) in groups.iter().enumerate() {
            chart.series.push(Series::new(
                format!("{g} prompts"),
                c.cell
                    .prompts
                    .iter()
                    .filter(|p| p.group == *g)
                    .map(|p| (p.p, p.agreement))
                    .collect(),
                Mark::Points,
                i,
            ));
        }
        // w_k peaks at k (p = 0); scale it so that its peak matches the largest |a|.
        let max_a = c
            .cell
            .prompts
            .iter()
            .map(|p| p.agreement.abs())
            .filter(|a| a.is_finite())
            .fold(0.0, f64::max);
        let scale = if max_a > 0.0 {
            max_a / f64::from(k.max(1))
        } else {
            1.0
        };
        let curve = (0..=100)
            .map(|i| {
                let p = f64::from(i) / 100.0;
                let w = f64::from(k) * (1.0 - p).powi(k as i32 - 1);
                (p, w * scale)
            })
            .collect();
        chart.series.push(Series::new(
            format!("w{}(p) × {scale:.2e} (scaled)", subscript(k)),
            curve,
            Mark::Line,
            7,
        ));
        scales.push(format!(
            "{} (cell {}): × {scale:.3e}",
            describe(c),
            c.cell.hash()
        ));
        panels.push(chart);
    }
    let caption = format!(
        "Each prompt's agreement a(x) = <grad p(x), grad J_1> against its success probability p(x) at the initial parameters, coloured by group, from prompts.csv; the grey line is the pass@k weight w_k(p) = k(1-p)^(k-1) for the cell's k, scaled so that its maximum w_k(0) = k equals the largest |a(x)| (scale factors: {}). <grad J_k, grad J_1> is the w_k-weighted mean of a(x).",
        scales.join("; ")
    );
    let figure = Figure {
        stem: "agreement_vs_p".into(),
        width: 820 * panels.len() as u32,
        height: 560,
        panels,
    };
    Built {
        figure,
        caption,
        used: reps,
    }
}

/// Groups by (separation, p_hard), both ascending.
fn by_setting<'a, 'b>(keyed: &'b [Keyed<'a>]) -> Vec<((f64, f64), Vec<&'b Keyed<'a>>)> {
    let mut out: Vec<((f64, f64), Vec<&Keyed>)> = Vec::new();
    for sep in distinct(keyed.iter().map(|c| c.key.separation)) {
        for ph in distinct(keyed.iter().map(|c| c.key.p_hard)) {
            let g: Vec<&Keyed> = keyed
                .iter()
                .filter(|c| c.key.separation == sep && c.key.p_hard == ph)
                .collect();
            if !g.is_empty() {
                out.push(((sep, ph), g));
            }
        }
    }
    out
}

fn kstar_table(keyed: &[Keyed<'_>]) -> Table {
    let mut table = Table::new(
        "kstar",
        "Smallest scanned k with <grad J_k, grad J_1> < 0 at the initial parameters (k*), per feature separation and p_hard: how many seeds have one, each seed's value (seed:k*, or none when no scanned k conflicts), and the range of k scanned. Taken from each seed's first cell by hash (k* does not depend on the cell's k).",
        &[
            "separation",
            "p_hard",
            "seeds",
            "seeds with k*",
            "k* per seed",
            "k* min",
            "k* max",
            "k scanned",
        ],
    );
    for ((sep, ph), group) in by_setting(keyed) {
        let seeds = by_seed(&group);
        let mut per_seed = Vec::new();
        let mut found = Vec::new();
        for (seed, cells) in &seeds {
            let ks = cells[0].cell.summary.k_star;
            per_seed.push(format!(
                "{seed}:{}",
                ks.map_or("none".to_string(), |k| k.to_string())
            ));
            found.extend(ks);
        }
        let scanned: Vec<u32> = group
            .iter()
            .flat_map(|c| c.cell.kscan.iter().map(|r| r.k))
            .collect();
        let range = match (scanned.iter().min(), scanned.iter().max()) {
            (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
            _ => String::new(),
        };
        table.rows.push(vec![
            fmt_param(sep),
            fmt_param(ph),
            seeds.len().to_string(),
            found.len().to_string(),
            per_seed.join(" "),
            found.iter().min().map_or(String::new(), |k| k.to_string()),
            found.iter().max().map_or(String::new(), |k| k.to_string()),
            range,
        ]);
    }
    table
}

fn final_objectives_table(keyed: &[Keyed<'_>]) -> Table {
    let mut table = Table::new(
        "final_objectives",
        "pass@1 (J_1) and pass@k (J_k, the cell's k) at the start and after exact gradient ascent on the pass@1 objective and on the pass@k objective, per feature separation, p_hard and k: mean over cells (one per seed) with [min, max] when they differ. Delta J_1 is the change of pass@1 under pass@k ascent; negative means optimising pass@k lowered pass@1.",
        &[
            "separation",
            "p_hard",
            "k",
            "seeds",
            "J_1 start",
            "J_k start",
            "pass@1 ascent: J_1",
            "pass@1 ascent: J_k",
            "pass@k ascent: J_1",
            "pass@k ascent: J_k",
            "pass@k ascent: Delta J_1",
        ],
    );
    for ((sep, ph), group) in by_setting(keyed) {
        let ks: BTreeSet<u32> = group.iter().map(|c| c.key.k).collect();
        for k in ks {
            let cells: Vec<&&Keyed> = group.iter().filter(|c| c.key.k == k).collect();
            let col = |f: &dyn Fn(&TheoryCell) -> f64| {
                let v: Vec<f64> = cells.iter().map(|c| f(c.cell)).collect();
                fmt_mean_range(&v, 4)
            };
            let seeds: BTreeSet<u64> = cells.iter().map(|c| c.key.seed).collect();
            table.rows.push(vec![
                fmt_param(sep),
                fmt_param(ph),
                k.to_string(),
                seeds.len().to_string(),
                col(&|c| c.summary.j1_start),
                col(&|c| c.summary.jk_start),
                col(&|c| c.summary.pass1_final_j1),
                col(&|c| c.summary.pass1_final_jk),
                col(&|c| c.summary.passk_final_j1),
                col(&|c| c.summary.passk_final_jk),
                col(&|c| c.summary.passk_final_j1 - c.summary.j1_start),
            ]);
        }
    }
    table
}

#[cfg(test)]
#[path = "theory_tests.rs"]
mod tests;
