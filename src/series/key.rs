//! The 128-bit identity of a series, computed from a decoded line without allocating.
//!
//! A series is (metric type, name, set of tags): `a:1|c|#x,y` and `a:1|c|#y,x,x` are
//! the same series. Each tag is hashed on its own (xxh3), duplicates are skipped,
//! and the tag hashes are combined by wrapping addition, which does not depend on
//! order. The name is hashed with the type as seed, so a counter and a gauge of
//! the same name stay apart, as in Etsy StatsD.
//!
//! Why 128 bits: shards trust the key alone and never compare names and tags on
//! the hot path. With 64-bit keys, a million series would collide with odds of
//! about 1 in 37 million that some pair shares a key; at 128 bits the odds are below 1e-26, so
//! two series are never silently merged. The cost is 8 more bytes per series.

use xxhash_rust::xxh3::{xxh3_128, xxh3_128_with_seed};

use crate::codec::{MetricType, Tags};

/// Identity of a series; equal keys mean the same series.
///
/// Held as two 64-bit halves rather than a `u128`, which x86-64 aligns to 16
/// bytes: a shard's map entry (key and series state) is then 56 bytes, not 64.
/// The derived order is the order of the 128-bit value (high half first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    high: u64,
    low: u64,
}

impl SeriesKey {
    /// The key whose 128-bit value is `value`.
    pub const fn from_u128(value: u128) -> Self {
        SeriesKey {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }

    /// The shard that owns this series, of `shards`.
    ///
    /// The low half scaled to `[0, shards)` by a multiply and a shift: it is
    /// uniform, so this spreads as evenly as a modulo (bias below 1e-13), and
    /// a 64-bit division costs tens of cycles on every routed line.
    #[inline]
    pub fn shard(self, shards: usize) -> usize {
        ((u128::from(self.low) * shards as u128) >> 64) as usize
    }

    /// The raw key value.
    pub const fn get(self) -> u128 {
        ((self.high as u128) << 64) | self.low as u128
    }
}

impl std::hash::Hash for SeriesKey {
    /// The high half alone: it is uniform already (the shards' maps hash it
    /// with the identity, `IdentityHasher`), and unlike the low half it is not
    /// what chose the shard, so the keys of one shard do not share their low
    /// bits, which would leave part of its map's home buckets unused.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.high);
    }
}

/// Computes [`SeriesKey`]s, reusing one scratch buffer for duplicate detection so
/// that hashing allocates nothing once the longest tag list has been seen.
#[derive(Debug, Default)]
pub struct KeyHasher {
    seen_tags: Vec<u128>,
    /// A tag from the name (`k=v`) rewritten as `k:v`, so that it keys like the
    /// same tag sent in `|#`.
    normalised: String,
}

impl KeyHasher {
    /// A hasher with an empty scratch buffer.
    pub fn new() -> Self {
        KeyHasher::default()
    }

    /// The key of the series (`kind`, `name`, `tags`).
    #[inline]
    pub fn key(&mut self, kind: MetricType, name: &str, tags: Tags<'_>) -> SeriesKey {
        Self::with_name_hash(Self::name_hash(kind, name), self.tag_sum(tags, |_| false))
    }

    /// The hash of a series name: seeded with the type, so a counter and a gauge
    /// of the same name stay apart.
    #[inline]
    pub fn name_hash(kind: MetricType, name: &str) -> u128 {
        xxh3_128_with_seed(name.as_bytes(), kind as u64 + 1)
    }

    /// The hash of one tag (`key:value`), as the key sums them.
    #[inline]
    pub fn tag_hash(tag: &str) -> u128 {
        xxh3_128(tag.as_bytes())
    }

    /// The key of a series from its name's hash and the sum of its tags' hashes.
    #[inline]
    pub fn with_name_hash(name_hash: u128, tag_sum: u128) -> SeriesKey {
        // Name and tags never hash alike for the same text: the name hash is seeded
        // with the type, tag hashes are not, so no extra mixing step is needed.
        SeriesKey::from_u128(name_hash ^ tag_sum)
    }

