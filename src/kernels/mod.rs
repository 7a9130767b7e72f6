//! Aggregation kernels: the arithmetic of a window close, over plain `f64` slices.
//!
//! `scalar` is the reference and the specification: reduction order, quantile
//! ranks, bucket edges. Faster backends (SIMD per ISA, GPU) will sit beside it
//! behind one dispatch point and be tested against it. No tokio, no allocation:
//! callers own every buffer.

pub mod scalar;
