//! [`Offload`]: the per-window decision between the GPU and the CPU, and what
//! happens when the GPU fails.
//!
//! - `gpu.mode: off` opens nothing.
//! - `auto` opens the adapter and probes both backends on a background thread
//!   ([`calibrate`]), so startup never waits on a GPU; until the probe is done
//!   every window runs on the CPU. A window then goes to the GPU when it holds
//!   at least `gpu.min_window_samples` and the [`CostModel`] predicts the GPU
//!   at most a fifth of the CPU's time.
//! - `force` opens and probes before the daemon serves, then sends every
//!   window to the GPU.
//!
//! No adapter is a logged fallback to the CPU, never an error. `auto` skips a
//! software adapter (Mesa's lavapipe) without probing it. A window the
//! GPU fails (device lost, timeout, mapping error) is re-run on the CPU by
//! the caller and counted; after [`MAX_CONSECUTIVE_FAILURES`] failures in a
//! row the GPU is dropped for good, with an error in the log.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use super::GpuKernels;
use super::cost::CostModel;
use super::work::{GpuError, Outputs, Request, Unavailable};
use crate::config::{self, GpuMode};
use crate::kernels::{Kernels, Moments};
use crate::telemetry::{GpuState, Telemetry};

/// Failures in a row after which the GPU is no longer used.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;
/// Longest wait on the device for one step of a window.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(30);
/// Samples in the startup probe window, in series of [`PROBE_SERIES`] values.
const PROBE_SAMPLES: usize = 1 << 17;
const PROBE_SERIES: usize = 256;

/// The GPU offload shared by every shard's flush thread.
#[derive(Debug)]
pub struct Offload {
    /// `gpu.mode` and `gpu.min_window_samples`; a reload may change them.
    settings: Mutex<config::Gpu>,
    engine: Mutex<Engine>,
    model: Mutex<Option<CostModel>>,
    telemetry: Arc<Telemetry>,
}

/// The device and how it has fared.
#[derive(Debug, Default)]
struct Engine {
    kernels: Option<GpuKernels>,
    failures: u32,
}

impl Offload {
    /// Starts the offload `settings` ask for; see the module docs. `kernels`
    /// and `quantiles` are what the CPU would use, for the probe.
    pub fn start(
        settings: &config::Gpu,
        kernels: Kernels,
        quantiles: Vec<f64>,
        telemetry: Arc<Telemetry>,
    ) -> Arc<Offload> {
        let offload = Arc::new(Offload {
            settings: Mutex::new(*settings),
            engine: Mutex::new(Engine::default()),
            model: Mutex::new(None),
            telemetry,
        });
        match settings.mode {
            GpuMode::Off => {
                offload.telemetry.gpu.set_state(GpuState::Off);
                tracing::info!(mode = "off", "GPU offload off");
            }
            GpuMode::Force => offload.bring_up(kernels, &quantiles),
            GpuMode::Auto => offload.bring_up_in_background(kernels, quantiles),
        }
        offload
    }

    /// Applies reloaded `gpu` settings from the next window on. Turning the
    /// GPU on when it was off opens and probes it in the background; turning
    /// it off keeps the device open but unused.
    pub fn reconfigure(
        self: &Arc<Self>,
        settings: &config::Gpu,
        kernels: Kernels,
        quantiles: Vec<f64>,
    ) {
        *self.lock_settings() = *settings;
        let state = self.telemetry.gpu.state();
        if settings.mode != GpuMode::Off && state == GpuState::Off {
            if self.lock_engine().kernels.is_some() {
                self.telemetry.gpu.set_state(GpuState::Ready);
            } else {
                self.bring_up_in_background(kernels, quantiles);
            }
        } else if settings.mode == GpuMode::Off && state == GpuState::Ready {
            self.telemetry.gpu.set_state(GpuState::Off);
        }
    }

    fn bring_up_in_background(self: &Arc<Self>, kernels: Kernels, quantiles: Vec<f64>) {
        self.telemetry.gpu.set_state(GpuState::Starting);
        let background = self.clone();
        let spawned = std::thread::Builder::new()
            .name("tallyd-gpu-probe".into())
            .spawn(move || background.bring_up(kernels, &quantiles));
        if let Err(e) = spawned {
            self.telemetry.gpu.set_state(GpuState::Unavailable);
            tracing::warn!(error = %e, "GPU probe not started; windows stay on the CPU");
        }
    }

