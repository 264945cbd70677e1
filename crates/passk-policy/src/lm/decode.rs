//! Fast sampling on the CPU: an inference-only forward pass over plain buffers with continuous
//! batching and a prompt-shared KV cache.
//!
//! [`CausalLm::sample`](super::CausalLm::sample) runs here on the CPU. The differentiable
//! forward pass builds a candle op per step of the model and copies the whole KV cache every
//! token (`cat`); for decoding that is most of the time. This engine instead:
//!
//! - copies the weights once per call, with q/k/v and gate/up fused into one matrix each, into
//!   [`Matrix`] buffers packed for an AVX-512 kernel (or multiplied by `gemm`, the kernel
//!   candle itself uses, on CPUs without it; see `packed.rs`);
//! - keeps keys and values as a chain of caches: the prefix all prompts of the call share
//!   (a chat template's system turn) once, each prompt's own tokens once for all its samples,
//!   and each sample's completion in a buffer that grows by appending (see `attend.rs`);
//! - runs every token of a step in one flat batch, whatever its sequence and position:
//!   prompts being prefilled and samples being decoded share the same matmuls
//!   (continuous batching). A sample that stops leaves the batch at once and a waiting prompt
//!   takes its place, so no work is spent on finished rows and memory stays bounded by
//!   `max_rows`.
//!
//! Randomness is per sample (see `sample`), so the output does not depend on the batch
//! composition; logits agree with the differentiable model up to float rounding (tested).
//! With the packed kernel a row's arithmetic does not depend on the other rows either, so
//! sharing a prefix or admitting prompts in other waves changes no bit (tested).

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::attend::{Attend, Part, DEPTH};
use super::config::LmConfig;
use super::model::CausalLm;
use super::packed::Matrix;
use crate::error::Result;
use crate::sample::{choose_token, SamplingParams};

/// One decoder block's weights, `[out, in]`.
struct Block {
    in_norm: Vec<f32>,
    /// `[(nh + 2 nkv) hd, d]`: q, then k, then v rows.
    qkv: Matrix,
    qkv_bias: Option<Vec<f32>>,
    o: Matrix,
    post_norm: Vec<f32>,
    /// `[2 f, d]`: gate rows, then up rows.
    gate_up: Matrix,
    down: Matrix,
}

/// The model's shape and weights as plain buffers.
pub(crate) struct Engine {
    d: usize,
    f: usize,
    nh: usize,
    nkv: usize,
    hd: usize,
    vocab: usize,
    eps: f32,
    /// `[vocab, d]`, row-major, for token lookups.
    embed: Vec<f32>,
    /// `[vocab, d]`: the output head (a copy of the embedding when tied); `None` in an engine
    /// of the lower blocks only.
    head: Option<Matrix>,
    norm: Vec<f32>,
    blocks: Vec<Block>,
    /// `[positions, hd / 2]` RoPE tables.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Keys and values of one link of a sequence's chain, per layer `[len, nkv * hd]`.
pub(crate) struct Kv {
    /// The cache holding the positions before `start`, if any.
    parent: Option<usize>,
    /// The position of this cache's first token.
    start: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Kv {
    pub(crate) fn new(layers: usize, parent: Option<usize>, start: usize) -> Self {
        Self {
            parent,
            start,
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
        }
    }
}

/// One token of a forward batch.
#[derive(Clone, Copy)]
pub(crate) struct Item {
    pub(crate) token: u32,
    /// Absolute position in its sequence.
    pub(crate) pos: usize,
    /// The cache its key and value are appended to (the last link of its chain).
    pub(crate) own: usize,
    /// Whether logits are wanted for it.
    pub(crate) logits: bool,
}

/// A sample being decoded.
struct Row {
    prompt: usize,
    sample: usize,
    own: usize,
    rng: ChaCha8Rng,
    out: Vec<u32>,
}

fn tensor_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}

impl Engine {
    /// Copies `model`'s weights, with RoPE tables for `positions` positions.
    pub(crate) fn new(model: &CausalLm, positions: usize) -> Result<Self> {
        Self::build(model, model.config().num_hidden_layers, true, positions)
    }

