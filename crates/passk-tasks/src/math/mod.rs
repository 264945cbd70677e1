//! Real math data: answer extraction and equivalence for GSM8K, MATH and SVAMP.
//!
//! - GSM8K: the gold answer is the text after `####`. A completion's answer is, in order of
//!   preference, the text after its last `####`, its last `\boxed{…}`, or its last number; `$`,
//!   commas, units after the number and a trailing period are ignored, and values compare as
//!   exact rationals.
//! - MATH: the answer is the last `\boxed{…}` / `\fbox{…}` (nested braces), compared with
//!   [`math_equiv`].
//! - SVAMP: the gold answer is a decimal; a completion's answer is found as for GSM8K and
//!   compared exactly as a rational (no floating-point equality).

pub mod extract;
pub mod normalize;

pub use extract::{after_hashes, last_boxed, last_number, Extract};
pub use normalize::{math_equiv, normalize, numeric_value, MAX_ANSWER_LEN};

use crate::prompt::{Failure, Verdict};
use crate::rational::Rational;

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Extracts the numeric answer of a GSM8K-style completion (see the module docs).
pub fn extract_numeric(completion: &str) -> Extract {
    if let Some(line) = after_hashes(completion) {
        return match last_number_or_first(line) {
            Some(n) => Extract::Found(n),
            None if line.is_empty() => Extract::Missing,
            None => Extract::Malformed("no number after ####"),
        };
    }
    match last_boxed(completion) {
        Extract::Found(b) => {
            let n = normalize(&b);
            if numeric_value(&n).is_some() {
                return Extract::Found(n);
            }
            match last_number(&b) {
                Some(x) => Extract::Found(x),
                None => Extract::Malformed("no number in \\boxed{}"),
            }
        }
        Extract::Malformed(why) => Extract::Malformed(why),
        Extract::Missing => last_number(completion).map_or(Extract::Missing, Extract::Found),
    }
}

/// The first number on an answer line (`#### $1,234.` → `1,234`).
fn last_number_or_first(line: &str) -> Option<String> {
    let cleaned = line.replace("\\$", "").replace('$', "");
    let first_token = cleaned.split_whitespace().next().unwrap_or("");
    let token = first_token.trim_end_matches(['.', ',']);
    if Rational::parse_decimal(token).is_some() {
        return Some(token.to_string());
    }
    last_number(&cleaned)
}

/// The exact value of a numeric answer text (`1,234.50`, `-3`, `1/2`, `\frac{1}{2}`).
pub fn parse_number(s: &str) -> Option<Rational> {
    let t = s.trim().trim_end_matches('.');
    Rational::parse_decimal(t).or_else(|| numeric_value(&normalize(t)))
}

fn verify_number(reference: &str, completion: &str) -> Verdict {
    let found = match extract_numeric(completion) {
        Extract::Found(s) => s,
        Extract::Missing => return Verdict::incorrect(None, Failure::NoAnswer),
        Extract::Malformed(why) => {
            return Verdict::incorrect(
                None,
                Failure::Unparseable {
                    detail: why.to_string(),
                },
            );
        }
    };
    let Some(value) = parse_number(&found) else {
        let detail = format!("`{}` is not a number", clip(&found));
        return Verdict::incorrect(Some(clip(&found)), Failure::Unparseable { detail });
    };
    let correct = match parse_number(reference) {
        Some(gold) => gold == value,
        None => normalize(reference) == normalize(&found),
    };
    if correct {
        Verdict::Correct {
            parsed: clip(&found),
        }
    } else {
        Verdict::incorrect(
            Some(clip(&found)),
            Failure::WrongValue {
                expected: reference.to_string(),
            },
        )
    }
}

/// Verifies a GSM8K completion against the gold answer (the text after `####`).
pub fn verify_gsm8k(reference: &str, completion: &str) -> Verdict {
    verify_number(reference, completion)
}

/// Verifies a SVAMP completion against its decimal gold answer.
pub fn verify_svamp(reference: &str, completion: &str) -> Verdict {
    verify_number(reference, completion)
}

/// Verifies a MATH completion: its last boxed answer must be equivalent to `reference`.
pub fn verify_math(reference: &str, completion: &str) -> Verdict {
    match last_boxed(completion) {
        Extract::Found(b) => {
            if b.len() > MAX_ANSWER_LEN {
                let detail = format!("boxed answer longer than {MAX_ANSWER_LEN} bytes");
                return Verdict::incorrect(Some(clip(&b)), Failure::Unparseable { detail });
            }
            if math_equiv(reference, &b) {
                Verdict::Correct { parsed: clip(&b) }
            } else {
                Verdict::incorrect(
                    Some(clip(&b)),
                    Failure::WrongValue {
                        expected: reference.to_string(),
                    },
                )
            }
        }
        Extract::Missing => Verdict::incorrect(None, Failure::NoAnswer),
        Extract::Malformed(why) => Verdict::incorrect(
            None,
            Failure::Unparseable {
                detail: why.to_string(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm8k_formats() {
        let gold = "18";
        for c in [
            "She makes 9 * 2 = $18 every day.\n#### 18",
            "#### $18.",
            "#### 18.00",
            "#### 18 dollars",
            "so the answer is \\boxed{18}",
            "the answer is 18.",
        ] {
            assert!(verify_gsm8k(gold, c).is_correct(), "{c}");
        }
        assert!(verify_gsm8k("1234", "#### 1,234").is_correct());
        assert!(verify_gsm8k("-5", "#### -5").is_correct());
        assert!(matches!(
            verify_gsm8k("18", "#### 17").failure(),
            Some(Failure::WrongValue { .. })
        ));
        assert_eq!(
            verify_gsm8k("18", "no idea").failure(),
            Some(&Failure::NoAnswer)
        );
        assert!(matches!(
            verify_gsm8k("18", "#### eighteen").failure(),
            Some(Failure::Unparseable { .. })
        ));
        // The last #### wins even when a later number appears on another line.
        assert!(verify_gsm8k("18", "#### 18\nCheck: 3 + 4 = 7").is_correct());
    }

    #[test]
    fn svamp_is_exact() {
        assert!(verify_svamp("145", "each group has 145.0 bananas").is_correct());
        assert!(verify_svamp("0.5", "half: 1/2 ... 0.50").is_correct());
        assert!(!verify_svamp("0.5", "0.5000001").is_correct());
    }

    #[test]
    fn math_boxed() {
        assert!(verify_math(r"\frac{1}{2}", r"so $\boxed{0.5}$").is_correct());
        assert!(verify_math(
            r"\left( 3, \frac{\pi}{2} \right)",
            r"\boxed{(3,\frac{\pi}{2})}"
        )
        .is_correct());
        assert_eq!(
            verify_math("1", "the answer is 1").failure(),
            Some(&Failure::NoAnswer)
        );
        assert!(matches!(
            verify_math("1", r"\boxed{1").failure(),
            Some(Failure::Unparseable { .. })
        ));
        assert!(matches!(
            verify_math("1", r"\boxed{2}").failure(),
            Some(Failure::WrongValue { .. })
        ));
    }
}
