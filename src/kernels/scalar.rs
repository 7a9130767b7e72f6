//! The scalar reference kernels: the specification every faster backend must match.
//!
//! - Moments in one pass: sums in the lane order of [`LANES`], extremes by
//!   ordinary comparison, the spread from sums shifted by the first value
//!   ([`LaneSums`]).
//! - Quantiles: the value at rank `ceil(q * n)` ([`quantile_rank`]) in
//!   `f64::total_cmp` order, found by selection.
//! - Buckets: Prometheus' cumulative counts, `x <= bound`.
//! - Distinct count: sort the 64-bit member hashes, count the changes.
//!
//! This code is also the fallback on CPUs without a SIMD backend, so it is
//! written to be fast as plain code: the compiler is free to vectorise it with
//! the target's baseline instructions (SSE2 on x86_64).

use super::common::{LANES, LaneSums, Moments, quantile_rank, settle_zero_extremes, zero_signs};
use super::native::Layout;

/// Count, sum, min, max and centred sum of squares of `values`, in one pass.
pub fn moments(values: &[f64]) -> Moments {
    let Some(&shift) = values.first() else {
        return Moments::EMPTY;
    };
    let mut sums = LaneSums::ZERO;
    let (mut min, mut max) = (shift, shift);
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in chunk.iter().enumerate() {
            sums.add(lane, x, shift);
            min = if x < min { x } else { min };
            max = if x > max { x } else { max };
        }
    }
    for (lane, &x) in chunks.remainder().iter().enumerate() {
        sums.add(lane, x, shift);
        min = if x < min { x } else { min };
        max = if x > max { x } else { max };
    }
    let (min, max) = settle_zero_extremes(min, max, || zero_signs(values));
    sums.finish(values.len(), min, max)
}

/// Exact quantiles: writes the value at rank `ceil(q * n)` of the sorted values for
/// each of `qs` into `out`; NaN when `values` is empty. Order is `f64::total_cmp`
/// (`-0.0` before `0.0`).
///
/// `values` is reordered in place by selection, not sorted: each rank is selected
/// (`select_nth_unstable`, linear time) from the largest down, each within the
/// part left of the previous one, so a handful of quantiles costs a few linear
/// passes instead of an `n log n` sort.
pub fn quantiles(values: &mut [f64], qs: &[f64], out: &mut [f64]) {
    assert_eq!(qs.len(), out.len(), "one output per quantile");
    if values.is_empty() {
        out.fill(f64::NAN);
        return;
    }
    let n = values.len();
    let mut order: [usize; 16] = std::array::from_fn(|i| i);
    let mut ranks_owned;
    let by_rank: &mut [usize] = if qs.len() <= order.len() {
        &mut order[..qs.len()]
    } else {
        ranks_owned = (0..qs.len()).collect::<Vec<_>>();
        &mut ranks_owned
    };
    by_rank.sort_unstable_by_key(|&i| std::cmp::Reverse(quantile_rank(qs[i], n)));
    // Everything left of the last selected index is <= it: later (smaller) ranks
    // are selected within that prefix.
    let mut end = n;
    for &i in by_rank.iter() {
        let index = quantile_rank(qs[i], n) - 1;
        let (_, nth, _) = values[..end].select_nth_unstable_by(index, f64::total_cmp);
        out[i] = *nth;
        end = index + 1;
    }
}

/// Cumulative bucket counts as Prometheus defines them: `out[i]` is the number of
/// values `<= bounds[i]`. `bounds` must be strictly increasing; the `+Inf` bucket is
/// the total count and is not written.
pub fn cumulative_buckets(values: &[f64], bounds: &[f64], out: &mut [u64]) {
    assert_eq!(bounds.len(), out.len(), "one output per bound");
    out.fill(0);
    for &x in values {
        let bucket = bounds.partition_point(|&bound| bound < x);
        if let Some(slot) = out.get_mut(bucket) {
            *slot += 1;
        }
    }
    let mut running = 0;
    for slot in out.iter_mut() {
        running += *slot;
        *slot = running;
    }
}

