//! Native histograms as readers see them: sparse exponential buckets, cumulative
//! since the series appeared, and how windows are added to them.
//!
//! A [`NativeHistogram`] holds its populated buckets only, as sorted `(key,
//! count)` lists for positive and negative values, plus the zero bucket. Counts
//! are floats because each sample counts 1/rate; when every count is a whole
//! number the exposition writes an integer histogram, otherwise a float one.
//!
//! Buckets are added per window from the keys the kernel computed at the
//! configured schema ([`crate::kernels::Kernels::native_keys`]). A histogram
//! whose populated buckets pass its limit lowers its schema by one, merging each
//! pair of buckets, until it fits: what Prometheus' clients do, and exact,
//! because each schema's bounds are every other bound of the next one. Keys of
//! a higher schema map to a lower one by the same rule, so a window keyed at
//! the configured schema adds exactly into a histogram already lowered.
//!
//! The span layout of the exposition and of remote write ([`Span`],
//! [`NativeHistogram::spans`]) lives here so both encode the same buckets.

use crate::kernels::native::{Layout, MIN_SCHEMA, ZERO_BUCKET};

/// A cumulative native histogram of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    /// The schema in use: the configured one, or lower once lowered to fit.
    pub schema: i8,
    /// Values with `|v| <=` this count in the zero bucket.
    pub zero_threshold: f64,
    /// Weight in the zero bucket.
    pub zero_count: f64,
    /// Sum of 1/rate over every sample.
    pub count: f64,
    /// Sum of value/rate over every sample.
    pub sum: f64,
    /// Positive buckets: `(key, count)`, keys strictly increasing, counts non-zero.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets (keys of `|v|`), as `positive`.
    pub negative: Vec<(i32, f64)>,
}

/// A run of consecutive buckets in the exposition's layout: `offset` buckets
/// after the previous span's end (after key 0 for the first), `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Gap before the span, in buckets (the first span's offset is its first key).
    pub offset: i32,
    /// Buckets in the span.
    pub length: u32,
}

/// Buffers a window's counting reuses from series to series.
#[derive(Debug, Default)]
pub struct KeyScratch {
    positive: Vec<i32>,
    negative: Vec<i32>,
    dense: Vec<u32>,
    merged: Vec<(i32, f64)>,
}

impl NativeHistogram {
    /// An empty histogram of `schema`.
    pub fn new(schema: i8, zero_threshold: f64) -> Self {
        NativeHistogram {
            schema,
            zero_threshold,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive: Vec::new(),
            negative: Vec::new(),
        }
    }

    /// Populated buckets, both signs (the zero bucket not included).
    pub fn buckets(&self) -> usize {
        self.positive.len() + self.negative.len()
    }

    /// True when every count is a whole number that a 64-bit integer holds
    /// exactly (an integer histogram); false when some sample had a rate.
    pub fn is_integral(&self) -> bool {
        let whole = |c: f64| c.fract() == 0.0 && c < (1u64 << 53) as f64;
        whole(self.count)
            && whole(self.zero_count)
            && self.positive.iter().all(|&(_, c)| whole(c))
            && self.negative.iter().all(|&(_, c)| whole(c))
    }

    /// Adds one window of samples: `values` and their `keys` at `key_schema`
    /// (at least this histogram's schema), each sample weighing `weight` in
    /// its bucket; `(count, sum)` are the window's sums of 1/rate and of
    /// value/rate.
    pub fn add_window(
        &mut self,
        values: &[f64],
        keys: &[i32],
        key_schema: i8,
        weight: f64,
        (count, sum): (f64, f64),
        scratch: &mut KeyScratch,
    ) {
        debug_assert_eq!(values.len(), keys.len());
        debug_assert!(key_schema >= self.schema);
        let shift = (key_schema - self.schema) as u32;
        scratch.positive.clear();
        scratch.negative.clear();
        let mut zeros = 0usize;
        for (&key, &value) in keys.iter().zip(values) {
            if key == ZERO_BUCKET {
                zeros += 1;
            } else if value > 0.0 {
                scratch.positive.push(lower_key(key, shift));
            } else {
                scratch.negative.push(lower_key(key, shift));
            }
        }
        self.zero_count += zeros as f64 * weight;
        self.count += count;
        self.sum += sum;
        let KeyScratch {
            positive,
            negative,
            dense,
            merged,
        } = scratch;
        add_counted(&mut self.positive, positive, weight, dense, merged);
        add_counted(&mut self.negative, negative, weight, dense, merged);
    }

