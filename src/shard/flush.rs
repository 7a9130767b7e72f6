//! Completing a closed window: the kernels over its samples, off the shard thread.
//!
//! A window close on the shard thread is O(series) and touches no sample: it
//! takes counters, gauges and sets as they are and, for each timer, histogram and
//! distribution with samples, records a [`Segment`]. The shard then goes on with
//! the next window while this runs on the shard's flush thread. At 5M lines/s a
//! full 10 s window holds about 15M timer samples; kernel work that used to stop
//! the shard (and overflow its queue) at every window close.
//!
//! The flush copies series' samples out of the arena into one contiguous buffer
//! with offsets and calls the segmented kernels once per batch of series, so the
//! backend is dispatched once per batch, not per series. A batch closes once it
//! holds [`BATCH_SAMPLES`] samples (or one series larger than that), which keeps
//! the copy buffer at about 512 KiB however large the window, and between
//! batches the flush may stand aside for its shard (`complete_paced`): a batch
//! is a few milliseconds of work.
//!
//! A window the GPU offload wants ([`Offload::wants`]) is gathered whole and
//! computed there instead; if the GPU fails it, the same window runs through
//! the CPU path above, so no window is lost. The gathered copy is freed after
//! such a window, so the buffer returns to its CPU size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::native_book::{NativeBook, NativeSettings};
use super::series::Segment;
use super::window_samples::WindowSamples;
use crate::gpu::{Offload, Outputs, Request};
use crate::kernels::{Kernels, Moments};
use crate::store::WindowBounds;
use crate::store::{Rollup, SampleRollup, SeriesRollup, WindowQuantiles};

/// Samples gathered before the segmented kernels run over them: enough to
/// dispatch the kernels once per several hundred series, few enough that a
/// batch stays in L2 and takes a few milliseconds.
const BATCH_SAMPLES: usize = 1 << 16;

/// How closed windows are computed: the CPU kernels, and the GPU offload
/// when one was started.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The CPU kernels.
    pub kernels: Kernels,
    /// The GPU offload, consulted for every window.
    pub offload: Option<Arc<Offload>>,
}

/// A window closed by a shard, waiting for its kernels.
#[derive(Debug)]
pub struct ClosedWindow {
    /// The window's span.
    pub bounds: WindowBounds,
    /// The quantiles to compute and show, as configured when the window opened.
    pub quantiles: WindowQuantiles,
    /// Native histograms to keep, as configured when the window opened.
    pub native: Option<NativeSettings>,
    /// Every series of the shard; sampled ones lack their window statistics.
    pub rollups: Vec<SeriesRollup>,
    /// The statistics to compute, one per sampled series with data.
    pub segments: Vec<Segment>,
}

/// Buffers the flush reuses from window to window.
#[derive(Debug, Default)]
pub struct FlushScratch {
    values: Vec<f64>,
    offsets: Vec<usize>,
    moments: Vec<Moments>,
    quantiles: Vec<f64>,
}

impl ClosedWindow {
    /// Computes every segment's statistics from `samples` (the closed window's
    /// samples) with the CPU kernels, or on the GPU when the offload wants the
    /// window, and returns the complete rollups.
    ///
    /// With native histograms on, each batch of samples also goes through the
    /// bucket-key kernel into `book`, and every sampled rollup gets its series'
    /// cumulative histogram.
    pub fn complete(
        self,
        samples: &WindowSamples,
        completion: &Completion,
        scratch: &mut FlushScratch,
        book: &mut NativeBook,
    ) -> Vec<SeriesRollup> {
        self.complete_paced(samples, completion, scratch, book, &mut || Duration::ZERO)
    }

    /// [`complete`](Self::complete), calling `between_batches` after each batch
    /// of series the CPU kernels finish: where the flush thread may wait for
    /// its shard. It returns how long it waited, which the GPU cost model does
    /// not count as CPU time.
    pub fn complete_paced(
        mut self,
        samples: &WindowSamples,
        completion: &Completion,
        scratch: &mut FlushScratch,
        book: &mut NativeBook,
        between_batches: &mut dyn FnMut() -> Duration,
    ) -> Vec<SeriesRollup> {
        let (kernels, offload) = (completion.kernels, completion.offload.as_deref());
        let quantiles = self.quantiles.computed.clone();
        let quantiles = &quantiles[..];
        book.begin();
        // Counting the samples walks every series' list: only for an offload.
        let total = offload.map_or(0, |_| samples.len());
        let mut done = false;
        if let Some(offload) = offload.filter(|o| o.wants(total)) {
            done = self.complete_on_gpu(samples, quantiles, offload, scratch);
            if done {
                self.add_native(0..self.segments.len(), samples, scratch, kernels, book);
            }
            scratch.release_gathered();
        }
        if !done {
            let started = Instant::now();
            let mut waited = Duration::ZERO;
            let mut first = 0;
            while first < self.segments.len() {
                let taken = scratch.gather(samples, &self.segments[first..], BATCH_SAMPLES);
                scratch.run(kernels, quantiles);
                self.store(first..first + taken, scratch, quantiles.len());
                self.add_native(first..first + taken, samples, scratch, kernels, book);
                first += taken;
                waited += between_batches();
            }
            if let Some(offload) = offload {
                let computing = started.elapsed().saturating_sub(waited);
                offload.observe_cpu(total, computing.as_secs_f64());
            }
        }
        match self.native {
            Some(settings) => book.attach(settings, &mut self.rollups),
            None => book.clear(),
        }
        self.rollups
    }

