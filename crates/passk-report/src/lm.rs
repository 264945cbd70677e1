//! Tables of the pretrained-LM tier: held-out pass@k of every cell at each evaluation, and how
//! its samples ended (correct, wrong, no answer found, unparseable, cut off by the budget).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ReportError;
use crate::load::read_csv;
use crate::schema::CellRecord;
use crate::tables::{fmt_f, Table};

/// `eval.csv` of an LM cell (one row per family and k).
#[derive(Debug, Clone, Deserialize)]
struct EvalCsvRow {
    step: u64,
    family: String,
    k: u32,
    pass_at_k: f64,
    n_prompts: usize,
}

/// `eval_prompts.csv` of an LM cell (one row per prompt).
#[derive(Debug, Clone, Deserialize)]
struct PromptCsvRow {
    step: u64,
    n_samples: u32,
    correct: u32,
    wrong: u32,
    no_answer: u32,
    unparseable: u32,
    cut_off: u32,
}

/// One LM cell's label and evaluations.
struct LmCell {
    label: String,
    eval: Vec<EvalCsvRow>,
    prompts: Vec<PromptCsvRow>,
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
        let record_path = dir.join("cell.json");
        let text =
            std::fs::read_to_string(&record_path).map_err(|e| ReportError::io(&record_path, e))?;
        let record: CellRecord = serde_json::from_str(&text)
            .map_err(|e| ReportError::invalid(&record_path, e.to_string()))?;
        cells.push(LmCell {
            label: label(&record.config),
            eval: read_csv(&dir.join("eval.csv"))?,
            prompts: read_csv(&dir.join("eval_prompts.csv"))?,
        });
    }
    cells.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(cells)
}

/// Renders `pass_at_k` and `outcomes` (CSV, Markdown, LaTeX) for the LM experiment in
/// `experiment_dir` into `out_dir`; returns the files written.
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
            let overall: Vec<&EvalCsvRow> = cell
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
            let ps: Vec<&PromptCsvRow> = cell.prompts.iter().filter(|p| p.step == step).collect();
            let total: u32 = ps.iter().map(|p| p.n_samples).sum();
            let pct = |f: fn(&PromptCsvRow) -> u32| {
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
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
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
}