    /// Adds `weight` (possibly negative: a correction) to the bucket of `value`,
    /// without touching count or sum.
    pub fn adjust(&mut self, value: f64, weight: f64) {
        let key = Layout::of(self.schema).cell_key(value, self.zero_threshold);
        if key == ZERO_BUCKET {
            self.zero_count += weight;
            return;
        }
        let side = if value > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        add_to(side, key, weight);
    }

    /// Adds one sample of `value` weighing `weight` (1/rate): its bucket, count
    /// and sum, lowering the schema if the bucket is one too many.
    pub fn record(&mut self, value: f64, weight: f64, max_buckets: usize) {
        self.adjust(value, weight);
        self.count += weight;
        self.sum += value * weight;
        if self.buckets() > max_buckets {
            self.fit(max_buckets);
        }
    }

    /// Empties the histogram, keeping its schema and its lists' room.
    pub fn clear(&mut self) {
        self.zero_count = 0.0;
        self.count = 0.0;
        self.sum = 0.0;
        self.positive.clear();
        self.negative.clear();
    }

    /// Adds `other` (same zero threshold) bucket by bucket, at the lower of the
    /// two schemas, then lowers the schema until `max_buckets` fit.
    pub fn merge(&mut self, other: &NativeHistogram, max_buckets: usize) {
        while self.schema > other.schema {
            self.lower_schema();
        }
        let shift = (other.schema - self.schema) as u32;
        for &(key, count) in &other.positive {
            add_to(&mut self.positive, lower_key(key, shift), count);
        }
        for &(key, count) in &other.negative {
            add_to(&mut self.negative, lower_key(key, shift), count);
        }
        self.zero_count += other.zero_count;
        self.count += other.count;
        self.sum += other.sum;
        self.fit(max_buckets);
    }

    /// What was added to this histogram since it was `earlier` (the same
    /// series' histogram at an earlier window): bucket by bucket, at the lower
    /// of the two schemas. `None` when `earlier` cannot be an earlier state of
    /// this one (another zero threshold, or more samples than now: a reset).
    pub fn since(&self, earlier: &NativeHistogram) -> Option<NativeHistogram> {
        if earlier.zero_threshold != self.zero_threshold || earlier.count > self.count {
            return None;
        }
        let negated = NativeHistogram {
            zero_count: -earlier.zero_count,
            count: -earlier.count,
            sum: -earlier.sum,
            positive: earlier.positive.iter().map(|&(k, c)| (k, -c)).collect(),
            negative: earlier.negative.iter().map(|&(k, c)| (k, -c)).collect(),
            ..earlier.clone()
        };
        let mut added = self.clone();
        added.merge(&negated, usize::MAX);
        // What is left of a bucket nothing was added to is rounding noise.
        let tiny = |c: f64| c.abs() < 1e-9;
        added.positive.retain(|&(_, c)| !tiny(c));
        added.negative.retain(|&(_, c)| !tiny(c));
        if tiny(added.zero_count) {
            added.zero_count = 0.0;
        }
        Some(added)
    }

    /// An estimate of quantile `q` (in `[0, 1]`): the bucket where the
    /// cumulative count reaches `q * count`, interpolated linearly inside it
    /// (as Prometheus' `histogram_quantile`), then kept within `[min, max]`,
    /// the extremes actually seen. NaN when empty.
    pub fn quantile(&self, q: f64, min: f64, max: f64) -> f64 {
        let total = self.zero_count
            + self.positive.iter().map(|&(_, c)| c).sum::<f64>()
            + self.negative.iter().map(|&(_, c)| c).sum::<f64>();
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let layout = Layout::of(self.schema);
        // In value order: negative buckets from the largest key down, the zero
        // bucket, then positive buckets up. Each as (lower, upper, count).
        let negative = self.negative.iter().rev().map(|&(key, count)| {
            (
                -layout.upper_bound(key),
                -layout.upper_bound(key - 1),
                count,
            )
        });
        let zero = std::iter::once((-self.zero_threshold, self.zero_threshold, self.zero_count));
        let positive = self
            .positive
            .iter()
            .map(|&(key, count)| (layout.upper_bound(key - 1), layout.upper_bound(key), count));
        let mut below = 0.0;
        let mut estimate = max;
        for (lower, upper, count) in negative.chain(zero).chain(positive) {
            if count <= 0.0 {
                continue;
            }
            if below + count >= rank {
                let fraction = ((rank - below) / count).clamp(0.0, 1.0);
                estimate = lower + (upper - lower) * fraction;
                break;
            }
            below += count;
        }
        estimate.clamp(min, max)
    }

