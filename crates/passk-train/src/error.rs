//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, training, evaluating or checkpointing a tiny
/// cell. Each message names what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config field is out of range; `field` is its dotted path (e.g. `rl.samples_per_prompt`).
    #[error("invalid tiny-cell config: `{field}` {problem}")]
    Config {
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// The model failed (shapes, sampling, saving or loading weights).
    #[error(transparent)]
    Policy(#[from] passk_policy::PolicyError),
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The objective maths rejected its input.
    #[error("objective or estimator failed: {0}")]
    Core(#[from] passk_core::CoreError),
    /// The task mixture could not generate prompts.
    #[error("prompt generation failed: {0}; widen the split shares or lower the prompt count")]
    Gen(#[from] passk_tasks::GenError),
    /// A prompt or answer could not be tokenized.
    #[error("tokenization failed: {0}; the tiny tier needs the synthetic character vocabulary")]
    Tokenizer(#[from] passk_tasks::TokenizerError),
    /// A file could not be read, written or renamed.
    #[error("i/o error on {path}: {source}; check that the directory exists and is writable")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A CSV or JSON file could not be written or parsed.
    #[error("could not write or parse {path}: {detail}; delete the file to regenerate it")]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What the parser or writer reported.
        detail: String,
    },
    /// A checkpoint on disk does not belong to this config or is damaged.
    #[error(
        "checkpoint {path} cannot be resumed: {detail}; remove the cell directory to start over"
    )]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What mismatched.
        detail: String,
    },
    /// A lock file could not be locked (see [`crate::lock`]): the filesystem may lack lock
    /// support.
    #[error(
        "cannot lock {path}: {source}; the filesystem must support flock (on NFS, POSIX or \
         NFSv4 byte-range locks): put --results and --cache on a local disk"
    )]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A cached SFT warm start failed its integrity check (checksum, config or non-finite
    /// weights) and strict checking forbids retraining it.
    #[error(
        "cached warm start {path} failed its integrity check: {detail}; delete it (and its .json \
         sidecar) to retrain it, or run without --strict to retrain it automatically"
    )]
    WarmStart {
        /// The cached weights.
        path: PathBuf,
        /// What did not match.
        detail: String,
    },
    /// The loss or gradient became non-finite.
    #[error("training diverged at {phase} step {step}: {detail}; lower the learning rate")]
    Diverged {
        /// `sft` or `rl`.
        phase: &'static str,
        /// The step at which it happened.
        step: u64,
        /// What was non-finite.
        detail: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

/// Maps an `io::Error` on `path` into a [`TrainError::Io`].
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
