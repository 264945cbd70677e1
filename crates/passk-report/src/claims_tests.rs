//! Tests of `claims.rs` (kept in their own file so that file stays under 600 lines).

use super::*;

#[test]
fn parse_rejects_unknown_statistic_and_op() {
    let base = r#"
gate = ["experiments/theory.toml"]

[[claim]]
name = "a"
experiment = "theory"
statistic = "fraction_with_kstar"
op = ">="
threshold = 1.0
why = "w"
"#;
    assert_eq!(
        parse_claims(base, Path::new("c.toml")).unwrap().claim.len(),
        1
    );
    let bad = base.replace("fraction_with_kstar", "nope");
    assert!(parse_claims(&bad, Path::new("c.toml"))
        .unwrap_err()
        .to_string()
        .contains("nope"));
    let bad = base.replace("\">=\"", "\"==\"");
    assert!(parse_claims(&bad, Path::new("c.toml")).is_err());
    let bad = base.replace("why = \"w\"", "why = \"w\"\nextra = 1");
    assert!(parse_claims(&bad, Path::new("c.toml"))
        .unwrap_err()
        .to_string()
        .contains("extra"));
}

#[test]
fn parse_rejects_non_finite_threshold_and_effect() {
    let base = "gate = []\n[[claim]]\nname = \"inf_claim\"\nexperiment = \"theory\"\n\
                statistic = \"fraction_with_kstar\"\nop = \"<\"\nthreshold = 1.0\nwhy = \"w\"\n";
    assert!(parse_claims(base, Path::new("c.toml")).is_ok());
    for (from, to, key) in [
        ("threshold = 1.0", "threshold = inf", "threshold"),
        ("threshold = 1.0", "threshold = -inf", "threshold"),
        ("threshold = 1.0", "threshold = nan", "threshold"),
        ("why = \"w\"", "why = \"w\"\neffect = inf", "effect"),
        ("why = \"w\"", "why = \"w\"\neffect = nan", "effect"),
    ] {
        let msg = parse_claims(&base.replace(from, to), Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("inf_claim") && msg.contains(key), "{msg}");
        assert!(msg.contains("finite"), "{msg}");
    }
}

#[test]
fn selection_matches_values_and_lists() {
    let config: Value =
        serde_json::json!({"separation": 0.5, "k": 4, "tier": "x", "rl": {"objective": "a"}});
    let t: toml::Table = toml::from_str("\"rl.objective\" = \"a\"").unwrap();
    assert!(matches(&t, &config));
    let t: toml::Table = toml::from_str("separation = 0.5\nk = [2, 4]").unwrap();
    assert!(matches(&t, &config));
    let t: toml::Table = toml::from_str("separation = 6.0").unwrap();
    assert!(!matches(&t, &config));
    let t: toml::Table = toml::from_str("missing = 1").unwrap();
    assert!(!matches(&t, &config));
}

#[test]
fn comparisons() {
    assert!(compare(-0.1, "<", 0.0));
    assert!(!compare(0.0, "<", 0.0));
    assert!(compare(0.0, "<=", 0.0));
    assert!(compare(1.0, ">=", 1.0));
    assert!(!compare(f64::NAN, ">=", 1.0));
}

fn claim(statistic: &str, select: &str, op: &str, threshold: f64) -> Claim {
    let text = format!(
        "gate = []\n[[claim]]\nname = \"c\"\nexperiment = \"exp\"\nselect = {select}\n\
         statistic = \"{statistic}\"\nop = \"{op}\"\nthreshold = {threshold}\nwhy = \"test\"\n"
    );
    parse_claims(&text, Path::new("claims.toml"))
        .unwrap()
        .claim
        .remove(0)
}

