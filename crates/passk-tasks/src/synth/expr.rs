//! A small, safe parser and exact evaluator for countdown answers: integers, `+ - * /` and
//! parentheses, with bounded length and nesting so that any input finishes in linear time.

use crate::rational::Rational;

/// Longest expression accepted (in bytes, after trimming).
pub const MAX_EXPR_LEN: usize = 256;
/// Deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// A parsed and evaluated expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// Its exact value.
    pub value: Rational,
    /// The integer literals it uses, in order of appearance.
    pub numbers: Vec<u64>,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression is empty.
    #[error("empty expression")]
    Empty,
    /// Longer than [`MAX_EXPR_LEN`].
    #[error("expression longer than {MAX_EXPR_LEN} bytes")]
    TooLong,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("parentheses nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A syntax error at a byte offset.
    #[error("syntax error at byte {at}: {what}")]
    Syntax {
        /// Byte offset of the problem.
        at: usize,
        /// What was expected or found.
        what: &'static str,
    },
    /// Division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An intermediate value overflowed.
    #[error("arithmetic overflow")]
    Overflow,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    numbers: Vec<u64>,
}

/// Parses and evaluates `src` exactly.
pub fn evaluate(src: &str) -> Result<Evaluated, ExprError> {
    let src = src.trim();
    if src.is_empty() {
        return Err(ExprError::Empty);
    }
    if src.len() > MAX_EXPR_LEN {
        return Err(ExprError::TooLong);
    }
    let mut p = Parser {
        s: src.as_bytes(),
        pos: 0,
        depth: 0,
        numbers: Vec::new(),
    };
    let value = p.expr()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(ExprError::Syntax {
            at: p.pos,
            what: "unexpected character",
        });
    }
    Ok(Evaluated {
        value,
        numbers: p.numbers,
    })
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<Rational, ExprError> {
        let mut acc = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            acc = if op == b'+' {
                acc.checked_add(rhs)
            } else {
                acc.checked_sub(rhs)
            }
            .ok_or(ExprError::Overflow)?;
        }
        Ok(acc)
    }

    fn term(&mut self) -> Result<Rational, ExprError> {
        let mut acc = self.factor()?;
        while let Some(op @ (b'*' | b'/' | b'x')) = self.peek() {
            self.pos += 1;
            let rhs = self.factor()?;
            acc = if op == b'/' {
                if rhs.numer() == 0 {
                    return Err(ExprError::DivisionByZero);
                }
                acc.checked_div(rhs)
            } else {
                acc.checked_mul(rhs)
            }
            .ok_or(ExprError::Overflow)?;
        }
        Ok(acc)
    }

    fn factor(&mut self) -> Result<Rational, ExprError> {
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(ExprError::TooDeep);
                }
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(b')') {
                    return Err(ExprError::Syntax {
                        at: self.pos,
                        what: "expected ')'",
                    });
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(v)
            }
            Some(b) if b.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let digits = &self.s[start..self.pos];
                if digits.len() > 18 {
                    return Err(ExprError::Overflow);
                }
                let n = digits
                    .iter()
                    .fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
                self.numbers.push(n);
                Ok(Rational::int(i128::from(n)))
            }
            Some(_) => Err(ExprError::Syntax {
                at: self.pos,
                what: "expected a number or '('",
            }),
            None => Err(ExprError::Syntax {
                at: self.pos,
                what: "unexpected end",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Rational {
        evaluate(s).unwrap().value
    }

    #[test]
    fn evaluates_with_precedence_and_parentheses() {
        assert_eq!(val("2+3*4"), Rational::int(14));
        assert_eq!(val("(2+3)*4"), Rational::int(20));
        assert_eq!(val(" 8 / 3 * 3 "), Rational::int(8));
        assert_eq!(val("10-4-3"), Rational::int(3));
        assert_eq!(val("007+1"), Rational::int(8));
        assert_eq!(evaluate("(12+3)*4").unwrap().numbers, vec![12, 3, 4]);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert_eq!(evaluate(""), Err(ExprError::Empty));
        assert_eq!(evaluate("1/0"), Err(ExprError::DivisionByZero));
        assert_eq!(evaluate("1/(2-2)"), Err(ExprError::DivisionByZero));
        assert!(matches!(evaluate("1+"), Err(ExprError::Syntax { .. })));
        assert!(matches!(evaluate("(1+2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(evaluate("1 2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(evaluate("-1"), Err(ExprError::Syntax { .. })));
        assert_eq!(evaluate(&"1+".repeat(200)), Err(ExprError::TooLong));
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(evaluate(&deep), Err(ExprError::TooDeep));
        assert_eq!(evaluate("99999999999999999999"), Err(ExprError::Overflow));
        let big = ["999999999999999999"; 12].join("*");
        assert_eq!(evaluate(&big), Err(ExprError::Overflow));
    }
}