    /// Lowers the schema one step at a time until at most `max_buckets`
    /// buckets are populated (or the lowest schema is reached).
    pub fn fit(&mut self, max_buckets: usize) {
        while self.buckets() > max_buckets && self.schema > MIN_SCHEMA {
            self.lower_schema();
        }
    }

    /// One schema lower: each pair of buckets `2j - 1, 2j` becomes bucket `j`.
    fn lower_schema(&mut self) {
        self.schema -= 1;
        merge_pairs(&mut self.positive);
        merge_pairs(&mut self.negative);
    }

    /// The spans and counts of `buckets` (either sign) in the exposition's
    /// layout: a gap of one or two empty buckets is cheaper written as zero
    /// counts than as a new span, as Prometheus' clients write it.
    pub fn spans(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
        let mut spans: Vec<Span> = Vec::new();
        let mut counts = Vec::with_capacity(buckets.len());
        let mut next_key = 0i32;
        for (i, &(key, count)) in buckets.iter().enumerate() {
            let gap = key - next_key;
            match spans.last_mut() {
                Some(span) if i > 0 && gap <= 2 => {
                    counts.extend(std::iter::repeat_n(0.0, gap as usize));
                    span.length += gap as u32 + 1;
                }
                _ => spans.push(Span {
                    offset: gap,
                    length: 1,
                }),
            }
            counts.push(count);
            next_key = key + 1;
        }
        (spans, counts)
    }

    /// Integral `counts` as the wire formats write them: each less the one
    /// before it (the first less zero).
    pub fn deltas(counts: &[f64]) -> Vec<i64> {
        let mut previous = 0i64;
        counts
            .iter()
            .map(|&c| {
                let c = c as i64;
                let delta = c - previous;
                previous = c;
                delta
            })
            .collect()
    }
}

/// `key` at a schema `shift` steps lower: `ceil(key / 2^shift)`.
fn lower_key(key: i32, shift: u32) -> i32 {
    ((i64::from(key) + (1 << shift) - 1) >> shift) as i32
}

/// Adds `weight` to the bucket `key` of the sorted list `side`.
fn add_to(side: &mut Vec<(i32, f64)>, key: i32, weight: f64) {
    match side.binary_search_by_key(&key, |&(k, _)| k) {
        Ok(i) => side[i].1 += weight,
        Err(i) => side.insert(i, (key, weight)),
    }
}

/// Adds `weight` per occurrence of each key in `keys` to the sorted `side`,
/// in one merge of the two sorted lists (through `merged`, whose buffer the
/// two then swap). Keys are counted in a dense array when they span a narrow
/// range (the usual window), by sorting otherwise.
fn add_counted(
    side: &mut Vec<(i32, f64)>,
    keys: &mut [i32],
    weight: f64,
    dense: &mut Vec<u32>,
    merged: &mut Vec<(i32, f64)>,
) {
    let (Some(&low), Some(&high)) = (keys.iter().min(), keys.iter().max()) else {
        return;
    };
    merged.clear();
    let mut old = side.iter().copied().peekable();
    let mut add = |key: i32, hits: f64| {
        while let Some((k, c)) = old.next_if(|&(k, _)| k < key) {
            merged.push((k, c));
        }
        match old.next_if(|&(k, _)| k == key) {
            Some((k, c)) => merged.push((k, c + hits * weight)),
            None => merged.push((key, hits * weight)),
        }
    };
    let range = (i64::from(high) - i64::from(low) + 1) as usize;
    if range <= 4096.max(keys.len()) {
        dense.clear();
        dense.resize(range, 0);
        for &key in keys.iter() {
            dense[(key - low) as usize] += 1;
        }
        for (i, &hits) in dense.iter().enumerate() {
            if hits > 0 {
                add(low + i as i32, f64::from(hits));
            }
        }
    } else {
        keys.sort_unstable();
        for run in keys.chunk_by(|a, b| a == b) {
            add(run[0], run.len() as f64);
        }
    }
    merged.extend(old);
    std::mem::swap(side, merged);
}

