//! The inputs of the report page (`figures/index.html`, rendered by [`passk_report::html`])
//! that need this crate: each experiment file's matrix with its cell counts, and the claims'
//! verdicts on the results.
//!
//! The experiment files are the `*.toml` files with an `[experiment]` table beside the claims
//! file (`experiments/`). Everything shown is a function of those files and `results/`, never
//! of this build or the paths passed: a done cell counts as stale when its recorded code
//! fingerprint is not the one `results/ENVIRONMENT.json` records for its tier (the code of the
//! latest run), not this build's as in `passk status`, and the results folder's path is written
//! `results` in the claims' messages.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use passk_report::html::{Counts, Experiment, PageInput};

use crate::record::{state, CellState, CompletionRecord, RECORD_FILE};

/// Writes `figures/index.html` for the figures rendered into `figures` from `results`.
pub fn write(results: &Path, figures: &Path, claims: &Path) -> Result<()> {
    let input = PageInput {
        experiments: experiments(results, claims)?,
        claims_file: claims.display().to_string(),
        verdicts: verdicts(results, claims),
        claims_sha256: std::fs::read(claims)
            .ok()
            .map(|b| passk_report::manifest::sha256_hex(&b)),
    };
    passk_report::html::write_index(figures, results, &input)?;
    Ok(())
}

/// The claims' verdicts on `results` alone (claims marked `baseline` read it too).
fn verdicts(results: &Path, claims: &Path) -> Result<Vec<passk_report::claims::Verdict>, String> {
    let text = std::fs::read_to_string(claims)
        .map_err(|e| format!("cannot read {}: {e}", claims.display()))?;
    let file = passk_report::claims::parse_claims(&text, claims).map_err(|e| e.to_string())?;
    let shown = results.display().to_string();
    let mut verdicts = passk_report::claims::evaluate(&file.claim, results, results);
    for v in &mut verdicts {
        if let Some(error) = &mut v.error {
            *error = error.replace(&shown, "results");
        }
    }
    Ok(verdicts)
}

/// Every experiment file beside `claims` and every experiment folder under `results`, sorted
/// by name (then file).
fn experiments(results: &Path, claims: &Path) -> Result<Vec<Experiment>> {
    let dir = match claims.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fingerprints = recorded_fingerprints(results);
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "toml"));
    files.sort();
    for file in files {
        let is_experiment = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("experiment"));
        if !is_experiment {
            continue;
        }
        let exp = crate::config::load_experiment(&file)?;
        let present = cell_folders(&results.join(&exp.name));
        let hashes: BTreeSet<&str> = exp.cells.iter().map(|c| c.hash.as_str()).collect();
        let mut counts = Counts {
            matrix: exp.cells.len(),
            outside: present
                .iter()
                .filter(|h| !hashes.contains(h.as_str()))
                .count(),
            ..Counts::default()
        };
        for cell in &exp.cells {
            match state(results, &exp.name, &cell.hash) {
                CellState::Missing => counts.missing += 1,
                CellState::Corrupt(_) => counts.corrupt += 1,
                CellState::Complete => {
                    counts.done += 1;
                    let dir = results.join(&exp.name).join(&cell.hash);
                    let recorded = std::fs::read(dir.join(RECORD_FILE))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<CompletionRecord>(&b).ok())
                        .and_then(|r| r.code);
                    let latest = fingerprints.get(&exp.tier).and_then(|v| v.as_str());
                    match (recorded, latest) {
                        (Some(r), Some(l)) if r != l => counts.stale += 1,
                        (Some(_), Some(_)) => {}
                        _ => counts.unknown_code += 1,
                    }
                }
            }
        }
        out.push(Experiment {
            file: Some(file.display().to_string()),
            tier: Some(exp.tier.clone()),
            description: Some(exp.description.clone()).filter(|d| !d.is_empty()),
            counts: Some(counts),
            cells_in_results: present.len(),
            name: exp.name,
        });
    }
    // Result folders no experiment file names (their tier from their first cell).
    let named: BTreeSet<String> = out.iter().map(|e| e.name.clone()).collect();
    for (name, tier) in crate::figures::experiments(results)? {
        if !named.contains(&name) {
            out.push(Experiment {
                cells_in_results: cell_folders(&results.join(&name)).len(),
                name,
                tier: Some(tier),
                ..Experiment::default()
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.file).cmp(&(&b.name, &b.file)));
    Ok(out)
}

/// `code_fingerprints` of `results/ENVIRONMENT.json` (empty when it records none).
fn recorded_fingerprints(results: &Path) -> serde_json::Map<String, serde_json::Value> {
    std::fs::read(results.join("ENVIRONMENT.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("code_fingerprints")?.as_object().cloned())
        .unwrap_or_default()
}

/// The names of the cell folders (non-hidden, holding `cell.json`) in `dir`.
fn cell_folders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("cell.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out
}
