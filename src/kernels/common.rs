//! Definitions every backend shares: the lane layout of sums, how lanes and
//! extremes become [`Moments`], quantile ranks, and the signed-zero rules.
//!
//! Signed zeros: values are ordered as `f64::total_cmp` orders them, so `-0.0`
//! comes before `0.0`. Vector min/max and compare instructions treat the two as
//! equal, so every backend (the reference included) finds extremes and order
//! statistics with ordinary comparisons and then, only when an answer is a
//! zero, settles its sign by counting ([`settle_zero_extremes`],
//! [`settle_zero_quantiles`]). Data with no zero at an extreme or quantile pays
//! nothing for this.

/// Lanes of the fixed summation order: element `i` of a series goes to lane `i % LANES`.
pub const LANES: usize = 16;

/// Bits of `-0.0`.
const NEGATIVE_ZERO: u64 = 0x8000_0000_0000_0000;

/// Count, sum, extremes and spread of one series' values in a window.
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
    /// Sum of squared deviations from the mean (see [`LaneSums`]).
    pub centred_sum_sq: f64,
}

impl Moments {
    /// The moments of no value.
    pub const EMPTY: Moments = Moments {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        centred_sum_sq: 0.0,
    };

    /// Arithmetic mean; NaN when empty.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Population standard deviation (as Etsy StatsD reports it); 0 for one value,
    /// NaN when empty.
    pub fn stddev(&self) -> f64 {
        (self.centred_sum_sq / self.count as f64).sqrt()
    }

    /// Bit-for-bit equality, so that `-0.0` and `0.0` are told apart; any NaN
    /// (a sum that overflowed both ways) equals any other.
    pub fn same_bits(&self, other: &Moments) -> bool {
        self.count == other.count
            && [self.sum, self.min, self.max, self.centred_sum_sq]
                .iter()
                .zip([other.sum, other.min, other.max, other.centred_sum_sq])
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }
}

/// The three lane sums of the one-pass moments kernel, over `d = x - shift` where
/// `shift` is the series' first value: `sum` of `x`, `shifted` sum of `d`, and
/// `squares` sum of `d * d` (a multiply then an add, never fused).
///
/// The spread is `squares - shifted^2 / n`, clamped at zero: the "shifted data"
/// form of the one-pass variance. Shifting by a value of the series keeps it
/// exact where the textbook `sum(x^2) - sum(x)^2 / n` loses every digit (values
/// near 1e9 that differ by 1); it degrades only if the first value lies far
/// outside the spread of the rest.
#[derive(Debug, Clone, Copy)]
pub struct LaneSums {
    /// Lane sums of `x`.
    pub sum: [f64; LANES],
    /// Lane sums of `x - shift`.
    pub shifted: [f64; LANES],
    /// Lane sums of `(x - shift)^2`.
    pub squares: [f64; LANES],
}

impl LaneSums {
    /// All lanes at zero.
    pub const ZERO: LaneSums = LaneSums {
        sum: [0.0; LANES],
        shifted: [0.0; LANES],
        squares: [0.0; LANES],
    };

    /// Adds `x` to `lane`, exactly as every backend does per element.
    #[inline(always)]
    pub fn add(&mut self, lane: usize, x: f64, shift: f64) {
        let d = x - shift;
        self.sum[lane] += x;
        self.shifted[lane] += d;
        self.squares[lane] += d * d;
    }

    /// The moments of `count` values whose lanes these are, with extremes
    /// `min` and `max` (zero signs already settled).
    pub fn finish(&self, count: usize, min: f64, max: f64) -> Moments {
        let n = count as f64;
        let shifted = combine_lanes(&self.shifted);
        Moments {
            count: count as u64,
            sum: combine_lanes(&self.sum),
            min,
            max,
            centred_sum_sq: (combine_lanes(&self.squares) - shifted * shifted / n).max(0.0),
        }
    }
}

/// Combines lanes by the fixed pairwise tree: neighbours, then pairs of pairs.
#[inline]
pub fn combine_lanes(lanes: &[f64; LANES]) -> f64 {
    let mut level = *lanes;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            level[i] = level[2 * i] + level[2 * i + 1];
        }
    }
    level[0]
}

/// Which signed zeros a series holds, found only when an extreme is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZeroSigns {
    /// Some value is `-0.0`.
    pub negative: bool,
    /// Some value is `0.0`.
    pub positive: bool,
}

