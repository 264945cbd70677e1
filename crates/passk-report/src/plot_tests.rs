//! Tests of `plot.rs` (kept in their own file so that file stays under 600 lines).

use super::*;

fn demo() -> Figure {
    let mut a = Chart::new("Demo chart: cos vs k", "k", "cosine");
    a.zero_line = true;
    a.x_scale = XScale::Integer;
    a.series.push(Series::new(
        "separation 0.5",
        (1..=8).map(|k| (k as f64, 0.3 - 0.1 * k as f64)).collect(),
        Mark::LineAndPoints,
        0,
    ));
    a.series.push(Series::new(
        "dashed",
        vec![(1.0, 0.1), (8.0, f64::NAN), (8.0, 0.2)],
        Mark::DashedLine,
        1,
    ));
    let mut b = Chart::new("Second panel", "p(x)", "a(x)");
    b.series.push(Series::new(
        "easy",
        vec![(0.8, 0.01), (0.9, 0.02)],
        Mark::Points,
        2,
    ));
    b.series.push(Series::new(
        "flat",
        vec![(0.5, 1.0), (0.6, 1.0)],
        Mark::Line,
        3,
    ));
    b.legend = Legend::LowerLeft;
    Figure {
        stem: "demo".into(),
        width: 900,
        height: 600,
        panels: vec![a, b],
    }
}

#[test]
fn renders_svg_and_png_byte_identically_twice() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let fig = demo();
    let p1 = render_figure(&fig, d1.path()).unwrap();
    let p2 = render_figure(&fig, d2.path()).unwrap();
    assert_eq!(p1.len(), 2);
    for (a, b) in p1.iter().zip(&p2) {
        let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert!(ba.len() > 1000, "{} is too small", a.display());
        assert_eq!(ba, bb, "{} differs between renders", a.display());
    }
    let svg = std::fs::read_to_string(&p1[0]).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("Demo chart: cos vs k"));
    assert!(svg.contains("separation 0.5"));
    assert!(svg.contains("Second panel"));
    let png = std::fs::read(&p1[1]).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Only the two outputs remain: temporaries were renamed away.
    assert_eq!(std::fs::read_dir(d1.path()).unwrap().count(), 2);
}

fn dark_pixels_in_top_band(fig: &Figure, band: u32) -> usize {
    ensure_font().unwrap();
    let mut buf = vec![0u8; (fig.width * fig.height * 3) as usize];
    {
        let root =
            BitMapBackend::with_buffer(&mut buf, (fig.width, fig.height)).into_drawing_area();
        draw_figure(root, fig, Path::new("mem.png")).unwrap();
    }
    buf[..(fig.width * band * 3) as usize]
        .chunks(3)
        .filter(|px| px.iter().all(|&c| c < 100))
        .count()
}

#[test]
fn png_text_is_drawn_with_the_bundled_font() {
    let mut with = Chart::new("TITLE TEXT", "x", "y");
    with.series.push(Series::new(
        "s",
        vec![(0.0, 0.0), (1.0, 1.0)],
        Mark::Line,
        0,
    ));
    let mut without = with.clone();
    without.title = String::new();
    let mk = |c: Chart| Figure {
        stem: "t".into(),
        width: 300,
        height: 200,
        panels: vec![c],
    };
    let titled = dark_pixels_in_top_band(&mk(with), 36);
    let untitled = dark_pixels_in_top_band(&mk(without), 36);
    assert!(titled > 50, "title drew only {titled} dark pixels");
    assert!(
        untitled < titled / 4,
        "untitled {untitled} vs titled {titled}"
    );
}

