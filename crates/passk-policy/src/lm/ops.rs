//! Differentiable building blocks of the LM forward pass (each has a candle backward).

use candle_core::{Device, Tensor, D};

use crate::error::Result;

/// `h` `[B, T, d]` times the `[V, d]` head, transposed: `[B, T, V]`.
pub(crate) fn head(h: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = h.dims3()?;
    let v = w.dim(0)?;
    Ok(h.reshape((b * t, d))?.matmul(&w.t()?)?.reshape((b, t, v))?)
}

/// RMSNorm of `x` `[N, d]` with gain `g` `[d]` from differentiable ops. The gain is repeated
/// over rows with a matmul against `ones` `[N, 1]` (candle's broadcast backward is slow).
pub(crate) fn rms_norm(x: &Tensor, g: &Tensor, eps: f64, ones: &Tensor) -> Result<Tensor> {
    let d = x.dim(1)? as f64;
    let ms = (x.sqr()?.sum_keepdim(1)? / d)?;
    let xn = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    Ok((xn * ones.matmul(&g.unsqueeze(0)?)?)?)
}

/// Additive causal mask `[T, offset + T]`, or `None` for a single new position.
pub(crate) fn causal_mask(t: usize, offset: usize, device: &Device) -> Result<Option<Tensor>> {
    if t == 1 {
        return Ok(None);
    }
    let s = offset + t;
    let data: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..s).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Some(Tensor::from_vec(data, (t, s), device)?))
}

/// Softmax over the last dimension from differentiable primitives (the max is a constant).
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&s)?)
}

/// Log-softmax over the last dimension from differentiable primitives.
pub(crate) fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let z = x.broadcast_sub(&max)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(z.broadcast_sub(&lse)?)
}
