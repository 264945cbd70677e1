//! Timings of the `small` model against the feasibility study (PyTorch, 2 threads):
//! log-prob forward + backward + clip + AdamW on 256 x 14 tokens (174 ms) and sampling
//! 256 sequences x 5 new tokens with a KV cache (68 ms), plus a plain f32 matmul for scale.
//!
//! Run: `CANDLE_NUM_THREADS=2 cargo bench -p passk-policy --bench step`.

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use passk_policy::{clip_grad_norm, Gpt, GptConfig, SamplingParams, SequenceBatch};

const VOCAB: usize = 29;
const PROMPT: usize = 10;
const NEW: usize = 5;

fn prompts(n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            let mut p = vec![1u32, 13];
            p.extend((0..PROMPT - 2).map(|j| 3 + ((i * 7 + j * 3) % 10) as u32));
            p
        })
        .collect()
}

fn matmul(c: &mut Criterion) {
    let dev = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (256, 512), &dev).unwrap();
    let b = Tensor::randn(0f32, 1.0, (512, 512), &dev).unwrap();
    let mut g = c.benchmark_group("matmul");
    g.throughput(Throughput::Elements(2 * 256 * 512 * 512));
    g.bench_function("256x512x512_f32 (elem/s = FLOP/s)", |bch| {
        bch.iter(|| black_box(a.matmul(&b).unwrap()))
    });
    g.finish();
}

fn logprob_step(c: &mut Criterion) {
    let model = Gpt::new(GptConfig::small(VOCAB), 0, &Device::Cpu).unwrap();
    let ps = prompts(256);
    let completions: Vec<Vec<u32>> = (0..256)
        .map(|i| (0..NEW - 1).map(|j| 3 + ((i + j) % 10) as u32).collect())
        .collect();
    // 256 rows of 14 tokens: a 10-token prompt and a 4-token completion.
    let rows: Vec<(&[u32], &[u32])> = ps
        .iter()
        .zip(&completions)
        .map(|(p, c)| (p.as_slice(), c.as_slice()))
        .collect();
    let batch = SequenceBatch::new(&rows, 2, 0, &Device::Cpu).unwrap();
    assert_eq!(batch.tokens.dims(), [256, 14]);
    let params = model.params();
    let mut opt = AdamW::new(
        model.vars(),
        ParamsAdamW {
            lr: 1e-5,
            ..Default::default()
        },
    )
    .unwrap();
    let mut g = c.benchmark_group("small_256x14");
    g.bench_function("forward", |bch| {
        bch.iter(|| black_box(model.batch_logprobs(&batch).unwrap()))
    });
    g.bench_function("forward_backward", |bch| {
        bch.iter(|| {
            let loss = model.batch_logprobs(&batch).unwrap().mean_all().unwrap();
            black_box(loss.backward().unwrap())
        })
    });
    g.bench_function("forward_backward_clip_adamw", |bch| {
        bch.iter(|| {
            let loss = model
                .batch_logprobs(&batch)
                .unwrap()
                .mean_all()
                .unwrap()
                .neg()
                .unwrap();
            let mut grads = loss.backward().unwrap();
            clip_grad_norm(&mut grads, &params, 1.0).unwrap();
            opt.step(&grads).unwrap();
        })
    });
    g.finish();
}

fn sampling(c: &mut Criterion) {
    let model = Gpt::new(GptConfig::small(VOCAB), 0, &Device::Cpu).unwrap();
    let ps = prompts(32);
    let mut g = c.benchmark_group("small_sample");
    g.bench_function("32_prompts_x8_x5_tokens", |bch| {
        bch.iter(|| {
            // Finished rows stay in the batch until all are done, so this costs 5 steps.
            black_box(
                model
                    .sample(&ps, 8, NEW, 0, SamplingParams::default(), |p, s| {
                        (p * 8 + s) as u64
                    })
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn config() -> Criterion {
    passk_policy::tune_process();
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! { name = benches; config = config(); targets = matmul, logprob_step, sampling }
criterion_main!(benches);
