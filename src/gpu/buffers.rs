//! Device buffers kept from window to window and grown on demand.
//!
//! A [`Reusable`] keeps its buffer while requests fit and replaces it with one
//! twice the size (rounded to a power of two, within the binding limit) when
//! they do not, so a steady stream of windows allocates nothing and a growing
//! one allocates O(log size) times.

/// What a buffer is for, which fixes its usage flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Per-dispatch parameters (uniform, dynamic offsets).
    Uniform,
    /// Read by the shaders, written by copies.
    Read,
    /// Written by the shaders, copied out for readback.
    Result,
    /// Host-written, copied to device buffers.
    Staging,
    /// Copied into, then read by the host.
    Readback,
}

impl Usage {
    fn flags(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Usage::Uniform => U::UNIFORM | U::COPY_DST,
            Usage::Read => U::STORAGE | U::COPY_DST,
            Usage::Result => U::STORAGE | U::COPY_DST | U::COPY_SRC,
            Usage::Staging => U::MAP_WRITE | U::COPY_SRC,
            Usage::Readback => U::MAP_READ | U::COPY_DST,
        }
    }
}

/// Smallest buffer made: bindings need a non-zero size.
const MIN_BYTES: u64 = 256;

/// A buffer that is reused while it is large enough.
#[derive(Debug, Default)]
pub struct Reusable {
    buffer: Option<wgpu::Buffer>,
}

impl Reusable {
    /// Makes sure the buffer holds at least `bytes`.
    pub fn ensure(&mut self, device: &wgpu::Device, bytes: u64, usage: Usage) {
        if self.buffer.as_ref().is_some_and(|b| b.size() >= bytes) {
            return;
        }
        let limits = device.limits();
        let limit = limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size);
        let size = bytes
            .max(MIN_BYTES)
            .checked_next_power_of_two()
            .map_or(bytes, |p| p.min(limit).max(bytes))
            .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        self.buffer = Some(device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tallyd kernels"),
            size,
            usage: usage.flags(),
            mapped_at_creation: false,
        }));
    }

    /// The buffer; [`Reusable::ensure`] must have run.
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("ensure() runs before buffer()")
    }
}
