//! AVX2 kernels: four doubles a register.
//!
//! Moments keep the reference's 16 lanes as four registers each of sums,
//! shifted sums and squares (twelve of the sixteen `ymm` registers); buckets
//! compare a register of values with up to eight bounds held in registers;
//! partitions permute with `vpermd` from a 16-entry table.
//!
//! Every function is `unsafe` only because it needs AVX2: the facade calls them
//! after detection.

use std::arch::x86_64::*;

use super::super::common::{
    LANES, LaneSums, Moments, ZeroSigns, count_at_or_below, settle_zero_extremes,
};
use super::super::native::{EXPONENT_MASK, HALF_EXPONENT, Layout, MANTISSA_MASK, ZERO_BUCKET};
use super::super::partition::{PartitionVector, partition_in_place};

const W: usize = 4;

/// For each mask of lanes below the pivot (bit `i`: lane `i`), the `vpermd`
/// indices that put those lanes first and the others after, each in lane order.
/// A 64-bit lane `i` is the 32-bit lanes `2i` and `2i + 1`.
static PERMUTE_BELOW_FIRST: [[u32; 8]; 16] = {
    let mut table = [[0u32; 8]; 16];
    let mut mask = 0;
    while mask < 16 {
        let mut out = 0;
        let mut pass = 0;
        while pass < 2 {
            let mut lane = 0;
            while lane < W {
                let below = (mask >> lane) & 1 == 1;
                if below == (pass == 0) {
                    table[mask][2 * out] = 2 * lane as u32;
                    table[mask][2 * out + 1] = 2 * lane as u32 + 1;
                    out += 1;
                }
                lane += 1;
            }
            pass += 1;
        }
        mask += 1;
    }
    table
};

/// Count, sum, min, max and centred sum of squares, as [`scalar::moments`](super::super::scalar::moments).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn moments(values: &[f64]) -> Moments {
    let Some(&shift) = values.first() else {
        return Moments::EMPTY;
    };
    let s = _mm256_set1_pd(shift);
    let zero = _mm256_setzero_pd();
    let (mut sum, mut shifted, mut squares) = ([zero; 4], [zero; 4], [zero; 4]);
    let (mut lo, mut hi) = ([s; 2], [s; 2]);
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES / W {
            // SAFETY: the chunk holds LANES values; k * W + W <= LANES.
            let x = unsafe { _mm256_loadu_pd(chunk.as_ptr().add(k * W)) };
            let d = _mm256_sub_pd(x, s);
            sum[k] = _mm256_add_pd(sum[k], x);
            shifted[k] = _mm256_add_pd(shifted[k], d);
            squares[k] = _mm256_add_pd(squares[k], _mm256_mul_pd(d, d));
            lo[k % 2] = _mm256_min_pd(lo[k % 2], x);
            hi[k % 2] = _mm256_max_pd(hi[k % 2], x);
        }
    }
    let mut sums = LaneSums::ZERO;
    for k in 0..LANES / W {
        let lanes = k * W..(k + 1) * W;
        // SAFETY: each range is W doubles of a LANES-long array.
        unsafe {
            _mm256_storeu_pd(sums.sum[lanes.clone()].as_mut_ptr(), sum[k]);
            _mm256_storeu_pd(sums.shifted[lanes.clone()].as_mut_ptr(), shifted[k]);
            _mm256_storeu_pd(sums.squares[lanes].as_mut_ptr(), squares[k]);
        }
    }
    let (mut min, mut max) = (
        horizontal(_mm256_min_pd(lo[0], lo[1]), f64::min),
        horizontal(_mm256_max_pd(hi[0], hi[1]), f64::max),
    );
    for (lane, &x) in chunks.remainder().iter().enumerate() {
        sums.add(lane, x, shift);
        min = if x < min { x } else { min };
        max = if x > max { x } else { max };
    }
    // SAFETY: this function has the same target features.
    let (min, max) = settle_zero_extremes(min, max, || unsafe { zero_signs(values) });
    sums.finish(values.len(), min, max)
}

#[target_feature(enable = "avx2")]
fn horizontal(v: __m256d, f: fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [0.0; W];
    // SAFETY: `lanes` holds W doubles.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), v) };
    lanes.into_iter().reduce(f).unwrap_or(f64::NAN)
}

