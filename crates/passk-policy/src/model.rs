//! The tiny GPT: parameters, initialisation and the differentiable forward pass.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand_distr::{Distribution, StandardNormal};

use crate::config::GptConfig;
use crate::error::{PolicyError, Result};
use crate::fused;
use crate::ops::{causal_mask, log_softmax_last, softmax_last};
use crate::tokens::check_tokens;
use passk_core::rng::weight_init;

/// Epsilon of every layer norm.
pub(crate) const LN_EPS: f32 = 1e-5;
/// Standard deviation of the normal initialisation.
const INIT_STD: f64 = 0.02;

/// A pre-norm decoder-only transformer with learned token and position embeddings, causal
/// self-attention, a GELU MLP, a final layer norm and an untied output head.
///
/// Parameters are named (see [`Gpt::params`]); linear weights are stored `[in, out]`, so a layer
/// computes `x @ W + b`.
pub struct Gpt {
    cfg: GptConfig,
    device: Device,
    vars: BTreeMap<String, Var>,
    fused: bool,
}

/// The tensors of one transformer block.
pub(crate) struct BlockWeights {
    pub(crate) ln1_w: Tensor,
    pub(crate) ln1_b: Tensor,
    pub(crate) qkv_w: Tensor,
    pub(crate) qkv_b: Tensor,
    pub(crate) proj_w: Tensor,
    pub(crate) proj_b: Tensor,
    pub(crate) ln2_w: Tensor,
    pub(crate) ln2_b: Tensor,
    pub(crate) fc_w: Tensor,
    pub(crate) fc_b: Tensor,
    pub(crate) fc2_w: Tensor,
    pub(crate) fc2_b: Tensor,
}

/// All tensors of the model, either tracked (training) or detached (sampling).
pub(crate) struct Weights {
    pub(crate) wte: Tensor,
    pub(crate) wpe: Tensor,
    pub(crate) blocks: Vec<BlockWeights>,
    pub(crate) lnf_w: Tensor,
    pub(crate) lnf_b: Tensor,
    pub(crate) head: Tensor,
}

/// Keys and values of every layer for the positions seen so far (used by sampling).
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    batch: Option<usize>,
}

impl KvCache {
    /// An empty cache for a model of shape `cfg`.
    pub fn new(cfg: &GptConfig) -> Self {
        Self {
            layers: (0..cfg.n_layer).map(|_| None).collect(),
            len: 0,
            batch: None,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the cached rows by the rows `index` (u32) names, in its order: the cache of one
    /// prefilled prompt shared by several samples.
    pub(crate) fn select_rows(&mut self, index: &Tensor) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(index, 0)?;
            *v = v.index_select(index, 0)?;
        }
        self.batch = Some(index.dim(0)?);
        Ok(())
    }
}

/// How to initialise a parameter.
enum Init {
    Normal(f64),
    Zeros,
    Ones,
}

/// Names, shapes and initialisations of every parameter of a model of shape `cfg`.
fn param_specs(cfg: &GptConfig) -> Vec<(String, Vec<usize>, Init)> {
    let d = cfg.d_model;
    let h = cfg.mlp_hidden();
    let resid_std = INIT_STD / ((2 * cfg.n_layer) as f64).sqrt();
    let mut specs = vec![
        (
            "wte".to_string(),
            vec![cfg.vocab_size, d],
            Init::Normal(INIT_STD),
        ),
        (
            "wpe".to_string(),
            vec![cfg.context, d],
            Init::Normal(INIT_STD),
        ),
        ("ln_f.weight".to_string(), vec![d], Init::Ones),
        ("ln_f.bias".to_string(), vec![d], Init::Zeros),
        (
            "head.weight".to_string(),
            vec![d, cfg.vocab_size],
            Init::Normal(INIT_STD),
        ),
    ];
    for i in 0..cfg.n_layer {
        let p = |s: &str| format!("h.{i}.{s}");
        specs.extend([
            (p("ln1.weight"), vec![d], Init::Ones),
            (p("ln1.bias"), vec![d], Init::Zeros),
            (p("attn.qkv.weight"), vec![d, 3 * d], Init::Normal(INIT_STD)),
            (p("attn.qkv.bias"), vec![3 * d], Init::Zeros),
            (p("attn.proj.weight"), vec![d, d], Init::Normal(resid_std)),
            (p("attn.proj.bias"), vec![d], Init::Zeros),
            (p("ln2.weight"), vec![d], Init::Ones),
            (p("ln2.bias"), vec![d], Init::Zeros),
            (p("mlp.fc.weight"), vec![d, h], Init::Normal(INIT_STD)),
            (p("mlp.fc.bias"), vec![h], Init::Zeros),
            (p("mlp.proj.weight"), vec![h, d], Init::Normal(resid_std)),
            (p("mlp.proj.bias"), vec![d], Init::Zeros),
        ]);
    }
    specs
}

