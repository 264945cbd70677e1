//! The mitigation criterion table (issue 30): every objective that is neither pass@1 nor
//! pass@k training against both, paired by seed at each q; and the per-step conflict that
//! projected objectives log, the interference measured during training.
//!
//! The claims in `experiments/claims.toml` (`mitigation.*`) are the verdicts; this table shows
//! the same paired differences for every candidate and q in one place, with the pre-registered
//! thresholds applied in its last column.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use passk_core::stats::mean;

use crate::dose::{display_name, mean_ci};
use crate::error::ReportError;
use crate::plot::{render_figure, Chart, Figure, Legend, Mark, Series};
use crate::tables::{fmt_f, Table};
use crate::theory::write_sidecar;
use crate::tiny::{objective_k, objectives, qs, TinyCell};

/// The pass@1 reference.
const PASS1: &str = "pass1_rloo";
/// The family of the pass@k reference (`pkpo_loo_minus_one:k=K`, K the largest present).
const PASSK: &str = "pkpo_loo_minus_one";
/// The pre-registered criterion (experiments/claims.toml): the pass@1 difference's interval
/// lower end above this margin...
const MARGIN: f64 = -0.03;
/// ...its mean at or above this...
const MEAN_FLOOR: f64 = -0.01;
/// ...and at least this share of the pass@k reference's gain in pass@k.
const SHARE: f64 = 0.8;

