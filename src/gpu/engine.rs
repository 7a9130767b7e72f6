//! [`GpuKernels`]: the segmented kernels on a wgpu device.
//!
//! One call computes a window: moments always, quantiles and histogram buckets
//! when asked. The window is cut into parts ([`super::plan`]); for each part the
//! engine uploads the samples (as raw f64 bits) and the tables through one
//! reused staging buffer, records every dispatch in one command buffer, and
//! reads the results back through one reused readback buffer. Device buffers
//! grow to the largest window seen and are kept, so a steady stream of windows
//! allocates nothing on the device.
//!
//! Results against the scalar reference: counts, extremes, quantiles and bucket
//! counts are identical (extremes and quantiles are selected on order keys,
//! which order values as `f64::total_cmp` does). Sums are added in another
//! order (a workgroup tree per tile of 4,096 values, then tiles in order; a
//! packed segment of at most `PACKED_MAX` values in order by one invocation)
//! and stay within [`sum_error_bound`].
//!
//! Any wgpu fault, a failed mapping, or a wait longer than the timeout fails
//! the call with a [`GpuError`]; nothing is half-written into the caller's
//! outputs that it would keep, since the caller re-runs the window on the CPU.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::buffers::{Reusable, Usage};
use super::device::Gpu;
use super::pipelines::{Kernel, Pipelines};
use super::plan::{self, Part, SMALL_MAX, TILE_VALUES, Tile, WORKGROUP, runs};
use super::work::{GpuError, Outputs, Request, Timings, Unavailable, from_key};

// A small segment is always one tile.
const _: () = assert!(SMALL_MAX <= TILE_VALUES);
use crate::kernels::{Moments, quantile_rank};

/// Bytes of one parameter slot (the largest uniform offset alignment allowed).
const PARAMS_STRIDE: u64 = 256;
/// Workgroups along x in one dispatch; more go along y.
const MAX_GROUPS_X: u32 = 32_768;
/// Bytes of the radix counts of one group of large segments, at most.
const HISTOGRAM_BYTES: u64 = 64 << 20;
/// Ranks counted together in one radix pass (the shader's `RANK_BATCH`).
const RANK_BATCH: u32 = 8;
/// Bounds the bucket kernel handles (the shader's `MAX_BOUNDS`).
pub const MAX_BOUNDS: usize = 1024;
/// Bytes moved through the staging buffer at a time, at most.
const STAGING_BYTES: u64 = 64 << 20;

/// The kernels on one GPU device, with buffers kept from window to window.
#[derive(Debug)]
pub struct GpuKernels {
    gpu: Gpu,
    pipelines: Pipelines,
    buffers: Buffers,
    /// Samples in one chunk buffer (a multiple of the tile size).
    chunk_values: usize,
    /// What the adapter allows for `chunk_values`.
    max_chunk_values: usize,
    /// Bytes of radix counts per group of large segments.
    histogram_bytes: u64,
    timeout: Duration,
}

/// Buffers reused across windows.
#[derive(Debug, Default)]
struct Buffers {
    chunks: Vec<Reusable>,
    staging: Reusable,
    readback: Reusable,
    params: Reusable,
    tiles: Reusable,
    partials: Reusable,
    bounds: Reusable,
    bucket_counts: Reusable,
    jobs: Reusable,
    ranks: Reusable,
    small_results: Reusable,
    large_tiles: Reusable,
    states: Reusable,
    histograms: Reusable,
}

/// Byte images of one part's tables, uploaded before its dispatches.
#[derive(Debug, Default)]
struct Tables {
    tiles: Vec<u8>,
    jobs: Vec<u8>,
    ranks: Vec<u8>,
    large_tiles: Vec<u8>,
    states: Vec<u8>,
    params: Vec<u8>,
}

impl Tables {
    /// Appends one parameter slot and returns its dynamic offset.
    fn push_params(&mut self, words: [u32; 8]) -> u32 {
        let offset = self.params.len() as u32;
        for word in words {
            self.params.extend_from_slice(&word.to_le_bytes());
        }
        self.params
            .resize(offset as usize + PARAMS_STRIDE as usize, 0);
        offset
    }
}

