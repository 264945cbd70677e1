//! Reading the rendered figures folder back for the page: each experiment's figures (PNG,
//! SVG, caption) and tables (parsed from their Markdown files).

use std::path::{Path, PathBuf};

use crate::error::ReportError;

/// A figure: `<stem>.png` with its `<stem>.svg` (when present) and caption.
pub(super) struct Figure {
    pub(super) stem: String,
    pub(super) svg: bool,
    pub(super) caption: String,
    pub(super) size: Option<(u32, u32)>,
}

/// A table parsed back from its Markdown file.
pub(super) struct HtmlTable {
    pub(super) stem: String,
    pub(super) caption: String,
    pub(super) header: Vec<String>,
    pub(super) right: Vec<bool>,
    pub(super) rows: Vec<Vec<String>>,
    pub(super) files: Vec<String>,
}

pub(super) fn read_figures(dir: &Path) -> Result<Vec<Figure>, ReportError> {
    let mut out = Vec::new();
    for stem in stems(dir, "png")? {
        let caption = sources_caption(dir, &stem).unwrap_or_else(|| format!("figure {stem}"));
        let png = std::fs::read(dir.join(format!("{stem}.png")))
            .map_err(|e| ReportError::io(dir.join(format!("{stem}.png")), e))?;
        out.push(Figure {
            svg: dir.join(format!("{stem}.svg")).is_file(),
            size: png_size(&png),
            stem,
            caption,
        });
    }
    Ok(out)
}

pub(super) fn read_tables(dir: &Path) -> Result<Vec<HtmlTable>, ReportError> {
    let mut out = Vec::new();
    for stem in stems(dir, "md")? {
        let path = dir.join(format!("{stem}.md"));
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError::io(&path, e))?;
        let Some((md_caption, header, right, rows)) = parse_markdown_table(&text) else {
            return Err(ReportError::invalid(
                &path,
                "not a Markdown table as tables.rs writes them",
            ));
        };
        let files = ["csv", "md", "tex"]
            .iter()
            .map(|ext| format!("{stem}.{ext}"))
            .filter(|f| dir.join(f).is_file())
            .collect();
        out.push(HtmlTable {
            caption: sources_caption(dir, &stem).unwrap_or(md_caption),
            stem,
            header,
            right,
            rows,
            files,
        });
    }
    Ok(out)
}

/// The caption `<stem>.sources.json` records, if any.
fn sources_caption(dir: &Path, stem: &str) -> Option<String> {
    let bytes = std::fs::read(dir.join(format!("{stem}.sources.json"))).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("caption")?.as_str().map(str::to_string)
}

/// Caption, header, right-alignment per column and rows of a table that
/// [`crate::tables::Table::to_markdown`] wrote.
#[allow(clippy::type_complexity)]
pub(super) fn parse_markdown_table(
    text: &str,
) -> Option<(String, Vec<String>, Vec<bool>, Vec<Vec<String>>)> {
    let mut lines = text.lines();
    let first = unescape(lines.next()?);
    let caption = match first.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => first,
    };
    let mut rows = lines.filter(|l| l.starts_with('|')).map(split_row);
    let header = rows.next()?;
    let right = rows.next()?.iter().map(|c| c.ends_with(':')).collect();
    Some((caption, header, right, rows.collect()))
}

/// The cells of one Markdown table row, unescaped (`\|` is a pipe inside a cell).
fn split_row(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cell.extend(chars.next()),
            '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    // The text before the leading pipe is empty, and so is what follows the trailing one.
    if !cells.is_empty() {
        cells.remove(0);
    }
    cells
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '*' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Width and height from a PNG's IHDR chunk.
pub(super) fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((word(16), word(20)))
}

/// Stems of the files `*.<ext>` in `dir`, sorted.
fn stems(dir: &Path, ext: &str) -> Result<Vec<String>, ReportError> {
    let suffix = format!(".{ext}");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ReportError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(&suffix)
                .map(str::to_string)
        })
        .filter(|s| !s.starts_with('.') && !s.is_empty())
        .collect();
    out.sort();
    Ok(out)
}

/// Non-hidden sub-folders of `dir`, sorted.
pub(super) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ReportError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