/// Writes `mitigation_criterion` when the cells hold both references and at least one other
/// objective; returns its paths (none otherwise).
pub fn render_criterion(cells: &[TinyCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let all = objectives(cells);
    let Some(passk) = all
        .iter()
        .filter(|o| o.split(':').next() == Some(PASSK))
        .max_by_key(|o| objective_k(o))
    else {
        return Ok(Vec::new());
    };
    let k = objective_k(passk);
    let candidates: Vec<&String> = all
        .iter()
        .filter(|o| o.as_str() != PASS1 && o.split(':').next() != Some(PASSK))
        .collect();
    if candidates.is_empty() || !all.iter().any(|o| o == PASS1) {
        return Ok(Vec::new());
    }
    let mut table = Table::new(
        "mitigation_criterion",
        &format!(
            "Each candidate against pass@1 training and pass@{k} training from the same warm starts, paired by seed (mean and 95% Student-t interval over seeds). Criterion, pre-registered in experiments/claims.toml: at q < 1, the pass@1 difference's interval lower end above {MARGIN} and its mean at or above {MEAN_FLOOR}, and Δ pass@{k} − {SHARE} × Δ pass@{k} (pass@{k} training) with its interval lower end above 0; in the matched control (q = 1), the first of these."
        ),
        &[
            "q",
            "objective",
            "seeds",
            "Δ pass@1 − Δ pass@1 (pass@1 training)",
            "95% CI",
            &format!("Δ pass@{k}"),
            &format!("Δ pass@{k} (pass@{k} training)"),
            &format!("Δ pass@{k} − {SHARE} × reference"),
            "95% CI",
            "criterion",
        ],
    );
    for q in qs(cells) {
        let find = |objective: &str, seed: u64| {
            cells
                .iter()
                .find(|c| c.q == q && c.objective == objective && c.seed == seed)
        };
        for &candidate in &candidates {
            // Per seed: (Δ1 - Δ1 ref, Δk, Δk ref).
            let rows: Vec<(f64, f64, f64)> = cells
                .iter()
                .filter(|c| c.q == q && &c.objective == candidate)
                .filter_map(|c| {
                    let (p1, pk) = (find(PASS1, c.seed)?, find(passk, c.seed)?);
                    Some((c.delta(1)? - p1.delta(1)?, c.delta(k)?, pk.delta(k)?))
                })
                .filter(|(a, b, c)| a.is_finite() && b.is_finite() && c.is_finite())
                .collect();
            if rows.is_empty() {
                continue;
            }
            let col = |f: &dyn Fn(&(f64, f64, f64)) -> f64| rows.iter().map(f).collect::<Vec<_>>();
            let (d1, ci1) = mean_ci(&col(&|r| r.0));
            let (dk, dk_ref) = (mean_ci(&col(&|r| r.1)).0, mean_ci(&col(&|r| r.2)).0);
            let (share, ci_share) = mean_ci(&col(&|r| r.1 - SHARE * r.2));
            let pass1_ok = ci1.0 > MARGIN && (q == 1.0 || d1 >= MEAN_FLOOR);
            let meets = pass1_ok && (q == 1.0 || ci_share.0 > 0.0);
            let interval = |(lo, hi): (f64, f64)| format!("[{}, {}]", fmt_f(lo, 3), fmt_f(hi, 3));
            table.rows.push(vec![
                format!("{q}"),
                display_name(candidate),
                rows.len().to_string(),
                fmt_f(d1, 3),
                interval(ci1),
                fmt_f(dk, 3),
                fmt_f(dk_ref, 3),
                if q == 1.0 {
                    String::new()
                } else {
                    fmt_f(share, 3)
                },
                if q == 1.0 {
                    String::new()
                } else {
                    interval(ci_share)
                },
                if meets { "meets" } else { "fails" }.to_string(),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Ok(Vec::new());
    }
    let files = table.write_all(out_dir)?;
    write_sidecar(
        out_dir,
        "mitigation_criterion",
        "table",
        &table.caption,
        &files,
        cells.iter().map(|c| c.record.hash.clone()).collect(),
    )
}

/// Steps averaged in each point of the conflict trace.
const WINDOW: u64 = 10;

/// Writes `conflict_over_training` (figure) and `conflict_share` (table) for the objectives
/// whose cells log `conflict_cos`: the cosine, at each RL step, between a projected objective's
/// gradient and its anchor's from the same samples (for `group_projected`, the low-success
/// prompts' pass@k gradient against the other prompts' pass@1 gradient).
pub fn render_conflict(cells: &[TinyCell], out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let logged: Vec<String> = objectives(cells)
        .into_iter()
        .filter(|o| {
            cells
                .iter()
                .any(|c| &c.objective == o && !c.conflict.is_empty())
        })
        .collect();
    if logged.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = || cells.iter().map(|c| c.record.hash.clone()).collect();
    let mut table = Table::new(
        "conflict_share",
        "The conflict a projected objective meets during training: per seed, the share of RL steps whose logged conflict_cos (cosine of the objective's gradient and its anchor's, same samples) is negative, and its mean over the steps that logged one (steps where either part had no samples log none); mean over seeds with the 95% Student-t interval. For group_projected the two parts are the low-success prompts' pass@k gradient and the other prompts' pass@1 gradient.",
        &["q", "objective", "seeds", "steps logged (mean)", "share negative", "95% CI", "mean cos", "95% CI"],
    );
    let mut panels = Vec::new();
    for q in qs(cells) {
        let mut chart = Chart::new(
            format!("conflict_cos over training, q = {q}"),
            "RL step",
            format!("cosine, mean over seeds and {WINDOW}-step windows"),
        );
        chart.zero_line = true;
        chart.legend = Legend::Outside;
        for objective in &logged {
            let group: Vec<&TinyCell> = cells
                .iter()
                .filter(|c| c.q == q && &c.objective == objective && !c.conflict.is_empty())
                .collect();
            if group.is_empty() {
                continue;
            }
            let share: Vec<f64> = group
                .iter()
                .map(|c| {
                    c.conflict.iter().filter(|(_, v)| *v < 0.0).count() as f64
                        / c.conflict.len() as f64
                })
                .collect();
            let cos: Vec<f64> = group
                .iter()
                .map(|c| mean(&c.conflict.iter().map(|(_, v)| *v).collect::<Vec<_>>()))
                .collect();
            let steps = mean(
                &group
                    .iter()
                    .map(|c| c.conflict.len() as f64)
                    .collect::<Vec<_>>(),
            );
            let interval = |v: &[f64]| {
                let (_, (lo, hi)) = mean_ci(v);
                format!("[{}, {}]", fmt_f(lo, 3), fmt_f(hi, 3))
            };
            table.rows.push(vec![
                format!("{q}"),
                display_name(objective),
                group.len().to_string(),
                fmt_f(steps, 0),
                fmt_f(mean(&share), 3),
                interval(&share),
                fmt_f(mean(&cos), 3),
                interval(&cos),
            ]);
            let mut windows: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for c in &group {
                for &(step, v) in &c.conflict {
                    windows.entry(step / WINDOW).or_default().push(v);
                }
            }
            let points = windows
                .iter()
                .map(|(w, v)| ((w * WINDOW) as f64 + (WINDOW as f64 - 1.0) / 2.0, mean(v)))
                .collect();
            chart.series.push(Series::new(
                format!("{} ({} seeds)", display_name(objective), group.len()),
                points,
                Mark::LineAndPoints,
                crate::style::color_in(&logged, objective),
            ));
        }
        panels.push(chart);
    }
    let mut paths = table.write_all(out_dir)?;
    paths = write_sidecar(
        out_dir,
        "conflict_share",
        "table",
        &table.caption,
        &paths,
        hashes(),
    )?;
    let figure = Figure {
        stem: "conflict_over_training".into(),
        width: 820 * panels.len().max(1) as u32,
        height: 480,
        panels,
    };
    let caption = format!("conflict_cos over RL steps, one panel per q, one line per projected objective: the cosine between the objective's gradient and its anchor's from the same samples, averaged over seeds and {WINDOW}-step windows (negative: the step was projected). For group_projected it is the measured interference between the low-success prompts' pass@k gradient and the other prompts' pass@1 gradient, at every step.");
    let files = render_figure(&figure, out_dir)?;
    paths.extend(write_sidecar(
        out_dir,
        "conflict_over_training",
        "figure",
        &caption,
        &files,
        hashes(),
    )?);
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::probe::tests::write_cell_seeded;
    use crate::tiny::load_tiny_cells;

    /// A fixture cell whose pass@1 moves by `d1` and pass@8 by `d8`.
    fn cell(exp: &Path, name: &str, q: f64, objective: &str, seed: u64, d1: f64, d8: f64) {
        write_cell_seeded(exp, name, q, objective, seed, 0.0, d1);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(exp.join(name).join("eval.csv"))
            .unwrap();
        writeln!(f, "0,all,8,0.5,400\n200,all,8,{},400", 0.5 + d8).unwrap();
    }

    #[test]
    fn candidates_are_paired_with_both_references() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        let k8 = "pkpo_loo_minus_one:k=8";
        for seed in 0..3u64 {
            let s = seed as f64 * 0.01;
            cell(&exp, &format!("a{seed}"), 0.75, PASS1, seed, 0.10, 0.05);
            cell(&exp, &format!("b{seed}"), 0.75, k8, seed, -0.10, 0.10);
            // Meets: pass@1 as pass@1 training's, pass@8 gain 0.10 (0.8 x 0.10 = 0.08).
            cell(
                &exp,
                &format!("c{seed}"),
                0.75,
                "entropic",
                seed,
                0.10 + s,
                0.10 + s,
            );
            // Fails: pass@1 0.05 below pass@1 training.
            cell(
                &exp,
                &format!("d{seed}"),
                0.75,
                "split_by_success:k=8",
                seed,
                0.05 + s,
                0.1,
            );
        }
        let cells = load_tiny_cells(&exp).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let paths = render_criterion(&cells, &out).unwrap();
        assert!(!paths.is_empty());
        let csv = std::fs::read_to_string(out.join("mitigation_criterion.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{csv}");
        let row = |name: &str| *rows.iter().find(|r| r.contains(name)).expect(name);
        assert!(row("entropic").ends_with("meets"), "{csv}");
        assert!(row("split").ends_with("fails"), "{csv}");
        // Without a pass@1 reference there is nothing to pair with.
        let only: Vec<TinyCell> = cells.into_iter().filter(|c| c.objective != PASS1).collect();
        assert!(render_criterion(&only, &out).unwrap().is_empty());
    }

    #[test]
    fn the_logged_conflict_is_summarised_per_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        let k8 = "pkpo_loo_minus_one:k=8";
        for seed in 0..3u64 {
            cell(&exp, &format!("a{seed}"), 0.75, k8, seed, -0.1, 0.1);
            let name = format!("g{seed}");
            cell(&exp, &name, 0.75, "group_projected:k=8", seed, 0.1, 0.0);
            // Steps 0-3: three negative cosines of four, mean -0.25; step 4 logs none.
            let mut log = String::from(
                "step,mean_reward,pass_at_1,k,pass_at_k,grad_norm,conflict_cos,seconds\n",
            );
            for (step, cos) in [(0, "-0.5"), (1, "-0.5"), (2, "-0.5"), (3, "0.5"), (4, "")] {
                log.push_str(&format!("{step},0.5,0.5,8,0.9,1.0,{cos},0.1\n"));
            }
            std::fs::write(exp.join(&name).join("train_log.csv"), log).unwrap();
        }
        let cells = load_tiny_cells(&exp).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let paths = render_conflict(&cells, &out).unwrap();
        assert!(paths
            .iter()
            .any(|p| p.ends_with("conflict_over_training.svg")));
        let csv = std::fs::read_to_string(out.join("conflict_share.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), 1, "only the projected objective: {csv}");
        assert!(rows[0].contains("group_projected:k=8,3,4,0.750"), "{csv}");
        assert!(rows[0].contains("-0.250"), "{csv}");
        // Nothing logged: nothing written.
        let plain: Vec<TinyCell> = cells
            .into_iter()
            .filter(|c| c.conflict.is_empty())
            .collect();
        assert!(render_conflict(&plain, &out).unwrap().is_empty());
    }
}
