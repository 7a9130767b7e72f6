//! GPU offload of large windows: the segmented kernels on wgpu compute
//! (Vulkan only), and the cost model that decides, window by window, whether
//! the GPU or the CPU computes them.
//!
//! - [`offload`]: [`Offload`], the per-window decision, the startup probe, and
//!   the fallback to the CPU when the GPU fails;
//! - [`cost`]: [`CostModel`], the "5x rule";
//! - [`work`]: what a window's GPU work is (request, outputs, errors);
//! - [`plan`]: cutting a window into parts, chunks and tiles within the
//!   adapter's binding limit;
//! - `engine`: [`GpuKernels`], the kernels themselves (`shaders/*.wgsl`), and
//!   `device`: finding an adapter with f64 and i64 shaders. Both exist only
//!   with the `gpu` feature (on by default); without it a stand-in that never
//!   opens takes their place and every window runs on the CPU.
//!
//! This module must never lose a window: every failure is a [`GpuError`] that
//! the caller answers by computing the window on the CPU.

#[cfg(feature = "gpu")]
mod buffers;
pub mod cost;
#[cfg(feature = "gpu")]
pub mod device;
#[cfg(not(feature = "gpu"))]
mod disabled;
#[cfg(feature = "gpu")]
mod engine;
pub mod offload;
#[cfg(feature = "gpu")]
mod pipelines;
pub mod plan;
pub mod work;

pub use cost::CostModel;
#[cfg(not(feature = "gpu"))]
pub use disabled::GpuKernels;
#[cfg(feature = "gpu")]
pub use engine::GpuKernels;
pub use offload::Offload;
pub use work::{GpuError, Outputs, Request, Timings, Unavailable, sum_error_bound};

#[cfg(all(test, feature = "gpu"))]
mod tests;
