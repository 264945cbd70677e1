//! Every LaTeX table the report writes (`figures/**/*.tex`) compiles under pdflatex in a
//! minimal document: `article`, `booktabs` and `graphicx`, the packages the tables say they
//! need (`passk_report::tables::Table::to_latex`). Ignored by default (pdflatex is a Debian
//! package, not a Rust one): `cargo xtask latex-test` installs it when missing and runs this.
//!
//! A table fails when pdflatex stops (`-halt-on-error`), or its log reports a character the
//! font lacks (which pdflatex otherwise drops silently) or an overfull box (a table wider than
//! the page). Labels must be unique across all tables. A document with an undefined command
//! must fail the same way, so a harness that cannot see errors cannot pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use passk_e2e::external::{
    figures_dir, files_with_suffix, find_program, out_dir, run_with_timeout,
};

/// The document around a table; `\tracinglostchars=2` logs every character the font lacks.
const PREAMBLE: &str =
    "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\tracinglostchars=2\n\\begin{document}\n";

/// Compiles `body` in the minimal document under `dir`; `Err` holds pdflatex's error lines.
fn compile(pdflatex: &Path, dir: &Path, body: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).unwrap();
    let tex = dir.join("table.tex");
    std::fs::write(&tex, format!("{PREAMBLE}{body}\\end{{document}}\n")).unwrap();
    let output = run_with_timeout(
        Command::new(pdflatex)
            .current_dir(dir)
            .args([
                "-interaction=nonstopmode",
                "-halt-on-error",
                "-no-shell-escape",
            ])
            .arg("table.tex"),
        Duration::from_secs(120),
    );
    let log = std::fs::read_to_string(dir.join("table.log")).unwrap_or_default();
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.starts_with('!')
                || l.contains("Missing character")
                || l.starts_with("Overfull \\hbox")
        })
        .collect();
    let pdf = dir.join("table.pdf");
    if output.status.success() && problems.is_empty() && pdf.is_file() {
        Ok(pdf)
    } else {
        Err(format!(
            "pdflatex {}: {}",
            output.status,
            if problems.is_empty() {
                String::from_utf8_lossy(&output.stdout).into_owned()
            } else {
                problems.join(" | ")
            }
        ))
    }
}

#[test]
#[ignore = "needs pdflatex; run cargo xtask latex-test"]
fn every_report_table_compiles_under_pdflatex() {
    let pdflatex = find_program("PASSK_PDFLATEX", &["pdflatex"], "latex-test");
    let figures = figures_dir();
    let work = out_dir(env!("CARGO_TARGET_TMPDIR"), "latex-test");

    let broken = compile(&pdflatex, &work.join("self-check"), "\\undefinedcommand\n");
    assert!(broken.is_err(), "an undefined command compiled: {broken:?}");

    let tables = files_with_suffix(&figures, ".tex");
    assert!(
        !tables.is_empty(),
        "no .tex table under {}",
        figures.display()
    );
    let mut failed = Vec::new();
    let mut labels = std::collections::BTreeMap::new();
    for table in &tables {
        let body = std::fs::read_to_string(table).unwrap();
        for label in body.split("\\label{").skip(1) {
            let label = label.split('}').next().unwrap_or_default().to_string();
            if let Some(other) = labels.insert(label.clone(), table.clone()) {
                failed.push(format!(
                    "label {label} is in both {} and {}",
                    other.display(),
                    table.display()
                ));
            }
        }
    }
    for table in &tables {
        let rel = table.strip_prefix(&figures).unwrap().display().to_string();
        let body = std::fs::read_to_string(table).unwrap();
        let dir = work.join(rel.replace('/', "__").trim_end_matches(".tex"));
        match compile(&pdflatex, &dir, &body) {
            Ok(_) => println!("latex-test: ok     {rel}"),
            Err(why) => {
                println!("latex-test: FAILED {rel}: {why}");
                failed.push(format!("{rel}: {why}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} tables do not compile (documents and logs under {}):\n{}",
        failed.len(),
        tables.len(),
        work.display(),
        failed.join("\n")
    );
    println!(
        "latex-test: all {} tables compile under pdflatex (documents under {})",
        tables.len(),
        work.display()
    );
}
