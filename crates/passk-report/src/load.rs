//! Reading result cells from disk, and writing output files atomically.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use crate::error::ReportError;
use passk_schema::cell::{CellRecord, CELL_FILE};
use passk_schema::theory::{
    KScanRow, PromptRow, TheorySummary, TrajectoryRow, KSCAN_FILE, PROMPTS_FILE, SUMMARY_FILE,
    TRAJECTORY_FILE,
};

/// One theory-tier cell as read from `results/<experiment>/<hash>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct TheoryCell {
    /// `cell.json`.
    pub record: CellRecord,
    /// `kscan.csv`.
    pub kscan: Vec<KScanRow>,
    /// `prompts.csv`.
    pub prompts: Vec<PromptRow>,
    /// `trajectory.csv`.
    pub trajectory: Vec<TrajectoryRow>,
    /// `summary.json`.
    pub summary: TheorySummary,
}

/// The matrix coordinates of a theory cell, read from its `config`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TheoryKey {
    /// Separation of the easy and hard feature distributions.
    pub separation: f64,
    /// Probability that a prompt is hard.
    pub p_hard: f64,
    /// The cell's k.
    pub k: u32,
    /// The cell's seed.
    pub seed: u64,
}

impl TheoryCell {
    /// The cell's hash (its directory name).
    pub fn hash(&self) -> &str {
        &self.record.hash
    }

    /// The number at `config[key]`, or an error naming the cell and key.
    pub fn config_f64(&self, key: &str) -> Result<f64, ReportError> {
        self.record
            .config
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| self.missing(key, "a number"))
    }

    /// The non-negative integer at `config[key]`, or an error naming the cell and key.
    pub fn config_u64(&self, key: &str) -> Result<u64, ReportError> {
        self.record
            .config
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| self.missing(key, "a non-negative integer"))
    }

    /// The cell's matrix coordinates (`separation`, `p_hard`, `k`, `seed` from `config`).
    pub fn key(&self) -> Result<TheoryKey, ReportError> {
        let k = self.config_u64("k")?;
        let k = u32::try_from(k).map_err(|_| self.missing("k", "an integer below 2^32"))?;
        Ok(TheoryKey {
            separation: self.config_f64("separation")?,
            p_hard: self.config_f64("p_hard")?,
            k,
            seed: self.config_u64("seed")?,
        })
    }

    fn missing(&self, key: &str, what: &str) -> ReportError {
        ReportError::invalid(
            PathBuf::from(&self.record.hash).join(CELL_FILE),
            format!(
                "config key `{key}` is missing or not {what}; the theory report needs it (rerun the cell with a current build)"
            ),
        )
    }
}

