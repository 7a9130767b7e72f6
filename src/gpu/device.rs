//! Finding a Vulkan adapter that computes in f64 and opening a device on it.
//!
//! Only Vulkan is compiled in. An adapter qualifies when it offers
//! `SHADER_F64` and `SHADER_INT64`, so the shaders compute in the same
//! precision as the CPU and order values by 64-bit keys. Every way of not
//! finding one is an [`Unavailable`] value for the caller to log, never a
//! panic: a host without a GPU runs on the CPU.
//!
//! wgpu reports validation errors and device loss through callbacks; both are
//! recorded in a [`Faults`] log that the engine checks after each window, so
//! a fault fails that window (and it is re-run on the CPU) instead of
//! panicking the flush thread.

use std::sync::{Arc, Mutex};

use super::work::Unavailable;

/// Faults reported by wgpu's callbacks since the last check.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Option<String>>>);

impl Faults {
    /// Records `fault` unless an earlier one is still unread.
    pub fn record(&self, fault: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(fault);
    }

    /// The first fault since the last call, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// An open device with the features the kernels need.
#[derive(Debug)]
pub struct Gpu {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's name and driver, for logs and metrics.
    pub adapter: String,
    /// Faults reported since the last check.
    pub faults: Faults,
}

/// The features every kernel needs.
pub const REQUIRED: wgpu::Features = wgpu::Features::SHADER_F64.union(wgpu::Features::SHADER_INT64);

impl Gpu {
    /// Opens the first Vulkan adapter (a discrete GPU preferred) that has
    /// [`REQUIRED`], with the adapter's own limits; a software adapter only
    /// when `allow_software`.
    pub fn open(allow_software: bool) -> Result<Gpu, Unavailable> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::VULKAN,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..wgpu::RequestAdapterOptions::default()
        }))
        .map_err(|_| Unavailable::NoAdapter)?;
        let info = adapter.get_info();
        let name = format!("{} ({} {})", info.name, info.driver, info.driver_info)
            .trim_end_matches(" ()")
            .to_owned();
        if info.device_type == wgpu::DeviceType::Cpu && !allow_software {
            return Err(Unavailable::SoftwareOnly { adapter: name });
        }
        let missing = REQUIRED - adapter.features();
        if !missing.is_empty() {
            return Err(Unavailable::MissingFeatures {
                adapter: name,
                missing: format!("{missing:?}"),
            });
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tallyd kernels"),
            required_features: REQUIRED,
            required_limits: adapter.limits(),
            ..wgpu::DeviceDescriptor::default()
        }))
        .map_err(|e| Unavailable::DeviceRefused {
            adapter: name.clone(),
            reason: e.to_string(),
        })?;
        let faults = Faults::default();
        let errors = faults.clone();
        device.on_uncaptured_error(Arc::new(move |error| errors.record(error.to_string())));
        let lost = faults.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost.record(format!("device lost ({reason:?}): {message}"));
        });
        Ok(Gpu {
            device,
            queue,
            adapter: name,
            faults,
        })
    }
}