    /// The order-free sum of the hashes of the distinct tags in `tags`, leaving
    /// out those `skip` names (by the tag's full text).
    #[inline]
    pub fn tag_sum(&mut self, tags: Tags<'_>, skip: impl Fn(&str) -> bool) -> u128 {
        // Plain StatsD lines carry none: spare them the scratch and the splits.
        if tags.is_absent() {
            return 0;
        }
        self.seen_tags.clear();
        let mut tag_sum: u128 = 0;
        let mut add = |seen: &mut Vec<u128>, tag: &str| {
            if skip(tag) {
                return;
            }
            let tag_hash = Self::tag_hash(tag);
            // Lines carry a handful of tags; a linear scan beats any set here.
            if !seen.contains(&tag_hash) {
                seen.push(tag_hash);
                tag_sum = tag_sum.wrapping_add(tag_hash);
            }
        };
        for tag in tags.named() {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            self.normalised.clear();
            self.normalised.push_str(key);
            self.normalised.push(':');
            self.normalised.push_str(value);
            add(&mut self.seen_tags, &self.normalised);
        }
        for tag in tags.iter() {
            add(&mut self.seen_tags, tag);
        }
        tag_sum
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{Decoder, Message};

    /// The key of the single metric line `line`.
    fn key_of(line: &str) -> SeriesKey {
        let Some(Ok(Message::Metric(m))) = Decoder::new(1024).lines(line.as_bytes()).next() else {
            panic!("{line} is not a metric line");
        };
        KeyHasher::new().key(m.kind, m.name, m.tags)
    }

    #[test]
    fn tag_order_and_duplicates_do_not_change_the_key() {
        let key = key_of("a:1|c|#x:1,y:2");
        assert_eq!(key_of("a:5|c|#y:2,x:1"), key);
        assert_eq!(key_of("a:1|c|#y:2,x:1,y:2,x:1"), key);
        assert_eq!(key_of("a:1|c|@0.5|#x:1,,y:2"), key);
    }

    #[test]
    fn name_type_and_each_tag_set_make_distinct_series() {
        let keys = [
            key_of("a:1|c"),
            key_of("a:1|g"),
            key_of("b:1|c"),
            key_of("a:1|c|#x"),
            key_of("a:1|c|#x,y"),
            key_of("a:1|c|#xy"),
            key_of("a:1|c|#x:y"),
            key_of("a:1|ms"),
            key_of("a:1|h"),
            key_of("a:1|d"),
            key_of("a:x|s"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn shards_spread_evenly() {
        let mut hasher = KeyHasher::new();
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            let name = format!("metric.{i}");
            counts[hasher
                .key(MetricType::Counter, &name, Tags::default())
                .shard(4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn every_key_falls_in_a_shard_and_the_extremes_reach_the_end_shards() {
        for shards in [1, 2, 3, 16, 64] {
            assert_eq!(SeriesKey::from_u128(0).shard(shards), 0);
            assert_eq!(
                SeriesKey::from_u128(u64::MAX as u128).shard(shards),
                shards - 1
            );
            assert_eq!(SeriesKey::from_u128(u128::MAX).shard(shards), shards - 1);
        }
    }

    proptest! {
        #[test]
        fn any_permutation_with_repeats_gives_the_same_key(
            tags in proptest::collection::vec("[a-z]{1,4}(:[0-9]{1,2})?", 0..8),
            seed in any::<u64>(),
        ) {
            let mut shuffled = tags.clone();
            shuffled.extend(tags.iter().take(seed as usize % (tags.len() + 1)).cloned());
            let n = shuffled.len();
            if n > 1 {
                shuffled.rotate_left(seed as usize % n);
                shuffled.swap(0, (seed as usize / 7) % n);
            }
            prop_assert_eq!(
                key_of(&format!("m:1|c|#{}", shuffled.join(","))),
                key_of(&format!("m:1|c|#{}", tags.join(",")))
            );
        }
    }
}