/// The signed zeros among `values`, one value at a time (branch-free, so the
/// compiler vectorises it with the target's baseline instructions).
pub fn zero_signs(values: &[f64]) -> ZeroSigns {
    let (negative, positive) = values.iter().fold((false, false), |(neg, pos), x| {
        let bits = x.to_bits();
        (neg | (bits == NEGATIVE_ZERO), pos | (bits == 0))
    });
    ZeroSigns { negative, positive }
}

/// Gives zero extremes their total-order sign: the minimum is `-0.0` when the
/// values hold one, the maximum `0.0` when they hold one. `signs` runs (a pass
/// over the values) only when an extreme is zero.
#[inline]
pub fn settle_zero_extremes(min: f64, max: f64, signs: impl FnOnce() -> ZeroSigns) -> (f64, f64) {
    if min != 0.0 && max != 0.0 {
        return (min, max);
    }
    let signs = signs();
    let min = match (min == 0.0, signs.negative) {
        (false, _) => min,
        (true, negative) => {
            if negative {
                -0.0
            } else {
                0.0
            }
        }
    };
    let max = match (max == 0.0, signs.positive) {
        (false, _) => max,
        (true, positive) => {
            if positive {
                0.0
            } else {
                -0.0
            }
        }
    };
    (min, max)
}

/// Gives zero quantiles their total-order sign: the value of rank `r` (1-based)
/// is `-0.0` when at most `r` values are negative or `-0.0`. `values` is the
/// series in any order.
pub fn settle_zero_quantiles(values: &[f64], qs: &[f64], out: &mut [f64]) {
    if !out.contains(&0.0) {
        return;
    }
    let below_positive_zero = values
        .iter()
        .filter(|x| **x < 0.0 || x.to_bits() == NEGATIVE_ZERO)
        .count();
    for (&q, slot) in qs.iter().zip(out.iter_mut()) {
        if *slot == 0.0 {
            let rank = quantile_rank(q, values.len());
            *slot = if rank <= below_positive_zero {
                -0.0
            } else {
                0.0
            };
        }
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

/// Sets `counts[j]` to the number of `values` at or below `bounds[j]`: the
/// leftovers of a vector loop, one value at a time.
pub fn count_at_or_below(values: &[f64], bounds: &[f64], counts: &mut [u64]) {
    for (count, &bound) in counts.iter_mut().zip(bounds) {
        *count = values.iter().filter(|&&x| x <= bound).count() as u64;
    }
}

/// Checks a segmented call's shape: `offsets` runs from 0 to `len`, never
/// decreasing, and `out` has `per_segment` slots for each segment.
pub fn check_segments(offsets: &[usize], len: usize, out: usize, per_segment: usize) {
    assert!(
        offsets.first() == Some(&0) && offsets.last() == Some(&len),
        "offsets must run from 0 to the buffer's length"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]),
        "offsets must not decrease"
    );
    assert_eq!(
        out,
        (offsets.len() - 1) * per_segment,
        "one output slot per segment and item"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_combine_as_a_balanced_pairwise_tree() {
        let mut lanes = [1.0; LANES];
        lanes[0] = 1e16;
        // ((1e16 + 1) + 2) + 4 + 8 with each level rounding as it goes.
        let expected = (((1e16 + 1.0) + 2.0) + 4.0) + 8.0;
        assert_eq!(combine_lanes(&lanes), expected);
    }

    #[test]
    fn zero_extremes_take_their_total_order_sign() {
        let settle = |values: &[f64], min, max| {
            let (min, max) = settle_zero_extremes(min, max, || zero_signs(values));
            (min.to_bits(), max.to_bits())
        };
        let (negative, positive) = ((-0.0f64).to_bits(), 0.0f64.to_bits());
        assert_eq!(settle(&[0.0, -0.0, 1.0], 0.0, 1.0).0, negative);
        assert_eq!(settle(&[-0.0, 0.0, -1.0], -1.0, -0.0).1, positive);
        assert_eq!(settle(&[-0.0, -1.0], -1.0, 0.0).1, negative);
        assert_eq!(settle(&[0.0, 2.0], -0.0, 2.0).0, positive);
    }

    #[test]
    fn zero_quantiles_take_the_sign_of_their_rank() {
        let values = [0.0, -0.0, -0.0, 1.0];
        let mut out = [0.0, -0.0, 0.0];
        settle_zero_quantiles(&values, &[0.25, 0.5, 0.75], &mut out);
        let bits: Vec<u64> = out.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, [(-0.0f64).to_bits(), (-0.0f64).to_bits(), 0]);
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
}