/// Reads every row of the CSV file at `path` (with a header row) as `T`.
///
/// Empty fields deserialise as `None` for `Option` fields.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReportError> {
    let mut reader = csv::Reader::from_path(path).map_err(|source| ReportError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    reader
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|source| ReportError::Csv {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads the JSON file at `path` as `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads one theory cell from its directory, checking that it is a theory cell whose
/// recorded hash matches the directory name.
pub fn load_theory_cell(dir: &Path) -> Result<TheoryCell, ReportError> {
    let record: CellRecord = read_json(&dir.join(CELL_FILE))?;
    if record.tier != "theory" {
        return Err(ReportError::invalid(
            dir.join(CELL_FILE),
            format!(
                "tier is `{}`, expected `theory`; do not mix tiers in one experiment directory",
                record.tier
            ),
        ));
    }
    let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if record.hash != dir_name {
        return Err(ReportError::invalid(
            dir.join(CELL_FILE),
            format!(
                "recorded hash `{}` differs from the directory name `{dir_name}`; the directory was renamed or the file copied from another cell",
                record.hash
            ),
        ));
    }
    Ok(TheoryCell {
        kscan: read_csv(&dir.join(KSCAN_FILE))?,
        prompts: read_csv(&dir.join(PROMPTS_FILE))?,
        trajectory: read_csv(&dir.join(TRAJECTORY_FILE))?,
        summary: read_json(&dir.join(SUMMARY_FILE))?,
        record,
    })
}

/// Reads every theory cell under `experiment_dir` (one sub-directory per cell), sorted by hash.
///
/// Sub-directories whose names start with `.` and plain files are skipped.
pub fn load_theory_cells(experiment_dir: &Path) -> Result<Vec<TheoryCell>, ReportError> {
    let entries = fs::read_dir(experiment_dir).map_err(|e| ReportError::io(experiment_dir, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReportError::io(experiment_dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    let mut cells = dirs
        .iter()
        .map(|d| load_theory_cell(d))
        .collect::<Result<Vec<_>, _>>()?;
    cells.sort_by(|a, b| a.record.hash.cmp(&b.record.hash));
    Ok(cells)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh hidden temporary path beside `path` that keeps its extension
/// (`dir/.name.tmp-<pid>-<n>.ext`), for writing then renaming into place.
pub fn temp_path_for(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name = format!(".{stem}.tmp-{}-{n}", std::process::id());
    if let Some(ext) = path.extension() {
        name.push('.');
        name.push_str(&ext.to_string_lossy());
    }
    path.with_file_name(name)
}

/// Moves the finished temporary file `tmp` onto `path`, removing `tmp` if that fails.
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<(), ReportError> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        ReportError::io(path, e)
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory renamed into place
/// (see [`passk_schema::write_atomic`]), creating the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    passk_schema::write_atomic(path, bytes).map_err(|e| ReportError::io(path, e))
}

/// Writes `value` as pretty JSON with a trailing newline, atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ReportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Fake theory cells for tests of this crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use passk_schema::cell::SCHEMA_VERSION;
    use sha2::{Digest, Sha256};

    /// A deterministic fake theory cell whose numbers depend on its coordinates.
    pub(crate) fn fake_cell(separation: f64, p_hard: f64, k: u32, seed: u64) -> TheoryCell {
        let config = serde_json::json!({
            "k": k, "lr": 0.5, "n_prompts": 6, "p_hard": p_hard,
            "separation": separation, "seed": seed, "steps": 10,
        });
        let digest = Sha256::digest(config.to_string().as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let jitter = seed as f64 * 0.01;
        let kscan = (1..=8u32)
            .map(|kk| {
                let inner = (1.0 - kk as f64 / (1.0 + separation)) * 0.01 + jitter * 0.001;
                KScanRow {
                    k: kk,
                    inner,
                    cosine: if kk == 8 && seed == 1 {
                        None
                    } else {
                        Some((inner * 20.0).clamp(-1.0, 1.0))
                    },
                    norm_k: 1.0,
                    norm_1: 0.5,
                    identity_gap: 1e-17,
                }
            })
            .collect();
        let prompts = (0..6usize)
            .map(|i| {
                let hard = i % 3 == 0;
                let p = if hard {
                    0.1 + 0.02 * i as f64
                } else {
                    0.8 + 0.02 * i as f64
                };
                PromptRow {
                    prompt: i,
                    group: if hard { "hard" } else { "easy" }.to_string(),
                    mass: 1.0 / 6.0,
                    feature: if hard {
                        -separation / 2.0
                    } else {
                        separation / 2.0
                    },
                    p,
                    agreement: if hard { -0.002 } else { 0.003 } * (1.0 + jitter),
                    w_k: k as f64 * (1.0 - p).powi(k as i32 - 1),
                }
            })
            .collect();
        let mut trajectory = Vec::new();
        for objective in ["pass@1", "pass@k"] {
            for step in 0..=10usize {
                let t = step as f64 / 10.0;
                let (j1, jk) = if objective == "pass@1" {
                    (0.6 + 0.1 * t, 0.8 + 0.02 * t)
                } else if separation < 1.0 {
                    (0.6 - 0.05 * t, 0.8 + 0.1 * t)
                } else {
                    (0.6 + 0.05 * t, 0.8 + 0.1 * t)
                };
                trajectory.push(TrajectoryRow {
                    objective: objective.to_string(),
                    step,
                    j1: j1 + jitter,
                    jk,
                    cosine: Some(0.1),
                });
            }
        }
        let summary = TheorySummary {
            k,
            k_star: if separation < 1.0 && seed != 2 {
                Some(3 + seed as u32)
            } else {
                None
            },
            j1_start: 0.6 + jitter,
            jk_start: 0.8,
            pass1_final_j1: 0.7 + jitter,
            pass1_final_jk: 0.82,
            passk_final_j1: if separation < 1.0 { 0.55 } else { 0.65 } + jitter,
            passk_final_jk: 0.9,
            max_identity_gap: 1e-17,
            one_step_eta: 1e-3,
            one_step_delta_j1: -1e-6,
            one_step_first_order: -1e-6,
        };
        TheoryCell {
            record: CellRecord {
                schema: SCHEMA_VERSION,
                experiment: "theory_test".to_string(),
                tier: "theory".to_string(),
                hash,
                config,
            },
            kscan,
            prompts,
            trajectory,
            summary,
        }
    }

    /// Writes `rows` as CSV with a header (None as an empty field).
    pub(crate) fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) {
        let mut w = csv::Writer::from_path(path).unwrap();
        for r in rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
    }

    /// Writes `cell` as `experiment_dir/<hash>/...` in the results layout.
    pub(crate) fn write_cell(experiment_dir: &Path, cell: &TheoryCell) -> PathBuf {
        let dir = experiment_dir.join(&cell.record.hash);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(CELL_FILE),
            serde_json::to_string_pretty(&cell.record).unwrap(),
        )
        .unwrap();
        write_csv(&dir.join(KSCAN_FILE), &cell.kscan);
        write_csv(&dir.join(PROMPTS_FILE), &cell.prompts);
        write_csv(&dir.join(TRAJECTORY_FILE), &cell.trajectory);
        fs::write(
            dir.join(SUMMARY_FILE),
            serde_json::to_string(&cell.summary).unwrap(),
        )
        .unwrap();
        dir
    }

    /// A small matrix: separations {0.5, 6} x p_hard 0.5 x k {4} x seeds {0, 1, 2}, plus one
    /// cell at another p_hard.
    pub(crate) fn fake_matrix() -> Vec<TheoryCell> {
        let mut cells = Vec::new();
        for sep in [0.5, 6.0] {
            for seed in 0..3 {
                cells.push(fake_cell(sep, 0.5, 4, seed));
            }
        }
        cells.push(fake_cell(0.5, 0.25, 8, 0));
        cells.sort_by(|a, b| a.record.hash.cmp(&b.record.hash));
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn round_trips_cells_sorted_by_hash_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let cells = fake_matrix();
        for c in cells.iter().rev() {
            write_cell(dir.path(), c);
        }
        fs::create_dir_all(dir.path().join(".staging")).unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let loaded = load_theory_cells(dir.path()).unwrap();
        assert_eq!(loaded, cells);
        // The cell with seed 1 has an empty cosine field for k = 8.
        let c = loaded.iter().find(|c| c.key().unwrap().seed == 1).unwrap();
        assert_eq!(c.kscan[7].cosine, None);
        assert_eq!(c.key().unwrap().k, 4);
    }

    #[test]
    fn parse_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cell = fake_cell(0.5, 0.5, 4, 0);
        let cdir = write_cell(dir.path(), &cell);
        fs::write(cdir.join("kscan.csv"), "k,inner\nnot-a-number,1\n").unwrap();
        let err = load_theory_cells(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ReportError::Csv { .. }), "{msg}");
        assert!(msg.contains("kscan.csv"), "{msg}");

        write_csv(&cdir.join("kscan.csv"), &cell.kscan);
        fs::write(cdir.join("summary.json"), "{").unwrap();
        let err = load_theory_cell(&cdir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ReportError::Json { .. }), "{msg}");
        assert!(msg.contains("summary.json"), "{msg}");
    }

    #[test]
    fn rejects_wrong_tier_and_renamed_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = fake_cell(0.5, 0.5, 4, 0);
        cell.record.tier = "tiny".into();
        let cdir = write_cell(dir.path(), &cell);
        let err = load_theory_cell(&cdir).unwrap_err().to_string();
        assert!(err.contains("tier is `tiny`"), "{err}");

        let cell = fake_cell(0.5, 0.5, 4, 1);
        let cdir = write_cell(dir.path(), &cell);
        let moved = dir.path().join("0000000000000000");
        fs::rename(&cdir, &moved).unwrap();
        let err = load_theory_cell(&moved).unwrap_err().to_string();
        assert!(err.contains("differs from the directory name"), "{err}");
    }

    #[test]
    fn missing_config_key_is_reported() {
        let mut cell = fake_cell(0.5, 0.5, 4, 0);
        cell.record.config.as_object_mut().unwrap().remove("p_hard");
        let err = cell.key().unwrap_err().to_string();
        assert!(err.contains("`p_hard`"), "{err}");
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
        let tmp = temp_path_for(&path);
        assert_eq!(tmp.extension().unwrap(), "txt");
        assert!(tmp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".a.tmp-"));
    }
}