/// The fields of `Params` in `common.wgsl`, in order.
#[derive(Debug, Clone, Copy, Default)]
struct Params {
    first: u32,
    count: u32,
    shift: u32,
    rank_first: u32,
    rank_count: u32,
    ranks: u32,
    group_first: u32,
    bounds: u32,
}

impl Params {
    fn words(self) -> [u32; 8] {
        [
            self.first,
            self.count,
            self.shift,
            self.rank_first,
            self.rank_count,
            self.ranks,
            self.group_first,
            self.bounds,
        ]
    }
}

impl GpuKernels {
    /// Opens the adapter (a software one only when `allow_software`) and builds
    /// the pipelines; `timeout` bounds every wait on the device.
    pub fn open(timeout: Duration, allow_software: bool) -> Result<GpuKernels, Unavailable> {
        let gpu = Gpu::open(allow_software)?;
        let pipelines = Pipelines::new(&gpu.device);
        if let Some(fault) = gpu.faults.take() {
            return Err(Unavailable::DeviceRefused {
                adapter: gpu.adapter,
                reason: format!("the kernels did not compile: {fault}"),
            });
        }
        let limits = gpu.device.limits();
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let chunk_values =
            ((binding / 8) as usize / TILE_VALUES * TILE_VALUES).clamp(TILE_VALUES, 1 << 28);
        Ok(GpuKernels {
            gpu,
            pipelines,
            buffers: Buffers::default(),
            chunk_values,
            max_chunk_values: chunk_values,
            histogram_bytes: HISTOGRAM_BYTES.min(binding),
            timeout,
        })
    }

