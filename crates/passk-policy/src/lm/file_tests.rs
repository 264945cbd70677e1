//! File formats without network: a tiny byte-level BPE tokenizer (GGUF metadata and
//! tokenizer.json), a temporary hf-hub cache, and GGUF files checked against
//! candle-transformers' `quantized_llama`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

use super::tests::{max_abs_diff, sample_tokens, tiny_config};
use super::*;

/// GGUF tokenizer metadata of a 300-token byte-level BPE: 3 ChatML specials, the 256 byte
/// symbols, and 41 merges spelling a few words left to right.
pub(crate) fn tiny_tokenizer_metadata() -> Vec<(String, Value)> {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort();
    tokens.extend(alphabet.iter().map(|c| c.to_string()));
    let mut merges = Vec::new();
    let words = [
        "Ġthe",
        "Ġcapital",
        "Ġof",
        "ĠFrance",
        "Ġis",
        "ĠParis",
        "user",
        "assistant",
        "system",
    ];
    for w in words {
        let chars: Vec<String> = w.chars().map(|c| c.to_string()).collect();
        let mut acc = chars[0].clone();
        for c in &chars[1..] {
            merges.push(format!("{acc} {c}"));
            acc.push_str(c);
            tokens.push(acc.clone());
        }
    }
    assert_eq!(
        tokens.len(),
        300,
        "the tiny vocabulary must match the tiny model"
    );
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        ("tokenizer.ggml.merges".into(), strings(merges)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
    ]
}

fn tiny_tokenizer() -> LmTokenizer {
    let md: HashMap<String, Value> = tiny_tokenizer_metadata().into_iter().collect();
    LmTokenizer::from_gguf_metadata(&md).unwrap()
}

#[test]
fn gguf_tokenizer_splits_digits_keeps_specials_and_matches_its_tokenizer_json() {
    let tok = tiny_tokenizer();
    assert_eq!(
        (tok.bos(), tok.eos(), tok.vocab_size()),
        (Some(1), Some(2), 300)
    );
    let text = "<|im_start|>user\nWhat is 12 the capital of France?<|im_end|>";
    let ids = tok.encode(text).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(*ids.last().unwrap(), 2);
    let user = tok.token_id("user").unwrap();
    assert_eq!(ids[1], user);
    let (one, two) = (tok.token_id("1").unwrap(), tok.token_id("2").unwrap());
    assert!(
        ids.windows(2).any(|w| w == [one, two]),
        "digits are split one per token"
    );
    assert!(ids.contains(&tok.token_id("ĠFrance").unwrap()));
    assert!(ids.contains(&tok.token_id("Ġcapital").unwrap()));
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    let plain = tok.decode(&ids, true).unwrap();
    assert!(!plain.contains("<|im_start|>") && plain.contains("France"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tok.inner().save(&path, false).unwrap();
    let from_json = LmTokenizer::from_file(&path).unwrap();
    assert_eq!(from_json.encode(text).unwrap(), ids);
    assert_eq!(from_json.eos(), Some(2));
}

/// Writes `model` (and the tiny tokenizer.json) as a hf-hub cache snapshot under `home/hub`.
fn write_hf_cache(home: &Path, model: &CausalLm, repo: &str, commit: &str) {
    let folder = home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let snap = folder.join("snapshots").join(commit);
    model.save_pretrained(&snap).unwrap();
    tiny_tokenizer()
        .inner()
        .save(snap.join("tokenizer.json"), false)
        .unwrap();
    std::fs::create_dir_all(folder.join("refs")).unwrap();
    std::fs::write(folder.join("refs/main"), commit).unwrap();
}

#[test]
fn hf_cache_layout_loads_by_branch_and_by_pinned_commit() {
    let home = tempfile::tempdir().unwrap();
    let model = CausalLm::random(tiny_config("llama", true), 21, &Device::Cpu).unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    write_hf_cache(home.path(), &model, "org/tiny-lm", commit);
    // Only this test reads HF_HOME.
    std::env::set_var("HF_HOME", home.path());
    let x = sample_tokens(2, 6, 300, 5);
    let want = model.logits(&x).unwrap();
    for rev in ["main", commit] {
        let snap = hf_cache_snapshot("org/tiny-lm", rev).unwrap();
        let tok = LmTokenizer::from_file(snap.join("tokenizer.json")).unwrap();
        assert_eq!(tok.encode(" 12").unwrap().len(), 3);
        let loaded = CausalLm::from_hf_cache("org/tiny-lm", rev, &Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&want, &loaded.logits(&x).unwrap()), 0.0);
    }
    assert!(CausalLm::from_hf_cache("org/tiny-lm", "v9", &Device::Cpu).is_err());
    assert!(CausalLm::from_hf_cache("org/absent", "main", &Device::Cpu).is_err());
}

/// Logits of every position from candle-transformers' `quantized_llama` reading `path`.
fn quantized_llama_logits(path: &Path, tokens: &Tensor) -> Tensor {
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut reference =
        quantized_llama::ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let (b, t) = tokens.dims2().unwrap();
    // One row at a time: quantized_llama's output matmul needs a contiguous input.
    let rows: Vec<Tensor> = (0..b)
        .map(|r| {
            let cols: Vec<Tensor> = (1..=t)
                .map(|l| {
                    reference.clear_kv_cache();
                    let x = tokens.narrow(0, r, 1).unwrap().narrow(1, 0, l).unwrap();
                    reference.forward(&x, 0).unwrap().unsqueeze(1).unwrap()
                })
                .collect();
            Tensor::cat(&cols, 1).unwrap()
        })
        .collect();
    Tensor::cat(&rows, 0).unwrap()
}

#[test]
fn f32_gguf_round_trips_and_matches_quantized_llama() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let model = CausalLm::random(tiny_config("llama", tied), 22, &Device::Cpu).unwrap();
        let path = dir.path().join(format!("tiny-{tied}.gguf"));
        write_gguf(&model, &tiny_tokenizer_metadata(), GgmlDType::F32, &path).unwrap();
        let ck = read_gguf(&path).unwrap();
        let mut want_cfg = model.config().clone();
        want_cfg.attention_bias = Some(false);
        want_cfg.eos_token_id = Some(TokenIds::One(2));
        assert_eq!(ck.config, want_cfg);
        let tok = LmTokenizer::from_gguf_metadata(&ck.metadata).unwrap();
        assert_eq!(tok.vocab_size(), 300);
        let loaded = CausalLm::from_gguf(&path, &Device::Cpu).unwrap();
        let x = sample_tokens(2, 7, 300, 6);
        let ours = model.logits(&x).unwrap();
        assert_eq!(max_abs_diff(&ours, &loaded.logits(&x).unwrap()), 0.0);
        // quantized_llama runs the permuted rows with interleaved RoPE: agreement proves the
        // permutation is undone correctly.
        let err = max_abs_diff(&ours, &quantized_llama_logits(&path, &x));
        assert!(err < 1e-4, "tied={tied}: max abs diff {err}");
    }
}

