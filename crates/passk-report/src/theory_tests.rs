//! Tests of `theory.rs` (kept in their own file so that file stays under 600 lines).

use super::*;
use crate::load::fixtures::{fake_cell, fake_matrix, write_cell};
use crate::load::{load_theory_cells, read_json};

fn keyed(cells: &[TheoryCell]) -> Vec<Keyed<'_>> {
    cells
        .iter()
        .map(|cell| Keyed {
            cell,
            key: cell.key().unwrap(),
        })
        .collect()
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn renders_everything_from_loaded_cells_deterministically() {
    let results = tempfile::tempdir().unwrap();
    let cells = fake_matrix();
    for c in &cells {
        write_cell(results.path(), c);
    }
    let loaded = load_theory_cells(results.path()).unwrap();
    assert_eq!(loaded, cells);
    let out1 = tempfile::tempdir().unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let p1 = report_theory(results.path(), &out1.path().join("figures/theory")).unwrap();
    let p2 = render_theory(&loaded, &out2.path().join("figures/theory")).unwrap();
    let expected: Vec<String> = [
        "agreement_vs_p.png",
        "agreement_vs_p.sources.json",
        "agreement_vs_p.svg",
        "ascent.png",
        "ascent.sources.json",
        "ascent.svg",
        "cosine_vs_k.png",
        "cosine_vs_k.sources.json",
        "cosine_vs_k.svg",
        "final_objectives.csv",
        "final_objectives.md",
        "final_objectives.sources.json",
        "final_objectives.tex",
        "kstar.csv",
        "kstar.md",
        "kstar.sources.json",
        "kstar.tex",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names(&p1), expected);
    assert!(p1.windows(2).all(|w| w[0] < w[1]), "paths are sorted");
    for (a, b) in p1.iter().zip(&p2) {
        let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert!(!ba.is_empty(), "{} is empty", a.display());
        assert_eq!(ba, bb, "{} differs between two renders", a.display());
    }
    // Nothing else (no temporaries) in the output directory.
    let dir = out1.path().join("figures/theory");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), expected.len());

    let svg = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    assert!(svg("cosine_vs_k.svg").contains("cos(∇Jₖ, ∇J₁) at θ₀ against k (p_hard = 0.5)"));
    assert!(svg("cosine_vs_k.svg").contains("separation 6 (3 seeds)"));
    assert!(svg("ascent.svg").contains("Exact ascent, separation 0.5, p_hard 0.5, k 4, seed 0"));
    assert!(svg("ascent.svg").contains("Exact ascent, separation 6, p_hard 0.5, k 4, seed 0"));
    assert!(svg("agreement_vs_p.svg").contains("Agreement a(x) against p(x), separation 6"));
    assert!(svg("agreement_vs_p.svg").contains("hard prompts"));

    let csv = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    // Header plus one row per (separation, p_hard) [x k]: 3 settings with one k each.
    assert_eq!(csv("kstar.csv").lines().count(), 4);
    assert_eq!(csv("final_objectives.csv").lines().count(), 4);
    assert_eq!(
        csv("kstar.md")
            .lines()
            .filter(|l| l.starts_with("| "))
            .count(),
        5
    );

    let src: Sources = read_json(&dir.join("cosine_vs_k.sources.json")).unwrap();
    let mut want: Vec<String> = cells
        .iter()
        .filter(|c| c.key().unwrap().p_hard == 0.5)
        .map(|c| c.record.hash.clone())
        .collect();
    want.sort();
    assert_eq!(src.cells, want);
    assert_eq!(src.files, ["cosine_vs_k.svg", "cosine_vs_k.png"]);
    let src: Sources = read_json(&dir.join("kstar.sources.json")).unwrap();
    assert_eq!(src.cells.len(), cells.len());
    assert_eq!(src.kind, "table");
}

#[test]
fn cosine_is_mean_over_seeds_skipping_undefined() {
    let cells = fake_matrix();
    let k = keyed(&cells);
    let built = cosine_vs_k(&k);
    let chart = &built.figure.panels[0];
    assert_eq!(chart.series.len(), 2);
    let low = &chart.series[0];
    assert!(low.label.starts_with("separation 0.5"));
    let cos_at = |seed: u64, kk: usize| {
        cells
            .iter()
            .find(|c| {
                let key = c.key().unwrap();
                key.seed == seed && key.separation == 0.5 && key.p_hard == 0.5
            })
            .unwrap()
            .kscan[kk - 1]
            .cosine
    };
    let (x, y) = low.points[1];
    assert_eq!(x, 2.0);
    let want = (cos_at(0, 2).unwrap() + cos_at(1, 2).unwrap() + cos_at(2, 2).unwrap()) / 3.0;
    assert!((y - want).abs() < 1e-15);
    // At k = 8 seed 1 has no cosine: the mean is over seeds 0 and 2 only.
    assert_eq!(cos_at(1, 8), None);
    let (x, y) = low.points[7];
    assert_eq!(x, 8.0);
    let want = (cos_at(0, 8).unwrap() + cos_at(2, 8).unwrap()) / 2.0;
    assert!((y - want).abs() < 1e-15);
    assert!(built.caption.contains("[3, 3]"), "{}", built.caption);
}