impl Gpt {
    /// A freshly initialised model: weights N(0, 0.02) (residual projections scaled by
    /// 1/sqrt(2 n_layer)), biases 0, norm gains 1. Each parameter draws from its own seeded
    /// stream (keyed by `seed` and its name), so the same seed gives bit-identical weights.
    pub fn new(cfg: GptConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let mut vars = BTreeMap::new();
        for (name, shape, init) in param_specs(&cfg) {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = match init {
                Init::Zeros => vec![0.0; n],
                Init::Ones => vec![1.0; n],
                Init::Normal(std) => {
                    let mut rng = weight_init(seed, &name);
                    (0..n)
                        .map(|_| {
                            let z: f64 = StandardNormal.sample(&mut rng);
                            (z * std) as f32
                        })
                        .collect()
                }
            };
            let tensor = Tensor::from_vec(data, shape, device)?;
            vars.insert(name, Var::from_tensor(&tensor)?);
        }
        Ok(Self {
            cfg,
            device: device.clone(),
            vars,
            fused: device.is_cpu(),
        })
    }

    /// Chooses between the fused CPU kernels (layer norm, bias + GELU, causal attention and
    /// token log-probabilities in one pass each, with hand-written backward passes; the default
    /// on the CPU) and the same maths from generic candle ops (the only choice on other
    /// devices, where `on` is ignored). Both compute the same function; results agree to float
    /// rounding, not bit for bit.
    pub fn set_fused_kernels(&mut self, on: bool) {
        self.fused = on && self.device.is_cpu();
    }

    /// Whether the fused CPU kernels are in use (see [`Gpt::set_fused_kernels`]).
    pub fn fused_kernels(&self) -> bool {
        self.fused
    }

    /// The model's shape.
    pub fn config(&self) -> &GptConfig {
        &self.cfg
    }

    /// The device holding the parameters.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter with its name, sorted by name (a deterministic order for optimisers).
    pub fn params(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The parameters as plain `Var`s, sorted by name.
    pub fn vars(&self) -> Vec<Var> {
        self.vars.values().cloned().collect()
    }

    /// One parameter by name, if it exists.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    fn tensor(&self, name: &str, detach: bool) -> Tensor {
        let t = self.vars[name].as_tensor();
        if detach {
            t.detach()
        } else {
            t.clone()
        }
    }

    /// The model's tensors; `detach` gives views that share storage but build no graph.
    pub(crate) fn weights(&self, detach: bool) -> Weights {
        let t = |n: &str| self.tensor(n, detach);
        Weights {
            wte: t("wte"),
            wpe: t("wpe"),
            blocks: (0..self.cfg.n_layer)
                .map(|i| {
                    let b = |s: &str| t(&format!("h.{i}.{s}"));
                    BlockWeights {
                        ln1_w: b("ln1.weight"),
                        ln1_b: b("ln1.bias"),
                        qkv_w: b("attn.qkv.weight"),
                        qkv_b: b("attn.qkv.bias"),
                        proj_w: b("attn.proj.weight"),
                        proj_b: b("attn.proj.bias"),
                        ln2_w: b("ln2.weight"),
                        ln2_b: b("ln2.bias"),
                        fc_w: b("mlp.fc.weight"),
                        fc_b: b("mlp.fc.bias"),
                        fc2_w: b("mlp.proj.weight"),
                        fc2_b: b("mlp.proj.bias"),
                    }
                })
                .collect(),
            lnf_w: t("ln_f.weight"),
            lnf_b: t("ln_f.bias"),
            head: t("head.weight"),
        }
    }

