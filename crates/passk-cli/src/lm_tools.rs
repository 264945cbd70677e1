//! LM helpers for checking a GPU without the real weights: `passk lm-shape` writes a model's
//! `config.json` and `tokenizer.json` (no weights) from a GGUF file, `passk lm-random` fills
//! such a folder with seeded random weights of that shape, and `passk lm-bench` times batched
//! sampling and the policy-loss forward/backward on a device.
//!
//! The SmolLM2 GGUF (98 MB) does not fit the 64 MiB that can be copied to a GPU machine at
//! once, but its shape and tokenizer (about 2 MB) do: the weights are made there from a seed.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use passk_policy::lm::{read_gguf, CausalLm, LmConfig, LmTokenizer, Trainable};
use passk_policy::{SamplingParams, SequenceBatch};

/// Writes `config.json` and `tokenizer.json` of the GGUF model `gguf` into `dir`.
pub fn shape(gguf: &Path, dir: &Path) -> Result<()> {
    let ck = read_gguf(gguf).with_context(|| format!("reading {}", gguf.display()))?;
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("config.json"), ck.config.to_json_string())?;
    tok.inner()
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("writing tokenizer.json: {e}"))?;
    Ok(())
}

/// Writes `model.safetensors`, seeded random weights (see `CausalLm::random`) of the shape in
/// `dir/config.json`, into `dir`.
pub fn random(dir: &Path, seed: u64) -> Result<()> {
    let cfg = LmConfig::from_file(dir.join("config.json")).with_context(|| {
        format!(
            "{} needs a config.json (write one with `passk lm-shape <gguf> {}`)",
            dir.display(),
            dir.display()
        )
    })?;
    CausalLm::random(cfg, seed, &Device::Cpu)?.save_pretrained(dir)?;
    Ok(())
}

/// The sizes of one `lm-bench` batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchShape {
    /// Distinct prompts.
    pub prompts: usize,
    /// Samples per prompt.
    pub samples: usize,
    /// New tokens per sample (sampling never stops early).
    pub new_tokens: usize,
}

impl BenchShape {
    /// Parses `P,S,T` (prompts, samples per prompt, new tokens).
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<usize> = text
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .ok()
            .filter(|v: &Vec<usize>| v.len() == 3 && v.iter().all(|&n| n > 0))
            .with_context(|| {
                format!("--shape {text:?}: expected prompts,samples,new_tokens, e.g. 16,16,24")
            })?;
        Ok(Self {
            prompts: parts[0],
            samples: parts[1],
            new_tokens: parts[2],
        })
    }
}

/// What `lm-bench` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The dtype of the forward pass.
    pub dtype: DType,
    /// Generated tokens per second of batched sampling (median run).
    pub sample_tokens_per_s: f64,
    /// Seconds of one batched sampling call (median).
    pub sample_seconds: f64,
    /// Seconds of the log-probability forward and backward over the sampled batch (median).
    pub loss_step_seconds: f64,
    /// Mean sequence log-probability of the batch (a numerics fingerprint).
    pub mean_logprob: f64,
}

