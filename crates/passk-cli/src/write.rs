//! Result-file writers for anyhow callers: `passk_schema`'s atomic CSV and JSON writers with
//! the path in the error.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Writes `rows` as CSV with a header row, atomically.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    passk_schema::write_csv_atomic(path, rows)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `value` as pretty JSON with a trailing newline, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    passk_schema::write_json_atomic(path, value)
        .with_context(|| format!("cannot write {}", path.display()))
}
