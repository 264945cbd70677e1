//! `passk check`: evaluates the claims and prints their verdicts; a claim on an experiment
//! holding a cell whose completion record fails is withheld (NOT EVALUATED) and fails the check.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::CheckArgs;
use crate::machine;

pub fn cmd_check(args: &CheckArgs) -> Result<ExitCode> {
    let (claims_file, results) = (&args.claims.claims, &args.results.results);
    let text = std::fs::read_to_string(claims_file)
        .with_context(|| format!("cannot read {}", claims_file.display()))?;
    let mut claims = passk_report::claims::parse_claims(&text, claims_file)?.claim;
    if let Some(experiment) = &args.experiment {
        claims.retain(|c| &c.experiment == experiment);
        if claims.is_empty() {
            bail!(
                "{}: no claim reads experiment {experiment:?}",
                claims_file.display()
            );
        }
    }
    let mut verdicts = passk_report::claims::evaluate(&claims, results, &args.baseline);
    let unverified = withhold_unverified(&mut verdicts, results, &args.baseline)?;
    // A claim withheld because its cells fail their records fails the check even without
    // --strict: its data cannot be trusted, unlike an experiment that was simply not run.
    let failed = machine::failed(&verdicts, args.strict) + if args.strict { 0 } else { unverified };
    if args.json {
        println!("{:#}", machine::verdicts_json(&verdicts, args.strict));
        return Ok(if failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    print!("{}", passk_report::claims::render_table(&verdicts));
    let skipped = verdicts.iter().filter(|v| v.not_evaluated).count();
    let evaluated = verdicts.len() - skipped;
    if unverified > 0 {
        println!(
            "check: {unverified} claim(s) NOT EVALUATED because cells they read fail their \
             completion records (listed above; `passk verify` names them too): rerun them with \
             `passk run` (it moves them aside and recomputes them) or restore them"
        );
    }
    if failed > 0 {
        println!("check: {failed} of {} claims FAILED", verdicts.len());
        Ok(ExitCode::from(1))
    } else if skipped > 0 {
        println!(
            "check: all {evaluated} evaluated claims hold; {skipped} NOT EVALUATED (their \
             experiments are not under {}: the gate's fresh cells, see above). `cargo xtask \
             check` recomputes and requires them; --strict makes a claim not evaluated fail",
            results.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("check: all {} claims hold", verdicts.len());
        Ok(ExitCode::SUCCESS)
    }
}

/// Marks NOT EVALUATED every verdict whose experiment (under `results`, or `baseline` for a
/// baseline claim) holds a cell whose completion record fails: such a cell's numbers, and even
/// its coordinates (`cell.json`), are not to be trusted, so no verdict may rest on them.
/// Returns how many verdicts it withheld.
fn withhold_unverified(
    verdicts: &mut [passk_report::claims::Verdict],
    results: &std::path::Path,
    baseline: &std::path::Path,
) -> Result<usize> {
    let mut failing: std::collections::BTreeMap<PathBuf, Vec<String>> = Default::default();
    let mut withheld = 0;
    for v in verdicts.iter_mut() {
        let root = if v.claim.baseline { baseline } else { results };
        let dir = root.join(&v.claim.experiment);
        if !dir.is_dir() {
            continue;
        }
        if !failing.contains_key(&dir) {
            let (_, bad) = passk_report::record::cells_by_check(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            let names = bad
                .iter()
                .map(|(d, _)| passk_report::manifest::relative(root, d))
                .collect();
            failing.insert(dir.clone(), names);
        }
        let bad = &failing[&dir];
        if bad.is_empty() {
            continue;
        }
        v.not_evaluated = true;
        v.passed = false;
        v.measured = None;
        v.estimate = None;
        v.interval = None;
        v.error = Some(format!(
            "NOT EVALUATED: {} cell(s) of `{}` fail their completion record ({}{})",
            bad.len(),
            v.claim.experiment,
            bad.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            if bad.len() > 3 { ", ..." } else { "" }
        ));
        withheld += 1;
    }
    Ok(withheld)
}
