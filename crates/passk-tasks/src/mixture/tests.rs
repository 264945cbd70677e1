use super::*;
use std::collections::HashMap;

fn single(family: Family, lo: u32, hi: u32) -> MixtureConfig {
    MixtureConfig {
        name: family.name().into(),
        families: vec![FamilySpec {
            family,
            weight: 1.0,
            difficulty: [lo, hi],
            moduli: vec![],
        }],
        cue_reliability: 1.0,
        reversed_share: 0.1,
        splits: SplitShares::default(),
    }
}

fn field_of(cfg: MixtureConfig) -> String {
    cfg.validate().unwrap_err().field
}

#[test]
fn presets_validate_and_differ_only_in_q() {
    let i = MixtureConfig::preset("interference").unwrap();
    let c = MixtureConfig::preset("control").unwrap();
    i.validate().unwrap();
    c.validate().unwrap();
    MixtureConfig::preset("arithmetic")
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(i.cue_reliability, 0.75);
    assert_eq!(c.cue_reliability, 1.0);
    assert_eq!(i.families, c.families);
    assert_eq!(MixtureConfig::preset("nope").unwrap_err().field, "preset");
}

#[test]
fn deserialises_from_toml_and_rejects_unknown_fields() {
    let src = r#"
        name = "interference"
        cue_reliability = 0.75
        reversed_share = 0.1
        families = [
          { family = "addition", weight = 0.9, difficulty = [3, 3] },
          { family = "reversed_addition", weight = 0.1, difficulty = [3, 3] },
        ]
    "#;
    let cfg: MixtureConfig = toml::from_str(src).unwrap();
    assert_eq!(cfg, MixtureConfig::preset("interference").unwrap());
    let typo = src.replace("cue_reliability", "cue_reliabilty");
    assert!(toml::from_str::<MixtureConfig>(&typo).is_err());
    let typo = src.replace("weight = 0.9", "wieght = 0.9");
    assert!(toml::from_str::<MixtureConfig>(&typo).is_err());
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<MixtureConfig>(&json).unwrap(), cfg);
}

#[test]
fn validation_names_the_field() {
    let base = MixtureConfig::preset("interference").unwrap();
    let mut c = base.clone();
    c.cue_reliability = 1.5;
    assert_eq!(field_of(c), "cue_reliability");
    let mut c = base.clone();
    c.cue_reliability = f64::NAN;
    assert_eq!(field_of(c), "cue_reliability");
    let mut c = base.clone();
    c.families[1].weight = -1.0;
    assert_eq!(field_of(c), "families[1].weight");
    let mut c = base.clone();
    c.families.iter_mut().for_each(|f| f.weight = 0.0);
    assert_eq!(field_of(c), "families");
    let mut c = base.clone();
    c.families[0].difficulty = [0, 3];
    assert_eq!(field_of(c), "families[0].difficulty");
    let mut c = base.clone();
    c.families[0].difficulty = [6, 6];
    let err = c.validate().unwrap_err();
    assert!(err.to_string().contains("1..=5"), "{err}");
    let mut c = base.clone();
    c.families[1].difficulty = [2, 2];
    assert_eq!(field_of(c), "families.reversed_addition.difficulty");
    let mut c = base.clone();
    c.families[1].family = Family::Addition;
    assert_eq!(field_of(c), "families[1].family");
    let mut c = base.clone();
    c.families[1].family = Family::Gsm8k;
    assert_eq!(field_of(c), "families[1].family");
    let mut c = base.clone();
    c.reversed_share = 0.0;
    assert_eq!(field_of(c), "reversed_share");
    let mut c = base.clone();
    c.splits.eval = 0.2;
    assert_eq!(field_of(c), "splits");
    let mut c = single(Family::Modular, 1, 2);
    c.families[0].moduli = vec![7, 8];
    assert_eq!(field_of(c), "families[0].moduli");
    let mut c = single(Family::Addition, 1, 2);
    c.families[0].moduli = vec![7];
    assert_eq!(field_of(c), "families[0].moduli");
    let mut c = base;
    c.families.clear();
    assert_eq!(field_of(c), "families");
}