#[test]
fn kstar_and_final_objective_tables_aggregate_per_setting() {
    let cells = fake_matrix();
    let k = keyed(&cells);
    let t = kstar_table(&k);
    assert_eq!(t.rows.len(), 3);
    // separation 0.5, p_hard 0.5: seeds 0, 1, 2 have k* 3, 4, none.
    let row = t
        .rows
        .iter()
        .find(|r| r[0] == "0.5" && r[1] == "0.5")
        .unwrap();
    assert_eq!(row[2..], ["3", "2", "0:3 1:4 2:none", "3", "4", "1-8"]);
    let row = t.rows.iter().find(|r| r[0] == "6").unwrap();
    assert_eq!(row[2..7], ["3", "0", "0:none 1:none 2:none", "", ""]);

    let t = final_objectives_table(&k);
    assert_eq!(t.rows.len(), 3);
    let row = t
        .rows
        .iter()
        .find(|r| r[0] == "0.5" && r[1] == "0.5")
        .unwrap();
    assert_eq!(row[2], "4");
    assert_eq!(row[3], "3");
    // j1_start = 0.6 + 0.01 seed → mean 0.61 over seeds 0..3.
    assert_eq!(row[4], "0.6100 [0.6000, 0.6200]");
    // Delta J_1 under pass@k ascent = 0.55 - 0.6 for every seed.
    assert_eq!(row[10], "-0.0500");
    let row = t.rows.iter().find(|r| r[0] == "6").unwrap();
    assert_eq!(row[10], "0.0500");
}

#[test]
fn representatives_pick_extreme_separations_at_main_p_hard() {
    let mut cells = fake_matrix();
    cells.push(fake_cell(6.0, 0.5, 16, 0));
    cells.push(fake_cell(6.0, 0.5, 32, 5));
    let k = keyed(&cells);
    assert_eq!(main_p_hard(&k), 0.5);
    let reps = representatives(&k);
    let keys: Vec<(f64, u32, u64)> = reps
        .iter()
        .map(|c| (c.key.separation, c.key.k, c.key.seed))
        .collect();
    assert_eq!(keys, [(0.5, 4, 0), (6.0, 16, 0)]);
    let built = agreement_vs_p(&k);
    assert_eq!(built.figure.panels.len(), 2);
    let wk = built.figure.panels[1].series.last().unwrap();
    assert!(wk.label.starts_with("w₁₆(p)"), "{}", wk.label);
    // The scaled weight peaks at p = 0 at the largest |a(x)|.
    let max_a = reps[1]
        .cell
        .prompts
        .iter()
        .map(|p| p.agreement.abs())
        .fold(0.0, f64::max);
    assert!((wk.points[0].1 - max_a).abs() < 1e-15);
    assert_eq!(wk.points[100], (1.0, 0.0));
}

#[test]
fn single_cell_and_errors() {
    let cells = vec![fake_cell(1.5, 0.3, 2, 7)];
    let out = tempfile::tempdir().unwrap();
    let paths = render_theory(&cells, out.path()).unwrap();
    assert_eq!(paths.len(), 17);
    let k = keyed(&cells);
    assert_eq!(ascent(&k).figure.panels.len(), 1);

    let err = render_theory(&[], out.path()).unwrap_err();
    assert!(matches!(err, ReportError::NoCells { .. }));
    let empty = tempfile::tempdir().unwrap();
    let err = report_theory(empty.path(), out.path()).unwrap_err();
    assert!(matches!(err, ReportError::NoCells { .. }), "{err}");
    let mut bad = fake_cell(1.5, 0.3, 2, 7);
    bad.record
        .config
        .as_object_mut()
        .unwrap()
        .remove("separation");
    let err = render_theory(&[bad], out.path()).unwrap_err().to_string();
    assert!(err.contains("`separation`"), "{err}");
}
