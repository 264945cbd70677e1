//! Interference statistics from per-prompt gradients: the kernel `κ(x, x') = ⟨∇p(x), ∇p(x')⟩`
//! as a Gram matrix, agreement scores `a(x) = Σ_x' m(x') κ(x, x')`, and for each k the inner
//! product `⟨∇J_k, ∇J_1⟩ = Σ_x m(x) w_k(p(x)) a(x)`, the norms and the cosine (docs/theory.md §2).
//!
//! Prompt masses `m` are always normalised to sum 1 before use (so `J_k = Σ m(x) pass@k(x)`).

use crate::estimators::w_k;
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// A symmetric `n × n` matrix of f64 (the interference kernel between `n` prompts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gram {
    n: usize,
    /// Row-major, always symmetric.
    data: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks that every vector has the length of the first; returns that length.
fn common_dim(what: &str, vs: &[Vec<f64>]) -> Result<usize, CoreError> {
    let d = vs.first().ok_or(CoreError::EmptyGroup)?.len();
    for v in vs {
        if v.len() != d {
            return Err(CoreError::DimensionMismatch {
                what: format!("{what} (every gradient needs the same length)"),
                expected: d,
                got: v.len(),
            });
        }
    }
    Ok(d)
}

impl Gram {
    /// The upper triangle with the diagonal, row-major (`i` outer, `j >= i`), as little-endian
    /// f32: the compact on-disk form of a probe's Gram matrix (`n (n + 1) / 2` values).
    pub fn to_upper_f32_le(&self) -> Vec<u8> {
        self.upper_entries()
            .flat_map(|(_, _, v)| (v as f32).to_le_bytes())
            .collect()
    }

    /// The entries `(i, j, κ(i, j))` with `i <= j`, row-major: the order of the file form.
    pub fn upper_entries(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.n).flat_map(move |i| (i..self.n).map(move |j| (i, j, self.get(i, j))))
    }

    /// Reads [`Gram::to_upper_f32_le`] bytes back (at f32 precision); `None` when their length
    /// is not `n (n + 1) / 2` f32 values for any `n`.
    pub fn from_upper_f32_le(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let m = bytes.len() / 4;
        let n = ((((8 * m + 1) as f64).sqrt() - 1.0) / 2.0).round() as usize;
        if n * (n + 1) / 2 != m {
            return None;
        }
        let mut values = bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        let mut g = Self::new(n);
        for i in 0..n {
            for j in i..n {
                let v = values.next()?;
                g.data[i * n + j] = v;
                g.data[j * n + i] = v;
            }
        }
        Some(g)
    }

    /// An `n × n` zero matrix.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            data: vec![0.0; n * n],
        }
    }

    /// Number of prompts (rows).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the matrix has no rows.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Entry `(i, j)`.
    ///
    /// # Panics
    /// Panics when `i` or `j` is out of range.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.n && j < self.n,
            "Gram index ({i}, {j}) out of range for n = {}",
            self.n
        );
        self.data[i * self.n + j]
    }

    /// Sets both `(i, j)` and `(j, i)` to `v`.
    ///
    /// # Panics
    /// Panics when `i` or `j` is out of range.
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        assert!(
            i < self.n && j < self.n,
            "Gram index ({i}, {j}) out of range for n = {}",
            self.n
        );
        self.data[i * self.n + j] = v;
        self.data[j * self.n + i] = v;
    }

    /// The diagonal `κ(x_i, x_i)`.
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.get(i, i)).collect()
    }

    /// The exact Gram matrix `G_ij = ⟨g_i, g_j⟩` of the given per-prompt gradients.
    ///
    /// When the `g_i` are exact gradients `∇p(x_i)` this is κ. When they are sample estimates,
    /// the off-diagonal entries are unbiased for κ (independent prompts) but the diagonal
    /// `|g_i|²` is biased upward by the estimator's variance: use [`Gram::from_split_halves`].
    ///
    /// # Errors
    /// [`CoreError::EmptyGroup`] for no gradients; [`CoreError::DimensionMismatch`] for
    /// gradients of different lengths.
    pub fn from_gradients(grads: &[Vec<f64>]) -> Result<Gram, CoreError> {
        common_dim("Gram::from_gradients", grads)?;
        let mut g = Gram::new(grads.len());
        for i in 0..grads.len() {
            for j in i..grads.len() {
                g.set(i, j, dot(&grads[i], &grads[j]));
            }
        }
        Ok(g)
    }

    /// Gram matrix from two independent half-sample gradient estimates `a_i`, `b_i` per prompt:
    /// off-diagonal `⟨m_i, m_j⟩` with `m_i = (a_i + b_i)/2`, diagonal `⟨a_i, b_i⟩`.
    ///
    /// Every entry is then unbiased for κ; the diagonal can be negative, so the matrix need not
    /// be positive semi-definite (norms derived from it can be `<= 0`).
    ///
    /// # Errors
    /// [`CoreError::EmptyGroup`] for no prompts; [`CoreError::DimensionMismatch`] when the two
    /// halves have different prompt counts or gradients of different lengths.
    pub fn from_split_halves(half_a: &[Vec<f64>], half_b: &[Vec<f64>]) -> Result<Gram, CoreError> {
        if half_a.len() != half_b.len() {
            return Err(CoreError::DimensionMismatch {
                what: "Gram::from_split_halves (both halves need one gradient per prompt)".into(),
                expected: half_a.len(),
                got: half_b.len(),
            });
        }
        let d = common_dim("Gram::from_split_halves half_a", half_a)?;
        let d_b = common_dim("Gram::from_split_halves half_b", half_b)?;
        if d != d_b {
            return Err(CoreError::DimensionMismatch {
                what: "Gram::from_split_halves (half_b gradients vs half_a)".into(),
                expected: d,
                got: d_b,
            });
        }
        let means: Vec<Vec<f64>> = half_a
            .iter()
            .zip(half_b)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| 0.5 * (x + y)).collect())
            .collect();
        let n = half_a.len();
        let mut g = Gram::new(n);
        for i in 0..n {
            g.set(i, i, dot(&half_a[i], &half_b[i]));
            for j in (i + 1)..n {
                g.set(i, j, dot(&means[i], &means[j]));
            }
        }
        Ok(g)
    }
}