/// Times sampling `shape` from the model in `dir` on `device` in `dtype` (the last
/// `trainable_blocks` blocks train), then the log-probability forward + backward of that batch;
/// one warm-up and `reps` timed runs each, medians reported.
pub fn bench(
    dir: &Path,
    device: &Device,
    dtype: DType,
    shape: BenchShape,
    reps: usize,
) -> Result<BenchResult> {
    let mut model = CausalLm::from_dir(dir, device)?;
    model.set_trainable(Trainable::LastBlocks {
        blocks: 4,
        embeddings: false,
    });
    model.set_compute_dtype(dtype)?;
    let vocab = model.config().vocab_size as u64;
    let prompt_len = 32;
    let prompts: Vec<Vec<u32>> = (0..shape.prompts as u64)
        .map(|p| {
            (0..prompt_len)
                .map(|i| ((p * 7919 + i * 104_729 + 1) % vocab) as u32)
                .collect()
        })
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
    };
    let n = shape.samples;
    let sample = || {
        model.sample(&prompts, n, shape.new_tokens, &[], params, |p, s| {
            (p * 1000 + s) as u64
        })
    };
    let mut sample_times = Vec::new();
    let mut completions = sample()?;
    for _ in 0..reps {
        let t = Instant::now();
        completions = sample()?;
        sample_times.push(t.elapsed().as_secs_f64());
    }
    let rows: Vec<(&[u32], &[u32])> = completions
        .iter()
        .enumerate()
        .map(|(i, c)| (prompts[i / n].as_slice(), c.as_slice()))
        .collect();
    let eos = vocab as u32; // never sampled: every completion is scored in full
    let batch = SequenceBatch::new(&rows, eos, 0, device)?;
    let vars = model.vars();
    let step = || -> Result<f64> {
        let lp = model.batch_logprobs(&batch)?;
        let loss = lp.mean_all()?.neg()?;
        let grads = loss.backward()?;
        // Reading a gradient back waits for the device to finish.
        let g = grads
            .get(&vars[0])
            .context("no gradient for a trainable weight")?;
        g.sum_all()?.to_scalar::<f32>()?;
        Ok(lp.mean_all()?.to_scalar::<f32>()? as f64)
    };
    let mean_logprob = step()?;
    let mut step_times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        step()?;
        step_times.push(t.elapsed().as_secs_f64());
    }
    let sample_seconds = median(&mut sample_times);
    let tokens = (shape.prompts * shape.samples * shape.new_tokens) as f64;
    Ok(BenchResult {
        dtype,
        sample_tokens_per_s: tokens / sample_seconds,
        sample_seconds,
        loss_step_seconds: median(&mut step_times),
        mean_logprob,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(text: &str) -> Result<DType> {
    match text.to_ascii_lowercase().as_str() {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        "f16" => Ok(DType::F16),
        other => bail!("--dtype {other:?}: expected f32, bf16 or f16"),
    }
}

/// A one-line, `key=value` rendering of `r` (what gpu-check.sh greps).
pub fn render(r: &BenchResult, device: &Device, shape: BenchShape) -> String {
    let device = if device.is_cpu() { "cpu" } else { "cuda" };
    format!(
        "lm-bench device={device} dtype={:?} batch={}x{}x{} sample_tokens_per_s={:.1} \
         sample_s={:.3} logprob_fwd_bwd_s={:.3} mean_logprob={:.4}",
        r.dtype,
        shape.prompts,
        shape.samples,
        shape.new_tokens,
        r.sample_tokens_per_s,
        r.sample_seconds,
        r.loss_step_seconds,
        r.mean_logprob
    )
}

/// Runs `passk lm-shape|lm-random|lm-bench` with `args` (after the command), or returns
/// `None` for any other command.
pub fn dispatch(command: &str, args: &[String]) -> Result<Option<()>> {
    if !matches!(command, "lm-shape" | "lm-random" | "lm-bench") {
        return Ok(None);
    }
    let mut positional = Vec::new();
    let (mut device, mut dtypes, mut shape, mut reps) = ("cpu".to_string(), None, None, 3);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value; see `passk {command} --help`"))
        };
        match a.as_str() {
            "--device" => device = value()?,
            "--dtype" => dtypes = Some(value()?),
            "--shape" => shape = Some(BenchShape::parse(&value()?)?),
            "--reps" => {
                reps = value()?
                    .parse()
                    .ok()
                    .filter(|&r: &usize| r > 0)
                    .context("--reps needs a positive count")?
            }
            flag if flag.starts_with("--") => {
                bail!("unknown option {flag}; see `passk {command} --help`")
            }
            other => positional.push(other.to_string()),
        }
    }
    let arity = |positional: &[String], n: usize, what: &str| -> Result<()> {
        if positional.len() != n {
            bail!("`passk {command}` takes {what} (got {positional:?})");
        }
        Ok(())
    };
    match command {
        "lm-shape" => {
            arity(&positional, 2, "a GGUF file and a folder")?;
            shape_cmd(&positional)?;
        }
        "lm-random" => {
            if positional.len() == 1 {
                positional.push("0".to_string());
            }
            arity(&positional, 2, "a folder and an optional seed")?;
            let seed = positional[1]
                .parse()
                .with_context(|| format!("seed {:?} is not a number", positional[1]))?;
            random(Path::new(&positional[0]), seed)?;
        }
        "lm-bench" => {
            arity(&positional, 1, "a model folder")?;
            let dev = device
                .parse::<passk_policy::DeviceChoice>()?
                .device()
                .context("opening the --device")?;
            let default = if dev.is_cpu() { "f32" } else { "f32,bf16" };
            let shape = shape.unwrap_or(BenchShape {
                prompts: 16,
                samples: 16,
                new_tokens: 24,
            });
            for d in dtypes.as_deref().unwrap_or(default).split(',') {
                let r = bench(
                    Path::new(&positional[0]),
                    &dev,
                    parse_dtype(d)?,
                    shape,
                    reps,
                )?;
                println!("{}", render(&r, &dev, shape));
            }
        }
        _ => unreachable!("checked above"),
    }
    Ok(Some(()))
}