    /// Final-norm hidden states `[B, T, d]` for `tokens` placed after the cached positions.
    pub(crate) fn hidden(
        &self,
        w: &Weights,
        tokens: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let (b, t) = check_tokens(
            tokens,
            offset,
            (self.cfg.context, "the model context"),
            self.cfg.vocab_size,
        )?;
        if let Some(c) = cache.as_ref() {
            if c.batch.is_some_and(|cb| cb != b) {
                return Err(PolicyError::Input(format!(
                    "cache holds {} rows but {b} were given",
                    c.batch.unwrap_or(0)
                )));
            }
        }
        let d = self.cfg.d_model;
        let n = b * t;
        // Activations stay 2-D `[B*T, d]`; see `repeat_rows` for why broadcasts are avoided.
        let ones = Tensor::ones((n, 1), DType::F32, &self.device)?;
        let positions: Vec<u32> = (0..b)
            .flat_map(|_| (offset..offset + t).map(|p| p as u32))
            .collect();
        let positions = Tensor::from_vec(positions, n, &self.device)?;
        let tok = w.wte.index_select(&tokens.flatten_all()?, 0)?;
        let pos = w.wpe.index_select(&positions, 0)?;
        let mut x = (tok + pos)?;
        let mask = causal_mask(t, offset, &self.device)?;
        for (i, blk) in w.blocks.iter().enumerate() {
            let h = self.layer_norm(&x, &blk.ln1_w, &blk.ln1_b, &ones)?;
            let layer_cache = cache.as_mut().map(|c| &mut c.layers[i]);
            x = self.attention(blk, &h, &x, (b, t), &ones, mask.as_ref(), layer_cache)?;
            let h = self.layer_norm(&x, &blk.ln2_w, &blk.ln2_b, &ones)?;
            let h = if self.fused {
                let train = h.track_op() || blk.fc_w.track_op() || blk.fc_b.track_op();
                h.matmul(&blk.fc_w)?
                    .apply_op2(&blk.fc_b, fused::BiasGelu::new(train))?
            } else {
                linear(&h, &blk.fc_w, &blk.fc_b, &ones)?.gelu_erf()?
            };
            x = self.residual_linear(&h, &blk.fc2_w, &blk.fc2_b, &x, &ones)?;
        }
        if let Some(c) = cache {
            c.len += t;
            c.batch = Some(b);
        }
        Ok(self
            .layer_norm(&x, &w.lnf_w, &w.lnf_b, &ones)?
            .reshape((b, t, d))?)
    }

    /// [`layer_norm`], fused when enabled.
    fn layer_norm(&self, x: &Tensor, g: &Tensor, b: &Tensor, ones: &Tensor) -> Result<Tensor> {
        if self.fused {
            Ok(x.contiguous()?.apply_op3(g, b, fused::LayerNorm)?)
        } else {
            layer_norm(x, g, b, ones)
        }
    }

