//! The prompt type shared by synthetic families and real datasets, and the verdict a verifier
//! returns for one completion.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which task family a prompt belongs to (its *true* rule, which for the interference mixture may
/// differ from the tag shown in the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// n-digit addition, answer written most-significant digit first.
    Addition,
    /// The same additions, answer written least-significant digit first.
    ReversedAddition,
    /// Multiplication of 1-2 digit operands.
    Multiplication,
    /// `a ∘ b mod p` with the modulus given by one token.
    Modular,
    /// Three numbers and a target; any valid expression reaching it is accepted.
    Countdown,
    /// GSM8K grade-school word problems (answer after `####`).
    Gsm8k,
    /// MATH / MATH-500 competition problems (answer in the last `\boxed{…}`).
    Math,
    /// SVAMP arithmetic word problems (a numeric answer).
    Svamp,
}

impl Family {
    /// The snake_case name used in configs and result files.
    pub fn name(self) -> &'static str {
        match self {
            Family::Addition => "addition",
            Family::ReversedAddition => "reversed_addition",
            Family::Multiplication => "multiplication",
            Family::Modular => "modular",
            Family::Countdown => "countdown",
            Family::Gsm8k => "gsm8k",
            Family::Math => "math",
            Family::Svamp => "svamp",
        }
    }

    /// Whether the family is generated in Rust (as opposed to loaded from a dataset).
    pub fn is_synthetic(self) -> bool {
        matches!(
            self,
            Family::Addition
                | Family::ReversedAddition
                | Family::Multiplication
                | Family::Modular
                | Family::Countdown
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which disjoint slice of the operand space a synthetic prompt comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Prompts for SFT and RL.
    Train,
    /// The fixed probe set for gradient-interference measurements.
    Probe,
    /// Held-out evaluation.
    Eval,
}

impl Split {
    /// All splits, in a fixed order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Probe, Split::Eval];

    /// Index used to derive per-split random streams.
    pub fn index(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Probe => 1,
            Split::Eval => 2,
        }
    }
}

/// How a completion for this prompt is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The completion must be exactly the reference digit string (fixed width, zero-padded).
    Digits,
    /// Any arithmetic expression over a sub-multiset of `numbers` whose exact value is `target`.
    Countdown {
        /// The numbers that may each be used at most once.
        numbers: Vec<u64>,
        /// The value to reach.
        target: u64,
    },
    /// GSM8K-style: the `#### N` answer (or the last boxed / last number) equals the reference.
    Gsm8k,
    /// MATH-style: the last `\boxed{…}` is equivalent to the reference after normalisation.
    Math,
    /// SVAMP-style: the last number equals the (decimal) reference exactly.
    Svamp,
}

/// One task instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Stable identifier (for synthetic prompts derived from family and operands).
    pub id: String,
    /// The true family (rule) of the prompt.
    pub family: Family,
    /// The prompt text. Synthetic prompts use one character per token except `<…>` tag tokens.
    pub text: String,
    /// The reference answer: exactly what SFT teaches (synthetic) or the gold answer (real data).
    pub reference: String,
    /// Difficulty level within the family (digits for arithmetic, level for MATH, 0 if unknown).
    pub difficulty: u32,
    /// How completions are checked.
    pub check: Check,
    /// The operand split the prompt belongs to (synthetic prompts only).
    pub split: Option<Split>,
    /// Whether the visible tag names the true rule (synthetic prompts only; always true outside
    /// the forward/reversed addition pair).
    pub cue_truthful: Option<bool>,
    /// For forward/reversed addition: the answer under the *other* rule, to count how often a
    /// model answers in the wrong format.
    pub alt_reference: Option<String>,
    /// A worked solution, where the dataset provides one (real data only).
    pub solution: Option<String>,
}

/// Why a completion was judged incorrect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// No candidate answer was found in the completion.
    NoAnswer,
    /// A candidate was found but could not be parsed.
    Unparseable {
        /// What was wrong with it.
        detail: String,
    },
    /// The answer parsed but breaks a rule of the task (e.g. a countdown number used twice).
    Invalid {
        /// Which rule was broken.
        detail: String,
    },
    /// The answer parsed and differs from the reference.
    WrongValue {
        /// The reference it was compared with.
        expected: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoAnswer => f.write_str("no answer found"),
            Failure::Unparseable { detail } => write!(f, "unparseable answer: {detail}"),
            Failure::Invalid { detail } => write!(f, "invalid answer: {detail}"),
            Failure::WrongValue { expected } => write!(f, "wrong value (expected {expected})"),
        }
    }
}

/// The verifier's judgement of one completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The completion's answer is correct.
    Correct {
        /// The answer as extracted from the completion.
        parsed: String,
    },
    /// The completion's answer is missing, unparseable, invalid or wrong.
    Incorrect {
        /// The extracted answer, if any.
        parsed: Option<String>,
        /// Why it is incorrect.
        reason: Failure,
    },
}

impl Verdict {
    /// Whether the verdict is correct.
    pub fn is_correct(&self) -> bool {
        matches!(self, Verdict::Correct { .. })
    }

    /// The binary reward: 1.0 when correct, else 0.0.
    pub fn reward(&self) -> f64 {
        if self.is_correct() {
            1.0
        } else {
            0.0
        }
    }

    /// The extracted answer, if any.
    pub fn parsed(&self) -> Option<&str> {
        match self {
            Verdict::Correct { parsed } => Some(parsed),
            Verdict::Incorrect { parsed, .. } => parsed.as_deref(),
        }
    }

    /// The failure reason, if incorrect.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Verdict::Correct { .. } => None,
            Verdict::Incorrect { reason, .. } => Some(reason),
        }
    }

    pub(crate) fn incorrect(parsed: Option<String>, reason: Failure) -> Self {
        Verdict::Incorrect { parsed, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_accessors() {
        let ok = Verdict::Correct {
            parsed: "12".into(),
        };
        assert!(ok.is_correct());
        assert_eq!(ok.reward(), 1.0);
        assert_eq!(ok.parsed(), Some("12"));
        assert!(ok.failure().is_none());
        let bad = Verdict::incorrect(None, Failure::NoAnswer);
        assert_eq!(bad.reward(), 0.0);
        assert_eq!(bad.failure(), Some(&Failure::NoAnswer));
        assert_eq!(bad.failure().unwrap().to_string(), "no answer found");
    }

    #[test]
    fn family_names_round_trip_through_serde() {
        for f in [
            Family::Addition,
            Family::ReversedAddition,
            Family::Multiplication,
            Family::Modular,
            Family::Countdown,
            Family::Gsm8k,
            Family::Math,
            Family::Svamp,
        ] {
            let s = serde_json::to_string(&f).unwrap();
            assert_eq!(s, format!("\"{}\"", f.name()));
            let back: Family = serde_json::from_str(&s).unwrap();
            assert_eq!(back, f);
        }
    }
}
