//! Fast sampling on the CPU: an inference-only forward pass over plain buffers with continuous
//! batching and a prompt-shared KV cache.
//!
//! [`CausalLm::sample`](super::CausalLm::sample) runs here on the CPU. The differentiable
//! forward pass builds a candle op per step of the model and copies the whole KV cache every
//! token (`cat`); for decoding that is most of the time. This engine instead:
//!
//! - copies the weights once per call into row-major buffers, with q/k/v and gate/up fused
//!   into one matrix each, and multiplies them with `gemm` (the kernel candle itself uses);
//! - keeps each prompt's keys and values once (its *prefix*), shared by all its samples, and
//!   each sample's own completion keys and values in a buffer that grows by appending;
//! - runs every token of a step in one flat batch, whatever its sequence and position:
//!   prompts being prefilled and samples being decoded share the same matmuls
//!   (continuous batching). A sample that stops leaves the batch at once and a waiting prompt
//!   takes its place, so no work is spent on finished rows and memory stays bounded by
//!   `max_rows`.
//!
//! Randomness is per sample (see `sample`), so the output does not depend on the batch
//! composition; logits agree with the differentiable model up to float rounding (tested).

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::config::LmConfig;
use super::model::CausalLm;
use crate::error::Result;
use crate::sample::{choose_token, SamplingParams};

/// One decoder block's weights, row-major `[out, in]`.
struct Block {
    in_norm: Vec<f32>,
    /// `[(nh + 2 nkv) hd, d]`: q, then k, then v rows.
    qkv: Vec<f32>,
    qkv_bias: Option<Vec<f32>>,
    o: Vec<f32>,
    post_norm: Vec<f32>,
    /// `[2 f, d]`: gate rows, then up rows.
    gate_up: Vec<f32>,
    down: Vec<f32>,
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
    embed: Vec<f32>,
    /// `None` when the head is tied to the embedding.
    head: Option<Vec<f32>>,
    norm: Vec<f32>,
    blocks: Vec<Block>,
    /// `[positions, hd / 2]` RoPE tables.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Keys and values of one sequence, per layer `[len, nkv * hd]`.
struct Kv {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Kv {
    fn new(layers: usize) -> Self {
        Self {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
        }
    }
}

/// One token of a forward batch.
#[derive(Clone, Copy)]
struct Item {
    token: u32,
    /// Absolute position in its sequence.
    pos: usize,
    /// The prompt cache this token's sequence continues, if any.
    prefix: Option<usize>,
    /// The cache its key and value are appended to.
    own: usize,
    /// Whether logits are wanted for it.
    logits: bool,
}

/// A sample being decoded.
struct Row {
    prompt: usize,
    sample: usize,
    prefix: usize,
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
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            let qkv_names = ["q_proj", "k_proj", "v_proj"];
            blocks.push(Block {
                in_norm: get(&p("input_layernorm.weight"))?,
                qkv: cat(&qkv_names.map(|s| p(&format!("self_attn.{s}.weight"))))?,
                qkv_bias: if cfg.qkv_bias() {
                    Some(cat(&qkv_names.map(|s| p(&format!("self_attn.{s}.bias"))))?)
                } else {
                    None
                },
                o: get(&p("self_attn.o_proj.weight"))?,
                post_norm: get(&p("post_attention_layernorm.weight"))?,
                gate_up: cat(&[p("mlp.gate_proj.weight"), p("mlp.up_proj.weight")])?,
                down: get(&p("mlp.down_proj.weight"))?,
            });
        }
        let hd = cfg.head_dim();
        // The same f32 arithmetic as the differentiable model's RoPE tables.
        let theta = cfg.rope_theta as f32;
        let inv: Vec<f32> = (0..hd)
            .step_by(2)
            .map(|i| 1f32 / theta.powf(i as f32 / hd as f32))
            .collect();
        let angles = (0..positions).flat_map(|p| inv.iter().map(move |f| p as f32 * f));
        let (cos, sin) = angles.map(|a| (a.cos(), a.sin())).unzip();
        Ok(Self {
            d: cfg.hidden_size,
            f: cfg.intermediate_size,
            nh: cfg.num_attention_heads,
            nkv: cfg.kv_heads(),
            hd,
            vocab: cfg.vocab_size,
            eps: cfg.rms_norm_eps as f32,
            embed: get("model.embed_tokens.weight")?,
            head: if cfg.tie_word_embeddings {
                None
            } else {
                Some(get("lm_head.weight")?)
            },
            norm: get("model.norm.weight")?,
            blocks,
            cos,
            sin,
        })
    }

