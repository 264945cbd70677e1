//! Checks on the real datasets in `../shared/data` (skipped, with a message, when absent):
//! every GSM8K solution verifies against its own `####` answer, MATH-500 gold answers verify
//! against the last boxed answer of their own solution (>= 97%), SVAMP answers verify against
//! themselves. Run with `--nocapture` to see counts and misses.

use passk_tasks::data::{load, Dataset, LoadOptions};
use passk_tasks::{StandardVerifier, Verifier};
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let dir = std::env::var_os("PASSK_DATA")
        .map(PathBuf::from)
        .unwrap_or(dir);
    dir.is_dir().then_some(dir)
}

fn file(rel: &str) -> Option<PathBuf> {
    let Some(dir) = data_dir() else {
        println!("skipped: ../shared/data not found");
        return None;
    };
    let p = dir.join(rel);
    if !p.is_file() {
        println!("skipped: {} not found", p.display());
        return None;
    }
    Some(p)
}

#[test]
fn gsm8k_solutions_verify_against_their_own_answers() {
    for split in ["test", "train"] {
        let Some(path) = file(&format!("gsm8k/{split}.jsonl")) else {
            return;
        };
        let loaded = load(Dataset::Gsm8k, &path, LoadOptions::default()).unwrap();
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
        let v = StandardVerifier;
        let misses: Vec<_> = loaded
            .prompts
            .iter()
            .filter(|p| !v.verify(p, p.solution.as_deref().unwrap()).is_correct())
            .map(|p| p.id.clone())
            .collect();
        println!(
            "gsm8k {split}: {} / {} verify",
            loaded.prompts.len() - misses.len(),
            loaded.prompts.len()
        );
        assert!(misses.is_empty(), "misses: {misses:?}");
        if split == "test" {
            assert_eq!(loaded.prompts.len(), 1319);
        }
    }
}

#[test]
fn math500_gold_matches_last_boxed_of_solution() {
    let Some(path) = file("math500/test.jsonl") else {
        return;
    };
    let loaded = load(Dataset::Math500, &path, LoadOptions::default()).unwrap();
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert_eq!(loaded.prompts.len(), 500);
    let v = StandardVerifier;
    let mut misses = Vec::new();
    for p in &loaded.prompts {
        let verdict = v.verify(p, p.solution.as_deref().unwrap());
        if !verdict.is_correct() {
            misses.push(format!(
                "{}: gold {:?} vs boxed {:?}",
                p.id,
                p.reference,
                verdict.parsed()
            ));
        }
    }
    let ok = loaded.prompts.len() - misses.len();
    println!(
        "math500: {ok} / {} gold answers match the last boxed answer",
        loaded.prompts.len()
    );
    for m in &misses {
        println!("  miss {m}");
    }
    assert!(ok * 100 >= 97 * loaded.prompts.len(), "only {ok} of 500");
}

#[test]
fn svamp_answers_verify_against_themselves() {
    let Some(path) = file("svamp/test.jsonl") else {
        return;
    };
    let loaded = load(Dataset::Svamp, &path, LoadOptions::default()).unwrap();
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let v = StandardVerifier;
    let ok = loaded
        .prompts
        .iter()
        .filter(|p| {
            v.verify(p, &format!("The answer is {}.", p.reference))
                .is_correct()
        })
        .count();
    println!("svamp: {ok} / {} answers verify", loaded.prompts.len());
    assert_eq!(ok, loaded.prompts.len());
}

#[test]
fn math500_verifier_rejects_other_problems_answers() {
    let Some(path) = file("math500/test.jsonl") else {
        return;
    };
    let loaded = load(Dataset::Math500, &path, LoadOptions::default()).unwrap();
    let v = StandardVerifier;
    let ps = &loaded.prompts;
    let mut raw_equal = 0;
    let mut shifted_ok = 0;
    let mut shifted_same_gold = 0;
    for (i, p) in ps.iter().enumerate() {
        let boxed = passk_tasks::math::last_boxed(p.solution.as_deref().unwrap())
            .found()
            .unwrap_or_default();
        raw_equal += usize::from(boxed == p.reference);
        let q = &ps[(i + 1) % ps.len()];
        if v.verify(p, q.solution.as_deref().unwrap()).is_correct() {
            shifted_ok += 1;
            shifted_same_gold +=
                usize::from(passk_tasks::math::math_equiv(&p.reference, &q.reference));
        }
    }
    println!("math500: {raw_equal} boxed answers equal the gold string verbatim");
    println!("math500: {shifted_ok} of {} neighbours' solutions accepted ({shifted_same_gold} have an equivalent gold)", ps.len());
    assert_eq!(
        shifted_ok, shifted_same_gold,
        "accepted a neighbour whose gold differs"
    );
    assert!(
        shifted_ok * 50 < ps.len(),
        "{shifted_ok} neighbour matches is implausibly many"
    );
}

#[test]
fn math500_gold_survives_cosmetic_rewrites() {
    let Some(path) = file("math500/test.jsonl") else {
        return;
    };
    let loaded = load(Dataset::Math500, &path, LoadOptions::default()).unwrap();
    let v = StandardVerifier;
    let mut misses = Vec::new();
    for p in &loaded.prompts {
        let g = &p.reference;
        let variants = [
            g.replace("\\frac", "\\dfrac"),
            g.replace(',', ", ")
                .replace('(', "\\left(")
                .replace(')', "\\right)"),
            format!(" {g} ").replace('+', " + "),
            format!("{g}."),
        ];
        for var in variants {
            if !v.verify(p, &format!("so $\\boxed{{{var}}}$")).is_correct() {
                misses.push(format!("{}: {g:?} -> {var:?}", p.id));
            }
        }
    }
    println!("math500 rewrites: {} misses", misses.len());
    for m in misses.iter().take(20) {
        println!("  {m}");
    }
    assert!(misses.is_empty(), "{} misses", misses.len());
}
