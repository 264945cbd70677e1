//! Normalisation and equivalence of MATH-style LaTeX answers.
//!
//! Two answers are equivalent when their normalised strings are equal, when both are numbers
//! (integers, decimals, `a/b`, `\frac{a}{b}`, `\frac12`) with the same exact rational value, or
//! when both are tuples, intervals or lists whose brackets match and whose elements are
//! equivalent in order (lists without brackets may also match in any order).

use super::extract::balanced_prefix;
use crate::rational::Rational;

/// Longest answer (in bytes) that is normalised; longer answers only compare as raw strings.
pub const MAX_ANSWER_LEN: usize = 10_000;
const MAX_DEPTH: usize = 16;
const MAX_ITEMS: usize = 64;

/// Replaces every occurrence of each pattern by its replacement, in order.
fn replace_all(mut s: String, pairs: &[(&str, &str)]) -> String {
    for (from, to) in pairs {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}

/// Replaces `\cmd{X}` by `X` for the given command (all occurrences, nested ones too).
fn unwrap_command(s: &str, cmd: &str) -> String {
    let pat = format!("{cmd}{{");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(&pat) {
        out.push_str(&rest[..at]);
        let inner = &rest[at + pat.len()..];
        match balanced_prefix(inner) {
            Some(end) => {
                out.push_str(&unwrap_command(&inner[..end], cmd));
                rest = &inner[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drops a trailing `\text{…}` / `\mbox{…}` that names units after a numeric-looking value
/// (`10\text{ inches}`, `5\text{cm}^2`).
fn drop_trailing_units(s: &str) -> String {
    for cmd in ["\\text{", "\\mbox{", "\\mathrm{", "\\textrm{"] {
        if let Some(at) = s.rfind(cmd) {
            let inner = &s[at + cmd.len()..];
            let Some(end) = balanced_prefix(inner) else {
                continue;
            };
            let word = inner[..end].trim();
            let tail = inner[end + 1..].trim();
            let head = s[..at].trim_end();
            let tail_ok = tail.is_empty() || tail.starts_with('^');
            let word_ok = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '.');
            let head_ok = head.ends_with(|c: char| c.is_ascii_digit() || c == '}');
            if tail_ok && word_ok && head_ok {
                return head.to_string();
            }
        }
    }
    s.to_string()
}

/// Rewrites `\frac12` → `\frac{1}{2}` and `\sqrt2` → `\sqrt{2}` (single-character arguments).
fn brace_short_args(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    loop {
        let next = [("\\frac", 2usize), ("\\sqrt", 1)]
            .iter()
            .filter_map(|(cmd, n)| rest.find(cmd).map(|i| (i, *cmd, *n)))
            .min_by_key(|x| x.0);
        let Some((at, cmd, nargs)) = next else { break };
        out.push_str(&rest[..at + cmd.len()]);
        rest = &rest[at + cmd.len()..];
        for _ in 0..nargs {
            if rest.starts_with('{') {
                match balanced_prefix(&rest[1..]) {
                    Some(end) => {
                        out.push_str(&rest[..end + 2]);
                        rest = &rest[end + 2..];
                    }
                    None => break,
                }
            } else if let Some(c) = rest.chars().next().filter(|c| c.is_ascii_alphanumeric()) {
                out.push('{');
                out.push(c);
                out.push('}');
                rest = &rest[c.len_utf8()..];
            } else {
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Normalises a MATH answer string (spacing, `\left`/`\right`, `\dfrac`, `\text{…}`, units,
/// degrees, percent, dollars, a leading `x =`, a trailing period).
pub fn normalize(answer: &str) -> String {
    if answer.len() > MAX_ANSWER_LEN {
        return answer.to_string();
    }
    let mut s = answer.trim().trim_end_matches('.').to_string();
    s = replace_all(
        s,
        &[
            ("\n", ""),
            ("\\!", ""),
            ("\\,", ""),
            ("\\;", ""),
            ("\\:", ""),
            ("\\ ", ""),
            ("~", ""),
            ("\\dfrac", "\\frac"),
            ("\\tfrac", "\\frac"),
            ("\\displaystyle", ""),
            ("\\left", ""),
            ("\\right", ""),
            ("\\bigl", ""),
            ("\\bigr", ""),
            ("^{\\circ}", ""),
            ("^\\circ", ""),
            ("\\circ", ""),
            ("°", ""),
            ("\\%", ""),
            ("%", ""),
            ("\\$", ""),
            ("$", ""),
        ],
    );
    s = drop_trailing_units(&s);
    for cmd in [
        "\\text", "\\textbf", "\\mbox", "\\mathrm", "\\textrm", "\\mathbf",
    ] {
        s = unwrap_command(&s, cmd);
    }
    s.retain(|c| !c.is_whitespace());
    s = brace_short_args(&s);
    // A trailing period (sentence end), but not a decimal point.
    while s.ends_with('.') {
        s.pop();
    }
    // `x=5`, `k = 3`: keep the right-hand side when the left is a single symbol.
    if let Some((lhs, rhs)) = s.split_once('=') {
        let single = lhs.chars().count() == 1
            || (lhs.starts_with('\\') && lhs[1..].chars().all(|c| c.is_ascii_alphabetic()));
        if single && !rhs.contains('=') && !rhs.is_empty() {
            s = rhs.to_string();
        }
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s = s.replace("{.", "{0.").replace("-.", "-0.");
    s
}

/// The exact value of a normalised numeric answer: integers, decimals (with thousands commas),
/// `a/b`, `\frac{a}{b}`, with an optional sign, or `None` if it is not such a number.
pub fn numeric_value(s: &str) -> Option<Rational> {
    value_at(s, 0)
}

fn value_at(s: &str, depth: usize) -> Option<Rational> {
    if depth > MAX_DEPTH || s.is_empty() || s.len() > 200 {
        return None;
    }
    if let Some(r) = Rational::parse_decimal(s) {
        return Some(r);
    }
    if let Some(rest) = s.strip_prefix('-') {
        return value_at(rest, depth + 1)?.checked_neg();
    }
    if let Some(rest) = s.strip_prefix('+') {
        return value_at(rest, depth + 1);
    }
    if s.len() >= 2 && s.starts_with('{') && balanced_prefix(&s[1..]) == Some(s.len() - 2) {
        return value_at(&s[1..s.len() - 1], depth + 1);
    }
    if let Some(rest) = s.strip_prefix("\\frac{") {
        let n_end = balanced_prefix(rest)?;
        let num = value_at(&rest[..n_end], depth + 1)?;
        let after = rest[n_end + 1..].strip_prefix('{')?;
        let d_end = balanced_prefix(after)?;
        if d_end + 1 != after.len() {
            return None;
        }
        let den = value_at(&after[..d_end], depth + 1)?;
        return num.checked_div(den);
    }
    if let Some((a, b)) = s.split_once('/') {
        let num = Rational::parse_decimal(a)?;
        let den = Rational::parse_decimal(b)?;
        return num.checked_div(den);
    }
    None
}

/// Splits at top-level commas (outside any brackets or braces).
fn split_top_level(s: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() && (b[i + 1] == b'{' || b[i + 1] == b'}') => {
                depth += if b[i + 1] == b'{' { 1 } else { -1 };
                i += 1;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
                if parts.len() > MAX_ITEMS {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// Splits `(a,b)`, `[a,b)`, `\{a,b\}` into (open, items, close) when the outer brackets enclose
/// the whole string.
fn bracketed(s: &str) -> Option<(&str, &str, &str)> {
    for (open, close) in [
        ("\\{", "\\}"),
        ("(", ")"),
        ("[", "]"),
        ("(", "]"),
        ("[", ")"),
    ] {
        if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
            let inner = &s[open.len()..s.len() - close.len()];
            // The outer brackets must belong together: inner brackets balanced.
            let mut depth = 0i32;
            let ok = inner.bytes().all(|c| {
                match c {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth -= 1,
                    _ => {}
                }
                depth >= 0
            });
            if ok && depth == 0 {
                return Some((open, inner, close));
            }
        }
    }
    None
}

/// Whether two MATH answers are equivalent (see the module docs). Runs in time bounded by the
/// input length: nesting is capped at 16 levels and lists at 64 items.
pub fn math_equiv(gold: &str, pred: &str) -> bool {
    let (g, p) = (normalize(gold), normalize(pred));
    equiv_normalized(&g, &p, 0)
}

fn equiv_normalized(g: &str, p: &str, depth: usize) -> bool {
    if g == p {
        return true;
    }
    if depth > MAX_DEPTH {
        return false;
    }
    if let (Some(a), Some(b)) = (numeric_value(g), numeric_value(p)) {
        return a == b;
    }
    match (bracketed(g), bracketed(p)) {
        (Some((go, gi, gc)), Some((po, pi, pc))) => {
            if go != po || gc != pc {
                return false;
            }
            let (Some(ga), Some(pa)) = (split_top_level(gi), split_top_level(pi)) else {
                return false;
            };
            if go == "\\{" {
                unordered_equal(&ga, &pa, depth)
            } else {
                ga.len() == pa.len()
                    && ga
                        .iter()
                        .zip(&pa)
                        .all(|(x, y)| equiv_normalized(x, y, depth + 1))
            }
        }
        (None, None) => {
            let (Some(ga), Some(pa)) = (split_top_level(g), split_top_level(p)) else {
                return false;
            };
            if ga.len() < 2 || ga.len() != pa.len() {
                return false;
            }
            unordered_equal(&ga, &pa, depth)
        }
        _ => false,
    }
}

fn unordered_equal(a: &[&str], b: &[&str], depth: usize) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let hit = (0..b.len()).find(|&j| !used[j] && equiv_normalized(x, b[j], depth + 1));
        if let Some(j) = hit {
            used[j] = true;
        }
        hit.is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_latex_noise() {
        assert_eq!(
            normalize(r"\left( 3, \frac{\pi}{2} \right)"),
            r"(3,\frac{\pi}{2})"
        );
        assert_eq!(normalize(r"\dfrac{1}{2}"), r"\frac{1}{2}");
        assert_eq!(normalize(r"\frac12"), r"\frac{1}{2}");
        assert_eq!(normalize(r"\sqrt2"), r"\sqrt{2}");
        assert_eq!(normalize(r"90^\circ"), "90");
        assert_eq!(normalize(r"90^{\circ}"), "90");
        assert_eq!(normalize(r"25\%"), "25");
        assert_eq!(normalize(r"\$18.50"), "18.50");
        assert_eq!(normalize(r"10\text{ inches}"), "10");
        assert_eq!(normalize(r"5\text{ cm}^2"), "5");
        assert_eq!(normalize(r"5.4 \text{ cents}."), "5.4");
        assert_eq!(normalize(r"\text{(C)}"), "(C)");
        assert_eq!(normalize(r"\textbf{(B)}"), "(B)");
        assert_eq!(normalize("x = 5."), "5");
        assert_eq!(normalize(r"\!1,\!000"), "1,000");
    }

    #[test]
    fn numbers_compare_exactly() {
        for (a, b) in [
            ("0.5", r"\frac12"),
            (r"\frac{1}{2}", "1/2"),
            ("0.5", "1/2"),
            (r"\dfrac{3}{6}", ".5"),
            ("2.50", "2.5"),
            ("3", "3.0"),
            ("1,000", "1000"),
            (r"-\frac{3}{4}", "-0.75"),
            (r"\frac{-3}{4}", "-3/4"),
            (r"\frac{\frac{1}{2}}{2}", "0.25"),
        ] {
            assert!(math_equiv(a, b), "{a} vs {b}");
            assert!(math_equiv(b, a), "{b} vs {a}");
        }
        assert!(!math_equiv("0.5", "0.50001"));
        assert!(!math_equiv("1/3", "0.333333"));
        assert!(!math_equiv("2", "-2"));
    }

    #[test]
    fn tuples_intervals_and_lists() {
        assert!(math_equiv(
            r"\left(3, \frac{\pi}{2}\right)",
            r"(3,\frac{\pi}{2})"
        ));
        assert!(math_equiv("(0.5, 2)", r"(\frac12, 2.0)"));
        assert!(!math_equiv("(1, 2)", "(2, 1)"));
        assert!(!math_equiv("(1, 2]", "(1, 2)"));
        assert!(math_equiv("[1, 2)", r"\left[ 1, 2 \right)"));
        assert!(math_equiv("1, -2", "-2, 1"));
        assert!(math_equiv(r"\{1,2\}", r"\{2,1\}"));
        assert!(!math_equiv("1, 2", "1, 2, 3"));
    }

    #[test]
    fn non_numeric_answers_compare_by_normal_form() {
        assert!(math_equiv(r"2\sqrt{3}", r"2 \sqrt 3"));
        assert!(math_equiv(r"\text{Evelyn}", "Evelyn"));
        assert!(!math_equiv(r"\sqrt{3}", r"\sqrt{2}"));
    }

    #[test]
    fn pathological_inputs_terminate() {
        let deep = format!("{}1{}", r"\frac{".repeat(500), "}{2}".repeat(500));
        let _ = math_equiv(&deep, "0");
        // Found by the property test: a lone brace must not underflow a length.
        assert!(!math_equiv("{", "1"));
        assert!(math_equiv("{", "{"));
        assert!(numeric_value("{").is_none());
        let wide = vec!["1"; 10_000].join(",");
        assert!(!math_equiv(&wide, "1"));
        let huge = "9".repeat(5000);
        assert!(math_equiv(&huge, &huge));
        assert!(!math_equiv(&huge, &"9".repeat(4999)));
    }
}
