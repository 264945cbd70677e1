//! Fused CPU kernels with hand-written backward passes for the training forward pass.
//!
//! Built from generic candle ops, layer norm, the bias + GELU, attention and the token
//! log-probability each take 5-15 ops, every one allocating a full activation tensor in the
//! forward and several more in the backward (plus page faults for the fresh memory). These
//! custom ops do each in one pass over contiguous f32 data. Work is split over candle's thread
//! pool only along independent items (rows, or (sequence, head) pairs) and every reduction
//! across rows runs over fixed 64-row blocks summed in block order, so results are
//! bit-identical for any thread count. CPU only; other devices use the generic ops.
//!
//! Slightly over 600 lines on purpose: the five kernels share the storage helpers at the
//! bottom and read best side by side; the tests live in `fused_tests.rs`.

use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor};

use crate::erf::erf_slice;
use crate::model::LN_EPS;

/// Rows per block of a cross-row reduction (fixed, so sums do not depend on the thread count).
const BLOCK: usize = 64;

pub(crate) fn op_err(msg: impl Into<String>) -> candle_core::Error {
    candle_core::Error::Msg(msg.into())
}

/// The contiguous f32 slice of a CPU storage region.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| op_err("fused op input must be contiguous"))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

/// Runs `f` on the contiguous f32 data of `t` (made contiguous first if needed).
pub(crate) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(slice(s, layout)?)),
        _ => Err(op_err("fused ops run on the CPU only")),
    }
}

/// A raw pointer that worker threads write through, each to disjoint indices.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every user writes only the indices of the items it was handed, which are disjoint.
unsafe impl Sync for Out {}
unsafe impl Send for Out {}

impl Out {
    /// The mutable sub-slice `[start, start + len)`.
    ///
    /// # Safety
    /// The range must be in bounds and not touched by any other thread meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Calls `f` on disjoint ranges covering `0..n` on candle's CPU thread pool.
fn par_for(n: usize, f: impl Fn(Range<usize>) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n, f);
}

/// Column sums of per-block partials: `parts` holds `n_blocks` rows of `width`, summed in
/// block order.
fn sum_blocks(parts: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0f32; width];
    for p in parts.chunks(width) {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

fn tensor(data: Vec<f32>, shape: impl Into<Shape>, like: &Tensor) -> candle_core::Result<Tensor> {
    Tensor::from_vec(data, shape, like.device())
}

/// Mean and reciprocal standard deviation of a row.
fn moments(x: &[f32]) -> (f32, f32) {
    let d = x.len() as f32;
    let mean = x.iter().sum::<f32>() / d;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + LN_EPS).sqrt())
}

