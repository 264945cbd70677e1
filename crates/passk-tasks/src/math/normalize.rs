//! Normalisation and equivalence of MATH-style LaTeX answers.
//!
//! [`normalize`] rewrites an answer into a canonical string: spacing commands, `\left`/`\right`,
//! `\displaystyle`, degrees, `\%`, `\$`, units in a trailing `\text{…}`, `\text{…}` wrappers, a
//! leading `x =` or `x \in`, a trailing period and whitespace are dropped (one space is kept
//! where it ends a command name before a letter, as in `\pi r`); `\dfrac`/`\tfrac`
//! become `\frac`; the short arguments TeX allows (`\frac12`, `\sqrt3`, `\frac\pi2`, `x^2`,
//! `4210_5`) are braced (`\frac{1}{2}`, …) at any nesting depth; and a multiple-choice letter
//! `(C)` becomes `C`.
//!
//! Two answers are equivalent when their normalised strings are equal, when both are numbers
//! (integers, decimals with optional thousands commas, `a/b`, `\frac{a}{b}`, mixed numbers
//! `1\frac{4}{5}`) with the same exact rational value, when both are `a/b` or `\frac{a}{b}`
//! with the same numerator and denominator (`\pi/2` and `\frac{\pi}{2}`), when both are matrices
//! (`pmatrix`/`bmatrix`) of the same shape with equivalent entries, or when both are tuples,
//! intervals or lists whose brackets match and whose elements are equivalent in order (sets
//! `\{…\}` and lists without brackets in any order). A number never equals a list, so the
//! thousands separator in `1,500` cannot pair it with the list `500, 1`.
//!
//! Deliberate choices: `25\%` equals `25` (the percent sign is dropped, as the MATH answers omit
//! it inconsistently), not `0.25`; a leading single-symbol `y =` is dropped, so `y = 2x + 3`
//! equals `2x+3`; a comma followed by three digits is a thousands separator (`100,200` is one
//! number); `2\frac{1}{2}` is the mixed number 5/2 (only for a proper fraction after an
//! integer); `(1)` is not `1` (only a single letter loses its parentheses), and nothing is
//! simplified algebraically (`\frac{1}{\sqrt2}` is not `\frac{\sqrt2}{2}`).
//!
//! This file is about 700 lines, over the usual 600: it is one ordered set of rewrite rules, and
//! the order matters (bracing short arguments must see `\dfrac` already turned into `\frac`), so
//! the rules stay together where that order can be read top to bottom.

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

/// Byte length of the command name (ASCII letters) at the start of `s`.
fn name_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_alphabetic).count()
}

/// One pass over the control sequences: drops spacing commands (`\,` `\!` `\;` `\:` `\ `),
/// sizing and style commands (`\left`, `\right`, `\big…`, `\displaystyle`), `\%` and `\$`;
/// renames `\dfrac`/`\tfrac`/`\cfrac` to `\frac` and `\dbinom`/`\tbinom` to `\binom`. A `\\`
/// (row break) is kept as one token, so `\\ ` is not read as `\ `.
fn clean_commands(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let n = name_len(after);
        if n == 0 {
            let Some(c) = after.chars().next() else {
                out.push('\\');
                rest = "";
                break;
            };
            match c {
                ' ' | ',' | '!' | ';' | ':' | '%' | '$' => {}
                _ => {
                    out.push('\\');
                    out.push(c);
                }
            }
            rest = &after[c.len_utf8()..];
            continue;
        }
        let name = &after[..n];
        match name {
            "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "big" | "Big" | "biggl"
            | "biggr" | "displaystyle" | "textstyle" => {}
            "dfrac" | "tfrac" | "cfrac" => out.push_str("\\frac"),
            "dbinom" | "tbinom" => out.push_str("\\binom"),
            _ => {
                out.push('\\');
                out.push_str(name);
            }
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// Reads one TeX argument at the start of `rest` (after optional spaces) and appends it to
/// `out` in braced form: `{…}` (its inside normalised recursively), a control sequence (`\pi`)
/// or a single character. Returns the text after it, or `None` (appending nothing) when there is
/// no argument.
fn take_arg<'a>(rest: &'a str, out: &mut String, depth: usize) -> Option<&'a str> {
    let t = rest.trim_start();
    if let Some(inner) = t.strip_prefix('{') {
        let end = balanced_prefix(inner)?;
        out.push('{');
        if depth < MAX_DEPTH {
            out.push_str(&brace_args(&inner[..end], depth + 1));
        } else {
            out.push_str(&inner[..end]);
        }
        out.push('}');
        return Some(&inner[end + 1..]);
    }
    let len = if let Some(after) = t.strip_prefix('\\') {
        match name_len(after) {
            0 => 1 + after.chars().next()?.len_utf8(),
            n => 1 + n,
        }
    } else {
        let c = t.chars().next()?;
        if matches!(c, '}' | '^' | '_' | '&') {
            return None;
        }
        c.len_utf8()
    };
    out.push('{');
    out.push_str(&t[..len]);
    out.push('}');
    Some(&t[len..])
}

