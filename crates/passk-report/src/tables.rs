//! Tables rendered as CSV, Markdown and LaTeX (booktabs), with deterministic number formatting.

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::load::write_atomic;

/// A table: a named grid of already-formatted cells with a caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// File stem of the table (`kstar` → `kstar.csv`, `kstar.md`, `kstar.tex`).
    pub name: String,
    /// One-paragraph caption saying what the table shows.
    pub caption: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells; each row has one cell per column.
    pub rows: Vec<Vec<String>>,
    /// Where each column appears, by index; a column not listed appears everywhere.
    pub shown: Vec<(usize, Shown)>,
}

/// Where a column of a [`Table`] appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Only in the CSV: numbers at full precision for programs (e.g. `ci_low`, `ci_high`).
    CsvOnly,
    /// Only in Markdown and LaTeX: the rounded text a reader sees (e.g. `[0.033, 0.140]`).
    TextOnly,
}

impl Table {
    /// An empty table with the given name, caption and column headers.
    pub fn new(name: &str, caption: &str, columns: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            caption: caption.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            shown: Vec::new(),
        }
    }

    /// The indices of the columns shown in the CSV (`csv`) or in Markdown and LaTeX.
    fn visible(&self, csv: bool) -> Vec<usize> {
        let hidden = if csv { Shown::TextOnly } else { Shown::CsvOnly };
        (0..self.columns.len())
            .filter(|c| !self.shown.iter().any(|&(i, s)| i == *c && s == hidden))
            .collect()
    }

    /// `cells` cut down to the columns `keep`.
    fn pick(cells: &[String], keep: &[usize]) -> Vec<String> {
        keep.iter()
            .map(|&c| cells.get(c).cloned().unwrap_or_default())
            .collect()
    }

    /// Checks that every row has one cell per column.
    pub fn validate(&self) -> Result<(), ReportError> {
        for (i, row) in self.rows.iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(ReportError::invalid(
                    &self.name,
                    format!(
                        "table row {i} has {} cells but the table has {} columns (bug in the table builder)",
                        row.len(),
                        self.columns.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The table as RFC 4180 CSV with a header row (the caption is not included).
    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let keep = self.visible(true);
        // Writing to a Vec cannot fail.
        w.write_record(Self::pick(&self.columns, &keep))
            .expect("csv to memory");
        for row in &self.rows {
            w.write_record(Self::pick(row, &keep))
                .expect("csv to memory");
        }
        let bytes = w.into_inner().expect("csv to memory");
        String::from_utf8(bytes).expect("csv of UTF-8 strings is UTF-8")
    }

    /// The table as a GitHub-flavoured Markdown pipe table preceded by its caption.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "**{}**: {}\n\n",
            escape_markdown(&self.name),
            escape_markdown(&self.caption)
        );
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| escape_markdown(c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let keep = self.visible(false);
        out.push_str(&line(&Self::pick(&self.columns, &keep)));
        let rule: Vec<&str> = keep
            .iter()
            .map(|&c| {
                if self.numeric_column(c) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&line(&Self::pick(row, &keep)));
        }
        out
    }

    /// The table as a LaTeX `table` float with a booktabs `tabular`, caption and
    /// `\label{tab:<name>}`; every cell is escaped, and the symbols pdflatex's text fonts lack
    /// are set in math. A tabular wider than the text is scaled down to `\linewidth` (never
    /// up). Needs `\usepackage{booktabs}` and `\usepackage{graphicx}` (tests/latex.rs compiles
    /// them and fails on an overfull box).
    pub fn to_latex(&self) -> String {
        self.to_latex_in("")
    }

    /// [`Table::to_latex`] with the label `tab:<experiment>-<name>`, unique across a figure
    /// set whose experiments each have a table of this name.
    pub fn to_latex_in(&self, experiment: &str) -> String {
        let keep = self.visible(false);
        let spec: String = keep
            .iter()
            .map(|&c| if self.numeric_column(c) { 'r' } else { 'l' })
            .collect();
        let line = |cells: &[String]| {
            let mut cells: Vec<String> = cells.iter().map(|c| escape_latex(c)).collect();
            // After `\midrule` or `\\`, a `[` would open their optional argument.
            if let Some(first) = cells.first_mut().filter(|c| c.starts_with('[')) {
                first.insert_str(0, "{}");
            }
            format!("{} \\\\\n", cells.join(" & "))
        };
        let mut out = String::new();
        out.push_str("\\begin{table}[htbp]\n\\centering\n");
        out.push_str(&format!("\\caption{{{}}}\n", escape_latex(&self.caption)));
        // A label is read as a control-sequence name, where `\_` is an error: it gets the
        // name itself, other characters than letters, digits, `-`, `_`, `.` made `-`.
        let full = if experiment.is_empty() {
            self.name.clone()
        } else {
            format!("{experiment}-{}", self.name)
        };
        let label: String = full
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        out.push_str(&format!("\\label{{tab:{label}}}\n"));
        // `\width` is the tabular's natural width inside `\resizebox`: scale only when wider.
        out.push_str("\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n");
        out.push_str(&format!("\\begin{{tabular}}{{{spec}}}\n\\toprule\n"));
        out.push_str(&line(&Self::pick(&self.columns, &keep)));
        out.push_str("\\midrule\n");
        for row in &self.rows {
            out.push_str(&line(&Self::pick(row, &keep)));
        }
        out.push_str("\\bottomrule\n\\end{tabular}}\n\\end{table}\n");
        out
    }

    /// Writes `<name>.csv`, `<name>.md` and `<name>.tex` into `dir` atomically and returns
    /// their paths in that order.
    pub fn write_all(&self, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        self.validate()?;
        // The folder is the experiment's (figures/<experiment>/): it makes the label unique.
        let experiment = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut paths = Vec::new();
        for (ext, text) in [
            ("csv", self.to_csv()),
            ("md", self.to_markdown()),
            ("tex", self.to_latex_in(&experiment)),
        ] {
            let path = dir.join(format!("{}.{ext}", self.name));
            write_atomic(&path, text.as_bytes())?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Whether every non-empty cell of column `c` starts like a number (right-aligned).
    fn numeric_column(&self, c: usize) -> bool {
        let mut any = false;
        for row in &self.rows {
            let cell = row.get(c).map(String::as_str).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            let first = cell.split_whitespace().next().unwrap_or("");
            if first.parse::<f64>().is_err() {
                return false;
            }
            any = true;
        }
        any
    }
}

/// `x` with exactly `digits` decimals; never `-0.000` (a value that rounds to zero prints
/// unsigned), and `nan`, `inf`, `-inf` for non-finite values.
pub fn fmt_f(x: f64, digits: usize) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let s = format!("{x:.digits$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `x` in scientific notation with `digits` mantissa decimals (`1.23e-4`); never `-0.00e0`.
pub fn fmt_e(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return fmt_f(x, digits);
    }
    if x == 0.0 {
        return format!("{:.digits$e}", 0.0);
    }
    format!("{x:.digits$e}")
}

/// A parameter value in its shortest round-trip form (`0.5`, `6`, `0.25`); `-0` prints as `0`.
pub fn fmt_param(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    format!("{x}")
}

/// `mean [min, max]` of `values` with `digits` decimals, just the value when all are equal,
/// and an empty string when there are none.
pub fn fmt_mean_range(values: &[f64], digits: usize) -> String {
    let Some(s) = Summary::of(values) else {
        return String::new();
    };
    let (mean, lo, hi) = (
        fmt_f(s.mean, digits),
        fmt_f(s.min, digits),
        fmt_f(s.max, digits),
    );
    if lo == hi {
        mean
    } else {
        format!("{mean} [{lo}, {hi}]")
    }
}

/// Mean, minimum and maximum of a non-empty list of numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// The summary of `values`, or `None` when empty. Sums in the given order.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Self { mean, min, max })
    }
}

/// `s` with LaTeX's special characters escaped for text mode.
pub fn escape_latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '\n' | '\r' => out.push(' '),
            _ => match math_symbol(c) {
                Some(command) => {
                    out.push_str("\\ensuremath{");
                    out.push_str(command);
                    out.push('}');
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// The math-mode command of a symbol the tables use that pdflatex's text fonts lack (with
/// `inputenc`'s default UTF-8 such a character is an error, not a glyph).
fn math_symbol(c: char) -> Option<&'static str> {
    Some(match c {
        'Δ' => "\\Delta",
        '∇' => "\\nabla",
        '−' => "-",
        '≥' => "\\geq",
        '≤' => "\\leq",
        '⟨' => "\\langle",
        '⟩' => "\\rangle",
        '×' => "\\times",
        '±' => "\\pm",
        '≈' => "\\approx",
        '≠' => "\\neq",
        '→' => "\\to",
        '·' => "\\cdot",
        'κ' => "\\kappa",
        'δ' => "\\delta",
        'θ' => "\\theta",
        'η' => "\\eta",
        '∞' => "\\infty",
        _ => return None,
    })
}

/// `s` made safe for one Markdown table cell: pipes and emphasis characters escaped,
/// newlines turned into spaces.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(
            "demo_1",
            "J_1 & J_k at 50% | k",
            &["name", "value", "range"],
        );
        t.rows
            .push(vec!["a_b".into(), "1.500".into(), "1.0 [0.5, 2.0]".into()]);
        t.rows
            .push(vec!["x|y, \"z\"".into(), "-2.000".into(), "".into()]);
        t
    }

    #[test]
    fn fmt_f_rounds_and_never_prints_negative_zero() {
        assert_eq!(fmt_f(1.23456, 3), "1.235");
        assert_eq!(fmt_f(-0.0001, 3), "0.000");
        assert_eq!(fmt_f(-0.0, 2), "0.00");
        assert_eq!(fmt_f(-0.0006, 3), "-0.001");
        assert_eq!(fmt_f(-2.5, 0), "-2");
        assert_eq!(fmt_f(f64::NAN, 3), "nan");
        assert_eq!(fmt_f(f64::NEG_INFINITY, 3), "-inf");
        assert_eq!(fmt_e(-0.0, 2), "0.00e0");
        assert_eq!(fmt_e(1.234e-4, 2), "1.23e-4");
        assert_eq!(fmt_param(0.5), "0.5");
        assert_eq!(fmt_param(6.0), "6");
        assert_eq!(fmt_param(-0.0), "0");
    }

    #[test]
    fn mean_range_formatting() {
        assert_eq!(fmt_mean_range(&[], 2), "");
        assert_eq!(fmt_mean_range(&[0.5, 0.5], 2), "0.50");
        assert_eq!(fmt_mean_range(&[0.1, 0.2, 0.6], 2), "0.30 [0.10, 0.60]");
        let s = Summary::of(&[3.0, -1.0, 1.0]).unwrap();
        assert_eq!((s.mean, s.min, s.max), (1.0, -1.0, 3.0));
    }

    #[test]
    fn csv_quotes_fields() {
        let csv = sample().to_csv();
        assert_eq!(
            csv,
            "name,value,range\na_b,1.500,\"1.0 [0.5, 2.0]\"\n\"x|y, \"\"z\"\"\",-2.000,\n"
        );
    }

    #[test]
    fn markdown_escapes_and_aligns() {
        let md = sample().to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "**demo\\_1**: J\\_1 & J\\_k at 50% \\| k");
        assert_eq!(lines[2], "| name | value | range |");
        assert_eq!(lines[3], "| --- | ---: | ---: |");
        assert_eq!(lines[4], "| a\\_b | 1.500 | 1.0 \\[0.5, 2.0\\] |");
        assert_eq!(lines[5], "| x\\|y, \"z\" | -2.000 |  |");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn latex_escapes_specials_and_uses_booktabs() {
        let tex = sample().to_latex();
        assert!(
            tex.contains("\\caption{J\\_1 \\& J\\_k at 50\\% | k}"),
            "{tex}"
        );
        assert!(tex.contains("\\label{tab:demo_1}"), "{tex}");
        assert!(tex
            .contains("\\begin{tabular}{lrr}\n\\toprule\nname & value & range \\\\\n\\midrule\n"));
        assert!(tex.contains("a\\_b & 1.500 & 1.0 [0.5, 2.0] \\\\\n"));
        assert!(tex.ends_with("\\bottomrule\n\\end{tabular}}\n\\end{table}\n"));
        assert!(sample()
            .to_latex_in("tiny-dose")
            .contains("\\label{tab:tiny-dose-demo_1}"));
        assert_eq!(
            escape_latex("Δ pass@1 ≥ −0.1, ⟨∇J_k, ∇J_1⟩"),
            "\\ensuremath{\\Delta} pass@1 \\ensuremath{\\geq} \\ensuremath{-}0.1, \\ensuremath{\\langle}\\ensuremath{\\nabla}J\\_k, \\ensuremath{\\nabla}J\\_1\\ensuremath{\\rangle}"
        );
        let mut t = Table::new("b", "c", &["ci", "x"]);
        t.rows.push(vec!["[0.1, 0.2]".into(), "1".into()]);
        // After `\midrule` (or `\\`), a `[` would open an optional argument.
        let tex = t.to_latex();
        assert!(tex.contains("\\midrule\n{}[0.1, 0.2] & 1 \\\\\n"), "{tex}");
        assert_eq!(
            escape_latex("\\ # $ ~ ^ {x} <>"),
            "\\textbackslash{} \\# \\$ \\textasciitilde{} \\textasciicircum{} \\{x\\} \\textless{}\\textgreater{}"
        );
    }

    #[test]
    fn write_all_writes_three_files_and_rejects_ragged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample();
        let paths = t.write_all(dir.path()).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["demo_1.csv", "demo_1.md", "demo_1.tex"]);
        assert_eq!(std::fs::read_to_string(&paths[0]).unwrap(), t.to_csv());
        let mut bad = t.clone();
        bad.rows.push(vec!["only one".into()]);
        let err = bad.write_all(dir.path()).unwrap_err().to_string();
        assert!(err.contains("row 2 has 1 cells"), "{err}");
    }

    #[test]
    fn csv_only_and_text_only_columns_go_where_they_belong() {
        let mut t = Table::new("ci", "CIs.", &["x", "95% CI", "ci_low", "ci_high"]);
        t.rows.push(vec![
            "0.1".into(),
            "[0.033, 0.140]".into(),
            "0.03323912".into(),
            "0.14040688".into(),
        ]);
        t.shown = vec![
            (1, Shown::TextOnly),
            (2, Shown::CsvOnly),
            (3, Shown::CsvOnly),
        ];
        assert_eq!(t.to_csv(), "x,ci_low,ci_high\n0.1,0.03323912,0.14040688\n");
        let md = t.to_markdown();
        assert!(md.contains("| x | 95% CI |"), "{md}");
        assert!(
            !md.contains("ci\\_low") && !md.contains("0.0332391"),
            "{md}"
        );
        let tex = t.to_latex();
        assert!(tex.contains("\\begin{tabular}{rl}"), "{tex}");
        assert!(!tex.contains("0.0332391"), "{tex}");
    }
}
