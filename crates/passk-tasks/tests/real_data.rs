//! Checks on the real datasets vendored in this crate under `data/real/` (see
//! `data/real/SOURCES.md`). A missing file fails the test: nothing here is skipped.
//!
//! Row counts are pinned (GSM8K 7,473 train / 1,319 test, MATH-500 500, SVAMP 1,000); every
//! GSM8K gold answer is a number and every solution verifies against it; every MATH-500 `answer`
//! is equivalent to the last `\boxed{}` of its own `solution` and survives cosmetic rewrites;
//! every SVAMP answer parses and agrees with its equation except one known-bad row. Run with
//! `--nocapture` to see counts and misses.

use passk_tasks::data::{load, vendored_dir, vendored_path, Dataset, LoadOptions, Loaded};
use passk_tasks::math::{last_boxed, math_equiv, normalize, numeric_value, parse_number};
use passk_tasks::rational::Rational;
use passk_tasks::synth::expr::evaluate;
use passk_tasks::{Prompt, StandardVerifier, Verifier};
use std::collections::HashSet;
use std::path::PathBuf;

/// The vendored file, which must exist.
fn vendored(kind: Dataset, split: &str) -> PathBuf {
    let p = vendored_path(kind, split);
    assert!(
        p.is_file(),
        "vendored data file {} is missing (it is part of the repository)",
        p.display()
    );
    p
}

/// Loads a vendored file strictly: no malformed lines, exactly `rows` prompts, unique ids.
fn load_strict(kind: Dataset, split: &str, rows: usize) -> Loaded {
    let loaded = load(kind, &vendored(kind, split), LoadOptions::default()).unwrap();
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert_eq!(loaded.prompts.len(), rows, "{kind:?} {split}");
    let ids: HashSet<&str> = loaded.prompts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), rows, "{kind:?} {split}: duplicate ids");
    for p in &loaded.prompts {
        assert!(!p.text.trim().is_empty(), "{}: empty text", p.id);
        assert!(!p.reference.trim().is_empty(), "{}: empty answer", p.id);
    }
    loaded
}

fn math500() -> Vec<Prompt> {
    load_strict(Dataset::Math500, "test", 500).prompts
}

#[test]
fn vendored_folder_has_sources_and_licences() {
    let dir = vendored_dir();
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    for (name, holder) in [
        ("gsm8k", "OpenAI"),
        ("math500", "Dan Hendrycks"),
        ("svamp", "Arkil Patel"),
    ] {
        assert!(sources.contains(&format!("{name}/")), "SOURCES.md: {name}");
        let licence = std::fs::read_to_string(dir.join(name).join("LICENSE")).unwrap();
        assert!(licence.starts_with("MIT License"), "{name}/LICENSE");
        assert!(licence.contains(holder), "{name}/LICENSE names {holder}");
    }
}

#[test]
fn gsm8k_answers_are_numbers_and_solutions_verify() {
    for (split, rows) in [("test", 1319), ("train", 7473)] {
        let loaded = load_strict(Dataset::Gsm8k, split, rows);
        let not_numbers: Vec<_> = loaded
            .prompts
            .iter()
            .filter(|p| parse_number(&p.reference).is_none())
            .map(|p| format!("{}: {:?}", p.id, p.reference))
            .collect();
        assert!(not_numbers.is_empty(), "non-numeric gold: {not_numbers:?}");
        let v = StandardVerifier;
        let misses: Vec<_> = loaded
            .prompts
            .iter()
            .filter(|p| !v.verify(p, p.solution.as_deref().unwrap()).is_correct())
            .map(|p| p.id.clone())
            .collect();
        println!(
            "gsm8k {split}: {} / {rows} solutions verify",
            rows - misses.len()
        );
        assert!(misses.is_empty(), "misses: {misses:?}");
        // The gold plus one is rejected.
        let accepted: Vec<_> = loaded
            .prompts
            .iter()
            .filter(|p| {
                let off = parse_number(&p.reference)
                    .unwrap()
                    .checked_add(Rational::int(1))
                    .unwrap();
                v.verify(p, &format!("#### {off}")).is_correct()
            })
            .map(|p| p.id.clone())
            .collect();
        assert!(accepted.is_empty(), "wrong answers accepted: {accepted:?}");
    }
}