/// Braces the short arguments TeX allows: `\frac12` → `\frac{1}{2}`, `\sqrt3` → `\sqrt{3}`,
/// `\frac\pi2` → `\frac{\pi}{2}`, `\sqrt[3]2` → `\sqrt[3]{2}`, `x^2` → `x^{2}`, `4210_5` →
/// `4210_{5}`, also inside other arguments (`\frac{\sqrt3}{2}`, `\frac1{\sqrt2}`). Runs before
/// whitespace is removed, so `\frac 34` and `\frac{1}{2}` read as TeX reads them. Recursion is
/// capped at 16 levels; deeper arguments are copied as they are.
fn brace_args(s: &str, depth: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let nargs = match c {
            '\\' => {
                let n = name_len(&rest[1..]);
                if n == 0 {
                    // A control symbol (`\{`, `\\`): copy it whole.
                    let len = 1 + rest[1..].chars().next().map_or(0, char::len_utf8);
                    out.push_str(&rest[..len]);
                    rest = &rest[len..];
                    continue;
                }
                let name = &rest[1..1 + n];
                out.push_str(&rest[..1 + n]);
                rest = &rest[1 + n..];
                match name {
                    "frac" | "binom" => 2,
                    "sqrt" => {
                        // An optional index `[n]`, copied as it is.
                        let t = rest.trim_start();
                        if let Some(close) = t.strip_prefix('[').and_then(|r| r.find(']')) {
                            out.push_str(&t[..close + 2]);
                            rest = &t[close + 2..];
                        }
                        1
                    }
                    _ => 0,
                }
            }
            '^' | '_' => {
                out.push(c);
                rest = &rest[1..];
                1
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
                0
            }
        };
        for _ in 0..nargs {
            match take_arg(rest, &mut out, depth) {
                Some(r) => rest = r,
                None => break,
            }
        }
    }
    out
}

/// Drops a leading `x \in` (a single letter or command, then `\in`): `x \in [-2,7]` → `[-2,7]`.
fn drop_membership(s: &str) -> &str {
    let t = s.trim_start();
    let lhs = if let Some(after) = t.strip_prefix('\\') {
        1 + name_len(after)
    } else if t.starts_with(|c: char| c.is_ascii_alphabetic()) {
        1
    } else {
        return s;
    };
    if lhs == 1 && t.starts_with('\\') {
        return s;
    }
    let Some(after) = t[lhs..].trim_start().strip_prefix("\\in") else {
        return s;
    };
    if after.starts_with(|c: char| c.is_ascii_alphabetic()) || after.trim().is_empty() {
        return s;
    }
    after.trim_start()
}

/// Removes whitespace, except one space where it ends a control word before a letter
/// (`\pi r` stays `\pi r`; `\pir` would be another command).
fn squeeze_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false; // inside a control word such as `\pi`
    let mut after_backslash = false; // just after a backslash that starts a control sequence
    let mut pending = false; // whitespace seen right after a control word
    for c in s.chars() {
        if c.is_whitespace() {
            pending = pending || in_word;
            continue;
        }
        if pending && c.is_ascii_alphabetic() {
            out.push(' ');
            in_word = false;
        }
        pending = false;
        if after_backslash {
            // `\pi` starts a control word; `\\` and `\{` are control symbols.
            in_word = c.is_ascii_alphabetic();
            after_backslash = false;
        } else if c == '\\' {
            after_backslash = true;
            in_word = false;
        } else {
            in_word = in_word && c.is_ascii_alphabetic();
        }
        out.push(c);
    }
    out
}

