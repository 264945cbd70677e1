//! The inputs of the report page (`figures/index.html`, rendered by [`crate::html`]): each
//! experiment file's matrix with its cell counts, and the claims' verdicts on the results.
//!
//! The experiment files are the `*.toml` files with an `[experiment]` table beside the claims
//! file (`experiments/`); their caller (passk-cli, which parses them) passes each one's matrix
//! and cell states as [`ExperimentFile`]s. Everything shown is a function of those files and
//! `results/`, never of this build or the paths passed: a done cell counts as stale when its
//! recorded code fingerprint is not the one `results/ENVIRONMENT.json` records for its tier
//! (the code of the latest run), not this build's as in `passk status`, and the results
//! folder's path is written `results` in the claims' messages.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;

use crate::html::{Counts, Experiment, PageInput};

/// One experiment file beside the claims file, as its caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentFile {
    /// The file as the caller names it (`experiments/<name>.toml`).
    pub file: String,
    /// `[experiment] name`.
    pub name: String,
    /// `[experiment] tier`.
    pub tier: String,
    /// `[experiment] description` (empty when it has none).
    pub description: String,
    /// Each cell of its matrix: the cell's hash and its state under `results/<name>/`.
    pub cells: Vec<(String, CellStatus)>,
}

/// The state of a matrix cell under `results/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellStatus {
    /// No folder.
    Missing,
    /// In place but failing its completion check.
    Corrupt,
    /// Its completion record verifies; `code` is the code fingerprint it records, if any.
    Done {
        /// The recorded code fingerprint.
        code: Option<String>,
    },
}

/// Writes `figures/index.html` for the figures rendered into `figures` from `results`, with
/// the experiment files `files` beside the claims file `claims`.
pub fn write(
    results: &Path,
    figures: &Path,
    claims: &Path,
    files: &[ExperimentFile],
) -> Result<()> {
    let input = PageInput {
        experiments: experiments(results, files)?,
        claims_file: claims.display().to_string(),
        verdicts: verdicts(results, claims),
        claims_sha256: std::fs::read(claims)
            .ok()
            .map(|b| crate::manifest::sha256_hex(&b)),
    };
    crate::html::write_index(figures, results, &input)?;
    Ok(())
}

/// The claims' verdicts on `results` alone (claims marked `baseline` read it too).
fn verdicts(results: &Path, claims: &Path) -> Result<Vec<crate::claims::Verdict>, String> {
    let text = std::fs::read_to_string(claims)
        .map_err(|e| format!("cannot read {}: {e}", claims.display()))?;
    let file = crate::claims::parse_claims(&text, claims).map_err(|e| e.to_string())?;
    let shown = results.display().to_string();
    let mut verdicts = crate::claims::evaluate(&file.claim, results, results);
    for v in &mut verdicts {
        if let Some(error) = &mut v.error {
            *error = error.replace(&shown, "results");
        }
    }
    Ok(verdicts)
}

/// Every experiment file of `files` and every experiment folder under `results`, sorted by
/// name (then file).
fn experiments(results: &Path, files: &[ExperimentFile]) -> Result<Vec<Experiment>> {
    let fingerprints = recorded_fingerprints(results);
    let mut out = Vec::new();
    for exp in files {
        let present = cell_folders(&results.join(&exp.name));
        let hashes: BTreeSet<&str> = exp.cells.iter().map(|(h, _)| h.as_str()).collect();
        let mut counts = Counts {
            matrix: exp.cells.len(),
            outside: present
                .iter()
                .filter(|h| !hashes.contains(h.as_str()))
                .count(),
            ..Counts::default()
        };
        for (_, status) in &exp.cells {
            match status {
                CellStatus::Missing => counts.missing += 1,
                CellStatus::Corrupt => counts.corrupt += 1,
                CellStatus::Done { code } => {
                    counts.done += 1;
                    let latest = fingerprints.get(&exp.tier).and_then(|v| v.as_str());
                    match (code.as_deref(), latest) {
                        (Some(r), Some(l)) if r != l => counts.stale += 1,
                        (Some(_), Some(_)) => {}
                        _ => counts.unknown_code += 1,
                    }
                }
            }
        }
        out.push(Experiment {
            file: Some(exp.file.clone()),
            tier: Some(exp.tier.clone()),
            description: Some(exp.description.clone()).filter(|d| !d.is_empty()),
            counts: Some(counts),
            cells_in_results: present.len(),
            name: exp.name.clone(),
        });
    }
    // Result folders no experiment file names (their tier from their first cell).
    let named: BTreeSet<String> = out.iter().map(|e| e.name.clone()).collect();
    for (name, tier) in crate::figures::experiments(results)? {
        if !named.contains(&name) {
            out.push(Experiment {
                cells_in_results: cell_folders(&results.join(&name)).len(),
                name,
                tier: Some(tier.as_str().to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use passk_schema::cell::{CellRecord, SCHEMA_VERSION};

    fn cell(results: &Path, experiment: &str, hash: &str) {
        let dir = results.join(experiment).join(hash);
        std::fs::create_dir_all(&dir).unwrap();
        let record = CellRecord {
            schema: SCHEMA_VERSION,
            experiment: experiment.into(),
            tier: "theory".into(),
            hash: hash.into(),
            config: serde_json::json!({}),
        };
        std::fs::write(dir.join("cell.json"), serde_json::to_vec(&record).unwrap()).unwrap();
    }

    #[test]
    fn counts_come_from_the_files_passed_and_the_recorded_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path();
        for hash in ["a", "b", "d", "e", "x"] {
            cell(results, "alpha", hash);
        }
        cell(results, "beta", "y");
        std::fs::write(
            results.join("ENVIRONMENT.json"),
            r#"{"code_fingerprints": {"theory": "latest"}}"#,
        )
        .unwrap();
        let done = |code: Option<&str>| CellStatus::Done {
            code: code.map(str::to_string),
        };
        let file = ExperimentFile {
            file: "experiments/alpha.toml".into(),
            name: "alpha".into(),
            tier: "theory".into(),
            description: String::new(),
            cells: vec![
                ("a".into(), done(Some("latest"))),
                ("b".into(), done(Some("older"))),
                ("c".into(), CellStatus::Missing),
                ("d".into(), CellStatus::Corrupt),
                ("e".into(), done(None)),
            ],
        };
        let shown = experiments(results, &[file]).unwrap();
        assert_eq!(shown.len(), 2);
        let alpha = &shown[0];
        assert_eq!(alpha.file.as_deref(), Some("experiments/alpha.toml"));
        assert_eq!(alpha.description, None);
        assert_eq!(alpha.cells_in_results, 5);
        let counts = alpha.counts.clone().unwrap();
        assert_eq!(
            (counts.matrix, counts.done, counts.missing, counts.corrupt),
            (5, 3, 1, 1)
        );
        assert_eq!(
            (counts.stale, counts.unknown_code, counts.outside),
            (1, 1, 1)
        );
        // A results folder no file names is shown with its tier and cell count only.
        let beta = &shown[1];
        assert_eq!(
            (beta.name.as_str(), beta.tier.as_deref()),
            ("beta", Some("theory"))
        );
        assert_eq!((beta.file.clone(), beta.counts.clone()), (None, None));
        assert_eq!(beta.cells_in_results, 1);
    }
}
