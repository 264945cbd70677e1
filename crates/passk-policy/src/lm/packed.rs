//! The sampling engine's weight matrices, multiplied by an AVX-512 kernel on CPUs that have it.
//!
//! A decode step multiplies a few dozen rows by every weight matrix of the model. `gemm`
//! repacks the weight operand on every call, and on stable Rust it is built without its
//! AVX-512 kernels (the `x86-v4` feature would also change candle's own matmuls, and so the
//! bytes of every tiny-tier cell). Profiling `lm_sample` at batch 64 showed repacking at 20%
//! of the time and the AVX2 microkernel at 50%. A [`Matrix`] is packed once, when the engine
//! copies the weights, into column panels that the kernel below reads contiguously.
//!
//! Every output element is one fused multiply-add chain over `k` in order, started from zero,
//! then added to the destination when accumulating. It does not depend on the batch, the
//! tiling or the thread count, so a sample's tokens do not depend on what else is decoded
//! beside it; tests compare it bit for bit with a scalar chain.
//!
//! CPUs without AVX-512 (and other architectures) keep the row-major matrix and use `gemm`.

/// Output columns per 512-bit vector.
const LANES: usize = 16;
/// Vectors per panel row.
const NR: usize = 3;
/// Output columns per panel.
const PANEL: usize = LANES * NR;
/// Rows per kernel call: `MR × NR` accumulators plus `NR` weight vectors and a broadcast
/// fit the 32 vector registers.
const MR: usize = 8;
/// Panel rows per slice: `KC · PANEL` floats (24 KiB) stay in L1 across row tiles.
const KC: usize = 128;
/// Rows of the left operand kept hot in L2 while every panel passes over them.
const MB: usize = 256;
/// Panel rows prefetched ahead of the first row tile.
const AHEAD: usize = 8;
/// Floats per 64-byte cache line: panels start on a line boundary.
const LINE: usize = 16;

/// A weight matrix `w` `[n, k]`, row-major, ready for [`Matrix::matmul_t`].
pub(crate) struct Matrix {
    n: usize,
    k: usize,
    layout: Layout,
}

enum Layout {
    /// `w` itself, multiplied by `gemm`.
    Rows(Vec<f32>),
    /// Panel `p` holds columns `p·PANEL..` as `[k, PANEL]` starting at `offset + p·k·PANEL`;
    /// the last panel is zero-padded.
    Panels { data: Vec<f32>, offset: usize },
}

impl Matrix {
    /// Takes `w` `[n, k]`; packs it when the CPU has AVX-512.
    pub(crate) fn new(w: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "a [{n}, {k}] matrix");
        let layout = if avx512() {
            pack(&w, n, k)
        } else {
            Layout::Rows(w)
        };
        Self { n, k, layout }
    }

    /// `w` with the portable layout whatever the CPU (for tests of the fallback).
    #[cfg(test)]
    pub(crate) fn rows_only(w: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k);
        Self {
            n,
            k,
            layout: Layout::Rows(w),
        }
    }

    /// Whether the AVX-512 kernel multiplies this matrix.
    #[cfg(test)]
    pub(crate) fn is_packed(&self) -> bool {
        matches!(self.layout, Layout::Panels { .. })
    }

    /// `out[m, n] (+)= a[m, k] · wᵀ`, adding to `out` when `acc`.
    pub(crate) fn matmul_t(&self, a: &[f32], m: usize, out: &mut [f32], acc: bool) {
        let (n, k) = (self.n, self.k);
        assert!(a.len() >= m * k && out.len() >= m * n);
        if m == 0 {
            return;
        }
        match &self.layout {
            Layout::Rows(w) => gemm_t(a, m, k, w, n, out, acc),
            Layout::Panels { data, offset } => {
                let panels = &data[*offset..];
                for m0 in (0..m).step_by(MB) {
                    let rows = MB.min(m - m0);
                    let a = &a[m0 * k..(m0 + rows) * k];
                    let out = &mut out[m0 * n..(m0 + rows) * n];
                    panels_times(a, rows, k, panels, n, out, acc);
                }
            }
        }
    }
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn pack(w: &[f32], n: usize, k: usize) -> Layout {
    use rayon::prelude::*;
    let count = n.div_ceil(PANEL);
    let mut data = vec![0f32; count * k * PANEL + LINE];
    let offset = data.as_ptr().align_offset(LINE * 4).min(LINE);
    let panels = &mut data[offset..offset + count * k * PANEL];
    panels
        .par_chunks_mut(k * PANEL)
        .enumerate()
        .for_each(|(p, panel)| {
            let rows = w[p * PANEL * k..].chunks_exact(k).take(PANEL);
            for (c, row) in rows.enumerate() {
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * PANEL + c] = v;
                }
            }
        });
    Layout::Panels { data, offset }
}