/// The operand identity of a prompt: forward and reversed addition share one operand space.
fn operand_key(p: &Prompt) -> String {
    let (_, ops) = p.id.split_once(':').unwrap();
    let domain = match p.family {
        Family::Addition | Family::ReversedAddition => "add",
        f => f.name(),
    };
    format!("{domain}:{ops}")
}

#[test]
fn splits_never_share_operands() {
    let m = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
    let mut owner: HashMap<String, Split> = HashMap::new();
    for (split, n) in [
        (Split::Train, 6000),
        (Split::Probe, 1500),
        (Split::Eval, 1500),
    ] {
        for seed in [1, 2] {
            for p in m.generate(split, n, seed).unwrap() {
                assert_eq!(p.split, Some(split));
                let prev = owner.insert(operand_key(&p), split);
                assert!(
                    prev.is_none_or(|s| s == split),
                    "{} in {prev:?} and {split:?}",
                    p.id
                );
            }
        }
    }
    // Enough prompts of every family landed in every split for the check to mean something.
    assert!(owner.len() > 5000, "{}", owner.len());
}

#[test]
fn interference_mixture_has_the_designed_statistics() {
    let m = Mixture::new(MixtureConfig::preset("interference").unwrap()).unwrap();
    let ps = m.generate(Split::Train, 20_000, 3).unwrap();
    let share = |f: &dyn Fn(&Prompt) -> bool, of: &dyn Fn(&Prompt) -> bool| {
        let pool: Vec<_> = ps.iter().filter(|p| of(p)).collect();
        pool.iter().filter(|p| f(p)).count() as f64 / pool.len() as f64
    };
    let is_r = |p: &Prompt| p.family == Family::ReversedAddition;
    let r = share(&is_r, &|_| true);
    assert!((r - 0.1).abs() < 0.01, "R share {r}");
    let truthful = |p: &Prompt| p.cue_truthful == Some(true);
    let q_f = share(&truthful, &|p| !is_r(p));
    let q_r = share(&truthful, &is_r);
    assert!((q_f - 0.75).abs() < 0.015, "{q_f}");
    assert!((q_r - 0.75).abs() < 0.04, "{q_r}");
    // The posterior P(R | <R> shown) is below 1/2: pass@1 prefers never reversing.
    let post = share(&is_r, &|p| p.text.starts_with("<R>"));
    assert!(post < 0.5 && post > 0.15, "posterior {post}");
    // The hidden rule really is a function of the operands.
    for p in &ps {
        let ops: Vec<u64> =
            p.id.split_once(':')
                .unwrap()
                .1
                .split('+')
                .map(|x| x.parse().unwrap())
                .collect();
        assert_eq!(synth::hidden_reversed(ops[0], ops[1], 0.1), is_r(p));
        assert_eq!(p.text.len(), "<F>123+456=".len());
        assert_eq!(p.reference.len(), 4);
    }
}

#[test]
fn control_generates_the_same_prompts_with_true_tags() {
    let i = Mixture::new(MixtureConfig::preset("interference").unwrap()).unwrap();
    let c = Mixture::new(MixtureConfig::preset("control").unwrap()).unwrap();
    let pi = i.generate(Split::Eval, 3000, 11).unwrap();
    let pc = c.generate(Split::Eval, 3000, 11).unwrap();
    let mut flipped = 0;
    for (a, b) in pi.iter().zip(&pc) {
        assert_eq!(
            (&a.id, &a.reference, a.family),
            (&b.id, &b.reference, b.family)
        );
        assert_eq!(b.cue_truthful, Some(true));
        let want = if b.family == Family::ReversedAddition {
            "<R>"
        } else {
            "<F>"
        };
        assert!(b.text.starts_with(want));
        flipped += usize::from(a.text != b.text);
    }
    let share = flipped as f64 / pi.len() as f64;
    assert!((share - 0.25).abs() < 0.03, "{share}");
}