    /// [`linear`], with a fused bias add when enabled.
    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor, ones: &Tensor) -> Result<Tensor> {
        if self.fused {
            Ok(x.matmul(w)?.apply_op2(b, fused::BiasAdd)?)
        } else {
            linear(x, w, b, ones)
        }
    }

    /// `resid + x @ w + b`, fused when enabled.
    fn residual_linear(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        resid: &Tensor,
        ones: &Tensor,
    ) -> Result<Tensor> {
        if self.fused {
            Ok(x.matmul(w)?.apply_op3(b, resid, fused::BiasAdd)?)
        } else {
            Ok((resid + linear(x, w, b, ones)?)?)
        }
    }

    /// `resid` plus causal multi-head self-attention of `x` `[B*T, d]`, extending `cache` when
    /// given.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        blk: &BlockWeights,
        x: &Tensor,
        resid: &Tensor,
        (b, t): (usize, usize),
        ones: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let d = self.cfg.d_model;
        let (nh, hd) = (self.cfg.n_head, self.cfg.head_dim());
        let qkv = self.linear(x, &blk.qkv_w, &blk.qkv_b, ones)?;
        if self.fused && cache.is_none() {
            let op = fused::Attention {
                batch: b,
                time: t,
                heads: nh,
                head_dim: hd,
            };
            let y = qkv.apply_op1(op)?;
            return self.residual_linear(&y, &blk.proj_w, &blk.proj_b, resid, ones);
        }
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(D::Minus1, i * d, d)?
                .reshape((b, t, nh, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some(slot) = cache {
            if let Some((k0, v0)) = slot.as_ref() {
                k = Tensor::cat(&[k0, &k], 2)?;
                v = Tensor::cat(&[v0, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let scale = 1.0 / (hd as f64).sqrt();
        let mut att = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            att = att.broadcast_add(mask)?;
        }
        let att = softmax_last(&att)?;
        let y = att
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, d))?;
        self.residual_linear(&y, &blk.proj_w, &blk.proj_b, resid, ones)
    }

    /// Next-token logits `[B, T, V]` for a `[B, T]` u32 token batch (differentiable).
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let w = self.weights(false);
        let h = self.hidden(&w, tokens, None)?;
        head(&h, &w.head)
    }

    /// Log-probability of each row's completion: the sum of `log pi(token_t | tokens_<t)` over
    /// positions `t >= prompt_len`, each multiplied by `mask[b, t - prompt_len]` (1 keeps a
    /// position, 0 drops it: padding or tokens after `<eos>`). `tokens` is `[B, T]` u32, `mask`
    /// is `[B, T - prompt_len]` f32; the result is `[B]` and differentiable.
    pub fn sequence_logprobs(
        &self,
        tokens: &Tensor,
        prompt_len: usize,
        mask: &Tensor,
    ) -> Result<Tensor> {
        self.sequence_logprobs_with(&self.weights(false), tokens, prompt_len, mask)
    }

    fn sequence_logprobs_with(
        &self,
        w: &Weights,
        tokens: &Tensor,
        prompt_len: usize,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        if prompt_len == 0 || prompt_len >= t {
            return Err(PolicyError::Input(format!(
                "prompt_len must be in 1..{t} (the sequence length), got {prompt_len}"
            )));
        }
        let l = t - prompt_len;
        if mask.dims() != [b, l] || mask.dtype() != DType::F32 {
            return Err(PolicyError::Input(format!(
                "mask must be f32 of shape [{b}, {l}], got {:?} {:?}",
                mask.dtype(),
                mask.dims()
            )));
        }
        let h = self.hidden(w, tokens, None)?;
        let h = h.narrow(1, prompt_len - 1, l)?.contiguous()?;
        let logits = head(&h, &w.head)?.reshape((b * l, self.cfg.vocab_size))?;
        if self.fused {
            let targets = tokens
                .narrow(1, prompt_len, l)?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<u32>()?;
            let picked = logits
                .apply_op1(fused::PickLogProb(targets))?
                .reshape((b, l))?;
            return Ok((picked * mask.to_device(&self.device)?)?.sum(1)?);
        }
        let logp = log_softmax_last(&logits)?;
        let targets = tokens
            .narrow(1, prompt_len, l)?
            .contiguous()?
            .reshape((b * l, 1))?;
        let picked = logp.gather(&targets, 1)?.reshape((b, l))?;
        Ok((picked * mask.to_device(&self.device)?)?.sum(1)?)
    }

    /// [`Gpt::sequence_logprobs`] of a prepared [`SequenceBatch`].
    pub fn batch_logprobs(&self, batch: &SequenceBatch) -> Result<Tensor> {
        self.sequence_logprobs(&batch.tokens, batch.prompt_len, &batch.mask)
    }

    /// [`Gpt::batch_logprobs`] from detached weights: the same values, no graph and no
    /// derivatives kept.
    pub fn batch_logprobs_detached(&self, batch: &SequenceBatch) -> Result<Tensor> {
        let w = self.weights(true);
        self.sequence_logprobs_with(&w, &batch.tokens, batch.prompt_len, &batch.mask)
    }

    /// Logits `[B, T, V]` of `tokens` placed after the cached positions, computed from
    /// detached weights (no graph); extends `cache`.
    pub fn forward_cached(&self, cache: &mut KvCache, tokens: &Tensor) -> Result<Tensor> {
        let w = self.weights(true);
        self.forward_cached_with(&w, cache, tokens)
    }

    pub(crate) fn forward_cached_with(
        &self,
        w: &Weights,
        cache: &mut KvCache,
        tokens: &Tensor,
    ) -> Result<Tensor> {
        if cache.layers.len() != self.cfg.n_layer {
            return Err(PolicyError::Input(
                "cache was made for a model with a different number of layers".to_string(),
            ));
        }
        let h = self.hidden(w, tokens, Some(cache))?;
        head(&h, &w.head)
    }
}

