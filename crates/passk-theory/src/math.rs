//! Small vector helpers and local stand-ins for passk-core functions.

/// Dot product of two equal-length slices.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Euclidean norm.
pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `y += alpha * x`.
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Cosine of the angle between `a` and `b`; `None` when either has (numerically) zero norm.
pub(crate) fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    let (na, nb) = (norm(a), norm(b));
    if na <= f64::MIN_POSITIVE || nb <= f64::MIN_POSITIVE || !(na * nb).is_finite() {
        return None;
    }
    Some((dot(a, b) / (na * nb)).clamp(-1.0, 1.0))
}

/// pass@k weight `w_k = k (1-p)^(k-1)` written in terms of the failure probability `q = 1 - p`
/// (computing `q` directly avoids the cancellation in `1 - p` when `p` is close to 1).
pub(crate) fn w_k_of_q(q: f64, k: u32) -> f64 {
    f64::from(k) * q.powi(k as i32 - 1)
}

/// pass@k of a prompt, `1 - q^k`, written in terms of the failure probability `q = 1 - p`.
pub(crate) fn pass_at_k_of_q(q: f64, k: u32) -> f64 {
    1.0 - q.powi(k as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_their_definitions() {
        let p: f64 = 0.3;
        assert!((w_k_of_q(1.0 - p, 1) - 1.0).abs() < 1e-15);
        assert!((w_k_of_q(1.0 - p, 4) - 4.0 * 0.7f64.powi(3)).abs() < 1e-15);
        assert!((pass_at_k_of_q(1.0 - p, 3) - (1.0 - 0.7f64.powi(3))).abs() < 1e-15);
        assert_eq!(w_k_of_q(0.0, 1), 1.0);
        assert_eq!(w_k_of_q(0.0, 2), 0.0);
    }

    #[test]
    fn weights_agree_with_passk_core() {
        for p in [0.0, 1e-9, 0.05, 0.3, 0.5, 0.88, 0.999, 1.0] {
            for k in [1, 2, 3, 8, 16, 64] {
                let (a, b) = (w_k_of_q(1.0 - p, k), passk_core::estimators::w_k(p, k));
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "w_k({p},{k})");
                let (a, b) = (
                    pass_at_k_of_q(1.0 - p, k),
                    passk_core::estimators::pass_at_k_of_p(p, k),
                );
                assert!((a - b).abs() <= 1e-12, "pass@k({p},{k})");
            }
        }
    }

    #[test]
    fn cosine_handles_zero_and_parallel_vectors() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]).unwrap() - 1.0).abs() < 1e-15);
        assert!((cosine(&[1.0, 0.0], &[-3.0, 0.0]).unwrap() + 1.0).abs() < 1e-15);
        let mut y = vec![1.0, 2.0];
        axpy(2.0, &[1.0, -1.0], &mut y);
        assert_eq!(y, vec![3.0, 0.0]);
    }
}
