//! The tiers this build runs, registered in one table ([`TIERS`]): how each validates and
//! runs its cells, whether it resumes from checkpoints and starts from warm starts, and its
//! code fingerprint. The tier names themselves and their reports are
//! [`passk_report::tier::Tier`]'s. Adding a tier means its adapter module (like `tiny.rs`),
//! a `Tier` variant with its report, and one line here.

use std::path::{Path, PathBuf};

use anyhow::Result;
use passk_report::tier::Tier;
use serde_json::{Map, Value};

/// Settings of a run that are not part of any cell's configuration (so not in its hash).
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Where reusable intermediate artefacts (SFT warm starts) are cached.
    pub cache_dir: PathBuf,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
    /// No progress output.
    pub quiet: bool,
    /// Fail instead of retraining (with a warning) when a cached SFT warm start fails its
    /// integrity check (`--strict`).
    pub strict: bool,
    /// What `passk run` does with a cell that fails its completion check (`--on-corrupt`).
    pub on_corrupt: crate::record::OnCorrupt,
    /// Rerun done cells not known to be computed by this build's code (their recorded code
    /// fingerprint differs, or they record none: `--force`); cells this build computed are
    /// kept.
    pub force: bool,
    /// Where a cell's stage lines go (`passk run` sends them through its progress bar, with
    /// the cell they belong to); ignored when `quiet`.
    pub log: crate::term::Log,
    /// What this process is among several (`shard 1/2`), for the prefix of its lines; empty
    /// when alone.
    pub label: String,
    /// Leave an attestation beside each cell written ([`crate::approve::attest`]): for runs
    /// that leave MANIFEST to a later `passk run` (`--cell`, Slurm tasks).
    pub attest: bool,
}

/// [`RunContext::label`] of a process running shard `i` of `n` (`shard 1/2`), or of one alone.
pub fn shard_label(shard: Option<(usize, usize)>) -> String {
    shard.map_or_else(String::new, |(i, n)| format!("shard {i}/{n}"))
}

impl Default for RunContext {
    fn default() -> Self {
        Self {
            cache_dir: PathBuf::from("target/passk-cache"),
            device: "cpu".into(),
            quiet: false,
            strict: false,
            on_corrupt: crate::record::OnCorrupt::Rerun,
            force: false,
            log: crate::term::Log::default(),
            label: String::new(),
            attest: false,
        }
    }
}

/// How the front end validates and runs the cells of one tier.
pub struct TierEntry {
    /// The tier.
    pub tier: Tier,
    /// Checks that a config is a complete, valid cell configuration of the tier.
    pub validate: fn(&Map<String, Value>) -> Result<()>,
    /// Runs one cell and writes its result files into its temporary directory, which may hold
    /// a checkpoint of an interrupted run.
    pub run: fn(&Map<String, Value>, &Path, &RunContext) -> Result<()>,
    /// Whether an interrupted cell resumes from checkpoints in its temporary directory (a
    /// tier that does not starts over in an empty one).
    pub resumes: bool,
    /// Whether its cells start from SFT warm starts (cached, committed under
    /// `results/warm-starts`, recorded in each `complete.json`).
    pub warm_starts: bool,
    /// This build's code fingerprint of the sources that compute its numbers (`build.rs`).
    pub code: &'static str,
}

/// Every tier this build runs, in [`Tier::ALL`] order.
pub const TIERS: &[TierEntry] = &[
    TierEntry {
        tier: Tier::Theory,
        validate: |c| crate::theory::spec(c).map(drop),
        run: |c, dir, _| crate::theory::run(c, dir),
        resumes: false,
        warm_starts: false,
        code: env!("PASSK_CODE_THEORY"),
    },
    TierEntry {
        tier: Tier::Tiny,
        validate: |c| crate::tiny::spec(c).map(drop),
        run: crate::tiny::run,
        resumes: true,
        warm_starts: true,
        code: env!("PASSK_CODE_TINY"),
    },
    TierEntry {
        tier: Tier::Lm,
        validate: |c| crate::lm::spec(c).map(drop),
        run: crate::lm::run,
        resumes: false,
        warm_starts: false,
        code: env!("PASSK_CODE_LM"),
    },
];

/// The registry entry of `tier`.
pub fn entry(tier: Tier) -> &'static TierEntry {
    TIERS
        .iter()
        .find(|e| e.tier == tier)
        .expect("every Tier has an entry in TIERS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_has_one_entry_in_order() {
        let listed: Vec<Tier> = TIERS.iter().map(|e| e.tier).collect();
        assert_eq!(listed, Tier::ALL);
        for tier in Tier::ALL {
            assert_eq!(entry(tier).tier, tier);
        }
    }
}
