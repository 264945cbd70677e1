//! Generated blocks in README.md and docs/*.md: a block between `<!-- generated: PATH -->` and
//! `<!-- end generated -->` holds the contents of PATH (relative to the figures folder), so the
//! documents' results are copied from figures/, never typed by hand. The documents are the README
//! beside the figures folder (`figures/../README.md`) and every Markdown file directly in the
//! `docs` folder beside it (`figures/../docs/*.md`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const OPEN: &str = "<!-- generated: ";
const CLOSE: &str = "<!-- end generated -->";

/// `text` with every generated block refilled from the files under `root`.
fn refill(text: &str, root: &Path) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after_open = &rest[start + OPEN.len()..];
        let Some(end_of_tag) = after_open.find("-->") else {
            bail!("a `{OPEN}` marker is not closed by `-->`");
        };
        let path = after_open[..end_of_tag].trim();
        let body_start = start + OPEN.len() + end_of_tag + 3;
        let Some(close) = rest[body_start..].find(CLOSE) else {
            bail!("the generated block of {path} has no `{CLOSE}`");
        };
        let source = root.join(path);
        let content = std::fs::read_to_string(&source).with_context(|| {
            format!(
                "cannot read {} for a generated block; run `cargo xtask report`",
                source.display()
            )
        })?;
        out.push_str(&rest[..body_start]);
        out.push('\n');
        out.push_str(content.trim_end());
        out.push('\n');
        out.push_str(CLOSE);
        rest = &rest[body_start + close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The README that belongs to `figures`: `README.md` in the folder holding it.
pub fn readme_of(figures: &Path) -> PathBuf {
    figures.parent().unwrap_or(Path::new("")).join("README.md")
}

/// The documents whose generated blocks belong to `figures`: the README beside it (when it
/// exists), then every `*.md` file directly in the `docs` folder beside it, sorted by name.
pub fn documents_of(figures: &Path) -> Result<Vec<PathBuf>> {
    let readme = readme_of(figures);
    let mut documents: Vec<PathBuf> = Vec::new();
    if readme.is_file() {
        documents.push(readme);
    }
    let docs = figures.parent().unwrap_or(Path::new("")).join("docs");
    if docs.is_dir() {
        let mut pages = Vec::new();
        for entry in std::fs::read_dir(&docs).with_context(|| docs.display().to_string())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "md") && path.is_file() {
                pages.push(path);
            }
        }
        pages.sort();
        documents.extend(pages);
    }
    Ok(documents)
}

/// `document` refilled from the files under `figures`, with its current text.
fn refilled(document: &Path, figures: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(document)
        .with_context(|| format!("cannot read {}", document.display()))?;
    let fresh = refill(&text, figures).with_context(|| document.display().to_string())?;
    Ok((text, fresh))
}

/// Refills the generated blocks of every document of `figures` ([`documents_of`]) from the files
/// under `figures`; returns the documents that changed. Nothing is written unless every
/// document's blocks can be refilled.
pub fn sync_all(figures: &Path) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for document in documents_of(figures)? {
        let (text, fresh) = refilled(&document, figures)?;
        if fresh != text {
            changed.push((document, fresh));
        }
    }
    for (document, fresh) in &changed {
        passk_schema::write_atomic(document, fresh.as_bytes())?;
    }
    Ok(changed.into_iter().map(|(document, _)| document).collect())
}

/// Refills the generated blocks of the README beside `figures` and of the `docs/*.md` beside it
/// ([`sync_all`]); returns whether any of them changed.
pub fn sync(figures: &Path) -> Result<bool> {
    Ok(!sync_all(figures)?.is_empty())
}

