//! The probe's Gram heatmaps: one step's Gram matrix ordered by family then `p̂`, averaged
//! over square blocks when large, drawn with a diverging colour scale and a colour bar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use passk_schema::probe::{self, ProbeGramRow};

use super::{ProbeStep, HEATMAP_MAX_SIDE};
use crate::error::ReportError;
use crate::load::{rename_into_place, temp_path_for, write_atomic};
use crate::plot::{ensure_font, FONT_FAMILY};
use crate::tables::fmt_e;

/// A heatmap panel: the Gram matrix of one step, ordered by family then `p̂`, averaged over
/// blocks of `block` prompts, with family boundaries.
pub(super) struct Heatmap {
    pub(super) title: String,
    /// Cell values (block means), row-major `side × side`.
    pub(super) values: Vec<f64>,
    pub(super) side: usize,
    /// Family boundaries in cell units.
    pub(super) boundaries: Vec<f64>,
    /// Colour scale: ±`scale` saturates.
    pub(super) scale: f64,
}

/// The Gram rows of a probe step directory ([`probe::read_gram_rows`]).
pub(super) fn read_gram(dir: &Path) -> Result<Vec<ProbeGramRow>, ReportError> {
    probe::read_gram_rows(dir).map_err(|e| ReportError::io(dir, e))
}

pub(super) fn heatmap(step: &ProbeStep, path: &Path) -> Result<Heatmap, ReportError> {
    let mut points = step.points();
    let n = points.len();
    let bad = |m: String| ReportError::invalid(path, m);
    if n == 0 {
        return Err(bad(format!("probe step {} has no prompts", step.step)));
    }
    let mut full = vec![f64::NAN; n * n];
    for r in &step.gram {
        if r.i >= n || r.j >= n {
            return Err(bad(format!(
                "the Gram matrix of step {} has index ({}, {}) beyond its {n} prompts; rerun the probe",
                step.step, r.i, r.j
            )));
        }
        full[r.i * n + r.j] = r.kappa;
        full[r.j * n + r.i] = r.kappa;
    }
    points.sort_by(|a, b| {
        a.family
            .cmp(&b.family)
            .then(a.p_hat.total_cmp(&b.p_hat))
            .then(a.index.cmp(&b.index))
    });
    let block = n.div_ceil(HEATMAP_MAX_SIDE);
    let side = n.div_ceil(block);
    let mut values = vec![0.0; side * side];
    let mut counts = vec![0usize; side * side];
    let mut off_diag_max: f64 = 0.0;
    for (a, pa) in points.iter().enumerate() {
        for (b, pb) in points.iter().enumerate() {
            let v = full[pa.index * n + pb.index];
            if v.is_finite() {
                values[(a / block) * side + b / block] += v;
                counts[(a / block) * side + b / block] += 1;
                if a != b {
                    off_diag_max = off_diag_max.max(v.abs());
                }
            }
        }
    }
    for (v, c) in values.iter_mut().zip(&counts) {
        *v = if *c > 0 { *v / *c as f64 } else { f64::NAN };
    }
    let boundaries = points
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].family != w[1].family)
        .map(|(i, _)| (i + 1) as f64 / block as f64)
        .collect();
    let scale = if off_diag_max > 0.0 {
        off_diag_max
    } else {
        values
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0, |m: f64, v| m.max(v.abs()))
            .max(1e-300)
    };
    let families: BTreeSet<&str> = points.iter().map(|p| p.family.as_str()).collect();
    let fam_list: Vec<&str> = families.into_iter().collect();
    Ok(Heatmap {
        title: format!(
            "step {}: estimated κ ({}; ±{} saturates{})",
            step.step,
            fam_list.join(" | "),
            fmt_e(scale, 2),
            if block > 1 {
                format!("; {block}×{block} block means")
            } else {
                String::new()
            }
        ),
        values,
        side,
        boundaries,
        scale,
    })
}

/// Blue (negative) through white to vermillion (positive).
pub(super) fn diverging(v: f64, scale: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(200, 200, 200);
    }
    let t = (v / scale).clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        (0.0, 114.0, 178.0)
    } else {
        (213.0, 94.0, 0.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + a * (c - 255.0)).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

pub(super) fn draw_heatmaps<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    maps: &[Heatmap],
    path: &Path,
) -> Result<(), ReportError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ReportError::Plot {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    };
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, maps.len().max(1)));
    for (area, map) in areas.iter().zip(maps) {
        let s = map.side as f64;
        let mut ctx = ChartBuilder::on(area)
            .caption(&map.title, (FONT_FAMILY, 16))
            .margin(14)
            .x_label_area_size(30)
            .y_label_area_size(30)
            .build_cartesian_2d(0.0..s, s..0.0)
            .map_err(err)?;
        ctx.configure_mesh()
            .disable_mesh()
            .x_desc("prompt (by family, then estimated p)")
            .y_desc("prompt")
            .axis_desc_style((FONT_FAMILY, 13))
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(err)?;
        let side = map.side;
        ctx.draw_series((0..side * side).map(|c| {
            let (i, j) = ((c / side) as f64, (c % side) as f64);
            Rectangle::new(
                [(j, i), (j + 1.0, i + 1.0)],
                diverging(map.values[c], map.scale).filled(),
            )
        }))
        .map_err(err)?;
        for &b in &map.boundaries {
            ctx.draw_series(LineSeries::new(
                vec![(b, 0.0), (b, s)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            ctx.draw_series(LineSeries::new(
                vec![(0.0, b), (s, b)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes heatmap panels as `<dir>/<stem>.svg` and `.png` (atomically); returns both paths.
pub(super) fn render_heatmaps(
    maps: &[Heatmap],
    stem: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    ensure_font()?;
    let (w, h) = (560 * maps.len().max(1) as u32, 600);
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw_heatmaps(root, maps, &svg_path)?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = temp_path_for(&png_path);
    let drawn = {
        let root = BitMapBackend::new(&tmp, (w, h)).into_drawing_area();
        draw_heatmaps(root, maps, &png_path)
    };
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    rename_into_place(&tmp, &png_path)?;
    Ok(vec![svg_path, png_path])
}