    fn mode(&self) -> GpuMode {
        self.lock_settings().mode
    }

    fn lock_settings(&self) -> MutexGuard<'_, config::Gpu> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the adapter and probes it; logs either way.
    fn bring_up(&self, kernels: Kernels, quantiles: &[f64]) {
        let stats = &self.telemetry.gpu;
        // A software adapter shares the cores with the CPU kernels and never
        // wins the 5x rule: only `force` (tests, checks) uses one.
        let allow_software = self.mode() == GpuMode::Force;
        let mut engine = match GpuKernels::open(DEVICE_TIMEOUT, allow_software) {
            Ok(engine) => engine,
            Err(reason) => {
                stats.set_state(GpuState::Unavailable);
                log_unavailable(self.mode(), &reason);
                return;
            }
        };
        let model = match calibrate(&mut engine, kernels, quantiles) {
            Ok(model) => model,
            Err(e) => {
                stats.set_state(GpuState::Unavailable);
                tracing::warn!(adapter = engine.adapter(), error = %e, mode = self.mode().as_str(),
                    "GPU probe failed; windows stay on the CPU");
                return;
            }
        };
        tracing::info!(
            adapter = engine.adapter(),
            mode = self.mode().as_str(),
            cpu_ns_per_sample = model.cpu_seconds_per_sample * 1e9,
            gpu_ns_per_sample = model.gpu_seconds_per_sample * 1e9,
            gpu_latency_ms = model.gpu_latency_seconds * 1e3,
            upload_gb_per_s = model.upload_bytes_per_second / 1e9,
            crossover_samples = model.crossover().map_or(-1, |n| n as i64),
            "GPU offload ready"
        );
        *stats.adapter.lock().unwrap_or_else(|p| p.into_inner()) = engine.adapter().to_owned();
        self.publish(&model);
        *self.lock_model() = Some(model);
        self.lock_engine().kernels = Some(engine);
        // A reload may have turned the GPU off while it was being probed.
        let ready = if self.mode() == GpuMode::Off {
            GpuState::Off
        } else {
            GpuState::Ready
        };
        stats.set_state(ready);
    }

    /// Whether a window of `samples` goes to the GPU (never an empty one).
    pub fn wants(&self, samples: usize) -> bool {
        if samples == 0 || self.telemetry.gpu.state() != GpuState::Ready {
            return false;
        }
        let settings = *self.lock_settings();
        match settings.mode {
            GpuMode::Off => false,
            GpuMode::Force => true,
            GpuMode::Auto => {
                samples as u64 >= settings.min_window_samples
                    && self.lock_model().is_some_and(|m| m.prefers_gpu(samples))
            }
        }
    }

    /// Computes a window on the GPU. An error means the caller must compute it
    /// on the CPU; it has been counted and logged.
    pub fn compute(&self, request: Request<'_>, out: Outputs<'_>) -> Result<(), GpuError> {
        let stats = &self.telemetry.gpu;
        let samples = request.values.len();
        let mut engine = self.lock_engine();
        let Some(kernels) = engine.kernels.as_mut() else {
            return Err(GpuError::Unsupported("the GPU is no longer in use".into()));
        };
        match kernels.run(request, out) {
            Ok(timings) => {
                engine.failures = 0;
                drop(engine);
                stats.windows_offloaded.add(1);
                if let Some(model) = self.lock_model().as_mut() {
                    model.observe_gpu(samples, timings.compute.as_secs_f64());
                    self.publish(model);
                }
                Ok(())
            }
            Err(e) => {
                engine.failures += 1;
                stats.fallbacks.add(1);
                if engine.failures >= MAX_CONSECUTIVE_FAILURES {
                    engine.kernels = None;
                    stats.set_state(GpuState::Disabled);
                    tracing::error!(error = %e, failures = engine.failures,
                        "GPU disabled after repeated failures; every window now runs on the CPU");
                } else {
                    tracing::warn!(error = %e, samples, "GPU failed a window; re-running it on the CPU");
                }
                Err(e)
            }
        }
    }

