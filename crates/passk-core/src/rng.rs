//! Seeded random number generators with independent, named streams.
//!
//! Every random draw in the project comes from [`seeded`]`(seed, stream)`, where `stream` is a
//! path of ids (for example `[run_id, step, prompt]`). Two different `(seed, stream)` pairs give
//! generators whose outputs are, for all practical purposes, independent.
//!
//! # Derivation (stable; changing it changes every result)
//! With `mix(x)` the SplitMix64 finaliser
//! (`x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; x *= 0x94D049BB133111EB; x ^= x >> 31`)
//! and `γ = 0x9E3779B97F4A7C15`:
//!
//! 1. `h = mix(seed ^ 0x7061_7373_6b2d_636f)` (the domain tag is ASCII `"passk-co"`);
//! 2. for each stream id `s` in order: `h = mix(h + γ) ^ mix(s + 2γ)`, then `h = mix(h)`;
//! 3. `h = mix(h ^ len(stream))`, so `[]` and `[0]` differ;
//! 4. the 32-byte ChaCha key is the little-endian bytes of `mix(h + γ)`, `mix(h + 2γ)`,
//!    `mix(h + 3γ)`, `mix(h + 4γ)` (wrapping arithmetic throughout);
//! 5. the generator is `ChaCha8Rng::from_seed(key)` (stream 0, position 0).
//!
//! Policy weights are initialised by a second, older derivation, [`weight_init`], keyed by
//! the parameter's name; it is kept because every committed result was initialised with it.
//!
//! This uses no seeding helper of `rand`, so it does not change when `rand` changes; ChaCha8's
//! output for a key is fixed by the cipher. A regression test pins the first outputs.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const DOMAIN: u64 = 0x7061_7373_6b2d_636f;

/// SplitMix64 finaliser (a bijection on u64 with good avalanche).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The 32-byte ChaCha key derived from `(seed, stream)` as documented in the module docs.
pub fn derive_key(seed: u64, stream: &[u64]) -> [u8; 32] {
    let mut h = mix(seed ^ DOMAIN);
    for &s in stream {
        h = mix(h.wrapping_add(GAMMA)) ^ mix(s.wrapping_add(GAMMA.wrapping_mul(2)));
        h = mix(h);
    }
    h = mix(h ^ stream.len() as u64);
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        let word = mix(h.wrapping_add(GAMMA.wrapping_mul(i as u64 + 1)));
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    key
}

/// A ChaCha8 generator for `seed` and the stream path `stream`; see the module docs for the
/// derivation. The same arguments always give the same sequence.
pub fn seeded(seed: u64, stream: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(derive_key(seed, stream))
}

/// A uniform index in `0..n` from `rng`, by Lemire's multiply-and-reject method on `next_u64`
/// (independent of `rand`'s range-sampling internals, hence stable across `rand` versions).
///
/// # Panics
/// Panics when `n == 0`.
pub fn uniform_index<R: RngCore + ?Sized>(rng: &mut R, n: usize) -> usize {
    assert!(n > 0, "uniform_index needs n > 0");
    let n = n as u64;
    let threshold = n.wrapping_neg() % n; // (2^64 − n) mod n
    loop {
        let m = rng.next_u64() as u128 * n as u128;
        if (m as u64) >= threshold {
            return (m >> 64) as usize;
        }
    }
}

/// A uniform `f64` in `[0, 1)` with 53 random bits from `next_u64` (stable across `rand` versions).
pub fn uniform_f64<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// 64-bit FNV-1a hash of `name` (stable across platforms and releases): the stream id of a
/// named parameter in [`weight_init`].
pub fn name_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The generator that initialises the policy weight named `name` for `seed`.
///
/// A second derivation beside [`seeded`], kept because every committed warm start and result
/// was initialised with it: with `sm(z) = mix(z + γ)` (one SplitMix64 step),
/// `h = sm(sm(seed) ^ sm(name_id(name)))`, and the ChaCha8 key is the little-endian bytes of
/// `sm(h)`, `sm(h + 1)`, `sm(h + 2)`, `sm(h + 3)`. Changing it changes every initial weight.
pub fn weight_init(seed: u64, name: &str) -> ChaCha8Rng {
    let sm = |z: u64| mix(z.wrapping_add(GAMMA));
    let h = sm(sm(seed) ^ sm(name_id(name)));
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&sm(h.wrapping_add(i as u64)).to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64, stream: &[u64]) -> u64 {
        seeded(seed, stream).next_u64()
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = seeded(7, &[1, 2, 3]);
        let mut b = seeded(7, &[1, 2, 3]);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_differ() {
        let base = first(7, &[1, 2]);
        assert_ne!(base, first(8, &[1, 2]));
        assert_ne!(base, first(7, &[2, 1]));
        assert_ne!(base, first(7, &[1, 2, 0]));
        assert_ne!(first(7, &[]), first(7, &[0]));
        assert_ne!(first(0, &[]), first(0, &[0, 0]));
        // Many nearby streams give distinct keys.
        let mut seen = std::collections::HashSet::new();
        for s in 0..2_000u64 {
            assert!(seen.insert(derive_key(1, &[s])));
            assert!(seen.insert(derive_key(1, &[0, s])));
        }
    }

    #[test]
    fn derivation_is_pinned() {
        // Regression pin: if this changes, every seeded result of the project changes.
        let key = derive_key(42, &[1, 2]);
        let again = derive_key(42, &[1, 2]);
        assert_eq!(key, again);
        let got = first(42, &[1, 2]);
        assert_eq!(got, PINNED_FIRST_U64, "rng derivation changed: {got:#x}");
    }

    const PINNED_FIRST_U64: u64 = 0x761c_e8a6_174a_8e39;

    #[test]
    fn weight_init_derivation_is_pinned() {
        // Regression pins: if these change, every initial weight (and result) changes.
        let first = |seed, name| weight_init(seed, name).next_u64();
        assert_eq!(first(0, "wte"), 0x3507_579c_62b6_f936);
        assert_eq!(first(1, "blocks.0.attn.q"), 0x8374_5901_4c07_8c21);
        assert_eq!(first(u64::MAX, ""), 0x490b_f210_f523_30f4);
        assert_ne!(name_id("wte"), name_id("wpe"));
        assert_ne!(first(0, "wte"), first(0, "wpe"));
    }

    #[test]
    fn uniform_index_is_uniform_and_in_range() {
        let mut rng = seeded(3, &[9]);
        let n = 7;
        let mut counts = [0usize; 7];
        let draws = 70_000;
        for _ in 0..draws {
            let i = uniform_index(&mut rng, n);
            counts[i] += 1;
        }
        for &c in &counts {
            // Expected 10_000, sd ≈ 93.
            assert!((c as i64 - 10_000).abs() < 600, "counts {counts:?}");
        }
        let x = uniform_f64(&mut rng);
        assert!((0.0..1.0).contains(&x));
    }
}
