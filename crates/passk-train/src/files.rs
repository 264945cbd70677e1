//! Atomic writes of CSV and JSON files, and CSV reading.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{fmt_err, io_err, Result};

/// A temporary name beside `path`, unique to this process and call.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let _section = passk_core::interrupt::write_section();
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// The CSV text of `rows` (with a header row; floats in shortest round-trip form).
pub(crate) fn csv_bytes<T: Serialize>(path: &Path, rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(fmt_err(path))?;
    }
    w.into_inner().map_err(fmt_err(path))
}

/// Writes `rows` as CSV to `path` atomically.
pub(crate) fn write_csv_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    write_atomic(path, &csv_bytes(path, rows)?)
}

/// Reads the CSV rows of `path` (exact float round trip).
pub(crate) fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut r = csv::Reader::from_path(path).map_err(fmt_err(path))?;
    r.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(fmt_err(path))
}

/// Writes `value` as pretty JSON to `path` atomically.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(fmt_err(path))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads JSON from `path`.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(fmt_err(path))
}
