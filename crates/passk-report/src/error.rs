//! The error type of report generation.

use std::path::PathBuf;

/// Everything that can go wrong while reading results or writing tables and figures.
///
/// Every variant names the file or item involved and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be read or written.
    #[error("cannot access {path}: {source} (check the path exists and is readable/writable)")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file did not parse into the expected row type.
    #[error("cannot parse CSV {path}: {source} (the file does not match the results schema; rerun the cell that wrote it)")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// A JSON file did not parse into the expected type.
    #[error("cannot parse JSON {path}: {source} (the file does not match the results schema; rerun the cell that wrote it)")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A result file is well-formed but its content is not usable.
    #[error("invalid result {path}: {message}")]
    Invalid {
        /// The file or cell directory involved.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// There was nothing to report on.
    #[error("no result cells to report on in {path} (run the experiment first)")]
    NoCells {
        /// The directory or output that was to be reported on.
        path: PathBuf,
    },
    /// Drawing a figure failed.
    #[error("cannot draw figure {path}: {message} (this is a bug in the plotting code or its input; report it)")]
    Plot {
        /// The figure file being drawn.
        path: PathBuf,
        /// The plotting backend's message.
        message: String,
    },
}

impl ReportError {
    /// An [`ReportError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`ReportError::Invalid`] for `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