/// Validates and normalises prompt masses to sum 1.
fn normalised_mass(mass: &[f64], n: usize) -> Result<Vec<f64>, CoreError> {
    if mass.len() != n {
        return Err(CoreError::DimensionMismatch {
            what: "prompt mass (one per Gram row)".into(),
            expected: n,
            got: mass.len(),
        });
    }
    if let Some(m) = mass.iter().find(|m| !m.is_finite() || **m < 0.0) {
        return Err(CoreError::InvalidMass(format!("found {m}")));
    }
    let total: f64 = mass.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return Err(CoreError::InvalidMass(format!("masses sum to {total}")));
    }
    Ok(mass.iter().map(|m| m / total).collect())
}

fn check_probabilities(p: &[f64], n: usize) -> Result<(), CoreError> {
    if p.len() != n {
        return Err(CoreError::DimensionMismatch {
            what: "success probabilities p (one per Gram row)".into(),
            expected: n,
            got: p.len(),
        });
    }
    match p.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        Some(&bad) => Err(CoreError::ProbabilityOutOfRange(bad)),
        None => Ok(()),
    }
}

/// Agreement scores `a_i = Σ_j m_j κ_ij` (mass normalised to sum 1), i.e. `⟨∇p(x_i), ∇J_1⟩`.
///
/// # Errors
/// [`CoreError::DimensionMismatch`] or [`CoreError::InvalidMass`].
pub fn try_agreement(gram: &Gram, mass: &[f64]) -> Result<Vec<f64>, CoreError> {
    let m = normalised_mass(mass, gram.len())?;
    Ok((0..gram.len())
        .map(|i| (0..gram.len()).map(|j| m[j] * gram.get(i, j)).sum())
        .collect())
}

/// Agreement scores `a_i = Σ_j m_j κ_ij` (mass normalised to sum 1), i.e. `⟨∇p(x_i), ∇J_1⟩`.
/// A prompt with `a_i < 0` is negatively interfering.
///
/// # Panics
/// Panics when `mass` has the wrong length or is not a valid mass; [`try_agreement`] returns
/// the error instead.
pub fn agreement(gram: &Gram, mass: &[f64]) -> Vec<f64> {
    try_agreement(gram, mass).unwrap_or_else(|e| panic!("agreement: {e}"))
}

/// `⟨∇J_k, ∇J_1⟩`, `‖∇J_k‖²`, `‖∇J_1‖²` and their cosine for one k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The k of pass@k.
    pub k: u32,
    /// `⟨∇J_k, ∇J_1⟩ = Σ_i m_i w_k(p_i) a_i`; negative means gradient conflict.
    pub inner: f64,
    /// `‖∇J_k‖² = Σ_ij m_i m_j w_k(p_i) w_k(p_j) κ_ij` (can be `<= 0` for a split-halves Gram).
    pub norm_k_sq: f64,
    /// `‖∇J_1‖² = Σ_ij m_i m_j κ_ij`.
    pub norm_1_sq: f64,
    /// `inner / sqrt(norm_k_sq · norm_1_sq)`; `None` when either squared norm is `<= 0`.
    pub cosine: Option<f64>,
}