/// A destination pointer shared by threads that write disjoint columns of it.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: each task writes only its own panel's columns (see `panels_times`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// All panels of one block of `m ≤ MB` rows, panels spread over rayon's threads.
fn panels_times(
    a: &[f32],
    m: usize,
    k: usize,
    panels: &[f32],
    n: usize,
    out: &mut [f32],
    acc: bool,
) {
    use rayon::prelude::*;
    let count = n.div_ceil(PANEL);
    assert!(m <= MB && panels.len() >= count * k * PANEL && a.len() >= m * k);
    assert!(out.len() >= m * n);
    // Each row tile's columns interleaved, `[k, MR]`, so a step's broadcasts share a line.
    let tiles = m.div_ceil(MR);
    let mut packed = vec![0f32; tiles * k * MR];
    for (i, row) in a[..m * k].chunks_exact(k).enumerate() {
        let base = (i / MR) * k * MR + i % MR;
        for (kk, &v) in row.iter().enumerate() {
            packed[base + kk * MR] = v;
        }
    }
    let dst = Out(out.as_mut_ptr());
    (0..count).into_par_iter().for_each_init(
        || vec![0f32; MB * PANEL],
        |sums, p| {
            let cols = PANEL.min(n - p * PANEL);
            let panel = &panels[p * k * PANEL..(p + 1) * k * PANEL];
            // A slice of KC rows of the panel stays in L1 while every row tile passes over it;
            // the running sums wait in `sums` between slices.
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                let last = k0 + kc == k;
                for m0 in (0..m).step_by(MR) {
                    let rows = MR.min(m - m0);
                    let step = Step {
                        a: packed[m0 * k + k0 * MR..].as_ptr(),
                        kc,
                        panel: panel[k0 * PANEL..].as_ptr(),
                        sums: sums[m0 * PANEL..].as_mut_ptr(),
                        first: k0 == 0,
                        fetch: m0 == 0,
                        // SAFETY: row m0 < m and column p·PANEL < n lie inside `out`.
                        out: last.then(|| unsafe { dst.ptr().add(m0 * n + p * PANEL) }),
                        ldo: n,
                        cols,
                        acc,
                    };
                    // SAFETY: the asserts above bound every read and write: rows
                    // m0..m0+rows of `a` (k each) and of `out` (n each), columns
                    // p·PANEL..p·PANEL+cols < n, which no other task writes, and rows
                    // m0..m0+rows of this task's `sums`. `pack` only builds panels when the
                    // CPU has AVX-512.
                    unsafe { tile(rows, &step) }
                }
            }
        },
    );
}

/// One kernel call: `kc` steps of the sums of a tile of rows against one panel.
struct Step {
    /// The tile's left operand from the slice's first column, `[kc, MR]`.
    a: *const f32,
    kc: usize,
    /// The panel at the slice's first row.
    panel: *const f32,
    /// The tile's running sums, rows `PANEL` apart.
    sums: *mut f32,
    /// Whether the sums start from zero rather than from `sums`.
    first: bool,
    /// Whether this is the slice's first tile, which brings the panel into cache.
    fetch: bool,
    /// Where the finished sums go (rows `ldo` apart, `cols` of them), on the last slice.
    out: Option<*mut f32>,
    ldo: usize,
    cols: usize,
    /// Whether they are added to `out` rather than stored.
    acc: bool,
}

