//! Synthetic task families: prompt builders, operand samplers and the exact checks.
//!
//! Text format (one token per character, except `<…>` tags):
//!
//! | family | prompt text | reference |
//! |---|---|---|
//! | addition | `<F>123+045=` | `0168` (width + 1 digits) |
//! | reversed addition | `<R>123+045=` | `8610` (the same digits, least significant first) |
//! | multiplication | `<M>12*07=` | `0084` (2 × width digits) |
//! | modular | `<m7>123*045=` | `5` (residue, padded to the largest modulus' digits) |
//! | countdown | `<C>03,07,12:120=` | `(3+7)*12` (any valid expression is accepted) |
//!
//! Operands are zero-padded to the widest difficulty of their family in the mixture, so every
//! prompt of a family has the same length; the tokenizer adds `<bos>` before and `<eos>` after.

pub mod expr;

use crate::hash::{key_hash, salt, unit};
use crate::prompt::{Check, Failure, Family, Prompt, Verdict};
use crate::rational::Rational;
use passk_core::rng::uniform_index;
use rand::RngCore;

/// A uniform integer in `lo..hi` (stable across `rand` versions).
fn range<R: RngCore + ?Sized>(rng: &mut R, lo: u64, hi: u64) -> u64 {
    lo + uniform_index(rng, (hi - lo) as usize) as u64
}

/// A fair coin.
fn coin<R: RngCore + ?Sized>(rng: &mut R) -> bool {
    uniform_index(rng, 2) == 1
}

/// The moduli the modular family may use; each has its own token `<mP>`.
pub const MODULI: [u32; 5] = [5, 7, 11, 13, 97];

