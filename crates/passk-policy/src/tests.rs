//! Tests of the model as a whole: gradients, KV-cache parity, sampling, checkpoints, training.

use candle_core::{Device, Tensor};
use candle_nn::Optimizer;

use crate::*;

const VOCAB: usize = 16;
const EOS: u32 = 2;

fn nano(seed: u64) -> Gpt {
    Gpt::new(GptConfig::nano(VOCAB), seed, &Device::Cpu).unwrap()
}

/// Counting rows `[1, s, s+1, ...]` (mod the vocabulary, skipping 0..3) of length `t`.
fn counting_rows(b: usize, t: usize) -> Vec<Vec<u32>> {
    (0..b)
        .map(|r| {
            let mut row = vec![1u32];
            row.extend((0..t - 1).map(|j| 3 + ((r + j) % (VOCAB - 3)) as u32));
            row
        })
        .collect()
}

fn to_tensor(rows: &[Vec<u32>]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.concat();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

#[test]
fn init_is_seeded_and_scaled() {
    let (a, b, c) = (nano(7), nano(7), nano(8));
    assert_eq!(a.num_params(), GptConfig::nano(VOCAB).num_params());
    let names: Vec<String> = a.params().into_iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let w = |m: &Gpt, n: &str| {
        m.var(n)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(w(&a, "wte"), w(&b, "wte"));
    assert_ne!(w(&a, "wte"), w(&c, "wte"));
    assert_ne!(w(&a, "wte")[..16], w(&a, "wpe")[..16]);
    let std = |v: Vec<f32>| {
        let n = v.len() as f64;
        (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / n).sqrt()
    };
    let s = std(w(&a, "h.0.mlp.fc.weight"));
    assert!((s - 0.02).abs() < 0.001, "fc std {s}");
    let s = std(w(&a, "h.0.mlp.proj.weight"));
    assert!((s - 0.01).abs() < 0.0007, "residual std {s} (0.02/sqrt(4))");
    assert!(w(&a, "h.1.ln2.weight").iter().all(|&x| x == 1.0));
    assert!(w(&a, "h.1.attn.qkv.bias").iter().all(|&x| x == 0.0));
}

#[test]
fn every_parameter_gets_a_gradient() {
    let model = nano(1);
    let rows = counting_rows(4, 10);
    let tokens = to_tensor(&rows);
    // The last row has its completion cut short by the mask.
    let mut mask = vec![1f32; 4 * 7];
    for m in &mut mask[3 * 7 + 3..] {
        *m = 0.0;
    }
    let mask = Tensor::from_vec(mask, (4, 7), &Device::Cpu).unwrap();
    let lp = model.sequence_logprobs(&tokens, 3, &mask).unwrap();
    assert_eq!(lp.dims(), [4]);
    let loss = lp.neg().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in model.params() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: squared grad norm {norm}"
        );
    }
}

#[test]
fn sequence_logprobs_match_logits_and_respect_the_mask() {
    let model = nano(2);
    let rows = counting_rows(3, 9);
    let tokens = to_tensor(&rows);
    let p = 4;
    let mut mask = vec![1f32; 3 * 5];
    mask[5 + 2] = 0.0; // row 1 drops its third completion token
    let mask_t = Tensor::from_vec(mask.clone(), (3, 5), &Device::Cpu).unwrap();
    let lp = model
        .sequence_logprobs(&tokens, p, &mask_t)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let logits = model.logits(&tokens).unwrap().to_vec3::<f32>().unwrap();
    for (r, row) in rows.iter().enumerate() {
        let mut want = 0f64;
        for j in 0..5 {
            let l = &logits[r][p - 1 + j];
            let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = m + l.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            want += mask[r * 5 + j] as f64 * (l[row[p + j] as usize] as f64 - lse);
        }
        assert!(
            (lp[r] as f64 - want).abs() < 1e-4,
            "row {r}: {} vs {want}",
            lp[r]
        );
    }
    let batch = SequenceBatch {
        tokens,
        mask: mask_t,
        prompt_len: p,
    };
    let detached = model.batch_logprobs_detached(&batch).unwrap();
    assert!(!detached.track_op());
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(detached.to_vec1().unwrap()), bits(lp));
}

