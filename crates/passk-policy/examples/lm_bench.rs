//! Throughput of SmolLM2-135M on the CPU: KV-cache sampling and training steps.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p passk-policy --example lm_bench -- \
//!     /path/to/SmolLM2-135M-Instruct.Q4_1.gguf [last_blocks=4]
//! ```
//! (the path defaults to `$PASSK_SMOLLM2_GGUF`). Prints generated tokens/s for batch 16 with
//! 32 new tokens (this crate's model, and candle-transformers' llama on the same detached
//! f32 weights, and its quantized llama on the Q4_1 file), and training tokens/s
//! (`sequence_logprobs` forward + backward) training the last blocks and all blocks.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, quantized_llama};
use passk_policy::lm::{read_gguf, smollm2_prompt, CausalLm, LmTokenizer, Trainable};
use passk_policy::{SamplingParams, SequenceBatch};

const BATCH: usize = 16;
const NEW: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .or_else(|| std::env::var("PASSK_SMOLLM2_GGUF").ok())
        .ok_or("give the GGUF path or set PASSK_SMOLLM2_GGUF")?;
    let last_blocks: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    println!("threads: {}", candle_core::utils::get_num_threads());
    let dev = Device::Cpu;
    let t0 = Instant::now();
    let ck = read_gguf(&path)?;
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
    let cfg = ck.config.clone();
    let mut model = CausalLm::from_tensors(cfg.clone(), ck.tensors, &dev)?;
    println!(
        "loaded {} parameters in {:.1}s",
        model.num_params(),
        t0.elapsed().as_secs_f64()
    );
    let prompt = tok.encode(&smollm2_prompt("What is 3+4?"))?;
    let p = prompt.len();

    // Sampling with this crate's model (no stop token, so every row makes NEW tokens).
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let t = Instant::now();
    let out = model.sample(
        std::slice::from_ref(&prompt),
        BATCH,
        NEW,
        &[],
        params,
        |_, s| s as u64,
    )?;
    let secs = t.elapsed().as_secs_f64();
    let made: usize = out.iter().map(Vec::len).sum();
    println!(
        "sample (ours, KV cache, batch {BATCH}, prompt {p}, {NEW} new): {made} tokens in \
         {secs:.2}s = {:.1} tok/s",
        made as f64 / secs
    );
    println!("  e.g. {:?}", tok.decode(&out[0], true)?);

    // candle-transformers llama on detached f32 tensors sharing the Vars' storage.
    let tensors: HashMap<String, Tensor> = model
        .all_params()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().detach()))
        .collect();
    let ref_cfg = llama::Config {
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        vocab_size: cfg.vocab_size,
        num_hidden_layers: cfg.num_hidden_layers,
        num_attention_heads: cfg.num_attention_heads,
        num_key_value_heads: cfg.kv_heads(),
        use_flash_attn: false,
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: cfg.max_position_embeddings,
        tie_word_embeddings: cfg.tie_word_embeddings,
    };
    let reference = llama::Llama::load(
        VarBuilder::from_tensors(tensors, DType::F32, &dev),
        &ref_cfg,
    )?;
    let rows: Vec<u32> = (0..BATCH).flat_map(|_| prompt.clone()).collect();
    let x = Tensor::from_vec(rows, (BATCH, p), &dev)?;
    let t = Instant::now();
    let mut cache = llama::Cache::new(true, DType::F32, &ref_cfg, &dev)?;
    let mut logits = reference.forward(&x, 0, &mut cache)?;
    for step in 1..NEW {
        let next = logits.argmax(1)?.unsqueeze(1)?;
        logits = reference.forward(&next, p + step - 1, &mut cache)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "candle-transformers llama (f32, greedy argmax, batch {BATCH}): {:.1} tok/s",
        (BATCH * NEW) as f64 / secs
    );

    let mut file = std::fs::File::open(&path)?;
    let content = gguf_file::Content::read(&mut file)?;
    let mut q = quantized_llama::ModelWeights::from_gguf(content, &mut file, &dev)?;
    let t = Instant::now();
    // quantized_llama cannot prefill several rows at once (its output matmul gets a strided
    // input), so the prompt goes in one position at a time.
    let mut logits = q.forward(&x.narrow(1, 0, 1)?.contiguous()?, 0)?;
    for i in 1..p {
        logits = q.forward(&x.narrow(1, i, 1)?.contiguous()?, i)?;
    }
    for step in 1..NEW {
        let next = logits.argmax(1)?.unsqueeze(1)?;
        logits = q.forward(&next, p + step - 1)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "candle-transformers quantized_llama (Q4_1, inference only, batch {BATCH}, prompt fed \
         one position at a time): {:.1} tok/s",
        (BATCH * NEW) as f64 / secs
    );

    // Training steps: sequence_logprobs forward + backward over prompt + NEW completion tokens.
    let pairs: Vec<(&[u32], &[u32])> = out
        .iter()
        .map(|c| (prompt.as_slice(), c.as_slice()))
        .collect();
    let batch = SequenceBatch::new(&pairs, u32::MAX, 0, &dev)?;
    let seq_tokens = BATCH * (p + NEW);
    for (label, which) in [
        (
            format!("last {last_blocks} blocks"),
            Trainable::LastBlocks {
                blocks: last_blocks,
                embeddings: false,
            },
        ),
        ("all blocks + embeddings".to_string(), Trainable::All),
    ] {
        model.set_trainable(which);
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let lp = model.batch_logprobs(&batch)?;
            let grads = lp.sum_all()?.backward()?;
            let n = model
                .params()
                .iter()
                .filter(|(_, v)| grads.get(v.as_tensor()).is_some())
                .count();
            assert_eq!(n, model.params().len());
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let secs = times[1];
        println!(
            "train ({label}, {} trainable): median {secs:.2}s per step of {BATCH}x{} tokens = \
             {:.0} tok/s ({:.0} completion tok/s)",
            model.num_trainable(),
            p + NEW,
            seq_tokens as f64 / secs,
            (BATCH * NEW) as f64 / secs
        );
    }
    let t = Instant::now();
    model.batch_logprobs(&batch)?;
    println!(
        "sequence_logprobs forward only (all trainable, graph built): {:.2}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