    /// The adapter's name and driver.
    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
    }

    /// Samples one chunk buffer holds.
    pub fn chunk_values(&self) -> usize {
        self.chunk_values
    }

    /// Makes chunks hold at most `chunk_values` samples (whole tiles, at least
    /// one) and radix groups at most `histogram_bytes` of counts, so that tests
    /// cross chunk and group boundaries without windows of 16M samples; `None`
    /// restores the adapter's limits.
    pub fn limit_work(&mut self, limits: Option<(usize, u64)>) {
        let (chunk_values, histogram_bytes) = limits.unwrap_or((usize::MAX, HISTOGRAM_BYTES));
        self.chunk_values = (chunk_values / TILE_VALUES)
            .max(1)
            .saturating_mul(TILE_VALUES)
            .min(self.max_chunk_values);
        self.histogram_bytes = histogram_bytes.clamp(1024, HISTOGRAM_BYTES);
    }

    /// Records `fault` as if wgpu had reported it, so the next window fails
    /// (tests of the fallback).
    #[cfg(test)]
    pub(crate) fn inject_fault(&self, fault: &str) {
        self.gpu.faults.record(fault.to_owned());
    }

    /// Computes `request` into `out`.
    pub fn run(&mut self, request: Request<'_>, out: Outputs<'_>) -> Result<Timings, GpuError> {
        let segments = request.offsets.len().saturating_sub(1);
        crate::kernels::check_segments(request.offsets, request.values.len(), out.moments.len(), 1);
        assert_eq!(out.quantiles.len(), segments * request.quantiles.len());
        assert_eq!(out.buckets.len(), segments * request.bounds.len());
        if request.bounds.len() > MAX_BOUNDS {
            return Err(GpuError::Unsupported(format!(
                "{} histogram bounds (at most {MAX_BOUNDS})",
                request.bounds.len()
            )));
        }
        let mut timings = Timings::default();
        let mut out = out;
        for part in plan::plan(request.values, request.offsets, self.chunk_values) {
            self.run_part(&request, &part, &mut out, &mut timings)?;
        }
        Ok(timings)
    }

    /// Uploads, computes and reads back one part.
    fn run_part(
        &mut self,
        request: &Request<'_>,
        part: &Part,
        out: &mut Outputs<'_>,
        timings: &mut Timings,
    ) -> Result<(), GpuError> {
        let started = Instant::now();
        let ranks = request.quantiles.len() as u32;
        let mut tables = Tables::default();
        for tile in &part.tiles {
            tile.write_to(&mut tables.tiles);
        }
        let segment_len = |local: u32| {
            let segment = part.segments.start + local as usize;
            request.offsets[segment + 1] - request.offsets[segment]
        };
        if ranks > 0 {
            for &job in &part.small_jobs {
                tables.jobs.extend_from_slice(&job.to_le_bytes());
                let n = segment_len(part.tiles[job as usize].segment);
                for &q in request.quantiles {
                    let rank = (quantile_rank(q, n) - 1) as u32;
                    tables.ranks.extend_from_slice(&rank.to_le_bytes());
                }
            }
            for &tile in &part.large_tiles {
                tables.large_tiles.extend_from_slice(&tile.to_le_bytes());
            }
            for &local in &part.large {
                let n = segment_len(local);
                for &q in request.quantiles {
                    tables.states.extend_from_slice(&0u64.to_le_bytes());
                    let rank = (quantile_rank(q, n) - 1) as u32;
                    tables.states.extend_from_slice(&rank.to_le_bytes());
                    tables.states.extend_from_slice(&0u32.to_le_bytes());
                }
            }
        }
        let commands = self.record(request, part, &mut tables);
        let group_slots = u64::from(self.group_size(ranks)) * u64::from(ranks);
        let device = &self.gpu.device;
        let b = &mut self.buffers;
        let tiles_count = part.tiles.len() as u64;
        let bounds_count = request.bounds.len() as u64;
        let small_count = part.small_jobs.len() as u64 * u64::from(ranks);
        let slots = part.large.len() as u64 * u64::from(ranks);
        b.params
            .ensure(device, tables.params.len() as u64, Usage::Uniform);
        b.tiles
            .ensure(device, tiles_count * Tile::BYTES as u64, Usage::Read);
        b.partials.ensure(device, tiles_count * 40, Usage::Result);
        b.bounds.ensure(device, bounds_count * 8, Usage::Read);
        b.bucket_counts
            .ensure(device, tiles_count * bounds_count * 4, Usage::Result);
        b.jobs.ensure(device, tables.jobs.len() as u64, Usage::Read);
        b.ranks
            .ensure(device, tables.ranks.len() as u64, Usage::Read);
        b.small_results
            .ensure(device, small_count * 8, Usage::Result);
        b.large_tiles
            .ensure(device, tables.large_tiles.len() as u64, Usage::Read);
        b.states.ensure(device, slots * 16, Usage::Result);
        b.histograms
            .ensure(device, slots.min(group_slots) * 1024, Usage::Result);
        if b.chunks.len() < part.chunks.len() {
            b.chunks.resize_with(part.chunks.len(), Reusable::default);
        }
        for (buffer, chunk) in b.chunks.iter_mut().zip(&part.chunks) {
            buffer.ensure(device, chunk.len() as u64 * 8, Usage::Read);
        }
        let mut bounds_bytes = Vec::with_capacity(request.bounds.len() * 8);
        for bound in request.bounds {
            bounds_bytes.extend_from_slice(&bound.to_le_bytes());
        }
        let mut uploads: Vec<(&wgpu::Buffer, &[u8])> = vec![
            (b.params.buffer(), &tables.params),
            (b.tiles.buffer(), &tables.tiles),
            (b.bounds.buffer(), &bounds_bytes),
            (b.jobs.buffer(), &tables.jobs),
            (b.ranks.buffer(), &tables.ranks),
            (b.large_tiles.buffer(), &tables.large_tiles),
            (b.states.buffer(), &tables.states),
        ];
        for (buffer, chunk) in b.chunks.iter().zip(&part.chunks) {
            uploads.push((buffer.buffer(), f64_bytes(&request.values[chunk.clone()])));
        }
        timings.bytes += uploads
            .iter()
            .map(|(_, data)| data.len() as u64)
            .sum::<u64>();
        upload(&self.gpu, &mut b.staging, &uploads, self.timeout)?;
        let uploaded = Instant::now();
        timings.upload += uploaded - started;

        let readback_bytes =
            tiles_count * 40 + tiles_count * bounds_count * 4 + small_count * 8 + slots * 16;
        b.readback.ensure(device, readback_bytes, Usage::Readback);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tallyd window"),
        });
        if slots > 0 {
            encoder.clear_buffer(b.histograms.buffer(), 0, None);
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tallyd kernels"),
                timestamp_writes: None,
            });
            // One bind group per kernel and chunk, made on first use: a
            // radix group dispatches the same pair many times.
            let mut bind_groups: Vec<(Kernel, usize, wgpu::BindGroup)> = Vec::new();
            for command in &commands {
                let key = (command.kernel, command.chunk);
                let index = match bind_groups.iter().position(|(k, c, _)| (*k, *c) == key) {
                    Some(index) => index,
                    None => {
                        let group = self.pipelines.bind_group(
                            device,
                            command.kernel,
                            &BindingBuffers {
                                params: b.params.buffer(),
                                values: b.chunks[command.chunk].buffer(),
                                tiles: b.tiles.buffer(),
                                partials: b.partials.buffer(),
                                bounds: b.bounds.buffer(),
                                bucket_counts: b.bucket_counts.buffer(),
                                jobs: b.jobs.buffer(),
                                ranks: b.ranks.buffer(),
                                small_results: b.small_results.buffer(),
                                large_tiles: b.large_tiles.buffer(),
                                states: b.states.buffer(),
                                histograms: b.histograms.buffer(),
                            },
                        );
                        bind_groups.push((command.kernel, command.chunk, group));
                        bind_groups.len() - 1
                    }
                };
                let bind_group = &bind_groups[index].2;
                pass.set_pipeline(self.pipelines.pipeline(command.kernel));
                pass.set_bind_group(0, bind_group, &[command.params]);
                let (x, y) = grid(command.workgroups);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        let mut at = 0;
        for (buffer, bytes) in [
            (&b.partials, tiles_count * 40),
            (&b.bucket_counts, tiles_count * bounds_count * 4),
            (&b.small_results, small_count * 8),
            (&b.states, slots * 16),
        ] {
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(buffer.buffer(), 0, b.readback.buffer(), at, bytes);
                at += bytes;
            }
        }
        let submission = self.gpu.queue.submit([encoder.finish()]);
        wait(&self.gpu, submission, self.timeout)?;
        if readback_bytes > 0 {
            map(
                &self.gpu,
                b.readback.buffer(),
                wgpu::MapMode::Read,
                readback_bytes,
                self.timeout,
            )?;
            let decoded = b
                .readback
                .buffer()
                .slice(..readback_bytes)
                .get_mapped_range()
                .map(|view| decode(request, part, &view, out))
                .map_err(|e| GpuError::Mapping(e.to_string()));
            b.readback.buffer().unmap();
            decoded?;
        } else {
            decode(request, part, &[], out);
        }
        if let Some(fault) = self.gpu.faults.take() {
            return Err(GpuError::Fault(fault));
        }
        timings.compute += uploaded.elapsed();
        Ok(())
    }

    /// Large segments whose radix counts fit in one group's histograms.
    fn group_size(&self, ranks: u32) -> u32 {
        (self.histogram_bytes / (u64::from(ranks.max(1)) * 1024)).max(1) as u32
    }

    /// The dispatches of one part, in order, with their parameter slots
    /// appended to `tables.params`.
    fn record(&self, request: &Request<'_>, part: &Part, tables: &mut Tables) -> Vec<Command> {
        let mut commands = Vec::new();
        let bounds = request.bounds.len() as u32;
        let ranks = request.quantiles.len() as u32;
        for (chunk, tiles) in part.chunk_tiles.iter().enumerate() {
            // Packed tiles (a prefix of the chunk's) take one invocation each,
            // the others one workgroup each.
            let packed = part.chunk_packed[chunk].clone();
            let kinds = [
                (packed.clone(), Kernel::MomentsPacked, Kernel::BucketsPacked),
                (packed.end..tiles.end, Kernel::Moments, Kernel::Buckets),
            ];
            for (range, moments, buckets) in kinds {
                if range.is_empty() {
                    continue;
                }
                let params = Params {
                    first: range.start,
                    count: range.len() as u32,
                    bounds,
                    ..Params::default()
                };
                // Moments and buckets read the same parameters: one slot.
                let slot = tables.push_params(params.words());
                let workgroups = workgroups_for(moments, range.len() as u32);
                commands.push(Command::new(moments, chunk, slot, workgroups));
                if bounds > 0 {
                    commands.push(Command::new(buckets, chunk, slot, workgroups));
                }
            }
        }
        if ranks == 0 {
            return commands;
        }
        let jobs = part.small_jobs.len() as u32;
        let packed = part.packed_jobs();
        for (range, kernel) in [
            (0..packed, Kernel::SelectPacked),
            (packed..jobs, Kernel::SelectSmall),
        ] {
            if range.is_empty() {
                continue;
            }
            let params = Params {
                first: range.start,
                count: range.len() as u32,
                rank_count: ranks,
                ..Params::default()
            };
            // Small jobs are never in a part of several chunks.
            commands.push(Command::new(
                kernel,
                0,
                tables.push_params(params.words()),
                workgroups_for(kernel, range.len() as u32),
            ));
        }
        let group_size = self.group_size(ranks);
        for group in runs(part.large.len() as u32, group_size) {
            for pass in 0..8u32 {
                let shift = 56 - 8 * pass;
                for batch in runs(ranks, RANK_BATCH) {
                    for chunk in 0..part.chunks.len() {
                        let tiles = part.group_tiles(chunk, &group);
                        if tiles.is_empty() {
                            continue;
                        }
                        let params = Params {
                            first: tiles.start,
                            count: tiles.len() as u32,
                            shift,
                            rank_first: batch.start,
                            rank_count: batch.len() as u32,
                            ranks,
                            group_first: group.start,
                            bounds: 0,
                        };
                        commands.push(Command::new(
                            Kernel::RadixHistogram,
                            chunk,
                            tables.push_params(params.words()),
                            tiles.len() as u32,
                        ));
                    }
                }
                let slots = group.len() as u32 * ranks;
                let params = Params {
                    count: slots,
                    shift,
                    ranks,
                    group_first: group.start,
                    ..Params::default()
                };
                commands.push(Command::new(
                    Kernel::RadixChoose,
                    0,
                    tables.push_params(params.words()),
                    slots.div_ceil(64),
                ));
            }
        }
        commands
    }
}