/// Normalises a MATH answer string (see the module docs).
pub fn normalize(answer: &str) -> String {
    if answer.len() > MAX_ANSWER_LEN {
        return answer.to_string();
    }
    let mut s = answer.trim().trim_end_matches('.').to_string();
    s = replace_all(
        s,
        &[
            ("\n", " "),
            ("~", " "),
            ("\u{2212}", "-"),
            ("{,}", ","),
            ("^{\\circ}", ""),
            ("^\\circ", ""),
            ("°", ""),
        ],
    );
    s = clean_commands(&s);
    s = replace_all(s, &[("%", ""), ("$", "")]);
    // `90\circ` (a degree sign without `^`).
    if let Some(head) = s.trim_end().strip_suffix("\\circ") {
        if head.ends_with(|c: char| c.is_ascii_digit()) {
            s = head.to_string();
        }
    }
    s = drop_trailing_units(&s);
    for cmd in [
        "\\text", "\\textbf", "\\mbox", "\\mathrm", "\\textrm", "\\mathbf",
    ] {
        s = unwrap_command(&s, cmd);
    }
    s = drop_membership(&s).to_string();
    s = brace_args(&s, 0);
    s = squeeze_spaces(&s);
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
    // A multiple-choice letter: `(C)` (also from `\text{(C)}`, `\textbf{(C)}`) is `C`.
    let b = s.as_bytes();
    if b.len() == 3 && b[0] == b'(' && b[1].is_ascii_alphabetic() && b[2] == b')' {
        s = s[1..2].to_string();
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
    // A mixed number `1\frac{4}{5}` = 9/5: an integer, then a proper fraction.
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if int_len > 0 && s[int_len..].starts_with("\\frac{") {
        let whole = Rational::parse_decimal(&s[..int_len])?;
        let part = value_at(&s[int_len..], depth + 1)?;
        let proper = part > Rational::int(0) && part < Rational::int(1);
        return if proper {
            whole.checked_add(part)
        } else {
            None
        };
    }
    if let Some((a, b)) = s.split_once('/') {
        let num = Rational::parse_decimal(a)?;
        let den = Rational::parse_decimal(b)?;
        return num.checked_div(den);
    }
    None
}

/// Byte offsets of the characters of `s` that lie outside every `{…}` and `(…)` group.
fn top_level(s: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut depth = 0i32;
    let mut escaped = false;
    s.bytes().enumerate().filter(move |&(_, c)| {
        if escaped {
            escaped = false;
            return false;
        }
        let outside = depth == 0;
        match c {
            b'\\' => escaped = true,
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth -= 1,
            _ => {}
        }
        outside && !matches!(c, b'{' | b'(')
    })
}

/// `s` without one pair of parentheses or braces enclosing all of it.
fn strip_group(s: &str) -> &str {
    for (open, close) in [('(', ')'), ('{', '}')] {
        if s.len() >= 2 && s.starts_with(open) && s.ends_with(close) {
            let inner = &s[1..s.len() - 1];
            let mut depth = 0i32;
            let balanced = inner.bytes().all(|c| {
                if c == open as u8 {
                    depth += 1;
                } else if c == close as u8 {
                    depth -= 1;
                }
                depth >= 0
            });
            if balanced && depth == 0 {
                return inner;
            }
        }
    }
    s
}

/// Commands that may stand in the numerator of `a/b` without changing how it groups.
const PRODUCT_COMMANDS: [&str; 9] = [
    "pi", "sqrt", "frac", "cdot", "times", "theta", "alpha", "beta", "phi",
];

/// Whether `s` is one factor-only term: no top-level `+ - = , < >`, no `/`, and only
/// [`PRODUCT_COMMANDS`] at the top level (`3\sqrt{3}`, `\pi^{2}`, `2(x+1)`).
fn is_product(s: &str) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && top_level(s).all(|(i, c)| match c {
            b'+' | b'-' | b'=' | b',' | b'<' | b'>' | b'/' | b'[' | b']' | b'|' => false,
            b'\\' => {
                let n = name_len(&s[i + 1..]);
                n > 0 && PRODUCT_COMMANDS.contains(&&s[i + 1..i + 1 + n])
            }
            _ => b[i] != b'}' && b[i] != b')',
        })
}

