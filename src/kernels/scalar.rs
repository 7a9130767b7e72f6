//! The scalar reference kernels: the specification every faster backend must match.
//!
//! Sums use a fixed reduction order: eight lanes, element `i` added to lane `i % 8`,
//! lanes combined as `((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))`. That is the order an
//! AVX-512 register (or two AVX2 registers) reduces in, so SIMD backends can be
//! required to agree bit for bit instead of within a tolerance; a plain left-to-
//! right sum would make every vectorised result "slightly different".
//!
//! Standard deviation takes a second pass over the values, summing squared
//! deviations from the mean, rather than using sum of squares minus square of sum:
//! for values near 1e9 with a spread of 1, the one-pass formula loses every digit
//! to cancellation, the two-pass one loses none. The second pass is cheap: the
//! values are already in cache from the first.

/// Lanes of the fixed summation order.
pub const LANES: usize = 8;

/// Count, sum, extremes and spread of one window's samples of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Number of values.
    pub count: u64,
    /// Sum of the values, in the fixed lane order.
    pub sum: f64,
    /// Smallest value (`+inf` when empty).
    pub min: f64,
    /// Largest value (`-inf` when empty).
    pub max: f64,
    /// Sum of squared deviations from the mean, in the fixed lane order.
    pub centred_sum_sq: f64,
}

impl Moments {
    /// Arithmetic mean; NaN when empty.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Population standard deviation (as Etsy StatsD reports it); 0 for one value,
    /// NaN when empty.
    pub fn stddev(&self) -> f64 {
        (self.centred_sum_sq / self.count as f64).sqrt()
    }
}

/// Sums `f(x)` over `values` in the fixed lane order.
#[inline]
fn lane_sum(values: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(x);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// Count, sum, min, max and centred sum of squares of `values`.
pub fn moments(values: &[f64]) -> Moments {
    let sum = lane_sum(values, |x| x);
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let mean = sum / values.len() as f64;
    let centred_sum_sq = if values.is_empty() {
        0.0
    } else {
        lane_sum(values, |x| (x - mean) * (x - mean))
    };
    Moments {
        count: values.len() as u64,
        sum,
        min,
        max,
        centred_sum_sq,
    }
}

/// The 1-based rank of quantile `q` among `n` sorted values: `ceil(q * n)`, kept in
/// `1..=n`.
///
/// `q * n` is computed in binary floating point, where `0.7 * 10` is
/// `7.000000000000001`; a product within 1e-9 of an integer is taken as that
/// integer, so such ranks are not pushed one too high.
pub fn quantile_rank(q: f64, n: usize) -> usize {
    let product = q * n as f64;
    let nearest = product.round();
    let rank = if (product - nearest).abs() < 1e-9 {
        nearest
    } else {
        product.ceil()
    };
    (rank as usize).clamp(1, n.max(1))
}

/// Exact quantiles: writes the value at rank `ceil(q * n)` of the sorted values for
/// each of `qs` into `out`; NaN when `values` is empty. Order is `f64::total_cmp`
/// (`-0.0` before `0.0`).
///
/// `values` is reordered in place by selection, not sorted: each rank is selected
/// (`select_nth_unstable`, linear time) from the largest down, each within the
/// part left of the previous one, so a handful of quantiles costs a few linear
/// passes instead of an `n log n` sort: about 4x less at 50k values. The values
/// selected are the same order statistics a sort gives, so results are identical.
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
        let mut values = vec![1.0; 17];
        values[0] = 1e16;
        let lanes_sum = ((1e16 + 1.0 + 1.0) + 2.0 + (2.0 + 2.0)) + ((2.0 + 2.0) + (2.0 + 2.0));
        assert_eq!(moments(&values).sum, lanes_sum);
    }

    #[test]
    fn quantile_ranks_are_ceil_of_q_times_n() {
        assert_eq!(quantile_rank(0.5, 10), 5);
        assert_eq!(quantile_rank(0.7, 10), 7);
        assert_eq!(quantile_rank(0.9, 10), 9);
        assert_eq!(quantile_rank(0.99, 100), 99);
        assert_eq!(quantile_rank(0.5, 3), 2);
        assert_eq!(quantile_rank(0.01, 3), 1);
        assert_eq!(quantile_rank(1.0, 3), 3);
        assert_eq!(quantile_rank(0.999, 1), 1);
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

    proptest! {
        #[test]
        fn agree_with_naive_definitions(values in proptest::collection::vec(-1e6f64..1e6, 1..300)) {
            let m = moments(&values);
            let naive_sum: f64 = values.iter().sum();
            prop_assert_eq!(m.count as usize, values.len());
            prop_assert!((m.sum - naive_sum).abs() <= 1e-9 * values.iter().map(|v| v.abs()).sum::<f64>().max(1.0));
            prop_assert_eq!(m.min, values.iter().cloned().fold(f64::INFINITY, f64::min));
            prop_assert_eq!(m.max, values.iter().cloned().fold(f64::NEG_INFINITY, f64::max));

            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            // Unordered, as a config may list them.
            let qs = [0.9, 0.01, 1.0, 0.5, 0.99];
            let mut out = [0.0; 5];
            quantiles(&mut values.clone(), &qs, &mut out);
            for (q, got) in qs.iter().zip(out) {
                let rank = ((q * values.len() as f64) - 1e-9).ceil().max(1.0) as usize;
                prop_assert_eq!(got, sorted[rank - 1]);
            }

            let bounds = [-1e3, 0.0, 1e3];
            let mut buckets = [0; 3];
            cumulative_buckets(&values, &bounds, &mut buckets);
            for (bound, count) in bounds.iter().zip(buckets) {
                prop_assert_eq!(count as usize, values.iter().filter(|&&v| v <= *bound).count());
            }
        }
    }

    proptest! {
        #[test]
        fn quantiles_of_repeated_values_and_signed_zeros_match_a_sort(
            values in proptest::collection::vec(prop_oneof![Just(-0.0f64), Just(0.0), (-3i8..3i8).prop_map(f64::from)], 1..200),
            qs in proptest::collection::vec(0.001f64..=1.0, 1..20),
        ) {
            let values: Vec<f64> = values;
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mut out = vec![0.0; qs.len()];
            quantiles(&mut values.clone(), &qs, &mut out);
            for (&q, got) in qs.iter().zip(out) {
                let expected = sorted[quantile_rank(q, values.len()) - 1];
                prop_assert_eq!(got.to_bits(), expected.to_bits());
            }
        }
    }
}