/// [`Conflict`] for every `k` in `ks` (in the given order), from a Gram matrix, prompt masses
/// (normalised to sum 1) and per-prompt success probabilities `p`.
///
/// # Errors
/// [`CoreError::DimensionMismatch`], [`CoreError::InvalidMass`],
/// [`CoreError::ProbabilityOutOfRange`], or [`CoreError::ZeroK`] when some `k = 0`.
pub fn conflict(
    gram: &Gram,
    mass: &[f64],
    p: &[f64],
    ks: &[u32],
) -> Result<Vec<Conflict>, CoreError> {
    let n = gram.len();
    let m = normalised_mass(mass, n)?;
    check_probabilities(p, n)?;
    if ks.contains(&0) {
        return Err(CoreError::ZeroK);
    }
    let a = try_agreement(gram, &m)?;
    let norm_1_sq: f64 = a.iter().zip(&m).map(|(ai, mi)| ai * mi).sum();
    Ok(ks
        .iter()
        .map(|&k| {
            let mw: Vec<f64> = m.iter().zip(p).map(|(mi, &pi)| mi * w_k(pi, k)).collect();
            let inner: f64 = mw.iter().zip(&a).map(|(x, ai)| x * ai).sum();
            let mut norm_k_sq = 0.0;
            for i in 0..n {
                let row: f64 = (0..n).map(|j| mw[j] * gram.get(i, j)).sum();
                norm_k_sq += mw[i] * row;
            }
            let cosine = (norm_k_sq > 0.0 && norm_1_sq > 0.0)
                .then(|| inner / (norm_k_sq.sqrt() * norm_1_sq.sqrt()));
            Conflict {
                k,
                inner,
                norm_k_sq,
                norm_1_sq,
                cosine,
            }
        })
        .collect())
}

/// The smallest k among `conflicts` with `inner < 0` (the first conflicting k), if any.
pub fn k_star(conflicts: &[Conflict]) -> Option<u32> {
    conflicts
        .iter()
        .filter(|c| c.inner < 0.0)
        .map(|c| c.k)
        .min()
}

/// `Σ_{i∈rows} Σ_{j∈cols} m_i w_k(p_i) m_j κ_ij` (mass normalised to sum 1): the pass@k-weighted
/// gradients of the prompts in `rows` against the pass@1 gradient of the prompts in `cols`.
/// With `rows` and `cols` both all prompts it equals `⟨∇J_k, ∇J_1⟩`.
///
/// # Panics
/// Panics on invalid mass, probabilities, lengths or indices; [`try_block_inner`] returns the
/// error instead.
pub fn block_inner(
    gram: &Gram,
    mass: &[f64],
    p: &[f64],
    k: u32,
    rows: &[usize],
    cols: &[usize],
) -> f64 {
    try_block_inner(gram, mass, p, k, rows, cols).unwrap_or_else(|e| panic!("block_inner: {e}"))
}

/// Fallible [`block_inner`].
///
/// # Errors
/// [`CoreError::DimensionMismatch`] (also for an index out of range), [`CoreError::InvalidMass`],
/// [`CoreError::ProbabilityOutOfRange`].
pub fn try_block_inner(
    gram: &Gram,
    mass: &[f64],
    p: &[f64],
    k: u32,
    rows: &[usize],
    cols: &[usize],
) -> Result<f64, CoreError> {
    let n = gram.len();
    let m = normalised_mass(mass, n)?;
    check_probabilities(p, n)?;
    if let Some(&bad) = rows.iter().chain(cols).find(|&&i| i >= n) {
        return Err(CoreError::DimensionMismatch {
            what: "block_inner index (must be < number of prompts)".into(),
            expected: n,
            got: bad,
        });
    }
    let mut total = 0.0;
    for &i in rows {
        let wi = m[i] * w_k(p[i], k);
        total += wi * cols.iter().map(|&j| m[j] * gram.get(i, j)).sum::<f64>();
    }
    Ok(total)
}

/// The two-group threshold of docs/theory.md §2.5:
/// `k* = 1 + ln(A₊/A₋) / ln((1−p_lo)/(1−p_hi))`, where `A₋ > 0` is the absolute mass-weighted
/// agreement of the negatively interfering prompts (all at `p_lo`) and `A₊ > 0` that of the
/// positive ones (all at `p_hi > p_lo`). Conflict holds for every `k > k*`. `None` when the inputs
/// do not describe that situation.
pub fn two_group_threshold(a_plus: f64, a_minus: f64, p_lo: f64, p_hi: f64) -> Option<f64> {
    let valid = a_plus > 0.0
        && a_minus > 0.0
        && (0.0..1.0).contains(&p_lo)
        && (0.0..1.0).contains(&p_hi)
        && p_lo < p_hi;
    valid.then(|| 1.0 + (a_plus / a_minus).ln() / ((1.0 - p_lo) / (1.0 - p_hi)).ln())
}

#[cfg(test)]
mod tests;
