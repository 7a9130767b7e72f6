//! The GPU offload's state, cost model and counters, read by the
//! `tallyd_kernel_gpu_*` metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use super::counters::{Counter, FloatGauge};

/// Where the GPU offload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum GpuState {
    /// `gpu.mode: off`.
    Off,
    /// Looking for an adapter and probing its speed.
    Starting,
    /// An adapter is in use.
    Ready,
    /// No usable adapter (or built without the `gpu` feature).
    Unavailable,
    /// Turned off after repeated failures.
    Disabled,
}

impl GpuState {
    const ALL: [GpuState; 5] = [
        GpuState::Off,
        GpuState::Starting,
        GpuState::Ready,
        GpuState::Unavailable,
        GpuState::Disabled,
    ];

    /// The label value in `tallyd_kernel_gpu_info{state}`.
    pub fn as_str(self) -> &'static str {
        match self {
            GpuState::Off => "off",
            GpuState::Starting => "starting",
            GpuState::Ready => "ready",
            GpuState::Unavailable => "unavailable",
            GpuState::Disabled => "disabled",
        }
    }
}

/// The GPU offload as the metrics see it.
#[derive(Debug, Default)]
pub struct GpuStats {
    state: AtomicU8,
    /// The adapter in use (empty when none).
    pub adapter: Mutex<String>,
    /// Windows computed on the GPU.
    pub windows_offloaded: Counter,
    /// Windows the GPU failed and the CPU re-ran.
    pub fallbacks: Counter,
    /// Cost model: CPU seconds per sample.
    pub cpu_seconds_per_sample: FloatGauge,
    /// Cost model: GPU seconds per sample (kernels and readback).
    pub gpu_seconds_per_sample: FloatGauge,
    /// Cost model: GPU seconds per window, whatever its size.
    pub gpu_latency_seconds: FloatGauge,
    /// Cost model: host to GPU bytes per second.
    pub upload_bytes_per_second: FloatGauge,
}

impl GpuStats {
    /// The current state.
    pub fn state(&self) -> GpuState {
        GpuState::ALL[usize::from(self.state.load(Ordering::Relaxed))]
    }

    /// Moves to `state`.
    pub fn set_state(&self, state: GpuState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}
