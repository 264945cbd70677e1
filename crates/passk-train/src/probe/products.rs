//! The inner products behind the probe's Gram matrix, bit-identical however they are grouped.
//!
//! Every entry is `dot_f64` of two rows: eight f64 lanes summed in order, then the lanes, then
//! the tail. The kernels below only change which entries are computed together (sharing
//! loads, reusing cached rows) and the vector width they are compiled for; no multiply-add is
//! ever fused (Rust does not contract), so every entry rounds exactly as `dot_f64` alone. The
//! Gram was a fifth of a tiny-tier cell's time, bound by memory traffic.

#[inline(always)]
pub(crate) fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// How many Gram entries of one row [`dots_f64`] computes together.
const DOTS: usize = 4;
/// Rows per side of a tile of Gram entries (two tiles of gradient blocks: 512 KB).
const TILE: usize = 16;

/// `[dot_f64(a, b) for b in bs]`, bit for bit, with every load of `a` shared by the
/// [`DOTS`] products (the probe's Gram was a fifth of a tiny-tier cell's time, bound by loads).
#[inline(always)]
fn dots_f64(a: &[f64], bs: [&[f64]; DOTS]) -> [f64; DOTS] {
    let mut acc = [[0.0f64; 8]; DOTS];
    let n8 = a.len() / 8 * 8;
    for c in (0..n8).step_by(8) {
        let x = &a[c..c + 8];
        for (acc, b) in acc.iter_mut().zip(&bs) {
            let y = &b[c..c + 8];
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
    }
    std::array::from_fn(|u| {
        let tail: f64 = a[n8..].iter().zip(&bs[u][n8..]).map(|(x, y)| x * y).sum();
        acc[u].iter().sum::<f64>() + tail
    })
}

/// `off[i * n + j] += dot_f64(row i, row j)` for every `i < j` of the `n` rows of `block`
/// (each `len` long).
pub(crate) fn add_block_products(block: &[f64], len: usize, off: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F.
            return unsafe { add_block_products_avx512(block, len, off) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { add_block_products_avx2(block, len, off) };
        }
    }
    add_block_products_any(block, len, off)
}

/// [`add_block_products_any`] with one 8-lane accumulator per register: a 4 x 4 tile of
/// entries ([`tile_f64`]) then fits in the 32 vector registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_block_products_avx512(block: &[f64], len: usize, off: &mut [f64]) {
    add_block_products_any(block, len, off)
}

/// [`add_block_products_any`] with 4-lane vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_block_products_avx2(block: &[f64], len: usize, off: &mut [f64]) {
    add_block_products_any(block, len, off)
}

#[inline(always)]
fn add_block_products_any(block: &[f64], len: usize, off: &mut [f64]) {
    let n = block.len() / len;
    // Pairs in tiles of TILE x TILE rows, so a tile's rows stay in the L2 cache while its
    // products are formed (the block itself does not fit).
    let row = |i: usize| &block[i * len..(i + 1) * len];
    for it in (0..n).step_by(TILE) {
        let i_end = n.min(it + TILE);
        for jt in (it..n).step_by(TILE) {
            let j_end = n.min(jt + TILE);
            let mut i = it;
            if jt > it {
                // Off the diagonal every pair counts: 4 x 4 entries at a time, each of the
                // eight rows loaded once for sixteen products.
                while i + QUAD <= i_end {
                    let a: [&[f64]; QUAD] = std::array::from_fn(|u| row(i + u));
                    let mut j = jt;
                    while j + QUAD <= j_end {
                        let b: [&[f64]; QUAD] = std::array::from_fn(|v| row(j + v));
                        for (u, entries) in tile_f64(a, b).into_iter().enumerate() {
                            for (v, e) in entries.into_iter().enumerate() {
                                off[(i + u) * n + j + v] += e;
                            }
                        }
                        j += QUAD;
                    }
                    for u in 0..QUAD {
                        for j in j..j_end {
                            off[(i + u) * n + j] += dot_f64(a[u], row(j));
                        }
                    }
                    i += QUAD;
                }
            }
            for i in i..i_end {
                let (mut j, end) = ((i + 1).max(jt), j_end);
                while j + DOTS <= end {
                    let others: [&[f64]; DOTS] = std::array::from_fn(|u| row(j + u));
                    for (u, v) in dots_f64(row(i), others).into_iter().enumerate() {
                        off[i * n + j + u] += v;
                    }
                    j += DOTS;
                }
                for j in j..end {
                    off[i * n + j] += dot_f64(row(i), row(j));
                }
            }
        }
    }
}

