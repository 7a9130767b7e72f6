//! The flush thread's cumulative native histograms, one per sampled series.
//!
//! A native histogram is cumulative since its series appeared (so `rate()`
//! works on it), and each window adds the buckets of its samples. That work
//! needs the samples, so it belongs to the flush thread, which completes its
//! shard's windows one after another and therefore owns the histograms outright:
//! the shard thread never touches them, and no lock is taken.
//!
//! Histograms are found by the identity of the series (its `SeriesMeta`,
//! shared with the shard), held here so that identity cannot be reused while
//! the entry lives. A series missing from a window's rollups was removed by
//! its shard; its histogram goes with it, so a series that comes back starts
//! from zero (a counter reset for Prometheus), as its other totals do.
//!
//! Each published snapshot shares the histogram through an `Arc`; a window
//! that adds to a histogram a snapshot still holds copies it first (at most
//! `max_buckets` pairs), so published snapshots never change.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::key_map::IdentityHasher;
use super::series::Segment;
use super::window_samples::WindowSamples;
use crate::config::NativeHistograms;
use crate::kernels::Kernels;
use crate::kernels::native::Layout;
use crate::series::SeriesMeta;
use crate::store::{KeyScratch, NativeHistogram, Rollup, SeriesRollup};

/// `aggregation.native_histograms` when enabled, as the shards use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeSettings {
    /// The schema windows are keyed at and new histograms start with.
    pub schema: i8,
    /// Populated buckets before a histogram's schema is lowered.
    pub max_buckets: usize,
    /// Half-width of the zero bucket.
    pub zero_threshold: f64,
}

impl NativeSettings {
    /// The settings of `config`, or `None` when native histograms are off.
    pub fn from_config(config: &NativeHistograms) -> Option<Self> {
        config.enabled.then(|| NativeSettings::of(config))
    }

    /// The settings of `meta`'s series: a mapping rule may ask for a coarser
    /// schema (never a finer one than the windows are keyed at) or another
    /// bucket limit.
    pub fn for_series(self, meta: &SeriesMeta) -> Self {
        match meta.options.as_deref().and_then(|o| o.native) {
            None => self,
            Some(own) => NativeSettings {
                schema: own.schema.map_or(self.schema, |s| s.min(self.schema)),
                max_buckets: own.max_buckets.unwrap_or(self.max_buckets),
                ..self
            },
        }
    }

    /// The schema, bucket limit and zero bucket of `config`, enabled or not.
    pub fn of(config: &NativeHistograms) -> Self {
        NativeSettings {
            schema: config.schema.get(),
            max_buckets: config.max_buckets.get(),
            zero_threshold: config.zero_threshold.get(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Keeps the series' identity (the map key) alive.
    _meta: Arc<SeriesMeta>,
    histogram: Arc<NativeHistogram>,
    /// The last window whose rollups listed the series.
    seen: u64,
}

/// Entries by series identity: its `SeriesMeta` address, mixed (a bijection,
/// so no two series share a key) so that the map's bucket bits are uniform.
type Entries = HashMap<u64, Entry, BuildHasherDefault<IdentityHasher>>;

fn identity(meta: &Arc<SeriesMeta>) -> u64 {
    let mixed = (Arc::as_ptr(meta) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 29)
}

/// Every native histogram of one shard, and the buffers that fill them.
#[derive(Debug, Default)]
pub struct NativeBook {
    entries: Entries,
    window: u64,
    keys: Vec<i32>,
    adjustments: Vec<f64>,
    scratch: KeyScratch,
}

impl NativeBook {
    /// Starts a window.
    pub fn begin(&mut self) {
        self.window += 1;
    }

    /// Adds the samples of `segments` (gathered into `values`, cut by
    /// `offsets`, in segment order) to their series' histograms, and gives
    /// their rollups the result: one key kernel call over the whole buffer,
    /// then the counts per series.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        kernels: Kernels,
        settings: NativeSettings,
        rollups: &mut [SeriesRollup],
        segments: &[Segment],
        values: &[f64],
        offsets: &[usize],
        samples: &WindowSamples,
    ) {
        let layout = Layout::of(settings.schema);
        self.keys.clear();
        self.keys.resize(values.len(), 0);
        kernels.native_keys(values, layout, settings.zero_threshold, &mut self.keys);
        for (i, segment) in segments.iter().enumerate() {
            let Some(series) = rollups.get_mut(segment.rollup as usize) else {
                continue;
            };
            let own = settings.for_series(&series.meta);
            let entry = entry(&mut self.entries, &series.meta, own, self.window);
            let histogram = Arc::make_mut(&mut entry.histogram);
            let span = offsets[i]..offsets[i + 1];
            histogram.add_window(
                &values[span.clone()],
                &self.keys[span],
                settings.schema,
                1.0 / segment.first_rate,
                (segment.count, segment.sum),
                &mut self.scratch,
            );
            if let Some(slot) = segment.adjustments {
                self.adjustments.clear();
                samples.append_to(slot, &mut self.adjustments);
                for pair in self.adjustments.chunks_exact(2) {
                    histogram.adjust(pair[0], pair[1]);
                }
            }
            histogram.fit(own.max_buckets);
            if let Rollup::Samples(samples) = &mut series.rollup {
                samples.native = Some(entry.histogram.clone());
            }
        }
    }

    /// Gives every other sampled series of `rollups` its histogram (an empty
    /// one for a series with no sample since native histograms were turned
    /// on), then drops the histograms of series no longer listed. Series that
    /// bin their samples (`timer_samples: histogram`) come with their own.
    pub fn attach(&mut self, settings: NativeSettings, rollups: &mut [SeriesRollup]) {
        for series in rollups.iter_mut() {
            if let Rollup::Samples(samples) = &mut series.rollup
                && samples.native.is_none()
            {
                let own = settings.for_series(&series.meta);
                let entry = entry(&mut self.entries, &series.meta, own, self.window);
                samples.native = Some(entry.histogram.clone());
            }
        }
        let window = self.window;
        self.entries.retain(|_, entry| entry.seen == window);
    }

    /// Drops every histogram: native histograms were turned off.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Histograms held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no histogram is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The entry of `meta`'s series, created empty, marked seen in `window`.
fn entry<'a>(
    entries: &'a mut Entries,
    meta: &Arc<SeriesMeta>,
    settings: NativeSettings,
    window: u64,
) -> &'a mut Entry {
    let entry = entries.entry(identity(meta)).or_insert_with(|| Entry {
        _meta: meta.clone(),
        histogram: Arc::new(NativeHistogram::new(
            settings.schema,
            settings.zero_threshold,
        )),
        seen: window,
    });
    // A reload to a lower schema or another zero bucket starts afresh.
    let histogram = &entry.histogram;
    if histogram.schema > settings.schema || histogram.zero_threshold != settings.zero_threshold {
        entry.histogram = Arc::new(NativeHistogram::new(
            settings.schema,
            settings.zero_threshold,
        ));
    }
    entry.seen = window;
    entry
}
