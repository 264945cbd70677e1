//! LM helpers for checking a GPU without the real weights: `passk lm-shape` writes a model's
//! `config.json` and `tokenizer.json` (no weights) from a GGUF file, `passk lm-random` fills
//! such a folder with seeded random weights of that shape, and `passk lm-bench` times batched
//! sampling and the policy-loss forward/backward on a device.
//!
//! The SmolLM2 GGUF (98 MB) does not fit the 64 MiB that can be copied to a GPU machine at
//! once, but its shape and tokenizer (about 2 MB) do: the weights are made there from a seed.

use std::path::{Path, PathBuf};
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
                format!("{text:?}: expected prompts,samples,new_tokens, e.g. 16,16,24")
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
        other => bail!("{other:?}: expected f32, bf16 or f16"),
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

/// The arguments of `passk lm-shape`.
#[derive(clap::Args, Debug, Clone)]
pub struct LmShapeArgs {
    /// The GGUF model file
    #[arg(value_name = "model.gguf")]
    pub gguf: PathBuf,
    /// The folder to write config.json and tokenizer.json into
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The arguments of `passk lm-random`.
#[derive(clap::Args, Debug, Clone)]
pub struct LmRandomArgs {
    /// The model folder holding config.json
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The seed of the weights
    #[arg(value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
}

/// The options of `passk lm-bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct LmBenchArgs {
    /// The model folder (config.json, model.safetensors)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The device to time on
    #[arg(long, value_name = "cpu|cuda", default_value = "cpu", value_parser = crate::cli::parse_device)]
    pub device: passk_policy::DeviceChoice,
    /// The dtypes of the forward pass, each timed in turn (f32, bf16 or f16) [default: f32 on
    /// the CPU, f32,bf16 on CUDA]
    #[arg(long, value_name = "f32,bf16", value_delimiter = ',', value_parser = parse_dtype)]
    pub dtype: Option<Vec<DType>>,
    /// Prompts, samples per prompt and new tokens per sample (one RL step of
    /// experiments/lm.toml)
    #[arg(long, value_name = "P,S,T", default_value = "16,16,24", value_parser = BenchShape::parse)]
    pub shape: BenchShape,
    /// Timed runs of each part (the median is printed), after one warm-up
    #[arg(long, value_name = "N", default_value = "3", value_parser = crate::cli::positive::<usize>)]
    pub reps: usize,
}

/// Runs `passk lm-bench`: times each dtype (default f32 on the CPU, f32 and bf16 on CUDA) and
/// prints one line for each.
pub fn cmd_bench(args: &LmBenchArgs) -> Result<()> {
    let dev = args.device.device().context("opening the --device")?;
    let default = if dev.is_cpu() {
        vec![DType::F32]
    } else {
        vec![DType::F32, DType::BF16]
    };
    for &dtype in args.dtype.as_ref().unwrap_or(&default) {
        let r = bench(&args.dir, &dev, dtype, args.shape, args.reps)?;
        println!("{}", render(&r, &dev, args.shape));
    }
    Ok(())
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
        let d = dir.path().to_str().unwrap();
        let code = crate::run_cli(&["lm-random".to_string(), d.to_string(), "5".to_string()]);
        assert_eq!(code.unwrap(), std::process::ExitCode::SUCCESS);
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
        let cli = |args: &[&str]| {
            let raw: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            format!("{:#}", crate::run_cli(&raw).unwrap_err())
        };
        let e = cli(&["lm-random"]);
        assert!(e.contains("<DIR>"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let e = cli(&["lm-random", d]);
        assert!(e.contains("lm-shape"), "{e}");
        let e = cli(&["lm-bench", d, "--shape", "1,2"]);
        assert!(e.contains("prompts,samples,new_tokens"), "{e}");
        let e = cli(&["lm-bench", d, "--dtype", "f32,f64"]);
        assert!(e.contains("f64") && e.contains("bf16"), "{e}");
        let e = cli(&["lm-bench", d, "--reps", "0"]);
        assert!(e.contains("positive"), "{e}");
        let e = cli(&["lm-shape", d, d, "--results", "x"]);
        assert!(e.contains("--results"), "{e}");
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
