//! The on-disk schema of passk's results: every row and file a tier writes and the report
//! reads, their file names, the cell records, and the one atomic writer they all go through.
//!
//! A cell lives in `results/<experiment>/<hash>/`. Whatever its tier, it holds `cell.json`
//! ([`cell::CellRecord`]), its tier's result files (the modules below, one per kind of file)
//! and, written last, `complete.json` ([`cell::CompletionRecord`]). The types here are plain
//! serde structs: they compute nothing, so the writer (a tier) and the reader (the report) can
//! never disagree on a column.
//!
//! - [`cell`]: `cell.json`, `complete.json`;
//! - [`theory`]: the exact tier's `kscan.csv`, `prompts.csv`, `trajectory.csv`, `summary.json`;
//! - [`eval`]: held-out evaluations (`eval.csv`, `eval_format.csv`, `eval_prompts.csv`), shared by
//!   the tiny and LM tiers;
//! - [`train`]: per-step logs of SFT and RL (`train_log.csv`, `sft-<hash>.csv`);
//! - [`tiny`] and [`lm`]: each trained tier's `summary.json`;
//! - [`probe`]: the gradient probe's `probe/step-<NNNNN>/` files;
//! - [`files`]: atomic writes (temporary file, then rename) and reads of CSV and JSON.

pub mod cell;
pub mod eval;
pub mod files;
pub mod lm;
pub mod probe;
pub mod theory;
pub mod tiny;
pub mod train;

pub use files::{read_csv, read_json, write_atomic, write_csv_atomic, write_json_atomic};