fn shape_cmd(positional: &[String]) -> Result<()> {
    shape(Path::new(&positional[0]), Path::new(&positional[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cfg = r#"{"model_type": "llama", "vocab_size": 97, "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 64, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": 2}"#;
        std::fs::write(dir.path().join("config.json"), cfg).unwrap();
        dir
    }

    #[test]
    fn random_weights_are_seeded_and_bench_runs_in_f32_and_bf16() {
        let dir = tiny_model_dir();
        let arg = |s: &str| s.to_string();
        let d = dir.path().to_str().unwrap();
        dispatch("lm-random", &[arg(d), arg("5")]).unwrap().unwrap();
        let first = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        random(dir.path(), 5).unwrap();
        let again = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        assert_eq!(first, again, "the same seed gives the same weights");
        let shape = BenchShape::parse("2,3,4").unwrap();
        let f32 = bench(dir.path(), &Device::Cpu, DType::F32, shape, 1).unwrap();
        let bf16 = bench(dir.path(), &Device::Cpu, DType::BF16, shape, 1).unwrap();
        assert!(f32.sample_tokens_per_s > 0.0 && f32.loss_step_seconds > 0.0);
        // The same seeds, so mostly the same tokens; bf16 log-probs within 5% of f32's.
        let gap = (f32.mean_logprob - bf16.mean_logprob).abs();
        assert!(gap < 0.05 * f32.mean_logprob.abs(), "{f32:?} vs {bf16:?}");
        let line = render(&f32, &Device::Cpu, shape);
        assert!(line.contains("device=cpu dtype=F32 batch=2x3x4"), "{line}");
    }

    #[test]
    fn lm_commands_say_what_they_need() {
        let e = dispatch("lm-random", &[]).unwrap_err().to_string();
        assert!(e.contains("a folder"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let e = format!("{:#}", dispatch("lm-random", &[d]).unwrap_err());
        assert!(e.contains("lm-shape"), "{e}");
        let other = ["--results".to_string(), "x".to_string()];
        assert!(
            dispatch("run", &other).unwrap().is_none(),
            "other commands pass through"
        );
    }

    #[test]
    fn bench_shape_parses_three_positive_counts() {
        let s = BenchShape::parse("16, 16,24").unwrap();
        assert_eq!((s.prompts, s.samples, s.new_tokens), (16, 16, 24));
        for bad in ["16,16", "0,1,1", "a,b,c", "1,2,3,4"] {
            let e = BenchShape::parse(bad).unwrap_err().to_string();
            assert!(e.contains("prompts,samples,new_tokens"), "{e}");
        }
    }

    #[test]
    fn dtypes_parse_and_others_are_refused() {
        assert_eq!(parse_dtype("BF16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert!(parse_dtype("f64").is_err());
    }
}
