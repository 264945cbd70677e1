//! Result files through `passk_schema`'s atomic writer and readers, with errors that name the
//! file: bad CSV or JSON as [`TrainError::Format`], the rest as [`TrainError::Io`].

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{io_err, Result, TrainError};

/// `err` on `path` as a [`TrainError`].
fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |err| match err.kind() {
        std::io::ErrorKind::InvalidData => TrainError::Format {
            path: path.to_path_buf(),
            detail: err.to_string(),
        },
        _ => io_err(path)(err),
    }
}

/// Writes `bytes` to `path` atomically ([`passk_schema::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    passk_schema::write_atomic(path, bytes).map_err(file_err(path))
}

/// Writes `rows` as CSV to `path` atomically.
pub(crate) fn write_csv_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    passk_schema::write_csv_atomic(path, rows).map_err(file_err(path))
}

/// Reads the CSV rows of `path` (exact float round trip).
pub(crate) fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    passk_schema::read_csv(path).map_err(file_err(path))
}

/// Writes `value` as pretty JSON to `path` atomically.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    passk_schema::write_json_atomic(path, value).map_err(file_err(path))
}

/// Reads JSON from `path`.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    passk_schema::read_json(path).map_err(file_err(path))
}
