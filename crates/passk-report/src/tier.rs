//! The tiers of the suite, by the name each cell records in `cell.json`, and what the report
//! renders for one experiment of each. The front end (`passk-cli`'s `tiers.rs`) registers
//! how each tier validates and runs its cells against this same enum.

use std::fmt;
use std::path::Path;

use anyhow::Result;

/// One tier: a kind of cell, with its own config keys, runner, result files and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// The exact tier: a softmax bandit whose gradients are computed in closed form.
    Theory,
    /// The tiny tier: a small transformer warm-started by SFT, trained by RL on synthetic
    /// arithmetic mixtures, and probed.
    Tiny,
    /// The pretrained-LM tier: SmolLM2-class models on arithmetic or real math data.
    Lm,
}

impl Tier {
    /// Every tier, in the order the report and `passk` list them.
    pub const ALL: [Tier; 3] = [Tier::Theory, Tier::Tiny, Tier::Lm];

    /// The name experiment files and `cell.json` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Theory => "theory",
            Tier::Tiny => "tiny",
            Tier::Lm => "lm",
        }
    }

    /// The tier called `name`, or an error that lists the known names.
    pub fn from_name(name: &str) -> Result<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Tier::ALL.iter().map(|t| t.as_str()).collect();
                anyhow::anyhow!("tier {name:?} is not built into this binary; known: {known:?}")
            })
    }

    /// Renders the tables and figures of one experiment of this tier, whose cells are in
    /// `source`, into `target`; returns the number of files written.
    pub fn render(self, source: &Path, target: &Path) -> Result<usize> {
        Ok(match self {
            Tier::Theory => {
                let cells = crate::load::load_theory_cells(source)?;
                crate::theory::render_theory(&cells, target)?.len()
            }
            Tier::Tiny => {
                let cells = crate::tiny::load_tiny_cells(source)?;
                let mut written = crate::tiny::render_tiny(&cells, target)?.len();
                let probed: Vec<_> = crate::probe::load_probe_cells(source)?
                    .into_iter()
                    .filter(|c| !c.steps.is_empty())
                    .collect();
                if !probed.is_empty() {
                    written += crate::probe::render_probe(&probed, target)?.len();
                }
                written
            }
            // Tables of pass@k and sample outcomes per cell, and what RL changed.
            Tier::Lm => crate::lm::report_lm(source, target)?.len(),
        })
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for tier in Tier::ALL {
            assert_eq!(Tier::from_name(tier.as_str()).unwrap(), tier);
        }
        let err = Tier::from_name("huge").unwrap_err().to_string();
        assert!(err.contains("\"theory\", \"tiny\", \"lm\""), "{err}");
    }
}