/// One problem for each document of `figures` ([`documents_of`]) with a generated block that
/// differs from its source.
pub fn verify(figures: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for document in documents_of(figures)? {
        let (text, fresh) = refilled(&document, figures)?;
        if fresh != text {
            problems.push(format!(
                "{}: a generated block differs from its source under figures/; run `cargo xtask report`",
                document.display()
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_refilled_and_staleness_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("figures")).unwrap();
        let figures = dir.path().join("figures");
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 1 |\n").unwrap();
        let readme = dir.path().join("README.md");
        assert_eq!(readme_of(&figures), readme);
        let text = "intro\n<!-- generated: t.md -->\nold\n<!-- end generated -->\nend\n";
        std::fs::write(&readme, text).unwrap();
        assert_eq!(verify(&figures).unwrap().len(), 1);
        assert!(sync(&figures).unwrap());
        let now = std::fs::read_to_string(&readme).unwrap();
        assert_eq!(
            now,
            "intro\n<!-- generated: t.md -->\n| a |\n|---|\n| 1 |\n<!-- end generated -->\nend\n"
        );
        assert!(verify(&figures).unwrap().is_empty());
        assert!(!sync(&figures).unwrap());
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 2 |\n").unwrap();
        assert_eq!(verify(&figures).unwrap().len(), 1);
        std::fs::write(
            &readme,
            "x <!-- generated: missing.md -->\n<!-- end generated -->",
        )
        .unwrap();
        assert!(sync(&figures).is_err());
    }

    #[test]
    fn docs_pages_beside_the_readme_are_refilled_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let figures = dir.path().join("figures");
        let docs = dir.path().join("docs");
        std::fs::create_dir_all(&figures).unwrap();
        std::fs::create_dir_all(docs.join("sub")).unwrap();
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 1 |\n").unwrap();
        let stale = "x\n<!-- generated: t.md -->\nold\n<!-- end generated -->\ny\n";
        let fresh = "x\n<!-- generated: t.md -->\n| a |\n|---|\n| 1 |\n<!-- end generated -->\ny\n";
        // Only `docs/*.md` counts: not a subfolder's pages, not other extensions.
        std::fs::write(docs.join("b.md"), stale).unwrap();
        std::fs::write(docs.join("a.md"), "no blocks here\n").unwrap();
        std::fs::write(docs.join("sub/c.md"), stale).unwrap();
        std::fs::write(docs.join("notes.txt"), stale).unwrap();

        // Without a README the docs pages are still documents.
        assert_eq!(
            documents_of(&figures).unwrap(),
            vec![docs.join("a.md"), docs.join("b.md")]
        );
        let problems = verify(&figures).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("b.md"), "{problems:?}");

        let readme = dir.path().join("README.md");
        std::fs::write(&readme, stale).unwrap();
        assert_eq!(
            documents_of(&figures).unwrap(),
            vec![readme.clone(), docs.join("a.md"), docs.join("b.md")]
        );
        assert_eq!(verify(&figures).unwrap().len(), 2);
        assert_eq!(
            sync_all(&figures).unwrap(),
            vec![readme.clone(), docs.join("b.md")]
        );
        assert_eq!(std::fs::read_to_string(&readme).unwrap(), fresh);
        assert_eq!(std::fs::read_to_string(docs.join("b.md")).unwrap(), fresh);
        assert_eq!(
            std::fs::read_to_string(docs.join("a.md")).unwrap(),
            "no blocks here\n"
        );
        assert_eq!(
            std::fs::read_to_string(docs.join("sub/c.md")).unwrap(),
            stale
        );
        assert_eq!(
            std::fs::read_to_string(docs.join("notes.txt")).unwrap(),
            stale
        );
        assert!(verify(&figures).unwrap().is_empty());
        assert!(!sync(&figures).unwrap());

        // A stale page is reported by name, and `sync` refreshes it.
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 2 |\n").unwrap();
        let problems = verify(&figures).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(sync(&figures).unwrap());
        assert!(std::fs::read_to_string(docs.join("b.md"))
            .unwrap()
            .contains("| 2 |"));

        // A page whose block has no source fails the whole sync, and nothing is written.
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 3 |\n").unwrap();
        let broken = "<!-- generated: missing.md -->\n<!-- end generated -->\n";
        std::fs::write(docs.join("z.md"), broken).unwrap();
        let e = format!("{:#}", sync(&figures).unwrap_err());
        assert!(e.contains("z.md") && e.contains("missing.md"), "{e}");
        assert!(std::fs::read_to_string(&readme).unwrap().contains("| 2 |"));
        assert!(verify(&figures).is_err());
    }
}
