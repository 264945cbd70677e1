//! Sampling throughput of SmolLM2-135M on the CPU, for `cargo xtask bench --lm`.
//!
//! ```text
//! cargo run --release -p passk-policy --example lm_sample -- GGUF --batch 64 --new 64 [--reps 3]
//! ```
//! Samples `batch` distinct prompts ("What is a + b?" in SmolLM2's chat template), one
//! completion each, at temperature 1 with no stop token, so every row makes exactly `new`
//! tokens (the same work as `bench/hf_lm_peer.py`). Prints `# ...` comments and one line
//! `sample_b<batch>_n<new> <generated tokens/s>` (median over reps), then the peak resident
//! memory `rss_mib <MiB>`.
//!
//! The prompts share SmolLM2's system turn, which the engine computes once. `--unshared 1`
//! starts each prompt with its own number, `(i) `, so they share at most a token or two: the
//! rate without that saving (prompts 4 tokens longer).
//!
//! With `--train-blocks N` it then also takes one training step's forward and backward pass
//! (`batch_logprobs` of the sampled rows, last N blocks trainable) and prints
//! `train_b<batch>_blocks<N>_ms <ms>` before the peak memory, which then covers the step.

use std::time::Instant;

use candle_core::Device;
use passk_policy::lm::{read_gguf, smollm2_prompt, CausalLm, LmTokenizer, Trainable};
use passk_policy::{SamplingParams, SequenceBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    passk_policy::tune_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .or_else(|| std::env::var("PASSK_SMOLLM2_GGUF").ok())
        .ok_or("give the GGUF path or set PASSK_SMOLLM2_GGUF")?;
    let opt = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or("a flag needs a value")?.parse()?),
            None => Ok(default),
        }
    };
    let (batch, new, reps) = (opt("--batch", 64)?, opt("--new", 64)?, opt("--reps", 3)?);
    let train_blocks = opt("--train-blocks", 0)?;
    let unshared = opt("--unshared", 0)? != 0;
    let ck = read_gguf(&path)?;
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
    let mut model = CausalLm::from_tensors(ck.config.clone(), ck.tensors, &Device::Cpu)?;
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|i| {
            let q = format!(
                "What is {} + {}? Answer with only the number.",
                i % 10,
                (3 * i) % 10
            );
            let prompt = smollm2_prompt(&q);
            tok.encode(&if unshared {
                format!("({i}) {prompt}")
            } else {
                prompt
            })
        })
        .collect::<Result<_, _>>()?;
    let shared = prompts[1..].iter().fold(prompts[0].len(), |n, p| {
        prompts[0]
            .iter()
            .zip(p)
            .take(n)
            .take_while(|(a, b)| a == b)
            .count()
    });
    println!(
        "# threads {}, batch {batch}, prompt {} tokens ({shared} shared by all), {new} new tokens",
        candle_core::utils::get_num_threads(),
        prompts[0].len()
    );
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let mut rates = Vec::new();
    let mut last = Vec::new();
    for rep in 0..reps {
        let t = Instant::now();
        let out = model.sample(&prompts, 1, new, &[], params, |p, _| {
            (rep * 100_000 + p) as u64
        })?;
        let made: usize = out.iter().map(Vec::len).sum();
        rates.push(made as f64 / t.elapsed().as_secs_f64());
        if rep == 0 {
            println!("# e.g. {:?}", tok.decode(&out[0], true)?);
        }
        last = out;
    }
    rates.sort_by(f64::total_cmp);
    let tag = if unshared { "unshared_" } else { "" };
    println!("{tag}sample_b{batch}_n{new} {:.1}", rates[rates.len() / 2]);
    if train_blocks > 0 {
        model.set_trainable(Trainable::LastBlocks {
            blocks: train_blocks,
            embeddings: false,
        });
        let pairs: Vec<(&[u32], &[u32])> = prompts
            .iter()
            .zip(&last)
            .map(|(p, c)| (p.as_slice(), c.as_slice()))
            .collect();
        // Every prompt has the same length here, so one batch holds every row.
        let rows = SequenceBatch::new(&pairs, u32::MAX, 0, &Device::Cpu)?;
        let t = Instant::now();
        let grads = model.batch_logprobs(&rows)?.sum_all()?.backward()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        drop(grads);
        println!("train_b{batch}_blocks{train_blocks}_ms {ms:.0}");
    }
    println!("rss_mib {:.0}", peak_rss_mib());
    Ok(())
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
