//! Tests of `config.rs` (kept in their own file so that file stays under 600 lines).

use super::*;

const GOOD: &str = r#"
[experiment]
name = "t"
tier = "theory"

[matrix]
k = [2, 4]
separation = [0.5, 6.0]
seed = [0]

[params]
p_hard = 0.2
n_prompts = 8
feature_std = 1.0
theta0 = [2.0, 0.0]
k_scan = [1, 2]
lr = 1.0
steps = 2
one_step_eta = 0.01
"#;

fn parse(text: &str) -> Result<Experiment> {
    parse_experiment(text, Path::new("exp.toml"))
}

#[test]
fn expands_the_cross_product_with_distinct_hashes() {
    let exp = parse(GOOD).unwrap();
    assert_eq!(exp.cells.len(), 4);
    let hashes: std::collections::BTreeSet<_> = exp.cells.iter().map(|c| &c.hash).collect();
    assert_eq!(hashes.len(), 4);
    assert_eq!(exp.cells[0].config["p_hard"], Value::from(0.2));
}

#[test]
fn dotted_matrix_keys_set_nested_fields() {
    let text = GOOD.replace("seed = [0]", "seed = [0]\n\"inner.x\" = [1, 2]")
        + "\n[params.inner]\ny = 3\n";
    let mut root: Map<String, Value> = Map::new();
    insert_path(&mut root, "a.b.c", Value::from(1)).unwrap();
    assert_eq!(root["a"]["b"]["c"], Value::from(1));
    assert!(insert_path(&mut root, "a.b.c.d", Value::from(1)).is_err());
    // The theory tier rejects the unknown `inner` key, naming it.
    let e = err(&text);
    assert!(e.contains("inner"), "{e}");
    let clash =
        GOOD.replace("seed = [0]", "seed = [0]\n\"inner.y\" = [1]") + "\n[params.inner]\ny = 3\n";
    assert!(err(&clash).contains("both in [matrix] and [params]"));
}

#[test]
fn shards_deal_the_cells_round_robin() {
    let exp = parse(GOOD).unwrap();
    let all: Vec<_> = exp.cells.iter().map(|c| c.hash.clone()).collect();
    let mut joined = Vec::new();
    for i in 1..=3 {
        joined.extend(exp.shard(i, 3).cells.into_iter().map(|c| c.hash));
    }
    joined.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(joined, sorted);
    let second: Vec<_> = exp.shard(2, 2).cells.into_iter().map(|c| c.hash).collect();
    assert_eq!(second, vec![all[1].clone(), all[3].clone()]);
}

#[test]
fn exclude_drops_matching_points_and_rejects_typos() {
    let base = GOOD;
    let all = parse(base).unwrap();
    let fewer = parse(&format!("{base}[[exclude]]\nseparation = 6.0\nk = 2\n")).unwrap();
    assert_eq!(all.cells.len(), 4);
    assert_eq!(fewer.cells.len(), 3);
    let kept: Vec<_> = fewer.cells.iter().map(|c| c.hash.clone()).collect();
    let dropped: Vec<_> = all
        .cells
        .iter()
        .filter(|c| !kept.contains(&c.hash))
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(describe(&dropped[0].coords), "k=2, seed=0, separation=6.0");
    let half = parse(&format!("{base}[[exclude]]\nk = 4\n")).unwrap();
    assert_eq!(half.cells.len(), 2);
    for bad in [
        "[[exclude]]\nkk = 2\n",
        "[[exclude]]\nk = 3\n",
        "exclude = 1\n",
    ] {
        assert!(parse(&format!("{base}{bad}")).is_err(), "{bad}");
    }
}

#[test]
fn set_replaces_params_at_matching_points_only() {
    let base = GOOD;
    let all = parse(base).unwrap();
    let set = parse(&format!(
        "{base}[[set]]\nwhen = {{ separation = 6.0, k = 2 }}\np_hard = 0.4\n"
    ))
    .unwrap();
    assert_eq!(set.cells.len(), 4);
    let changed: Vec<_> = set
        .cells
        .iter()
        .filter(|c| !all.cells.iter().any(|a| a.hash == c.hash))
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(describe(&changed[0].coords), "k=2, seed=0, separation=6.0");
    assert_eq!(changed[0].config["p_hard"], serde_json::json!(0.4));
    // Writing a point's values explicitly in [params] gives the same hash.
    let same = parse(&base.replace("p_hard = 0.2", "p_hard = 0.4")).unwrap();
    assert!(same.cells.iter().any(|c| c.hash == changed[0].hash));
    for bad in [
        "[[set]]\nwhen = { kk = 2 }\np_hard = 0.4\n",
        "[[set]]\nwhen = { k = 3 }\np_hard = 0.4\n",
        "[[set]]\nwhen = {}\np_hard = 0.4\n",
        "[[set]]\np_hard = 0.4\n",
        "[[set]]\nwhen = { k = 2 }\n",
        "[[set]]\nwhen = { k = 2 }\nseparation = 1.0\n",
        "[[set]]\nwhen = { k = 2 }\nnot_a_param = 1\n",
        "[[set]]\nwhen = { k = 2 }\np_hard = 0.4\n[[set]]\nwhen = { seed = 0 }\np_hard = 0.3\n",
        "set = 1\n",
    ] {
        assert!(parse(&format!("{base}{bad}")).is_err(), "{bad}");
    }
}