#[test]
fn difference_in_differences_and_probe_blocks() {
    use crate::probe::tests::write_cell_seeded;
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let k8 = "pkpo_loo_minus_one:k=8";
    // Interference falls by 0.10 +- 0.01, the control rises by 0.01: DiD about -0.11.
    for (i, (seed, d)) in [(0, -0.09), (1, -0.10), (2, -0.11)].into_iter().enumerate() {
        write_cell_seeded(&exp, &format!("a{i:015}"), 0.75, k8, seed, -0.5, d);
        write_cell_seeded(&exp, &format!("b{i:015}"), 1.0, k8, seed, 0.5, 0.01);
    }
    let v = evaluate(
        &[claim(
            "tiny_did_pass1_ci_high",
            &format!("{{ \"rl.objective\" = \"{k8}\" }}"),
            "<",
            0.0,
        )],
        tmp.path(),
        tmp.path(),
    );
    assert!(v[0].passed, "{:?}", v[0]);
    let (lo, hi) = v[0].interval.unwrap();
    assert!(lo < -0.11 && -0.11 < hi && hi < 0.0);
    // One-sided tests against an effect size: a fall of 0.10 +- 0.01 is beyond 0.03, not 0.2.
    let sel75 = format!("{{ \"mixture.cue_reliability\" = 0.75, \"rl.objective\" = \"{k8}\" }}");
    let mut c = claim("tiny_delta_pass1_p_below", &sel75, "<", 0.05);
    c.effect = 0.03;
    let v = evaluate(std::slice::from_ref(&c), tmp.path(), tmp.path());
    assert!(v[0].passed && v[0].measured.unwrap() < 0.01, "{:?}", v[0]);
    c.effect = 0.2;
    assert!(!evaluate(&[c], tmp.path(), tmp.path())[0].passed);
    // One q only: refused, not passed.
    let v = evaluate(
        &[claim(
            "tiny_did_pass1_ci_high",
            "{ \"mixture.cue_reliability\" = 0.75 }",
            "<",
            0.0,
        )],
        tmp.path(),
        tmp.path(),
    );
    assert!(!v[0].passed && v[0].error.is_some());
    // Probe block: -0.1 +- 0.1 at the warm start (interval touches 0), -0.2 +- 0.1 at the end.
    let sel = "{ \"mixture.cue_reliability\" = 0.75 }";
    let v = evaluate(
        &[
            claim("tiny_probe_rf_ci_high_max", sel, "<", 0.0),
            claim("tiny_probe_rf_end_ci_high_max", sel, "<", 0.0),
            claim(
                "tiny_probe_rf_negative_share",
                "{ \"mixture.cue_reliability\" = 1.0 }",
                "<=",
                0.0,
            ),
        ],
        tmp.path(),
        tmp.path(),
    );
    assert!(!v[0].passed, "{:?}", v[0]);
    assert!((v[0].measured.unwrap() - 0.0).abs() < 1e-12);
    assert!(v[1].passed && (v[1].measured.unwrap() + 0.1).abs() < 1e-12);
    assert!(v[2].passed);
    // A baseline claim reads the other directory.
    let mut c = claim("tiny_probe_rf_end_ci_high_max", sel, "<", 0.0);
    c.baseline = true;
    let empty = tempfile::tempdir().unwrap();
    assert!(evaluate(std::slice::from_ref(&c), empty.path(), tmp.path())[0].passed);
    assert!(!evaluate(&[c], tmp.path(), empty.path())[0].passed);
}

