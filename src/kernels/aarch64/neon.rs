//! NEON kernels: two doubles a register, 32 registers.
//!
//! Moments keep the reference's 16 lanes as eight registers each of sums,
//! shifted sums and squares (24 of the 32); buckets subtract all-ones compare
//! results from integer counters; partitions swap a register's two lanes
//! through a `tbl` byte shuffle when only the upper one is below the pivot.
//!
//! Every function is `unsafe` only because it needs NEON: the facade calls them
//! after detection.

use std::arch::aarch64::*;

use super::super::common::{
    LANES, LaneSums, Moments, ZeroSigns, count_at_or_below, settle_zero_extremes,
};
use super::super::native::Layout;
use super::super::partition::{PartitionVector, partition_in_place};

const W: usize = 2;

/// Count, sum, min, max and centred sum of squares, as [`scalar::moments`](super::super::scalar::moments).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn moments(values: &[f64]) -> Moments {
    let Some(&shift) = values.first() else {
        return Moments::EMPTY;
    };
    let s = vdupq_n_f64(shift);
    let zero = vdupq_n_f64(0.0);
    let (mut sum, mut shifted, mut squares) = ([zero; 8], [zero; 8], [zero; 8]);
    let (mut lo, mut hi) = ([s; 2], [s; 2]);
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES / W {
            // SAFETY: the chunk holds LANES values; k * W + W <= LANES.
            let x = unsafe { vld1q_f64(chunk.as_ptr().add(k * W)) };
            let d = vsubq_f64(x, s);
            sum[k] = vaddq_f64(sum[k], x);
            shifted[k] = vaddq_f64(shifted[k], d);
            squares[k] = vaddq_f64(squares[k], vmulq_f64(d, d));
            lo[k % 2] = vminq_f64(lo[k % 2], x);
            hi[k % 2] = vmaxq_f64(hi[k % 2], x);
        }
    }
    let mut sums = LaneSums::ZERO;
    for k in 0..LANES / W {
        let lanes = k * W..(k + 1) * W;
        // SAFETY: each range is W doubles of a LANES-long array.
        unsafe {
            vst1q_f64(sums.sum[lanes.clone()].as_mut_ptr(), sum[k]);
            vst1q_f64(sums.shifted[lanes.clone()].as_mut_ptr(), shifted[k]);
            vst1q_f64(sums.squares[lanes].as_mut_ptr(), squares[k]);
        }
    }
    let mut min = vminvq_f64(vminq_f64(lo[0], lo[1]));
    let mut max = vmaxvq_f64(vmaxq_f64(hi[0], hi[1]));
    for (lane, &x) in chunks.remainder().iter().enumerate() {
        sums.add(lane, x, shift);
        min = if x < min { x } else { min };
        max = if x > max { x } else { max };
    }
    // SAFETY: this function has the same target features.
    let (min, max) = settle_zero_extremes(min, max, || unsafe { zero_signs(values) });
    sums.finish(values.len(), min, max)
}

/// Which signed zeros `values` holds: integer compares of the bits.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn zero_signs(values: &[f64]) -> ZeroSigns {
    let negative_zero = vdupq_n_u64(1 << 63);
    let zero = vdupq_n_u64(0);
    let (mut negative, mut positive) = (zero, zero);
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { vld1q_u64(chunk.as_ptr().cast()) };
        negative = vorrq_u64(negative, vceqq_u64(x, negative_zero));
        positive = vorrq_u64(positive, vceqq_u64(x, zero));
    }
    let tail = super::super::common::zero_signs(chunks.remainder());
    ZeroSigns {
        negative: tail.negative || vmaxvq_u32(vreinterpretq_u32_u64(negative)) != 0,
        positive: tail.positive || vmaxvq_u32(vreinterpretq_u32_u64(positive)) != 0,
    }
}

super::super::loops::segment_and_block_loops!("neon");

