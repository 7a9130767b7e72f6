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
//! the copy buffer at about 8 MiB however large the window.

use super::series::Segment;
use super::window::WindowBounds;
use super::window_samples::WindowSamples;
use crate::kernels::{Kernels, Moments};
use crate::store::{Rollup, SampleRollup, SeriesRollup};

/// Samples gathered before the segmented kernels run over them.
const BATCH_SAMPLES: usize = 1 << 20;

/// A window closed by a shard, waiting for its kernels.
#[derive(Debug)]
pub struct ClosedWindow {
    /// The window's span.
    pub bounds: WindowBounds,
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
    /// samples) with `kernels` and returns the complete rollups.
    pub fn complete(
        mut self,
        samples: &WindowSamples,
        quantiles: &[f64],
        kernels: Kernels,
        scratch: &mut FlushScratch,
    ) -> Vec<SeriesRollup> {
        let mut rest = &self.segments[..];
        while !rest.is_empty() {
            scratch.values.clear();
            scratch.offsets.clear();
            scratch.offsets.push(0);
            let mut taken = 0;
            while taken < rest.len() && scratch.values.len() < BATCH_SAMPLES {
                samples.append_to(rest[taken].slot, &mut scratch.values);
                scratch.offsets.push(scratch.values.len());
                taken += 1;
            }
            let (batch, later) = rest.split_at(taken);
            scratch.run(kernels, quantiles);
            for (i, segment) in batch.iter().enumerate() {
                let stats = window_stats(
                    &scratch.moments[i],
                    &scratch.quantiles[i * quantiles.len()..(i + 1) * quantiles.len()],
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
            rest = later;
        }
        self.rollups
    }
}

impl FlushScratch {
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
    }
}