#[test]
fn q8_gguf_dequantises_close_to_the_original_and_to_quantized_llama() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(tiny_config("llama", true), 23, &Device::Cpu).unwrap();
    let path = dir.path().join("tiny-q8.gguf");
    write_gguf(&model, &[], GgmlDType::Q8_0, &path).unwrap();
    let loaded = CausalLm::from_gguf(&path, &Device::Cpu).unwrap();
    let x = sample_tokens(2, 7, 300, 7);
    let ours = loaded.logits(&x).unwrap();
    let scale = ours.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let scale = scale.to_scalar::<f32>().unwrap();
    let vs_f32 = max_abs_diff(&ours, &model.logits(&x).unwrap()) / scale;
    assert!(
        vs_f32 > 0.0 && vs_f32 < 0.02,
        "relative diff to f32 weights {vs_f32}"
    );
    // quantized_llama also quantises the activations to 8 bits, so agreement is looser.
    let vs_ref = max_abs_diff(&ours, &quantized_llama_logits(&path, &x)) / scale;
    assert!(vs_ref < 0.02, "relative diff to quantized_llama {vs_ref}");
}

#[test]
fn qwen2_gguf_is_not_permuted_and_keeps_biases() {
    let dir = tempfile::tempdir().unwrap();
    let model = CausalLm::random(tiny_config("qwen2", false), 24, &Device::Cpu).unwrap();
    let path = dir.path().join("tiny-qwen2.gguf");
    write_gguf(&model, &[], GgmlDType::F32, &path).unwrap();
    let ck = read_gguf(&path).unwrap();
    assert!(ck.config.qkv_bias());
    let raw = ck.tensors["model.layers.0.self_attn.q_proj.weight"].clone();
    let orig = model
        .var("model.layers.0.self_attn.q_proj.weight")
        .unwrap()
        .as_tensor()
        .clone();
    assert_eq!(max_abs_diff(&raw, &orig), 0.0);
    let loaded = CausalLm::from_gguf(&path, &Device::Cpu).unwrap();
    let x = sample_tokens(1, 5, 300, 8);
    assert_eq!(
        max_abs_diff(&model.logits(&x).unwrap(), &loaded.logits(&x).unwrap()),
        0.0
    );
}

#[test]
fn rope_row_permutation_is_inverted_and_names_round_trip() {
    let w = Tensor::arange(0f32, 48.0, &Device::Cpu)
        .unwrap()
        .reshape((12, 4))
        .unwrap();
    let there = permute_rope_rows(&w, 2, true).unwrap();
    assert_ne!(max_abs_diff(&there, &w), 0.0);
    // llama.cpp's order within a head of 6 rows: 0, 3, 1, 4, 2, 5.
    let first_col: Vec<f32> = there
        .narrow(1, 0, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(&first_col[..6], &[0.0, 12.0, 4.0, 16.0, 8.0, 20.0]);
    let back = permute_rope_rows(&there, 2, false).unwrap();
    assert_eq!(max_abs_diff(&back, &w), 0.0);
    for (name, _) in param_shapes(&tiny_config("qwen2", false)) {
        let g = gguf_name(&name).unwrap();
        assert_eq!(hf_name(&g).as_deref(), Some(name.as_str()));
    }
    assert!(hf_name("blk.0.attn_qkv.weight").is_none());
}