    /// Copies the embedding and the first `layers` blocks of `model` (no final norm use, no
    /// head): the engine of [`Engine::lower_blocks`].
    pub(crate) fn lower(model: &CausalLm, layers: usize, positions: usize) -> Result<Self> {
        Self::build(model, layers, false, positions)
    }

    fn build(model: &CausalLm, layers: usize, with_head: bool, positions: usize) -> Result<Self> {
        let cfg: &LmConfig = model.config();
        let get = |n: &str| -> Result<Vec<f32>> {
            tensor_vec(model.var(n).expect("every parameter exists").as_tensor())
        };
        let cat = |names: &[String]| -> Result<Vec<f32>> {
            let mut out = Vec::new();
            for n in names {
                out.extend(get(n)?);
            }
            Ok(out)
        };
        let (d, f, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim());
        let (qd, kvd) = (cfg.num_attention_heads * hd, cfg.kv_heads() * hd);
        let layers = layers.min(cfg.num_hidden_layers);
        let mut blocks = Vec::with_capacity(layers);
        for i in 0..layers {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            let qkv_names = ["q_proj", "k_proj", "v_proj"];
            blocks.push(Block {
                in_norm: get(&p("input_layernorm.weight"))?,
                qkv: Matrix::new(
                    cat(&qkv_names.map(|s| p(&format!("self_attn.{s}.weight"))))?,
                    qd + 2 * kvd,
                    d,
                ),
                qkv_bias: if cfg.qkv_bias() {
                    Some(cat(&qkv_names.map(|s| p(&format!("self_attn.{s}.bias"))))?)
                } else {
                    None
                },
                o: Matrix::new(get(&p("self_attn.o_proj.weight"))?, d, qd),
                post_norm: get(&p("post_attention_layernorm.weight"))?,
                gate_up: Matrix::new(
                    cat(&[p("mlp.gate_proj.weight"), p("mlp.up_proj.weight")])?,
                    2 * f,
                    d,
                ),
                down: Matrix::new(get(&p("mlp.down_proj.weight"))?, d, f),
            });
        }
        // The same f32 arithmetic as the differentiable model's RoPE tables.
        let theta = cfg.rope_theta as f32;
        let inv: Vec<f32> = (0..hd)
            .step_by(2)
            .map(|i| 1f32 / theta.powf(i as f32 / hd as f32))
            .collect();
        let angles = (0..positions).flat_map(|p| inv.iter().map(move |f| p as f32 * f));
        let (cos, sin) = angles.map(|a| (a.cos(), a.sin())).unzip();
        let embed = get("model.embed_tokens.weight")?;
        let head = match (with_head, cfg.tie_word_embeddings) {
            (false, _) => None,
            (true, true) => Some(Matrix::new(embed.clone(), cfg.vocab_size, d)),
            (true, false) => Some(Matrix::new(get("lm_head.weight")?, cfg.vocab_size, d)),
        };
        Ok(Self {
            d,
            f,
            nh: cfg.num_attention_heads,
            nkv: cfg.kv_heads(),
            hd,
            vocab: cfg.vocab_size,
            eps: cfg.rms_norm_eps as f32,
            head,
            embed,
            norm: get("model.norm.weight")?,
            blocks,
            cos,
            sin,
        })
    }

