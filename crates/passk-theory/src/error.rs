//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong when building a bandit or running the exact tier.
///
/// Every message names the offending field or prompt and says what a valid value looks like.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TheoryError {
    /// A configuration field has a value outside its allowed range.
    #[error("invalid config field `{field}`: {reason}; change `{field}` and rerun")]
    InvalidConfig {
        /// Name of the offending field (as spelled in the config struct).
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A bandit description is malformed (no prompts, a bad mass, a feature of the wrong length,...).
    #[error("invalid bandit: {0}; fix the prompt list passed to SoftmaxBandit::new")]
    InvalidBandit(String),
    /// A parameter vector does not have the bandit's feature dimension.
    #[error("theta has length {got} but the bandit's features have dimension {expected}; pass a theta of length {expected}")]
    DimensionMismatch {
        /// The bandit's feature dimension d.
        expected: usize,
        /// The length of the vector that was passed.
        got: usize,
    },
}
