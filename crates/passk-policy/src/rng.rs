//! Seeded random streams for weight initialisation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a bijective mix of one word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a hash of a string (stable across platforms and releases).
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A ChaCha8 generator keyed by `seed` on the stream named by `stream`.
pub(crate) fn seeded(seed: u64, stream: &[u64]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut state = mix(seed);
    for word in stream {
        state = mix(state ^ mix(*word));
    }
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(state.wrapping_add(i as u64)).to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = seeded(1, &[2]).random();
        let b: u64 = seeded(1, &[2]).random();
        let c: u64 = seeded(1, &[3]).random();
        let d: u64 = seeded(2, &[2]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_ne!(hash_str("wte"), hash_str("wpe"));
    }
}
