//! Differentiable building blocks of the LM forward pass (each has a candle backward).

use candle_core::{DType, Tensor};

pub(crate) use crate::ops::{causal_mask, log_softmax_last, softmax_last};

use crate::error::Result;

/// `h` `[B, T, d]` times the `[V, d]` head, transposed: `[B, T, V]` logits, always f32 (cast
/// after the matmul when the model computes in bf16/f16).
pub(crate) fn head(h: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = h.dims3()?;
    let v = w.dim(0)?;
    Ok(h.reshape((b * t, d))?
        .matmul(&w.t()?)?
        .reshape((b, t, v))?
        .to_dtype(DType::F32)?)
}

/// RMSNorm of `x` `[N, d]` with gain `g` `[d]` from differentiable ops. The gain is repeated
/// over rows with a matmul against `ones` `[N, 1]` (candle's broadcast backward is slow).
///
/// In bf16/f16 the mean square is taken in f32 and the normalised rows are cast back; in f32
/// the casts are no-ops.
pub(crate) fn rms_norm(x: &Tensor, g: &Tensor, eps: f64, ones: &Tensor) -> Result<Tensor> {
    let d = x.dim(1)? as f64;
    let x32 = x.to_dtype(DType::F32)?;
    let ms = (x32.sqr()?.sum_keepdim(1)? / d)?;
    let xn = x32
        .broadcast_div(&(ms + eps)?.sqrt()?)?
        .to_dtype(x.dtype())?;
    Ok((xn * ones.matmul(&g.unsqueeze(0)?)?)?)
}