/// Layer norm over the last dimension: `(x, gain, bias) -> y`, `x` `[N, d]`.
pub(crate) struct LayerNorm;

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "passk-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let d = g.len();
        let n = x.len() / d;
        let mut y = vec![0f32; x.len()];
        let out = Out(y.as_mut_ptr());
        par_for(n, |rows| {
            for r in rows {
                let xr = &x[r * d..(r + 1) * d];
                let (mean, rstd) = moments(xr);
                // SAFETY: row r belongs to this range only.
                let yr = unsafe { out.part(r * d, d) };
                for j in 0..d {
                    yr[j] = (xr[j] - mean) * rstd * g[j] + b[j];
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = g.elem_count();
        let gain = g.flatten_all()?.to_vec1::<f32>()?;
        let (dx, dg, db) = with_data(x, |x| {
            with_data(dy, |dy| {
                let n = x.len() / d;
                let nb = n.div_ceil(BLOCK);
                let mut dx = vec![0f32; x.len()];
                let mut parts = vec![0f32; nb * 2 * d];
                let (out, part) = (Out(dx.as_mut_ptr()), Out(parts.as_mut_ptr()));
                par_for(nb, |blocks| {
                    let mut dxhat = vec![0f32; d];
                    for blk in blocks {
                        // SAFETY: block blk's partials and rows belong to this range only.
                        let p = unsafe { part.part(blk * 2 * d, 2 * d) };
                        let (pg, pb) = p.split_at_mut(d);
                        for r in blk * BLOCK..n.min((blk + 1) * BLOCK) {
                            let xr = &x[r * d..(r + 1) * d];
                            let gr = &dy[r * d..(r + 1) * d];
                            let (mean, rstd) = moments(xr);
                            let (mut m1, mut m2) = (0f32, 0f32);
                            for j in 0..d {
                                let xh = (xr[j] - mean) * rstd;
                                dxhat[j] = gr[j] * gain[j];
                                m1 += dxhat[j];
                                m2 += dxhat[j] * xh;
                                pg[j] += gr[j] * xh;
                                pb[j] += gr[j];
                            }
                            let (m1, m2) = (m1 / d as f32, m2 / d as f32);
                            let dr = unsafe { out.part(r * d, d) };
                            for j in 0..d {
                                let xh = (xr[j] - mean) * rstd;
                                dr[j] = rstd * (dxhat[j] - m1 - xh * m2);
                            }
                        }
                    }
                });
                let sums = sum_blocks(&parts, 2 * d);
                (dx, sums[..d].to_vec(), sums[d..].to_vec())
            })
        })??;
        Ok((
            Some(tensor(dx, x.shape(), x)?),
            Some(tensor(dg, d, x)?),
            Some(tensor(db, d, x)?),
        ))
    }
}

/// `1/sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// The exact (erf) GELU and its derivative at `z`.
fn gelu_and_grad(z: f32) -> (f32, f32) {
    let cdf = 0.5 * (1.0 + candle_core::cpu::erf::erf_f32(z * std::f32::consts::FRAC_1_SQRT_2));
    (z * cdf, cdf + z * INV_SQRT_2PI * (-0.5 * z * z).exp())
}

/// Column sums of `g` `[N, k]` over fixed row blocks (thread-count invariant).
fn column_sums(g: &[f32], k: usize) -> Vec<f32> {
    let n = g.len() / k;
    let nb = n.div_ceil(BLOCK);
    let mut parts = vec![0f32; nb * k];
    let part = Out(parts.as_mut_ptr());
    par_for(nb, |blocks| {
        for blk in blocks {
            // SAFETY: block blk's partials belong to this range only.
            let p = unsafe { part.part(blk * k, k) };
            for r in blk * BLOCK..n.min((blk + 1) * BLOCK) {
                for (o, v) in p.iter_mut().zip(&g[r * k..(r + 1) * k]) {
                    *o += v;
                }
            }
        }
    });
    sum_blocks(&parts, k)
}

/// `y + b` for `y` `[N, k]` and a row bias `b` `[k]`, plus `r` `[N, k]` when given (a fused
/// residual connection).
pub(crate) struct BiasAdd;

impl BiasAdd {
    fn run(y: &[f32], b: &[f32], r: Option<&[f32]>) -> Vec<f32> {
        let k = b.len();
        let mut z = vec![0f32; y.len()];
        let out = Out(z.as_mut_ptr());
        par_for(y.len() / k, |rows| {
            for i in rows {
                // SAFETY: row i belongs to this range only.
                let zr = unsafe { out.part(i * k, k) };
                let yr = &y[i * k..(i + 1) * k];
                match r {
                    Some(r) => {
                        let rr = &r[i * k..(i + 1) * k];
                        for j in 0..k {
                            zr[j] = yr[j] + b[j] + rr[j];
                        }
                    }
                    None => {
                        for j in 0..k {
                            zr[j] = yr[j] + b[j];
                        }
                    }
                }
            }
        });
        z
    }
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "passk-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let z = Self::run(slice(s1, l1)?, slice(s2, l2)?, None);
        Ok((CpuStorage::F32(z), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dz: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let k = b.elem_count();
        let db = with_data(dz, |g| column_sums(g, k))?;
        Ok((Some(dz.clone()), Some(tensor(db, k, y)?)))
    }
}

impl CustomOp3 for BiasAdd {
    fn name(&self) -> &'static str {
        "passk-bias-residual-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let r = slice(s3, l3)?;
        let z = Self::run(slice(s1, l1)?, slice(s2, l2)?, Some(r));
        Ok((CpuStorage::F32(z), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        b: &Tensor,
        _r: &Tensor,
        _res: &Tensor,
        dz: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let k = b.elem_count();
        let db = with_data(dz, |g| column_sums(g, k))?;
        Ok((Some(dz.clone()), Some(tensor(db, k, y)?), Some(dz.clone())))
    }
}

/// `gelu_erf(y + b)` (the exact GELU) for `y` `[N, k]` and a row bias `b` `[k]`. When built
/// with [`BiasGelu::for_training`] the forward pass keeps the derivative for the backward.
pub(crate) struct BiasGelu {
    grad: Option<std::sync::Mutex<Vec<f32>>>,
}

impl BiasGelu {
    /// An op that keeps the derivative (`training`) or not (inference).
    pub(crate) fn new(training: bool) -> Self {
        Self {
            grad: training.then(|| std::sync::Mutex::new(Vec::new())),
        }
    }
}

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "passk-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, b) = (slice(s1, l1)?, slice(s2, l2)?);
        let k = b.len();
        let keep = self.grad.is_some();
        let mut z = vec![0f32; y.len()];
        let mut dz = if keep {
            vec![0f32; y.len()]
        } else {
            Vec::new()
        };
        let (out, dout) = (Out(z.as_mut_ptr()), Out(dz.as_mut_ptr()));
        par_for(y.len() / k, |rows| {
            // The maths of `gelu_and_grad`, a row at a time so that the erf vectorises.
            let (mut pre, mut erf) = (vec![0f32; k], vec![0f32; k]);
            for i in rows {
                // SAFETY: row i belongs to this range only.
                let zr = unsafe { out.part(i * k, k) };
                let yr = &y[i * k..(i + 1) * k];
                for ((p, &v), &c) in pre.iter_mut().zip(yr).zip(b) {
                    *p = (v + c) * std::f32::consts::FRAC_1_SQRT_2;
                }
                erf_slice(&pre, &mut erf);
                for j in 0..k {
                    let x = yr[j] + b[j];
                    let cdf = 0.5 * (1.0 + erf[j]);
                    zr[j] = x * cdf;
                }
                if keep {
                    let dr = unsafe { dout.part(i * k, k) };
                    for j in 0..k {
                        let x = yr[j] + b[j];
                        let cdf = 0.5 * (1.0 + erf[j]);
                        dr[j] = cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp();
                    }
                }
            }
        });
        if let Some(slot) = &self.grad {
            *slot.lock().map_err(|_| op_err("poisoned GELU cache"))? = dz;
        }
        Ok((CpuStorage::F32(z), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dz: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let k = b.elem_count();
        let mut slope = match &self.grad {
            Some(slot) => std::mem::take(&mut *slot.lock().map_err(|_| op_err("poisoned"))?),
            None => Vec::new(),
        };
        if slope.len() != y.elem_count() {
            // Not kept by the forward pass: recompute.
            let bias = b.flatten_all()?.to_vec1::<f32>()?;
            slope = with_data(y, |y| {
                y.iter()
                    .enumerate()
                    .map(|(i, v)| gelu_and_grad(v + bias[i % k]).1)
                    .collect()
            })?;
        }
        with_data(dz, |g| {
            let out = Out(slope.as_mut_ptr());
            par_for(g.len() / k, |rows| {
                // SAFETY: rows of this range only.
                let d = unsafe { out.part(rows.start * k, rows.len() * k) };
                for (o, v) in d.iter_mut().zip(&g[rows.start * k..rows.end * k]) {
                    *o *= v;
                }
            });
        })?;
        let db = column_sums(&slope, k);
        Ok((Some(tensor(slope, y.shape(), y)?), Some(tensor(db, k, y)?)))
    }
}

/// `out[j] = q · key(j)` for every `j < out.len()`, each summed over `d = 0, 1, …` starting
/// from -0.0 exactly as `Iterator::sum` does, but eight keys at a time: the additions of
/// different keys overlap in the pipeline instead of waiting on one another.
fn dots<'a>(q: &[f32], key: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    const LANES: usize = 8;
    let n = out.len();
    let mut j = 0;
    while j + LANES <= n {
        let keys: [&[f32]; LANES] = std::array::from_fn(|u| &key(j + u)[..q.len()]);
        let mut acc = [-0.0f32; LANES];
        for (d, &qd) in q.iter().enumerate() {
            for (a, k) in acc.iter_mut().zip(&keys) {
                *a += qd * k[d];
            }
        }
        out[j..j + LANES].copy_from_slice(&acc);
        j += LANES;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        *o = q.iter().zip(key(jj)).map(|(a, c)| a * c).sum::<f32>();
    }
}

/// Causal multi-head self-attention core on the packed projections: `qkv` `[B*T, 3d]`
/// (queries, keys, values, heads side by side) to `y` `[B*T, d]` (heads side by side), with
/// softmax scale `1/sqrt(head_dim)`. No KV cache: every sequence starts at position 0.
pub(crate) struct Attention {
    pub(crate) batch: usize,
    pub(crate) time: usize,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
}

impl Attention {
    fn d(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Softmax probabilities of query `i` of item `(b, h)` over keys `0..=i`, into `p`.
    fn probs(&self, qkv: &[f32], b: usize, h: usize, i: usize, p: &mut [f32]) {
        let (d, hd, t) = (self.d(), self.head_dim, self.time);
        let scale = 1.0 / (hd as f32).sqrt();
        let row = |r: usize, part: usize| {
            let s = (b * t + r) * 3 * d + part * d + h * hd;
            &qkv[s..s + hd]
        };
        let q = row(i, 0);
        dots(q, |j| row(j, 1), &mut p[..=i]);
        let mut max = f32::NEG_INFINITY;
        for pj in &mut p[..=i] {
            *pj *= scale;
            max = max.max(*pj);
        }
        let mut sum = 0f32;
        for pj in &mut p[..=i] {
            *pj = (*pj - max).exp();
            sum += *pj;
        }
        for pj in &mut p[..=i] {
            *pj /= sum;
        }
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "passk-causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = slice(s, l)?;
        let (d, hd, t) = (self.d(), self.head_dim, self.time);
        if qkv.len() != self.batch * t * 3 * d {
            return Err(op_err("attention input has the wrong size"));
        }
        let mut y = vec![0f32; self.batch * t * d];
        let out = Out(y.as_mut_ptr());
        par_for(self.batch * self.heads, |items| {
            let mut p = vec![0f32; t];
            for item in items {
                let (b, h) = (item / self.heads, item % self.heads);
                for i in 0..t {
                    self.probs(qkv, b, h, i, &mut p);
                    // SAFETY: head h of row (b, i) belongs to item (b, h) only.
                    let yi = unsafe { out.part((b * t + i) * d + h * hd, hd) };
                    for (j, pj) in p.iter().enumerate().take(i + 1) {
                        let s = (b * t + j) * 3 * d + 2 * d + h * hd;
                        for (o, v) in yi.iter_mut().zip(&qkv[s..s + hd]) {
                            *o += pj * v;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((self.batch * t, d))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (d, hd, t) = (self.d(), self.head_dim, self.time);
        let scale = 1.0 / (hd as f32).sqrt();
        let dqkv = with_data(arg, |qkv| {
            with_data(dy, |dy| {
                let mut dqkv = vec![0f32; qkv.len()];
                let out = Out(dqkv.as_mut_ptr());
                par_for(self.batch * self.heads, |items| {
                    let mut p = vec![0f32; t];
                    let mut dp = vec![0f32; t];
                    for item in items {
                        let (b, h) = (item / self.heads, item % self.heads);
                        let at = |r: usize, part: usize| (b * t + r) * 3 * d + part * d + h * hd;
                        for i in 0..t {
                            self.probs(qkv, b, h, i, &mut p);
                            let gy = &dy[(b * t + i) * d + h * hd..][..hd];
                            dots(gy, |j| &qkv[at(j, 2)..][..hd], &mut dp[..=i]);
                            let mut dot = 0f32;
                            for j in 0..=i {
                                dot += p[j] * dp[j];
                                // SAFETY: head h of rows of sequence b belong to item (b, h).
                                let dv = unsafe { out.part(at(j, 2), hd) };
                                for (o, g) in dv.iter_mut().zip(gy) {
                                    *o += p[j] * g;
                                }
                            }
                            let q = &qkv[at(i, 0)..][..hd];
                            for j in 0..=i {
                                let ds = p[j] * (dp[j] - dot) * scale;
                                let k = &qkv[at(j, 1)..][..hd];
                                let dq = unsafe { out.part(at(i, 0), hd) };
                                for (o, c) in dq.iter_mut().zip(k) {
                                    *o += ds * c;
                                }
                                let dk = unsafe { out.part(at(j, 1), hd) };
                                for (o, c) in dk.iter_mut().zip(q) {
                                    *o += ds * c;
                                }
                            }
                        }
                    }
                });
                dqkv
            })
        })??;
        Ok(Some(tensor(dqkv, arg.shape(), arg)?))
    }
}

/// `log softmax(logits)[target]` per row: `logits` `[M, V]` to `[M]`.
pub(crate) struct PickLogProb(pub(crate) Vec<u32>);

fn log_softmax_row(x: &[f32], out: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = x.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
    for (o, v) in out.iter_mut().zip(x) {
        *o = v - max - lse;
    }
}

impl CustomOp1 for PickLogProb {
    fn name(&self) -> &'static str {
        "passk-pick-log-prob"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let m = self.0.len();
        if m == 0 || x.len() % m != 0 {
            return Err(op_err("logits do not match the targets"));
        }
        let v = x.len() / m;
        let mut row = vec![0f32; v];
        let mut out = Vec::with_capacity(m);
        for (r, &tgt) in self.0.iter().enumerate() {
            log_softmax_row(&x[r * v..(r + 1) * v], &mut row);
            out.push(row[tgt as usize]);
        }
        Ok((CpuStorage::F32(out), Shape::from(m)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = g.to_vec1::<f32>()?;
        let dx = with_data(arg, |x| {
            let v = x.len() / self.0.len();
            let mut dx = vec![0f32; x.len()];
            for (r, &tgt) in self.0.iter().enumerate() {
                let dr = &mut dx[r * v..(r + 1) * v];
                log_softmax_row(&x[r * v..(r + 1) * v], dr);
                for o in dr.iter_mut() {
                    *o = -g[r] * o.exp();
                }
                dr[tgt as usize] += g[r];
            }
            dx
        })?;
        Ok(Some(tensor(dx, arg.shape(), arg)?))
    }
}

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;
