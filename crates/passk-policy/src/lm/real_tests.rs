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
