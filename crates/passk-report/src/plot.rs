//! Line and scatter charts rendered identically to SVG and PNG with a bundled font.
//!
//! Text is drawn with DejaVu Sans from `assets/` (registered once with plotters' `ab_glyph`
//! support), so PNGs never depend on system fonts; the same [`Figure`] always gives the same
//! bytes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ReportError;
use crate::load::write_atomic;

/// The font family name every chart uses; it is mapped to the bundled DejaVu Sans.
pub const FONT_FAMILY: &str = "sans-serif";

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the bundled font as [`FONT_FAMILY`] with plotters (once per process).
pub fn ensure_font() -> Result<(), ReportError> {
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Plot {
            path: PathBuf::from("assets/DejaVuSans.ttf"),
            message: "the bundled font does not parse".to_string(),
        })
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A solid polyline through the points in order.
    Line,
    /// A dashed polyline through the points in order.
    DashedLine,
    /// Unconnected filled circles.
    Points,
    /// Unconnected large filled circles (summary points over smaller [`Mark::Points`]).
    LargePoints,
    /// A solid polyline with a filled circle at each point.
    LineAndPoints,
}

/// Where the legend box sits inside the plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    /// Top left corner.
    UpperLeft,
    /// Top right corner.
    UpperRight,
    /// Bottom left corner.
    LowerLeft,
    /// Bottom right corner.
    LowerRight,
    /// Middle of the right edge.
    MiddleRight,
    /// Outside the plot area, in a strip at the panel's right (never hides data).
    Outside,
    /// No legend.
    Hidden,
}

/// One labelled series of (x, y) points; non-finite points are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How to draw them.
    pub mark: Mark,
    /// Index into [`PALETTE`] (taken modulo its length).
    pub color: usize,
    /// Per-point `(low, high)` interval (empty: none): error bars on point marks, a shaded
    /// band on line marks.
    pub intervals: Vec<(f64, f64)>,
}

impl Series {
    /// A series with the given label, points, mark and palette colour.
    pub fn new(
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        mark: Mark,
        color: usize,
    ) -> Self {
        Self {
            label: label.into(),
            points,
            mark,
            color,
            intervals: Vec::new(),
        }
    }

    /// The same series with a `(low, high)` interval per point.
    pub fn with_intervals(mut self, intervals: Vec<(f64, f64)>) -> Self {
        assert_eq!(intervals.len(), self.points.len(), "one interval per point");
        self.intervals = intervals;
        self
    }

    /// The intervals in plotting coordinates as `(x, low, high)`, non-finite ones dropped.
    fn axis_intervals(&self, scale: XScale) -> Vec<(f64, f64, f64)> {
        self.points
            .iter()
            .zip(&self.intervals)
            .map(|(&(x, _), &(lo, hi))| (scale.to_axis(x), lo, hi))
            .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
            .collect()
    }
}

/// How the x axis maps data to position and how its ticks are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XScale {
    /// Linear, decimal tick labels.
    Linear,
    /// Linear, only integer ticks labelled (for k axes with few values).
    Integer,
    /// Logarithmic base 2 (x must be > 0), ticks labelled at powers of two (for k axes).
    Log2,
}

impl XScale {
    /// The plotting position of data value `x` (`NaN` if it cannot be shown).
    pub fn to_axis(self, x: f64) -> f64 {
        match self {
            XScale::Log2 if x > 0.0 => x.log2(),
            XScale::Log2 => f64::NAN,
            _ => x,
        }
    }
}

/// One panel: axes with a title, axis labels and series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Panel title.
    pub title: String,
    /// X axis label (say what and in which unit).
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The series, drawn in order (later on top).
    pub series: Vec<Series>,
    /// Draw a thin horizontal line at y = 0 (and include 0 in the y range).
    pub zero_line: bool,
    /// Fixed x range; `None` fits the data with a small margin.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range; `None` fits the data with a small margin.
    pub y_range: Option<(f64, f64)>,
    /// X axis scale and tick labels.
    pub x_scale: XScale,
    /// Legend placement.
    pub legend: Legend,
}

