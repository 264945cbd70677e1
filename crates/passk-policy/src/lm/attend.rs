//! One token's causal attention over cached keys and values, for the sampling engine.
//!
//! A token's context is a chain of caches, oldest first: the prompt prefix every prompt of
//! the call shares (when there is one), its prompt's own tokens, and its sample's tokens.
//! The keys are visited in that order whatever the chain, so a token attends with the same
//! arithmetic whether or not its prefix is shared.

/// Most caches in one token's chain: shared prefix, prompt, sample.
pub(crate) const DEPTH: usize = 3;

/// Keys and values `[len, nkv · hd]` of one link of a chain.
pub(crate) type Part<'a> = (&'a [f32], &'a [f32]);

/// The shape of one token's attention over `s` cached positions.
pub(crate) struct Attend {
    pub nh: usize,
    pub nkv: usize,
    pub hd: usize,
    pub s: usize,
}

impl Attend {
    /// Attends the query heads `q` `[nh · hd]` over `parts` (oldest first, `s` rows in all),
    /// writing `[nh · hd]` to `out`; `scores` is scratch.
    pub(crate) fn run(
        &self,
        parts: &[Part<'_>],
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY (each arm): the CPU has AVX-512F, and a head is V vectors.
                match self.hd {
                    16 => return unsafe { self.run_avx512::<1>(parts, q, out, scores) },
                    32 => return unsafe { self.run_avx512::<2>(parts, q, out, scores) },
                    64 => return unsafe { self.run_avx512::<4>(parts, q, out, scores) },
                    128 => return unsafe { self.run_avx512::<8>(parts, q, out, scores) },
                    _ => {}
                }
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                return unsafe { self.run_fma(parts, q, out, scores) };
            }
        }
        self.generic::<false>(parts, q, out, scores)
    }

    /// [`Attend::generic`] compiled for AVX2 with fused multiply-adds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_fma(&self, parts: &[Part<'_>], q: &[f32], out: &mut [f32], s: &mut Vec<f32>) {
        self.generic::<true>(parts, q, out, s)
    }

    /// The query heads of one key/value group are handled together, so each cached key and
    /// value row is read once per group, not once per head.
    #[inline(always)]
    fn generic<const FMA: bool>(
        &self,
        parts: &[Part<'_>],
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
            for (keys, _) in parts {
                for row in keys.chunks_exact(kvd) {
                    let k = &row[g * hd..(g + 1) * hd];
                    for (r, qh) in qg.chunks_exact(hd).enumerate() {
                        scores[r * s + j] = dot::<FMA>(qh, k) * scale;
                    }
                    j += 1;
                }
            }
            debug_assert_eq!(j, s);
            scores.chunks_exact_mut(s).for_each(softmax);
            let og = &mut out[g * rep * hd..(g + 1) * rep * hd];
            og.fill(0.0);
            let mut j = 0;
            for (_, values) in parts {
                for row in values.chunks_exact(kvd) {
                    let v = &row[g * hd..(g + 1) * hd];
                    for (r, oh) in og.chunks_exact_mut(hd).enumerate() {
                        axpy::<FMA>(oh, scores[r * s + j], v);
                    }
                    j += 1;
                }
            }
        }
    }

    /// [`Attend::generic`]'s loops with 16-wide vectors, for heads of `V` vectors: each head's
    /// output stays in registers while the values stream past.
    ///
    /// # Safety
    /// The CPU has AVX-512F and `hd == 16 · V`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const V: usize>(
        &self,
        parts: &[Part<'_>],
        q: &[f32],
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        use std::arch::x86_64::*;
        let (hd, s) = (self.hd, self.s);
        let kvd = self.nkv * hd;
        assert_eq!(hd, 16 * V);
        let rep = self.nh / self.nkv;
        let scale = 1.0 / (hd as f32).sqrt();
        scores.clear();
        scores.resize(rep * s, 0.0);
        assert!(q.len() >= self.nh * hd && out.len() >= self.nh * hd);
        for g in 0..self.nkv {
            for r in 0..rep {
                let qh = q[(g * rep + r) * hd..].as_ptr();
                let sc = &mut scores[r * s..(r + 1) * s];
                let mut j = 0;
                for (keys, _) in parts {
                    for row in keys.chunks_exact(kvd) {
                        let k = row[g * hd..(g + 1) * hd].as_ptr();
                        let mut acc = _mm512_setzero_ps();
                        for v in 0..V {
                            // SAFETY: v · 16 < hd, inside both the head and the key.
                            acc = _mm512_fmadd_ps(
                                _mm512_loadu_ps(qh.add(v * 16)),
                                _mm512_loadu_ps(k.add(v * 16)),
                                acc,
                            );
                        }
                        sc[j] = _mm512_reduce_add_ps(acc) * scale;
                        j += 1;
                    }
                }
                softmax(sc);
            }
            let og = &mut out[g * rep * hd..(g + 1) * rep * hd];
            for r in 0..rep {
                let oh = og[r * hd..].as_mut_ptr();
                let sc = &scores[r * s..(r + 1) * s];
                let mut acc = [_mm512_setzero_ps(); V];
                let mut j = 0;
                for (_, values) in parts {
                    for row in values.chunks_exact(kvd) {
                        let vp = row[g * hd..(g + 1) * hd].as_ptr();
                        let p = _mm512_set1_ps(sc[j]);
                        for (v, a) in acc.iter_mut().enumerate() {
                            // SAFETY: v · 16 < hd, inside the value row.
                            *a = _mm512_fmadd_ps(p, _mm512_loadu_ps(vp.add(v * 16)), *a);
                        }
                        j += 1;
                    }
                }
                for (v, a) in acc.iter().enumerate() {
                    // SAFETY: v · 16 < hd, inside this head's output.
                    _mm512_storeu_ps(oh.add(v * 16), *a);
                }
            }
        }
    }
}

/// Softmax in place.
#[inline(always)]
fn softmax(sc: &mut [f32]) {
    let max = sc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in sc.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    sc.iter_mut().for_each(|x| *x *= inv);
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