    /// Learns from a window of `samples` the CPU computed in `seconds`, so the
    /// model follows the CPU's real speed.
    pub fn observe_cpu(&self, samples: usize, seconds: f64) {
        let min = usize::try_from(self.lock_settings().min_window_samples).unwrap_or(usize::MAX);
        if samples < min.min(PROBE_SAMPLES) {
            return;
        }
        if let Some(model) = self.lock_model().as_mut() {
            model.observe_cpu(samples, seconds);
            self.publish(model);
        }
    }

    fn publish(&self, model: &CostModel) {
        let stats = &self.telemetry.gpu;
        stats
            .cpu_seconds_per_sample
            .set(model.cpu_seconds_per_sample);
        stats
            .gpu_seconds_per_sample
            .set(model.gpu_seconds_per_sample);
        stats.gpu_latency_seconds.set(model.gpu_latency_seconds);
        stats
            .upload_bytes_per_second
            .set(model.upload_bytes_per_second);
    }

    fn lock_engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_model(&self) -> MutexGuard<'_, Option<CostModel>> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next window fail as a lost device would (tests only).
    #[cfg(all(test, feature = "gpu"))]
    pub(crate) fn inject_fault(&self) {
        if let Some(kernels) = self.lock_engine().kernels.as_ref() {
            kernels.inject_fault("injected device loss");
        }
    }
}

fn log_unavailable(mode: GpuMode, reason: &Unavailable) {
    if mode == GpuMode::Force {
        tracing::warn!(mode = mode.as_str(), reason = %reason,
            "gpu.mode is force but no GPU can be used; windows run on the CPU");
    } else {
        tracing::info!(mode = mode.as_str(), reason = %reason, "no GPU; windows run on the CPU");
    }
}

/// Probes both backends on the same window and fits the cost model: the
/// best of three runs each, plus a tiny window for the GPU's fixed cost.
pub fn calibrate(
    engine: &mut GpuKernels,
    kernels: Kernels,
    quantiles: &[f64],
) -> Result<CostModel, GpuError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7a11d);
    let values: Vec<f64> = (0..PROBE_SAMPLES)
        .map(|_| rng.random::<f64>() * 1e3)
        .collect();
    let offsets: Vec<usize> = (0..=PROBE_SAMPLES / PROBE_SERIES)
        .map(|i| i * PROBE_SERIES)
        .collect();
    let segments = offsets.len() - 1;
    let mut moments = vec![Moments::EMPTY; segments];
    let mut found = vec![0.0; segments * quantiles.len()];

    let mut cpu = f64::INFINITY;
    let mut scratch = values.clone();
    for _ in 0..3 {
        scratch.copy_from_slice(&values);
        let started = Instant::now();
        kernels.moments_segmented(&scratch, &offsets, &mut moments);
        kernels.quantiles_segmented(&mut scratch, &offsets, quantiles, &mut found);
        cpu = cpu.min(started.elapsed().as_secs_f64());
    }

    let mut gpu_run =
        |values: &[f64], offsets: &[usize], moments: &mut [Moments], found: &mut [f64]| {
            engine.run(
                Request {
                    values,
                    offsets,
                    quantiles,
                    bounds: &[],
                },
                Outputs {
                    moments,
                    quantiles: found,
                    buckets: &mut [],
                },
            )
        };
    let (mut upload, mut compute, mut latency) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let mut bytes = 0;
    // The first run compiles nothing (pipelines are built at open) but grows
    // the buffers; it is not counted.
    gpu_run(&values, &offsets, &mut moments, &mut found)?;
    let tiny = [1.0; 8];
    let mut tiny_moments = [Moments::EMPTY];
    let mut tiny_found = vec![0.0; quantiles.len()];
    for _ in 0..3 {
        let timings = gpu_run(&values, &offsets, &mut moments, &mut found)?;
        upload = upload.min(timings.upload.as_secs_f64());
        compute = compute.min(timings.compute.as_secs_f64());
        bytes = timings.bytes;
        let small = gpu_run(&tiny, &[0, tiny.len()], &mut tiny_moments, &mut tiny_found)?;
        latency = latency.min((small.upload + small.compute).as_secs_f64());
    }
    let n = PROBE_SAMPLES as f64;
    Ok(CostModel {
        cpu_seconds_per_sample: cpu / n,
        gpu_latency_seconds: latency,
        upload_bytes_per_second: bytes as f64 / upload.max(1e-9),
        gpu_seconds_per_sample: (compute - latency).max(0.0) / n,
    })
}
