//! Multi-rank selection driven by a backend's vector partition.
//!
//! One quickselect serves every wanted rank at once: partition around a pivot
//! (median of three, or of nine on large slices), then go on only into the
//! sides that hold a wanted rank. A handful of quantiles thus costs about two
//! linear passes of vector partitioning. When the pivot turns out to be the
//! smallest key, the keys equal to it are split off with a second partition
//! (below the pivot's successor), so runs of repeated values end quickly. Short
//! slices are finished by the standard library's sort; a recursion deeper than
//! `2 log2(n) + 8` (adversarial pivots) hands the slice to its linear-time
//! `select_nth_unstable`, so the worst case stays linear.

use std::cmp::Ordering;

/// A key the partition orders: `f64` (by `<`, with `-0.0 == 0.0`), or `i64` in tests.
pub trait Key: Copy + PartialOrd {
    /// The smallest key above `self` in the partition's order; `None` at the top.
    fn successor(self) -> Option<Self>;
    /// A total order consistent with `<` (`f64::total_cmp` for doubles).
    fn total(a: &Self, b: &Self) -> Ordering;
}

impl Key for f64 {
    fn successor(self) -> Option<Self> {
        (self < f64::INFINITY).then(|| self.next_up())
    }

    fn total(a: &Self, b: &Self) -> Ordering {
        a.total_cmp(b)
    }
}

impl Key for i64 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn total(a: &Self, b: &Self) -> Ordering {
        a.cmp(b)
    }
}

/// Slices this short are sorted outright.
const SHORT: usize = 32;

/// Writes into `out[i]` the key of 0-based rank `ranks[i]` of `v`; `ranks` must be
/// ascending and below `v.len()`. Reorders `v`. `partition(v, pivot)` must move
/// the keys below `pivot` first and return their number.
pub fn select<T: Key>(
    v: &mut [T],
    ranks: &[usize],
    out: &mut [T],
    partition: &impl Fn(&mut [T], T) -> usize,
) {
    debug_assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    debug_assert!(ranks.last().is_none_or(|&r| r < v.len()));
    select_from(v, 0, ranks, out, partition, depth_limit(v.len()));
}

fn depth_limit(n: usize) -> u32 {
    2 * (usize::BITS - n.leading_zeros()) + 8
}

/// `select` on `v`, the part of the original slice that starts at `base`.
fn select_from<T: Key>(
    mut v: &mut [T],
    mut base: usize,
    mut ranks: &[usize],
    mut out: &mut [T],
    partition: &impl Fn(&mut [T], T) -> usize,
    mut depth: u32,
) {
    while !ranks.is_empty() {
        if v.len() <= SHORT {
            v.sort_unstable_by(T::total);
            for (&rank, slot) in ranks.iter().zip(out.iter_mut()) {
                *slot = v[rank - base];
            }
            return;
        }
        if depth == 0 {
            return select_nested(v, base, ranks, out);
        }
        depth -= 1;
        let pivot = choose_pivot(v);
        let (below, all_equal) = match partition(v, pivot) {
            // The pivot is the smallest key: split off the keys equal to it.
            0 => (pivot.successor().map_or(v.len(), |s| partition(v, s)), true),
            below => (below, false),
        };
        let split = ranks.partition_point(|&rank| rank - base < below);
        let (left_ranks, right_ranks) = ranks.split_at(split);
        let (left_out, right_out) = std::mem::take(&mut out).split_at_mut(split);
        let (left, right) = std::mem::take(&mut v).split_at_mut(below);
        if all_equal {
            left_out.fill(pivot);
        } else {
            select_from(left, base, left_ranks, left_out, partition, depth);
        }
        (v, base, ranks, out) = (right, base + below, right_ranks, right_out);
    }
}

/// The fallback for adversarial inputs: one linear-time selection per rank, from
/// the largest down, each within the part left of the previous one.
fn select_nested<T: Key>(v: &mut [T], base: usize, ranks: &[usize], out: &mut [T]) {
    let mut end = v.len();
    for (&rank, slot) in ranks.iter().zip(out.iter_mut()).rev() {
        let index = rank - base;
        let (_, nth, _) = v[..end].select_nth_unstable_by(index, T::total);
        *slot = *nth;
        end = index + 1;
    }
}

/// Median of three keys at the quartiles, or of three such medians on long slices.
fn choose_pivot<T: Key>(v: &[T]) -> T {
    let n = v.len();
    let median_at = |a: usize, b: usize, c: usize| median3(v[a], v[b], v[c]);
    if n < 1024 {
        median_at(n / 4, n / 2, 3 * n / 4)
    } else {
        let step = n / 8;
        median3(
            median_at(step, 2 * step, 3 * step),
            median_at(3 * step + step / 2, 4 * step, 4 * step + step / 2),
            median_at(5 * step, 6 * step, 7 * step),
        )
    }
}

fn median3<T: Key>(a: T, b: T, c: T) -> T {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if c < lo {
        lo
    } else if hi < c {
        hi
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::super::partition::partition_scalar;
    use super::*;

    #[test]
    fn selects_many_ranks_of_repeated_keys() {
        let mut v: Vec<i64> = (0..5000).map(|i| (i * 7919) % 13).collect();
        let mut sorted = v.clone();
        sorted.sort();
        let ranks = [0, 1, 2500, 2500, 4998, 4999];
        let mut out = [0; 6];
        select(&mut v, &ranks, &mut out, &partition_scalar);
        assert_eq!(out, ranks.map(|r| sorted[r]));
    }

    #[test]
    fn adversarial_depth_falls_back_to_linear_selection() {
        let mut v: Vec<i64> = (0..100).rev().collect();
        let mut out = [0; 2];
        select_from(&mut v, 0, &[3, 97], &mut out, &partition_scalar, 0);
        assert_eq!(out, [3, 97]);
    }
}
