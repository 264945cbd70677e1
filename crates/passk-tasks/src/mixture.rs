//! Mixtures of synthetic families named in experiment config, with the interference knob, and
//! deterministic generation of disjoint train / probe / eval prompt sets.
//!
//! See the crate docs for the interference and control mixtures.

use crate::hash::{key_hash, salt, unit};
use crate::prompt::{Family, Prompt, Split};
use crate::synth::{self, Candidate, MODULI};
use passk_core::rng::{seeded, uniform_f64, uniform_index};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The first stream id of every generator this crate derives (ASCII `"task"`).
pub const TASKS_STREAM: u64 = 0x7461_736b;

/// How many operand draws a single prompt may take before generation gives up.
pub const MAX_ATTEMPTS: usize = 100_000;

/// The shares of the operand space given to each split (must be positive and sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitShares {
    /// Share for SFT and RL prompts.
    pub train: f64,
    /// Share for the gradient probe.
    pub probe: f64,
    /// Share for held-out evaluation.
    pub eval: f64,
}

impl Default for SplitShares {
    fn default() -> Self {
        Self {
            train: 0.8,
            probe: 0.1,
            eval: 0.1,
        }
    }
}

/// One family in a mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// The family (synthetic ones only).
    pub family: Family,
    /// Sampling weight (>= 0; weights are normalised over the mixture).
    pub weight: f64,
    /// Inclusive difficulty range `[lo, hi]`: operand digits for addition (1..=5) and modular
    /// (1..=3); 1 = 1×1, 2 = 2×1, 3 = 2×2 digits for multiplication; number size for countdown
    /// (1: 1-9, 2: 1-25, 3: 1-100).
    pub difficulty: [u32; 2],
    /// Moduli for the modular family (a subset of [`MODULI`]); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moduli: Vec<u32>,
}

fn default_q() -> f64 {
    1.0
}

fn default_share() -> f64 {
    0.1
}

/// A named task mixture, deserialisable from an experiment TOML `[tasks]` table.
///
/// ```toml
/// [tasks]
/// name = "interference"
/// cue_reliability = 0.75     # q: P(visible tag names the true rule); 1.0 = control
/// reversed_share = 0.1       # hidden share of addition pairs whose true rule is reversed
/// families = [
///   { family = "addition", weight = 0.9, difficulty = [3, 3] },
///   { family = "reversed_addition", weight = 0.1, difficulty = [3, 3] },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureConfig {
    /// Name used in results.
    pub name: String,
    /// The families, weights and difficulty ranges.
    pub families: Vec<FamilySpec>,
    /// Cue reliability q in [0, 1]: the probability (fixed per operand pair by a hash) that the
    /// tag shown on a forward/reversed addition prompt names its true rule.
    #[serde(default = "default_q")]
    pub cue_reliability: f64,
    /// Share in (0, 1) of addition operand pairs whose hidden true rule is the reversed one; used
    /// when both addition families are present.
    #[serde(default = "default_share")]
    pub reversed_share: f64,
    /// Shares of the operand space per split.
    #[serde(default)]
    pub splits: SplitShares,
}

/// A config value outside what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid tasks config: `{field}` {problem}")]
pub struct ConfigError {
    /// The offending field, e.g. `families[1].difficulty`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Generation could not produce a prompt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    /// No operands satisfying the split and hidden-rule constraints were found in time.
    #[error(
        "no {family} operands found for the {split:?} split after {MAX_ATTEMPTS} draws; \
         widen the difficulty range or the split share"
    )]
    Exhausted {
        /// The family being sampled.
        family: Family,
        /// The split requested.
        split: Split,
    },
    /// Fewer distinct prompts exist than were requested.
    #[error("only {found} distinct prompts found for the {split:?} split, {wanted} requested")]
    TooFewDistinct {
        /// The split requested.
        split: Split,
        /// How many were requested.
        wanted: usize,
        /// How many distinct ones were found.
        found: usize,
    },
}