#[test]
fn sequence_batch_masks_after_eos_and_padding() {
    let dev = Device::Cpu;
    let prompt = [1u32, 5, 6];
    let rows: Vec<(&[u32], &[u32])> = vec![
        (&prompt, &[7, EOS, 9]),
        (&prompt, &[8]),
        (&prompt, &[7, 8, 9]),
    ];
    let batch = SequenceBatch::new(&rows, EOS, 0, &dev).unwrap();
    assert_eq!(batch.prompt_len, 3);
    assert_eq!(
        batch.mask.to_vec2::<f32>().unwrap(),
        vec![vec![1., 1., 0.], vec![1., 0., 0.], vec![1., 1., 1.]]
    );
    assert_eq!(
        batch.tokens.to_vec2::<u32>().unwrap()[1],
        vec![1, 5, 6, 8, 0, 0]
    );
    // A padded row has the same log-probability as the same row alone.
    let model = nano(3);
    let all = model
        .batch_logprobs(&batch)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let alone = SequenceBatch::new(&rows[1..2], EOS, 0, &dev).unwrap();
    let one = model
        .batch_logprobs(&alone)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!((all[1] - one[0]).abs() < 1e-5, "{} vs {}", all[1], one[0]);
    let uneven: Vec<(&[u32], &[u32])> = vec![(&prompt, &[7]), (&prompt[..2], &[7])];
    assert!(SequenceBatch::new(&uneven, EOS, 0, &dev).is_err());
}

#[test]
fn kv_cache_logits_match_the_full_forward() {
    let model = nano(4);
    let rows = counting_rows(3, 12);
    let full = model
        .logits(&to_tensor(&rows))
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let mut cache = KvCache::new(model.config());
    let prompt: Vec<Vec<u32>> = rows.iter().map(|r| r[..5].to_vec()).collect();
    let mut steps = vec![model
        .forward_cached(&mut cache, &to_tensor(&prompt))
        .unwrap()];
    for t in 5..12 {
        let next: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[t]]).collect();
        steps.push(model.forward_cached(&mut cache, &to_tensor(&next)).unwrap());
    }
    assert_eq!(cache.len(), 12);
    let cached = Tensor::cat(&steps, 1).unwrap().to_vec3::<f32>().unwrap();
    let mut worst = 0f32;
    for (a, b) in full
        .iter()
        .flatten()
        .flatten()
        .zip(cached.iter().flatten().flatten())
    {
        worst = worst.max((a - b).abs());
    }
    assert!(worst < 1e-5, "largest difference {worst}");
    // A cache cannot grow past the context.
    let long = to_tensor(&counting_rows(3, 21));
    assert!(model.forward_cached(&mut cache, &long).is_err());
}