/// Which signed zeros `values` holds: integer compares of the bits.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn zero_signs(values: &[f64]) -> ZeroSigns {
    let negative_zero = _mm256_set1_epi64x(i64::MIN);
    let zero = _mm256_setzero_si256();
    let (mut negative, mut positive) = (zero, zero);
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        negative = _mm256_or_si256(negative, _mm256_cmpeq_epi64(x, negative_zero));
        positive = _mm256_or_si256(positive, _mm256_cmpeq_epi64(x, zero));
    }
    let tail = super::super::common::zero_signs(chunks.remainder());
    ZeroSigns {
        negative: tail.negative || _mm256_testz_si256(negative, negative) == 0,
        positive: tail.positive || _mm256_testz_si256(positive, positive) == 0,
    }
}

super::super::loops::segment_and_block_loops!("avx2");

/// Counts the values at or below each of `B` bounds, counters in registers.
#[target_feature(enable = "avx2")]
fn count_block<const B: usize>(values: &[f64], bounds: &[f64], out: &mut [u64]) {
    let limits: [__m256d; B] = std::array::from_fn(|j| _mm256_set1_pd(bounds[j]));
    let mut counts = [_mm256_setzero_si256(); B];
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm256_loadu_pd(chunk.as_ptr()) };
        for j in 0..B {
            // A true lane is all ones, -1 as an integer: subtracting counts it.
            let at_or_below = _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_LE_OQ>(x, limits[j]));
            counts[j] = _mm256_sub_epi64(counts[j], at_or_below);
        }
    }
    count_at_or_below(chunks.remainder(), bounds, out);
    for j in 0..B {
        let mut lanes = [0u64; W];
        // SAFETY: `lanes` holds W 64-bit integers.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), counts[j]) };
        out[j] += lanes.iter().sum::<u64>();
    }
}

/// Number of runs of equal keys in sorted `keys`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn count_runs(keys: &[u64]) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    // Compare each key with the next, a register at a time.
    let pairs = keys.len() - 1;
    let mut equal = 0u64;
    let mut i = 0;
    while i + W <= pairs {
        // SAFETY: i + W <= len - 1, so both loads are in bounds.
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(keys.as_ptr().add(i).cast()),
                _mm256_loadu_si256(keys.as_ptr().add(i + 1).cast()),
            )
        };
        let same = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(a, b)));
        equal += u64::from(same.count_ones());
        i += W;
    }
    equal += keys[i..].windows(2).filter(|w| w[0] == w[1]).count() as u64;
    keys.len() as u64 - equal
}

/// Four doubles, partitioned with `vcmppd` and a `vpermd` table.
#[derive(Clone, Copy)]
struct F64x4(__m256d);

impl PartitionVector for F64x4 {
    type Key = f64;
    const LANES: usize = W;

    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        F64x4(unsafe { _mm256_loadu_pd(ptr) })
    }

    #[inline(always)]
    unsafe fn splat(key: f64) -> Self {
        F64x4(unsafe { _mm256_set1_pd(key) })
    }

    #[inline(always)]
    unsafe fn split(self, pivot: Self) -> (Self, usize) {
        unsafe {
            let below = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(self.0, pivot.0)) as usize;
            let order = _mm256_loadu_si256(PERMUTE_BELOW_FIRST[below].as_ptr().cast());
            let moved = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(self.0), order);
            (
                F64x4(_mm256_castsi256_pd(moved)),
                below.count_ones() as usize,
            )
        }
    }

    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        unsafe { _mm256_storeu_pd(ptr, self.0) }
    }
}

/// Moves the values below `pivot` first; returns their number.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn partition_f64(v: &mut [f64], pivot: f64) -> usize {
    // SAFETY: AVX2 is enabled here.
    unsafe { partition_in_place::<F64x4>(v, pivot) }
}