/// The allowed difficulty range of a synthetic family.
pub fn difficulty_bounds(family: Family) -> Option<(u32, u32)> {
    match family {
        Family::Addition | Family::ReversedAddition => Some((1, 5)),
        Family::Multiplication | Family::Modular | Family::Countdown => Some((1, 3)),
        _ => None,
    }
}

impl MixtureConfig {
    /// The interference mixture at cue reliability `q`: 90% forward / 10% reversed 3-digit
    /// addition, the true rule a hidden hash of the operands (10% of pairs), the tag right with
    /// probability `q`.
    pub fn interference(q: f64) -> Self {
        Self {
            name: if q >= 1.0 {
                "control".into()
            } else {
                format!("interference_q{q}")
            },
            families: vec![
                FamilySpec {
                    family: Family::Addition,
                    weight: 0.9,
                    difficulty: [3, 3],
                    moduli: vec![],
                },
                FamilySpec {
                    family: Family::ReversedAddition,
                    weight: 0.1,
                    difficulty: [3, 3],
                    moduli: vec![],
                },
            ],
            cue_reliability: q,
            reversed_share: 0.1,
            splits: SplitShares::default(),
        }
    }

    /// A named preset: `interference` (q = 0.75), `control` (the same with q = 1), or
    /// `arithmetic` (all five synthetic families, reliable tags).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        let spec = |family, weight, lo, hi| FamilySpec {
            family,
            weight,
            difficulty: [lo, hi],
            moduli: vec![],
        };
        match name {
            "interference" => Ok(Self {
                name: "interference".into(),
                ..Self::interference(0.75)
            }),
            "control" => Ok(Self::interference(1.0)),
            "arithmetic" => Ok(Self {
                name: "arithmetic".into(),
                families: vec![
                    spec(Family::Addition, 0.3, 1, 3),
                    spec(Family::ReversedAddition, 0.1, 1, 3),
                    spec(Family::Multiplication, 0.2, 1, 3),
                    spec(Family::Modular, 0.2, 1, 2),
                    spec(Family::Countdown, 0.2, 1, 2),
                ],
                cue_reliability: 1.0,
                reversed_share: 0.25,
                splits: SplitShares::default(),
            }),
            other => Err(bad(
                "preset",
                format!("`{other}` is unknown; allowed: interference, control, arithmetic"),
            )),
        }
    }

    /// Checks every field; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if self.families.is_empty() {
            return Err(bad("families", "must list at least one family"));
        }
        if !(0.0..=1.0).contains(&self.cue_reliability) {
            return Err(bad(
                "cue_reliability",
                format!("is {}; allowed: 0 <= q <= 1", self.cue_reliability),
            ));
        }
        if !(self.reversed_share > 0.0 && self.reversed_share < 1.0) {
            return Err(bad(
                "reversed_share",
                format!("is {}; allowed: 0 < share < 1", self.reversed_share),
            ));
        }
        let s = self.splits;
        for (f, v) in [
            ("splits.train", s.train),
            ("splits.probe", s.probe),
            ("splits.eval", s.eval),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(bad(f, format!("is {v}; allowed: 0 < share < 1")));
            }
        }
        if ((s.train + s.probe + s.eval) - 1.0).abs() > 1e-9 {
            return Err(bad("splits", "shares must sum to 1"));
        }
        let mut seen = HashSet::new();
        for (i, f) in self.families.iter().enumerate() {
            let Some((lo, hi)) = difficulty_bounds(f.family) else {
                return Err(bad(
                    format!("families[{i}].family"),
                    format!(
                        "`{}` is not synthetic; allowed: addition, reversed_addition, \
                         multiplication, modular, countdown",
                        f.family
                    ),
                ));
            };
            if !seen.insert(f.family) {
                return Err(bad(
                    format!("families[{i}].family"),
                    format!("`{}` is listed twice", f.family),
                ));
            }
            if !(f.weight.is_finite() && f.weight >= 0.0) {
                return Err(bad(
                    format!("families[{i}].weight"),
                    format!("is {}; allowed: finite and >= 0", f.weight),
                ));
            }
            let [a, b] = f.difficulty;
            if a > b || a < lo || b > hi {
                return Err(bad(
                    format!("families[{i}].difficulty"),
                    format!(
                        "is [{a}, {b}]; allowed for {}: lo <= hi within {lo}..={hi}",
                        f.family
                    ),
                ));
            }
            if f.family != Family::Modular && !f.moduli.is_empty() {
                return Err(bad(
                    format!("families[{i}].moduli"),
                    "is only allowed for the modular family",
                ));
            }
            if let Some(p) = f.moduli.iter().find(|p| !MODULI.contains(p)) {
                return Err(bad(
                    format!("families[{i}].moduli"),
                    format!("contains {p}; allowed: {MODULI:?}"),
                ));
            }
        }
        if self.families.iter().all(|f| f.weight == 0.0) {
            return Err(bad("families", "weights must not all be 0"));
        }
        let range_of = |fam| {
            self.families
                .iter()
                .find(|f| f.family == fam)
                .map(|f| f.difficulty)
        };
        if let (Some(fwd), Some(rev)) = (
            range_of(Family::Addition),
            range_of(Family::ReversedAddition),
        ) {
            if fwd != rev {
                return Err(bad(
                    "families.reversed_addition.difficulty",
                    "must equal the addition family's range, so that only the tag tells them apart",
                ));
            }
        }
        Ok(())
    }
}