/// Whether `s` is one token that can stand as a denominator after `/` with no doubt about the
/// grouping: a number, a letter, a command with at most one braced argument (`\pi`,
/// `\sqrt{2}`), each optionally raised to a braced power.
fn single_token(s: &str) -> bool {
    let base = match s.find("^{") {
        Some(at) if balanced_prefix(&s[at + 2..]).map(|e| at + 3 + e) == Some(s.len()) => &s[..at],
        _ => s,
    };
    if Rational::parse_decimal(base).is_some() {
        return !base.contains(',');
    }
    if base.len() == 1 {
        return base.as_bytes()[0].is_ascii_alphabetic();
    }
    let Some(after) = base.strip_prefix('\\') else {
        return false;
    };
    let n = name_len(after);
    let arg = &after[n..];
    n > 0
        && (arg.is_empty()
            || (arg.starts_with('{')
                && balanced_prefix(&arg[1..]).map(|e| e + 2) == Some(arg.len())))
}

/// Reads a normalised answer as a fraction `(negative, numerator, denominator)`: `\frac{a}{b}`
/// as a whole, or `a/b` with one top-level slash, `a` a product and `b` a single token (or
/// either in parentheses), so that `\pi/2`, `\sqrt{3}/2` and `(a+b)/2` read as `\frac{…}{…}`
/// but `1/2\pi` (ambiguous) does not. Signs in front and on the numerator are collected.
fn as_fraction(s: &str) -> Option<(bool, &str, &str)> {
    let (mut neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (num, den) = if let Some(rest) = body.strip_prefix("\\frac{") {
        let n_end = balanced_prefix(rest)?;
        let after = rest[n_end + 1..].strip_prefix('{')?;
        let d_end = balanced_prefix(after)?;
        if d_end + 1 != after.len() {
            return None;
        }
        (&rest[..n_end], &after[..d_end])
    } else {
        let mut slashes = top_level(body).filter(|&(_, c)| c == b'/');
        let (at, _) = slashes.next()?;
        if slashes.next().is_some() {
            return None;
        }
        let (a, b) = (strip_group(&body[..at]), &body[at + 1..]);
        let grouped = strip_group(b);
        let den = if grouped.len() < b.len() {
            grouped
        } else if single_token(b) {
            b
        } else {
            return None;
        };
        let signed = a.strip_prefix('-').unwrap_or(a);
        if !(is_product(signed) || a.len() < body[..at].len()) || den.is_empty() {
            return None;
        }
        (a, den)
    };
    let num = match num.strip_prefix('-') {
        Some(r) => {
            neg = !neg;
            r
        }
        None => num,
    };
    Some((neg, num, den))
}

/// The rows and cells of a `pmatrix` / `bmatrix` (normalised: no spaces).
fn matrix_cells(s: &str) -> Option<Vec<Vec<&str>>> {
    for env in ["pmatrix", "bmatrix"] {
        let Some(body) = s
            .strip_prefix(&format!("\\begin{{{env}}}") as &str)
            .and_then(|r| r.strip_suffix(&format!("\\end{{{env}}}") as &str))
        else {
            continue;
        };
        let mut rows: Vec<Vec<&str>> = body
            .split("\\\\")
            .map(|row| row.split('&').collect())
            .collect();
        if rows.len() > 1 && rows.last().is_some_and(|r| r.len() == 1 && r[0].is_empty()) {
            rows.pop();
        }
        if rows.iter().map(Vec::len).sum::<usize>() > MAX_ITEMS {
            return None;
        }
        return Some(rows);
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
    match (numeric_value(g), numeric_value(p)) {
        (Some(a), Some(b)) => return a == b,
        // A number is never a list, interval or expression (`1,500` is not `500,1`).
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    if let (Some((gn, ga, gb)), Some((pn, pa, pb))) = (as_fraction(g), as_fraction(p)) {
        return gn == pn
            && equiv_normalized(ga, pa, depth + 1)
            && equiv_normalized(gb, pb, depth + 1);
    }
    if let (Some(gm), Some(pm)) = (matrix_cells(g), matrix_cells(p)) {
        return gm.len() == pm.len()
            && gm.iter().zip(&pm).all(|(gr, pr)| {
                gr.len() == pr.len()
                    && gr
                        .iter()
                        .zip(pr)
                        .all(|(x, y)| equiv_normalized(x, y, depth + 1))
            });
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
#[path = "normalize_tests.rs"]
mod tests;
