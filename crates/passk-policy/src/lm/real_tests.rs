//! Checks on the real SmolLM2-135M-Instruct GGUF. They are ignored by default (the file is not
//! in the repository); `PASSK_SMOLLM2_GGUF=<file> cargo test -p passk-policy -- --ignored`
//! runs them, and they fail if the variable is unset.

use std::path::PathBuf;

use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::models::quantized_llama;

use super::*;

fn smollm2_path() -> PathBuf {
    let p = std::env::var_os("PASSK_SMOLLM2_GGUF")
        .expect("set PASSK_SMOLLM2_GGUF=<path to SmolLM2-135M-Instruct.Q4_1.gguf>");
    PathBuf::from(p)
}

#[test]
#[ignore = "needs the SmolLM2-135M-Instruct GGUF: set PASSK_SMOLLM2_GGUF"]
fn smollm2_answers_and_matches_quantized_llama() {
    let path = smollm2_path();
    let ck = read_gguf(&path).unwrap();
    assert_eq!(ck.config.num_hidden_layers, 30);
    assert_eq!(
        (ck.config.num_attention_heads, ck.config.kv_heads()),
        (9, 3)
    );
    assert!(ck.config.tie_word_embeddings);
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata).unwrap();
    let model = CausalLm::from_tensors(ck.config.clone(), ck.tensors, &Device::Cpu).unwrap();
    let eos = tok.eos().unwrap();
    assert_eq!(
        tok.encode("123").unwrap().len(),
        3,
        "SmolLM2 splits every digit"
    );

    let prompt = tok.encode("The capital of France is").unwrap();
    let out = model.greedy(&prompt, 8, &[eos]).unwrap();
    let text = tok.decode(&out, true).unwrap();
    println!("greedy continuation: {text:?}");
    assert!(text.contains("Paris"), "got {text:?}");

    let chat = tok.encode(&smollm2_prompt("What is 3+4?")).unwrap();
    let answer = model.greedy(&chat, 24, &[eos]).unwrap();
    let answer = tok.decode(&answer, true).unwrap();
    println!("chat answer to 'What is 3+4?': {answer:?}");
    assert!(answer.contains('7'), "got {answer:?}");

    // Parity with candle-transformers on the same file. The reference multiplies the Q4_1
    // weights with 8-bit-quantised activations, so agreement is up to that rounding.
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut reference =
        quantized_llama::ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let x = Tensor::new(chat.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let want = reference.forward(&x, 0).unwrap().i(0).unwrap();
    let ours = model.logits(&x).unwrap().i((0, chat.len() - 1)).unwrap();
    let diff = (&ours - &want).unwrap().abs().unwrap().max(0).unwrap();
    let diff = diff.to_scalar::<f32>().unwrap();
    let scale = want
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    println!("last-position logits: max abs diff {diff} (max |logit| {scale})");
    assert_eq!(
        ours.argmax(0).unwrap().to_scalar::<u32>().unwrap(),
        want.argmax(0).unwrap().to_scalar::<u32>().unwrap()
    );
    assert!(diff < 0.05 * scale, "max abs diff {diff} vs scale {scale}");
}

#[test]
#[ignore = "needs the SmolLM2-135M-Instruct GGUF: set PASSK_SMOLLM2_GGUF"]
fn smollm2_training_pass_with_frozen_blocks_in_the_engine_matches_autograd() {
    use crate::model::SequenceBatch;
    let ck = read_gguf(smollm2_path()).unwrap();
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata).unwrap();
    let mut model = CausalLm::from_tensors(ck.config.clone(), ck.tensors, &Device::Cpu).unwrap();
    model.set_trainable(Trainable::LastBlocks {
        blocks: 2,
        embeddings: false,
    });
    assert_eq!(model.frozen_lower_blocks(), 28);
    // Two prompts of one length, two samples each: shared prompts and distinct ones.
    let prompts: Vec<Vec<u32>> = ["What is 3 + 4?", "What is 5 + 1?"]
        .iter()
        .map(|q| tok.encode(&smollm2_prompt(q)).unwrap())
        .collect();
    let params = crate::SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let out = model
        .sample(&prompts, 2, 12, &[], params, |p, s| (p * 10 + s) as u64)
        .unwrap();
    let pairs: Vec<(&[u32], &[u32])> = out
        .iter()
        .enumerate()
        .map(|(i, c)| (prompts[i / 2].as_slice(), c.as_slice()))
        .collect();
    let batch = SequenceBatch::new(&pairs, u32::MAX, 0, &Device::Cpu).unwrap();
    let weights = Tensor::new(&[1.0f32, -0.5, 2.0, 0.25], &Device::Cpu).unwrap();
    let mut pass = |engine: bool| {
        model.set_frozen_engine(engine);
        let lp = model.batch_logprobs(&batch).unwrap();
        let g = (&lp * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        (lp, g)
    };
    let (fast, gf) = pass(true);
    let (slow, gs) = pass(false);
    let err = tests::max_abs_diff(&fast, &slow);
    assert!(err < 5e-4, "log-probabilities differ by {err}");
    for (name, var) in model.params() {
        let (a, c) = (
            gf.get(var.as_tensor()).unwrap(),
            gs.get(var.as_tensor()).unwrap(),
        );
        let scale = c.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let scale = scale.to_scalar::<f32>().unwrap().max(1e-6);
        let err = tests::max_abs_diff(a, c);
        assert!(
            err < 1e-4 * scale,
            "{name}: {err} against a largest entry of {scale}"
        );
    }
}
