//! Progress reports for a progress bar.

use serde::{Deserialize, Serialize};

/// Which part of a cell is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// SFT stage 1 (reliable tag).
    Sft1,
    /// SFT stage 2 (the cell's cue reliability).
    Sft2,
    /// Held-out evaluation (`step` is the RL step evaluated, `total` the RL step count).
    Eval,
    /// Within a held-out evaluation: `step` of its `total` prompts sampled and judged.
    EvalPrompts,
    /// Reinforcement learning.
    Rl,
    /// The gradient-interference probe (`step` is the RL step probed).
    Probe,
}

/// One progress report: `step` of `total` in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The running phase.
    pub phase: Phase,
    /// Steps completed in this phase.
    pub step: u64,
    /// Steps this phase will take.
    pub total: u64,
}
