//! Aggregation kernels: the arithmetic of a window close, over plain slices.
//!
//! Laid out like memchr's `arch/`: [`scalar`] is the reference and the
//! specification (reduction order, quantile ranks, bucket edges, the order of
//! signed zeros); `x86_64/` (AVX2, AVX-512) and `aarch64/` (NEON) are faster
//! backends that must give the same answers; [`Kernels`] is the one safe facade,
//! holding a [`Backend`] chosen once at startup from the CPU's features.
//!
//! Every kernel comes per series and in a segmented form: many series' values in
//! one contiguous buffer, cut by an offsets array (`offsets[i]..offsets[i + 1]`
//! is series `i`), so a shard's whole window is one call and the dispatch is paid
//! once, not per series.
//!
//! What "the same answers" means, checked by one property-test harness per
//! backend (`tests.rs`):
//! - counts, minimum, maximum, quantiles, bucket counts and distinct counts are
//!   identical, bit for bit;
//! - sums are identical too, because every backend adds in the reference's
//!   order: 16 lanes, element `i` added to lane `i % 16`, lanes combined by a
//!   fixed pairwise tree, no fused multiply-add. The tolerance against the
//!   reference is therefore zero. Against the exact sum, the lane-wise order
//!   bounds the error by `(ceil(n / 16) + 4) * 2^-53 * sum(|x|)`, a bound the
//!   tests also check.
//!
//! No tokio, no allocation in the per-series kernels: callers own every buffer.

mod backend;
mod common;
mod facade;
mod loops;
pub mod native;
mod partition;
pub mod scalar;
mod select;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(test)]
pub(crate) mod tests;

pub use backend::{
    Backend, ChoiceError, KERNEL_ENV, KernelChoice, Source, Unavailable, UnknownKernel,
};
pub use common::{LANES, Moments, check_segments, quantile_rank};
pub use facade::Kernels;
