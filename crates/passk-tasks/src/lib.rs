//! Verifiable tasks for the pass@k interference suite: prompts, verifiers, seeded synthetic
//! families with a controllable interference knob, tokenizers, and real math data.
//!
//! # Synthetic families
//!
//! Generated from a seed (ChaCha8) and checked exactly (see [`synth`] for the text format):
//! forward addition (1-5 digits), the same additions answered least-significant digit first
//! (selected by a tag token), multiplication (1×1 to 2×2 digits), `a ∘ b mod p` with the modulus
//! given by one token (`<m5> <m7> <m11> <m13> <m97>`; the issue's "several moduli behind one
//! token" is read as one token per modulus, so the rule is visible), and a small countdown (three numbers and a
//! target; any expression over a sub-multiset of the numbers reaching it is accepted, checked by a
//! bounded parser with exact rational arithmetic). Each family's difficulty range is set in the
//! [`MixtureConfig`].
//!
//! # The interference knob and the two mixtures
//!
//! Interference between forward (F) and reversed (R) addition is controlled by the **cue
//! reliability** `q` ([`MixtureConfig::cue_reliability`]), the analogue of the toy model's
//! separation. Whether an operand pair's true rule is R is a hidden hash of the operands
//! (`reversed_share` = 10% of pairs), so the model cannot learn it from the digits. The visible
//! tag (`<F>` or `<R>`) names the true rule with probability `q`, fixed per pair by a second hash.
//!
//! - **Interference mixture** (`preset = "interference"`, q = 0.75): 90% F / 10% R 3-digit
//!   additions. With an unreliable cue the posterior P(R | tag) stays below 1/2, so pass@1 is
//!   maximised by never reversing while pass@k pays to hedge (reverse with some probability on
//!   either tag); hedging costs pass@1. This is the low-separation (overlapping classes) regime,
//!   where the F and R gradients conflict (κ < 0).
//! - **Control** (`preset = "control"`, q = 1): the same families, weights, operands and
//!   difficulty, the tag always right. Nothing to hedge; full separation. With the same seed it
//!   generates the *same* prompts as the interference mixture except for the tags, so the success
//!   profiles match (the operand draws do not depend on q).
//!
//! Sweeping q (e.g. 0.6, 0.75, 0.9, 1.0) via [`MixtureConfig::interference`] gives the headline
//! curve. Forward and reversed addition must share a difficulty range so that only the tag
//! differs between them.
//!
//! # Splits
//!
//! Train, probe and eval prompts come from disjoint slices of the operand space, decided by a
//! hash of the operands (forward and reversed addition share one operand space), so a pair never
//! appears in two splits whatever the family or seed.
//!
//! # Real math
//!
//! See [`math`] for extraction and equivalence, and [`data`] for loaders. The datasets are
//! vendored in `data/real/` (GSM8K, MATH-500, SVAMP; MIT, origins in `data/real/SOURCES.md`;
//! [`data::vendored_dir`]), and `tests/real_data.rs` fails when a file is missing. Measured
//! there: every one of the 1,319 GSM8K test solutions verifies against its own `####` answer
//! (7,473 of 7,473 in train); MATH-500 gold answers verify against the last boxed answer of
//! their own solution for 500 of 500 problems, and against about eleven equivalent rewrites
//! each (`\dfrac`, unbraced `\sqrt3`, `\text{(C)}`, `\left(`, spacing; 5,505 of 5,505). SVAMP
//! answers load, and each `Equation` evaluates to its `Answer` except one wrong gold answer in
//! the source (`chal-680`), which the test pins.

pub mod data;
pub mod hash;
pub mod math;
pub mod mixture;
pub mod prompt;
pub mod rational;
pub mod synth;
pub mod tokenizer;
pub mod verify;

pub use mixture::{
    fingerprint, ConfigError, FamilySpec, GenError, Mixture, MixtureConfig, SplitShares,
};
pub use prompt::{Check, Failure, Family, Prompt, Split, Verdict};
pub use tokenizer::{CharTokenizer, HfTokenizer, Tokenizer, TokenizerError};
pub use verify::{StandardVerifier, Verifier};
