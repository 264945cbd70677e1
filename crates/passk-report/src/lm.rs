//! Tables of the pretrained-LM tier: held-out pass@k of every cell at each evaluation, and how
//! its samples ended (correct, wrong, no answer found, unparseable, cut off by the budget); for
//! experiments that train, what RL changed ([`training`]).

mod training;

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::load::read_csv;
use crate::tables::{fmt_f, Table};
use passk_schema::cell::{CellRecord, CELL_FILE};
use passk_schema::eval::{EvalRow, PromptOutcomeRow, EVAL_FILE, EVAL_PROMPTS_FILE};
use passk_schema::lm::{LmProbeRow, LmSummary, SUMMARY_FILE};

/// One LM cell's label, config facts and evaluations.
struct LmCell {
    label: String,
    hash: String,
    /// The cell's whole config (`cell.json`).
    config: serde_json::Value,
    objective: String,
    seed: u64,
    /// RL steps in the config (0: evaluation only).
    steps: u64,
    eval: Vec<EvalRow>,
    prompts: Vec<PromptOutcomeRow>,
    probe: Vec<LmProbeRow>,
}

impl LmCell {
    /// Held-out pass@k of `family` at RL step `step`.
    fn at(&self, step: u64, family: &str, k: u32) -> Option<f64> {
        self.eval
            .iter()
            .find(|r| r.step == step && r.family == family && r.k == k)
            .map(|r| r.pass_at_k)
    }

    /// Held-out pass@k of `family` at the end of RL minus at its start.
    fn delta(&self, family: &str, k: u32) -> Option<f64> {
        Some(self.at(self.steps, family, k)? - self.at(0, family, k)?)
    }
}

/// What a cell is, from its config: the dataset (or synthetic mixture), objective and seed,
/// with the objective left out when the cell does no RL.
fn label(config: &serde_json::Value) -> String {
    let data = config
        .pointer("/data/name")
        .or_else(|| config.pointer("/mixture/name"))
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let steps = config
        .pointer("/rl/steps")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let seed = config
        .pointer("/seed")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if steps == 0 {
        format!("{data}, seed {seed}")
    } else {
        let objective = config
            .pointer("/rl/objective")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        format!("{data}, {objective}, seed {seed}")
    }
}

