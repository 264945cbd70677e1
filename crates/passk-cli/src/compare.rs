//! `passk compare`: runs a new objective on the cells of a committed tiny experiment (same
//! q, seeds and warm starts) and tabulates it beside the committed baseline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_core::objective::objective_from_spec;
use passk_core::stats::mean;
use passk_report::probe::load_probe_steps;
use passk_report::tables::{fmt_f, Shown, Table};
use passk_report::tier::Tier;
use passk_report::tiny::{
    ci_bound, ci_text, load_tiny_cells, tradeoff_figure, Deltas, DeltasTable, TinyCell,
};

use crate::config::load_experiment;
use crate::run::{reuse_cells, run_experiment};
use crate::tiers::RunContext;

/// The experiment file of `exp_path` with `rl.objective` replaced by `objectives` (a matrix
/// axis when there are several) and its name suffixed with `-compare`; returns the new file's
/// text and name.
pub fn variant(exp_path: &Path, objectives: &[String]) -> Result<(String, String)> {
    if objectives.is_empty() {
        bail!("compare needs at least one --objective SPEC");
    }
    for objective in objectives {
        objective_from_spec(objective)
            .with_context(|| format!("--objective {objective:?} is not a registered objective"))?;
    }
    let text = std::fs::read_to_string(exp_path)
        .with_context(|| format!("cannot read {}", exp_path.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("cannot parse {}", exp_path.display()))?;
    let experiment = doc
        .get_mut("experiment")
        .and_then(|v| v.as_table_mut())
        .context("the experiment file has no [experiment] table")?;
    if experiment.get("tier").and_then(|t| t.as_str()) != Some(Tier::Tiny.as_str()) {
        bail!(
            "compare works on tiny-tier experiments; {} is not one",
            exp_path.display()
        );
    }
    let name = experiment
        .get("name")
        .and_then(|n| n.as_str())
        .context("[experiment] has no name")?
        .to_string();
    let new_name = format!("{name}-compare");
    experiment.insert("name".into(), new_name.clone().into());
    experiment.insert("in_all".into(), false.into());
    // [[exclude]] points that name the baseline's objectives cannot apply to the new ones;
    // the others (q, seed, ...) still do.
    if let Some(toml::Value::Array(points)) = doc.get_mut("exclude") {
        points.retain(|p| p.as_table().is_none_or(|t| !t.contains_key("rl.objective")));
        if points.is_empty() {
            doc.remove("exclude");
        }
    }
    let values: Vec<toml::Value> = objectives.iter().map(|o| o.as_str().into()).collect();
    let in_matrix = doc
        .get_mut("matrix")
        .and_then(|m| m.as_table_mut())
        .filter(|m| m.contains_key("rl.objective"));
    match in_matrix {
        Some(matrix) => {
            matrix.insert("rl.objective".into(), toml::Value::Array(values));
        }
        None => {
            let rl = doc
                .get_mut("params")
                .and_then(|p| p.as_table_mut())
                .and_then(|p| p.get_mut("rl"))
                .and_then(|r| r.as_table_mut())
                .context(
                    "the experiment sets rl.objective neither in [matrix] nor in [params.rl]",
                )?;
            rl.remove("objective");
            doc.entry("matrix")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .context("[matrix] is not a table")?
                .insert("rl.objective".into(), toml::Value::Array(values));
        }
    }
    Ok((toml::to_string(&doc)?, new_name))
}

/// Runs `objectives` on the cells of `exp_path` into `out` (cached warm starts and committed
/// cells of the same configuration are reused) and returns the side-by-side table of the
/// committed baseline (`baseline/<name>/`) and the new cells; the table is also written to
/// `out/compare.{csv,md,tex}` and the trade-off figure to `out/compare_tradeoff.{svg,png}`.
/// With `shard` (`I/N`) it runs only that shard's cells and returns no table.
pub fn compare(
    exp_path: &Path,
    objectives: &[String],
    baseline: &Path,
    out: &Path,
    ctx: &RunContext,
    shard: Option<(usize, usize)>,
) -> Result<Option<Table>> {
    let base_exp = load_experiment(exp_path)?;
    let (text, new_name) = variant(exp_path, objectives)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let variant_path: PathBuf = out.join(format!("{new_name}.toml"));
    passk_schema::write_atomic(&variant_path, text.as_bytes())?;
    let exp = load_experiment(&variant_path)?;
    let reused = reuse_cells(&exp, baseline, out, ctx.force)?;
    if reused > 0 && !ctx.quiet {
        println!(
            "compare: {reused} of {} cells already committed under {} (same configuration hash); \
             reusing them",
            exp.cells.len(),
            baseline.display()
        );
    }
    let seeded = crate::warm_cache::seed_from_committed(baseline, &ctx.cache_dir)?;
    if seeded > 0 && !ctx.quiet {
        println!(
            "compare: {seeded} committed warm-start file(s) from {}/{} copied into {}",
            baseline.display(),
            crate::warm_cache::COMMITTED,
            ctx.cache_dir.display()
        );
    }
    let stats = match shard {
        Some((i, n)) => {
            run_experiment(&exp.shard(i, n), out, ctx)?;
            return Ok(None);
        }
        None => run_experiment(&exp, out, ctx)?,
    };
    if stats.busy > 0 {
        bail!(
            "compare: {} cell(s) of {} are being run by another process (see above); rerun \
             once it has finished",
            stats.busy,
            exp.name
        );
    }
    let base_dir = baseline.join(&base_exp.name);
    let base_cells = load_tiny_cells(&base_dir).with_context(|| {
        format!(
            "cannot read the baseline {}; run `cargo xtask reproduce {}` first",
            base_dir.display(),
            base_exp.name
        )
    })?;
    let new_dir = out.join(&new_name);
    let new_cells = load_tiny_cells(&new_dir)?;
    let mut cosines = end_cosines(&base_dir, &base_cells)?;
    cosines.extend(end_cosines(&new_dir, &new_cells)?);
    let table = side_by_side(&base_cells, &new_cells, &cosines);
    table.write_all(out)?;
    let all: Vec<TinyCell> = base_cells.iter().chain(&new_cells).cloned().collect();
    let new_objectives: BTreeSet<&str> = new_cells.iter().map(|c| c.objective.as_str()).collect();
    let label = |o: &str| {
        if new_objectives.contains(o) {
            format!("{o} (new)")
        } else {
            o.to_string()
        }
    };
    passk_report::plot::render_figure(&tradeoff_figure(&all, "compare_tradeoff", &label), out)?;
    Ok(Some(table))
}

/// Per cell hash: the probe's global cosine of `∇J_k` and `∇J_1` at the cell's last probe, k
/// of its objective (only objectives with k > 1 and cells with a probe at that k).
fn end_cosines(dir: &Path, cells: &[TinyCell]) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for c in cells {
        let k = c.objective_k();
        if k < 2 {
            continue;
        }
        let steps = load_probe_steps(&dir.join(&c.record.hash))?;
        if let Some(cos) = steps
            .last()
            .and_then(|s| s.row(k, "global"))
            .map(|r| r.cosine)
            .filter(|v| v.is_finite())
        {
            out.insert(c.record.hash.clone(), cos);
        }
    }
    Ok(out)
}

