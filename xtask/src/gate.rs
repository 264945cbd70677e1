//! The CI gate's recomputation and its negative test (a deliberately broken objective). What
//! the gate recomputes, the warm starts it copies and finds trained, and the claims' verdicts
//! come from `passk gate --json`, `passk warm-cache --json` and `passk check --json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::passk::{self, Check, Gate};
use crate::project_root;
use crate::shards::run_sharded;

/// The objective the gate claims are about, and the broken one put in its place.
const GOOD: &str = "pkpo_loo_minus_one:k=8";
const BROKEN: &str = "sign_flipped:k=8";
/// The experiment of the gate matrix and its claims.
const GATE: &str = "gate";
/// The gate claim the broken objective must fail: pass@8 rises under pass@8 training.
const MUST_FAIL: &str = "gate.interference_pass8_raises_pass8";

/// Where the gate recomputes its experiments.
pub fn scratch_dir() -> PathBuf {
    project_root().join("target").join("passk-check")
}

/// Recomputes the gate experiments into a clean `scratch`, the tiny ones from the committed SFT
/// warm starts (`results/warm-starts/`), one single-threaded shard process per core.
pub fn recompute(sh: &Shell, passk: &Path, scratch: &Path) -> Result<()> {
    let start = Instant::now();
    let gate: Gate = passk::json(sh, passk, &["gate"], false)?;
    if scratch.exists() {
        // Cells are cached by config hash, not by code: start clean so the gate recomputes.
        std::fs::remove_dir_all(scratch)?;
    }
    // Hidden: the scratch folder is a results folder, and MANIFEST lists no hidden file (a
    // visible cache would be extra files that `passk run` refuses to approve).
    let cache = scratch.join(".cache");
    let copied = passk::warm_cache(sh, passk, &cache, true)?.copied;
    println!(
        "check: recomputing {} gate experiment(s) into {} ({copied} committed warm-start file(s) \
         copied to its cache)",
        gate.experiments.len(),
        scratch.display()
    );
    let (results, cache_arg) = (scratch.display().to_string(), cache.display().to_string());
    run_sharded(
        passk,
        &gate.experiments,
        // --strict: a committed warm start that fails its integrity check stops the gate.
        &[
            "--results",
            &results,
            "--cache",
            &cache_arg,
            "--quiet",
            "--strict",
        ],
    )
    .context("the gate's experiments did not run (messages above)")?;
    let trained = passk::warm_cache(sh, passk, &cache, false)?.not_committed;
    if !trained.is_empty() {
        bail!(
            "the gate trained warm start(s) {} that results/warm-starts/ lacks: the SFT settings \
             or code changed, so the committed warm starts are stale; refresh them as \
             experiments/gate.toml says",
            trained.join(", ")
        );
    }
    cmd!(sh, "{passk} manifest --results {scratch}")
        .quiet()
        .ignore_stdout()
        .run()?;
    println!(
        "check: gate experiments recomputed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The negative test of the gate: the gate matrix with pass@8 training replaced by
/// [`BROKEN`] (pass@8 weights negated), and the claims rewritten the same way, of which `passk
/// check --experiment gate` evaluates those on the gate cells. Succeeds only when that check
/// fails and [`MUST_FAIL`] fails on a measured value. The cells a previous `check` left in
/// `scratch` that the broken matrix shares (the pass@1 ones, same hash) are copied (`passk run
/// --reuse`), so only the broken cells run.
pub fn rejects_broken_objective(sh: &Shell, passk: &Path, scratch: &Path) -> Result<()> {
    let start = Instant::now();
    let root = project_root();
    let gate = std::fs::read_to_string(root.join("experiments/gate.toml"))?;
    let claims = std::fs::read_to_string(root.join("experiments/claims.toml"))?;
    if !gate.contains(GOOD) {
        bail!("experiments/gate.toml no longer trains {GOOD}; update xtask/src/gate.rs");
    }
    let dir = root.join("target").join("passk-check-broken");
    std::fs::create_dir_all(&dir)?;
    let gate_file = dir.join("gate.toml");
    let claims_file = dir.join("claims.toml");
    std::fs::write(&gate_file, gate.replace(GOOD, BROKEN))?;
    std::fs::write(&claims_file, claims.replace(GOOD, BROKEN))?;
    let cache = scratch.join(".cache");
    if !cache.is_dir() {
        passk::warm_cache(sh, passk, &cache, true)?;
    }
    let results = dir.join("results");
    if results.exists() {
        std::fs::remove_dir_all(&results)?;
    }
    println!(
        "check-broken: the gate matrix with {GOOD} replaced by the broken {BROKEN} (the cells \
         it shares with the check's run are copied)"
    );
    let (results_arg, cache) = (results.display().to_string(), cache.display().to_string());
    let reuse = scratch.display().to_string();
    run_sharded(
        passk,
        &[gate_file.display().to_string()],
        &[
            "--results",
            &results_arg,
            "--cache",
            &cache,
            "--reuse",
            &reuse,
            "--quiet",
        ],
    )?;
    let (claims_arg, results_arg) = (claims_file.display().to_string(), results_arg.as_str());
    let args = [
        "check",
        "--claims",
        &claims_arg,
        "--results",
        results_arg,
        "--strict",
        "--experiment",
        GATE,
    ];
    // The table, for the reader; then the same verdicts as JSON, for the decision.
    let table = cmd!(sh, "{passk} {args...}").ignore_status().run();
    table.context("cannot run passk check")?;
    let verdicts: Check = passk::json(sh, passk, &args, true)?;
    if !verdicts.claims.iter().any(|c| c.name == MUST_FAIL) {
        bail!(
            "experiments/claims.toml has no claim {MUST_FAIL} on experiment {GATE}; update \
             xtask/src/gate.rs"
        );
    }
    if verdicts.failed == 0 {
        bail!("the gate PASSED with the broken objective {BROKEN}: its claims cannot tell a broken objective from pass@8 training");
    }
    if !fails_with_a_measurement(&verdicts, MUST_FAIL) {
        bail!(
            "the gate failed with {BROKEN}, but {MUST_FAIL} did not fail on a measured value \
             (table and messages above): the negative test proves nothing"
        );
    }
    println!(
        "check-broken: the gate rejects {BROKEN} as it should ({MUST_FAIL} fails); {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Whether `passk check --json` has `claim` with the verdict FAIL and a finite estimate (not a
/// claim that could not be evaluated).
fn fails_with_a_measurement(check: &Check, claim: &str) -> bool {
    check
        .claims
        .iter()
        .any(|c| c.name == claim && c.verdict == "FAIL" && c.estimate.is_some_and(f64::is_finite))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passk::Verdict;

    #[test]
    fn only_a_measured_failure_counts() {
        let check = |name: &str, estimate: Option<f64>, verdict: &str| Check {
            claims: vec![Verdict {
                name: name.into(),
                verdict: verdict.into(),
                estimate,
            }],
            failed: 1,
        };
        assert!(fails_with_a_measurement(
            &check(MUST_FAIL, Some(0.731), "FAIL"),
            MUST_FAIL
        ));
        assert!(!fails_with_a_measurement(
            &check(MUST_FAIL, Some(0.731), "PASS"),
            MUST_FAIL
        ));
        assert!(!fails_with_a_measurement(
            &check(MUST_FAIL, None, "FAIL"),
            MUST_FAIL
        ));
        assert!(!fails_with_a_measurement(
            &check(MUST_FAIL, Some(f64::NAN), "FAIL"),
            MUST_FAIL
        ));
        assert!(!fails_with_a_measurement(
            &check("other", Some(0.5), "FAIL"),
            MUST_FAIL
        ));
    }

    #[test]
    fn the_check_json_is_read_into_its_struct() {
        let text = r#"{"claims": [{"name": "s.a", "experiment": "smoke", "verdict": "FAIL",
            "estimate": -0.5, "ci": [-0.75, -0.25], "passed": false},
            {"name": "s.b", "verdict": "NOT EVALUATED", "estimate": null}],
            "failed": 1, "not_evaluated": 1}"#;
        let check: Check = serde_json::from_str(text).unwrap();
        assert!(fails_with_a_measurement(&check, "s.a"));
        assert!(!fails_with_a_measurement(&check, "s.b"));
    }
}