fn load_cells(experiment_dir: &Path) -> Result<Vec<LmCell>, ReportError> {
    let mut cells = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(experiment_dir)
        .map_err(|e| ReportError::io(experiment_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    for dir in dirs {
        let record_path = dir.join(CELL_FILE);
        let text =
            std::fs::read_to_string(&record_path).map_err(|e| ReportError::io(&record_path, e))?;
        let record: CellRecord = serde_json::from_str(&text)
            .map_err(|e| ReportError::invalid(&record_path, e.to_string()))?;
        let config = &record.config;
        let summary_path = dir.join(SUMMARY_FILE);
        let summary: LmSummary = match std::fs::read_to_string(&summary_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| ReportError::invalid(&summary_path, e.to_string()))?,
            Err(e) => return Err(ReportError::io(&summary_path, e)),
        };
        cells.push(LmCell {
            label: label(config),
            hash: record.hash.clone(),
            config: config.clone(),
            objective: config
                .pointer("/rl/objective")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string(),
            seed: config
                .pointer("/seed")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            steps: config
                .pointer("/rl/steps")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            eval: read_csv(&dir.join(EVAL_FILE))?,
            prompts: read_csv(&dir.join(EVAL_PROMPTS_FILE))?,
            probe: summary.probe,
        });
    }
    cells.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(cells)
}

/// Renders `pass_at_k` and `outcomes` (CSV, Markdown, LaTeX) for the LM experiment in
/// `experiment_dir` into `out_dir`, and for cells that trained the tables `deltas`, `paired`
/// and `probe` and the figure `pass_at_k_vs_k`; returns the files written.
pub fn report_lm(experiment_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let cells = load_cells(experiment_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let mut ks: Vec<u32> = cells
        .iter()
        .flat_map(|c| c.eval.iter().map(|r| r.k))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    let k_names: Vec<String> = ks.iter().map(|k| format!("pass@{k}")).collect();
    let mut columns = vec!["cell", "RL step", "prompts"];
    columns.extend(k_names.iter().map(String::as_str));
    let mut pass = Table::new(
        "pass_at_k",
        "Held-out pass@k (unbiased estimator, mean over prompts) of each cell at each evaluation \
         (RL step 0 = before training).",
        &columns,
    );
    let mut outcomes = Table::new(
        "outcomes",
        "How the evaluation samples ended, in percent of all samples: correct; a finished answer \
         of the wrong value; finished but no answer found or unparseable (extraction failures); \
         cut off by the token budget (counted wrong). Prompts: solved at least once, and always.",
        &[
            "cell",
            "RL step",
            "samples",
            "correct %",
            "wrong %",
            "no answer %",
            "unparseable %",
            "cut off %",
            "prompts solved ≥ once",
            "prompts always solved",
        ],
    );
    for cell in &cells {
        let mut steps: Vec<u64> = cell.eval.iter().map(|r| r.step).collect();
        steps.sort_unstable();
        steps.dedup();
        for &step in &steps {
            let overall: Vec<&EvalRow> = cell
                .eval
                .iter()
                .filter(|r| r.step == step && r.family == "all")
                .collect();
            let n_prompts = overall.first().map_or(0, |r| r.n_prompts);
            let mut row = vec![cell.label.clone(), step.to_string(), n_prompts.to_string()];
            for k in &ks {
                row.push(
                    overall
                        .iter()
                        .find(|r| r.k == *k)
                        .map_or(String::new(), |r| fmt_f(r.pass_at_k, 3)),
                );
            }
            pass.rows.push(row);
            let ps: Vec<&PromptOutcomeRow> =
                cell.prompts.iter().filter(|p| p.step == step).collect();
            let total: u32 = ps.iter().map(|p| p.n_samples).sum();
            let pct = |f: fn(&PromptOutcomeRow) -> u32| {
                let n: u32 = ps.iter().map(|p| f(p)).sum();
                fmt_f(100.0 * f64::from(n) / f64::from(total.max(1)), 1)
            };
            outcomes.rows.push(vec![
                cell.label.clone(),
                step.to_string(),
                total.to_string(),
                pct(|p| p.correct),
                pct(|p| p.wrong),
                pct(|p| p.no_answer),
                pct(|p| p.unparseable),
                pct(|p| p.cut_off),
                format!(
                    "{} of {}",
                    ps.iter().filter(|p| p.correct > 0).count(),
                    ps.len()
                ),
                format!(
                    "{} of {}",
                    ps.iter().filter(|p| p.correct == p.n_samples).count(),
                    ps.len()
                ),
            ]);
        }
    }
    let mut written = pass.write_all(out_dir)?;
    written.extend(outcomes.write_all(out_dir)?);
    written.extend(training::report_training(&cells, out_dir)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A `summary.json` with `probe` and placeholder bookkeeping.
    fn summary_json(probe: Vec<LmProbeRow>) -> String {
        serde_json::to_string(&LmSummary {
            config_hash: "0".repeat(16),
            objective: "pass1_rloo".into(),
            n_params: 1,
            n_trainable: 1,
            rl_steps: 0,
            warm_start: vec![],
            final_eval: vec![],
            warm_start_format: vec![],
            final_format: vec![],
            probe,
            probe_sketch_bytes: 0,
            probe_gradient_bytes: 0,
            load_seconds: 0.0,
            rl_seconds: 0.0,
            eval_seconds: 0.0,
            probe_seconds: 0.0,
            wall_seconds: 0.0,
        })
        .unwrap()
    }

    #[test]
    fn tables_show_each_cell_and_count_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let cell = dir.path().join("exp/0123456789abcdef");
        write(
            &cell.join("cell.json"),
            r#"{"schema":1,"experiment":"exp","tier":"lm","hash":"0123456789abcdef",
               "config":{"data":{"name":"svamp"},"rl":{"steps":0,"objective":"pass1_rloo"},"seed":0}}"#,
        );
        write(
            &cell.join("eval.csv"),
            "step,family,k,pass_at_k,n_prompts\n0,all,1,0.25,2\n0,all,2,0.5,2\n0,svamp,1,0.25,2\n",
        );
        write(&cell.join("summary.json"), &summary_json(vec![]));
        write(
            &cell.join("eval_prompts.csv"),
            "step,prompt,family,n_samples,correct,wrong,no_answer,unparseable,cut_off\n\
             0,a,svamp,2,2,0,0,0,0\n0,b,svamp,2,0,1,0,0,1\n",
        );
        let out = dir.path().join("fig");
        let files = report_lm(&dir.path().join("exp"), &out).unwrap();
        assert_eq!(files.len(), 6);
        let pass = std::fs::read_to_string(out.join("pass_at_k.csv")).unwrap();
        assert_eq!(
            pass,
            "cell,RL step,prompts,pass@1,pass@2\n\"svamp, seed 0\",0,2,0.250,0.500\n"
        );
        let outcomes = std::fs::read_to_string(out.join("outcomes.csv")).unwrap();
        assert!(
            outcomes.ends_with("0,4,50.0,25.0,0.0,0.0,25.0,1 of 2,1 of 2\n"),
            "{outcomes}"
        );
    }

    /// An RL cell of `objective` and `seed` whose pass@1 and pass@2 move from `start` to
    /// `end` (all and one family `f`), with one probe row.
    fn rl_cell(root: &Path, hash: &str, objective: &str, seed: u64, start: f64, end: f64) {
        let cell = root.join("exp").join(hash);
        write(
            &cell.join("cell.json"),
            &format!(
                r#"{{"schema":1,"experiment":"exp","tier":"lm","hash":"{hash}",
                   "config":{{"mixture":{{"name":"arith"}},"rl":{{"steps":5,"objective":"{objective}"}},"seed":{seed}}}}}"#
            ),
        );
        let mut eval = String::from("step,family,k,pass_at_k,n_prompts\n");
        for (step, p) in [(0, start), (5, end)] {
            for family in ["all", "f"] {
                eval.push_str(&format!(
                    "{step},{family},1,{p},4\n{step},{family},2,{},4\n",
                    p + 0.1
                ));
            }
        }
        write(&cell.join("eval.csv"), &eval);
        write(
            &cell.join("eval_prompts.csv"),
            "step,prompt,family,n_samples,correct,wrong,no_answer,unparseable,cut_off\n\
             0,a,f,2,1,1,0,0,0\n5,a,f,2,2,0,0,0,0\n",
        );
        write(
            &cell.join("summary.json"),
            &summary_json(vec![LmProbeRow {
                step: 0,
                k: 2,
                inner: 0.5,
                ci_low: 0.1,
                ci_high: 0.9,
                cosine: None,
            }]),
        );
    }

    #[test]
    fn training_tables_pair_objectives_by_seed() {
        let dir = tempfile::tempdir().unwrap();
        // pass@1 training gains 0.2 and 0.4 over seeds; pass@2 training gains 0.1 and 0.2, so
        // paired by seed it trails by 0.1 and 0.2.
        rl_cell(dir.path(), "a000000000000000", "pass1_rloo", 0, 0.1, 0.3);
        rl_cell(dir.path(), "a100000000000000", "pass1_rloo", 1, 0.2, 0.6);
        rl_cell(
            dir.path(),
            "b000000000000000",
            "pkpo_loo_minus_one:k=2",
            0,
            0.1,
            0.2,
        );
        rl_cell(
            dir.path(),
            "b100000000000000",
            "pkpo_loo_minus_one:k=2",
            1,
            0.2,
            0.4,
        );
        let out = dir.path().join("fig");
        let files = report_lm(&dir.path().join("exp"), &out).unwrap();
        for name in [
            "deltas.csv",
            "paired.csv",
            "probe.csv",
            "pass_at_k_vs_k.svg",
            "pass_at_k_vs_k.png",
        ] {
            assert!(files.contains(&out.join(name)), "{name} in {files:?}");
        }
        let deltas = std::fs::read_to_string(out.join("deltas.csv")).unwrap();
        let row = deltas
            .lines()
            .find(|l| l.starts_with("pass@1 (RLOO),all,"))
            .unwrap();
        assert!(row.starts_with("pass@1 (RLOO),all,2,0.150,0.300,"), "{row}");
        let paired = std::fs::read_to_string(out.join("paired.csv")).unwrap();
        let row = paired
            .lines()
            .find(|l| l.starts_with("pass@2 (PKPO),all,"))
            .unwrap();
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(
            &cols[..5],
            ["pass@2 (PKPO)", "all", "2", "-0.150", "2"],
            "{row}"
        );
        // The interval of the paired differences -0.1 and -0.2 holds their mean.
        let (lo, hi): (f64, f64) = (cols[6].parse().unwrap(), cols[7].parse().unwrap());
        assert!(lo < -0.15 && -0.15 < hi, "{row}");
        let probe = std::fs::read_to_string(out.join("probe.csv")).unwrap();
        assert!(probe.contains("pass@1 (RLOO),0,2,2,"), "{probe}");
        // Every fixture cell's cosine is null (a negative split-half norm estimate).
        assert!(
            probe.lines().skip(1).all(|l| l.ends_with(",n/a")),
            "{probe}"
        );
        let svg = std::fs::read_to_string(out.join("pass_at_k_vs_k.svg")).unwrap();
        assert!(svg.contains("before RL"), "legend drawn");
    }

    #[test]
    fn evaluation_only_cells_get_no_training_tables() {
        let dir = tempfile::tempdir().unwrap();
        rl_cell(dir.path(), "a000000000000000", "pass1_rloo", 0, 0.1, 0.3);
        let cell = dir.path().join("exp/a000000000000000/cell.json");
        let text = std::fs::read_to_string(&cell)
            .unwrap()
            .replace(r#""steps":5"#, r#""steps":0"#);
        write(&cell, &text);
        let files = report_lm(&dir.path().join("exp"), &dir.path().join("fig")).unwrap();
        assert!(
            files
                .iter()
                .all(|f| !f.to_string_lossy().contains("deltas")),
            "{files:?}"
        );
    }

    #[test]
    fn cells_that_differ_in_another_parameter_are_not_pooled_as_seeds() {
        let dir = tempfile::tempdir().unwrap();
        rl_cell(dir.path(), "a000000000000000", "pass1_rloo", 0, 0.1, 0.3);
        rl_cell(dir.path(), "a100000000000000", "pass1_rloo", 0, 0.1, 0.5);
        let cell = dir.path().join("exp/a100000000000000/cell.json");
        let text = std::fs::read_to_string(&cell)
            .unwrap()
            .replace(r#""steps":5,"#, r#""steps":5,"lr":0.5,"#);
        write(&cell, &text);
        let out = dir.path().join("fig");
        report_lm(&dir.path().join("exp"), &out).unwrap();
        let deltas = std::fs::read_to_string(out.join("deltas.csv")).unwrap();
        assert!(
            deltas.contains("\"pass@1 (RLOO), rl.lr=-\",all,1,"),
            "{deltas}"
        );
        assert!(
            deltas.contains("\"pass@1 (RLOO), rl.lr=0.5\",all,1,"),
            "{deltas}"
        );
    }

    #[test]
    fn an_objective_whose_k_was_not_evaluated_uses_the_largest_evaluated_k() {
        let dir = tempfile::tempdir().unwrap();
        rl_cell(dir.path(), "a000000000000000", "pass1_rloo", 0, 0.1, 0.3);
        // tang_loo without a k targets the group size, which the fixture does not evaluate.
        rl_cell(dir.path(), "b000000000000000", "tang_loo", 0, 0.1, 0.2);
        let out = dir.path().join("fig");
        report_lm(&dir.path().join("exp"), &out).unwrap();
        let deltas = std::fs::read_to_string(out.join("deltas.csv")).unwrap();
        assert!(
            deltas.lines().skip(1).all(|l| l.contains(",2,")),
            "{deltas}"
        );
    }
}
