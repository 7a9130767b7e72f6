//! A sampled series under `aggregation.timer_samples: histogram`: no samples
//! kept, a native histogram of the window instead.
//!
//! Each sample is binned as it arrives (its bucket key, one binary search in at
//! most `max_buckets` buckets) and its extremes and spread are updated, so the
//! series holds a bounded amount of memory however fast it is fed, and its
//! window close needs no kernel: count, sum, min, max, mean and stddev are
//! exact; quantiles are estimated from the window's buckets (within one
//! bucket's width). When native histograms are exposed, the window's buckets
//! are also added to the series' cumulative histogram at close, here on the
//! shard, since no flush work is left for the series.

use std::sync::Arc;

use super::bucket_hits::BucketHits;
use super::native_book::NativeSettings;
use crate::store::{NativeHistogram, SampleRollup, SamplesRollup};

#[derive(Debug)]
pub(super) struct BinnedState {
    settings: NativeSettings,
    /// This window's buckets, count (sum of 1/rate) and sum (of value/rate).
    window: NativeHistogram,
    /// Values received this window, unweighted, with their extremes, and the
    /// sums of their deviations from the window's first value and of their
    /// squares for the spread (no division per sample).
    values: u64,
    min: f64,
    max: f64,
    shift: f64,
    shifted: f64,
    squares: f64,
    total_count: f64,
    total_sum: f64,
    pub buckets: Option<BucketHits>,
    /// The cumulative native histogram, when native histograms are exposed.
    cumulative: Option<Arc<NativeHistogram>>,
}

impl BinnedState {
    /// An empty series binned under `settings`, keeping a cumulative native
    /// histogram when `expose` is set.
    pub fn new(settings: NativeSettings, buckets: Option<BucketHits>, expose: bool) -> Self {
        let empty = NativeHistogram::new(settings.schema, settings.zero_threshold);
        BinnedState {
            settings,
            cumulative: expose.then(|| Arc::new(empty.clone())),
            window: empty,
            values: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            shift: 0.0,
            shifted: 0.0,
            squares: 0.0,
            total_count: 0.0,
            total_sum: 0.0,
            buckets,
        }
    }

    /// True when a sample arrived in the open window.
    pub fn is_active(&self) -> bool {
        self.values > 0
    }

    /// Bins one sample of `value` at `rate`.
    #[inline]
    pub fn add(&mut self, value: f64, rate: f64) {
        let weight = if rate == 1.0 { 1.0 } else { 1.0 / rate };
        self.window.record(value, weight, self.settings.max_buckets);
        if self.values == 0 {
            self.shift = value;
        }
        self.values += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let deviation = value - self.shift;
        self.shifted += deviation;
        self.squares += deviation * deviation;
        if let Some(buckets) = &mut self.buckets {
            buckets.hit(value, weight);
        }
    }

    /// Population standard deviation of the window's values.
    fn stddev(&self) -> f64 {
        let n = self.values as f64;
        ((self.squares - self.shifted * self.shifted / n) / n)
            .max(0.0)
            .sqrt()
    }

    /// The rollup of the closing window, with quantiles `qs` estimated from
    /// its buckets; empties the window.
    pub fn close(&mut self, qs: &[f64]) -> SamplesRollup {
        let window = self.is_active().then(|| {
            let (count, sum) = (self.window.count, self.window.sum);
            SampleRollup {
                count,
                sum,
                min: self.min,
                max: self.max,
                mean: sum / count,
                stddev: self.stddev(),
                quantiles: qs
                    .iter()
                    .map(|&q| self.window.quantile(q, self.min, self.max))
                    .collect(),
                quantiles_from_histogram: true,
            }
        });
        self.total_count += self.window.count;
        self.total_sum += self.window.sum;
        if let Some(cumulative) = &mut self.cumulative
            && self.values > 0
        {
            Arc::make_mut(cumulative).merge(&self.window, self.settings.max_buckets);
        }
        self.window.clear();
        self.window.schema = self.settings.schema;
        (self.values, self.min, self.max, self.shifted, self.squares) =
            (0, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
        SamplesRollup {
            window,
            total_count: self.total_count,
            total_sum: self.total_sum,
            buckets: self.buckets.as_ref().map(BucketHits::cumulative),
            native: self.cumulative.clone(),
        }
    }
}
