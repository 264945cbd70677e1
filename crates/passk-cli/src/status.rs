//! `passk status`: each cell of the named experiments with whether it is done, and whether the
//! code that computed it is this build's (see [`crate::provenance`]).

use std::fmt::Write as _;
use std::path::Path;

use crate::config::{describe, Experiment};
use crate::provenance::{code_fingerprint, code_state, short, CodeState};
use crate::record::{state, CellState};
use crate::run::cell_dir;

/// The status of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Done, by this build's code.
    Complete,
    /// Done, by other code (its recorded fingerprint is not this build's).
    StaleCode,
    /// Done, recording no code fingerprint (made before fingerprints, or sealed).
    UnknownCode,
    /// Not run.
    Missing,
    /// In place but failing its completion check.
    Corrupt,
}

impl Status {
    /// The word `passk status` prints.
    pub fn word(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::StaleCode => "stale-code",
            Status::UnknownCode => "unknown-code",
            Status::Missing => "missing",
            Status::Corrupt => "corrupt",
        }
    }
}

/// The status of cell `hash` of `experiment` under `results`.
pub fn status(results: &Path, experiment: &str, hash: &str) -> Status {
    match state(results, experiment, hash) {
        CellState::Missing => Status::Missing,
        CellState::Corrupt(_) => Status::Corrupt,
        CellState::Complete => match code_state(&cell_dir(results, experiment, hash)) {
            CodeState::Same => Status::Complete,
            CodeState::Stale { .. } => Status::StaleCode,
            CodeState::Unknown => Status::UnknownCode,
        },
    }
}

/// The report of `passk status`: per experiment a line with its counts, then one line per
/// cell (hash, status, matrix coordinates); returns it and the number of stale-code cells.
pub fn render(experiments: &[Experiment], results: &Path) -> (String, usize) {
    let mut out = String::new();
    let mut stale = 0;
    for exp in experiments {
        let cells: Vec<(Status, &crate::config::Cell)> = exp
            .cells
            .iter()
            .map(|c| (status(results, &exp.name, &c.hash), c))
            .collect();
        let count = |s: Status| cells.iter().filter(|(x, _)| *x == s).count();
        stale += count(Status::StaleCode);
        let code = code_fingerprint(exp.tier.as_str()).map_or("none", short);
        let counts: Vec<String> = [
            Status::Complete,
            Status::StaleCode,
            Status::UnknownCode,
            Status::Missing,
            Status::Corrupt,
        ]
        .into_iter()
        .map(|s| format!("{} {}", count(s), s.word()))
        .collect();
        let _ = writeln!(
            out,
            "{} ({}, tier {}, this build's code {code}): {} cells: {}",
            exp.name,
            exp.path.display(),
            exp.tier,
            exp.cells.len(),
            counts.join(", ")
        );
        for (s, cell) in &cells {
            let _ = writeln!(
                out,
                "  {}  {:<12}  {}",
                cell.hash,
                s.word(),
                describe(&cell.coords)
            );
        }
    }
    if stale > 0 {
        let _ = writeln!(
            out,
            "status: {stale} cell(s) were computed by other code: `passk run --force \
             <experiment.toml>` reruns them"
        );
    }
    (out, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::run_experiment;
    use crate::tiers::RunContext;
    use crate::write::write_json;
    use passk_schema::cell::{CompletionRecord, RECORD_FILE};

    fn experiment() -> Experiment {
        let text = "[experiment]\nname = \"t\"\ntier = \"theory\"\n[matrix]\nk = [2, 4, 8]\n\
            separation = [0.5]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
            feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
            one_step_eta = 0.01\n";
        crate::config::parse_experiment(text, Path::new("t.toml")).unwrap()
    }

    /// Rewrites the code fingerprint of a cell's record (the record still verifies: `code`
    /// is not checked against the files).
    fn set_code(dir: &Path, code: Option<&str>) {
        let path = dir.join(RECORD_FILE);
        let mut record: CompletionRecord =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record.code = code.map(String::from);
        write_json(&path, &record).unwrap();
    }

    #[test]
    fn status_tells_complete_stale_unknown_and_missing_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path();
        let exp = experiment();
        let ctx = RunContext {
            quiet: true,
            ..Default::default()
        };
        let two = exp.only(&[exp.cells[0].hash.clone(), exp.cells[1].hash.clone()]);
        run_experiment(&two, results, &ctx).unwrap();
        let dir = |i: usize| cell_dir(results, "t", &exp.cells[i].hash);
        set_code(&dir(1), Some("00ff"));
        let words: Vec<Status> = exp
            .cells
            .iter()
            .map(|c| status(results, "t", &c.hash))
            .collect();
        assert_eq!(
            words,
            [Status::Complete, Status::StaleCode, Status::Missing]
        );
        set_code(&dir(0), None);
        assert_eq!(
            status(results, "t", &exp.cells[0].hash),
            Status::UnknownCode
        );
        let (text, stale) = render(std::slice::from_ref(&exp), results);
        assert_eq!(stale, 1);
        assert!(
            text.contains(
                "3 cells: 0 complete, 1 stale-code, 1 unknown-code, 1 missing, 0 corrupt"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("{}  stale-code", exp.cells[1].hash)),
            "{text}"
        );
        assert!(text.contains("--force"), "{text}");
    }
}
