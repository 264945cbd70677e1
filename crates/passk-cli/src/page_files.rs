//! The experiment files the report page shows (`figures/index.html`, see
//! [`passk_report::page`]): the `*.toml` files with an `[experiment]` table beside the claims
//! file, parsed here, each with its matrix cells' states under `results/`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use passk_report::page::{CellStatus, ExperimentFile};

use passk_schema::cell::{CompletionRecord, RECORD_FILE};

use crate::record::{state, CellState};

/// Every experiment file beside `claims` (sorted by path), with its cells' states in `results`.
pub fn beside(results: &Path, claims: &Path) -> Result<Vec<ExperimentFile>> {
    let dir = match claims.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let is_experiment = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("experiment"));
        if !is_experiment {
            continue;
        }
        let exp = crate::config::load_experiment(&file)?;
        let cells = exp
            .cells
            .iter()
            .map(|cell| {
                let status = match state(results, &exp.name, &cell.hash) {
                    CellState::Missing => CellStatus::Missing,
                    CellState::Corrupt(_) => CellStatus::Corrupt,
                    CellState::Complete => {
                        let dir = results.join(&exp.name).join(&cell.hash);
                        let code = std::fs::read(dir.join(RECORD_FILE))
                            .ok()
                            .and_then(|b| serde_json::from_slice::<CompletionRecord>(&b).ok())
                            .and_then(|r| r.code);
                        CellStatus::Done { code }
                    }
                };
                (cell.hash.clone(), status)
            })
            .collect();
        out.push(ExperimentFile {
            file: file.display().to_string(),
            name: exp.name,
            tier: exp.tier.as_str().to_string(),
            description: exp.description,
            cells,
        });
    }
    Ok(out)
}