/// One dispatch: which kernel, on which chunk, with which parameter slot.
#[derive(Debug, Clone, Copy)]
struct Command {
    kernel: Kernel,
    chunk: usize,
    params: u32,
    workgroups: u32,
}

impl Command {
    fn new(kernel: Kernel, chunk: usize, params: u32, workgroups: u32) -> Command {
        Command {
            kernel,
            chunk,
            params,
            workgroups,
        }
    }
}

/// The buffers a bind group may name.
pub struct BindingBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub values: &'a wgpu::Buffer,
    pub tiles: &'a wgpu::Buffer,
    pub partials: &'a wgpu::Buffer,
    pub bounds: &'a wgpu::Buffer,
    pub bucket_counts: &'a wgpu::Buffer,
    pub jobs: &'a wgpu::Buffer,
    pub ranks: &'a wgpu::Buffer,
    pub small_results: &'a wgpu::Buffer,
    pub large_tiles: &'a wgpu::Buffer,
    pub states: &'a wgpu::Buffer,
    pub histograms: &'a wgpu::Buffer,
}

/// Workgroups a dispatch of `kernel` over `items` tiles or jobs needs: one
/// each, or one per [`WORKGROUP`] for the packed kernels.
fn workgroups_for(kernel: Kernel, items: u32) -> u32 {
    match kernel {
        Kernel::MomentsPacked | Kernel::BucketsPacked | Kernel::SelectPacked => {
            items.div_ceil(WORKGROUP as u32)
        }
        _ => items,
    }
}

