//! [`Kernels`]: the one safe entry point, holding the backend chosen at startup.
//!
//! A `Kernels` value can only be made for a backend this CPU supports, so its
//! methods call the `unsafe` ISA functions soundly. Each method matches on the
//! backend once and, in the segmented forms, runs the whole buffer inside the
//! backend's code, so the per-series kernels inline there.

use smallvec::SmallVec;

use super::backend::{Backend, ChoiceError, KernelChoice, Source};
use super::common::{Moments, check_segments, quantile_rank, settle_zero_quantiles};
use super::native::Layout;
use super::scalar;
use super::select;

/// Runs `$simd` with `$isa` naming the backend's module, or `$scalar` on the reference.
macro_rules! dispatch {
    ($self:ident, $scalar:expr, |$isa:ident| $simd:expr) => {
        match $self.backend {
            Backend::Scalar => $scalar,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                use super::x86_64::avx2 as $isa;
                // SAFETY: `Kernels` holds only backends the CPU supports.
                unsafe { $simd }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                use super::x86_64::avx512 as $isa;
                // SAFETY: as above.
                unsafe { $simd }
            }
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => {
                use super::aarch64::neon as $isa;
                // SAFETY: as above.
                unsafe { $simd }
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("Kernels holds only backends this CPU supports"),
        }
    };
}

/// Series shorter than this get their quantiles from the scalar selection on
/// every backend: vector selection measured 2.1x faster at 1,000 values but
/// slower than the scalar one on series of about 100 (`kernels/flush`).
const VECTOR_SELECTION_MIN: usize = 512;

/// The aggregation kernels on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernels {
    backend: Backend,
}

impl Default for Kernels {
    /// The preferred backend this CPU supports (what `auto` picks).
    fn default() -> Self {
        Kernels {
            backend: Backend::best(),
        }
    }
}

impl Kernels {
    /// The scalar reference, on any CPU.
    pub const SCALAR: Kernels = Kernels {
        backend: Backend::Scalar,
    };

    /// The kernels on `backend`, if this CPU supports it.
    pub fn on(backend: Backend) -> Option<Kernels> {
        backend.is_available().then_some(Kernels { backend })
    }