#[test]
fn math500_gold_matches_last_boxed_of_solution() {
    let ps = math500();
    let v = StandardVerifier;
    let mut misses = Vec::new();
    let mut verbatim = 0;
    for p in &ps {
        let solution = p.solution.as_deref().expect("MATH-500 rows have solutions");
        let boxed = last_boxed(solution).found();
        verbatim += usize::from(boxed.as_deref() == Some(p.reference.as_str()));
        let verdict = v.verify(p, solution);
        if !verdict.is_correct() {
            misses.push(format!(
                "{}: gold {:?} vs boxed {:?}",
                p.id,
                p.reference,
                verdict.parsed()
            ));
        }
    }
    println!(
        "math500: {} / {} gold answers match the last boxed answer of their solution \
         ({verbatim} verbatim)",
        ps.len() - misses.len(),
        ps.len()
    );
    for m in &misses {
        println!("  miss {m}");
    }
    // In this copy the `answer` field is the last boxed answer verbatim for every row.
    assert_eq!(verbatim, 500);
    assert!(misses.is_empty(), "{} misses: {misses:#?}", misses.len());
}

#[test]
fn math500_verifier_rejects_other_problems_answers() {
    let ps = math500();
    let v = StandardVerifier;
    let mut shifted_ok = 0;
    let mut shifted_same_gold = 0;
    for (i, p) in ps.iter().enumerate() {
        let q = &ps[(i + 1) % ps.len()];
        if v.verify(p, q.solution.as_deref().unwrap()).is_correct() {
            shifted_ok += 1;
            shifted_same_gold += usize::from(math_equiv(&p.reference, &q.reference));
        }
    }
    println!(
        "math500: {shifted_ok} of {} neighbours' solutions accepted ({shifted_same_gold} have an \
         equivalent gold)",
        ps.len()
    );
    assert_eq!(
        shifted_ok, shifted_same_gold,
        "accepted a neighbour whose gold differs"
    );
    assert!(
        shifted_ok * 50 < ps.len(),
        "{shifted_ok} neighbour matches is implausibly many"
    );
    // Across all pairs, equivalence only joins answers that are the same value: every class of
    // equivalent golds has a single numeric value (or none).
    let mut joined = 0;
    for (i, a) in ps.iter().enumerate() {
        for b in &ps[i + 1..] {
            if math_equiv(&a.reference, &b.reference) {
                joined += 1;
                let (x, y) = (
                    numeric_value(&normalize(&a.reference)),
                    numeric_value(&normalize(&b.reference)),
                );
                assert_eq!(x, y, "{:?} ~ {:?}", a.reference, b.reference);
            }
        }
    }
    println!("math500: {joined} pairs of distinct problems have equivalent golds");
}