/// The tag tokens of the synthetic families, in vocabulary order.
pub fn tag_tokens() -> Vec<String> {
    let mut v: Vec<String> = ["<F>", "<R>", "<M>", "<C>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(MODULI.iter().map(|p| format!("<m{p}>")));
    v
}

/// Operand-space domains for the split hash: forward and reversed addition share one.
pub(crate) mod domain {
    pub const ADDITION: u64 = 1;
    pub const MULTIPLICATION: u64 = 2;
    pub const MODULAR: u64 = 3;
    pub const COUNTDOWN: u64 = 4;
}

/// Whether an addition pair's hidden true rule is the reversed one, for a hidden share `share`.
pub fn hidden_reversed(a: u64, b: u64, share: f64) -> bool {
    unit(key_hash(salt::HIDDEN_RULE, &[a, b])) < share
}

/// Whether the tag shown for an addition pair names its true rule, for cue reliability `q`.
pub fn cue_truthful(a: u64, b: u64, q: f64) -> bool {
    unit(key_hash(salt::CUE, &[a, b])) < q
}

fn pad(n: u64, width: usize) -> String {
    format!("{n:0width$}")
}

fn digits_of(n: u64) -> usize {
    n.to_string().len()
}

/// Uniform operand with exactly `d` digits (`0..=9` for `d == 1`).
fn operand<R: RngCore + ?Sized>(rng: &mut R, d: u32) -> u64 {
    let hi = 10u64.pow(d);
    let lo = if d == 1 { 0 } else { 10u64.pow(d - 1) };
    range(rng, lo, hi)
}

/// Builds a forward or reversed addition prompt; `truthful` decides whether the tag shown is the
/// true rule's tag.
pub fn addition_prompt(a: u64, b: u64, width: usize, rule: Family, truthful: bool) -> Prompt {
    let reversed = rule == Family::ReversedAddition;
    let forward = pad(a + b, width + 1);
    let backward: String = forward.chars().rev().collect();
    let (reference, alt) = if reversed {
        (backward, forward)
    } else {
        (forward, backward)
    };
    let shows_reversed = reversed == truthful;
    let tag = if shows_reversed { "<R>" } else { "<F>" };
    let text = format!("{tag}{}+{}=", pad(a, width), pad(b, width));
    Prompt {
        id: format!("{}:{}+{}", rule.name(), pad(a, width), pad(b, width)),
        family: rule,
        text,
        reference,
        difficulty: digits_of(a.max(b)) as u32,
        check: Check::Digits,
        split: None,
        cue_truthful: Some(truthful),
        alt_reference: Some(alt),
        solution: None,
    }
}

/// Builds a multiplication prompt with operands padded to `width`.
pub fn multiplication_prompt(a: u64, b: u64, width: usize, difficulty: u32) -> Prompt {
    let text = format!("<M>{}*{}=", pad(a, width), pad(b, width));
    Prompt {
        id: format!("multiplication:{}*{}", pad(a, width), pad(b, width)),
        family: Family::Multiplication,
        text,
        reference: pad(a * b, 2 * width),
        difficulty,
        check: Check::Digits,
        split: None,
        cue_truthful: Some(true),
        alt_reference: None,
        solution: None,
    }
}

/// Builds `a op b mod p` with operands padded to `width` and the residue padded to `ans_width`.
pub fn modular_prompt(a: u64, op: char, b: u64, p: u32, width: usize, ans_width: usize) -> Prompt {
    let (ai, bi, pi) = (a as i128, b as i128, i128::from(p));
    let raw = match op {
        '+' => ai + bi,
        '-' => ai - bi,
        _ => ai * bi,
    };
    let residue = raw.rem_euclid(pi) as u64;
    let text = format!("<m{p}>{}{op}{}=", pad(a, width), pad(b, width));
    Prompt {
        id: format!("modular:{p}:{}{op}{}", pad(a, width), pad(b, width)),
        family: Family::Modular,
        text,
        reference: pad(residue, ans_width),
        difficulty: digits_of(a.max(b)) as u32,
        check: Check::Digits,
        split: None,
        cue_truthful: Some(true),
        alt_reference: None,
        solution: None,
    }
}

/// Builds a countdown prompt; `reference` is one expression reaching `target`.
pub fn countdown_prompt(
    numbers: [u64; 3],
    target: u64,
    reference: String,
    width: usize,
    difficulty: u32,
) -> Prompt {
    let shown: Vec<String> = numbers.iter().map(|&n| pad(n, width)).collect();
    let text = format!("<C>{}:{}=", shown.join(","), pad(target, 3));
    Prompt {
        id: format!("countdown:{}:{}", shown.join(","), target),
        family: Family::Countdown,
        text,
        reference,
        difficulty,
        check: Check::Countdown {
            numbers: numbers.to_vec(),
            target,
        },
        split: None,
        cue_truthful: Some(true),
        alt_reference: None,
        solution: None,
    }
}

/// A sampled candidate before split filtering: its split domain and keys, and its prompt.
pub(crate) struct Candidate {
    pub domain: u64,
    pub keys: Vec<u64>,
    pub prompt: Prompt,
}

/// Samples addition operands with `d` digits; the caller decides the rule.
pub(crate) fn sample_addition_pair<R: RngCore + ?Sized>(rng: &mut R, d: u32) -> (u64, u64) {
    (operand(rng, d), operand(rng, d))
}

/// Samples a multiplication candidate: difficulty 1 = 1×1, 2 = 2×1, 3 = 2×2 digits.
pub(crate) fn sample_multiplication<R: RngCore + ?Sized>(
    rng: &mut R,
    d: u32,
    width: usize,
) -> Candidate {
    let (da, db) = match d {
        1 => (1, 1),
        2 => (2, 1),
        _ => (2, 2),
    };
    let (mut a, mut b) = (operand(rng, da), operand(rng, db));
    if da != db && coin(rng) {
        std::mem::swap(&mut a, &mut b);
    }
    Candidate {
        domain: domain::MULTIPLICATION,
        keys: vec![a, b],
        prompt: multiplication_prompt(a, b, width, d),
    }
}

/// Samples a modular candidate with operands of up to `d` digits.
pub(crate) fn sample_modular<R: RngCore + ?Sized>(
    rng: &mut R,
    d: u32,
    width: usize,
    moduli: &[u32],
    ans_width: usize,
) -> Candidate {
    let a = range(rng, 0, 10u64.pow(d));
    let b = range(rng, 0, 10u64.pow(d));
    let op = ['+', '-', '*'][uniform_index(rng, 3)];
    let p = moduli[uniform_index(rng, moduli.len())];
    let mut prompt = modular_prompt(a, op, b, p, width, ans_width);
    prompt.difficulty = d;
    Candidate {
        domain: domain::MODULAR,
        keys: vec![u64::from(p), op as u64, a, b],
        prompt,
    }
}

/// The largest countdown number at difficulty `d`.
pub fn countdown_max(d: u32) -> u64 {
    match d {
        1 => 9,
        2 => 25,
        _ => 100,
    }
}

/// Samples a solvable countdown candidate (target in 1..=999), or `None` if this draw failed.
pub(crate) fn sample_countdown<R: RngCore + ?Sized>(
    rng: &mut R,
    d: u32,
    width: usize,
) -> Option<Candidate> {
    let hi = countdown_max(d);
    let numbers = [
        range(rng, 1, hi + 1),
        range(rng, 1, hi + 1),
        range(rng, 1, hi + 1),
    ];
    let mut order = [0usize, 1, 2];
    for i in (1..3).rev() {
        order.swap(i, uniform_index(rng, i + 1));
    }
    let ops = [b'+', b'-', b'*', b'/'];
    let o1 = ops[uniform_index(rng, 4)] as char;
    let o2 = ops[uniform_index(rng, 4)] as char;
    let [x, y, z] = order.map(|i| numbers[i]);
    let reference = if coin(rng) {
        format!("({x}{o1}{y}){o2}{z}")
    } else {
        format!("{x}{o2}({y}{o1}{z})")
    };
    let value = expr::evaluate(&reference).ok()?.value;
    if !value.is_integer() || !(1..=999).contains(&value.numer()) {
        return None;
    }
    let target = value.numer() as u64;
    Some(Candidate {
        domain: domain::COUNTDOWN,
        keys: vec![numbers[0], numbers[1], numbers[2], target],
        prompt: countdown_prompt(numbers, target, reference, width, d),
    })
}

/// Checks a fixed-width digit answer.
pub(crate) fn verify_digits(reference: &str, completion: &str) -> Verdict {
    let ans = completion.trim();
    if ans.is_empty() {
        return Verdict::incorrect(None, Failure::NoAnswer);
    }
    let shown: String = ans.chars().take(64).collect();
    if !ans.bytes().all(|b| b.is_ascii_digit()) {
        let detail = "expected only digits".to_string();
        return Verdict::incorrect(Some(shown), Failure::Unparseable { detail });
    }
    if ans == reference {
        Verdict::Correct { parsed: shown }
    } else {
        Verdict::incorrect(
            Some(shown),
            Failure::WrongValue {
                expected: reference.to_string(),
            },
        )
    }
}

/// Checks a countdown answer: an expression (optionally followed by `=…`) over a sub-multiset of
/// the given numbers whose exact value is the target.
pub(crate) fn verify_countdown(numbers: &[u64], target: u64, completion: &str) -> Verdict {
    let body = completion.split('=').next().unwrap_or("").trim();
    if body.is_empty() {
        return Verdict::incorrect(None, Failure::NoAnswer);
    }
    let shown: String = body.chars().take(64).collect();
    let ev = match expr::evaluate(body) {
        Ok(ev) => ev,
        Err(e) => {
            let reason = Failure::Unparseable {
                detail: e.to_string(),
            };
            return Verdict::incorrect(Some(shown), reason);
        }
    };
    let mut left = numbers.to_vec();
    for n in &ev.numbers {
        match left.iter().position(|m| m == n) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => {
                let detail = format!("uses {n}, which is not available (or used too often)");
                return Verdict::incorrect(Some(shown), Failure::Invalid { detail });
            }
        }
    }
    if ev.value == Rational::int(i128::from(target)) {
        Verdict::Correct { parsed: shown }
    } else {
        Verdict::incorrect(
            Some(shown),
            Failure::WrongValue {
                expected: target.to_string(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_texts_and_references() {
        let p = addition_prompt(123, 45, 3, Family::Addition, true);
        assert_eq!(p.text, "<F>123+045=");
        assert_eq!(p.reference, "0168");
        assert_eq!(p.alt_reference.as_deref(), Some("8610"));
        let r = addition_prompt(123, 45, 3, Family::ReversedAddition, true);
        assert_eq!(r.text, "<R>123+045=");
        assert_eq!(r.reference, "8610");
        // An untruthful cue shows the other rule's tag; the reference follows the true rule.
        let lie = addition_prompt(123, 45, 3, Family::ReversedAddition, false);
        assert_eq!(lie.text, "<F>123+045=");
        assert_eq!(lie.reference, "8610");
        let lie_f = addition_prompt(999, 999, 3, Family::Addition, false);
        assert_eq!(lie_f.text, "<R>999+999=");
        assert_eq!(lie_f.reference, "1998");
    }

    #[test]
    fn other_family_texts() {
        let m = multiplication_prompt(12, 7, 2, 2);
        assert_eq!(
            (m.text.as_str(), m.reference.as_str()),
            ("<M>12*07=", "0084")
        );
        let md = modular_prompt(3, '-', 5, 7, 2, 2);
        assert_eq!(
            (md.text.as_str(), md.reference.as_str()),
            ("<m7>03-05=", "05")
        );
        let md = modular_prompt(12, '*', 11, 13, 2, 2);
        assert_eq!(md.reference, format!("{:02}", 132 % 13));
        let c = countdown_prompt([3, 7, 12], 120, "(3+7)*12".into(), 2, 2);
        assert_eq!(c.text, "<C>03,07,12:120=");
        assert!(verify_countdown(&[3, 7, 12], 120, &c.reference).is_correct());
    }

    #[test]
    fn digit_verifier_reasons() {
        assert!(verify_digits("0168", "0168").is_correct());
        assert!(verify_digits("0168", " 0168\n").is_correct());
        assert_eq!(
            verify_digits("0168", "").failure(),
            Some(&Failure::NoAnswer)
        );
        assert!(matches!(
            verify_digits("0168", "01a8").failure(),
            Some(Failure::Unparseable { .. })
        ));
        assert!(matches!(
            verify_digits("0168", "168").failure(),
            Some(Failure::WrongValue { .. })
        ));
        assert!(!verify_digits("0168", "8610").is_correct());
    }

    #[test]
    fn countdown_verifier_accepts_any_valid_expression() {
        let nums = [3, 7, 12];
        assert!(verify_countdown(&nums, 120, "12*(7+3)").is_correct());
        assert!(verify_countdown(&nums, 120, "(3+7)*12=120").is_correct());
        assert!(
            verify_countdown(&nums, 4, "12/3").is_correct(),
            "not all numbers needed"
        );
        let twice = verify_countdown(&nums, 36, "12*3*3");
        assert!(matches!(twice.failure(), Some(Failure::Invalid { .. })));
        let foreign = verify_countdown(&nums, 120, "120");
        assert!(matches!(foreign.failure(), Some(Failure::Invalid { .. })));
        let wrong = verify_countdown(&nums, 120, "3+7+12");
        assert!(matches!(wrong.failure(), Some(Failure::WrongValue { .. })));
        assert_eq!(
            verify_countdown(&nums, 120, " ").failure(),
            Some(&Failure::NoAnswer)
        );
        let div0 = verify_countdown(&nums, 1, "3/(7-7)");
        assert!(matches!(
            div0.failure(),
            Some(Failure::Unparseable { .. } | Failure::Invalid { .. })
        ));
    }

    #[test]
    fn sampled_countdowns_are_solved_by_their_reference() {
        let mut rng = passk_core::rng::seeded(5, &[]);
        let mut made = 0;
        for _ in 0..2000 {
            if let Some(c) = sample_countdown(&mut rng, 2, 2) {
                let Check::Countdown { numbers, target } = &c.prompt.check else {
                    panic!()
                };
                assert!(verify_countdown(numbers, *target, &c.prompt.reference).is_correct());
                made += 1;
            }
        }
        assert!(made > 500, "only {made} of 2000 draws were solvable");
    }

    #[test]
    fn hidden_rule_and_cue_shares() {
        let n = 20_000u64;
        let rev = (0..n)
            .filter(|&i| hidden_reversed(i, i * 7 + 1, 0.1))
            .count() as f64
            / n as f64;
        assert!((rev - 0.1).abs() < 0.01, "{rev}");
        let cue = (0..n).filter(|&i| cue_truthful(i, i * 7 + 1, 0.75)).count() as f64 / n as f64;
        assert!((cue - 0.75).abs() < 0.015, "{cue}");
        assert!((0..n).all(|i| cue_truthful(i, i + 3, 1.0)));
        assert!((0..n).all(|i| !cue_truthful(i, i + 3, 0.0)));
    }
}