/// Splits `workgroups` into an (x, y) grid within the per-dimension limit.
fn grid(workgroups: u32) -> (u32, u32) {
    if workgroups <= MAX_GROUPS_X {
        (workgroups, 1)
    } else {
        (MAX_GROUPS_X, workgroups.div_ceil(MAX_GROUPS_X))
    }
}

/// The bytes of `values`.
fn f64_bytes(values: &[f64]) -> &[u8] {
    // SAFETY: f64 has no padding and every byte pattern is a valid u8; the
    // length is the slice's size in bytes.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// Copies each `(destination, bytes)` to the start of its destination through
/// `staging`, at most [`STAGING_BYTES`] at a time.
fn upload(
    gpu: &Gpu,
    staging: &mut Reusable,
    uploads: &[(&wgpu::Buffer, &[u8])],
    timeout: Duration,
) -> Result<(), GpuError> {
    let total: u64 = uploads.iter().map(|(_, data)| data.len() as u64).sum();
    if total == 0 {
        return Ok(());
    }
    // Each piece may be padded to the mapping alignment.
    let padded = total + uploads.len() as u64 * wgpu::MAP_ALIGNMENT;
    staging.ensure(&gpu.device, padded.min(STAGING_BYTES), Usage::Staging);
    let capacity = staging.buffer().size().min(STAGING_BYTES);
    let mut pending: Vec<(&wgpu::Buffer, u64, u64, u64)> = Vec::new();
    let mut filled = 0u64;
    let mut mapped = false;
    for &(destination, data) in uploads {
        let mut done = 0u64;
        while done < data.len() as u64 {
            if !mapped {
                map(
                    gpu,
                    staging.buffer(),
                    wgpu::MapMode::Write,
                    capacity,
                    timeout,
                )?;
                mapped = true;
            }
            let take = (data.len() as u64 - done).min(capacity - filled);
            let written = staging
                .buffer()
                .slice(filled..filled + take)
                .get_mapped_range_mut()
                .map(|mut view| view.copy_from_slice(&data[done as usize..(done + take) as usize]));
            if let Err(e) = written {
                staging.buffer().unmap();
                return Err(GpuError::Mapping(e.to_string()));
            }
            pending.push((destination, filled, done, take));
            // Mapped views start at multiples of 8 bytes.
            filled = (filled + take).next_multiple_of(wgpu::MAP_ALIGNMENT);
            done += take;
            if filled >= capacity {
                flush_staging(gpu, staging.buffer(), &mut pending, timeout)?;
                filled = 0;
                mapped = false;
            }
        }
    }
    if mapped {
        flush_staging(gpu, staging.buffer(), &mut pending, timeout)?;
    }
    Ok(())
}

/// Unmaps `staging` and copies its filled ranges to their destinations.
fn flush_staging(
    gpu: &Gpu,
    staging: &wgpu::Buffer,
    pending: &mut Vec<(&wgpu::Buffer, u64, u64, u64)>,
    timeout: Duration,
) -> Result<(), GpuError> {
    staging.unmap();
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("tallyd upload"),
        });
    for (destination, from, to, size) in pending.drain(..) {
        encoder.copy_buffer_to_buffer(staging, from, destination, to, size);
    }
    let submission = gpu.queue.submit([encoder.finish()]);
    wait(gpu, submission, timeout)
}

