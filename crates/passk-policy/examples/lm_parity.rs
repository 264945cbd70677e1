//! Exact-weight parity of this crate's SmolLM2 with candle-transformers' `quantized_llama`.
//!
//! ```text
//! cargo run --release -p passk-policy --example lm_parity -- /path/to/model.gguf
//! ```
//! (the path defaults to `$PASSK_SMOLLM2_GGUF`). Sets `CANDLE_DEQUANTIZE_ALL=1` before
//! anything runs, so the reference multiplies the same dequantised f32 weights as this crate
//! (instead of quantising activations to 8 bits), and prints the largest logit difference
//! over several prefixes of a chat prompt. Exits with an error above 1e-3.

use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::models::quantized_llama;
use passk_policy::lm::{read_gguf, smollm2_prompt, CausalLm, LmTokenizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read once per thread by candle; set before any candle work starts.
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PASSK_SMOLLM2_GGUF").ok())
        .ok_or("give the GGUF path or set PASSK_SMOLLM2_GGUF")?;
    let dev = Device::Cpu;
    let ck = read_gguf(&path)?;
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
    let model = CausalLm::from_tensors(ck.config, ck.tensors, &dev)?;
    let mut file = std::fs::File::open(&path)?;
    let content = gguf_file::Content::read(&mut file)?;
    let mut reference = quantized_llama::ModelWeights::from_gguf(content, &mut file, &dev)?;
    let ids = tok.encode(&smollm2_prompt("What is 3+4?"))?;
    let x = Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?;
    let ours = model.logits(&x)?.i(0)?;
    let mut worst = 0f32;
    let lens = [1, 2, ids.len() / 2, ids.len() - 1, ids.len()];
    for &l in &lens {
        reference.clear_kv_cache();
        let want = reference
            .forward(&x.narrow(1, 0, l)?.contiguous()?, 0)?
            .i(0)?;
        let got = ours.i(l - 1)?;
        let diff = (&got - &want)?.abs()?.max(0)?.to_scalar::<f32>()?;
        let scale = want.abs()?.max(0)?.to_scalar::<f32>()?;
        println!("prefix {l:>3}: max abs diff {diff:.2e} (max |logit| {scale:.1})");
        worst = worst.max(diff);
    }
    println!("worst max abs diff: {worst:.2e}");
    if worst > 1e-3 {
        return Err(format!("logits differ by {worst}").into());
    }
    Ok(())
}
