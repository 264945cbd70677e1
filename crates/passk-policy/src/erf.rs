//! The error function over a slice, bit-identical to `libm::erff` (what candle's `erf_f32`
//! calls) but vectorisable.
//!
//! The exact GELU needs one erf per MLP activation, and the scalar call was the largest cost
//! of the training forward pass after the matmuls. `erff` (Sun's fdlibm, as ported by the
//! `libm` crate) evaluates a rational polynomial on `|x| < 1.25` and calls `expf` only beyond.
//! Here both polynomial branches run for every element with plain f32 multiplies, adds and one
//! division each, in `erff`'s exact order (Rust never contracts them into FMAs, so SIMD lanes
//! round exactly like the scalar code), and the branch is picked per element afterwards.
//! Elements outside the polynomial range (|x| >= 1.25, tiny, non-finite) go to `erff` itself.
//! The constants are fdlibm's, given by their bit patterns.

const ERX: f32 = f32::from_bits(0x3f58_560b);
const PP0: f32 = f32::from_bits(0x3e03_75d4);
const PP1: f32 = f32::from_bits(0xbea6_6beb);
const PP2: f32 = f32::from_bits(0xbce9_528f);
const PP3: f32 = f32::from_bits(0xbbbd_1489);
const PP4: f32 = f32::from_bits(0xb7c7_56b1);
const QQ1: f32 = f32::from_bits(0x3ecb_bbce);
const QQ2: f32 = f32::from_bits(0x3d85_2a63);
const QQ3: f32 = f32::from_bits(0x3ba6_8116);
const QQ4: f32 = f32::from_bits(0x390a_ee49);
const QQ5: f32 = f32::from_bits(0xb684_e21a);
const PA0: f32 = f32::from_bits(0xbb1a_cdc6);
const PA1: f32 = f32::from_bits(0x3ed4_6805);
const PA2: f32 = f32::from_bits(0xbebe_9208);
const PA3: f32 = f32::from_bits(0x3ea2_fe54);
const PA4: f32 = f32::from_bits(0xbde3_1cc2);
const PA5: f32 = f32::from_bits(0x3d11_51b3);
const PA6: f32 = f32::from_bits(0xbb0d_f9c0);
const QA1: f32 = f32::from_bits(0x3dd9_f331);
const QA2: f32 = f32::from_bits(0x3f0a_5785);
const QA3: f32 = f32::from_bits(0x3d93_1ae7);
const QA4: f32 = f32::from_bits(0x3e01_3307);
const QA5: f32 = f32::from_bits(0x3c5f_6e13);
const QA6: f32 = f32::from_bits(0x3c44_5aa3);

/// Bit patterns (sign cleared) bounding the two polynomial branches of `erff`.
const TINY: u32 = 0x3180_0000; // 2^-28
const NEAR: u32 = 0x3f58_0000; // 0.84375
const MID: u32 = 0x3fa0_0000; // 1.25

/// `out[i] = libm::erff(xs[i])`, bit for bit.
pub(crate) fn erf_slice(xs: &[f32], out: &mut [f32]) {
    let mut far = false;
    for (x, &v) in out.iter_mut().zip(xs) {
        let ix = v.to_bits() & 0x7fff_ffff;
        // |x| < 0.84375: x + x * P(x^2) / Q(x^2).
        let z = v * v;
        let r = PP0 + z * (PP1 + z * (PP2 + z * (PP3 + z * PP4)));
        let s = 1.0 + z * (QQ1 + z * (QQ2 + z * (QQ3 + z * (QQ4 + z * QQ5))));
        let near = v + v * (r / s);
        // 0.84375 <= |x| < 1.25: +-(1 - (1 - erx - P(|x| - 1) / Q(|x| - 1))).
        let a = f32::from_bits(ix) - 1.0;
        let p = PA0 + a * (PA1 + a * (PA2 + a * (PA3 + a * (PA4 + a * (PA5 + a * PA6)))));
        let q = 1.0 + a * (QA1 + a * (QA2 + a * (QA3 + a * (QA4 + a * (QA5 + a * QA6)))));
        let mid = 1.0 - (1.0 - ERX - p / q);
        let mid = f32::from_bits(mid.to_bits() | (v.to_bits() & 0x8000_0000));
        *x = if ix < NEAR { near } else { mid };
        far |= !(TINY..MID).contains(&ix);
    }
    if far {
        // Outside both polynomial ranges (rare for GELU inputs): erff itself.
        for (o, &v) in out.iter_mut().zip(xs) {
            if !(TINY..MID).contains(&(v.to_bits() & 0x7fff_ffff)) {
                *o = candle_core::cpu::erf::erf_f32(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(xs: &[f32]) {
        let mut out = vec![0f32; xs.len()];
        erf_slice(xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = candle_core::cpu::erf::erf_f32(x);
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "erf({x:e}) = {y:e}, erff gives {want:e}"
            );
        }
    }

    #[test]
    fn matches_erff_bit_for_bit() {
        // Every 61st bit pattern of [0, 8] and its negation (about 1.8 M values, both
        // polynomial ranges and the fallback), then the edges and specials.
        let top = 8f32.to_bits();
        let xs: Vec<f32> = (0..top)
            .step_by(61)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .collect();
        for chunk in xs.chunks(4096) {
            check(chunk);
        }
        let mut edges = Vec::new();
        for b in [TINY, NEAR, MID, 0x40c0_0000] {
            for d in 0..4 {
                edges.extend([f32::from_bits(b + d), f32::from_bits(b - 1 - d)]);
            }
        }
        edges.extend([
            0.0,
            -0.0,
            1e-40,
            f32::INFINITY,
            -f32::INFINITY,
            f32::NAN,
            100.0,
        ]);
        check(&edges);
    }
}