#[test]
fn log2_axis_and_outside_legend() {
    let mut c = Chart::new("Log axis", "k", "y");
    c.x_scale = XScale::Log2;
    c.legend = Legend::Outside;
    c.series.push(Series::new(
        "outside legend entry",
        vec![(1.0, 0.5), (4.0, -0.5), (64.0, 0.25), (0.0, 9.0)],
        Mark::LineAndPoints,
        4,
    ));
    // x = 0 cannot be shown on a log axis and is dropped: log2 range is [0, 6] padded.
    let ((x0, x1), (y0, y1)) = c.ranges();
    assert!(
        (x0 + 0.3).abs() < 1e-12 && (x1 - 6.3).abs() < 1e-12,
        "{x0} {x1}"
    );
    assert!(y0 < -0.5 && y1 > 0.5 && y1 < 1.0);
    c.x_range = Some((1.0, 128.0));
    assert_eq!(c.ranges().0, (0.0, 7.0));
    c.x_range = None;
    let svg = render_svg(&Figure {
        stem: "log".into(),
        width: 800,
        height: 500,
        panels: vec![c],
    })
    .unwrap();
    assert!(svg.contains("outside legend entry"));
    let texts: Vec<&str> = svg
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('<'))
        .collect();
    for label in ["1", "2", "8", "64"] {
        assert!(texts.contains(&label), "missing tick {label}");
    }
    // On a short range plotters puts ticks between powers of two; they stay unlabelled.
    let mut short = Chart::new("Short log axis", "k", "y");
    short.x_scale = XScale::Log2;
    short.series.push(Series::new(
        "s",
        (1..=4).map(|k| (k as f64, 0.1 * k as f64)).collect(),
        Mark::Line,
        0,
    ));
    let svg = render_svg(&Figure {
        stem: "short".into(),
        width: 800,
        height: 500,
        panels: vec![short],
    })
    .unwrap();
    let numbers: Vec<f64> = svg
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .collect();
    // y labels are below 1 here; the x labels are exactly the powers of two, once each.
    let x_labels: Vec<f64> = numbers.into_iter().filter(|&v| v >= 1.0).collect();
    assert_eq!(
        x_labels,
        [1.0, 2.0, 4.0],
        "log ticks label only powers of two"
    );
    // ... but are still drawn as grid lines.
    assert!(svg.matches("#E1E1E1").count() > 3);
}

#[test]
fn ranges_pad_and_handle_degenerate_data() {
    let mut c = Chart::new("t", "x", "y");
    assert_eq!(c.ranges(), ((0.0, 1.0), (0.0, 1.0)));
    c.series.push(Series::new(
        "s",
        vec![(1.0, 2.0), (3.0, 2.0), (f64::NAN, 9.0)],
        Mark::Line,
        0,
    ));
    let ((x0, x1), (y0, y1)) = c.ranges();
    assert!((x0 - 0.9).abs() < 1e-12 && (x1 - 3.1).abs() < 1e-12);
    assert!(y0 < 2.0 && y1 > 2.0);
    c.zero_line = true;
    let (_, (y0, y1)) = c.ranges();
    assert!(y0 < 0.0 && y1 > 2.0);
    c.y_range = Some((-1.0, 1.0));
    assert_eq!(c.ranges().1, (-1.0, 1.0));
}

#[test]
fn tick_labels_are_short_and_unsigned_at_zero() {
    assert_eq!(tick(-0.0, 1.0), "0");
    assert_eq!(tick(0.25, 1.0), "0.25");
    assert_eq!(tick(2.0, 1.0), "2");
    assert_eq!(tick(-0.00001, 1e-4), "-1.0e-5");
    assert_eq!(tick(-2.2e-16, 2.0), "0");
    assert_eq!(tick(-0.00001 * 0.0, 1.0), "0");
}

#[test]
fn empty_figure_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fig = Figure {
        stem: "e".into(),
        width: 10,
        height: 10,
        panels: vec![],
    };
    assert!(render_figure(&fig, dir.path()).is_err());
}

#[test]
fn four_panels_make_a_two_by_two_grid_with_a_shared_y_scale() {
    let panel = |title: &str, y: f64| {
        let mut c = Chart::new(title, "step", "pass@1");
        c.series.push(Series::new(
            "s",
            vec![(0.0, 0.0), (1.0, y)],
            Mark::LineAndPoints,
            0,
        ));
        c
    };
    let mut other = Chart::new("other", "k", "cosine");
    other.series.push(Series::new(
        "s",
        vec![(0.0, 5.0), (1.0, 6.0)],
        Mark::Points,
        1,
    ));
    let fig = Figure {
        stem: "grid".into(),
        width: 4 * 700,
        height: 450,
        panels: vec![panel("a", 0.2), panel("b", 0.9), panel("c", 0.5), other],
    };
    assert_eq!(fig.grid(), (2, 2));
    assert_eq!(fig.canvas(), (1400, 900));
    let drawn = fig.shared_panels();
    let y = |i: usize| drawn[i].ranges().1;
    assert_eq!(y(0), y(1));
    assert_eq!(y(1), y(2));
    assert!(y(0).1 >= 0.9, "{:?}", y(0));
    assert_ne!(y(3), y(0), "another quantity keeps its own scale");
    let one = Figure {
        panels: vec![panel("a", 0.2)],
        width: 700,
        ..fig.clone()
    };
    assert_eq!((one.grid(), one.canvas()), ((1, 1), (700, 450)));
    render_svg(&fig).unwrap();
}