/// Dispatches a tile of `rows ≤ MR` rows to the kernel compiled for that row count.
///
/// # Safety
/// As [`kernel`].
unsafe fn tile(rows: usize, step: &Step) {
    const _: () = assert!(MR == 8, "tile() dispatches 1 to 8 rows");
    debug_assert!((1..=MR).contains(&rows));
    #[cfg(target_arch = "x86_64")]
    {
        let f = match rows {
            1 => kernel::<1>,
            2 => kernel::<2>,
            3 => kernel::<3>,
            4 => kernel::<4>,
            5 => kernel::<5>,
            6 => kernel::<6>,
            7 => kernel::<7>,
            _ => kernel::<MR>,
        };
        f(step)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, step);
        unreachable!("panels are only built on x86_64 with AVX-512")
    }
}

/// `R` rows of the tile: `sums (=|+=) a · panel` over the slice, then, on the last slice,
/// the first `cols` sums stored or added to `out`.
///
/// # Safety
/// The CPU has AVX-512F; `a` holds `kc · MR` floats, `panel` `kc · PANEL`
/// floats, `sums` `R · PANEL` floats, and `out` `R` rows of `cols` writable floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize>(s: &Step) {
    use std::arch::x86_64::*;
    let mut c = [[_mm512_setzero_ps(); NR]; R];
    if !s.first {
        for (r, cr) in c.iter_mut().enumerate() {
            for (v, cv) in cr.iter_mut().enumerate() {
                *cv = _mm512_loadu_ps(s.sums.add(r * PANEL + v * LANES));
            }
        }
    }
    for kk in 0..s.kc {
        let w = s.panel.add(kk * PANEL);
        if s.fetch {
            // Rows of the panel a few steps ahead, which come from L3 or memory.
            for v in 0..NR {
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(AHEAD * PANEL + v * LANES) as *const i8);
            }
        }
        let mut wv = [_mm512_setzero_ps(); NR];
        for (v, wv) in wv.iter_mut().enumerate() {
            *wv = _mm512_loadu_ps(w.add(v * LANES));
        }
        for (r, cr) in c.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*s.a.add(kk * MR + r));
            for (cv, &wv) in cr.iter_mut().zip(&wv) {
                *cv = _mm512_fmadd_ps(x, wv, *cv);
            }
        }
    }
    let Some(out) = s.out else {
        for (r, cr) in c.iter().enumerate() {
            for (v, &cv) in cr.iter().enumerate() {
                _mm512_storeu_ps(s.sums.add(r * PANEL + v * LANES), cv);
            }
        }
        return;
    };
    for (r, cr) in c.iter().enumerate() {
        let dst = out.add(r * s.ldo);
        for (v, &y) in cr.iter().enumerate() {
            let lo = v * LANES;
            if lo >= s.cols {
                break;
            }
            let live = (s.cols - lo).min(LANES);
            let mask: __mmask16 = if live == LANES {
                u16::MAX
            } else {
                (1u16 << live) - 1
            };
            let y = if s.acc {
                _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst.add(lo)), y)
            } else {
                y
            };
            _mm512_mask_storeu_ps(dst.add(lo), mask, y);
        }
    }
}

/// `out[m, n] (+)= a[m, k] · w[n, k]ᵀ` by `gemm`, for CPUs without AVX-512.
fn gemm_t(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && w.len() >= n * k && out.len() >= m * n);
    let threads = candle_core::utils::get_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above bounds every index gemm touches: dst is m×n row-major, lhs
    // m×k row-major, rhs the k×n transpose of w (n×k row-major).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
