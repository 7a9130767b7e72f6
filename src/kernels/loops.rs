//! The loops every SIMD backend wraps around its own kernels: over the segments
//! of a buffer, and over blocks of eight bucket bounds.
//!
//! A macro rather than generic code: each backend's copy is compiled under its
//! own `#[target_feature]`, so the kernels it calls inline into the loop.

/// Defines `moments_segmented`, `cumulative_buckets` and `buckets_segmented` in
/// a backend module that has `moments(&[f64]) -> Moments` and
/// `count_block::<B>(values, bounds, out)` (counts for up to eight bounds).
macro_rules! segment_and_block_loops {
    ($feature:literal) => {
        /// [`moments`] of each segment of `values`.
        ///
        /// # Safety
        /// The CPU must support this backend's target feature.
        #[target_feature(enable = $feature)]
        pub unsafe fn moments_segmented(values: &[f64], offsets: &[usize], out: &mut [Moments]) {
            for (segment, slot) in offsets.windows(2).zip(out.iter_mut()) {
                // SAFETY: this function has the same target features.
                *slot = unsafe { moments(&values[segment[0]..segment[1]]) };
            }
        }

        /// Cumulative bucket counts, as the scalar reference defines them, eight
        /// bounds at a time.
        ///
        /// # Safety
        /// The CPU must support this backend's target feature.
        #[target_feature(enable = $feature)]
        pub unsafe fn cumulative_buckets(values: &[f64], bounds: &[f64], out: &mut [u64]) {
            assert_eq!(bounds.len(), out.len(), "one output per bound");
            for (block, counts) in bounds.chunks(8).zip(out.chunks_mut(8)) {
                match block.len() {
                    8 => count_block::<8>(values, block, counts),
                    7 => count_block::<7>(values, block, counts),
                    6 => count_block::<6>(values, block, counts),
                    5 => count_block::<5>(values, block, counts),
                    4 => count_block::<4>(values, block, counts),
                    3 => count_block::<3>(values, block, counts),
                    2 => count_block::<2>(values, block, counts),
                    _ => count_block::<1>(values, block, counts),
                }
            }
        }

        /// [`cumulative_buckets`] of each segment; `out` holds `bounds.len()`
        /// counts a segment.
        ///
        /// # Safety
        /// The CPU must support this backend's target feature.
        #[target_feature(enable = $feature)]
        pub unsafe fn buckets_segmented(
            values: &[f64],
            offsets: &[usize],
            bounds: &[f64],
            out: &mut [u64],
        ) {
            for (segment, counts) in offsets.windows(2).zip(out.chunks_exact_mut(bounds.len())) {
                // SAFETY: this function has the same target features.
                unsafe { cumulative_buckets(&values[segment[0]..segment[1]], bounds, counts) };
            }
        }
    };
}

pub(super) use segment_and_block_loops;