    /// The kernels `choice` (overridden by `TALLYD_KERNEL` when set) picks on this
    /// CPU and the setting that decided, or a message naming the setting that
    /// cannot be met.
    pub fn choose(choice: KernelChoice) -> Result<(Kernels, Source), ChoiceError> {
        KernelChoice::resolve_with_env(choice)
            .map(|(backend, source)| (Kernels { backend }, source))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Count, sum, min, max and spread of one series' values.
    pub fn moments(&self, values: &[f64]) -> Moments {
        dispatch!(self, scalar::moments(values), |isa| isa::moments(values))
    }

    /// [`Kernels::moments`] of each segment: `offsets[i]..offsets[i + 1]` of
    /// `values` is series `i`, its moments go to `out[i]`.
    pub fn moments_segmented(&self, values: &[f64], offsets: &[usize], out: &mut [Moments]) {
        check_segments(offsets, values.len(), out.len(), 1);
        dispatch!(
            self,
            for (segment, slot) in offsets.windows(2).zip(out.iter_mut()) {
                *slot = scalar::moments(&values[segment[0]..segment[1]]);
            },
            |isa| isa::moments_segmented(values, offsets, out)
        )
    }

    /// Exact quantiles of one series: `out[i]` is the value of rank
    /// `ceil(qs[i] * n)` in `f64::total_cmp` order (NaN when `values` is empty).
    /// Reorders `values`.
    pub fn quantiles(&self, values: &mut [f64], qs: &[f64], out: &mut [f64]) {
        assert_eq!(qs.len(), out.len(), "one output per quantile");
        if values.len() < VECTOR_SELECTION_MIN {
            return scalar::quantiles(values, qs, out);
        }
        dispatch!(self, scalar::quantiles(values, qs, out), |isa| {
            select_quantiles(values, qs, out, &|v, pivot| isa::partition_f64(v, pivot))
        })
    }

    /// [`Kernels::quantiles`] of each segment; `out` holds `qs.len()` values a
    /// segment, in the order of `qs`.
    pub fn quantiles_segmented(
        &self,
        values: &mut [f64],
        offsets: &[usize],
        qs: &[f64],
        out: &mut [f64],
    ) {
        check_segments(offsets, values.len(), out.len(), qs.len());
        if qs.is_empty() {
            return;
        }
        for (segment, slot) in offsets.windows(2).zip(out.chunks_exact_mut(qs.len())) {
            self.quantiles(&mut values[segment[0]..segment[1]], qs, slot);
        }
    }

    /// Prometheus' cumulative bucket counts of one series: `out[i]` is the number
    /// of values `<= bounds[i]` (`bounds` strictly increasing).
    pub fn cumulative_buckets(&self, values: &[f64], bounds: &[f64], out: &mut [u64]) {
        dispatch!(
            self,
            scalar::cumulative_buckets(values, bounds, out),
            |isa| isa::cumulative_buckets(values, bounds, out)
        )
    }

    /// [`Kernels::cumulative_buckets`] of each segment; `out` holds
    /// `bounds.len()` counts a segment.
    pub fn buckets_segmented(
        &self,
        values: &[f64],
        offsets: &[usize],
        bounds: &[f64],
        out: &mut [u64],
    ) {
        check_segments(offsets, values.len(), out.len(), bounds.len());
        if bounds.is_empty() {
            return;
        }
        dispatch!(
            self,
            for (segment, counts) in offsets.windows(2).zip(out.chunks_exact_mut(bounds.len())) {
                scalar::cumulative_buckets(&values[segment[0]..segment[1]], bounds, counts);
            },
            |isa| isa::buckets_segmented(values, offsets, bounds, out)
        )
    }

    /// The native histogram bucket key of each value under `layout` into `out`
    /// ([`Layout::key`]); an element-wise kernel, so a window's whole buffer is
    /// one call whatever its series.
    pub fn native_keys(
        &self,
        values: &[f64],
        layout: &Layout,
        zero_threshold: f64,
        out: &mut [i32],
    ) {
        dispatch!(
            self,
            scalar::native_keys(values, layout, zero_threshold, out),
            |isa| isa::native_keys(values, layout, zero_threshold, out)
        )
    }

    /// Number of distinct values among 64-bit member hashes; reorders `hashes`.
    pub fn distinct_count(&self, hashes: &mut [u64]) -> u64 {
        // The sort is the standard library's on every backend: our vector
        // quicksort measured twice as slow as it at 1e5 hashes. The count of
        // runs is vectorised.
        dispatch!(self, scalar::distinct_count(hashes), |isa| {
            hashes.sort_unstable();
            isa::count_runs(hashes)
        })
    }

    /// [`Kernels::distinct_count`] of each segment, into `out[i]`.
    pub fn distinct_segmented(&self, hashes: &mut [u64], offsets: &[usize], out: &mut [u64]) {
        check_segments(offsets, hashes.len(), out.len(), 1);
        for (segment, slot) in offsets.windows(2).zip(out.iter_mut()) {
            *slot = self.distinct_count(&mut hashes[segment[0]..segment[1]]);
        }
    }
}

/// Quantiles by multi-rank selection with a vector partition.
fn select_quantiles(
    values: &mut [f64],
    qs: &[f64],
    out: &mut [f64],
    partition: &impl Fn(&mut [f64], f64) -> usize,
) {
    if values.is_empty() {
        out.fill(f64::NAN);
        return;
    }
    let n = values.len();
    let mut by_rank: SmallVec<[(usize, usize); 16]> = qs
        .iter()
        .enumerate()
        .map(|(i, &q)| (quantile_rank(q, n) - 1, i))
        .collect();
    by_rank.sort_unstable();
    let ranks: SmallVec<[usize; 16]> = by_rank.iter().map(|&(rank, _)| rank).collect();
    let mut found: SmallVec<[f64; 16]> = SmallVec::from_elem(0.0, ranks.len());
    select::select(values, &ranks, &mut found, partition);
    for (&(_, i), value) in by_rank.iter().zip(found) {
        out[i] = value;
    }
    settle_zero_quantiles(values, qs, out);
}
