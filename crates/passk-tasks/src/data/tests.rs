use super::*;
use crate::verify::{StandardVerifier, Verifier};
use std::io::Write;

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    path
}

const GSM: &str = concat!(
    r#"{"question": "2+2?", "answer": "2+2=<<2+2=4>>4\n#### 4"}"#,
    "\n\n",
    r#"{"question": "big", "answer": "so\n#### 1,234"}"#,
    "\n",
    r#"{"question": "broken", "answer": "no hashes"}"#,
    "\n",
    "{not json\n",
);

#[test]
fn gsm8k_loads_and_skips_malformed_lines_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "test.jsonl", GSM);
    let loaded = load_gsm8k(&path, LoadOptions::default()).unwrap();
    assert_eq!(loaded.prompts.len(), 2);
    assert_eq!(loaded.prompts[1].reference, "1234");
    assert_eq!(loaded.prompts[0].id, "gsm8k:test:1");
    let lines: Vec<usize> = loaded.skipped.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![4, 5]);
    assert!(
        loaded.skipped[0].to_string().contains("test.jsonl:4: "),
        "{}",
        loaded.skipped[0]
    );
    for p in &loaded.prompts {
        assert!(StandardVerifier
            .verify(p, p.solution.as_deref().unwrap())
            .is_correct());
    }
}

#[test]
fn malformed_lines_can_be_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "test.jsonl", GSM);
    let opts = LoadOptions {
        on_malformed: OnMalformed::Fail,
        limit: None,
    };
    match load_gsm8k(&path, opts) {
        Err(DataError::Malformed(bad)) => assert_eq!(bad.line, 4),
        other => panic!("{other:?}"),
    }
    let limited = load_gsm8k(
        &path,
        LoadOptions {
            on_malformed: OnMalformed::Fail,
            limit: Some(2),
        },
    )
    .unwrap();
    assert_eq!(limited.prompts.len(), 2);
}

#[test]
fn math_and_svamp_rows() {
    let dir = tempfile::tempdir().unwrap();
    let math = write(
        &dir,
        "math.jsonl",
        r#"{"problem": "p", "solution": "so $\\boxed{\\frac12}$", "answer": "0.5", "subject": "Algebra", "level": 3, "unique_id": "test/a/1.json"}"#,
    );
    let m = load_math500(&math, LoadOptions::default()).unwrap();
    let p = &m.prompts[0];
    assert_eq!(
        (p.id.as_str(), p.difficulty, p.family),
        ("test/a/1.json", 3, Family::Math)
    );
    assert!(StandardVerifier
        .verify(p, p.solution.as_deref().unwrap())
        .is_correct());
    let sv = write(
        &dir,
        "svamp.jsonl",
        concat!(
            r#"{"Answer":145.0,"Question":"How big?","Body":"There are 290 bananas","ID":"chal-1"}"#,
            "\n",
            r#"{"Answer":0.5,"Question":"Half?","Body":"One cake.","ID":"chal-2"}"#,
            "\n",
            r#"{"Answer":"x","Question":"Q","Body":"B"}"#,
        ),
    );
    let s = load_svamp(&sv, LoadOptions::default()).unwrap();
    assert_eq!(s.prompts.len(), 2);
    assert_eq!(s.skipped.len(), 1);
    assert_eq!(s.prompts[0].text, "There are 290 bananas. How big?");
    assert_eq!(s.prompts[0].reference, "145");
    assert_eq!(s.prompts[1].reference, "0.5");
    assert!(StandardVerifier
        .verify(&s.prompts[1], "It is 1/2")
        .is_correct());
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = load_svamp(
        Path::new("/nonexistent/svamp.jsonl"),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/svamp.jsonl"),
        "{err}"
    );
}

#[test]
fn hub_cache_lookup_finds_snapshots_and_never_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("datasets--HuggingFaceH4--MATH-500");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "abc123").unwrap();
    let snap = repo.join("snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(
        snap.join("test.jsonl"),
        r#"{"problem": "p", "solution": "\\boxed{2}", "answer": "2", "level": 1, "unique_id": "u"}"#,
    )
    .unwrap();
    let loaded = load_from_hub_cache(
        Dataset::Math500,
        "HuggingFaceH4/MATH-500",
        "test.jsonl",
        Some(dir.path()),
        LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded.prompts.len(), 1);
    let err = hub_cache_file("someone/absent", "test.jsonl", Some(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::NotInCache { .. }));
    assert!(err.to_string().contains("someone/absent"));
}

#[test]
fn vendored_paths_point_into_the_crate() {
    let dir = vendored_dir();
    assert!(dir.ends_with("data/real"), "{}", dir.display());
    assert!(dir.starts_with(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        vendored_path(Dataset::Gsm8k, "train"),
        dir.join("gsm8k").join("train.jsonl")
    );
    assert_eq!(
        vendored_path(Dataset::Math500, "test"),
        dir.join("math500").join("test.jsonl")
    );
    let svamp = vendored_path(Dataset::Svamp, "test");
    assert_eq!(svamp, dir.join("svamp").join("test.jsonl"));
    let loaded = load_svamp(
        &svamp,
        LoadOptions {
            limit: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(loaded.prompts.len(), 3);
}