    /// Adds the gathered samples of `segments` to their native histograms, when kept.
    fn add_native(
        &mut self,
        segments: std::ops::Range<usize>,
        samples: &WindowSamples,
        scratch: &FlushScratch,
        kernels: Kernels,
        book: &mut NativeBook,
    ) {
        if let Some(settings) = self.native {
            book.add(
                kernels,
                settings,
                &mut self.rollups,
                &self.segments[segments],
                &scratch.values,
                &scratch.offsets,
                samples,
            );
        }
    }

    /// The whole window on the GPU; false when it failed (counted by `offload`).
    fn complete_on_gpu(
        &mut self,
        samples: &WindowSamples,
        quantiles: &[f64],
        offload: &Offload,
        scratch: &mut FlushScratch,
    ) -> bool {
        let segments = scratch.gather(samples, &self.segments, usize::MAX);
        scratch.moments.clear();
        scratch.moments.resize(segments, Moments::EMPTY);
        scratch.quantiles.clear();
        scratch.quantiles.resize(segments * quantiles.len(), 0.0);
        let request = Request {
            values: &scratch.values,
            offsets: &scratch.offsets,
            quantiles,
            bounds: &[],
        };
        let out = Outputs {
            moments: &mut scratch.moments,
            quantiles: &mut scratch.quantiles,
            buckets: &mut [],
        };
        if offload.compute(request, out).is_err() {
            return false;
        }
        self.store(0..segments, scratch, quantiles.len());
        true
    }

    /// Writes the statistics of `segments` (gathered into `scratch` in order)
    /// into their rollups.
    fn store(
        &mut self,
        segments: std::ops::Range<usize>,
        scratch: &FlushScratch,
        quantiles: usize,
    ) {
        for (i, segment) in self.segments[segments].iter().enumerate() {
            let stats = window_stats(
                &scratch.moments[i],
                &scratch.quantiles[i * quantiles..(i + 1) * quantiles],
                segment,
            );
            if let Some(SeriesRollup {
                rollup: Rollup::Samples(rollup),
                ..
            }) = self.rollups.get_mut(segment.rollup as usize)
            {
                rollup.window = Some(stats);
            }
        }
    }
}

impl FlushScratch {
    /// Copies the samples of the first segments of `segments` into `values`
    /// until it holds `limit` samples (at least one segment); returns how many
    /// segments it took.
    fn gather(&mut self, samples: &WindowSamples, segments: &[Segment], limit: usize) -> usize {
        self.values.clear();
        self.offsets.clear();
        self.offsets.push(0);
        let mut taken = 0;
        while taken < segments.len() && self.values.len() < limit {
            samples.append_to(segments[taken].slot, &mut self.values);
            self.offsets.push(self.values.len());
            taken += 1;
        }
        taken
    }

    /// Frees what a whole-window gather took beyond the CPU's batch size.
    fn release_gathered(&mut self) {
        if self.values.capacity() > 2 * BATCH_SAMPLES {
            self.values = Vec::new();
        }
    }

    /// The segmented kernels over the gathered batch.
    fn run(&mut self, kernels: Kernels, quantiles: &[f64]) {
        let segments = self.offsets.len() - 1;
        self.moments.clear();
        self.moments.resize(segments, Moments::EMPTY);
        kernels.moments_segmented(&self.values, &self.offsets, &mut self.moments);
        self.quantiles.clear();
        self.quantiles.resize(segments * quantiles.len(), 0.0);
        kernels.quantiles_segmented(
            &mut self.values,
            &self.offsets,
            quantiles,
            &mut self.quantiles,
        );
    }
}

/// Statistics of one series' window from its kernel results.
fn window_stats(moments: &Moments, quantiles: &[f64], segment: &Segment) -> SampleRollup {
    // With every rate at 1 the plain count and the kernel's fixed-order sum are
    // reported, as the reference defines them; otherwise each sample counts 1/rate.
    let (count, sum) = if segment.unit_rates {
        (moments.count as f64, moments.sum)
    } else {
        (segment.count, segment.sum)
    };
    SampleRollup {
        count,
        sum,
        min: moments.min,
        max: moments.max,
        mean: sum / count,
        stddev: moments.stddev(),
        quantiles: quantiles.into(),
        quantiles_from_histogram: false,
    }
}
