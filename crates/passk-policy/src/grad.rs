//! Gradient utilities: global-norm clipping in a deterministic order.

use candle_core::backprop::GradStore;
use candle_core::Var;

use crate::error::Result;

/// Global L2 norm of the gradients of `params` (missing gradients count as zero), summed in
/// the order given (use [`crate::Gpt::params`], which is sorted by name).
pub fn grad_norm(grads: &GradStore, params: &[(String, Var)]) -> Result<f64> {
    let mut total = 0.0f64;
    for (_, var) in params {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g
                .sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    Ok(total.sqrt())
}

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`, and
/// returns the norm before clipping. Gradients are left alone when the norm is within bounds
/// or not finite (the caller should then skip the step).
pub fn clip_grad_norm(
    grads: &mut GradStore,
    params: &[(String, Var)],
    max_norm: f64,
) -> Result<f64> {
    let norm = grad_norm(grads, params)?;
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, var) in params {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = (g * scale)?;
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn clips_to_the_requested_norm() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[3.0f32], &dev).unwrap()).unwrap();
        // loss = 3 a0 + 4 a1 + 12 b0 -> gradient (3, 4, 12), norm 13.
        let w = Tensor::new(&[3.0f32, 4.0], &dev).unwrap();
        let loss = ((a.as_tensor() * &w).unwrap().sum_all().unwrap()
            + (b.as_tensor() * 12.0).unwrap().sum_all().unwrap())
        .unwrap();
        let mut grads = loss.backward().unwrap();
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let before = clip_grad_norm(&mut grads, &params, 1.0).unwrap();
        assert!((before - 13.0).abs() < 1e-9, "{before}");
        let after = grad_norm(&grads, &params).unwrap();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        let ga = grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert!((ga[0] / ga[1] - 0.75).abs() < 1e-6);
        // Within bounds: unchanged.
        let again = clip_grad_norm(&mut grads, &params, 5.0).unwrap();
        assert!((again - 1.0).abs() < 1e-5);
        assert!((grad_norm(&grads, &params).unwrap() - 1.0).abs() < 1e-5);
    }
}