    /// Runs `items` through the model, appending their keys and values to their caches, and
    /// returns the logits `[m, V]` of the `m` items that want them, in item order.
    fn forward(&self, caches: &mut [Option<Kv>], items: &[Item]) -> Vec<f32> {
        let d = self.d;
        let x = self.lower_blocks(caches, items);
        let n = items.len();
        let wanted: Vec<usize> = (0..n).filter(|&i| items[i].logits).collect();
        let m = wanted.len();
        let mut last = vec![0f32; m * d];
        for (dst, &i) in last.chunks_exact_mut(d).zip(&wanted) {
            dst.copy_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut hl = vec![0f32; m * d];
        rms_norm_rows(&last, &self.norm, self.eps, &mut hl);
        let mut logits = vec![0f32; m * self.vocab];
        let head = self.head.as_ref().expect("a sampling engine has its head");
        head.matmul_t(&hl, m, &mut logits, false);
        logits
    }

    /// Runs `items` through the embedding and every block this engine holds, appending their
    /// keys and values to their caches; returns the residual stream after the last block,
    /// `[items, d]` (no final norm).
    pub(crate) fn lower_blocks(&self, caches: &mut [Option<Kv>], items: &[Item]) -> Vec<f32> {
        let (d, f, nh, nkv, hd) = (self.d, self.f, self.nh, self.nkv, self.hd);
        let (qd, kvd) = (nh * hd, nkv * hd);
        let wqkv = qd + 2 * kvd;
        let n = items.len();
        let mut x = vec![0f32; n * d];
        for (row, it) in x.chunks_exact_mut(d).zip(items) {
            let t = it.token as usize;
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        let mut h = vec![0f32; n * d];
        let mut qkv = vec![0f32; n * wqkv];
        let mut att = vec![0f32; n * qd];
        let mut gu = vec![0f32; n * 2 * f];
        let mut act = vec![0f32; n * f];
        for (l, b) in self.blocks.iter().enumerate() {
            rms_norm_rows(&x, &b.in_norm, self.eps, &mut h);
            b.qkv.matmul_t(&h, n, &mut qkv, false);
            if let Some(bias) = &b.qkv_bias {
                for row in qkv.chunks_exact_mut(wqkv) {
                    row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
                }
            }
            for (row, it) in qkv.chunks_exact_mut(wqkv).zip(items) {
                let (cos, sin) = self.rope_at(it.pos);
                for head in row[..qd + kvd].chunks_exact_mut(hd) {
                    rope(head, cos, sin);
                }
            }
            for (row, it) in qkv.chunks_exact(wqkv).zip(items) {
                let kv = caches[it.own].as_mut().expect("a live cache");
                kv.k[l].extend_from_slice(&row[qd..qd + kvd]);
                kv.v[l].extend_from_slice(&row[qd + kvd..]);
            }
            let caches_ref: &[Option<Kv>] = caches;
            att.par_chunks_mut(qd)
                .zip(qkv.par_chunks(wqkv))
                .zip(items.par_iter())
                .for_each_init(Vec::new, |scores, ((out, row), it)| {
                    self.attend(caches_ref, l, it, &row[..qd], out, scores)
                });
            b.o.matmul_t(&att, n, &mut x, true);
            rms_norm_rows(&x, &b.post_norm, self.eps, &mut h);
            b.gate_up.matmul_t(&h, n, &mut gu, false);
            act.par_chunks_mut(f)
                .zip(gu.par_chunks(2 * f))
                .for_each(|(a, g)| {
                    let (gate, up) = g.split_at(f);
                    for ((a, &g), &u) in a.iter_mut().zip(gate).zip(up) {
                        *a = g / (1.0 + (-g).exp()) * u;
                    }
                });
            b.down.matmul_t(&act, n, &mut x, true);
        }
        x
    }

    /// The width of the residual stream.
    pub(crate) fn hidden_size(&self) -> usize {
        self.d
    }

    /// How many blocks this engine holds.
    pub(crate) fn layers(&self) -> usize {
        self.blocks.len()
    }

    fn rope_at(&self, pos: usize) -> (&[f32], &[f32]) {
        let half = self.hd / 2;
        (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        )
    }

    /// Causal attention of one token's query heads `q` `[nh * hd]` over its chain of caches
    /// up to its position; writes `[nh * hd]` to `out`.
    fn attend(
        &self,
        caches: &[Option<Kv>],
        layer: usize,
        it: &Item,
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let kvd = self.nkv * self.hd;
        let live = |i: usize| caches[i].as_ref().expect("a live cache");
        let own = live(it.own);
        // Later tokens of this forward may already be in the own cache: stop at `pos`.
        let olen = it.pos + 1 - own.start;
        let mut parts: [Part<'_>; DEPTH] = [(&[], &[]); DEPTH];
        let mut first = DEPTH - 1;
        parts[first] = (&own.k[layer][..olen * kvd], &own.v[layer][..olen * kvd]);
        let mut up = own.parent;
        while let Some(p) = up {
            let kv = live(p);
            first = first.checked_sub(1).expect("chains are at most DEPTH long");
            parts[first] = (&kv.k[layer], &kv.v[layer]);
            up = kv.parent;
        }
        let a = Attend {
            nh: self.nh,
            nkv: self.nkv,
            hd: self.hd,
            s: it.pos + 1,
        };
        a.run(&parts[first..], q, out, scores)
    }
}

/// RMSNorm of each `d`-wide row of `x` with gain `g`, into `out`.
fn rms_norm_rows(x: &[f32], g: &[f32], eps: f32, out: &mut [f32]) {
    let d = g.len();
    for (row, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, &v), &w) in dst.iter_mut().zip(row).zip(g) {
            *o = v * inv * w;
        }
    }
}

/// Rotate-half RoPE of one head in place.
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    let (a, b) = x.split_at_mut(half);
    for i in 0..half {
        let (x1, x2) = (a[i], b[i]);
        a[i] = x1 * cos[i] - x2 * sin[i];
        b[i] = x2 * cos[i] + x1 * sin[i];
    }
}

/// What [`sample`] needs besides the model.
pub(crate) struct SampleJob<'a> {
    pub prompts: &'a [Vec<u32>],
    pub n_per_prompt: usize,
    pub max_new_tokens: usize,
    pub stop: &'a [u32],
    pub params: SamplingParams,
    /// Most samples decoded at once (a prompt's samples are admitted together, so a batch
    /// can exceed this when `n_per_prompt` does).
    pub max_rows: usize,
}

