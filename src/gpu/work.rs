//! What a window's GPU work is, independent of wgpu: the request, where its
//! results go, what it cost, how it can fail, and the stated error bound of
//! its sums. The cost model and the offload decision use these types in every
//! build, with or without the `gpu` feature.

use std::time::Duration;

use super::plan::TILE_VALUES;
use crate::kernels::Moments;

/// Why no GPU is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// tallyd was built without the `gpu` feature.
    #[error("built without the gpu feature")]
    NotBuilt,
    /// No Vulkan adapter at all (no driver, or no device).
    #[error("no GPU adapter: no Vulkan device was found")]
    NoAdapter,
    /// The only adapter runs on the CPU (such as Mesa's lavapipe), which `auto`
    /// does not use: it cannot beat the CPU kernels it shares the cores with.
    #[error("GPU adapter {adapter} is a software rasteriser (only gpu.mode: force uses one)")]
    SoftwareOnly {
        /// The adapter's name and driver.
        adapter: String,
    },
    /// The adapter lacks a feature the kernels need.
    #[error("GPU adapter {adapter} lacks {missing} (needs SHADER_F64 and SHADER_INT64)")]
    MissingFeatures {
        /// The adapter's name and driver.
        adapter: String,
        /// The features it lacks.
        missing: String,
    },
    /// The device could not be opened.
    #[error("GPU adapter {adapter} refused a device: {reason}")]
    DeviceRefused {
        /// The adapter's name and driver.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },
}

/// Why a window could not be computed on the GPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// wgpu reported a validation error or the device was lost.
    #[error("GPU fault: {0}")]
    Fault(String),
    /// The device did not finish within the timeout.
    #[error("GPU did not finish within {0:?}")]
    Timeout(Duration),
    /// A staging buffer could not be mapped.
    #[error("GPU buffer mapping failed: {0}")]
    Mapping(String),
    /// The request is outside what the kernels handle.
    #[error("not computed on the GPU: {0}")]
    Unsupported(String),
}

/// What to compute for a window.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The window's samples, series after series.
    pub values: &'a [f64],
    /// Segment `i` is `offsets[i]..offsets[i + 1]`.
    pub offsets: &'a [usize],
    /// Quantiles wanted of each segment (may be empty).
    pub quantiles: &'a [f64],
    /// Histogram bounds, strictly increasing (may be empty).
    pub bounds: &'a [f64],
}

/// Where the results go: one entry per segment (times quantiles or bounds).
#[derive(Debug)]
pub struct Outputs<'a> {
    /// Moments of each segment.
    pub moments: &'a mut [Moments],
    /// `quantiles.len()` values a segment, NaN for an empty one.
    pub quantiles: &'a mut [f64],
    /// `bounds.len()` cumulative counts a segment.
    pub buckets: &'a mut [u64],
}

/// Where a window's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Host to device copies (staging included).
    pub upload: Duration,
    /// Dispatches and the readback.
    pub compute: Duration,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// The stated bound on a GPU sum's error: `(ceil(n / 4096) + 24) * 2^-53 *
/// sum(|x|)` (at most 16 additions per invocation, 8 tree levels, then the
/// tiles in order).
pub fn sum_error_bound(count: usize, magnitude: f64) -> f64 {
    (count.div_ceil(TILE_VALUES) as f64 + 24.0) * f64::EPSILON / 2.0 * magnitude
}

/// The value whose order key is `key` (inverse of `order_key` in the shaders).
pub fn from_key(key: u64) -> f64 {
    let bits = if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    };
    f64::from_bits(bits)
}
