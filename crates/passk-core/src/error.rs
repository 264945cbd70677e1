//! The error type of `passk-core`.

use thiserror::Error;

/// Everything that can go wrong in `passk-core`. Each message says what input was wrong and
/// what is allowed instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// `k` is outside `1..=n` (pass@k needs at least one and at most `n` samples).
    #[error("invalid k = {k} for n = {n} samples: k must satisfy 1 <= k <= n (draw more samples or lower k)")]
    InvalidK {
        /// The requested k.
        k: u32,
        /// The number of samples available.
        n: u32,
    },
    /// The number of correct samples exceeds the number of samples.
    #[error("invalid count: c = {c} correct out of n = {n} samples; c must be <= n")]
    InvalidCount {
        /// The number of correct samples given.
        c: u32,
        /// The number of samples.
        n: u32,
    },
    /// A group of rewards (or another collection) was empty where at least one item is needed.
    #[error("empty group: at least one sample (reward, gradient, prompt) is required")]
    EmptyGroup,
    /// A group is too small for the requested objective or statistic.
    #[error("group too small for {what}: needs at least {needed} samples, got {got}")]
    GroupTooSmall {
        /// What needed the larger group.
        what: String,
        /// The minimum group size.
        needed: usize,
        /// The group size given.
        got: usize,
    },
    /// A probability was not a finite number in `[0, 1]`.
    #[error("probability {0} is out of range: it must be a finite number in [0, 1]")]
    ProbabilityOutOfRange(f64),
    /// A reward was not exactly 0.0 or 1.0 for an objective defined on binary rewards.
    #[error("reward {value} at index {index} is not binary: this objective needs rewards that are exactly 0.0 or 1.0")]
    NonBinaryReward {
        /// Position of the offending reward in the group.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A reward was NaN or infinite.
    #[error("reward {value} at index {index} is not finite")]
    NonFiniteReward {
        /// Position of the offending reward in the group.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// An objective name is not in the registry.
    #[error("unknown objective '{name}': known objectives are {known}")]
    UnknownObjective {
        /// The name that was asked for.
        name: String,
        /// Comma-separated list of registered names.
        known: String,
    },
    /// An objective spec string could not be parsed or has wrong parameters.
    #[error("bad objective spec '{spec}': {reason}")]
    BadSpec {
        /// The spec string as given.
        spec: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Two inputs that must have matching sizes do not.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which input had the wrong size.
        what: String,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// `k = 0` was asked for where a pass@k target needs `k >= 1`.
    #[error("k = 0 is not a pass@k target: every k must be >= 1")]
    ZeroK,
    /// Prompt masses were negative, non-finite or summed to zero.
    #[error("invalid prompt mass: {0} (masses must be finite, >= 0 and not all zero)")]
    InvalidMass(String),
}