/// The caches of one call. A slot is reused once its sequence ends; each counts the caches
/// (or prompts still to come) that continue it, and is freed with its last one.
struct Pool {
    layers: usize,
    caches: Vec<Option<Kv>>,
    users: Vec<usize>,
    free: Vec<usize>,
}

impl Pool {
    fn alloc(&mut self, parent: Option<usize>, start: usize, users: usize) -> usize {
        let kv = Some(Kv::new(self.layers, parent, start));
        match self.free.pop() {
            Some(i) => {
                self.caches[i] = kv;
                self.users[i] = users;
                i
            }
            None => {
                self.caches.push(kv);
                self.users.push(users);
                self.caches.len() - 1
            }
        }
    }

    /// Drops one user of cache `i`: frees it when that was the last, then its parent likewise.
    fn release(&mut self, i: usize) {
        let mut at = Some(i);
        while let Some(c) = at {
            self.users[c] -= 1;
            if self.users[c] > 0 {
                break;
            }
            at = self.caches[c].take().expect("a live cache").parent;
            self.free.push(c);
        }
    }
}

/// How many leading tokens all prompts share, leaving each at least one of its own (whose
/// logits start its samples); 0 for a single prompt.
fn shared_prefix(prompts: &[Vec<u32>]) -> usize {
    let Some((first, rest)) = prompts.split_first() else {
        return 0;
    };
    if rest.is_empty() {
        return 0;
    }
    let shortest = prompts.iter().map(Vec::len).min().unwrap_or(0);
    rest.iter().fold(shortest.saturating_sub(1), |len, p| {
        first
            .iter()
            .zip(p)
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    })
}