/// Counts the values at or below each of `B` bounds, counters in registers.
#[target_feature(enable = "neon")]
fn count_block<const B: usize>(values: &[f64], bounds: &[f64], out: &mut [u64]) {
    let limits: [float64x2_t; B] = std::array::from_fn(|j| vdupq_n_f64(bounds[j]));
    let mut counts = [vdupq_n_u64(0); B];
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { vld1q_f64(chunk.as_ptr()) };
        for j in 0..B {
            // A true lane is all ones, -1 as an integer: subtracting counts it.
            counts[j] = vsubq_u64(counts[j], vcleq_f64(x, limits[j]));
        }
    }
    count_at_or_below(chunks.remainder(), bounds, out);
    for j in 0..B {
        out[j] += vaddvq_u64(counts[j]);
    }
}

/// Number of runs of equal keys in sorted `keys`.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn count_runs(keys: &[u64]) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    let pairs = keys.len() - 1;
    // Equal pairs, counted as -1 per lane.
    let mut equal = vdupq_n_u64(0);
    let mut i = 0;
    while i + W <= pairs {
        // SAFETY: i + W <= len - 1, so both loads are in bounds.
        let (a, b) = unsafe {
            (
                vld1q_u64(keys.as_ptr().add(i)),
                vld1q_u64(keys.as_ptr().add(i + 1)),
            )
        };
        equal = vsubq_u64(equal, vceqq_u64(a, b));
        i += W;
    }
    let equal = vaddvq_u64(equal) + keys[i..].windows(2).filter(|w| w[0] == w[1]).count() as u64;
    keys.len() as u64 - equal
}

/// `tbl` indices by mask of lanes below the pivot: only "upper lane below,
/// lower lane not" (mask 2) swaps the two lanes.
static SWAP_WHEN_UPPER_BELOW: [[u8; 16]; 4] = {
    const KEEP: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const SWAP: [u8; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
    [KEEP, KEEP, SWAP, KEEP]
};

/// The lanes of an all-ones-or-zero compare result as a two-bit mask.
#[inline(always)]
unsafe fn lane_mask(compare: uint64x2_t) -> usize {
    unsafe { (vgetq_lane_u64::<0>(compare) & 1 | vgetq_lane_u64::<1>(compare) & 2) as usize }
}

/// Two doubles, partitioned by a compare and a table shuffle.
#[derive(Clone, Copy)]
struct F64x2(float64x2_t);

impl PartitionVector for F64x2 {
    type Key = f64;
    const LANES: usize = W;

    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        F64x2(unsafe { vld1q_f64(ptr) })
    }

    #[inline(always)]
    unsafe fn splat(key: f64) -> Self {
        F64x2(unsafe { vdupq_n_f64(key) })
    }

    #[inline(always)]
    unsafe fn split(self, pivot: Self) -> (Self, usize) {
        unsafe {
            let below = lane_mask(vcltq_f64(self.0, pivot.0));
            let order = vld1q_u8(SWAP_WHEN_UPPER_BELOW[below].as_ptr());
            let moved = vqtbl1q_u8(vreinterpretq_u8_f64(self.0), order);
            (
                F64x2(vreinterpretq_f64_u8(moved)),
                below.count_ones() as usize,
            )
        }
    }

    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        unsafe { vst1q_f64(ptr, self.0) }
    }
}

/// Moves the values below `pivot` first; returns their number.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn partition_f64(v: &mut [f64], pivot: f64) -> usize {
    // SAFETY: NEON is enabled here.
    unsafe { partition_in_place::<F64x2>(v, pivot) }
}

/// Native histogram bucket keys, as [`Layout::key`] defines them. NEON has no
/// gather, so each value takes the cell tables' path on its own: the mantissa's
/// top bits name the cell, one comparison settles the key (no search).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn native_keys(values: &[f64], layout: &Layout, zero_threshold: f64, out: &mut [i32]) {
    assert_eq!(values.len(), out.len(), "one key per value");
    for (key, &v) in out.iter_mut().zip(values) {
        *key = layout.cell_key(v, zero_threshold);
    }
}
