use super::read::{parse_markdown_table, png_size};
use super::*;
use crate::claims::parse_claims;
use crate::tables::Table;

/// A valid 3 x 2 RGB PNG.
const PNG: [u8; 74] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0,
    0, 0, 18, 22, 241, 77, 0, 0, 0, 17, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 65, 12, 48,
    198, 127, 0, 59, 216, 5, 251, 57, 77, 150, 165, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

const CLAIMS: &str = r#"
gate = ["experiments/alpha.toml"]

[[claim]]
name = "alpha.holds"
experiment = "alpha"
statistic = "fraction_with_kstar"
op = ">="
threshold = 1.0
why = "k* exists when <grad J_k, grad J_1> < 0 & the classes overlap"

[[claim]]
name = "smoke.elsewhere"
experiment = "tiny-smoke"
statistic = "tiny_delta_pass1_ci_high"
op = "<"
threshold = 0.0
why = "read from the gate's fresh cells"
"#;

/// A figures folder with two experiments (one with a figure and a table, one with a table
/// only), results with provenance, and the page input for them.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf, PageInput) {
    let dir = tempfile::tempdir().unwrap();
    let (figures, results) = (dir.path().join("figures"), dir.path().join("results"));
    let alpha = figures.join("alpha");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::create_dir_all(figures.join("beta")).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(alpha.join("ascent.png"), PNG).unwrap();
    std::fs::write(alpha.join("ascent.svg"), "<svg/>").unwrap();
    std::fs::write(
        alpha.join("ascent.sources.json"),
        r#"{"name": "ascent", "kind": "figure", "caption": "J_1 & J_k <during> \"ascent\""}"#,
    )
    .unwrap();
    let mut t = Table::new("kstar", "k* per seed | p_hard", &["seed", "k*", "note"]);
    t.rows.push(vec!["0".into(), "3".into(), "x|y <b>".into()]);
    t.rows.push(vec!["1".into(), "2".into(), "Δ ≥ 0".into()]);
    t.write_all(&alpha).unwrap();
    let mut u = Table::new("outcomes", "Outcomes.", &["cell", "correct %"]);
    u.rows.push(vec!["gsm8k, seed 0".into(), "1.2".into()]);
    u.write_all(&figures.join("beta")).unwrap();
    std::fs::write(
        results.join("ENVIRONMENT.json"),
        r#"{"rustc": "rustc 1.85.0", "cpu_features": ["avx2", "fma"], "git": null}"#,
    )
    .unwrap();
    std::fs::write(results.join("MANIFEST"), "ab  1  alpha/x\ncd  2  alpha/y\n").unwrap();
    let claims = parse_claims(CLAIMS, Path::new("claims.toml"))
        .unwrap()
        .claim;
    let verdicts = vec![
        Verdict {
            claim: claims[0].clone(),
            measured: Some(1.0),
            estimate: Some(1.0),
            interval: None,
            cells: 4,
            passed: true,
            error: None,
            not_evaluated: false,
        },
        Verdict {
            claim: claims[1].clone(),
            measured: None,
            estimate: None,
            interval: None,
            cells: 0,
            passed: false,
            error: Some("results/tiny-smoke does not exist".into()),
            not_evaluated: true,
        },
    ];
    let input = PageInput {
        experiments: vec![
            Experiment {
                name: "alpha".into(),
                tier: Some("theory".into()),
                description: Some("Exact <tier> & friends".into()),
                file: Some("experiments/alpha.toml".into()),
                counts: Some(Counts {
                    matrix: 6,
                    done: 4,
                    missing: 2,
                    ..Counts::default()
                }),
                cells_in_results: 4,
            },
            Experiment {
                name: "beta".into(),
                tier: Some("lm".into()),
                cells_in_results: 3,
                ..Experiment::default()
            },
        ],
        claims_file: "experiments/claims.toml".into(),
        verdicts: Ok(verdicts),
        claims_sha256: Some("00ff".into()),
    };
    (dir, figures, results, input)
}