#[test]
fn trend_over_q_and_expected_failures() {
    use crate::probe::tests::write_cell_seeded;
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let k8 = "pkpo_loo_minus_one:k=8";
    // Change of pass@1 = 0.5 (q - 0.9) - 0.02 + per-seed noise: slope 0.5 in every seed, up to
    // the noise, so the interval over seeds lies above 0.
    let mut n = 0;
    for seed in 0..4u64 {
        for q in [0.6, 0.75, 0.9] {
            let noise = [0.004, -0.003, 0.002, -0.001][seed as usize] * (q * 10.0);
            write_cell_seeded(
                &exp,
                &format!("t{n:015}"),
                q,
                k8,
                seed,
                0.0,
                0.5 * (q - 0.9) - 0.02 + noise,
            );
            n += 1;
        }
    }
    let sel = format!("{{ \"rl.objective\" = \"{k8}\" }}");
    let v = evaluate(
        &[
            claim("tiny_trend_pass1_slope_ci_low", &sel, ">", 0.0),
            claim("tiny_trend_pass1_slope_p_above", &sel, "<", 0.01),
        ],
        tmp.path(),
        tmp.path(),
    );
    let (lo, hi) = v[0].interval.unwrap();
    assert!(
        v[0].passed && lo > 0.3 && lo < 0.5 && hi > 0.5,
        "{:?}",
        v[0]
    );
    assert!(v[1].passed && v[1].measured.unwrap() < 1e-4, "{:?}", v[1]);
    assert!((least_squares_slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-12);
    // Two q values are not a trend: refused.
    let two =
        format!("{{ \"rl.objective\" = \"{k8}\", \"mixture.cue_reliability\" = [0.6, 0.9] }}");
    let v = evaluate(
        &[claim("tiny_trend_pass1_slope_ci_low", &two, ">", 0.0)],
        tmp.path(),
        tmp.path(),
    );
    assert!(!v[0].passed && v[0].error.is_some());
    // An expected failure is accepted when it does not hold, rejected when it does, and a
    // claim that cannot be evaluated is rejected either way.
    let mut wrong = claim("tiny_trend_pass1_slope_ci_low", &sel, "<", 0.0);
    wrong.expected_failure = true;
    let mut right = claim("tiny_trend_pass1_slope_ci_low", &sel, ">", 0.0);
    right.expected_failure = true;
    let mut broken = claim("tiny_trend_pass1_slope_ci_low", &two, ">", 0.0);
    broken.expected_failure = true;
    let v = evaluate(&[wrong, right, broken], tmp.path(), tmp.path());
    assert!(v[0].passed && !holds(&v[0]));
    assert!(!v[1].passed && holds(&v[1]));
    assert!(!v[2].passed && !holds(&v[2]));
    let table = render_table(&v);
    assert!(
        table.contains("XFAIL") && table.contains("XPASS"),
        "{table}"
    );
    assert!(table.contains("DOES NOT HOLD (expected)"), "{table}");
}

#[test]
fn paired_comparisons_against_a_reference_objective() {
    use crate::probe::tests::write_cell_seeded;
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp");
    let k8 = "pkpo_loo_minus_one:k=8";
    // Per seed: pass@1 training +0.10, pass@8 training -0.10, the candidate +0.08 +- 0.01;
    // pass@8 gains 0.10 under pass@8 training and 0.09 +- 0.01 under the candidate.
    let gain8 = |dir: &Path, d: f64| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("eval.csv"))
            .unwrap();
        writeln!(f, "0,all,8,0.5,400\n200,all,8,{},400", 0.5 + d).unwrap();
    };
    for (seed, c) in [(0u64, 0.07), (1, 0.08), (2, 0.09)] {
        write_cell_seeded(
            &exp,
            &format!("p{seed:015}"),
            0.75,
            "pass1_rloo",
            seed,
            0.0,
            0.10,
        );
        write_cell_seeded(&exp, &format!("k{seed:015}"), 0.75, k8, seed, 0.0, -0.10);
        gain8(&exp.join(format!("k{seed:015}")), 0.10);
        write_cell_seeded(
            &exp,
            &format!("c{seed:015}"),
            0.75,
            "entropic",
            seed,
            0.0,
            c,
        );
        gain8(&exp.join(format!("c{seed:015}")), c + 0.01);
    }
    let sel = "{ \"mixture.cue_reliability\" = 0.75, \"rl.objective\" = \"entropic\" }";
    let versus = |stat: &str, against: &str, op: &str, threshold: f64, effect: f64| {
        // Parsed with another statistic: the parser wants `against` with a tiny_vs_* one.
        let mut c = claim("tiny_delta_pass1_mean", sel, op, threshold);
        c.statistic = stat.to_string();
        c.against = Some(against.to_string());
        c.effect = effect;
        evaluate(&[c], tmp.path(), tmp.path()).remove(0)
    };
    // Candidate minus pass@1 training: -0.02 +- 0.01 per seed.
    let v = versus("tiny_vs_pass1_mean", "pass1_rloo", ">=", -0.01, 0.0);
    assert!(
        !v.passed && (v.measured.unwrap() + 0.02).abs() < 1e-9,
        "{v:?}"
    );
    assert_eq!(v.cells, 6);
    let v = versus("tiny_vs_pass1_ci_low", "pass1_rloo", ">", -0.03, 0.0);
    let (lo, hi) = v.interval.unwrap();
    assert!(lo < -0.02 && -0.02 < hi && v.measured == Some(lo), "{v:?}");
    // pass@8: 0.09 - 0.8 x 0.10 = 0.01 +- 0.01 per seed; with a share of 1, -0.01.
    let v = versus("tiny_vs_passk_share_ci_low", k8, ">", -1.0, 0.8);
    assert!(
        v.error.is_none() && (v.estimate.unwrap() - 0.01).abs() < 1e-9,
        "{v:?}"
    );
    let v = versus("tiny_vs_passk_share_ci_low", k8, ">", 0.0, 1.0);
    assert!(
        !v.passed && (v.estimate.unwrap() + 0.01).abs() < 1e-9,
        "{v:?}"
    );
    // A reference with no cell at that q and seed: an error, not a pass.
    let v = versus("tiny_vs_pass1_mean", "chen:k=8", ">=", -1.0, 0.0);
    assert!(!v.passed && v.error.unwrap().contains("chen:k=8"));
    // `against` goes with the tiny_vs_* statistics and only with them.
    let text = |stat: &str, against: &str| {
        format!(
            "gate = []\n[[claim]]\nname = \"c\"\nexperiment = \"exp\"\nstatistic = \"{stat}\"\n\
             op = \">\"\nthreshold = 0\nwhy = \"w\"\n{against}"
        )
    };
    let path = Path::new("claims.toml");
    assert!(parse_claims(&text("tiny_vs_pass1_mean", ""), path).is_err());
    assert!(parse_claims(&text("tiny_delta_pass1_mean", "against = \"x\"\n"), path).is_err());
    assert!(parse_claims(&text("tiny_vs_pass1_mean", "against = \"x\"\n"), path).is_ok());
}