#[test]
fn weights_and_difficulty_ranges_are_respected() {
    let m = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
    let ps = m.generate(Split::Train, 10_000, 5).unwrap();
    for spec in &m.config().families {
        let mine: Vec<_> = ps.iter().filter(|p| p.family == spec.family).collect();
        let share = mine.len() as f64 / ps.len() as f64;
        assert!(
            (share - spec.weight).abs() < 0.02,
            "{}: {share}",
            spec.family
        );
        for p in &mine {
            assert!(
                (spec.difficulty[0]..=spec.difficulty[1]).contains(&p.difficulty),
                "{p:?}"
            );
            assert!(p.reference.len() <= m.max_reference_chars(), "{p:?}");
        }
        let lens: HashSet<usize> = mine.iter().map(|p| p.text.len()).collect();
        assert!(
            spec.family == Family::Modular || lens.len() == 1,
            "{}: {lens:?}",
            spec.family
        );
    }
}

#[test]
fn every_generated_reference_verifies() {
    use crate::verify::{StandardVerifier, Verifier};
    let m = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
    for p in m.generate(Split::Probe, 3000, 9).unwrap() {
        assert!(
            StandardVerifier.verify(&p, &p.reference).is_correct(),
            "{p:?}"
        );
        if let Some(alt) = &p.alt_reference {
            assert_eq!(
                StandardVerifier.verify(&p, alt).is_correct(),
                alt == &p.reference
            );
        }
    }
}

#[test]
fn distinct_generation_and_exhaustion() {
    let m = Mixture::new(single(Family::Addition, 1, 1)).unwrap();
    let ps = m.generate_distinct(Split::Train, 50, 1).unwrap();
    assert_eq!(ps.iter().map(|p| &p.id).collect::<HashSet<_>>().len(), 50);
    // Only 100 one-digit pairs exist; 80% go to train, so 100 distinct train prompts cannot.
    assert!(matches!(
        m.generate_distinct(Split::Train, 100, 1),
        Err(GenError::TooFewDistinct { .. })
    ));
    let mut cfg = single(Family::Addition, 1, 1);
    cfg.splits = SplitShares {
        train: 1.0 - 2e-12,
        probe: 1e-12,
        eval: 1e-12,
    };
    let m = Mixture::new(cfg).unwrap();
    assert!(matches!(
        m.generate(Split::Eval, 1, 0),
        Err(GenError::Exhausted { .. })
    ));
}

/// 10k prompts per family (train split, seed 0) hash to pinned values: the generators are
/// deterministic across runs, platforms and threads. A deliberate format change must update them.
#[test]
fn generator_fingerprints_are_pinned() {
    let cases = [
        (Family::Addition, 1, 5),
        (Family::ReversedAddition, 1, 5),
        (Family::Multiplication, 1, 3),
        (Family::Modular, 1, 3),
        (Family::Countdown, 1, 3),
    ];
    let mut got = Vec::new();
    for (family, lo, hi) in cases {
        let m = Mixture::new(single(family, lo, hi)).unwrap();
        got.push(fingerprint(&m.generate(Split::Train, 10_000, 0).unwrap()));
    }
    let interference = Mixture::new(MixtureConfig::preset("interference").unwrap()).unwrap();
    got.push(fingerprint(
        &interference.generate(Split::Train, 10_000, 0).unwrap(),
    ));
    // Same result when generated on other threads, concurrently.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let m = Mixture::new(MixtureConfig::preset("interference").unwrap()).unwrap();
                fingerprint(&m.generate(Split::Train, 10_000, 0).unwrap())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), got[5]);
    }
    let pinned: [u64; 6] = [
        0x6485_c309_8698_babb,
        0xdc75_0bcd_da47_1c0b,
        0x5332_ebe3_c03e_e9d7,
        0x9eb1_99e1_b7bb_1173,
        0x75aa_6d2c_82ff_dc5f,
        0x63d4_73e2_3b33_40ec,
    ];
    println!("fingerprints: {got:#018x?}");
    assert_eq!(got, pinned);
}

#[test]
fn seeds_and_splits_give_different_streams() {
    let m = Mixture::new(MixtureConfig::preset("control").unwrap()).unwrap();
    let a = fingerprint(&m.generate(Split::Train, 100, 0).unwrap());
    assert_eq!(a, fingerprint(&m.generate(Split::Train, 100, 0).unwrap()));
    assert_ne!(a, fingerprint(&m.generate(Split::Train, 100, 1).unwrap()));
    assert_ne!(a, fingerprint(&m.generate(Split::Probe, 100, 0).unwrap()));
}
