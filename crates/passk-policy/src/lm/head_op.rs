//! The output head and the pick of each target's log-probability, as one CPU op.
//!
//! Through candle ops the head cost a training step twice what it must: candle's matmul
//! backward computes the gradient of both operands, and the head's weight is usually the
//! frozen tied embedding, so a `[V, d]` product as large as the forward pass was computed and
//! dropped. This op multiplies with the packed kernel of the sampling engine, keeps the
//! softmax of its forward pass for the backward one, and computes the weight's gradient only
//! when the weight trains.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::packed::Matrix;
use crate::fused::{op_err, slice, with_data};

/// `log softmax(h · wᵀ)[target]` per row: `h` `[M, d]`, `w` `[V, d]`, to `[M]` (f32, CPU).
pub(crate) struct HeadLogProb {
    targets: Vec<u32>,
    /// Whether the backward pass returns the gradient of `w`.
    weight_grad: bool,
    /// The forward pass's softmax `[M, V]`, taken by the backward pass.
    probs: Mutex<Option<Vec<f32>>>,
}

impl HeadLogProb {
    /// The op for rows predicting `targets`; `weight_grad` when the head's weight trains.
    pub(crate) fn new(targets: Vec<u32>, weight_grad: bool) -> Self {
        Self {
            targets,
            weight_grad,
            probs: Mutex::new(None),
        }
    }
}

/// `out[m, n] = a[m, k] · b[k, n]` by `gemm`, each operand given by its row and column
/// strides (so transposes cost no copy).
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    (m, n, k): (usize, usize, usize),
    out: &mut [f32],
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(m > 0 && n > 0 && k > 0);
    assert!(out.len() >= m * n && a.len() > last(a_rs, a_cs, m, k));
    assert!(b.len() > last(b_rs, b_cs, k, n));
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound the last element gemm reads of each operand and the
    // m×n row-major destination it writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

impl CustomOp2 for HeadLogProb {
    fn name(&self) -> &'static str {
        "passk-head-log-prob"
    }

    fn cpu_fwd(
        &self,
        hs: &CpuStorage,
        hl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (h, w) = (slice(hs, hl)?, slice(ws, wl)?);
        let (m, d) = hl.shape().dims2()?;
        let (v, wd) = wl.shape().dims2()?;
        if wd != d || m != self.targets.len() || self.targets.iter().any(|&t| t as usize >= v) {
            return Err(op_err("head: rows, width or targets do not match"));
        }
        let mut probs = vec![0f32; m * v];
        Matrix::new(w.to_vec(), v, d).matmul_t(h, m, &mut probs, false);
        let mut out = vec![0f32; m];
        probs
            .par_chunks_mut(v)
            .zip(out.par_iter_mut())
            .zip(self.targets.par_iter())
            .for_each(|((row, o), &t)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let picked = row[t as usize] - max;
                let mut sum = 0f32;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                *o = picked - sum.ln();
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|x| *x *= inv);
            });
        *self.probs.lock().map_err(|_| op_err("head: poisoned"))? = Some(probs);
        Ok((CpuStorage::F32(out), Shape::from(m)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let mut dl = self
            .probs
            .lock()
            .map_err(|_| op_err("head: poisoned"))?
            .take()
            .ok_or_else(|| op_err("head: backward ran twice or before the forward pass"))?;
        let (m, d) = h.dims2()?;
        let v = w.dim(0)?;
        let g = g.to_vec1::<f32>()?;
        // d log p[t] / d logits = onehot(t) − softmax, times the incoming gradient.
        dl.par_chunks_mut(v)
            .zip(g.par_iter())
            .zip(self.targets.par_iter())
            .for_each(|((row, &g), &t)| {
                row.iter_mut().for_each(|p| *p *= -g);
                row[t as usize] += g;
            });
        let dh = with_data(w, |w| {
            let mut dh = vec![0f32; m * d];
            gemm_into((m, d, v), &mut dh, &dl, (v, 1), w, (d, 1));
            dh
        })?;
        let dh = Tensor::from_vec(dh, (m, d), h.device())?;
        let dw = if self.weight_grad {
            let dw = with_data(h, |h| {
                let mut dw = vec![0f32; v * d];
                gemm_into((v, d, m), &mut dw, &dl, (1, v), h, (d, 1));
                dw
            })?;
            Some(Tensor::from_vec(dw, (v, d), w.device())?)
        } else {
            None
        };
        Ok((Some(dh), dw))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::lm::ops::log_softmax_last;
    use crate::lm::tests::max_abs_diff;

    #[test]
    fn values_and_gradients_match_the_candle_ops() {
        let (m, d, v) = (37, 24, 301);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut rand =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let dev = Device::Cpu;
        let h = Var::from_vec(rand(m * d), (m, d), &dev).unwrap();
        let w = Var::from_vec(rand(v * d), (v, d), &dev).unwrap();
        let scale = Tensor::from_vec(rand(m), m, &dev).unwrap();
        let targets: Vec<u32> = (0..m).map(|i| (i * 53 % v) as u32).collect();
        let tgt = Tensor::new(targets.as_slice(), &dev).unwrap();
        let logits = h.matmul(&w.t().unwrap()).unwrap();
        let want = log_softmax_last(&logits)
            .unwrap()
            .gather(&tgt.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        let gw = (&want * &scale)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for weight_grad in [true, false] {
            let op = HeadLogProb::new(targets.clone(), weight_grad);
            let got = h.apply_op2(&w, op).unwrap();
            assert!(max_abs_diff(&got, &want) < 1e-5, "values");
            let gg = (&got * &scale)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let dh = max_abs_diff(gg.get(&h).unwrap(), gw.get(&h).unwrap());
            assert!(dh < 1e-5, "dh {dh}");
            match gg.get(&w) {
                Some(dw) => {
                    assert!(weight_grad, "a weight gradient that was not asked for");
                    let err = max_abs_diff(dw, gw.get(&w).unwrap());
                    assert!(err < 1e-5, "dw {err}");
                }
                None => assert!(!weight_grad, "no weight gradient"),
            }
        }
    }
}