/// Waits for `submission`, at most `timeout`.
fn wait(gpu: &Gpu, submission: wgpu::SubmissionIndex, timeout: Duration) -> Result<(), GpuError> {
    match gpu.device.poll(wgpu::PollType::Wait {
        submission_index: Some(submission),
        timeout: Some(timeout),
    }) {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(GpuError::Timeout(timeout)),
        Err(e) => Err(GpuError::Fault(e.to_string())),
    }
}

/// Maps the first `size` bytes of `buffer` and waits for the mapping.
fn map(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    mode: wgpu::MapMode,
    size: u64,
    timeout: Duration,
) -> Result<(), GpuError> {
    let (sender, receiver) = mpsc::channel();
    buffer.map_async(mode, 0..size, move |result| {
        let _ = sender.send(result);
    });
    match gpu.device.poll(wgpu::PollType::Wait {
        submission_index: None,
        timeout: Some(timeout),
    }) {
        Ok(_) => {}
        Err(wgpu::PollError::Timeout) => return Err(GpuError::Timeout(timeout)),
        Err(e) => return Err(GpuError::Fault(e.to_string())),
    }
    match receiver.try_recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(GpuError::Mapping(e.to_string())),
        Err(_) => Err(GpuError::Mapping("the mapping did not complete".into())),
    }
}

