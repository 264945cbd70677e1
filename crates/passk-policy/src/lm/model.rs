//! The differentiable Llama/Qwen2 decoder: parameters, trainable subsets and the forward pass.
//!
//! Built only from ops that have a backward pass in candle 0.11: RMSNorm from `sqr`/`mean`/
//! `sqrt`, RoPE through `rope_slow` (rotate-half, Hugging Face layout), a softmax from `exp`
//! and sums, grouped-query attention by reshaping the queries onto the key/value heads (no
//! copy of the keys), and a SiLU-gated MLP.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use candle_core::{DType, Device, Tensor, Var};

use super::config::LmConfig;
use super::init::param_shapes;
use super::ops::{causal_mask, head, rms_norm, softmax_last};
use crate::error::{PolicyError, Result};
use crate::tokens::check_tokens;

/// Which parameters receive gradients; the others are used as constants (detached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trainable {
    /// Every parameter.
    All,
    /// The last `blocks` decoder blocks and the final norm (plus an untied `lm_head`); the
    /// token embedding (and so a tied head) only when `embeddings` is true.
    LastBlocks {
        /// How many of the last blocks train (clamped to the number of blocks).
        blocks: usize,
        /// Whether the token embedding trains too.
        embeddings: bool,
    },
}

/// The tensors of one decoder block, in Hugging Face layout (`[out, in]` linear weights).
pub(crate) struct BlockW {
    in_norm: Tensor,
    q_w: Tensor,
    k_w: Tensor,
    v_w: Tensor,
    qkv_b: Option<(Tensor, Tensor, Tensor)>,
    o_w: Tensor,
    post_norm: Tensor,
    gate_w: Tensor,
    up_w: Tensor,
    down_w: Tensor,
}

/// The tensors of the whole model for one forward pass.
pub(crate) struct LmWeights {
    embed: Tensor,
    blocks: Vec<BlockW>,
    norm: Tensor,
    /// `[V, d]`: the embedding when tied.
    pub(super) head: Tensor,
}

/// Post-RoPE keys and values of every layer for the positions seen so far.
pub struct LmCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    batch: Option<usize>,
}

impl LmCache {
    /// An empty cache for `model`.
    pub fn new(model: &CausalLm) -> Self {
        Self {
            layers: (0..model.cfg.num_hidden_layers).map(|_| None).collect(),
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

    /// Replaces the cached rows by `rows` (u32 indices into the current rows, repeats
    /// allowed), so one prefilled prompt can seed several samples.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(rows, 0)?;
            *v = v.index_select(rows, 0)?;
        }
        self.batch = Some(rows.dim(0)?);
        Ok(())
    }
}

/// A Llama/Qwen2-family causal language model whose weights are candle `Var`s.
pub struct CausalLm {
    pub(super) cfg: LmConfig,
    pub(super) device: Device,
    /// The dtype of the forward pass (see [`CausalLm::set_compute_dtype`]).
    pub(super) dtype: DType,
    vars: BTreeMap<String, Var>,
    pub(super) trainable: BTreeSet<String>,
    /// Whether training passes run the frozen lower blocks through the packed engine
    /// (`lm/frozen.rs`); off only to test that path against the all-autograd one.
    pub(super) frozen_engine: bool,
}