    /// Runs `items` through the model, appending their keys and values to their caches, and
    /// returns the logits `[m, V]` of the `m` items that want them, in item order.
    fn forward(&self, caches: &mut [Option<Kv>], items: &[Item]) -> Vec<f32> {
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
            matmul_t(&h, n, d, &b.qkv, wqkv, &mut qkv, false);
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
            matmul_t(&att, n, qd, &b.o, d, &mut x, true);
            rms_norm_rows(&x, &b.post_norm, self.eps, &mut h);
            matmul_t(&h, n, d, &b.gate_up, 2 * f, &mut gu, false);
            act.par_chunks_mut(f)
                .zip(gu.par_chunks(2 * f))
                .for_each(|(a, g)| {
                    let (gate, up) = g.split_at(f);
                    for ((a, &g), &u) in a.iter_mut().zip(gate).zip(up) {
                        *a = g / (1.0 + (-g).exp()) * u;
                    }
                });
            matmul_t(&act, n, f, &b.down, d, &mut x, true);
        }
        let wanted: Vec<usize> = (0..n).filter(|&i| items[i].logits).collect();
        let m = wanted.len();
        let mut last = vec![0f32; m * d];
        for (dst, &i) in last.chunks_exact_mut(d).zip(&wanted) {
            dst.copy_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut hl = vec![0f32; m * d];
        rms_norm_rows(&last, &self.norm, self.eps, &mut hl);
        let mut logits = vec![0f32; m * self.vocab];
        let head = self.head.as_deref().unwrap_or(&self.embed);
        matmul_t(&hl, m, d, head, self.vocab, &mut logits, false);
        logits
    }

    fn rope_at(&self, pos: usize) -> (&[f32], &[f32]) {
        let half = self.hd / 2;
        (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        )
    }

    /// Causal attention of one token's query heads `q` `[nh * hd]` over its prefix and its
    /// own cache up to its position; writes `[nh * hd]` to `out`.
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
        let prefix = it
            .prefix
            .map(|p| caches[p].as_ref().expect("a live prefix"));
        let plen = prefix.map_or(0, |p| p.k[layer].len() / kvd);
        let own = caches[it.own].as_ref().expect("a live cache");
        let olen = it.pos + 1 - plen;
        let keys = [
            prefix.map(|p| &p.k[layer][..plen * kvd]),
            Some(&own.k[layer][..olen * kvd]),
        ];
        let values = [
            prefix.map(|p| &p.v[layer][..plen * kvd]),
            Some(&own.v[layer][..olen * kvd]),
        ];
        let a = Attend {
            nh: self.nh,
            nkv: self.nkv,
            hd: self.hd,
            s: it.pos + 1,
        };
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { a.run_fma(keys, values, q, out, scores) };
        }
        a.run::<false>(keys, values, q, out, scores)
    }
}

/// The shape of one token's attention over `s` cached positions.
struct Attend {
    nh: usize,
    nkv: usize,
    hd: usize,
    s: usize,
}

type Parts<'a> = [Option<&'a [f32]>; 2];

impl Attend {
    /// [`Attend::run`] compiled for AVX2 with fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_fma(
        &self,
        keys: Parts<'_>,
        values: Parts<'_>,
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        self.run::<true>(keys, values, q, out, scores)
    }

    /// The query heads of one key/value group are handled together, so each cached key and
    /// value row is read once per group, not once per head.
    #[inline(always)]
    fn run<const FMA: bool>(
        &self,
        keys: Parts<'_>,
        values: Parts<'_>,
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let (hd, s) = (self.hd, self.s);
        let kvd = self.nkv * hd;
        let rep = self.nh / self.nkv;
        let scale = 1.0 / (hd as f32).sqrt();
        scores.clear();
        scores.resize(rep * s, 0.0);
        for g in 0..self.nkv {
            let qg = &q[g * rep * hd..(g + 1) * rep * hd];
            let mut j = 0;
            for part in keys.iter().flatten() {
                for row in part.chunks_exact(kvd) {
                    let k = &row[g * hd..(g + 1) * hd];
                    for (r, qh) in qg.chunks_exact(hd).enumerate() {
                        scores[r * s + j] = dot::<FMA>(qh, k) * scale;
                    }
                    j += 1;
                }
            }
            debug_assert_eq!(j, s);
            for sc in scores.chunks_exact_mut(s) {
                let max = sc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for x in sc.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                let inv = 1.0 / sum;
                sc.iter_mut().for_each(|x| *x *= inv);
            }
            let og = &mut out[g * rep * hd..(g + 1) * rep * hd];
            og.fill(0.0);
            let mut j = 0;
            for part in values.iter().flatten() {
                for row in part.chunks_exact(kvd) {
                    let v = &row[g * hd..(g + 1) * hd];
                    for (r, oh) in og.chunks_exact_mut(hd).enumerate() {
                        axpy::<FMA>(oh, scores[r * s + j], v);
                    }
                    j += 1;
                }
            }
        }
    }
}

