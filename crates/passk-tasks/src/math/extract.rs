//! Finding the answer inside a solution or completion: `#### N`, the last `\boxed{…}` /
//! `\fbox{…}` (nested braces), or the last number. All scans are linear in the input.

/// Why an answer could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// Found this answer text.
    Found(String),
    /// Nothing that looks like an answer.
    Missing,
    /// Something was found but is malformed (e.g. unbalanced braces).
    Malformed(&'static str),
}

impl Extract {
    /// The found text, if any.
    pub fn found(self) -> Option<String> {
        match self {
            Extract::Found(s) => Some(s),
            _ => None,
        }
    }
}

/// The text after the last `####` up to the end of its line, trimmed (GSM8K's answer line).
pub fn after_hashes(s: &str) -> Option<&str> {
    let at = s.rfind("####")?;
    let rest = &s[at + 4..];
    let line = rest.split('\n').next().unwrap_or("");
    Some(line.trim())
}

/// The content of the last `\boxed{…}`, `\boxed …` or `\fbox{…}` in `s`.
pub fn last_boxed(s: &str) -> Extract {
    let b = s.rfind("\\boxed").map(|i| (i, "\\boxed".len()));
    let f = s.rfind("\\fbox").map(|i| (i, "\\fbox".len()));
    let (start, len) = match (b, f) {
        (Some(x), Some(y)) => {
            if x.0 > y.0 {
                x
            } else {
                y
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Extract::Missing,
    };
    let rest = &s[start + len..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if let Some(inner) = trimmed.strip_prefix('{') {
        match balanced_prefix(inner) {
            Some(end) => Extract::Found(inner[..end].trim().to_string()),
            None => Extract::Malformed("unbalanced braces after \\boxed"),
        }
    } else if rest.starts_with(' ') {
        // `\boxed 5`: up to the next `$` or whitespace.
        let tok: String = trimmed
            .chars()
            .take_while(|c| *c != '$' && !c.is_whitespace())
            .collect();
        if tok.is_empty() {
            Extract::Malformed("empty \\boxed")
        } else {
            Extract::Found(tok)
        }
    } else {
        Extract::Malformed("\\boxed without an argument")
    }
}

/// Byte length of the brace-balanced prefix of `s` (which starts just after an opening `{`),
/// i.e. the index of the matching `}`. Escaped braces (`\{`, `\}`) do not count.
pub fn balanced_prefix(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The last number in `s` (digits with optional sign, thousands commas and decimals), as text.
pub fn last_number(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            let mut start = i;
            if start > 0 && b[start - 1] == b'-' {
                start -= 1;
            }
            let mut j = i;
            while j < b.len() {
                let c = b[j];
                // Thousands commas, a decimal point, or a fraction bar (`1/2`) inside a number.
                let sep = (c == b',' || c == b'.' || c == b'/')
                    && j + 1 < b.len()
                    && b[j + 1].is_ascii_digit();
                if c.is_ascii_digit() || sep {
                    j += 1;
                } else {
                    break;
                }
            }
            best = Some((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    best.map(|(a, e)| s[a..e].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hash_answers() {
        assert_eq!(after_hashes("so 9*2=18\n#### 18"), Some("18"));
        assert_eq!(after_hashes("#### 1\n#### 2\nmore"), Some("2"));
        assert_eq!(after_hashes("none"), None);
    }

    #[test]
    fn finds_last_boxed_with_nesting() {
        let s = r"first \boxed{1} then $\boxed{\frac{1}{2}}$.";
        assert_eq!(last_boxed(s), Extract::Found(r"\frac{1}{2}".into()));
        assert_eq!(last_boxed(r"\fbox{ 7 }"), Extract::Found("7".into()));
        assert_eq!(last_boxed(r"$\boxed 5$"), Extract::Found("5".into()));
        assert_eq!(
            last_boxed(r"\boxed{\{1,2\}}"),
            Extract::Found(r"\{1,2\}".into())
        );
        assert_eq!(last_boxed("nothing"), Extract::Missing);
        assert!(matches!(
            last_boxed(r"\boxed{\frac{1}{2}"),
            Extract::Malformed(_)
        ));
        assert!(matches!(last_boxed(r"\boxed"), Extract::Malformed(_)));
    }

    #[test]
    fn finds_last_number() {
        assert_eq!(last_number("it costs $1,234.50."), Some("1,234.50".into()));
        assert_eq!(last_number("from 3 to -4"), Some("-4".into()));
        assert_eq!(last_number("ratio .5"), Some(".5".into()));
        assert_eq!(last_number("no digits"), None);
        assert_eq!(last_number("list 1, 2, 3"), Some("3".into()));
        assert_eq!(last_number("half is 1/2."), Some("1/2".into()));
    }
}
