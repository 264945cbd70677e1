//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong when building, running, saving or loading a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A model configuration is unusable; the message names the field and the fix.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A device string could not be parsed or the requested device is unavailable.
    #[error("device error: {0}")]
    Device(String),
    /// An input (tokens, prompts, masks, sampling parameters) does not fit the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A checkpoint does not match the model it is loaded into.
    #[error("checkpoint {path} does not match the model: {detail}")]
    Checkpoint {
        /// The file that was read.
        path: PathBuf,
        /// What mismatched (missing, unexpected, wrongly shaped or typed parameters).
        detail: String,
    },
    /// A file could not be read, written or renamed.
    #[error("i/o error on {path}: {source}; check that the directory exists and is writable")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An error raised inside candle (shape mismatch, device failure, safetensors parsing).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, PolicyError>;
