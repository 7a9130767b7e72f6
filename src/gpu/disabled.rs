//! The stand-in for [`GpuKernels`] in a build without the `gpu` feature: it
//! never opens, so the offload reports the GPU unavailable and every window
//! runs on the CPU.

use std::convert::Infallible;
use std::time::Duration;

use super::work::{GpuError, Outputs, Request, Timings, Unavailable};

/// No GPU kernels in this build.
#[derive(Debug)]
pub struct GpuKernels(Infallible);

impl GpuKernels {
    /// Always [`Unavailable::NotBuilt`].
    pub fn open(_timeout: Duration, _allow_software: bool) -> Result<GpuKernels, Unavailable> {
        Err(Unavailable::NotBuilt)
    }

    /// Never called: no value of this type exists.
    pub fn adapter(&self) -> &str {
        match self.0 {}
    }

    /// Never called: no value of this type exists.
    pub fn run(&mut self, _request: Request<'_>, _out: Outputs<'_>) -> Result<Timings, GpuError> {
        match self.0 {}
    }
}
