//! Tests of `crate::machine`: the JSON that `cargo xtask` reads.

use serde_json::json;

use super::*;
use crate::config::Cell;

const THEORY: &str = "[experiment]\nname = \"t\"\ntier = \"theory\"\nin_all = false\n[matrix]\n\
    k = [2]\nseparation = [0.5, 1.0]\nseed = [0]\n[params]\np_hard = 0.2\nn_prompts = 8\n\
    feature_std = 1.0\ntheta0 = [2.0, 0.0]\nk_scan = [1, 2]\nlr = 1.0\nsteps = 2\n\
    one_step_eta = 0.01\n";

fn experiment(tier: &str, configs: &[serde_json::Value]) -> Experiment {
    Experiment {
        path: PathBuf::from("e.toml"),
        name: "e".into(),
        tier: passk_report::tier::Tier::from_name(tier).unwrap(),
        description: String::new(),
        in_all: true,
        cells: configs
            .iter()
            .map(|c| Cell {
                config: c.as_object().unwrap().clone(),
                hash: "00".into(),
                coords: Vec::new(),
            })
            .collect(),
        sharded: false,
    }
}

#[test]
fn env_vars_are_the_strings_that_are_exactly_a_dollar_name_and_devices_the_cells_ones() {
    let exp = experiment(
        "lm",
        &[
            json!({"model": {"gguf": "$PASSK_SMOLLM2_GGUF"}, "device": "cuda", "seed": 0}),
            json!({"model": {"dir": "$OTHER_1"}, "device": "cpu", "tags": ["$IN_A_LIST"]}),
            json!({"note": "costs $5", "x": "a$B", "y": "$", "z": "$NOT-A-NAME"}),
        ],
    );
    let vars: Vec<String> = env_vars(&exp).into_iter().collect();
    assert_eq!(vars, ["IN_A_LIST", "OTHER_1", "PASSK_SMOLLM2_GGUF"]);
    let devs: Vec<String> = devices(&exp).into_iter().collect();
    assert_eq!(devs, ["cpu", "cuda"]);
    let none = experiment("tiny", &[json!({"seed": 0})]);
    assert!(env_vars(&none).is_empty() && devices(&none).is_empty());
}

#[test]
fn experiments_json_lists_every_experiment_file_but_the_claims() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), THEORY).unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        THEORY
            .replace("name = \"t\"", "name = \"a\"")
            .replace("in_all = false\n", ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("claims.toml"), "gate = []\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not toml").unwrap();
    let out = experiments_json(dir.path()).unwrap();
    let files: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            dir.path().join("a.toml").display().to_string(),
            dir.path().join("t.toml").display().to_string()
        ]
    );
    let t = &out[1];
    assert_eq!(t["name"], "t");
    assert_eq!(t["tier"], "theory");
    assert_eq!(t["in_all"], false);
    assert_eq!(out[0]["in_all"], true);
    assert_eq!(t["cells"], 2);
    assert_eq!(t["env"], json!([]));
    assert_eq!(t["devices"], json!([]));
    // A malformed file is an error naming it, as for the plain listing.
    std::fs::write(dir.path().join("bad.toml"), "[experiment\n").unwrap();
    let e = format!("{:#}", experiments_json(dir.path()).unwrap_err());
    assert!(e.contains("bad.toml"), "{e}");
}

fn verdict(name: &str, passed: bool, not_evaluated: bool, expected_failure: bool) -> Verdict {
    let claim: passk_report::claims::Claim = toml::from_str(&format!(
        "name = \"{name}\"\nexperiment = \"smoke\"\nstatistic = \"tiny_delta_pass1_ci_high\"\n\
         op = \"<\"\nthreshold = 0.0\nwhy = \"w\"\nexpected_failure = {expected_failure}\n"
    ))
    .unwrap();
    Verdict {
        claim,
        measured: (!not_evaluated).then_some(-0.25),
        estimate: (!not_evaluated).then_some(-0.5),
        interval: (!not_evaluated).then_some((-0.75, -0.25)),
        cells: if not_evaluated { 0 } else { 3 },
        passed,
        error: not_evaluated.then(|| "results/smoke/ is absent".to_string()),
        not_evaluated,
    }
}

#[test]
fn verdicts_json_has_each_claim_s_verdict_estimate_and_interval() {
    let verdicts = [
        verdict("s.pass", true, false, false),
        verdict("s.fail", false, false, false),
        verdict("s.xfail", true, false, true),
        verdict("s.absent", false, true, false),
    ];
    let out = verdicts_json(&verdicts, false);
    let claims = out["claims"].as_array().unwrap();
    let words: Vec<&str> = claims
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["PASS", "FAIL", "XFAIL", "NOT EVALUATED"]);
    let fail = &claims[1];
    assert_eq!(fail["name"], "s.fail");
    assert_eq!(fail["experiment"], "smoke");
    assert_eq!(fail["statistic"], "tiny_delta_pass1_ci_high");
    assert_eq!(
        (&fail["op"], &fail["threshold"]),
        (&json!("<"), &json!(0.0))
    );
    assert_eq!(fail["passed"], false);
    assert_eq!(fail["measured"], -0.25);
    assert_eq!(fail["estimate"], -0.5);
    assert_eq!(fail["ci"], json!([-0.75, -0.25]));
    assert_eq!(fail["cells"], 3);
    assert_eq!(fail["error"], json!(null));
    let absent = &claims[3];
    assert_eq!(absent["not_evaluated"], true);
    assert_eq!(absent["estimate"], json!(null));
    assert_eq!(absent["ci"], json!(null));
    assert_eq!(absent["error"], "results/smoke/ is absent");
    assert_eq!(
        (&out["failed"], &out["not_evaluated"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(verdicts_json(&verdicts, true)["failed"], 2, "--strict");
    // A number that is not finite is null, so the output stays JSON.
    let mut nan = verdict("s.nan", false, false, false);
    nan.estimate = Some(f64::NAN);
    let text = verdicts_json(&[nan], false).to_string();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["claims"][0]["estimate"], json!(null));
}

#[test]
fn gate_and_warm_cache_json() {
    assert_eq!(
        gate_json(&["experiments/theory.toml".to_string()]),
        json!({"experiments": ["experiments/theory.toml"]})
    );
    assert_eq!(
        warm_cache_json(
            Path::new("c"),
            Path::new("w"),
            2,
            &["sft-bb.safetensors".to_string()]
        ),
        json!({"cache": "c", "committed": "w", "copied": 2,
               "not_committed": ["sft-bb.safetensors"]})
    );
}