/// The native histogram bucket key of each value under `layout` ([`Layout::key`]:
/// Prometheus' Go client's definition), [`ZERO_BUCKET`](super::native::ZERO_BUCKET)
/// for values in the zero bucket; the caller reads the sign from the value.
pub fn native_keys(values: &[f64], layout: &Layout, zero_threshold: f64, out: &mut [i32]) {
    assert_eq!(values.len(), out.len(), "one key per value");
    for (key, &v) in out.iter_mut().zip(values) {
        *key = layout.key(v, zero_threshold);
    }
}

/// Number of distinct values among `hashes` (64-bit hashes of set members);
/// sorts `hashes` in place.
pub fn distinct_count(hashes: &mut [u64]) -> u64 {
    hashes.sort_unstable();
    count_runs(hashes)
}

/// Number of runs of equal values in sorted `values`.
pub fn count_runs(values: &[u64]) -> u64 {
    match values.first() {
        None => 0,
        Some(_) => 1 + values.windows(2).filter(|w| w[0] != w[1]).count() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_a_small_window() {
        let m = moments(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((m.count, m.sum, m.min, m.max), (8, 40.0, 2.0, 9.0));
        assert_eq!((m.mean(), m.stddev()), (5.0, 2.0));
    }

    #[test]
    fn moments_of_one_and_of_no_value() {
        let one = moments(&[3.5]);
        assert_eq!(
            (one.count, one.sum, one.min, one.max, one.stddev()),
            (1, 3.5, 3.5, 3.5, 0.0)
        );
        let none = moments(&[]);
        assert_eq!((none.count, none.sum), (0, 0.0));
        assert!(none.mean().is_nan());
    }

    #[test]
    fn stddev_keeps_its_digits_for_large_values_with_small_spread() {
        let values: Vec<f64> = (0..1000).map(|i| 1e9 + f64::from(i % 2)).collect();
        assert_eq!(moments(&values).stddev(), 0.5);
    }

    #[test]
    fn sums_in_the_documented_lane_order() {
        // 1e16 + 1 + 1 ... is order-sensitive: lanes keep the small terms apart.
        let mut values = vec![1.0; 33];
        values[0] = 1e16;
        // Lane 0 holds 1e16 + 1 + 1 (rounding to even at each step), lanes 1..16
        // hold 2 each; the tree then adds neighbours first.
        let lane0 = (1e16 + 1.0) + 1.0;
        let expected = (((lane0 + 2.0) + 4.0) + 8.0) + 16.0;
        assert_eq!(moments(&values).sum, expected);
    }

    #[test]
    fn extremes_put_negative_zero_first() {
        let m = moments(&[0.0, -0.0, 0.0]);
        assert_eq!((m.min.to_bits(), m.max.to_bits()), ((-0.0f64).to_bits(), 0));
    }

    #[test]
    fn quantiles_of_one_to_a_hundred() {
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let mut out = [0.0; 4];
        quantiles(&mut values, &[0.5, 0.9, 0.99, 1.0], &mut out);
        assert_eq!(out, [50.0, 90.0, 99.0, 100.0]);
    }

    #[test]
    fn buckets_count_values_at_or_below_each_bound() {
        let mut out = [0; 3];
        cumulative_buckets(
            &[0.005, 0.01, 0.02, 0.5, 3.0, 7.0],
            &[0.01, 0.5, 5.0],
            &mut out,
        );
        assert_eq!(out, [2, 4, 5]);
    }

    #[test]
    fn distinct_counts_each_hash_once() {
        assert_eq!(distinct_count(&mut []), 0);
        assert_eq!(distinct_count(&mut [7, 3, 7, u64::MAX, 3, 0]), 4);
    }
}
