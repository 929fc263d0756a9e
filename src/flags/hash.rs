//! The Unleash-compatible stickiness hash (REFERENCE.md section 2): murmur3 x86_32 over
//! `"{group_id}:{targeting_key}"`, reduced to a bucket in `1..=modulus`.
//!
//! murmur3 is written here rather than taken from the `murmur3` crate: that crate hashes an
//! `io::Read`, which costs a reader and error handling per call on the hottest path of flag
//! evaluation; a function over a byte slice is thirty lines and easy to check against the
//! published vectors. Hashing joins the group prefix and the key in a stack buffer, so a
//! percentage decision allocates nothing for keys of ordinary length.

/// Seed of the percentage (rollout) hash.
pub const ROLLOUT_SEED: u32 = 0;
/// Seed of the variant hash (Unleash's `VARIANT_HASH_SEED`).
pub const VARIANT_SEED: u32 = 86_028_157;

/// Joined `prefix + key` inputs up to this many bytes are hashed without allocating.
const STACK_BYTES: usize = 256;

/// murmur3 x86 32-bit (Austin Appleby's MurmurHash3_x86_32), little-endian blocks.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let scramble = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);

    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= scramble(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .rev()
            .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
        h ^= scramble(k);
    }
    // The algorithm mixes in the length modulo 2^32, so the truncation is the specification.
    let len = data.len() as u32;
    h ^= len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Unleash's `normalizedHash`: `murmur3("{group_id}:{targeting_key}", seed) % modulus + 1`,
/// a bucket in `1..=modulus`. `modulus` must not be zero.
pub fn normalized_hash(group_id: &str, targeting_key: &str, modulus: u32, seed: u32) -> u32 {
    let mut prefix = [0u8; STACK_BYTES];
    if group_id.len() < STACK_BYTES {
        prefix[..group_id.len()].copy_from_slice(group_id.as_bytes());
        prefix[group_id.len()] = b':';
        normalized_joined(&prefix[..=group_id.len()], targeting_key, modulus, seed)
    } else {
        let joined = format!("{group_id}:");
        normalized_joined(joined.as_bytes(), targeting_key, modulus, seed)
    }
}

/// Whether `targeting_key` falls inside a rollout of `percentage` (0..=100) for `group_id`:
/// `percentage > 0 && normalized_hash(group_id, key, 100, 0) <= percentage`.
pub fn in_rollout(group_id: &str, targeting_key: &str, percentage: u32) -> bool {
    percentage > 0 && normalized_hash(group_id, targeting_key, 100, ROLLOUT_SEED) <= percentage
}

/// [`normalized_hash`] with the `"{group_id}:"` prefix already encoded, as compiled flags keep it.
pub(crate) fn normalized_joined(prefix: &[u8], key: &str, modulus: u32, seed: u32) -> u32 {
    let total = prefix.len() + key.len();
    let hash = if total <= STACK_BYTES {
        let mut buf = [0u8; STACK_BYTES];
        buf[..prefix.len()].copy_from_slice(prefix);
        buf[prefix.len()..total].copy_from_slice(key.as_bytes());
        murmur3_x86_32(&buf[..total], seed)
    } else {
        let mut joined = Vec::with_capacity(total);
        joined.extend_from_slice(prefix);
        joined.extend_from_slice(key.as_bytes());
        murmur3_x86_32(&joined, seed)
    };
    hash % modulus + 1
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
    fn long_inputs_hash_the_same_as_through_the_stack_buffer() {
        let group = "g".repeat(300);
        let key = "k".repeat(300);
        let expected = murmur3_x86_32(format!("{group}:{key}").as_bytes(), 0) % 100 + 1;
        assert_eq!(normalized_hash(&group, &key, 100, 0), expected);
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