/// Every value of `attr="..."` in `page`.
fn attribute_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!(" {attr}=\"");
    page.match_indices(&key)
        .map(|(i, _)| {
            let rest = &page[i + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[test]
fn page_links_every_figure_and_table_file_and_lists_each_claim() {
    let (_dir, figures, results, input) = fixture();
    let page = render_index(&figures, &results, &input).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    assert!(page.contains("<img src=\"alpha/ascent.png\" alt=\"J_1 &amp; J_k &lt;during&gt; &quot;ascent&quot;\" width=\"3\" height=\"2\">"), "{page}");
    assert!(page.contains("<a href=\"alpha/ascent.svg\">"), "{page}");
    for file in [
        "alpha/kstar.csv",
        "alpha/kstar.md",
        "alpha/kstar.tex",
        "beta/outcomes.csv",
    ] {
        assert!(page.contains(&format!("href=\"{file}\"")), "{file}: {page}");
    }
    // Each claim, its verdict and its escaped why; the error of the one not evaluated.
    assert!(page.contains("<code>alpha.holds</code>"), "{page}");
    assert!(
        page.contains("&lt;grad J_k, grad J_1&gt; &lt; 0 &amp; the classes"),
        "{page}"
    );
    assert!(page.contains("<td class=\"pass\">PASS</td>"), "{page}");
    assert!(page.contains("<code>smoke.elsewhere</code>"), "{page}");
    assert!(
        page.contains("<td class=\"skip\">NOT EVALUATED</td>"),
        "{page}"
    );
    assert!(page.contains("results/tiny-smoke does not exist"), "{page}");
    // Tables: the Markdown escapes undone, the HTML ones applied, numbers right-aligned.
    assert!(page.contains("<td>x|y &lt;b&gt;</td>"), "{page}");
    assert!(page.contains("<td>Δ ≥ 0</td>"), "{page}");
    assert!(page.contains("<td class=\"r\">3</td>"), "{page}");
    assert!(page.contains("<p>k* per seed | p_hard</p>"), "{page}");
    // Experiments, counts, provenance.
    assert!(page.contains("Exact &lt;tier&gt; &amp; friends"), "{page}");
    assert!(page.contains("4 of 6 cells done, 2 missing"), "{page}");
    assert!(
        page.contains("no experiment file: 3 cell(s) in results"),
        "{page}"
    );
    assert!(page.contains("<code>avx2, fma</code>"), "{page}");
    assert!(page.contains("<code>rustc 1.85.0</code>"), "{page}");
    assert!(
        page.contains("<code>results/MANIFEST</code> lists 2 result files"),
        "{page}"
    );
}

#[test]
fn every_link_and_image_resolves_and_nothing_is_external() {
    let (_dir, figures, results, input) = fixture();
    let page = render_index(&figures, &results, &input).unwrap();
    let srcs = attribute_values(&page, "src");
    assert_eq!(srcs, ["alpha/ascent.png"]);
    let ids = attribute_values(&page, "id");
    for target in srcs.iter().chain(&attribute_values(&page, "href")) {
        match target.strip_prefix('#') {
            Some(id) => assert!(ids.contains(&id), "no id {id}"),
            None => assert!(figures.join(target).is_file(), "{target} does not exist"),
        }
    }
    for external in ["<script", "<link", "http:", "https:", "//", "url("] {
        let hits: Vec<_> = page.match_indices(external).collect();
        assert!(hits.is_empty(), "{external}: {hits:?}");
    }
}

#[test]
fn page_is_deterministic_and_written_beside_the_figures() {
    let (_dir, figures, results, input) = fixture();
    let first = render_index(&figures, &results, &input).unwrap();
    let path = write_index(&figures, &results, &input).unwrap();
    assert_eq!(path, figures.join(INDEX));
    // The page itself (a file, not a folder) does not change the next rendering.
    assert_eq!(render_index(&figures, &results, &input).unwrap(), first);
    assert_eq!(std::fs::read_to_string(path).unwrap(), first);
}

#[test]
fn missing_claims_and_provenance_are_said_not_failed() {
    let (_dir, figures, results, mut input) = fixture();
    std::fs::remove_file(results.join("ENVIRONMENT.json")).unwrap();
    std::fs::remove_file(results.join("MANIFEST")).unwrap();
    input.verdicts = Err("cannot read experiments/claims.toml".into());
    let page = render_index(&figures, &results, &input).unwrap();
    assert!(
        page.contains("<p>No claims: cannot read experiments/claims.toml</p>"),
        "{page}"
    );
    assert!(
        page.contains("ENVIRONMENT.json</code> does not exist"),
        "{page}"
    );
    assert!(page.contains("MANIFEST</code> does not exist"), "{page}");
}

#[test]
fn helpers_escape_encode_and_parse() {
    assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    assert_eq!(link("tiny-core/a b#1.png"), "tiny-core/a%20b%231.png");
    assert_eq!(anchor("tiny.delta <x>"), "tiny_delta__x_");
    assert_eq!(png_size(&PNG), Some((3, 2)));
    assert_eq!(png_size(b"GIF89a"), None);
    let (caption, header, right, rows) =
        parse_markdown_table("**t\\_1**: a \\| b\n\n| x | y |\n| --- | ---: |\n| p\\|q | 1 |\n")
            .unwrap();
    assert_eq!(caption, "a | b");
    assert_eq!(header, ["x", "y"]);
    assert_eq!(right, [false, true]);
    assert_eq!(rows, [["p|q", "1"]]);
}
