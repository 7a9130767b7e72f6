//! The cost model that picks the GPU for a window only when it is clearly
//! faster: the "5x rule".
//!
//! A window of `n` samples is predicted to take
//!
//! - on the CPU: `n * cpu_seconds_per_sample`;
//! - on the GPU: `latency + 8n / upload_bytes_per_second + n * gpu_seconds_per_sample`
//!   (a fixed cost per window, the upload, and the kernels with the readback).
//!
//! The GPU is chosen only when its prediction is at most a fifth of the CPU's,
//! so a model that is off by less than 5x never makes a window slower. The
//! figures come from a probe at startup ([`super::offload`]) and are then kept
//! honest by every window that runs: each measured window moves its backend's
//! per-sample figure a quarter of the way to what it measured, so a model that
//! was too kind to the GPU stops choosing it after a few windows.

/// How much faster the GPU must be predicted to be.
pub const GPU_ADVANTAGE: f64 = 5.0;
/// Weight of a new measurement in the running per-sample figures.
const LEARNING_RATE: f64 = 0.25;

/// Predicted costs of the two backends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// CPU seconds per sample (moments and quantiles).
    pub cpu_seconds_per_sample: f64,
    /// GPU seconds per window whatever its size (submission, waits, readback).
    pub gpu_latency_seconds: f64,
    /// Host to device bytes per second.
    pub upload_bytes_per_second: f64,
    /// GPU seconds per sample for the kernels and the readback.
    pub gpu_seconds_per_sample: f64,
}

impl CostModel {
    /// Predicted CPU seconds for a window of `samples`.
    pub fn cpu_seconds(&self, samples: usize) -> f64 {
        samples as f64 * self.cpu_seconds_per_sample
    }

    /// Predicted GPU seconds for a window of `samples`, upload and readback included.
    pub fn gpu_seconds(&self, samples: usize) -> f64 {
        let n = samples as f64;
        self.gpu_latency_seconds
            + n * 8.0 / self.upload_bytes_per_second
            + n * self.gpu_seconds_per_sample
    }

    /// Whether the GPU is predicted at most a fifth of the CPU's time.
    pub fn prefers_gpu(&self, samples: usize) -> bool {
        self.gpu_seconds(samples) * GPU_ADVANTAGE <= self.cpu_seconds(samples)
    }

    /// The smallest window the GPU is chosen for, if any (for logs).
    pub fn crossover(&self) -> Option<usize> {
        let gain = self.cpu_seconds_per_sample
            - GPU_ADVANTAGE * (8.0 / self.upload_bytes_per_second + self.gpu_seconds_per_sample);
        (gain > 0.0).then(|| (GPU_ADVANTAGE * self.gpu_latency_seconds / gain).ceil() as usize)
    }

    /// Learns from a window of `samples` that took `seconds` on the CPU.
    pub fn observe_cpu(&mut self, samples: usize, seconds: f64) {
        if samples > 0 {
            learn(&mut self.cpu_seconds_per_sample, seconds / samples as f64);
        }
    }

    /// Learns from a window of `samples` whose kernels and readback took
    /// `seconds` on the GPU (after an upload the model times separately).
    pub fn observe_gpu(&mut self, samples: usize, seconds: f64) {
        if samples > 0 {
            let per_sample = ((seconds - self.gpu_latency_seconds) / samples as f64).max(0.0);
            learn(&mut self.gpu_seconds_per_sample, per_sample);
        }
    }
}

fn learn(figure: &mut f64, measured: f64) {
    *figure += LEARNING_RATE * (measured - *figure);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CostModel {
        CostModel {
            cpu_seconds_per_sample: 20e-9,
            gpu_latency_seconds: 1e-3,
            upload_bytes_per_second: 10e9,
            gpu_seconds_per_sample: 0.2e-9,
        }
    }

    #[test]
    fn the_gpu_wins_only_large_windows_by_five_times() {
        let model = model();
        // Per sample the GPU costs 0.8 + 0.2 = 1 ns against 20: a fifth of the
        // CPU once 1 ms + n ns <= 4 n ns, from n = 333,334.
        assert_eq!(model.crossover(), Some(333_334));
        assert!(!model.prefers_gpu(333_000));
        assert!(model.prefers_gpu(334_000));
        assert!(model.gpu_seconds(1 << 30) * GPU_ADVANTAGE <= model.cpu_seconds(1 << 30));
    }

    #[test]
    fn a_gpu_slower_per_sample_than_a_fifth_of_the_cpu_is_never_chosen() {
        let mut model = model();
        model.gpu_seconds_per_sample = 4e-9;
        assert_eq!(model.crossover(), None);
        assert!(!model.prefers_gpu(usize::MAX >> 8));
    }

    #[test]
    fn measurements_pull_the_model_towards_them() {
        let mut model = model();
        // A GPU window far slower than predicted: after a few the GPU loses.
        for _ in 0..8 {
            model.observe_gpu(1_000_000, 1e-3 + 1_000_000.0 * 10e-9);
        }
        assert!(!model.prefers_gpu(10_000_000));
        model.observe_cpu(1000, 1000.0 * 40e-9);
        assert!((model.cpu_seconds_per_sample - 25e-9).abs() < 1e-15);
    }
}