impl Chart {
    /// A panel with no series, automatic ranges and the legend at the upper right.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            zero_line: false,
            x_range: None,
            y_range: None,
            x_scale: XScale::Linear,
            legend: Legend::UpperRight,
        }
    }

    /// The points of series `s` in plotting coordinates, non-finite ones dropped.
    fn axis_points(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points
            .iter()
            .map(|&(x, y)| (self.x_scale.to_axis(x), y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    }

    /// The x and y ranges the panel will use, in plotting coordinates (log2 x for
    /// [`XScale::Log2`]); a fixed `x_range` is given in data units.
    pub fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let mut pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| self.axis_points(s))
            .collect();
        for s in &self.series {
            for (x, lo, hi) in s.axis_intervals(self.x_scale) {
                pts.extend([(x, lo), (x, hi)]);
            }
        }
        let finite = || pts.iter();
        let x = self.x_range.map_or_else(
            || padded(finite().map(|p| p.0), false),
            |(a, b)| (self.x_scale.to_axis(a), self.x_scale.to_axis(b)),
        );
        let y = self
            .y_range
            .unwrap_or_else(|| padded(finite().map(|p| p.1), self.zero_line));
        (x, y)
    }
}

/// A figure: one or more panels (two per row, see [`Figure::grid`]), written as `<stem>.svg`
/// and `<stem>.png`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem.
    pub stem: String,
    /// Width in pixels (SVG user units).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Panels, left to right, then top to bottom.
    pub panels: Vec<Chart>,
}

/// A colour-blind-safe palette (Okabe & Ito), used in order.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(150, 150, 150),
];

/// The range of `values` widened by 5% on each side (always non-empty), including 0 if asked.
fn padded(values: impl Iterator<Item = f64>, include_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if include_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
        let half = (lo.abs() * 0.1).max(0.5);
        return (lo - half, hi + half);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

fn draw_err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Plot {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    }
}

/// Draws the legend sample of a series centred vertically at `(x, y)`, 20 pixels wide.
fn sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    color: RGBColor,
    (x, y): (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let line = color.stroke_width(2);
    match mark {
        Mark::Line => area.draw(&PathElement::new(vec![(x, y), (x + 20, y)], line)),
        Mark::LineAndPoints => {
            area.draw(&PathElement::new(vec![(x, y), (x + 20, y)], line))?;
            area.draw(&Circle::new((x + 10, y), 3, color.filled()))
        }
        Mark::DashedLine => {
            area.draw(&PathElement::new(vec![(x, y), (x + 8, y)], line))?;
            area.draw(&PathElement::new(vec![(x + 13, y), (x + 20, y)], line))
        }
        Mark::Points => area.draw(&Circle::new((x + 10, y), 4, color.filled())),
        Mark::LargePoints => area.draw(&Circle::new((x + 10, y), 6, color.filled())),
    }
}

/// Width in pixels of a legend strip that fits every label of `chart`.
fn legend_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> u32 {
    let style = TextStyle::from((FONT_FAMILY, LEGEND_FONT));
    let widest = chart
        .series
        .iter()
        .filter_map(|s| area.estimate_text_size(&s.label, &style).ok())
        .map(|(w, _)| w)
        .max()
        .unwrap_or(0);
    (widest + 48).min(area.dim_in_pixel().0 / 2)
}

