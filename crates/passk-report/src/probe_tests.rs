//! Tests of `probe.rs` (kept in their own file so that file stays under 600 lines).

use plotters::style::RGBColor;

use super::heatmap::diverging;
use super::*;
use passk_schema::cell::CELL_FILE;
use passk_schema::cell::{CellRecord, SCHEMA_VERSION};
use passk_schema::eval::EvalRow;
use passk_schema::probe;
use serde::Serialize;

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
        if i.is_multiple_of(2) {
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
    write_csv(&dir.join(probe::PROMPTS_FILE), &prompts);
    // The packed binary form of new cells where the step directory ends in 0, else older
    // cells' CSV, so both readers are exercised.
    if dir.to_string_lossy().ends_with("00000") {
        let mut g = passk_core::interference::Gram::new(n);
        for r in &gram {
            g.set(r.i, r.j, r.kappa);
            g.set(r.j, r.i, r.kappa);
        }
        std::fs::write(dir.join(probe::GRAM_FILE), g.to_upper_f32_le()).unwrap();
    } else {
        write_csv(&dir.join(probe::GRAM_CSV_FILE), &gram);
    }
    write_csv(&dir.join(probe::SUMMARY_FILE), &summary);
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
        .map(|(step, p)| EvalRow {
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
    // cccc is a pass@1 cell (k = 1): not counted as a prediction.
    // global: aaaa negative & fell, bbbb non-negative & held.
    assert_eq!(table.rows[0], ["global", "2", "1", "0", "0", "1", "1.00"]);
    // cross-family: the same two.
    assert_eq!(
        table.rows[1],
        ["cross-family", "2", "1", "0", "0", "1", "1.00"]
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
