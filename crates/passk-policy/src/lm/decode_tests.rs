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
        let mut caches = vec![Some(Kv::new(2)), Some(Kv::new(2))];
        let prefill: Vec<Item> = (0..4)
            .map(|i| Item {
                token: toks[i],
                pos: i,
                prefix: None,
                own: 0,
                logits: true,
            })
            .collect();
        let mut got = engine.forward(&mut caches, &prefill);
        for (i, &token) in toks.iter().enumerate().skip(4) {
            let item = Item {
                token,
                pos: i,
                prefix: Some(0),
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
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
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