/// A validated mixture that generates prompts.
#[derive(Debug, Clone)]
pub struct Mixture {
    config: MixtureConfig,
    cumulative: Vec<f64>,
    both_additions: bool,
}

impl Mixture {
    /// Validates `config` and prepares sampling.
    pub fn new(config: MixtureConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let total: f64 = config.families.iter().map(|f| f.weight).sum();
        let mut acc = 0.0;
        let cumulative = config
            .families
            .iter()
            .map(|f| {
                acc += f.weight / total;
                acc
            })
            .collect();
        let has = |fam| {
            config
                .families
                .iter()
                .any(|f| f.family == fam && f.weight > 0.0)
        };
        let both_additions = has(Family::Addition) && has(Family::ReversedAddition);
        Ok(Self {
            config,
            cumulative,
            both_additions,
        })
    }

    /// The validated config.
    pub fn config(&self) -> &MixtureConfig {
        &self.config
    }

    /// The split an operand tuple of a domain belongs to.
    pub(crate) fn split_of(&self, domain: u64, keys: &[u64]) -> Split {
        let mut all = Vec::with_capacity(keys.len() + 1);
        all.push(domain);
        all.extend_from_slice(keys);
        let u = unit(key_hash(salt::SPLIT, &all));
        let s = self.config.splits;
        if u < s.train {
            Split::Train
        } else if u < s.train + s.probe {
            Split::Probe
        } else {
            Split::Eval
        }
    }