/// One row per (q, objective): the baseline's objectives, then the new ones (marked `new`);
/// `cosines` maps a cell hash to its end-of-training probe cosine (see [`compare`]). Built with
/// the report's deltas table ([`DeltasTable`]): the CSV holds every interval's bounds as
/// numbers (`ci_low`, `ci_high`), Markdown and LaTeX the rounded `[low, high]`.
pub fn side_by_side(base: &[TinyCell], new: &[TinyCell], cosines: &BTreeMap<String, f64>) -> Table {
    let new_objectives: BTreeSet<&str> = new.iter().map(|c| c.objective.as_str()).collect();
    let names: Vec<&str> = new_objectives.iter().copied().collect();
    const VS: &str = "Δ pass@1 − pass@1 training's";
    let mut table = DeltasTable::new(
        "compare",
        &format!(
            "{} (new) beside the committed baseline: change from the warm start of held-out \
             pass@1 and pass@k (k of each objective), mean over seeds with 95% t-intervals; the \
             change of pass@1 minus pass@1 training's (paired by seed); and the probe's cosine \
             of ∇J_k and ∇J_1 after training (all probe prompts, mean over seeds; objectives \
             with k > 1).",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &["q", "objective", "seeds"],
        &[VS, &format!("{VS} 95% CI"), "end cos(∇J_k, ∇J_1)"],
    );
    // The paired difference's interval: its text beside its mean, its bounds last in the CSV.
    let vs_ci = 3 + 5 + 1;
    table.table.shown.push((vs_ci, Shown::TextOnly));
    for bound in ["ci_low", "ci_high"] {
        table
            .table
            .shown
            .push((table.table.columns.len(), Shown::CsvOnly));
        table.table.columns.push(format!("{VS} {bound}"));
    }
    let qs: BTreeSet<u64> = base.iter().chain(new).map(|c| c.q.to_bits()).collect();
    let mut qs: Vec<f64> = qs.into_iter().map(f64::from_bits).collect();
    qs.sort_by(f64::total_cmp);
    for q in qs {
        let mut groups: Vec<(String, Vec<&TinyCell>)> = Vec::new();
        let base_objectives: BTreeSet<&str> = base
            .iter()
            .filter(|c| c.q == q)
            .map(|c| c.objective.as_str())
            .collect();
        for o in base_objectives {
            groups.push((
                o.to_string(),
                base.iter()
                    .filter(|c| c.q == q && c.objective == o)
                    .collect(),
            ));
        }
        for o in &new_objectives {
            groups.push((
                format!("{o} (new)"),
                new.iter()
                    .filter(|c| c.q == q && c.objective == *o)
                    .collect(),
            ));
        }
        let pass1_by_seed = |seed: u64| {
            base.iter()
                .find(|c| c.q == q && c.seed == seed && c.objective == "pass1_rloo")
                .and_then(|c| c.delta(1))
        };
        for (label, cells) in groups {
            let Some(deltas) = Deltas::of(&cells) else {
                continue;
            };
            let vs: Vec<f64> = cells
                .iter()
                .filter_map(|c| Some(c.delta(1)? - pass1_by_seed(c.seed)?))
                .collect();
            let cos: Vec<f64> = cells
                .iter()
                .filter_map(|c| cosines.get(&c.record.hash).copied())
                .collect();
            let n_a = |v: &[f64], text: String| if v.is_empty() { "n/a".into() } else { text };
            table.push(
                vec![fmt_f(q, 2), label, cells.len().to_string()],
                &deltas,
                vec![
                    n_a(&vs, fmt_f(mean(&vs), 3)),
                    n_a(&vs, ci_text(&vs)),
                    n_a(&cos, fmt_f(mean(&cos), 3)),
                ],
            );
            let row = table.table.rows.last_mut().expect("just pushed");
            row.extend([ci_bound(&vs, false), ci_bound(&vs, true)]);
        }
    }
    table.table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Experiment;
    use crate::run::{cell_dir, is_done};

    #[test]
    fn committed_cells_of_the_same_hash_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let exp_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/tiny-smoke.toml");
        let (text, _) = variant(&exp_path, &["pkpo_loo_minus_one:k=2".into()]).unwrap();
        let variant_path = dir.path().join("v.toml");
        std::fs::write(&variant_path, text).unwrap();
        let exp = load_experiment(&variant_path).unwrap();
        let (baseline, out) = (dir.path().join("results"), dir.path().join("out"));
        // one cell committed under another experiment's name (with its completion record),
        // one half-written (no record)
        let done = cell_dir(&baseline, "elsewhere", &exp.cells[0].hash);
        std::fs::create_dir_all(done.join("probe")).unwrap();
        let record = passk_schema::cell::CellRecord {
            schema: passk_schema::cell::SCHEMA_VERSION,
            experiment: "elsewhere".into(),
            tier: exp.tier.as_str().to_string(),
            hash: exp.cells[0].hash.clone(),
            config: serde_json::Value::Object(exp.cells[0].config.clone()),
        };
        crate::write::write_json(&done.join("cell.json"), &record).unwrap();
        std::fs::write(done.join("probe/x.csv"), "a").unwrap();
        crate::record::write(
            &done,
            &exp.cells[0].hash,
            &[],
            crate::record::Code::ThisBuild,
        )
        .unwrap();
        let half = cell_dir(&baseline, "elsewhere", &exp.cells[1].hash);
        std::fs::create_dir_all(&half).unwrap();
        std::fs::write(half.join("cell.json"), "{}").unwrap();
        assert_eq!(reuse_cells(&exp, &baseline, &out, false).unwrap(), 1);
        assert!(is_done(&out, &exp.name, &exp.cells[0].hash));
        assert!(!is_done(&out, &exp.name, &exp.cells[1].hash));
        let copied = cell_dir(&out, &exp.name, &exp.cells[0].hash).join("probe/x.csv");
        assert_eq!(std::fs::read_to_string(copied).unwrap(), "a");
        assert_eq!(reuse_cells(&exp, &baseline, &out, false).unwrap(), 0);
        // After an edit of the tier's code (here: a record naming other code), the committed
        // cell is not copied, so compare reruns it instead of reporting its old numbers.
        let edited = dir.path().join("edited");
        let path = done.join(passk_schema::cell::RECORD_FILE);
        let mut rec: passk_schema::cell::CompletionRecord =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        rec.code = Some("0".repeat(64));
        crate::write::write_json(&path, &rec).unwrap();
        assert_eq!(reuse_cells(&exp, &baseline, &edited, false).unwrap(), 0);
        assert!(!is_done(&edited, &exp.name, &exp.cells[0].hash));
    }

    fn load_experiment_text(text: &str) -> Experiment {
        crate::config::parse_experiment(text, Path::new("variant.toml")).unwrap()
    }

    #[test]
    fn variant_replaces_the_objective_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.toml");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/tiny-smoke.toml"),
        )
        .unwrap();
        std::fs::write(&path, text).unwrap();
        let (out, name) = variant(&path, &["pkpo_loo_minus_one:k=2".into()]).unwrap();
        assert_eq!(name, "tiny-smoke-compare");
        assert!(out.contains("\"pkpo_loo_minus_one:k=2\""), "{out}");
        assert!(!out.contains("pass1_rloo"), "{out}");
        assert!(variant(&path, &["no_such_objective".into()]).is_err());
        assert!(variant(&path, &[]).is_err());
        // exclusions that name the baseline's objectives are dropped, the others kept
        let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/gate.toml");
        let (text, _) = variant(&smoke, &["k_anneal:k=8".into()]).unwrap();
        assert!(!text.contains("exclude"), "{text}");
        let with_q = dir.path().join("q.toml");
        std::fs::write(
            &with_q,
            std::fs::read_to_string(&smoke).unwrap()
                + "\n[[exclude]]\n\"mixture.cue_reliability\" = 0.75\nseed = 0\n",
        )
        .unwrap();
        let (text, _) = variant(&with_q, &["k_anneal:k=8".into()]).unwrap();
        assert_eq!(text.matches("[[exclude]]").count(), 1, "{text}");
        assert_eq!(load_experiment_text(&text).cells.len(), 5);
        let (two, _) = variant(
            &path,
            &["k_anneal:k=4".into(), "conflict_projected:k=4".into()],
        )
        .unwrap();
        assert!(two.contains("\"k_anneal:k=4\""), "{two}");
        assert!(two.contains("\"conflict_projected:k=4\""), "{two}");
    }
}