#[test]
fn hash_ignores_key_order_in_the_file() {
    let a = parse(GOOD).unwrap();
    let swapped = GOOD.replace(
        "k = [2, 4]\nseparation = [0.5, 6.0]",
        "separation = [0.5, 6.0]\nk = [2, 4]",
    );
    let b = parse(&swapped).unwrap();
    let ha: std::collections::BTreeSet<_> = a.cells.iter().map(|c| c.hash.clone()).collect();
    let hb: std::collections::BTreeSet<_> = b.cells.iter().map(|c| c.hash.clone()).collect();
    assert_eq!(ha, hb);
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn reserved_and_path_like_names_are_refused_naming_file_and_key() {
    for bad in [
        "MANIFEST",
        "manifest",
        "ENVIRONMENT.json",
        "warm-starts",
        "Warm-Starts",
        ".hidden",
        "a/b",
        "a\\\\b",
        "",
        "..",
    ] {
        let text = GOOD.replace("name = \"t\"", &format!("name = \"{bad}\""));
        let e = err(&text);
        assert!(
            e.contains("exp.toml") && e.contains("experiment.name"),
            "{bad:?}: {e}"
        );
    }
    assert!(err(&GOOD.replace("name = \"t\"", "name = \"MANIFEST\"")).contains("reserved"));
    // Names merely containing a reserved word are fine.
    assert!(parse(&GOOD.replace("name = \"t\"", "name = \"warm-starts-2\"")).is_ok());
}

#[test]
fn a_huge_bad_line_gives_a_short_error() {
    let long = format!("[experiment]\nname = \"t\" {}\n", "x".repeat(200_000));
    let e = err(&long);
    assert!(
        e.contains("exp.toml") && e.contains("malformed TOML"),
        "{e}"
    );
    assert!(e.len() < 4_000, "{} characters", e.len());
    assert!(e.contains("more characters)"), "{e}");
    let huge_name = GOOD.replace(
        "name = \"t\"",
        &format!("name = \"{}\"", "n/".repeat(100_000)),
    );
    let e = err(&huge_name);
    assert!(e.len() < 4_000 && e.contains("more characters)"), "{e}");
    let huge_key = GOOD.replace(
        "p_hard = 0.2",
        &format!("p_hard = 0.2\n{} = 1", "k".repeat(100_000)),
    );
    let e = err(&huge_key);
    assert!(e.len() < 8_000 && e.contains("more characters)"), "{e}");
    assert_eq!(excerpt("short"), "short");
    assert_eq!(
        excerpt(&"é".repeat(EXCERPT_CHARS + 5)),
        format!("{}… (5 more characters)", "é".repeat(EXCERPT_CHARS))
    );
}

#[test]
fn bad_input_names_the_file_and_key() {
    assert!(err("[experiment\nname=").contains("malformed TOML"));
    assert!(err(&GOOD.replace("p_hard = 0.2", "p_hard = 0.2\nbogus = 1")).contains("bogus"));
    assert!(err(&GOOD.replace("seed = [0]", "seed = []")).contains("empty list"));
    assert!(err(&GOOD.replace("k = [2, 4]", "k = [0, 4]")).contains("k"));
    assert!(err(&GOOD.replace("p_hard = 0.2", "p_hard = 1.5")).contains("p_hard"));
    assert!(err(&GOOD.replace("tier = \"theory\"", "tier = \"nope\"")).contains("tier"));
    assert!(err(&GOOD.replace("[params]", "[parms]")).contains("parms"));
    let e = err(&GOOD.replace("k = [2, 4]", "k = [2, 2]"));
    assert!(e.contains("duplicate"), "{e}");
    assert!(err(&GOOD.replace("p_hard = 0.2", "p_hard = 2.0")).contains("exp.toml"));
}

#[test]
fn bounds_are_refused_up_front_with_their_numbers() {
    // A matrix of 10^10 cells from a short file: refused before anything is expanded.
    let axis: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let axis = format!("[{}]", axis.join(", "));
    let huge = GOOD.replace(
        "seed = [0]",
        &format!("seed = {axis}\na = {axis}\nb = {axis}\nc = {axis}\nd = {axis}"),
    );
    let err = format!("{:#}", parse(&huge).unwrap_err());
    assert!(err.contains("more than the 100000"), "{err}");
    // A name longer than a folder name should be.
    let long = GOOD.replace("name = \"t\"", &format!("name = \"{}\"", "n".repeat(300)));
    let err = format!("{:#}", parse(&long).unwrap_err());
    assert!(err.contains("300 characters"), "{err}");
    // Exclusions that drop every cell.
    let all_out = format!("{GOOD}\n[[exclude]]\nseed = 0\n");
    let err = format!("{:#}", parse(&all_out).unwrap_err());
    assert!(err.contains("remove every cell"), "{err}");
}

#[test]
fn a_file_over_the_size_cap_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 10]).unwrap();
    let err = format!("{:#}", load_experiment(&path).unwrap_err());
    assert!(err.contains("larger than"), "{err}");
    // An endless stream is cut at the cap too.
    if Path::new("/dev/zero").exists() {
        let err = format!("{:#}", load_experiment(Path::new("/dev/zero")).unwrap_err());
        assert!(err.contains("larger than"), "{err}");
    }
}

#[test]
fn a_tiny_value_of_the_wrong_type_names_its_full_key_path() {
    let smoke = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/tiny-smoke.toml"),
    )
    .unwrap();
    let bad = smoke.replacen("clip = 1.0", "clip = \"fast\"", 1);
    assert_ne!(bad, smoke, "tiny-smoke.toml has no `clip = 1.0` to break");
    let err = format!("{:#}", parse(&bad).unwrap_err());
    assert!(
        err.contains("`rl.clip`") && err.contains("invalid type"),
        "{err}"
    );
    assert!(err.contains("exp.toml"), "the file is named: {err}");
}
