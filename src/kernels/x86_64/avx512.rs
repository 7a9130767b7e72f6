//! AVX-512 kernels: eight doubles a register, compares into mask registers.
//!
//! Moments keep the reference's 16 lanes as two registers each of sums,
//! shifted sums and squares; buckets add one to each lane whose mask bit is
//! set; partitions use `vcompresspd` into a register (never the memory form,
//! which is microcoded and slow on AMD) and `vexpandpd` to put the lanes at or
//! above the pivot after those below.
//!
//! Every function is `unsafe` only because it needs AVX-512F: the facade calls
//! them after detection.

use std::arch::x86_64::*;

use super::super::common::{
    LANES, LaneSums, Moments, ZeroSigns, count_at_or_below, settle_zero_extremes,
};
use super::super::native::{EXPONENT_MASK, HALF_EXPONENT, Layout, MANTISSA_MASK, ZERO_BUCKET};
use super::super::partition::{PartitionVector, partition_in_place};

const W: usize = 8;

/// Count, sum, min, max and centred sum of squares, as [`scalar::moments`](super::super::scalar::moments).
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn moments(values: &[f64]) -> Moments {
    let Some(&shift) = values.first() else {
        return Moments::EMPTY;
    };
    let s = _mm512_set1_pd(shift);
    let zero = _mm512_setzero_pd();
    let (mut sum, mut shifted, mut squares) = ([zero; 2], [zero; 2], [zero; 2]);
    let (mut lo, mut hi) = ([s; 2], [s; 2]);
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES / W {
            // SAFETY: the chunk holds LANES values; k * W + W <= LANES.
            let x = unsafe { _mm512_loadu_pd(chunk.as_ptr().add(k * W)) };
            let d = _mm512_sub_pd(x, s);
            sum[k] = _mm512_add_pd(sum[k], x);
            shifted[k] = _mm512_add_pd(shifted[k], d);
            squares[k] = _mm512_add_pd(squares[k], _mm512_mul_pd(d, d));
            lo[k] = _mm512_min_pd(lo[k], x);
            hi[k] = _mm512_max_pd(hi[k], x);
        }
    }
    let mut sums = LaneSums::ZERO;
    for k in 0..LANES / W {
        let lanes = k * W..(k + 1) * W;
        // SAFETY: each range is W doubles of a LANES-long array.
        unsafe {
            _mm512_storeu_pd(sums.sum[lanes.clone()].as_mut_ptr(), sum[k]);
            _mm512_storeu_pd(sums.shifted[lanes.clone()].as_mut_ptr(), shifted[k]);
            _mm512_storeu_pd(sums.squares[lanes].as_mut_ptr(), squares[k]);
        }
    }
    let mut min = _mm512_reduce_min_pd(_mm512_min_pd(lo[0], lo[1]));
    let mut max = _mm512_reduce_max_pd(_mm512_max_pd(hi[0], hi[1]));
    for (lane, &x) in chunks.remainder().iter().enumerate() {
        sums.add(lane, x, shift);
        min = if x < min { x } else { min };
        max = if x > max { x } else { max };
    }
    // SAFETY: this function has the same target features.
    let (min, max) = settle_zero_extremes(min, max, || unsafe { zero_signs(values) });
    sums.finish(values.len(), min, max)
}

/// Which signed zeros `values` holds: integer compares of the bits into masks.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn zero_signs(values: &[f64]) -> ZeroSigns {
    let negative_zero = _mm512_set1_epi64(i64::MIN);
    let zero = _mm512_setzero_si512();
    let (mut negative, mut positive): (__mmask8, __mmask8) = (0, 0);
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
        negative |= _mm512_cmpeq_epi64_mask(x, negative_zero);
        positive |= _mm512_cmpeq_epi64_mask(x, zero);
    }
    let tail = super::super::common::zero_signs(chunks.remainder());
    ZeroSigns {
        negative: tail.negative || negative != 0,
        positive: tail.positive || positive != 0,
    }
}