/// Reads one part's results from `bytes` (partials, bucket counts, small
/// results, slot states, in that order) into the caller's outputs.
fn decode(request: &Request<'_>, part: &Part, bytes: &[u8], out: &mut Outputs<'_>) {
    let tiles = part.tiles.len();
    let bounds = request.bounds.len();
    let ranks = request.quantiles.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let count32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let segments = part.segments.clone();
    let segment_len = |local: usize| {
        request.offsets[segments.start + local + 1] - request.offsets[segments.start + local]
    };

    // Moments: tiles of a segment are consecutive within a chunk and chunks
    // follow the segment's order, so adding tiles in index order adds a
    // segment's tiles in value order.
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64, u64::MAX, 0u64); segments.len()];
    for (i, tile) in part.tiles.iter().enumerate() {
        let at = i * 40;
        let entry = &mut sums[tile.segment as usize];
        entry.0 += f64::from_bits(word(at));
        entry.1 += f64::from_bits(word(at + 8));
        entry.2 += f64::from_bits(word(at + 16));
        entry.3 = entry.3.min(word(at + 24));
        entry.4 = entry.4.max(word(at + 32));
    }
    for (local, &(sum, shifted, squares, min_key, max_key)) in sums.iter().enumerate() {
        let n = segment_len(local);
        out.moments[segments.start + local] = if n == 0 {
            Moments::EMPTY
        } else {
            Moments {
                count: n as u64,
                sum,
                min: from_key(min_key),
                max: from_key(max_key),
                centred_sum_sq: (squares - shifted * shifted / n as f64).max(0.0),
            }
        };
    }

    let mut at = tiles * 40;
    if bounds > 0 {
        let buckets = &mut out.buckets[segments.start * bounds..segments.end * bounds];
        buckets.fill(0);
        for (i, tile) in part.tiles.iter().enumerate() {
            let counts = &mut buckets[tile.segment as usize * bounds..][..bounds];
            for (b, count) in counts.iter_mut().enumerate() {
                *count += u64::from(count32(at + (i * bounds + b) * 4));
            }
        }
        for counts in buckets.chunks_exact_mut(bounds) {
            let mut running = 0;
            for count in counts {
                running += *count;
                *count = running;
            }
        }
        at += tiles * bounds * 4;
    }

    if ranks > 0 {
        let quantiles = &mut out.quantiles[segments.start * ranks..segments.end * ranks];
        quantiles.fill(f64::NAN);
        for (job, &tile) in part.small_jobs.iter().enumerate() {
            let segment = part.tiles[tile as usize].segment as usize;
            for r in 0..ranks {
                quantiles[segment * ranks + r] = from_key(word(at + (job * ranks + r) * 8));
            }
        }
        at += part.small_jobs.len() * ranks * 8;
        for (large, &segment) in part.large.iter().enumerate() {
            for r in 0..ranks {
                quantiles[segment as usize * ranks + r] =
                    from_key(word(at + (large * ranks + r) * 16));
            }
        }
    }
}