/// Sampling prefills each distinct prompt once and copies its cache to the samples; that is
/// exact only if a row's cached keys, values and logits do not depend on the other rows of the
/// batch. Checked bit for bit at the RL shape of the tiny tier (32 prompts x 16 samples, the
/// `small` model), prefill and one decode step.
#[test]
fn cached_rows_do_not_depend_on_the_rest_of_the_batch() {
    let model = Gpt::new(GptConfig::small(29), 3, &Device::Cpu).unwrap();
    let prompts: Vec<Vec<u32>> = (0..32)
        .map(|i| (0..8).map(|j| 1 + ((i * 5 + j * 3) % 28) as u32).collect())
        .collect();
    let every: Vec<Vec<u32>> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), 16))
        .collect();
    let next = Tensor::from_vec(
        (0..512u32).map(|i| 3 + i % 20).collect::<Vec<_>>(),
        (512, 1),
        &Device::Cpu,
    )
    .unwrap();
    let cfg = *model.config();
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.into_iter().map(f32::to_bits).collect()
    };
    // Reference: every sample prefilled on its own row.
    let mut full = KvCache::new(&cfg);
    let full_prefill = model.forward_cached(&mut full, &to_tensor(&every)).unwrap();
    let full_step = model.forward_cached(&mut full, &next).unwrap();
    // Prefill once per prompt, then copy the rows.
    let mut shared = KvCache::new(&cfg);
    let once = model
        .forward_cached(&mut shared, &to_tensor(&prompts))
        .unwrap();
    let copies = Tensor::from_vec(
        (0..32u32)
            .flat_map(|m| std::iter::repeat_n(m, 16))
            .collect::<Vec<_>>(),
        512,
        &Device::Cpu,
    )
    .unwrap();
    shared.select_rows(&copies).unwrap();
    let shared_step = model.forward_cached(&mut shared, &next).unwrap();
    assert_eq!(
        bits(&once.index_select(&copies, 0).unwrap()),
        bits(&full_prefill)
    );
    assert_eq!(bits(&shared_step), bits(&full_step));
}

fn seed_of(p: usize, s: usize) -> u64 {
    1000 + 37 * p as u64 + s as u64
}

#[test]
fn sampling_is_reproducible_and_independent_of_the_batch() {
    let model = nano(5);
    let a = vec![1u32, 3, 4, 5];
    let b = vec![1u32, 9, 8, 7];
    let c = vec![1u32, 6]; // another length: its own group
    let params = SamplingParams::default();
    let ab = model
        .sample(&[a.clone(), b.clone()], 4, 8, EOS, params, seed_of)
        .unwrap();
    let ab2 = model
        .sample(&[a.clone(), b.clone()], 4, 8, EOS, params, seed_of)
        .unwrap();
    assert_eq!(ab, ab2);
    // Swap the prompts and renumber the seeds so each (prompt, sample) keeps its stream.
    let ba = model
        .sample(&[b.clone(), a.clone()], 4, 8, EOS, params, |p, s| {
            seed_of(1 - p, s)
        })
        .unwrap();
    assert_eq!(&ab[..4], &ba[4..]);
    assert_eq!(&ab[4..], &ba[..4]);
    // A different batch size and a mixed-length batch give the same rows too.
    let a_only = model
        .sample(std::slice::from_ref(&a), 4, 8, EOS, params, seed_of)
        .unwrap();
    assert_eq!(&ab[..4], &a_only[..]);
    let cab = model
        .sample(&[c, a, b], 4, 8, EOS, params, |p, s| {
            seed_of((p + 2) % 3, s)
        })
        .unwrap();
    assert_eq!(&cab[4..], &ab[..]);
    // Completions are random (an untrained model), end at eos and respect the length.
    assert!(ab.iter().any(|r| r != &ab[0]));
    for row in &ab {
        assert!(!row.is_empty() && row.len() <= 8);
        let eos_at = row.iter().position(|&t| t == EOS);
        assert!(eos_at.is_none() || eos_at == Some(row.len() - 1));
    }
    assert!(model
        .sample(&[vec![1; 30]], 1, 5, EOS, params, seed_of)
        .is_err());
}

#[test]
fn greedy_sampling_follows_the_argmax() {
    let model = nano(6);
    let prompt = vec![1u32, 4, 5];
    let greedy = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
    };
    let out = model
        .sample(std::slice::from_ref(&prompt), 2, 6, EOS, greedy, seed_of)
        .unwrap();
    assert_eq!(out[0], out[1]);
    // Replay: each token is the argmax of the full forward on the sequence so far.
    let mut seq = prompt;
    for &tok in &out[0] {
        let logits = model.logits(&to_tensor(&[seq.clone()])).unwrap();
        let last = logits.to_vec3::<f32>().unwrap()[0].last().unwrap().clone();
        let best = last
            .iter()
            .enumerate()
            .fold(0, |b, (i, &x)| if x > last[b] { i } else { b });
        assert_eq!(tok as usize, best);
        seq.push(tok);
    }
}

