//! The frozen lower blocks of a training pass, run through the sampling engine.
//!
//! When only the last blocks train ([`Trainable::LastBlocks`](super::Trainable)), the
//! embedding and the blocks below them take no gradient, yet candle's forward pass still runs
//! them op by op: for SmolLM2-135M with 2 trainable blocks that was most of a training step.
//! Here the packed engine computes the residual stream entering the first trainable block for
//! every position of every row, with no graph, and the differentiable model continues from it
//! as from a constant. Rows share keys and values as in sampling: the prefix common to all
//! rows once, each distinct prompt once, then each row's completion.
//!
//! The arithmetic is the engine's, so values agree with the all-autograd pass up to float
//! rounding, not bit for bit (tested in `lm/tests.rs`).

use super::decode::{Engine, Item, Kv};

/// The residual stream after the engine's blocks for every position of `rows` (all of one
/// length `t`, the first `prompt_len` tokens a prompt), `[rows, t, d]` row-major.
pub(crate) fn residuals(engine: &Engine, rows: &[Vec<u32>], prompt_len: usize) -> Vec<f32> {
    let (b, d) = (rows.len(), engine.hidden_size());
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let t = first.len();
    debug_assert!(rows.iter().all(|r| r.len() == t) && prompt_len <= t);
    let layers = engine.layers();
    // The prefix of every row, capped at the prompt: each row's chain is at most three links
    // (common prefix, its prompt, its completion), the depth attention reads.
    let common = rows[1..].iter().fold(prompt_len, |n, r| {
        first[..n].iter().zip(r).take_while(|(a, b)| a == b).count()
    });
    let mut caches: Vec<Option<Kv>> = Vec::new();
    let mut items = Vec::new();
    let mut push = |caches: &mut Vec<Option<Kv>>, parent, start, tokens: &[u32]| {
        let own = caches.len();
        caches.push(Some(Kv::new(layers, parent, start)));
        items.extend(tokens.iter().enumerate().map(|(i, &token)| Item {
            token,
            pos: start + i,
            own,
            logits: false,
        }));
        own
    };
    let root = (common > 0).then(|| push(&mut caches, None, 0, &first[..common]));
    // Each distinct prompt's tokens after the common prefix, once; `group[r]` is row r's.
    let mut prompts: Vec<(usize, Option<usize>)> = Vec::new();
    let mut group = Vec::with_capacity(b);
    for (r, row) in rows.iter().enumerate() {
        let same = prompts
            .iter()
            .position(|&(q, _)| rows[q][..prompt_len] == row[..prompt_len]);
        let g = same.unwrap_or_else(|| {
            let cache = (prompt_len > common)
                .then(|| push(&mut caches, root, common, &row[common..prompt_len]));
            prompts.push((r, cache.or(root)));
            prompts.len() - 1
        });
        group.push(g);
    }
    let mut own = Vec::with_capacity(b);
    for (row, &g) in rows.iter().zip(&group) {
        own.push(push(
            &mut caches,
            prompts[g].1,
            prompt_len,
            &row[prompt_len..],
        ));
    }
    let x = engine.lower_blocks(&mut caches, &items);
    // Item offsets (in rows of `x`) of each cache's first token, in push order.
    let mut start_of = vec![0; caches.len()];
    let mut at = 0;
    for (c, slot) in start_of.iter_mut().enumerate() {
        *slot = at;
        at += items[at..].iter().take_while(|it| it.own == c).count();
    }
    let mut out = vec![0f32; b * t * d];
    for (r, dst) in out.chunks_exact_mut(t * d).enumerate() {
        let mut copy = |cache: usize, from: usize, len: usize| {
            let src = start_of[cache] * d;
            dst[from * d..(from + len) * d].copy_from_slice(&x[src..src + len * d]);
        };
        if let Some(root) = root {
            copy(root, 0, common);
        }
        if prompt_len > common {
            let cache = prompts[group[r]]
                .1
                .expect("a prompt with tokens of its own");
            copy(cache, common, prompt_len - common);
        }
        copy(own[r], prompt_len, t - prompt_len);
    }
    out
}