/// The first `r.len() / 8 * 8` elements of `r` as 8-lane groups (fixed-size groups let the
/// compiler keep the tile's sixteen accumulators in registers without bounds checks).
#[inline(always)]
fn as_lanes(r: &[f64]) -> &[[f64; 8]] {
    // SAFETY: `[f64; 8]` has the alignment of f64 and eight times its size, and the length
    // stays within `r`.
    unsafe { std::slice::from_raw_parts(r.as_ptr().cast::<[f64; 8]>(), r.len() / 8) }
}

/// Rows per side of [`tile_f64`].
const QUAD: usize = 4;

/// `[[dot_f64(a[u], b[v]) for v] for u]`, bit for bit.
#[inline(always)]
fn tile_f64(a: [&[f64]; QUAD], b: [&[f64]; QUAD]) -> [[f64; QUAD]; QUAD] {
    let len = a[0].len();
    let n8 = len / 8 * 8;
    let mut acc = [[[0.0f64; 8]; QUAD]; QUAD];
    let ra: [&[[f64; 8]]; QUAD] = std::array::from_fn(|u| as_lanes(&a[u][..n8]));
    let rb: [&[[f64; 8]]; QUAD] = std::array::from_fn(|v| as_lanes(&b[v][..n8]));
    for k in 0..n8 / 8 {
        let x: [[f64; 8]; QUAD] = std::array::from_fn(|u| ra[u][k]);
        let y: [[f64; 8]; QUAD] = std::array::from_fn(|v| rb[v][k]);
        for u in 0..QUAD {
            for v in 0..QUAD {
                for l in 0..8 {
                    acc[u][v][l] += x[u][l] * y[v][l];
                }
            }
        }
    }
    std::array::from_fn(|u| {
        std::array::from_fn(|v| {
            let tail: f64 = a[u][n8..].iter().zip(&b[v][n8..]).map(|(x, y)| x * y).sum();
            acc[u][v].iter().sum::<f64>() + tail
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel's Gram block against `dot_f64` entry by entry, on sizes that exercise the
    /// tiles, their edges and the tails.
    #[test]
    fn block_products_equal_single_dot_products_bit_for_bit() {
        for (n, len) in [(37, 2048), (5, 21), (20, 8)] {
            let block: Vec<f64> = (0..n * len)
                .map(|i| ((i as f64 * 0.37).sin() + (i % 7) as f64 * 0.01) * 1e-3)
                .collect();
            let row = |i: usize| &block[i * len..(i + 1) * len];
            let mut want = vec![0.5f64; n * n];
            for i in 0..n {
                for j in i + 1..n {
                    want[i * n + j] += dot_f64(row(i), row(j));
                }
            }
            let mut kernels: Vec<(&str, Vec<f64>)> = vec![("any", vec![0.5; n * n])];
            add_block_products_any(&block, len, &mut kernels[0].1);
            let mut dispatched = vec![0.5; n * n];
            add_block_products(&block, len, &mut dispatched);
            kernels.push(("dispatched", dispatched));
            for (name, got) in &kernels {
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "{name}: entry {k} of {n} x {len}");
                }
            }
        }
    }

    #[test]
    fn grouped_dot_products_equal_single_ones_bit_for_bit() {
        let v = |seed: u64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| ((i as f64 + 0.5) * (seed as f64 + 1.3)).sin() * 1e-3)
                .collect()
        };
        for n in [0, 5, 8, 37, 2048] {
            let a = v(0, n);
            let bs: Vec<Vec<f64>> = (1..=DOTS as u64).map(|s| v(s, n)).collect();
            let got = dots_f64(&a, std::array::from_fn(|u| bs[u].as_slice()));
            for (g, b) in got.iter().zip(&bs) {
                assert_eq!(g.to_bits(), dot_f64(&a, b).to_bits(), "length {n}");
            }
        }
    }
}