super::super::loops::segment_and_block_loops!("avx512f");

/// Counts the values at or below each of `B` bounds, counters in registers.
#[target_feature(enable = "avx512f")]
fn count_block<const B: usize>(values: &[f64], bounds: &[f64], out: &mut [u64]) {
    let limits: [__m512d; B] = std::array::from_fn(|j| _mm512_set1_pd(bounds[j]));
    let one = _mm512_set1_epi64(1);
    let mut counts = [_mm512_setzero_si512(); B];
    let mut chunks = values.chunks_exact(W);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm512_loadu_pd(chunk.as_ptr()) };
        for j in 0..B {
            let at_or_below = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x, limits[j]);
            counts[j] = _mm512_mask_add_epi64(counts[j], at_or_below, counts[j], one);
        }
    }
    count_at_or_below(chunks.remainder(), bounds, out);
    for j in 0..B {
        out[j] += _mm512_reduce_add_epi64(counts[j]) as u64;
    }
}

/// Number of runs of equal keys in sorted `keys`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn count_runs(keys: &[u64]) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    let pairs = keys.len() - 1;
    let mut equal = 0u64;
    let mut i = 0;
    while i + W <= pairs {
        // SAFETY: i + W <= len - 1, so both loads are in bounds.
        let (a, b) = unsafe {
            (
                _mm512_loadu_si512(keys.as_ptr().add(i).cast()),
                _mm512_loadu_si512(keys.as_ptr().add(i + 1).cast()),
            )
        };
        equal += u64::from(_mm512_cmpeq_epi64_mask(a, b).count_ones());
        i += W;
    }
    equal += keys[i..].windows(2).filter(|w| w[0] == w[1]).count() as u64;
    keys.len() as u64 - equal
}

/// The mask of lanes `below..W`: where the lanes at or above the pivot go.
#[inline(always)]
fn upper_lanes(below: usize) -> __mmask8 {
    (0xFFu16 << below) as __mmask8
}

/// Eight doubles, partitioned by compress and expand.
#[derive(Clone, Copy)]
struct F64x8(__m512d);

impl PartitionVector for F64x8 {
    type Key = f64;
    const LANES: usize = W;

    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        F64x8(unsafe { _mm512_loadu_pd(ptr) })
    }

    #[inline(always)]
    unsafe fn splat(key: f64) -> Self {
        F64x8(unsafe { _mm512_set1_pd(key) })
    }

    #[inline(always)]
    unsafe fn split(self, pivot: Self) -> (Self, usize) {
        unsafe {
            let below = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, pivot.0);
            let n = below.count_ones() as usize;
            let low = _mm512_maskz_compress_pd(below, self.0);
            let high = _mm512_maskz_compress_pd(!below, self.0);
            (F64x8(_mm512_mask_expand_pd(low, upper_lanes(n), high)), n)
        }
    }

    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        unsafe { _mm512_storeu_pd(ptr, self.0) }
    }
}

/// Moves the values below `pivot` first; returns their number.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn partition_f64(v: &mut [f64], pivot: f64) -> usize {
    // SAFETY: AVX-512F is enabled here.
    unsafe { partition_in_place::<F64x8>(v, pivot) }
}

