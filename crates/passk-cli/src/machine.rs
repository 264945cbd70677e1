//! The machine-readable outputs (`--json`) that `cargo xtask` reads instead of experiment TOML
//! or passk's tables: `experiments --json`, `check --json`, `gate --json`, `warm-cache --json`.
//! Each prints one JSON document on stdout; the field names are documented here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_report::claims::{verdict_word, Verdict};
use serde_json::{json, Map, Value};

use crate::config::{self, Experiment};

/// The experiment files in `dir`, sorted by path, each loaded and validated; TOML files without
/// an `[experiment]` table (the claims) are left out.
pub fn experiment_files(dir: &Path) -> Result<Vec<(PathBuf, Experiment)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let Ok(table) = text.parse::<toml::Table>() else {
            bail!("{}: malformed TOML", file.display());
        };
        if !table.contains_key("experiment") {
            continue; // claims and other non-experiment files
        }
        let exp = config::load_experiment(&file)?;
        out.push((file, exp));
    }
    Ok(out)
}

/// The environment variables an experiment's cells read when they run: every string in a
/// cell's configuration that is exactly `$NAME` (a model path the LM tier takes from the
/// environment, so the cell hash does not depend on a machine's path).
pub fn env_vars(exp: &Experiment) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                if let Some(var) = s.strip_prefix('$').filter(|var| {
                    !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) {
                    out.insert(var.to_string());
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for cell in &exp.cells {
        cell.config.values().for_each(|v| walk(v, &mut out));
    }
    out
}

/// The devices an experiment's cells ask for in their configuration (`device = "..."`, the LM
/// tier); empty when they name none (the device is then `passk run --device`'s).
pub fn devices(exp: &Experiment) -> BTreeSet<String> {
    exp.cells
        .iter()
        .filter_map(|c| c.config.get("device").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// `passk experiments DIR --json`: an array with one object per experiment file in `dir`:
/// `file` (the path, as `passk run` takes it), `name`, `tier`, `in_all` (whether `reproduce
/// all` runs it), `cells` (the matrix size), `env` (the environment variables its cells read,
/// see [`env_vars`]) and `devices` (see [`devices`]).
pub fn experiments_json(dir: &Path) -> Result<Value> {
    Ok(Value::Array(
        experiment_files(dir)?
            .iter()
            .map(|(file, exp)| {
                json!({
                    "file": file.display().to_string(),
                    "name": exp.name,
                    "tier": exp.tier.as_str(),
                    "in_all": exp.in_all,
                    "cells": exp.cells.len(),
                    "env": env_vars(exp),
                    "devices": devices(exp),
                })
            })
            .collect(),
    ))
}

/// `passk check --json`: `claims`, one object per claim in file order with `name`,
/// `experiment`, `statistic`, `op`, `threshold`, `baseline`, `expected_failure`, `verdict`
/// (PASS, FAIL, XFAIL, XPASS or NOT EVALUATED, as in the table), `passed` (whether the gate
/// accepts it), `not_evaluated`, `measured` (the tested statistic), `estimate`, `ci` (`[low,
/// high]`), `cells` and `error` (null when none; a number that is not finite is null too);
/// then the counts `failed` (as the exit status counts them) and `not_evaluated`.
pub fn verdicts_json(verdicts: &[Verdict], strict: bool) -> Value {
    let claims: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            let mut o = Map::new();
            o.insert("name".into(), json!(v.claim.name));
            o.insert("experiment".into(), json!(v.claim.experiment));
            o.insert("statistic".into(), json!(v.claim.statistic));
            o.insert("op".into(), json!(v.claim.op));
            o.insert("threshold".into(), json!(v.claim.threshold));
            o.insert("baseline".into(), json!(v.claim.baseline));
            o.insert("expected_failure".into(), json!(v.claim.expected_failure));
            o.insert("verdict".into(), json!(verdict_word(v)));
            o.insert("passed".into(), json!(v.passed));
            o.insert("not_evaluated".into(), json!(v.not_evaluated));
            o.insert("measured".into(), json!(v.measured));
            o.insert("estimate".into(), json!(v.estimate));
            o.insert("ci".into(), json!(v.interval.map(|(lo, hi)| [lo, hi])));
            o.insert("cells".into(), json!(v.cells));
            o.insert("error".into(), json!(v.error));
            Value::Object(o)
        })
        .collect();
    json!({
        "claims": claims,
        "failed": failed(verdicts, strict),
        "not_evaluated": verdicts.iter().filter(|v| v.not_evaluated).count(),
    })
}

/// The claims that fail `passk check` (with `strict`, a claim not evaluated fails too).
pub fn failed(verdicts: &[Verdict], strict: bool) -> usize {
    verdicts
        .iter()
        .filter(|v| !v.passed && (strict || !v.not_evaluated))
        .count()
}

/// `passk gate --json`: `experiments`, the experiment files the gate recomputes, as the
/// claims file lists them.
pub fn gate_json(experiments: &[String]) -> Value {
    json!({ "experiments": experiments })
}

/// `passk warm-cache --json`: `cache`, `committed` (the two folders), `copied` (committed
/// warm-start files copied into the cache by `--seed`) and `not_committed` (the warm starts in
/// the cache, file names, that the committed folder lacks: trained there, not copied).
pub fn warm_cache_json(
    cache: &Path,
    committed: &Path,
    copied: usize,
    not_committed: &[String],
) -> Value {
    json!({
        "cache": cache.display().to_string(),
        "committed": committed.display().to_string(),
        "copied": copied,
        "not_committed": not_committed,
    })
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
