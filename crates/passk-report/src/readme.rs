//! Generated blocks in README.md: a block between `<!-- generated: PATH -->` and
//! `<!-- end generated -->` holds the contents of PATH (relative to the figures folder), so the
//! README's results are copied from figures/, never typed by hand. The README is the one beside
//! the figures folder (`figures/../README.md`).

use std::path::Path;

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
                "cannot read {} for a generated README block; run `cargo xtask report`",
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
pub fn readme_of(figures: &Path) -> std::path::PathBuf {
    figures.parent().unwrap_or(Path::new("")).join("README.md")
}

/// Refills the generated blocks of the README beside `figures` (when it exists) from the files
/// under `figures`; returns whether it changed.
pub fn sync(figures: &Path) -> Result<bool> {
    let readme = &readme_of(figures);
    if !readme.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(readme)?;
    let fresh = refill(&text, figures).with_context(|| readme.display().to_string())?;
    if fresh == text {
        return Ok(false);
    }
    passk_schema::write_atomic(readme, fresh.as_bytes())?;
    Ok(true)
}

/// A problem when a generated block of the README beside `figures` differs from its source.
pub fn verify(figures: &Path) -> Result<Option<String>> {
    let readme = &readme_of(figures);
    if !readme.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(readme)?;
    let fresh = refill(&text, figures).with_context(|| readme.display().to_string())?;
    Ok((fresh != text).then(|| {
        format!(
            "{}: a generated block differs from its source under figures/; run `cargo xtask report`",
            readme.display()
        )
    }))
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
        assert!(verify(&figures).unwrap().is_some());
        assert!(sync(&figures).unwrap());
        let now = std::fs::read_to_string(&readme).unwrap();
        assert_eq!(
            now,
            "intro\n<!-- generated: t.md -->\n| a |\n|---|\n| 1 |\n<!-- end generated -->\nend\n"
        );
        assert!(verify(&figures).unwrap().is_none());
        assert!(!sync(&figures).unwrap());
        std::fs::write(figures.join("t.md"), "| a |\n|---|\n| 2 |\n").unwrap();
        assert!(verify(&figures).unwrap().is_some());
        std::fs::write(
            &readme,
            "x <!-- generated: missing.md -->\n<!-- end generated -->",
        )
        .unwrap();
        assert!(sync(&figures).is_err());
    }
}
