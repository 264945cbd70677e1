//! The error function over a slice, bit-identical to `libm::erff` (what candle's `erf_f32`
//! calls) but vectorisable.
//!
//! The exact GELU needs one erf per MLP activation, and the scalar call was the largest cost
//! of the training forward pass after the matmuls. `erff` (Sun's fdlibm, as ported by the
//! `libm` crate) evaluates a rational polynomial on `|x| < 1.25` and calls `expf` only beyond.
//! Here all three branches on `2^-28 <= |x| < 6` (the two polynomials, and the asymptotic
//! form with its two `expf` calls, `expf` itself rewritten without branches) run for every
//! element with plain f32 operations in `erff`'s exact order (Rust never contracts them into
//! FMAs, so SIMD lanes round exactly like the scalar code), and the branch is picked per element
//! by a select. Elements outside that range (tiny, beyond 6, non-finite) go to `erff` itself.
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
// erfc on [1.25, 1/0.35) (RA, SA) and [1/0.35, 6) (RB, SB).
const RA0: f32 = f32::from_bits(0xbc21_a093);
const RA1: f32 = f32::from_bits(0xbf31_a0b7);
const RA2: f32 = f32::from_bits(0xc128_f022);
const RA3: f32 = f32::from_bits(0xc279_8057);
const RA4: f32 = f32::from_bits(0xc322_658c);
const RA5: f32 = f32::from_bits(0xc338_9ae7);
const RA6: f32 = f32::from_bits(0xc2a2_932b);
const RA7: f32 = f32::from_bits(0xc11d_077e);
const SA1: f32 = f32::from_bits(0x419d_35ce);
const SA2: f32 = f32::from_bits(0x4309_a863);
const SA3: f32 = f32::from_bits(0x43d9_486f);
const SA4: f32 = f32::from_bits(0x4421_58c9);
const SA5: f32 = f32::from_bits(0x43d6_810b);
const SA6: f32 = f32::from_bits(0x42d9_451f);
const SA7: f32 = f32::from_bits(0x40d2_3f7c);
const SA8: f32 = f32::from_bits(0xbd77_7f97);
const RB0: f32 = f32::from_bits(0xbc21_a092);
const RB1: f32 = f32::from_bits(0xbf4c_9dd4);
const RB2: f32 = f32::from_bits(0xc18e_104b);
const RB3: f32 = f32::from_bits(0xc320_a2ea);
const RB4: f32 = f32::from_bits(0xc41f_6441);
const RB5: f32 = f32::from_bits(0xc480_230b);
const RB6: f32 = f32::from_bits(0xc3f1_c275);
const SB1: f32 = f32::from_bits(0x41f2_b459);
const SB2: f32 = f32::from_bits(0x43a2_e571);
const SB3: f32 = f32::from_bits(0x44c0_1759);
const SB4: f32 = f32::from_bits(0x4547_fdbb);
const SB5: f32 = f32::from_bits(0x451f_90ce);
const SB6: f32 = f32::from_bits(0x43ed_43a7);
const SB7: f32 = f32::from_bits(0xc1b3_8712);
// expf (FreeBSD e_expf.c, as in the libm crate).
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
const P1: f32 = f32::from_bits(0x3e2a_aa8f);
const P2: f32 = f32::from_bits(0xbb35_5215);

/// Bit patterns (sign cleared) bounding the branches of `erff`.
const TINY: u32 = 0x3180_0000; // 2^-28
const NEAR: u32 = 0x3f58_0000; // 0.84375
const MID: u32 = 0x3fa0_0000; // 1.25
const SPLIT: u32 = 0x4036_db6d; // 1/0.35
const FAR: u32 = 0x40c0_0000; // 6

/// `libm::expf(x)` for `|x| < 80` without branches or float-to-int conversions (which keep
/// the loop from vectorising): the argument reduction of each of expf's ranges is picked by
/// selects, `k` stays a float, and `scalbnf(y, k)` is the product `y * 2^k`, exact here
/// because the result stays normal.
#[inline(always)]
fn expf_moderate(x: f32) -> f32 {
    /// 2^23: adding and subtracting it rounds a float below 2^22 to an integer.
    const ROUND: f32 = 8_388_608.0;
    let hx = x.to_bits() & 0x7fff_ffff;
    let negative = x.to_bits() >> 31 != 0;
    // |x| > 1.5 ln 2: k = (x / ln 2 ± 0.5) truncated toward zero.
    let t = INV_LN2 * x + if negative { -0.5 } else { 0.5 };
    let at = t.abs();
    let nearest = (at + ROUND) - ROUND;
    let floor = if nearest > at { nearest - 1.0 } else { nearest };
    let trunc = if t < 0.0 { -floor } else { floor } + 0.0;
    let kf = if hx > 0x3f85_1592 {
        trunc
    } else if hx > 0x3eb1_7218 {
        // |x| > 0.5 ln 2
        if negative {
            -1.0
        } else {
            1.0
        }
    } else {
        0.0
    };
    // With k = 0 these give hi = x, lo = 0 and r = x, as expf's own k = 0 branch does.
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // 2^k from the biased exponent k + 127, read off the low bits of (k + 127) + 2^23.
    let biased = ((kf + 127.0) + ROUND).to_bits() - ROUND.to_bits();
    let scaled = y * f32::from_bits(biased << 23);
    if hx > 0x3900_0000 {
        scaled
    } else {
        // |x| <= 2^-14
        1.0 + x
    }
}