/// Merges each pair of buckets `2j - 1, 2j` into bucket `j` (one schema lower).
fn merge_pairs(side: &mut Vec<(i32, f64)>) {
    let mut merged: Vec<(i32, f64)> = Vec::with_capacity(side.len());
    for &(key, count) in side.iter() {
        let key = lower_key(key, 1);
        match merged.last_mut() {
            Some((last, total)) if *last == key => *total += count,
            _ => merged.push((key, count)),
        }
    }
    *side = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Kernels;

    fn add(h: &mut NativeHistogram, values: &[f64], key_schema: i8, weight: f64) {
        let mut keys = vec![0; values.len()];
        let layout = Layout::of(key_schema);
        Kernels::SCALAR.native_keys(values, layout, h.zero_threshold, &mut keys);
        let totals = (
            values.len() as f64 * weight,
            values.iter().sum::<f64>() * weight,
        );
        let scratch = &mut KeyScratch::default();
        h.add_window(values, &keys, key_schema, weight, totals, scratch);
    }

    #[test]
    fn windows_accumulate_into_sorted_buckets() {
        let mut h = NativeHistogram::new(3, 0.0);
        add(&mut h, &[1.0, 2.0, 2.0, 0.0, -1.0], 3, 1.0);
        add(&mut h, &[1.0, 3.0], 3, 1.0);
        assert_eq!(h.positive, [(0, 2.0), (8, 2.0), (13, 1.0)]);
        assert_eq!(h.negative, [(0, 1.0)]);
        assert_eq!((h.zero_count, h.count, h.sum), (1.0, 7.0, 8.0));
        assert!(h.is_integral());
        add(&mut h, &[1.0], 3, 10.0);
        assert_eq!(h.positive[0], (0, 12.0));
        add(&mut h, &[1.0], 3, 1.0 / 0.3);
        assert!(!h.is_integral());
    }

    #[test]
    fn counting_by_dense_array_or_by_sort_matches_one_sample_at_a_time() {
        // A narrow window (dense counting) and one spanning 1e-300..1e300 (sorted).
        for values in [
            vec![3.0, 3.1, -7.0, 0.0, 12.0, 3.0, 5.5],
            vec![1e-300, -1e-200, 1.0, 1e300, 1e300, 7.0, 0.0, -1e100],
        ] {
            let mut windowed = NativeHistogram::new(3, 0.0);
            add(&mut windowed, &values, 3, 1.0);
            add(&mut windowed, &values[1..], 3, 2.0);
            let mut one_by_one = NativeHistogram::new(3, 0.0);
            for &v in values.iter().chain(&values[1..]) {
                one_by_one.adjust(v, 1.0);
            }
            for &v in &values[1..] {
                one_by_one.adjust(v, 1.0);
            }
            assert_eq!(windowed.positive, one_by_one.positive);
            assert_eq!(windowed.negative, one_by_one.negative);
            assert_eq!(windowed.zero_count, one_by_one.zero_count);
        }
    }

    #[test]
    fn lowering_the_schema_merges_pairs_exactly() {
        // The same values keyed at schema 3 and lowered to 1, or keyed at 1.
        let values: Vec<f64> = (1..2000).map(|i| f64::from(i) * 0.37).collect();
        let mut direct = NativeHistogram::new(1, 0.0);
        add(&mut direct, &values, 1, 1.0);
        let mut lowered = NativeHistogram::new(3, 0.0);
        add(&mut lowered, &values, 3, 1.0);
        lowered.fit(direct.buckets());
        assert_eq!(lowered.schema, 1);
        assert_eq!(lowered.positive, direct.positive);
        // Keys of a higher schema add into a lowered histogram exactly too.
        let mut mixed = NativeHistogram::new(1, 0.0);
        add(&mut mixed, &values, 3, 1.0);
        assert_eq!(mixed.positive, direct.positive);
    }

    #[test]
    fn what_was_added_since_an_earlier_state_is_exact_across_a_lowered_schema() {
        let mut h = NativeHistogram::new(3, 0.0);
        add(&mut h, &[1.0, 2.0, -1.0, 0.0], 3, 1.0);
        let earlier = h.clone();
        add(&mut h, &[2.0, 3.0, 0.0], 3, 1.0);
        let added = h.since(&earlier).unwrap();
        assert_eq!(added.positive, [(8, 1.0), (13, 1.0)]);
        assert!(added.negative.is_empty());
        assert_eq!((added.zero_count, added.count, added.sum), (1.0, 3.0, 5.0));
        // Lowered since: the earlier state is lowered too.
        h.fit(2);
        let added = h.since(&earlier).unwrap();
        assert_eq!(added.schema, h.schema);
        assert_eq!(added.count, 3.0);
        assert_eq!(added.positive.iter().map(|&(_, c)| c).sum::<f64>(), 2.0);
        // A reset (fewer samples than before) is no earlier state.
        assert!(earlier.since(&h).is_none());
    }

    #[test]
    fn fit_stops_at_the_lowest_schema() {
        let mut h = NativeHistogram::new(0, 0.0);
        add(&mut h, &[1e-300, 1e-100, 1.0, 1e100, 1e300], 0, 1.0);
        h.fit(1);
        assert_eq!(h.schema, MIN_SCHEMA);
        assert!(h.buckets() > 1);
    }

    #[test]
    fn adjustments_correct_one_bucket() {
        let mut h = NativeHistogram::new(3, 0.5);
        add(&mut h, &[4.0, 0.1], 3, 2.0);
        h.adjust(4.0, -1.0);
        h.adjust(-0.2, 3.0);
        assert_eq!(h.positive, [(16, 1.0)]);
        assert_eq!(h.zero_count, 5.0);
    }

    #[test]
    fn recorded_samples_and_merges_add_up_at_the_lower_schema() {
        let mut window = NativeHistogram::new(3, 0.0);
        for v in [1.0, 2.0, 3.0, -1.0, 0.0] {
            window.record(v, 2.0, 160);
        }
        assert_eq!(window.positive, [(0, 2.0), (8, 2.0), (13, 2.0)]);
        assert_eq!(
            (window.zero_count, window.count, window.sum),
            (2.0, 10.0, 10.0)
        );
        let mut cumulative = NativeHistogram::new(3, 0.0);
        cumulative.merge(&window, 160);
        cumulative.merge(&window, 160);
        assert_eq!(cumulative.positive, [(0, 4.0), (8, 4.0), (13, 4.0)]);
        // A coarser window lowers the cumulative histogram to its schema.
        let mut coarse = NativeHistogram::new(1, 0.0);
        coarse.record(3.0, 1.0, 160);
        cumulative.merge(&coarse, 160);
        assert_eq!(cumulative.schema, 1);
        assert_eq!(cumulative.positive, [(0, 4.0), (2, 4.0), (4, 5.0)]);
        assert_eq!(cumulative.count, 21.0);
    }

    #[test]
    fn quantile_estimates_stay_within_a_bucket_of_the_exact_ones() {
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 0.731).collect();
        let mut h = NativeHistogram::new(3, 0.0);
        for &v in &values {
            h.record(v, 1.0, 160);
        }
        let width = 2f64.powf(1.0 / 8.0) - 1.0;
        for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let exact = values[((q * 1000.0) as usize).max(1) - 1];
            let estimate = h.quantile(q, 0.731, 731.0);
            assert!(
                (estimate - exact).abs() / exact <= width,
                "q {q}: {estimate} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0, 0.731, 731.0), 731.0);
        assert!(
            NativeHistogram::new(3, 0.0)
                .quantile(0.5, 0.0, 0.0)
                .is_nan()
        );
        // Negative values and the zero bucket keep value order.
        let mut signed = NativeHistogram::new(3, 0.0);
        for v in [-8.0, -8.0, 0.0, 5.0] {
            signed.record(v, 1.0, 160);
        }
        assert!(signed.quantile(0.25, -8.0, 5.0) < -7.0);
        assert_eq!(signed.quantile(0.75, -8.0, 5.0), 0.0);
        assert!(signed.quantile(1.0, -8.0, 5.0) > 4.5);
    }

    #[test]
    fn spans_fill_small_gaps_and_start_new_spans_after_large_ones() {
        let buckets = [(-2, 1.0), (-1, 2.0), (1, 3.0), (5, 4.0)];
        let (spans, counts) = NativeHistogram::spans(&buckets);
        assert_eq!(
            spans,
            [
                Span {
                    offset: -2,
                    length: 4
                },
                Span {
                    offset: 3,
                    length: 1
                }
            ]
        );
        assert_eq!(counts, [1.0, 2.0, 0.0, 3.0, 4.0]);
        assert_eq!(NativeHistogram::spans(&[]), (vec![], vec![]));
    }
}