/// Rewrites a braced single token (`{3}`, `{x}`, `{\pi}`) as a bare argument after `\sqrt`,
/// `\frac`, `^`, `_` or a closing brace (`\frac{\sqrt{3}}{2}` → `\frac{\sqrt 3} 2`,
/// `\frac{\pi}{6}` → `\frac \pi 6`), the short forms TeX accepts; `compact` leaves out the
/// space where TeX does not need it (`\frac{\sqrt3}2`, `\frac\pi6`).
fn short_args(s: &str, compact: bool) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let before = &s[..i];
        let takes_arg = before.ends_with("\\sqrt")
            || before.ends_with("\\frac")
            || before.ends_with('^')
            || before.ends_with('_')
            || (before.ends_with('}') && !before.ends_with("\\}"));
        // The token inside `{…}`: one letter or digit, or a command name.
        let token_len = if b[i] == b'{' && takes_arg && !before.ends_with('\\') {
            let inner = &b[i + 1..];
            match inner.first() {
                Some(c) if c.is_ascii_alphanumeric() => 1,
                Some(b'\\') => match inner[1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count()
                {
                    0 => 0,
                    n => n + 1,
                },
                _ => 0,
            }
        } else {
            0
        };
        if token_len > 0 && b.get(i + 1 + token_len) == Some(&b'}') {
            // The space is needed only between a command name and a letter.
            let merges = before.ends_with(|c: char| c.is_ascii_alphabetic())
                && b[i + 1].is_ascii_alphabetic();
            if !compact || merges {
                out.push(' ');
            }
            out.push_str(&s[i + 1..i + 1 + token_len]);
            i += token_len + 2;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Exact numeric forms of a gold with a rational value: `\frac{n}{d}`, `n/d`, `\dfrac`.
fn numeric_forms(gold: &str) -> Vec<String> {
    let Some(r) = numeric_value(&normalize(gold)) else {
        return Vec::new();
    };
    let (n, d) = (r.numer(), r.denom());
    let mut v = vec![format!("{n}/{d}"), format!(r"\dfrac{{{n}}}{{{d}}}")];
    if n < 0 {
        v.push(format!(r"-\frac{{{}}}{{{d}}}", -n));
    }
    if d == 1 {
        v.push(format!("{n}.0"));
        v.push(format!("{n}"));
    }
    v
}

#[test]
fn math500_gold_survives_cosmetic_rewrites() {
    let ps = math500();
    let v = StandardVerifier;
    let mut misses = Vec::new();
    let mut tried = 0;
    for p in &ps {
        let g = &p.reference;
        let mut variants = vec![
            g.replace("\\frac", "\\dfrac"),
            g.replace("\\frac", "\\tfrac"),
            g.replace(',', ", ")
                .replace('(', "\\left(")
                .replace(')', "\\right)"),
            format!(" {g} ").replace('+', " + "),
            format!("{g}."),
            short_args(g, false),
            short_args(g, true),
            format!("\\displaystyle {}", short_args(g, false)),
        ];
        // `x \in [-2,7]` is the interval itself.
        if let Some(rest) = g.strip_prefix("x \\in ") {
            variants.push(rest.to_string());
        }
        // Multiple choice: `\text{(C)}` may be answered `C`, `(C)`, `\textbf{(C)}`.
        if let Some(letter) = g
            .strip_prefix("\\text{(")
            .and_then(|r| r.strip_suffix(")}"))
        {
            variants.extend([
                letter.to_string(),
                format!("({letter})"),
                format!("\\textbf{{({letter})}}"),
                format!("\\text{{{letter}}}"),
            ]);
        }
        // Thousands separators written `,\!`: the plain digits.
        if g.contains(",\\!") {
            variants.push(g.replace(",\\!", "").replace(' ', ""));
        }
        variants.extend(numeric_forms(g));
        for var in variants {
            tried += 1;
            if !v.verify(p, &format!("so $\\boxed{{{var}}}$")).is_correct() {
                misses.push(format!("{}: {g:?} -> {var:?}", p.id));
            }
        }
    }
    println!("math500 rewrites: {} misses of {tried}", misses.len());
    for m in &misses {
        println!("  {m}");
    }
    assert!(misses.is_empty(), "{} misses: {misses:#?}", misses.len());
}

#[test]
fn svamp_answers_parse_verify_and_match_their_equations() {
    let loaded = load_strict(Dataset::Svamp, "test", 1000);
    let v = StandardVerifier;
    for p in &loaded.prompts {
        assert!(
            parse_number(&p.reference).is_some(),
            "{}: {:?}",
            p.id,
            p.reference
        );
        assert!(
            v.verify(p, &format!("The answer is {}.", p.reference))
                .is_correct(),
            "{}",
            p.id
        );
    }
    // Each row's `Equation` (integers written `4.0`) evaluates exactly to its `Answer`, except
    // chal-680, whose gold is wrong in the source: "( ( 4.0 - 2.0 ) + 3.0 )" is 5, the answer 1.
    let text = std::fs::read_to_string(vendored(Dataset::Svamp, "test")).unwrap();
    let mut disagree = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let eq = row["Equation"].as_str().unwrap().replace(".0", "");
        let value = evaluate(&eq)
            .unwrap_or_else(|e| panic!("{}: {eq}: {e}", row["ID"]))
            .value;
        let answer = parse_number(&row["Answer"].to_string()).unwrap();
        if value != answer {
            disagree.push(row["ID"].as_str().unwrap().to_string());
        }
    }
    println!(
        "svamp: {} / 1000 answers match their equation",
        1000 - disagree.len()
    );
    assert_eq!(disagree, ["chal-680"]);
}
