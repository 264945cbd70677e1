//! Exact rational numbers on `i128` with checked arithmetic: used to compare numeric answers
//! without floating-point equality. Overflow is reported as `None`, never a panic.

use std::cmp::Ordering;
use std::fmt;

/// A reduced fraction `num / den` with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Rational {
    /// The integer `n`.
    pub fn int(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    /// `num / den`, reduced; `None` when `den == 0` or on overflow.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den);
        let (mut n, mut d) = (num / g.max(1), den / g.max(1));
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Self { num: n, den: d })
    }

    /// The numerator (sign carrier).
    pub fn numer(&self) -> i128 {
        self.num
    }

    /// The denominator (always positive).
    pub fn denom(&self) -> i128 {
        self.den
    }

    /// Whether the value is an integer.
    pub fn is_integer(&self) -> bool {
        self.den == 1
    }

    /// Checked sum.
    pub fn checked_add(self, o: Self) -> Option<Self> {
        let g = gcd(self.den, o.den);
        let l = (self.den / g).checked_mul(o.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = o.num.checked_mul(l / o.den)?;
        Self::new(a.checked_add(b)?, l)
    }

    /// Checked difference.
    pub fn checked_sub(self, o: Self) -> Option<Self> {
        self.checked_add(o.checked_neg()?)
    }

    /// Checked negation.
    pub fn checked_neg(self) -> Option<Self> {
        Some(Self {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    /// Checked product.
    pub fn checked_mul(self, o: Self) -> Option<Self> {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        let n = (self.num / g1).checked_mul(o.num / g2)?;
        let d = (self.den / g2).checked_mul(o.den / g1)?;
        Self::new(n, d)
    }

    /// Checked quotient; `None` on division by zero.
    pub fn checked_div(self, o: Self) -> Option<Self> {
        if o.num == 0 {
            return None;
        }
        self.checked_mul(Self::new(o.den, o.num)?)
    }

    /// Parses a plain decimal such as `-12`, `3.50`, `.5`, `1,234.5` (commas only as thousands
    /// separators between digit groups of three). Returns `None` for anything else, including
    /// numbers too large for `i128`.
    pub fn parse_decimal(s: &str) -> Option<Self> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        if int_part.is_empty() && frac_part.is_none_or(|f| f.is_empty()) {
            return None;
        }
        let int_digits = strip_thousands(int_part)?;
        let frac_digits = frac_part.unwrap_or("");
        if !frac_digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if int_digits.len() + frac_digits.len() > 36 {
            return None;
        }
        let mut num: i128 = 0;
        for b in int_digits.bytes().chain(frac_digits.bytes()) {
            num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let den = 10i128.checked_pow(frac_digits.len() as u32)?;
        let r = Self::new(num, den)?;
        if neg {
            r.checked_neg()
        } else {
            Some(r)
        }
    }
}

/// Validates an integer part with optional thousands separators and returns its digits.
fn strip_thousands(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some(String::new());
    }
    if !s.contains(',') {
        return s.bytes().all(|b| b.is_ascii_digit()).then(|| s.to_string());
    }
    let groups: Vec<&str> = s.split(',').collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    let digits_ok = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    (first_ok && rest_ok && digits_ok).then(|| groups.concat())
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        // Compare a/b with c/d via a*d vs c*b, falling back to floats only on overflow.
        match (
            self.num.checked_mul(other.den),
            other.num.checked_mul(self.den),
        ) {
            (Some(l), Some(r)) => l.cmp(&r),
            _ => {
                let l = self.num as f64 / self.den as f64;
                let r = other.num as f64 / other.den as f64;
                l.partial_cmp(&r).unwrap_or(Ordering::Equal)
            }
        }
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(1, -2), r(-1, 2));
        assert_eq!(r(-1, 2).denom(), 2);
        assert!(Rational::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(r(1, 3).checked_add(r(1, 6)), Some(r(1, 2)));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)), Some(r(-1, 6)));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(r(4, 9)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(Rational::int(0)), None);
        assert!(Rational::int(i128::MAX)
            .checked_add(Rational::int(1))
            .is_none());
        assert!(Rational::int(i128::MAX)
            .checked_mul(Rational::int(2))
            .is_none());
    }

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(Rational::parse_decimal("0.5"), Some(r(1, 2)));
        assert_eq!(Rational::parse_decimal(".5"), Some(r(1, 2)));
        assert_eq!(Rational::parse_decimal("145.0"), Some(Rational::int(145)));
        assert_eq!(Rational::parse_decimal("-2.50"), Some(r(-5, 2)));
        assert_eq!(
            Rational::parse_decimal("1,234,567"),
            Some(Rational::int(1_234_567))
        );
        assert_eq!(Rational::parse_decimal("0.1"), Some(r(1, 10)));
        for bad in [
            "",
            ".",
            "1,23",
            "12a",
            "1.2.3",
            "--1",
            "1e5",
            &"9".repeat(50),
        ] {
            assert_eq!(Rational::parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn orders_values() {
        assert!(r(1, 3) < r(1, 2));
        assert!(r(-1, 2) < r(1, 3));
        assert_eq!(r(3, 6).cmp(&r(1, 2)), Ordering::Equal);
        assert_eq!(r(-3, 4).to_string(), "-3/4");
    }
}