/// Legend label font size.
const LEGEND_FONT: u32 = 14;

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    path: &Path,
) -> Result<(), ReportError> {
    let err = draw_err(path);
    let outside = chart.legend == Legend::Outside && !chart.series.is_empty();
    let (plot_area, legend_area) = if outside {
        let w = area.dim_in_pixel().0;
        let (a, b) = area.split_horizontally(w - legend_width(area, chart));
        (a, Some(b))
    } else {
        (area.clone(), None)
    };
    let ((x0, x1), (y0, y1)) = chart.ranges();
    let mut ctx = ChartBuilder::on(&plot_area)
        .caption(&chart.title, (FONT_FAMILY, 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    let (x_scale, x_span, y_span) = (chart.x_scale, x1 - x0, y1 - y0);
    let x_fmt = move |v: &f64| {
        let near_int = (v - v.round()).abs() <= 1e-9 * x_span.abs().max(1.0);
        match x_scale {
            XScale::Linear => tick(*v, x_span),
            XScale::Integer | XScale::Log2 if !near_int => String::new(),
            XScale::Integer => format!("{:.0}", v.round()),
            XScale::Log2 => tick(v.round().exp2(), 1.0),
        }
    };
    let y_fmt = move |v: &f64| tick(*v, y_span);
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style((FONT_FAMILY, 16))
        .label_style((FONT_FAMILY, 13))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()
        .map_err(&err)?;
    if chart.zero_line {
        ctx.draw_series(LineSeries::new(
            vec![(x0, 0.0), (x1, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(&err)?;
    }
    for s in &chart.series {
        let color = PALETTE[s.color % PALETTE.len()];
        let pts = chart.axis_points(s);
        let line = color.stroke_width(2);
        let label = s.label.clone();
        let intervals = s.axis_intervals(chart.x_scale);
        if !intervals.is_empty() {
            if matches!(s.mark, Mark::Points | Mark::LargePoints) {
                let cap = 0.012 * (x1 - x0);
                let bar = color.stroke_width(2);
                for &(x, lo, hi) in &intervals {
                    ctx.draw_series([
                        PathElement::new(vec![(x, lo), (x, hi)], bar),
                        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], bar),
                        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], bar),
                    ])
                    .map_err(&err)?;
                }
            } else {
                let mut outline: Vec<(f64, f64)> =
                    intervals.iter().map(|&(x, lo, _)| (x, lo)).collect();
                outline.extend(intervals.iter().rev().map(|&(x, _, hi)| (x, hi)));
                ctx.draw_series([Polygon::new(outline, color.mix(0.18).filled())])
                    .map_err(&err)?;
            }
        }
        match s.mark {
            Mark::Line => {
                ctx.draw_series(LineSeries::new(pts, line))
                    .map_err(&err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            }
            Mark::LineAndPoints => {
                ctx.draw_series(LineSeries::new(pts.clone(), line))
                    .map_err(&err)?
                    .label(label)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (20, 0)], line)
                            + Circle::new((10, 0), 3, color.filled())
                    });
                ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(&err)?;
            }
            Mark::DashedLine => {
                ctx.draw_series(DashedLineSeries::new(pts, 8, 5, line))
                    .map_err(&err)?
                    .label(label)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (8, 0)], line)
                            + PathElement::new(vec![(13, 0), (20, 0)], line)
                    });
            }
            Mark::Points | Mark::LargePoints => {
                let r = if s.mark == Mark::Points { 3 } else { 6 };
                let drawn = ctx
                    .draw_series(pts.iter().map(|&p| Circle::new(p, r, color.filled())))
                    .map_err(&err)?;
                if !label.is_empty() {
                    drawn
                        .label(label)
                        .legend(move |(x, y)| Circle::new((x + 10, y), r + 1, color.filled()));
                }
            }
        }
    }
    if let Some(legend) = legend_area {
        let style =
            TextStyle::from((FONT_FAMILY, LEGEND_FONT)).pos(Pos::new(HPos::Left, VPos::Center));
        let labelled = chart.series.iter().filter(|s| !s.label.is_empty());
        for (i, s) in labelled.enumerate() {
            let y = 60 + 24 * i as i32;
            sample(&legend, s.mark, PALETTE[s.color % PALETTE.len()], (8, y)).map_err(&err)?;
            legend
                .draw(&Text::new(s.label.clone(), (36, y), style.clone()))
                .map_err(&err)?;
        }
        return Ok(());
    }
    let position = match chart.legend {
        Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        Legend::UpperRight => SeriesLabelPosition::UpperRight,
        Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
        Legend::LowerRight => SeriesLabelPosition::LowerRight,
        Legend::MiddleRight => SeriesLabelPosition::MiddleRight,
        Legend::Hidden | Legend::Outside => return Ok(()),
    };
    if !chart.series.is_empty() {
        ctx.configure_series_labels()
            .position(position)
            .label_font((FONT_FAMILY, LEGEND_FONT))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(&err)?;
    }
    Ok(())
}