/// Native histogram bucket keys, as [`Layout::key`] defines them, eight values a
/// register: the mantissa's top bits index the layout's cell tables (two
/// gathers), one masked add settles the key, and the keys narrow to 32 bits in
/// the register. A register holding a subnormal or an infinity outside the zero
/// bucket takes the reference path.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn native_keys(values: &[f64], layout: &Layout, zero_threshold: f64, out: &mut [i32]) {
    assert_eq!(values.len(), out.len(), "one key per value");
    let schema = layout.schema();
    let fine = u32::from(schema.max(0) as u8);
    let coarse = u32::from((-schema.min(0)) as u8);
    let threshold = _mm512_set1_pd(zero_threshold);
    let exponent_mask = _mm512_set1_epi64(EXPONENT_MASK as i64);
    let mantissa_mask = _mm512_set1_epi64(MANTISSA_MASK as i64);
    let half_exponent = _mm512_set1_epi64(HALF_EXPONENT as i64);
    let zero = _mm512_setzero_si512();
    let cell_mask = _mm512_set1_epi64((2i64 << fine) - 1);
    let cell_shift = _mm512_set1_epi64(51 - i64::from(fine));
    let round_up = _mm512_set1_epi64((1i64 << coarse) - 1);
    let (below_table, edge_table) = (layout.cell_below(), layout.cell_edge());
    let zero_bucket = _mm512_set1_epi64(i64::from(ZERO_BUCKET));
    let mut chunks = values.chunks_exact(W);
    let mut keys_out = out.chunks_exact_mut(W);
    for (chunk, keys) in (&mut chunks).zip(&mut keys_out) {
        // SAFETY: the chunk holds W values.
        let x = unsafe { _mm512_loadu_pd(chunk.as_ptr()) };
        let magnitude = _mm512_abs_pd(x);
        // Not above the threshold (NaN included): the zero bucket.
        let in_zero = _mm512_cmp_pd_mask::<_CMP_NGT_UQ>(magnitude, threshold);
        let bits = _mm512_castpd_si512(magnitude);
        let exponent = _mm512_and_si512(bits, exponent_mask);
        let odd = _mm512_cmpeq_epi64_mask(exponent, zero)
            | _mm512_cmpeq_epi64_mask(exponent, exponent_mask);
        if odd & !in_zero != 0 {
            for (k, &v) in keys.iter_mut().zip(chunk) {
                *k = layout.key(v, zero_threshold);
            }
            continue;
        }
        // exp - 1 of frexp: the biased exponent less 1023.
        let exp_less_one = _mm512_sub_epi64(_mm512_srli_epi64::<52>(bits), _mm512_set1_epi64(1023));
        let key = if schema > 0 {
            let cell = _mm512_and_si512(_mm512_srlv_epi64(bits, cell_shift), cell_mask);
            // SAFETY: `cell` is below 2^(s+1), the length of both tables.
            let (below, edge) = unsafe {
                (
                    _mm512_i64gather_epi64::<8>(cell, below_table.as_ptr()),
                    _mm512_i64gather_pd::<8>(cell, edge_table.as_ptr()),
                )
            };
            let frac = _mm512_castsi512_pd(_mm512_or_si512(
                _mm512_and_si512(bits, mantissa_mask),
                half_exponent,
            ));
            let edge_below = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(edge, frac);
            let in_octave = _mm512_mask_add_epi64(below, edge_below, below, _mm512_set1_epi64(1));
            _mm512_add_epi64(
                in_octave,
                _mm512_sllv_epi64(exp_less_one, _mm512_set1_epi64(i64::from(fine))),
            )
        } else {
            // exp = exp_less_one + 1, less one when frac is 0.5 (mantissa zero).
            let power_of_two = _mm512_cmpeq_epi64_mask(_mm512_and_si512(bits, mantissa_mask), zero);
            let exp = _mm512_mask_sub_epi64(
                _mm512_add_epi64(exp_less_one, _mm512_set1_epi64(1)),
                power_of_two,
                exp_less_one,
                zero,
            );
            // ceil(exp / 2^-s), as an arithmetic shift floors.
            _mm512_srav_epi64(
                _mm512_add_epi64(exp, round_up),
                _mm512_set1_epi64(i64::from(coarse)),
            )
        };
        let key = _mm512_mask_blend_epi64(in_zero, key, zero_bucket);
        let narrow = _mm512_cvtepi64_epi32(key);
        // SAFETY: `keys` holds W 32-bit integers.
        unsafe { _mm256_storeu_si256(keys.as_mut_ptr().cast(), narrow) };
    }
    for (k, &v) in keys_out.into_remainder().iter_mut().zip(chunks.remainder()) {
        *k = layout.key(v, zero_threshold);
    }
}