    fn pick_family<R: RngCore + ?Sized>(&self, rng: &mut R) -> &FamilySpec {
        let u = uniform_f64(rng);
        let i = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cumulative.len() - 1);
        // Skip zero-weight entries that a rounding edge could land on.
        let i = (i..self.cumulative.len())
            .chain(0..i)
            .find(|&j| self.config.families[j].weight > 0.0)
            .unwrap_or(i);
        &self.config.families[i]
    }

    fn candidate<R: RngCore + ?Sized>(&self, spec: &FamilySpec, rng: &mut R) -> Option<Candidate> {
        let [lo, hi] = spec.difficulty;
        let d = lo + uniform_index(rng, (hi - lo + 1) as usize) as u32;
        match spec.family {
            Family::Addition | Family::ReversedAddition => {
                let (a, b) = synth::sample_addition_pair(rng, d);
                if self.both_additions {
                    let rev = synth::hidden_reversed(a, b, self.config.reversed_share);
                    if rev != (spec.family == Family::ReversedAddition) {
                        return None;
                    }
                }
                let truthful = synth::cue_truthful(a, b, self.config.cue_reliability);
                let mut prompt = synth::addition_prompt(a, b, hi as usize, spec.family, truthful);
                prompt.difficulty = d;
                Some(Candidate {
                    domain: synth::domain::ADDITION,
                    keys: vec![a, b],
                    prompt,
                })
            }
            Family::Multiplication => {
                let width = if hi >= 2 { 2 } else { 1 };
                Some(synth::sample_multiplication(rng, d, width))
            }
            Family::Modular => {
                let moduli: &[u32] = if spec.moduli.is_empty() {
                    &MODULI
                } else {
                    &spec.moduli
                };
                let max_p = moduli.iter().copied().max().unwrap_or(2);
                let ans_width = (max_p - 1).to_string().len();
                Some(synth::sample_modular(
                    rng,
                    d,
                    hi as usize,
                    moduli,
                    ans_width,
                ))
            }
            Family::Countdown => {
                let width = synth::countdown_max(hi).to_string().len();
                synth::sample_countdown(rng, d, width)
            }
            _ => None,
        }
    }

    /// Draws one prompt of `split` from the mixture using `rng`.
    pub fn sample<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        split: Split,
    ) -> Result<Prompt, GenError> {
        let spec = self.pick_family(rng);
        for _ in 0..MAX_ATTEMPTS {
            let Some(c) = self.candidate(spec, rng) else {
                continue;
            };
            if self.split_of(c.domain, &c.keys) == split {
                let mut prompt = c.prompt;
                prompt.split = Some(split);
                return Ok(prompt);
            }
        }
        Err(GenError::Exhausted {
            family: spec.family,
            split,
        })
    }

    /// The generator for `(seed, split)`: `passk_core::rng::seeded(seed, [TASKS_STREAM, split])`,
    /// one independent ChaCha8 stream per split.
    pub fn rng(seed: u64, split: Split) -> ChaCha8Rng {
        seeded(seed, &[TASKS_STREAM, split.index()])
    }

    /// `n` prompts of `split` (with repetition), deterministic in `seed`.
    pub fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Prompt>, GenError> {
        let mut rng = Self::rng(seed, split);
        (0..n).map(|_| self.sample(&mut rng, split)).collect()
    }

    /// `n` distinct prompts of `split` (e.g. a probe or evaluation set), deterministic in `seed`.
    pub fn generate_distinct(
        &self,
        split: Split,
        n: usize,
        seed: u64,
    ) -> Result<Vec<Prompt>, GenError> {
        let mut rng = Self::rng(seed, split);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(n);
        let budget = n.saturating_mul(50).max(1000);
        for _ in 0..budget {
            if out.len() == n {
                break;
            }
            let p = self.sample(&mut rng, split)?;
            if seen.insert(p.id.clone()) {
                out.push(p);
            }
        }
        if out.len() < n {
            return Err(GenError::TooFewDistinct {
                split,
                wanted: n,
                found: out.len(),
            });
        }
        Ok(out)
    }

    /// The longest reference answer any family of the mixture can produce, in characters
    /// (a bound for SFT and for the number of tokens to sample).
    pub fn max_reference_chars(&self) -> usize {
        self.config
            .families
            .iter()
            .map(|f| {
                let hi = f.difficulty[1] as usize;
                match f.family {
                    Family::Addition | Family::ReversedAddition => hi + 1,
                    Family::Multiplication => 2 * hi.min(2),
                    Family::Modular => 2,
                    // "(a+b)*c" with numbers of up to 3 digits.
                    _ => 5 + 3 * synth::countdown_max(f.difficulty[1]).to_string().len(),
                }
            })
            .max()
            .unwrap_or(0)
    }
}

/// A stable fingerprint (FNV-1a) of a prompt list: ids, texts, references, families, splits and
/// cue flags. Used to pin generator determinism in tests.
pub fn fingerprint(prompts: &[Prompt]) -> u64 {
    let mut h = crate::hash::Fnv64::default();
    for p in prompts {
        h.write_field(&p.id);
        h.write_field(&p.text);
        h.write_field(&p.reference);
        h.write_field(p.family.name());
        h.write_field(&format!(
            "{:?}{:?}{}",
            p.split, p.cue_truthful, p.difficulty
        ));
    }
    h.finish()
}

#[cfg(test)]
mod tests;
