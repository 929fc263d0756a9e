//! The Unleash-compatible stickiness hash (REFERENCE.md section 2): murmur3 x86_32 over
//! `"{group_id}:{targeting_key}"`, reduced to a bucket in `1..=modulus`.
//!
//! murmur3 is written here rather than taken from the `murmur3` crate: that crate hashes an
//! `io::Read`, which costs a reader and error handling per call on the hottest path of flag
//! evaluation; a function over byte slices is a few dozen lines and easy to check against the
//! published vectors. It takes its input in pieces, so the `"{group_id}:"` prefix and the
//! targeting key hash as one string without being joined: a percentage decision allocates
//! and copies nothing.

/// Seed of the percentage (rollout) hash.
pub const ROLLOUT_SEED: u32 = 0;
/// Seed of the variant hash (Unleash's `VARIANT_HASH_SEED`).
pub const VARIANT_SEED: u32 = 86_028_157;

/// murmur3 x86 32-bit (Austin Appleby's MurmurHash3_x86_32), little-endian blocks.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut murmur = Murmur3::new(seed);
    murmur.write(data);
    murmur.finish()
}

/// murmur3 fed in pieces, so `"{group_id}:"` and the targeting key hash as one string
/// without being copied into one.
struct Murmur3 {
    h: u32,
    /// Bytes of a block not yet complete, waiting for the next piece.
    pending: [u8; 4],
    pending_len: usize,
    total_len: usize,
}

impl Murmur3 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    fn new(seed: u32) -> Self {
        Murmur3 {
            h: seed,
            pending: [0; 4],
            pending_len: 0,
            total_len: 0,
        }
    }

    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(Self::C1)
            .rotate_left(15)
            .wrapping_mul(Self::C2)
    }

    fn block(&mut self, k: u32) {
        self.h ^= Self::scramble(k);
        self.h = self
            .h
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.total_len += bytes.len();
        if self.pending_len > 0 {
            let take = (4 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 4 {
                return;
            }
            self.block(u32::from_le_bytes(self.pending));
            self.pending_len = 0;
        }
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            self.block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        let tail = blocks.remainder();
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    fn finish(self) -> u32 {
        let mut h = self.h;
        if self.pending_len > 0 {
            let k = self.pending[..self.pending_len]
                .iter()
                .rev()
                .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
            h ^= Self::scramble(k);
        }
        // The algorithm mixes in the length modulo 2^32: the truncation is the specification.
        h ^= self.total_len as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// Unleash's `normalizedHash`: `murmur3("{group_id}:{targeting_key}", seed) % modulus + 1`,
/// a bucket in `1..=modulus`. `modulus` must not be zero.
pub fn normalized_hash(group_id: &str, targeting_key: &str, modulus: u32, seed: u32) -> u32 {
    let mut murmur = Murmur3::new(seed);
    murmur.write(group_id.as_bytes());
    murmur.write(b":");
    murmur.write(targeting_key.as_bytes());
    murmur.finish() % modulus + 1
}

/// Whether `targeting_key` falls inside a rollout of `percentage` (0..=100) for `group_id`:
/// `percentage > 0 && normalized_hash(group_id, key, 100, 0) <= percentage`.
pub fn in_rollout(group_id: &str, targeting_key: &str, percentage: u32) -> bool {
    percentage > 0 && normalized_hash(group_id, targeting_key, 100, ROLLOUT_SEED) <= percentage
}

/// [`normalized_hash`] with the `"{group_id}:"` prefix already encoded, as compiled flags keep it.
pub(crate) fn normalized_joined(prefix: &[u8], key: &str, modulus: u32, seed: u32) -> u32 {
    let mut murmur = Murmur3::new(seed);
    murmur.write(prefix);
    murmur.write(key.as_bytes());
    murmur.finish() % modulus + 1
}

/// Picks a weighted variant the way Unleash does: a bucket in `1..=total` from the variant
/// seed, then the first variant whose cumulative weight reaches it. `cumulative` holds running
/// totals (its last element is the total weight); returns an index into it.
pub(crate) fn pick_weighted(prefix: &[u8], key: &str, cumulative: &[u32]) -> Option<usize> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let target = normalized_joined(prefix, key, total, VARIANT_SEED);
    cumulative.iter().position(|&reach| reach >= target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_implementation() {
        // Values from the reference C implementation (SMHasher) and its common test suites.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"a", 0), 0x3c25_69b2);
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
        assert_eq!(murmur3_x86_32(b"abcd", 0), 0x43ed_676a);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn unleash_test_vectors_give_the_published_buckets() {
        assert_eq!(normalized_hash("gr1", "123", 100, ROLLOUT_SEED), 73);
        assert_eq!(normalized_hash("groupX", "999", 100, ROLLOUT_SEED), 25);
    }

    #[test]
    fn hashing_in_pieces_equals_hashing_the_joined_string() {
        let text = "broadcast.category.performance:0190b2c4-7a51-7d3e-9c1f-4b2f1e0a9d88";
        for split in 0..=text.len() {
            let (group, key) = text.split_at(split);
            let mut murmur = Murmur3::new(VARIANT_SEED);
            murmur.write(group.as_bytes());
            murmur.write(key.as_bytes());
            assert_eq!(
                murmur.finish(),
                murmur3_x86_32(text.as_bytes(), VARIANT_SEED),
                "{split}"
            );
        }
        let expected = murmur3_x86_32(b"group:key", 0) % 100 + 1;
        assert_eq!(normalized_hash("group", "key", 100, 0), expected);
    }

    #[test]
    fn a_key_inside_ten_percent_stays_inside_at_twenty() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("client-{i}")).collect();
        let inside_10 = keys
            .iter()
            .filter(|k| in_rollout("dashboard.transport", k, 10))
            .count();
        for key in &keys {
            if in_rollout("dashboard.transport", key, 10) {
                assert!(in_rollout("dashboard.transport", key, 20), "{key} left");
            }
        }
        // Roughly 10% (a loose band: the hash is uniform, not exact).
        assert!((800..=1200).contains(&inside_10), "inside 10%: {inside_10}");
    }

    #[test]
    fn zero_percent_admits_nobody_and_hundred_admits_everybody() {
        for i in 0..1000 {
            let key = i.to_string();
            assert!(!in_rollout("g", &key, 0));
            assert!(in_rollout("g", &key, 100));
        }
    }

    #[test]
    fn weighted_variants_roughly_follow_their_weights() {
        // Weights 200 / 300 / 500 out of 1000.
        let cumulative = [200, 500, 1000];
        let mut counts = [0usize; 3];
        for i in 0..10_000 {
            let key = format!("user-{i}");
            let index = pick_weighted(b"exp:", &key, &cumulative).expect("weights");
            counts[index] += 1;
        }
        assert!((1700..=2300).contains(&counts[0]), "{counts:?}");
        assert!((2600..=3400).contains(&counts[1]), "{counts:?}");
        assert!((4500..=5500).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn zero_total_weight_picks_nothing() {
        assert_eq!(pick_weighted(b"g:", "k", &[0, 0]), None);
        assert_eq!(pick_weighted(b"g:", "k", &[]), None);
    }
}
