//! Tests of the CPU sampling engine against the differentiable model and the graph sampler.

use candle_core::{Device, IndexOp, Tensor};

use super::*;
use crate::lm::tests::tiny_config;

fn params(temperature: f64, top_p: f64) -> SamplingParams {
    SamplingParams { temperature, top_p }
}

/// Prompts of several lengths, some sharing a length, none a prefix of another.
fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![1, 5, 9, 40],
        vec![1, 7],
        vec![1, 8, 8, 120, 33, 61, 7],
        vec![1, 250, 3, 3],
        vec![1, 11, 12],
    ]
}

/// The largest elementwise |a - b| of two equally long vectors.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn run(model: &CausalLm, p: SamplingParams, max_rows: usize, stop: &[u32]) -> Vec<Vec<u32>> {
    let prompts = prompts();
    let job = SampleJob {
        prompts: &prompts,
        n_per_prompt: 3,
        max_new_tokens: 9,
        stop,
        params: p,
        max_rows,
    };
    sample(model, &job, |p, s| (p * 97 + s) as u64).unwrap()
}

#[test]
fn logits_match_the_differentiable_model_at_every_position() {
    for (kind, tied) in [("llama", true), ("qwen2", false)] {
        let model = CausalLm::random(tiny_config(kind, tied), 4, &Device::Cpu).unwrap();
        let engine = Engine::new(&model, 16).unwrap();
        let toks = [1u32, 9, 200, 31, 4, 77, 5];
        // Prefill the first 4 tokens, then decode the rest one at a time.
        let mut caches = vec![Some(Kv::new(2, None, 0)), Some(Kv::new(2, Some(0), 4))];
        let prefill: Vec<Item> = (0..4)
            .map(|i| Item {
                token: toks[i],
                pos: i,
                own: 0,
                logits: true,
            })
            .collect();
        let mut got = engine.forward(&mut caches, &prefill);
        for (i, &token) in toks.iter().enumerate().skip(4) {
            let item = Item {
                token,
                pos: i,
                own: 1,
                logits: true,
            };
            got.extend(engine.forward(&mut caches, &[item]));
        }
        let x = Tensor::new(&toks[..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let want = model.logits(&x).unwrap().i(0).unwrap();
        let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        let worst = max_abs_diff(&got, &want);
        assert!(worst < 1e-4, "{kind}: max |Δlogit| = {worst}");
    }
}

#[test]
fn samples_equal_the_graph_sampler_and_ignore_the_batch_size() {
    for (kind, tied) in [("llama", true), ("qwen2", false)] {
        let model = CausalLm::random(tiny_config(kind, tied), 6, &Device::Cpu).unwrap();
        for p in [params(0.0, 1.0), params(1.0, 1.0), params(1.3, 0.9)] {
            let stop = [2u32, 17];
            let fast = run(&model, p, 128, &stop);
            let seed = |p: usize, s: usize| (p * 97 + s) as u64;
            let graph = model
                .sample_graph(&prompts(), 3, 9, &stop, p, seed)
                .unwrap();
            assert_eq!(fast, graph, "{kind} {p:?}");
            // Rows admitted one prompt at a time, or two, decode the same tokens.
            assert_eq!(run(&model, p, 1, &stop), fast);
            assert_eq!(run(&model, p, 6, &stop), fast);
        }
    }
}

#[test]
fn stopped_rows_end_with_their_stop_token_and_others_run_to_the_budget() {
    let model = CausalLm::random(tiny_config("llama", true), 2, &Device::Cpu).unwrap();
    // A stop set wide enough that some rows stop early.
    let stop: Vec<u32> = (0..300).filter(|t| t % 7 == 0).collect();
    let out = run(&model, params(1.0, 1.0), 4, &stop);
    assert_eq!(out.len(), 15);
    let mut stopped = 0;
    for c in &out {
        assert!(!c.is_empty() && c.len() <= 9);
        let early = c[..c.len() - 1].iter().any(|t| stop.contains(t));
        assert!(!early, "{c:?} continues after a stop token");
        if stop.contains(c.last().unwrap()) {
            stopped += 1;
        } else {
            assert_eq!(c.len(), 9);
        }
    }
    assert!(stopped > 0 && stopped < 15, "{stopped} of 15 stopped");
}

#[test]
fn the_shared_prefix_is_the_longest_common_one_short_of_every_prompt() {
    let v = |t: &[u32]| t.to_vec();
    assert_eq!(shared_prefix(&[]), 0);
    assert_eq!(shared_prefix(&[v(&[1, 2, 3])]), 0);
    assert_eq!(shared_prefix(&[v(&[1, 2, 3, 4]), v(&[1, 2, 3, 5])]), 3);
    assert_eq!(
        shared_prefix(&[v(&[1, 2, 3, 4]), v(&[1, 2, 9]), v(&[1, 2, 3])]),
        2
    );
    // Identical prompts keep their last token to themselves.
    assert_eq!(shared_prefix(&[v(&[1, 2, 3]), v(&[1, 2, 3])]), 2);
    assert_eq!(shared_prefix(&[v(&[7, 2]), v(&[1, 2])]), 0);
    assert_eq!(shared_prefix(&[v(&[1]), v(&[1, 2])]), 0);
}

/// Prompts that share their first five tokens.
fn templated() -> Vec<Vec<u32>> {
    let head = [1u32, 40, 41, 42, 43];
    [vec![9, 10], vec![11], vec![12, 13, 14], vec![9, 15]]
        .into_iter()
        .map(|tail| head.iter().copied().chain(tail).collect())
        .collect()
}

#[test]
fn a_shared_prefix_changes_no_sample() {
    for (kind, tied) in [("llama", true), ("qwen2", false)] {
        let model = CausalLm::random(tiny_config(kind, tied), 8, &Device::Cpu).unwrap();
        let prompts = templated();
        let seed = |p: usize, s: usize| (p * 31 + s) as u64;
        fn job(prompts: &[Vec<u32>], max_rows: usize) -> SampleJob<'_> {
            SampleJob {
                prompts,
                n_per_prompt: 3,
                max_new_tokens: 8,
                stop: &[],
                params: params(1.0, 1.0),
                max_rows,
            }
        }
        let together = sample(&model, &job(&prompts, 64), seed).unwrap();
        // Admitted in waves, the later prompts continue a prefix computed steps earlier.
        assert_eq!(sample(&model, &job(&prompts, 3), seed).unwrap(), together);
        for (p, prompt) in prompts.iter().enumerate() {
            let alone = sample(&model, &job(std::slice::from_ref(prompt), 64), |_, s| {
                seed(p, s)
            })
            .unwrap();
            assert_eq!(alone, together[p * 3..(p + 1) * 3], "{kind}: prompt {p}");
        }
    }
}

#[test]
fn logits_after_a_shared_prefix_equal_those_of_the_whole_sequence() {
    let model = CausalLm::random(tiny_config("llama", true), 5, &Device::Cpu).unwrap();
    let engine = Engine::new(&model, 16).unwrap();
    let toks = [1u32, 9, 200, 31, 4, 77, 5];
    let item = |i: usize, own: usize| Item {
        token: toks[i],
        pos: i,
        own,
        logits: i == toks.len() - 1,
    };
    let mut whole = vec![Some(Kv::new(2, None, 0))];
    let want = engine.forward(&mut whole, &(0..7).map(|i| item(i, 0)).collect::<Vec<_>>());
    // A three-link chain: tokens 0-2, then 3-4, then 5-6, the first two in one forward.
    let mut chain = vec![
        Some(Kv::new(2, None, 0)),
        Some(Kv::new(2, Some(0), 3)),
        Some(Kv::new(2, Some(1), 5)),
    ];
    let first: Vec<Item> = (0..5).map(|i| item(i, usize::from(i >= 3))).collect();
    engine.forward(&mut chain, &first);
    let got = engine.forward(&mut chain, &[item(5, 2), item(6, 2)]);
    let worst = max_abs_diff(&got, &want);
    // Bit for bit where the packed kernel runs (rows do not interact); gemm may round a
    // batch of 5 rows differently from one of 7.
    let packed = engine.head.as_ref().expect("a head").is_packed();
    assert!(
        if packed { worst == 0.0 } else { worst < 1e-5 },
        "max |Δlogit| = {worst} (packed: {packed})"
    );
}
