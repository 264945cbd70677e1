//! Result-file writers: every file is written atomically (see `passk_report::atomic`).

use std::path::Path;

use anyhow::{Context, Result};
use passk_report::atomic::write_atomic;
use serde::Serialize;

/// Writes `rows` as CSV with a header row.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .with_context(|| format!("cannot serialise a row of {}", path.display()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot finish {}: {e}", path.display()))?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `value` as pretty JSON with a trailing newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}