#[test]
fn choose_token_matches_the_softmax_and_the_nucleus() {
    use rand::SeedableRng;
    let logits = [0.0f32, (2f32).ln(), (3f32).ln(), (4f32).ln()]; // probs 0.1 .. 0.4
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut counts = [0usize; 4];
    let n = 20_000;
    for _ in 0..n {
        counts[choose_token(&logits, &SamplingParams::default(), &mut rng) as usize] += 1;
    }
    for (i, &c) in counts.iter().enumerate() {
        let want = (i + 1) as f64 / 10.0;
        let got = c as f64 / n as f64;
        assert!((got - want).abs() < 0.015, "token {i}: {got} vs {want}");
    }
    // top_p 0.5 keeps the two most likely tokens (0.4 + 0.3 >= 0.5).
    let nucleus = SamplingParams {
        temperature: 1.0,
        top_p: 0.5,
    };
    let mut seen = [false; 4];
    for _ in 0..2000 {
        seen[choose_token(&logits, &nucleus, &mut rng) as usize] = true;
    }
    assert_eq!(seen, [false, false, true, true]);
    assert!(SamplingParams {
        temperature: -1.0,
        top_p: 1.0
    }
    .validate()
    .is_err());
    assert!(SamplingParams {
        temperature: 1.0,
        top_p: 0.0
    }
    .validate()
    .is_err());
}

