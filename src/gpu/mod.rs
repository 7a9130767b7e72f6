//! GPU offload of large windows: the segmented kernels on wgpu compute
//! (Vulkan only), and the cost model that decides, window by window, whether
//! the GPU or the CPU computes them.
//!
//! - [`device`]: finding an adapter with f64 and i64 shaders; its absence is a
//!   logged fallback to the CPU, never an error.
//! - [`plan`]: cutting a window into parts, chunks and tiles within the
//!   adapter's binding limit.
//! - [`engine`]: [`GpuKernels`], the kernels themselves (`shaders/*.wgsl`).
//!
//! This module must never lose a window: every failure is a [`GpuError`] that
//! the caller answers by computing the window on the CPU.

mod buffers;
pub mod device;
pub mod engine;
mod pipelines;
pub mod plan;

pub use device::Unavailable;
pub use engine::{GpuError, GpuKernels, Outputs, Request, Timings, sum_error_bound};

#[cfg(test)]
mod tests;
