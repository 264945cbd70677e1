//! The one atomic writer every result file goes through, and readers of CSV and JSON.
//!
//! A write goes to a hidden temporary file beside its target, is synced, and is renamed into
//! place: a reader, or a run resumed after a kill, never sees a half-written file under its
//! final name. A stop request (SIGTERM, see `passk_core::interrupt`) waits for a write in
//! progress. Errors are `std::io::Error`s (bad CSV or JSON as [`std::io::ErrorKind::InvalidData`]);
//! callers add the path to them.

use std::io::{Error, ErrorKind, Result, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The temporary name [`write_atomic`] writes `path` under: `.<name>.tmp-<pid>-<n>` in the
/// same directory, unique to this process and call. A process that finds such a file from a
/// process no longer running may delete it.
pub fn temp_path(path: &Path) -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating its parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_path(path);
    let _section = passk_core::interrupt::write_section();
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The CSV text of `rows`: a header row, then one line per row (floats in shortest
/// round-trip form, so reading gives back the same bits).
pub fn csv_bytes<T: Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(invalid)?;
    }
    writer.into_inner().map_err(|e| invalid(e.into_error()))
}

/// Pretty JSON of `value` with a trailing newline.
pub fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(invalid)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `rows` to `path` as CSV ([`csv_bytes`]), atomically.
pub fn write_csv_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    write_atomic(path, &csv_bytes(rows)?)
}

/// Writes `value` to `path` as pretty JSON ([`json_bytes`]), atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &json_bytes(value)?)
}

/// The rows of the CSV file `path` (with a header row).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut reader = csv::Reader::from_path(path).map_err(csv_error)?;
    reader
        .deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(csv_error)
}

/// The JSON file `path`, parsed.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(invalid)
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::InvalidData, e)
}

/// A CSV error as an I/O error: the file's own I/O errors keep their kind (a missing file
/// stays `NotFound`), the rest are invalid data.
fn csv_error(e: csv::Error) -> Error {
    if e.is_io_error() {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => Error::other(format!("{other:?}")),
        }
    } else {
        invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Row {
        a: u32,
        b: f64,
        c: Option<f64>,
    }

    #[test]
    fn writes_and_replaces_without_leaving_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b.txt"]);
    }

    #[test]
    fn csv_round_trips_floats_bit_for_bit_and_keeps_the_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let rows = vec![
            Row {
                a: 1,
                b: 0.1 + 0.2,
                c: None,
            },
            Row {
                a: 2,
                b: 1e-300,
                c: Some(-0.0),
            },
        ];
        write_csv_atomic(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "a,b,c\n1,0.30000000000000004,\n2,1e-300,-0.0\n");
        let back: Vec<Row> = read_csv(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[1].c.unwrap().to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn json_ends_with_a_newline_and_bad_files_are_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        write_json_atomic(&path, &vec![1, 2]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[\n  1,\n  2\n]\n");
        std::fs::write(&path, "{").unwrap();
        let err = read_json::<Vec<u32>>(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        let missing = read_csv::<Row>(&dir.path().join("none.csv")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }
}
