//! The verdict table `passk check` prints, and the lines that explain its failures.

use super::{Statistic, Tested, Verdict};

/// A number for the verdict table: fixed point, or scientific when tiny or huge.
pub(crate) fn number(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.6}")
    } else {
        format!("{x:.3e}")
    }
}

/// What the statistic `name` tests, when it is not the estimate itself (`None`): a p-value
/// or a bound of the interval.
pub(crate) fn tested_label(name: &str) -> Option<&'static str> {
    match Statistic::from_name(name)?.tested() {
        Tested::Estimate => None,
        Tested::PValue => Some("p-value"),
        Tested::CiHigh => Some("CI high"),
        Tested::CiLow => Some("CI low"),
    }
}

/// The verdict word of `v`: PASS, FAIL, XFAIL (does not hold, as expected), XPASS (holds,
/// unexpectedly) or NOT EVALUATED.
pub fn verdict_word(v: &Verdict) -> &'static str {
    if v.not_evaluated {
        return "NOT EVALUATED";
    }
    match (v.passed, v.claim.expected_failure && v.error.is_none()) {
        (true, false) => "PASS",
        (false, false) => "FAIL",
        (true, true) => "XFAIL",
        (false, true) => "XPASS",
    }
}

/// Renders verdicts as an aligned text table: the claim; the estimate (the mean over seeds of
/// the change, difference or slope the claim is about, or the exact value) with its 95%
/// confidence interval; the statistic the threshold is applied to, labelled when it is a
/// p-value or an interval bound rather than the estimate; the threshold; the cells used; the
/// verdict. Then one line per claim that failed, does not hold as expected, or was not
/// evaluated, saying why.
pub fn render_table(verdicts: &[Verdict]) -> String {
    let mut rows = vec![[
        "claim".to_string(),
        "estimate".to_string(),
        "95% CI".to_string(),
        "tested".to_string(),
        "threshold".to_string(),
        "cells".to_string(),
        "verdict".to_string(),
    ]];
    for v in verdicts {
        let tested = match (v.measured, tested_label(&v.claim.statistic)) {
            (None, _) => "n/a".to_string(),
            (Some(m), Some(label)) => format!("{} ({label})", number(m)),
            (Some(m), None) => number(m),
        };
        rows.push([
            if v.claim.baseline {
                format!("{} (committed baseline)", v.claim.name)
            } else {
                v.claim.name.clone()
            },
            v.estimate.map_or("n/a".into(), number),
            v.interval.map_or("-".into(), |(lo, hi)| {
                format!("[{}, {}]", number(lo), number(hi))
            }),
            tested,
            format!("{} {}", v.claim.op, number(v.claim.threshold)),
            v.cells.to_string(),
            verdict_word(v).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 12));
            out.push('\n');
        }
    }
    for v in verdicts {
        let measured = v.measured.map_or("n/a".into(), number);
        let xfail = v.claim.expected_failure && v.error.is_none();
        let line = match (v.passed, xfail) {
            _ if v.not_evaluated => format!(
                "NOT EVALUATED {}: {}",
                v.claim.name,
                v.error.clone().unwrap_or_default()
            ),
            (true, false) => continue,
            (false, false) => format!(
                "FAILED {}: {}",
                v.claim.name,
                v.error.clone().unwrap_or_else(|| format!(
                    "measured {measured} is not {} {} ({})",
                    v.claim.op, v.claim.threshold, v.claim.why
                ))
            ),
            (true, true) => format!(
                "DOES NOT HOLD (expected) {}: measured {measured} is not {} {} ({})",
                v.claim.name, v.claim.op, v.claim.threshold, v.claim.why
            ),
            (false, true) => format!(
                "FAILED {}: marked expected_failure, but measured {measured} is {} {}: the claim \
                 now holds; remove `expected_failure` and update its `why`",
                v.claim.name, v.claim.op, v.claim.threshold
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claim;

    fn verdict(statistic: &str, measured: Option<f64>, not_evaluated: bool) -> Verdict {
        Verdict {
            claim: Claim {
                name: "t.claim".into(),
                experiment: "t".into(),
                select: Default::default(),
                statistic: statistic.into(),
                op: "<".into(),
                threshold: 0.0,
                why: "because".into(),
                baseline: false,
                effect: 0.0,
                expected_failure: false,
                against: None,
            },
            measured,
            estimate: measured.map(|_| -0.1315),
            interval: measured.map(|_| (-0.215957, -0.047063)),
            cells: 3,
            passed: measured.is_some_and(|m| m < 0.0),
            error: (measured.is_none()).then(|| "results/t does not exist".into()),
            not_evaluated,
        }
    }

    #[test]
    fn the_estimate_column_holds_the_estimate_and_the_tested_bound_is_labelled() {
        let table = render_table(&[verdict("tiny_delta_pass1_ci_high", Some(-0.047063), false)]);
        let row = table.lines().nth(2).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[0], "t.claim");
        assert_eq!(cols[1], "-0.131500", "{table}");
        assert!(
            row.contains("[-0.215957, -0.047063]  -0.047063 (CI high)"),
            "{table}"
        );
        assert_eq!(cols.last(), Some(&"PASS"));
        assert!(table.starts_with("claim"), "{table}");
        assert!(table.lines().next().unwrap().contains("estimate"));
    }

    #[test]
    fn a_claim_not_evaluated_says_so_and_why() {
        let table = render_table(&[verdict("tiny_delta_pass1_p_below", None, true)]);
        assert!(table.contains("NOT EVALUATED"), "{table}");
        assert!(
            table.contains("NOT EVALUATED t.claim: results/t does not exist"),
            "{table}"
        );
        assert_eq!(tested_label("tiny_delta_pass1_p_below"), Some("p-value"));
        assert_eq!(
            tested_label("tiny_trend_pass1_slope_p_above"),
            Some("p-value")
        );
        assert_eq!(tested_label("tiny_delta_pass1_mean"), None);
    }
}