/// Prompt-plus-completion rows ready for [`Gpt::batch_logprobs`].
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// `[B, P + L]` u32: each prompt followed by its completion, padded to the longest.
    pub tokens: Tensor,
    /// `[B, L]` f32: 1 on completion tokens up to and including the first `<eos>`, else 0.
    pub mask: Tensor,
    /// The common prompt length `P`.
    pub prompt_len: usize,
}

impl SequenceBatch {
    /// Builds a batch from `(prompt, completion)` pairs. All prompts must have the same length;
    /// completions are padded with `pad` to the longest; tokens after the first `eos` in a
    /// completion are masked out.
    pub fn new(rows: &[(&[u32], &[u32])], eos: u32, pad: u32, device: &Device) -> Result<Self> {
        let Some((first, _)) = rows.first() else {
            return Err(PolicyError::Input("no rows to batch".to_string()));
        };
        let p = first.len();
        if p == 0 || rows.iter().any(|(pr, _)| pr.len() != p) {
            return Err(PolicyError::Input(
                "all prompts in a batch must be non-empty and equally long; group rows by \
                 prompt length"
                    .to_string(),
            ));
        }
        let l = rows.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
        if l == 0 {
            return Err(PolicyError::Input("every completion is empty".to_string()));
        }
        let mut tokens = Vec::with_capacity(rows.len() * (p + l));
        let mut mask = Vec::with_capacity(rows.len() * l);
        for (prompt, completion) in rows {
            tokens.extend_from_slice(prompt);
            let mut live = true;
            for j in 0..l {
                let tok = completion.get(j).copied();
                tokens.push(tok.unwrap_or(pad));
                mask.push(if live && tok.is_some() { 1.0f32 } else { 0.0 });
                if tok == Some(eos) {
                    live = false;
                }
            }
        }
        Ok(Self {
            tokens: Tensor::from_vec(tokens, (rows.len(), p + l), device)?,
            mask: Tensor::from_vec(mask, (rows.len(), l), device)?,
            prompt_len: p,
        })
    }
}

/// `row` (a `[k]` vector) repeated on each of the `N` rows of `ones` (`[N, 1]`), as a matmul.
///
/// candle's backward of a broadcast sums over the leading dimensions with a slow per-element
/// loop; the backward of this outer product is a gemm (`ones^T @ grad`), many times faster.
fn repeat_rows(ones: &Tensor, row: &Tensor) -> Result<Tensor> {
    Ok(ones.matmul(&row.unsqueeze(0)?)?)
}

/// `x @ w + b` for `x` `[N, in]`, `w` `[in, out]`, `b` `[out]`; `ones` is `[N, 1]`.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor, ones: &Tensor) -> Result<Tensor> {
    Ok((x.matmul(w)? + repeat_rows(ones, b)?)?)
}

/// Layer norm over the last dimension of `x` `[N, d]` with gain `g` and bias `b` (`[d]`),
/// built from differentiable ops (candle's fused layer norm has no backward).
fn layer_norm(x: &Tensor, g: &Tensor, b: &Tensor, ones: &Tensor) -> Result<Tensor> {
    let d = x.dim(1)? as f64;
    let mean = (x.sum_keepdim(1)? / d)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = (xc.sqr()?.sum_keepdim(1)? / d)?;
    let xn = xc.broadcast_div(&(var + f64::from(LN_EPS))?.sqrt()?)?;
    Ok(((xn * repeat_rows(ones, g)?)? + repeat_rows(ones, b)?)?)
}

/// The untied output head: `[B, T, d] -> [B, T, V]`.
fn head(h: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = h.dims3()?;
    let v = w.dim(1)?;
    Ok(h.reshape((b * t, d))?.matmul(w)?.reshape((b, t, v))?)
}