/// Samples every prompt's completions (prompt-major output, see `CausalLm::sample`), with
/// sample `s` of prompt `p` drawing from a ChaCha8 stream seeded with `seed_of(p, s)`.
///
/// The prompts' common prefix (a chat template's system turn, say) is computed once and
/// shared. A token's keys and values do not depend on what else is in its batch, so this
/// changes no bit of the result where [`Matrix`] is packed (tested).
pub(crate) fn sample(
    model: &CausalLm,
    job: &SampleJob<'_>,
    seed_of: impl Fn(usize, usize) -> u64,
) -> Result<Vec<Vec<u32>>> {
    let n = job.n_per_prompt;
    let mut out = vec![Vec::new(); job.prompts.len() * n];
    if job.max_new_tokens == 0 || out.is_empty() {
        return Ok(out);
    }
    let longest = job.prompts.iter().map(Vec::len).max().unwrap_or(0);
    let engine = Engine::new(model, longest + job.max_new_tokens)?;
    let mut pool = Pool {
        layers: engine.blocks.len(),
        caches: Vec::new(),
        users: Vec::new(),
        free: Vec::new(),
    };
    let mut items = Vec::new();
    let shared = shared_prefix(job.prompts);
    let root = (shared > 0).then(|| {
        let root = pool.alloc(None, 0, job.prompts.len());
        items.extend(
            job.prompts[0][..shared]
                .iter()
                .enumerate()
                .map(|(i, &token)| Item {
                    token,
                    pos: i,
                    own: root,
                    logits: false,
                }),
        );
        root
    });
    let mut rows: Vec<Row> = Vec::new();
    let mut next_prompt = 0;
    while next_prompt < job.prompts.len() || !rows.is_empty() {
        let mut admitted = Vec::new();
        while next_prompt < job.prompts.len()
            && (rows.len() + (admitted.len() + 1) * n <= job.max_rows
                || (rows.is_empty() && admitted.is_empty()))
        {
            let p = next_prompt;
            next_prompt += 1;
            let seq = pool.alloc(root, shared, n);
            let toks = &job.prompts[p];
            items.extend((shared..toks.len()).map(|i| Item {
                token: toks[i],
                pos: i,
                own: seq,
                logits: i + 1 == toks.len(),
            }));
            admitted.push((p, seq));
        }
        for r in &rows {
            items.push(Item {
                token: *r.out.last().expect("a decoding row has a token"),
                pos: job.prompts[r.prompt].len() + r.out.len() - 1,
                own: r.own,
                logits: true,
            });
        }
        let logits = engine.forward(&mut pool.caches, &items);
        items.clear();
        let v = engine.vocab;
        // Logits come in item order: the admitted prompts' last tokens, then the rows.
        let (fresh, decoding) = logits.split_at(admitted.len() * v);
        for (&(p, prefix), lg) in admitted.iter().zip(fresh.chunks_exact(v)) {
            for s in 0..n {
                let own = pool.alloc(Some(prefix), job.prompts[p].len(), 1);
                let mut rng = ChaCha8Rng::seed_from_u64(seed_of(p, s));
                let tok = choose_token(lg, &job.params, &mut rng);
                rows.push(Row {
                    prompt: p,
                    sample: s,
                    own,
                    rng,
                    out: vec![tok],
                });
            }
        }
        let old = rows.len() - admitted.len() * n;
        rows[..old]
            .par_iter_mut()
            .zip(decoding.par_chunks(v))
            .for_each(|(r, lg)| {
                let tok = choose_token(lg, &job.params, &mut r.rng);
                r.out.push(tok);
            });
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows.drain(..) {
            let last = *r.out.last().expect("a row has a token");
            if r.out.len() >= job.max_new_tokens || job.stop.contains(&last) {
                pool.release(r.own);
                out[r.prompt * n + r.sample] = r.out;
            } else {
                kept.push(r);
            }
        }
        rows = kept;
    }
    debug_assert!(pool.caches.iter().all(Option::is_none), "every cache freed");
    Ok(out)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
