//! Stable, platform-independent hashing used for hidden rules, cue flips, splits and the pinned
//! generator fingerprints.
//!
//! The standard library's hashers are not guaranteed stable across Rust releases, so this module
//! defines its own: SplitMix64 finalisation for small integer keys and FNV-1a (64 bit) for byte
//! streams.

/// Domain-separation salts, one per use of [`key_hash`], so that the different hashes of the same
/// operands are independent.
pub mod salt {
    /// The split (train / probe / eval) of an operand tuple.
    pub const SPLIT: u64 = 0x5350_4c49_545f_5631;
    /// Whether an addition pair's true rule is the reversed one.
    pub const HIDDEN_RULE: u64 = 0x4849_4444_454e_5f52;
    /// Whether the visible tag of an addition pair tells the truth.
    pub const CUE: u64 = 0x4355_455f_5452_5554;
}

/// SplitMix64 finaliser: a bijective, well-mixing map on `u64`.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a salt and a sequence of integer keys (order-sensitive).
pub fn key_hash(salt: u64, keys: &[u64]) -> u64 {
    let mut h = mix64(salt);
    for &k in keys {
        h = mix64(h ^ mix64(k));
    }
    h
}

/// Maps a hash to a uniform number in `[0, 1)` (53 bits of precision).
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Incremental FNV-1a (64 bit) hasher over bytes.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Feeds bytes into the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Feeds a string followed by a separator byte (so that `"ab","c"` and `"a","bc"` differ).
    pub fn write_field(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(&[0x1f]);
    }

    /// The current hash value.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        let mut h = Fnv64::default();
        h.write(b"");
        assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv64::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv64::default();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn key_hash_is_order_and_salt_sensitive() {
        assert_ne!(key_hash(1, &[2, 3]), key_hash(1, &[3, 2]));
        assert_ne!(key_hash(1, &[2, 3]), key_hash(2, &[2, 3]));
        assert_eq!(key_hash(7, &[2, 3]), key_hash(7, &[2, 3]));
    }

    #[test]
    fn unit_is_roughly_uniform() {
        let n = 20_000u64;
        let below = (0..n).filter(|&i| unit(key_hash(9, &[i])) < 0.25).count();
        let share = below as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.015, "share {share}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&unit(key_hash(3, &[i])))));
    }
}