/// Dot product with eight partial sums (so the compiler vectorises it).
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `o += p · v`.
#[inline(always)]
fn axpy<const FMA: bool>(o: &mut [f32], p: f32, v: &[f32]) {
    for (o, &v) in o.iter_mut().zip(v) {
        *o = if FMA { p.mul_add(v, *o) } else { *o + p * v };
    }
}

/// `out[m, n] (+)= a[m, k] · w[n, k]ᵀ` (accumulating into `out` when `acc`).
fn matmul_t(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && w.len() >= n * k && out.len() >= m * n);
    if m == 0 {
        return;
    }
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every index gemm touches: dst is m×n row-major, lhs
    // m×k row-major, rhs the k×n transpose of w (n×k row-major).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
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

/// Samples every prompt's completions (prompt-major output, see `CausalLm::sample`), with
/// sample `s` of prompt `p` drawing from a ChaCha8 stream seeded with `seed_of(p, s)`.
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
    let layers = engine.blocks.len();
    let mut caches: Vec<Option<Kv>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let alloc = |caches: &mut Vec<Option<Kv>>, free: &mut Vec<usize>| match free.pop() {
        Some(i) => {
            caches[i] = Some(Kv::new(layers));
            i
        }
        None => {
            caches.push(Some(Kv::new(layers)));
            caches.len() - 1
        }
    };
    // Rows still referencing each prefix, to free it when the last one ends.
    let mut users: Vec<usize> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut next_prompt = 0;
    while next_prompt < job.prompts.len() || !rows.is_empty() {
        let mut items = Vec::new();
        let mut admitted = Vec::new();
        while next_prompt < job.prompts.len()
            && (rows.len() + (admitted.len() + 1) * n <= job.max_rows
                || (rows.is_empty() && admitted.is_empty()))
        {
            let p = next_prompt;
            next_prompt += 1;
            let seq = alloc(&mut caches, &mut free);
            if users.len() <= seq {
                users.resize(seq + 1, 0);
            }
            let toks = &job.prompts[p];
            items.extend(toks.iter().enumerate().map(|(i, &token)| Item {
                token,
                pos: i,
                prefix: None,
                own: seq,
                logits: i + 1 == toks.len(),
            }));
            admitted.push((p, seq));
        }
        for r in &rows {
            items.push(Item {
                token: *r.out.last().expect("a decoding row has a token"),
                pos: job.prompts[r.prompt].len() + r.out.len() - 1,
                prefix: Some(r.prefix),
                own: r.own,
                logits: true,
            });
        }
        let logits = engine.forward(&mut caches, &items);
        let v = engine.vocab;
        // Logits come in item order: the admitted prompts' last tokens, then the rows.
        let (fresh, decoding) = logits.split_at(admitted.len() * v);
        for (&(p, prefix), lg) in admitted.iter().zip(fresh.chunks_exact(v)) {
            users[prefix] = n;
            for s in 0..n {
                let own = alloc(&mut caches, &mut free);
                let mut rng = ChaCha8Rng::seed_from_u64(seed_of(p, s));
                let tok = choose_token(lg, &job.params, &mut rng);
                rows.push(Row {
                    prompt: p,
                    sample: s,
                    prefix,
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
                caches[r.own] = None;
                free.push(r.own);
                users[r.prefix] -= 1;
                if users[r.prefix] == 0 {
                    caches[r.prefix] = None;
                    free.push(r.prefix);
                }
                out[r.prompt * n + r.sample] = r.out;
            } else {
                kept.push(r);
            }
        }
        rows = kept;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