impl CausalLm {
    /// A model of shape `cfg` from named tensors in Hugging Face layout (any float dtype; kept
    /// as f32 on `device`). With tied embeddings a stored `lm_head.weight` is ignored. Every
    /// parameter trains ([`Trainable::All`]).
    pub fn from_tensors(
        cfg: LmConfig,
        mut tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        if cfg.tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        let mut vars = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, shape) in param_shapes(&cfg) {
            let Some(t) = tensors.remove(&name) else {
                missing.push(name);
                continue;
            };
            if t.dims() != shape.as_slice() {
                return Err(PolicyError::Config(format!(
                    "tensor {name} has shape {:?} but the config implies {shape:?}; check that \
                     config.json belongs to these weights",
                    t.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        if !missing.is_empty() {
            return Err(PolicyError::Config(format!(
                "weights are missing {} tensors (first: {}); check the checkpoint and \
                 tie_word_embeddings / attention_bias in config.json",
                missing.len(),
                missing[0]
            )));
        }
        // Rotary inverse-frequency buffers and similar non-parameters are tolerated.
        let mut extra: Vec<_> = tensors
            .into_keys()
            .filter(|k| !k.contains("rotary_emb"))
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(PolicyError::Config(format!(
                "weights have {} tensors the model does not use (first: {}); is this a \
                 llama/qwen2 checkpoint?",
                extra.len(),
                extra[0]
            )));
        }
        let trainable = vars.keys().cloned().collect();
        Ok(Self {
            cfg,
            device: device.clone(),
            dtype: DType::F32,
            vars,
            trainable,
            frozen_engine: true,
        })
    }

    /// Chooses which parameters receive gradients (see [`Trainable`]).
    pub fn set_trainable(&mut self, which: Trainable) {
        let n = self.cfg.num_hidden_layers;
        self.trainable = self
            .vars
            .keys()
            .filter(|name| match which {
                Trainable::All => true,
                Trainable::LastBlocks { blocks, embeddings } => {
                    if let Some(rest) = name.strip_prefix("model.layers.") {
                        let i: usize = rest
                            .split('.')
                            .next()
                            .and_then(|s| s.parse().ok())
                            .expect("block names carry an index");
                        i + blocks.min(n) >= n
                    } else if name.as_str() == "model.embed_tokens.weight" {
                        embeddings
                    } else {
                        true
                    }
                }
            })
            .cloned()
            .collect();
    }

    /// Runs the forward pass in `dtype` (f32, bf16 or f16; the default is f32): the weights
    /// stay f32 `Var`s (so optimiser updates and gradients are f32) and are cast for each pass.
    /// In bf16/f16 the norms, the attention softmax and the log-softmax of the logits are
    /// computed in f32 (matmuls accumulate in f32 on CUDA), so log-probabilities, the policy
    /// loss and the probe's gradients are summed in f32. In f32 nothing is cast: results are
    /// identical to a model that never called this.
    ///
    /// # Errors
    /// Any other dtype.
    pub fn set_compute_dtype(&mut self, dtype: DType) -> Result<()> {
        if !matches!(dtype, DType::F32 | DType::BF16 | DType::F16) {
            return Err(PolicyError::Input(format!(
                "compute dtype {dtype:?} is not supported; use f32, bf16 or f16"
            )));
        }
        self.dtype = dtype;
        Ok(())
    }

    /// The dtype of the forward pass (see [`CausalLm::set_compute_dtype`]).
    pub fn compute_dtype(&self) -> DType {
        self.dtype
    }

    /// The model's shape.
    pub fn config(&self) -> &LmConfig {
        &self.cfg
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable parameters with their names, sorted by name (give these to an optimiser).
    pub fn params(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(k, _)| self.trainable.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every weight (trainable or not) with its name, sorted by name.
    pub fn all_params(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The trainable parameters as plain `Var`s, sorted by name.
    pub fn vars(&self) -> Vec<Var> {
        self.params().into_iter().map(|(_, v)| v).collect()
    }

    /// One weight by its Hugging Face name, if it exists.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// Number of scalar weights.
    pub fn num_params(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// Number of trainable scalar weights.
    pub fn num_trainable(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The model's tensors; frozen ones (or all, with `detach_all`) are detached views that
    /// share storage with the `Var`s but build no graph.
    pub(crate) fn weights(&self, detach_all: bool) -> Result<LmWeights> {
        // A cast has a backward pass (gradients come back as f32); in f32 it is a no-op.
        let t = |n: &str| -> Result<Tensor> {
            let v = self.vars[n].as_tensor();
            let v = if detach_all || !self.trainable.contains(n) {
                v.detach()
            } else {
                v.clone()
            };
            Ok(v.to_dtype(self.dtype)?)
        };
        let embed = t("model.embed_tokens.weight")?;
        let head = if self.cfg.tie_word_embeddings {
            embed.clone()
        } else {
            t("lm_head.weight")?
        };
        let blocks = (0..self.cfg.num_hidden_layers)
            .map(|i| {
                let b = |s: &str| t(&format!("model.layers.{i}.{s}"));
                let qkv_b = if self.cfg.qkv_bias() {
                    Some((
                        b("self_attn.q_proj.bias")?,
                        b("self_attn.k_proj.bias")?,
                        b("self_attn.v_proj.bias")?,
                    ))
                } else {
                    None
                };
                Ok(BlockW {
                    in_norm: b("input_layernorm.weight")?,
                    q_w: b("self_attn.q_proj.weight")?,
                    k_w: b("self_attn.k_proj.weight")?,
                    v_w: b("self_attn.v_proj.weight")?,
                    qkv_b,
                    o_w: b("self_attn.o_proj.weight")?,
                    post_norm: b("post_attention_layernorm.weight")?,
                    gate_w: b("mlp.gate_proj.weight")?,
                    up_w: b("mlp.up_proj.weight")?,
                    down_w: b("mlp.down_proj.weight")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LmWeights {
            embed,
            blocks,
            norm: t("model.norm.weight")?,
            head,
        })
    }

    /// RoPE tables `[t, head_dim / 2]` (cos, sin) for positions `offset..offset + t`, computed
    /// in f32 exactly as Hugging Face / candle-transformers do.
    fn rope_tables(&self, offset: usize, t: usize) -> Result<(Tensor, Tensor)> {
        let hd = self.cfg.head_dim();
        let theta = self.cfg.rope_theta as f32;
        let inv: Vec<f32> = (0..hd)
            .step_by(2)
            .map(|i| 1f32 / theta.powf(i as f32 / hd as f32))
            .collect();
        let angles: Vec<f32> = (offset..offset + t)
            .flat_map(|p| inv.iter().map(move |f| p as f32 * f))
            .collect();
        let a = Tensor::from_vec(angles, (t, hd / 2), &self.device)?;
        Ok((a.cos()?, a.sin()?))
    }

    /// Final-norm hidden states `[B, T, d]` for `tokens` after the cached positions.
    pub(crate) fn hidden(
        &self,
        w: &LmWeights,
        tokens: &Tensor,
        cache: Option<&mut LmCache>,
    ) -> Result<Tensor> {
        let (b, t) = self.check_input(tokens, cache.as_deref())?;
        let x = w.embed.index_select(&tokens.flatten_all()?, 0)?;
        self.blocks_from(w, x, 0, (b, t), cache)
    }

    /// Checks a `[B, T]` u32 batch against the vocabulary, the positions and `cache`;
    /// returns `(B, T)`.
    pub(super) fn check_input(
        &self,
        tokens: &Tensor,
        cache: Option<&LmCache>,
    ) -> Result<(usize, usize)> {
        let offset = cache.map_or(0, |c| c.len);
        let (b, t) = check_tokens(
            tokens,
            offset,
            (self.cfg.max_position_embeddings, "max_position_embeddings"),
            self.cfg.vocab_size,
        )?;
        if let Some(c) = cache {
            if c.layers.len() != self.cfg.num_hidden_layers {
                return Err(PolicyError::Input(
                    "cache was made for a model with a different number of layers".to_string(),
                ));
            }
            if c.batch.is_some_and(|cb| cb != b) {
                return Err(PolicyError::Input(format!(
                    "cache holds {} rows but {b} were given",
                    c.batch.unwrap_or(0)
                )));
            }
        }
        Ok((b, t))
    }

    /// Final-norm hidden states `[B, T, d]` from `x` `[B * T, d]`, the residual stream
    /// entering block `first`, after the cached positions (blocks below `first` are not run
    /// and their cache layers stay empty).
    pub(super) fn blocks_from(
        &self,
        w: &LmWeights,
        mut x: Tensor,
        first: usize,
        (b, t): (usize, usize),
        mut cache: Option<&mut LmCache>,
    ) -> Result<Tensor> {
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let n = b * t;
        let eps = self.cfg.rms_norm_eps;
        let ones = Tensor::ones((n, 1), self.dtype, &self.device)?;
        let (cos, sin) = self.rope_tables(offset, t)?;
        let (cos, sin) = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);
        let mask = causal_mask(t, offset, &self.device)?;
        for (i, blk) in w.blocks.iter().enumerate().skip(first) {
            let h = rms_norm(&x, &blk.in_norm, eps, &ones)?;
            let layer_cache = cache.as_mut().map(|c| &mut c.layers[i]);
            let att = self.attention(
                blk,
                &h,
                (b, t),
                &ones,
                (&cos, &sin),
                mask.as_ref(),
                layer_cache,
            )?;
            x = (x + att)?;
            let h = rms_norm(&x, &blk.post_norm, eps, &ones)?;
            let gate = h.matmul(&blk.gate_w.t()?)?.silu()?;
            let up = h.matmul(&blk.up_w.t()?)?;
            x = (x + (gate * up)?.matmul(&blk.down_w.t()?)?)?;
        }
        if let Some(c) = cache {
            c.len += t;
            c.batch = Some(b);
        }
        Ok(rms_norm(&x, &w.norm, eps, &ones)?.reshape((b, t, self.cfg.hidden_size))?)
    }

    /// Grouped-query causal self-attention of `x` `[B*T, d]` (output projection applied),
    /// extending `cache` when given.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        blk: &BlockW,
        x: &Tensor,
        (b, t): (usize, usize),
        ones: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (nh, nkv, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.kv_heads(),
            self.cfg.head_dim(),
        );
        let rep = nh / nkv;
        let proj = |w: &Tensor, bias: Option<&Tensor>, heads: usize| -> Result<Tensor> {
            let mut y = x.matmul(&w.t()?)?;
            if let Some(bias) = bias {
                y = (y + ones.matmul(&bias.unsqueeze(0)?)?)?;
            }
            Ok(y.reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let bias = blk.qkv_b.as_ref();
        let q = proj(&blk.q_w, bias.map(|b| &b.0), nh)?;
        let k = proj(&blk.k_w, bias.map(|b| &b.1), nkv)?;
        let mut v = proj(&blk.v_w, bias.map(|b| &b.2), nkv)?;
        let q = candle_nn::rotary_emb::rope_slow(&q, cos, sin)?;
        let mut k = candle_nn::rotary_emb::rope_slow(&k, cos, sin)?;
        if let Some(slot) = cache {
            if let Some((k0, v0)) = slot.as_ref() {
                k = Tensor::cat(&[k0, &k], 2)?;
                v = Tensor::cat(&[v0, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let s = k.dim(2)?;
        // Query head h uses key/value head h / rep: fold the `rep` query heads of each group
        // into the time axis so keys and values are shared without copies.
        let q = q.reshape((b, nkv, rep * t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        // Scores, mask and softmax in f32 (a no-op cast in f32).
        let mut att = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
        if let Some(mask) = mask {
            att = att
                .reshape((b, nkv, rep, t, s))?
                .broadcast_add(mask)?
                .reshape((b, nkv, rep * t, s))?;
        }
        let y = softmax_last(&att)?
            .to_dtype(self.dtype)?
            .matmul(&v)?
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, nh * hd))?;
        Ok(y.matmul(&blk.o_w.t()?)?)
    }

    /// Next-token logits `[B, T, V]` for a `[B, T]` u32 batch (differentiable in the
    /// trainable parameters).
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let w = self.weights(false)?;
        let h = self.hidden(&w, tokens, None)?;
        head(&h, &w.head)
    }

    /// Logits `[B, T, V]` of `tokens` placed after the cached positions, from detached weights
    /// (no graph); extends `cache`.
    pub fn forward_cached(&self, cache: &mut LmCache, tokens: &Tensor) -> Result<Tensor> {
        let w = self.weights(true)?;
        let h = self.hidden(&w, tokens, Some(cache))?;
        head(&h, &w.head)
    }

    /// Logits `[B, V]` of the last of `tokens` after the cached positions (detached weights
    /// `w`); extends `cache`.
    pub(crate) fn last_logits(
        &self,
        w: &LmWeights,
        cache: &mut LmCache,
        tokens: &Tensor,
    ) -> Result<Tensor> {
        let h = self.hidden(w, tokens, Some(cache))?;
        let t = h.dim(1)?;
        let last = h.narrow(1, t - 1, 1)?.contiguous()?;
        Ok(head(&last, &w.head)?.squeeze(1)?)
    }
}