/// `erff(x)` for `1.25 <= |x| < 6`: `±(1 - erfc(|x|))` with erfc from fdlibm's asymptotic
/// rational approximations.
#[inline(always)]
fn erf_tail(v: f32) -> f32 {
    let ix = v.to_bits() & 0x7fff_ffff;
    let x = f32::from_bits(ix);
    let s = 1.0 / (x * x);
    let ra = RA0 + s * (RA1 + s * (RA2 + s * (RA3 + s * (RA4 + s * (RA5 + s * (RA6 + s * RA7))))));
    let sa = 1.0
        + s * (SA1
            + s * (SA2 + s * (SA3 + s * (SA4 + s * (SA5 + s * (SA6 + s * (SA7 + s * SA8)))))));
    let rb = RB0 + s * (RB1 + s * (RB2 + s * (RB3 + s * (RB4 + s * (RB5 + s * RB6)))));
    let sb = 1.0 + s * (SB1 + s * (SB2 + s * (SB3 + s * (SB4 + s * (SB5 + s * (SB6 + s * SB7))))));
    let (r, big_s) = if ix < SPLIT { (ra, sa) } else { (rb, sb) };
    let z = f32::from_bits(ix & 0xffff_e000);
    let erfc = expf_moderate(-z * z - 0.5625) * expf_moderate((z - x) * (z + x) + r / big_s) / x;
    let y = 1.0 - erfc;
    f32::from_bits(y.to_bits() | (v.to_bits() & 0x8000_0000))
}

/// `out[i] = libm::erff(xs[i])`, bit for bit.
pub(crate) fn erf_slice(xs: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2.
        return unsafe { erf_slice_avx2(xs, out) };
    }
    erf_slice_any(xs, out)
}

/// [`erf_slice_any`] compiled for 8-lane vectors. AVX2 adds wider registers only: no fused
/// multiply-add is ever formed (Rust does not contract), so every lane rounds as before.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn erf_slice_avx2(xs: &[f32], out: &mut [f32]) {
    erf_slice_any(xs, out)
}

#[inline(always)]
fn erf_slice_any(xs: &[f32], out: &mut [f32]) {
    const CHUNK: usize = 64;
    for (xs, out) in xs.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        for (o, &v) in out.iter_mut().zip(xs) {
            *o = erf_near(v);
        }
        let outside = xs.iter().fold(false, |acc, v| {
            acc | !(TINY..MID).contains(&(v.to_bits() & 0x7fff_ffff))
        });
        if !outside {
            continue;
        }
        // The asymptotic branch is costly: gather its inputs and run it on them only.
        let (mut tail, mut at, mut tail_len) = ([0f32; CHUNK], [0u8; CHUNK], 0);
        let mut far = false;
        for (i, &v) in xs.iter().enumerate() {
            let ix = v.to_bits() & 0x7fff_ffff;
            if (MID..FAR).contains(&ix) {
                tail[tail_len] = v;
                at[tail_len] = i as u8;
                tail_len += 1;
            }
            far |= !(TINY..FAR).contains(&ix);
        }
        for t in &mut tail[..tail_len] {
            *t = erf_tail(*t);
        }
        for (&t, &i) in tail[..tail_len].iter().zip(&at) {
            out[i as usize] = t;
        }
        if far {
            // Tiny, beyond 6 or not finite (rare for GELU inputs): erff itself.
            for (o, &v) in out.iter_mut().zip(xs) {
                if !(TINY..FAR).contains(&(v.to_bits() & 0x7fff_ffff)) {
                    *o = candle_core::cpu::erf::erf_f32(v);
                }
            }
        }
    }
}

/// `erff(v)` for `|v| < 1.25` (either polynomial branch, by a select).
#[inline(always)]
fn erf_near(v: f32) -> f32 {
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
    if ix < NEAR {
        near
    } else {
        mid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(xs: &[f32]) {
        let mut out = vec![0f32; xs.len()];
        erf_slice(xs, &mut out);
        let mut plain = vec![0f32; xs.len()];
        erf_slice_any(xs, &mut plain);
        for ((&x, &y), &p) in xs.iter().zip(&out).zip(&plain) {
            assert_eq!(
                y.to_bits(),
                p.to_bits(),
                "erf({x:e}): dispatched and plain differ"
            );
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
        // Every 7th pattern of the asymptotic range [1.25, 6), where expf is rewritten.
        let tail: Vec<f32> = (MID..FAR)
            .step_by(7)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .collect();
        for chunk in tail.chunks(4096) {
            check(chunk);
        }
        let mut edges = Vec::new();
        for b in [TINY, NEAR, MID, SPLIT, FAR] {
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