/// Native histogram bucket keys, as [`Layout::key`] defines them, four values a
/// register: the mantissa's top bits index the layout's cell tables (two
/// gathers), one comparison settles the key. A register holding a subnormal or
/// an infinity outside the zero bucket takes the reference path.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn native_keys(values: &[f64], layout: &Layout, zero_threshold: f64, out: &mut [i32]) {
    assert_eq!(values.len(), out.len(), "one key per value");
    let schema = layout.schema();
    let sign = _mm256_set1_pd(-0.0);
    let threshold = _mm256_set1_pd(zero_threshold);
    let exponent_mask = _mm256_set1_epi64x(EXPONENT_MASK as i64);
    let mantissa_mask = _mm256_set1_epi64x(MANTISSA_MASK as i64);
    let half_exponent = _mm256_set1_epi64x(HALF_EXPONENT as i64);
    let all_exponent = _mm256_set1_epi64x(EXPONENT_MASK as i64);
    let zero = _mm256_setzero_si256();
    let cell_mask = _mm256_set1_epi64x((2i64 << schema.max(0)) - 1);
    let cell_shift = _mm_cvtsi32_si128(51 - i32::from(schema.max(0)));
    let octave_shift = _mm_cvtsi32_si128(i32::from(schema.max(0)));
    // For s <= 0: ceil(exp / 2^-s), made non-negative so a logical shift floors it.
    let divide_shift = _mm_cvtsi32_si128(-i32::from(schema.min(0)));
    let bias = 4096i64;
    let round_up = _mm256_set1_epi64x(((1i64 << -schema.min(0)) - 1) + (bias << -schema.min(0)));
    let unbias = _mm256_set1_epi64x(bias);
    let (below_table, edge_table) = (layout.cell_below(), layout.cell_edge());
    let mut chunks = values.chunks_exact(W);
    let mut keys_out = out.chunks_exact_mut(W);
    for (chunk, keys) in (&mut chunks).zip(&mut keys_out) {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm256_loadu_pd(chunk.as_ptr()) };
        let magnitude = _mm256_andnot_pd(sign, x);
        // Not above the threshold (NaN included): the zero bucket.
        let in_zero = _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_NGT_UQ>(magnitude, threshold));
        let bits = _mm256_castpd_si256(magnitude);
        let exponent = _mm256_and_si256(bits, exponent_mask);
        let odd = _mm256_or_si256(
            _mm256_cmpeq_epi64(exponent, zero),
            _mm256_cmpeq_epi64(exponent, all_exponent),
        );
        if _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_andnot_si256(in_zero, odd))) != 0 {
            for (k, &v) in keys.iter_mut().zip(chunk) {
                *k = layout.key(v, zero_threshold);
            }
            continue;
        }
        // exp - 1 of frexp: the biased exponent less 1023.
        let exp_less_one =
            _mm256_sub_epi64(_mm256_srli_epi64::<52>(bits), _mm256_set1_epi64x(1023));
        let key = if schema > 0 {
            let cell = _mm256_and_si256(_mm256_srl_epi64(bits, cell_shift), cell_mask);
            // SAFETY: `cell` is below 2^(s+1), the length of both tables.
            let (below, edge) = unsafe {
                (
                    _mm256_i64gather_epi64::<8>(below_table.as_ptr(), cell),
                    _mm256_i64gather_pd::<8>(edge_table.as_ptr(), cell),
                )
            };
            let frac = _mm256_castsi256_pd(_mm256_or_si256(
                _mm256_and_si256(bits, mantissa_mask),
                half_exponent,
            ));
            let edge_below = _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_LT_OQ>(edge, frac));
            let in_octave = _mm256_sub_epi64(below, edge_below);
            _mm256_add_epi64(in_octave, _mm256_sll_epi64(exp_less_one, octave_shift))
        } else {
            // exp = exp_less_one + 1, less one when frac is 0.5 (mantissa zero).
            let power_of_two = _mm256_cmpeq_epi64(_mm256_and_si256(bits, mantissa_mask), zero);
            let exp = _mm256_add_epi64(
                _mm256_sub_epi64(exp_less_one, _mm256_set1_epi64x(-1)),
                power_of_two,
            );
            let shifted = _mm256_srl_epi64(_mm256_add_epi64(exp, round_up), divide_shift);
            _mm256_sub_epi64(shifted, unbias)
        };
        let key = _mm256_blendv_epi8(key, _mm256_set1_epi64x(i64::from(ZERO_BUCKET)), in_zero);
        let mut lanes = [0i64; W];
        // SAFETY: `lanes` holds W 64-bit integers.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), key) };
        for (k, lane) in keys.iter_mut().zip(lanes) {
            *k = lane as i32;
        }
    }
    for (k, &v) in keys_out.into_remainder().iter_mut().zip(chunks.remainder()) {
        *k = layout.key(v, zero_threshold);
    }
}
