//! The two files every cell directory has whatever its tier: `cell.json`, written first, and
//! `complete.json`, written last.

use serde::{Deserialize, Serialize};

/// Version of the result schema, written into every `cell.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The cell's configuration file ([`CellRecord`]).
pub const CELL_FILE: &str = "cell.json";

/// The completion record's file name ([`CompletionRecord`]).
pub const RECORD_FILE: &str = "complete.json";

/// The version of the completion record's format.
pub const RECORD_SCHEMA: u32 = 1;

/// `cell.json`: the canonical configuration of one cell and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Experiment name (the TOML file's `[experiment] name`).
    pub experiment: String,
    /// Tier that ran the cell (`theory`, `tiny`, `lm`).
    pub tier: String,
    /// First 16 hex digits of the sha256 of the canonical config JSON; the directory name.
    pub hash: String,
    /// The canonical configuration: matrix coordinates and parameters, keys sorted.
    pub config: serde_json::Value,
}

/// `complete.json`: proof that a cell finished, and the sha256 of each of its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRecord {
    /// [`RECORD_SCHEMA`].
    pub schema: u32,
    /// The cell hash (its directory name).
    pub hash: String,
    /// The tier that ran it.
    pub tier: String,
    /// The full sha256 of the tier and `cell.json`'s configuration.
    pub config_sha256: String,
    /// The code fingerprint of its tier in the build that ran it; `None` (omitted) when not
    /// known: records written before fingerprints existed, and sealed cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The warm start the cell started from (trained tiers with a warm start), else `None`.
    pub warm_start: Option<WarmStartRef>,
    /// Every file of the cell but the record itself, sorted by path.
    pub files: Vec<FileEntry>,
}

/// The warm start a cell started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmStartRef {
    /// Its SFT config hash (`sft-<hash>.safetensors` in the cache).
    pub sft_hash: String,
    /// The sha256 of its `.safetensors` file, when the cache held it.
    pub sha256: Option<String>,
}

/// One recorded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the cell directory, `/` as separator.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the contents.
    pub sha256: String,
}