/// A tick label on an axis spanning `span`: up to 4 decimals, trailing zeros trimmed, never
/// `-0`; values within `1e-9 * span` of zero print as `0`.
fn tick(v: f64, span: f64) -> String {
    let v = if v.abs() <= 1e-9 * span.abs() { 0.0 } else { v };
    let s = if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

impl Figure {
    /// Columns and rows of the panel grid: one row up to two panels, else two columns, so a
    /// four-panel figure is a 2 x 2 grid that fits a page instead of a strip.
    pub fn grid(&self) -> (usize, usize) {
        let n = self.panels.len().max(1);
        let cols = n.min(2);
        (cols, n.div_ceil(cols))
    }

    /// The canvas in pixels: `width` and `height` are what the builder gave for its panels side
    /// by side in one row; the grid keeps each panel's size.
    pub fn canvas(&self) -> (u32, u32) {
        let n = self.panels.len().max(1) as u32;
        let (cols, rows) = self.grid();
        (self.width / n * cols as u32, self.height * rows as u32)
    }

    /// The panels as drawn: panels that plot the same quantity (the same y-axis label) and
    /// leave their y range free share one, so their values compare at a glance.
    pub fn shared_panels(&self) -> Vec<Chart> {
        let mut panels = self.panels.clone();
        let mut labels: Vec<&str> = panels.iter().map(|c| c.y_label.as_str()).collect();
        labels.sort();
        labels.dedup();
        let labels: Vec<String> = labels.into_iter().map(String::from).collect();
        for label in labels {
            let free: Vec<usize> = (0..panels.len())
                .filter(|&i| panels[i].y_label == label && panels[i].y_range.is_none())
                .collect();
            if free.len() < 2 {
                continue;
            }
            let (lo, hi) = free
                .iter()
                .map(|&i| panels[i].ranges().1)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
                    (lo.min(a), hi.max(b))
                });
            if lo.is_finite() && hi.is_finite() && lo < hi {
                for &i in &free {
                    panels[i].y_range = Some((lo, hi));
                }
            }
        }
        panels
    }
}

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    fig: &Figure,
    path: &Path,
) -> Result<(), ReportError> {
    let err = draw_err(path);
    root.fill(&WHITE).map_err(&err)?;
    let (cols, rows) = fig.grid();
    let areas = root.split_evenly((rows, cols));
    for (area, chart) in areas.iter().zip(&fig.shared_panels()) {
        draw_panel(area, chart, path)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// The figure as an SVG document.
pub fn render_svg(fig: &Figure) -> Result<String, ReportError> {
    ensure_font()?;
    let path = PathBuf::from(format!("{}.svg", fig.stem));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.canvas()).into_drawing_area();
        draw_figure(root, fig, &path)?;
    }
    Ok(svg)
}

/// Writes the figure as `<dir>/<stem>.svg` and `<dir>/<stem>.png` (each through a temporary
/// file renamed into place) and returns both paths, SVG first.
pub fn render_figure(fig: &Figure, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if fig.panels.is_empty() {
        return Err(ReportError::invalid(
            dir.join(&fig.stem),
            "a figure needs at least one panel (bug in the figure builder)",
        ));
    }
    let svg_path = dir.join(format!("{}.svg", fig.stem));
    write_atomic(&svg_path, render_svg(fig)?.as_bytes())?;

    let png_path = dir.join(format!("{}.png", fig.stem));
    write_atomic(&png_path, &render_png(fig, &png_path)?)?;
    Ok(vec![svg_path, png_path])
}

/// The figure as PNG bytes, compressed as far as the encoder goes: figures/ is committed, and
/// this halves what plotters' default encoding writes (`path` only names the figure in errors).
fn render_png(fig: &Figure, path: &Path) -> Result<Vec<u8>, ReportError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let (w, h) = fig.canvas();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw_figure(root, fig, path)?;
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(&rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| ReportError::invalid(path, format!("PNG encoding failed: {e}")))?;
    Ok(png)
}

#[cfg(test)]
#[path = "plot_tests.rs"]
mod tests;
