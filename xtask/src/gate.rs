//! The CI gate's recomputation and its negative test (a deliberately broken objective).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{project_root, run_sharded};

/// The objective the smoke claims are about, and the broken one put in its place.
const GOOD: &str = "pkpo_loo_minus_one:k=8";
const BROKEN: &str = "sign_flipped:k=8";
/// The smoke claim the broken objective must fail: pass@8 rises under pass@8 training.
const MUST_FAIL: &str = "smoke.interference_pass8_raises_pass8";

/// Where the gate recomputes its experiments.
pub fn scratch_dir() -> PathBuf {
    project_root().join("target").join("passk-check")
}

/// Recomputes the gate experiments into a clean `scratch`, the tiny ones from the committed SFT
/// warm starts (`results/warm-starts/`), one single-threaded shard process per core.
pub fn recompute(sh: &Shell, passk: &Path, scratch: &Path) -> Result<()> {
    let start = Instant::now();
    let gate: Vec<String> = cmd!(sh, "{passk} gate")
        .read()?
        .lines()
        .map(str::to_string)
        .collect();
    if scratch.exists() {
        // Cells are cached by config hash, not by code: start clean so the gate recomputes.
        std::fs::remove_dir_all(scratch)?;
    }
    let cache = scratch.join("cache");
    let copied = seed_warm_starts(&project_root().join("results/warm-starts"), &cache)?;
    println!(
        "check: recomputing {} gate experiment(s) into {} ({copied} committed warm-start file(s) \
         copied to its cache)",
        gate.len(),
        scratch.display()
    );
    let (results, cache) = (scratch.display().to_string(), cache.display().to_string());
    run_sharded(
        passk,
        &gate,
        // --strict: a committed warm start that fails its integrity check stops the gate.
        &[
            "--results",
            &results,
            "--cache",
            &cache,
            "--quiet",
            "--strict",
        ],
    )
    .context("the gate's experiments did not run (messages above)")?;
    let trained = trained_warm_starts(&scratch.join("cache"))?;
    if !trained.is_empty() {
        bail!(
            "the gate trained warm start(s) {} that results/warm-starts/ lacks: the SFT settings \
             or code changed, so the committed warm starts are stale; refresh them as \
             experiments/smoke.toml says",
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

/// Copies the committed warm starts (`sft-<hash>.{safetensors,csv}`) into `cache`.
fn seed_warm_starts(committed: &Path, cache: &Path) -> Result<usize> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    if !committed.is_dir() {
        return Ok(0);
    }
    let mut copied = 0;
    for entry in std::fs::read_dir(committed)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("sft-") {
            std::fs::copy(&path, cache.join(&*name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Warm starts in the gate's `cache` that were trained there (not copied): every copied file
/// has its `.csv` twin committed, so a trained one is a `sft-*.safetensors` not in
/// `results/warm-starts/`.
fn trained_warm_starts(cache: &Path) -> Result<Vec<String>> {
    let committed = project_root().join("results/warm-starts");
    let mut trained = Vec::new();
    for entry in std::fs::read_dir(cache)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("sft-")
            && name.ends_with(".safetensors")
            && !committed.join(&name).is_file()
        {
            trained.push(name);
        }
    }
    trained.sort();
    Ok(trained)
}

/// The negative test of the gate: the smoke matrix with pass@8 training replaced by
/// [`BROKEN`] (pass@8 weights negated), and the smoke claims rewritten to read those cells.
/// Succeeds only when `passk check` fails and [`MUST_FAIL`] fails on a measured value. The
/// cells a previous `check` left in `scratch` that the broken matrix shares (the pass@1 ones,
/// same hash) are copied (`passk run --reuse`), so only the broken cells run.
pub fn rejects_broken_objective(sh: &Shell, passk: &Path, scratch: &Path) -> Result<()> {
    let start = Instant::now();
    let root = project_root();
    let smoke = std::fs::read_to_string(root.join("experiments/smoke.toml"))?;
    let claims = std::fs::read_to_string(root.join("experiments/claims.toml"))?;
    if !smoke.contains(GOOD) {
        bail!("experiments/smoke.toml no longer trains {GOOD}; update xtask/src/gate.rs");
    }
    let dir = root.join("target").join("passk-check-broken");
    std::fs::create_dir_all(&dir)?;
    let smoke_file = dir.join("smoke.toml");
    let claims_file = dir.join("claims.toml");
    std::fs::write(&smoke_file, smoke.replace(GOOD, BROKEN))?;
    std::fs::write(&claims_file, smoke_claims(&claims).replace(GOOD, BROKEN))?;
    let cache = scratch.join("cache");
    if !cache.is_dir() {
        seed_warm_starts(&root.join("results/warm-starts"), &cache)?;
    }
    let results = dir.join("results");
    if results.exists() {
        std::fs::remove_dir_all(&results)?;
    }
    println!(
        "check-broken: the smoke matrix with {GOOD} replaced by the broken {BROKEN} (the cells \
         it shares with the check's run are copied)"
    );
    let (results_arg, cache) = (results.display().to_string(), cache.display().to_string());
    let reuse = scratch.display().to_string();
    run_sharded(
        passk,
        &[smoke_file.display().to_string()],
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
    let out = cmd!(
        sh,
        "{passk} check --claims {claims_file} --results {results} --strict"
    )
    .ignore_status()
    .output()?;
    let table = String::from_utf8_lossy(&out.stdout);
    print!("{table}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        bail!("the gate PASSED with the broken objective {BROKEN}: its claims cannot tell a broken objective from pass@8 training");
    }
    if !fails_with_a_measurement(&table, MUST_FAIL) {
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

/// A claims file with the `[[claim]]` blocks of `text` that read the `smoke` experiment and an
/// empty gate list.
fn smoke_claims(text: &str) -> String {
    let blocks: String = text
        .split("[[claim]]")
        .skip(1)
        .filter(|block| block.contains("experiment = \"smoke\""))
        .map(|block| format!("[[claim]]{block}"))
        .collect();
    format!("gate = []\n\n{blocks}")
}

/// Whether `passk check`'s table has a row for `claim` whose verdict is FAIL and whose
/// estimate (the column after the name) is a number (not a claim that could not be
/// evaluated).
fn fails_with_a_measurement(table: &str, claim: &str) -> bool {
    table.lines().any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.first() == Some(&claim)
            && cols.last() == Some(&"FAIL")
            && cols
                .get(1)
                .is_some_and(|m| m.parse::<f64>().is_ok_and(f64::is_finite))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_claims_keeps_only_the_smoke_blocks() {
        let text = "gate = [\"a\"]\n# x\n[[claim]]\nname = \"t.a\"\nexperiment = \"theory\"\n\n[[claim]]\nname = \"s.b\"\nexperiment = \"smoke\"\n";
        let kept = smoke_claims(text);
        assert_eq!(
            kept,
            "gate = []\n\n[[claim]]\nname = \"s.b\"\nexperiment = \"smoke\"\n"
        );
    }

    #[test]
    fn only_a_measured_failure_counts() {
        let row = |m: &str, v: &str| format!("{MUST_FAIL}   {m}   [0.1, 0.2]   < 0.05   3   {v}\n");
        assert!(fails_with_a_measurement(&row("0.731", "FAIL"), MUST_FAIL));
        assert!(!fails_with_a_measurement(&row("0.731", "PASS"), MUST_FAIL));
        assert!(!fails_with_a_measurement(&row("n/a", "FAIL"), MUST_FAIL));
        assert!(!fails_with_a_measurement(&row("NaN", "FAIL"), MUST_FAIL));
        assert!(!fails_with_a_measurement(
            "other.claim 0.5 - < 1 3 FAIL",
            MUST_FAIL
        ));
    }

    #[test]
    fn the_committed_smoke_claims_name_the_claim_that_must_fail() {
        let claims = std::fs::read_to_string(project_root().join("experiments/claims.toml"))
            .expect("experiments/claims.toml");
        let kept = smoke_claims(&claims);
        assert!(kept.contains(&format!("name = \"{MUST_FAIL}\"")), "{kept}");
        assert!(kept.contains(GOOD));
    }
}