#[test]
fn save_and_load_roundtrip() {
    let dir = std::env::temp_dir().join(format!("passk-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let a = nano(11);
    a.save(&path).unwrap();
    // The same bytes candle's own writer produces, and no temporary left beside them.
    let tensors: std::collections::HashMap<String, Tensor> = a
        .params()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().detach()))
        .collect();
    let reference = dir.join("reference.safetensors");
    candle_core::safetensors::save(&tensors, &reference).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    std::fs::remove_file(&reference).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["model.safetensors"]);
    let b = nano(12);
    b.load(&path).unwrap();
    for ((na, va), (nb, vb)) in a.params().into_iter().zip(b.params()) {
        assert_eq!(na, nb);
        let x = va.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = vb.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{na}"
        );
    }
    let c = Gpt::from_checkpoint(GptConfig::nano(VOCAB), &path, &Device::Cpu).unwrap();
    let tokens = to_tensor(&counting_rows(2, 6));
    let la = a
        .logits(&tokens)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let lc = c
        .logits(&tokens)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(la, lc);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
    // A model of another shape refuses the checkpoint and says why.
    let mut cfg = GptConfig::nano(VOCAB + 1);
    cfg.n_layer = 3;
    let other = Gpt::new(cfg, 0, &Device::Cpu).unwrap();
    let err = other.load(&path).unwrap_err().to_string();
    assert!(err.contains("wte has shape [16, 64]"), "{err}");
    assert!(err.contains("missing h.2.ln1.weight"), "{err}");
    let missing = other.load(dir.join("absent.safetensors")).unwrap_err();
    assert!(matches!(missing, PolicyError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Twenty SGD steps of the `small` model on a counting pattern. Returns the losses and the
/// bits of the final parameters.
fn short_training_run() -> (Vec<f32>, Vec<u32>) {
    let model = Gpt::new(GptConfig::small(VOCAB), 21, &Device::Cpu).unwrap();
    let rows = counting_rows(32, 14);
    let batch: Vec<(&[u32], &[u32])> = rows.iter().map(|r| (&r[..2], &r[2..])).collect();
    let batch = SequenceBatch::new(&batch, EOS, 0, &Device::Cpu).unwrap();
    let mut sgd = candle_nn::SGD::new(model.vars(), 0.5).unwrap();
    let params = model.params();
    let mut losses = Vec::new();
    for _ in 0..20 {
        let lp = model.batch_logprobs(&batch).unwrap();
        let loss = (lp.neg().unwrap().mean_all().unwrap() / 12.0).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let mut grads = loss.backward().unwrap();
        clip_grad_norm(&mut grads, &params, 1.0).unwrap();
        sgd.step(&grads).unwrap();
    }
    let bits = params
        .iter()
        .flat_map(|(_, v)| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .map(f32::to_bits)
        .collect();
    (losses, bits)
}

/// Helper run in a subprocess by `training_lowers_the_loss_and_is_thread_count_invariant`.
#[test]
#[ignore = "run as a subprocess with a fixed thread count"]
fn training_worker() {
    let (losses, bits) = short_training_run();
    let hash = bits.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let losses: Vec<String> = losses
        .iter()
        .map(|l| format!("{:08x}", l.to_bits()))
        .collect();
    println!("WORKER-RESULT {hash:016x} {}", losses.join(","));
}

/// Runs the training worker in a child process with `threads` candle/rayon threads (the
/// thread pools read these variables once per process, so a subprocess is the reliable way).
fn run_worker(threads: usize) -> (u64, Vec<f32>) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "tests::training_worker",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CANDLE_NUM_THREADS", threads.to_string())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("WORKER-RESULT ").map(|(_, rest)| rest))
        .unwrap_or_else(|| {
            panic!(
                "worker printed no result: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (hash, losses) = line.trim().split_once(' ').unwrap();
    let losses = losses
        .split(',')
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
        .collect();
    (u64::from_str_radix(hash, 16).unwrap(), losses)
}

#[test]
fn training_lowers_the_loss_and_is_thread_count_invariant() {
    let (h1, l1) = run_worker(1);
    let (h2, l2) = run_worker(2);
    eprintln!("losses: {l1:?}");
    let tail = l1[15..].iter().sum::<f32>() / 5.0;
    assert!(
        tail < 0.5 * l1[0],
        "loss {} -> {tail} (mean of the last 5)",
        l1[0]
    );
    assert!(l1.iter().all(|l| l.is_finite()));
    assert_eq!(l1, l2, "losses differ between 1 and 2 threads");
    assert_eq!(h1, h2, "final weights differ between 1 and 2 threads");
}

/// Loss of `model` on fixed counting rows (mean negative completion log-probability).
fn fd_loss(model: &Gpt) -> Tensor {
    let rows = counting_rows(3, 9);
    let tokens = to_tensor(&rows);
    let mask = Tensor::ones((3, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
    model
        .sequence_logprobs(&tokens, 3, &mask)
        .unwrap()
        .neg()
        .unwrap()
        .mean_all()
        .unwrap()
}

/// Backward agrees with central finite differences along a random direction in every
/// parameter (so no op silently drops or mis-scales a gradient), on both kernel paths.
#[test]
fn backward_matches_finite_differences() {
    use rand::{Rng, SeedableRng};
    let mut bad = Vec::new();
    for fused in [true, false] {
        let mut model = nano(11);
        model.set_fused_kernels(fused);
        let grads = fd_loss(&model).backward().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (name, var) in model.params() {
            let shape = var.shape().clone();
            let n = shape.elem_count();
            let dir: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let dir = Tensor::from_vec(dir, shape, &Device::Cpu).unwrap();
            let g = grads.get(var.as_tensor()).unwrap();
            let analytic = (g * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64;
            let theta = var.as_tensor().detach().copy().unwrap();
            let eps = 1e-3;
            let at = |s: f64| {
                var.set(&(&theta + (&dir * s).unwrap()).unwrap()).unwrap();
                fd_loss(&model).to_scalar::<f32>().unwrap() as f64
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            var.set(&theta).unwrap();
            let tol = 2e-3 + 0.02 * analytic.abs().max(numeric.abs());
            if (analytic - numeric).abs() >= tol {
                bad.push(format!(
                    "fused={fused} {name}: backward {analytic:.6} vs finite difference {numeric:.6}"
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
