//! One shard's series: lookup by key, creation under the series limit, window close.
//!
//! A `ShardState` is owned by exactly one thread and is plain synchronous code, so
//! tests drive it directly: open a window on an arena, apply batches, close it,
//! look at the rollups. The thread in `thread.rs` only adds the clock and queue.
//!
//! Lookup is one probe of a hash map keyed by the pre-computed 128-bit series key
//! (identity-hashed) that holds the series state itself, so a known series costs
//! one map probe and no further pointer chase: at 100k series, where every probe
//! misses the cache, each indirection removed is a cache miss saved per sample.
//! A shard that large also looks up a few samples' series ahead of updating
//! them, so that their misses overlap. A close prefetches the same way.
//! A new series costs one `SeriesMeta` (its labels rendered here, once). Idle
//! series are removed at window close.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::batch::{Batch, BatchSample};
use super::flush::ClosedWindow;
use super::key_map::IdentityHasher;
use super::series::{CloseReads, Series, State};
use super::tuning::{LiveTuning, Tuning};
use super::window_samples::WindowSamples;
use crate::codec::MetricType;
use crate::config::{Config, ShardPriority};
use crate::gpu::Offload;
use crate::kernels::Kernels;
use crate::mapping::{Mapper, Mapping};
use crate::series::{SeriesKey, SeriesMeta};
use crate::store::WindowBounds;
use crate::telemetry::{DropReason, Telemetry};

/// Everything a shard needs to know from the config.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// What a reload may change, as the shard starts with it.
    pub tuning: Arc<Tuning>,
    /// Where reloads publish new tuning; the shard takes it at a window start.
    pub live: Arc<LiveTuning>,
    /// The kernels that complete closed windows.
    pub kernels: Kernels,
    /// The GPU offload of large windows, when started (see `gpu::Offload`).
    pub offload: Option<Arc<Offload>>,
    /// The scheduling of the shard and flush threads (`shard_priority`).
    pub priority: ShardPriority,
}

impl ShardSettings {
    /// The settings of each of `shards` shards under `config`, completing windows
    /// with `kernels` (chosen from `aggregation.kernel` by the caller).
    pub fn from_config(config: &Config, shards: usize, kernels: Kernels) -> Self {
        let tuning = Arc::new(Tuning::from_config(config, shards));
        ShardSettings {
            live: Arc::new(LiveTuning::new(tuning.clone())),
            tuning,
            kernels,
            offload: None,
            priority: config.shard_priority,
        }
    }

    /// The same settings, also computing the quantiles `mapper`'s rules ask for.
    pub fn with_mapping(self, mapper: Option<&Mapper>) -> Self {
        let tuning = Arc::new((*self.tuning).clone().with_mapping(mapper));
        ShardSettings {
            live: Arc::new(LiveTuning::new(tuning.clone())),
            tuning,
            ..self
        }
    }
}

type SeriesMap = HashMap<SeriesKey, Series, BuildHasherDefault<IdentityHasher>>;

// A map entry is what every series costs before its name: keep it at 56 bytes.
const _: () = assert!(std::mem::size_of::<(SeriesKey, Series)>() == 56);

/// Samples whose series are looked up together ahead of their updates, once
/// the map outgrows the core's caches and every lookup misses: a dozen misses
/// in flight cost little more than one.
const PROBE_AHEAD: usize = 16;

/// Series from which the look-ahead pays: about 1 MiB of map entries, a core's
/// share of L2. Below, every lookup hits the cache and the second one is waste.
const WARM_FROM_SERIES: usize = 16_384;

/// How many series ahead a window close prefetches: enough loads in flight
/// to cover a miss to memory while the series between are closed.
const PREFETCH_DISTANCE: usize = 16;

/// The series of one shard.
#[derive(Debug)]
pub struct ShardState {
    index: usize,
    settings: ShardSettings,
    telemetry: Arc<Telemetry>,
    series: SeriesMap,
    generation: u64,
}

impl ShardState {
    /// Shard number `index`, reporting to `telemetry.shards[index]`.
    pub fn new(index: usize, settings: ShardSettings, telemetry: Arc<Telemetry>) -> Self {
        ShardState {
            index,
            settings,
            telemetry,
            series: SeriesMap::default(),
            generation: 0,
        }
    }

    /// Series held now.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The tuning in force.
    pub fn tuning(&self) -> &Arc<Tuning> {
        &self.settings.tuning
    }

    /// Switches to `tuning` (a reload's) before a window opens. Sampled series
    /// whose histogram rule now gives other bounds start those buckets afresh
    /// (a counter reset for Prometheus); everything else applies as it is read.
    pub fn retune(&mut self, tuning: Arc<Tuning>) {
        for series in self.series.values_mut() {
            series.state.set_buckets(tuning.buckets_for(&series.meta));
        }
        self.settings.tuning = tuning;
    }

    /// Empties `window` and makes it the open window.
    pub fn begin_window(&mut self, window: &mut WindowSamples) {
        self.generation += 1;
        window.reset(self.generation);
    }

    /// Applies every sample of `batch` to the open `window`.
    pub fn apply(&mut self, window: &mut WindowSamples, batch: &Batch) {
        let series_settings = &self.settings.tuning.series;
        let mut refused = 0u64;
        let warm = self.series.len() >= WARM_FROM_SERIES;
        for (index, sample) in batch.samples.iter().enumerate() {
            if warm && index % PROBE_AHEAD == 0 {
                self.warm(&batch.samples[index..]);
            }
            let full = self.series.len() >= self.settings.tuning.max_series;
            let series = match self.series.entry(sample.key) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(_) if full => {
                    refused += 1;
                    continue;
                }
                Entry::Vacant(entry) => entry.insert(new_series(&self.settings, batch, sample)),
            };
            let state = &mut series.state;
            if sample.kind == MetricType::Set {
                state.add_member(batch.member(sample));
            } else {
                state.add(
                    sample.value,
                    sample.signed,
                    sample.sample_rate,
                    window,
                    series_settings,
                );
            }
        }
        self.telemetry.dropped(DropReason::SeriesLimit).add(refused);
        self.telemetry.shards[self.index]
            .series
            .store(self.series.len() as u64, Ordering::Relaxed);
    }

    /// Looks up the series of the next [`PROBE_AHEAD`] samples of `samples`
    /// without using them: the lookups are independent, so the core overlaps
    /// their cache misses, and the updates that follow find the entries cached.
    #[inline]
    fn warm(&self, samples: &[BatchSample]) {
        for sample in samples.iter().take(PROBE_AHEAD) {
            std::hint::black_box(self.series.contains_key(&sample.key));
        }
    }

    /// Closes the open window, which spans `bounds`: removes series idle for
    /// `limits.series_idle_ttl`, then returns the rollup of every remaining series,
    /// with the kernel work on `window`'s samples left to [`ClosedWindow::complete`].
    pub fn close(&mut self, window: &WindowSamples, bounds: WindowBounds) -> ClosedWindow {
        let generation = window.generation();
        // 16 bytes a series, freed when the close returns.
        let mut reads = self.close_reads();
        for (i, series) in self.series.values_mut().enumerate() {
            if let Some(ahead) = reads.get(i + PREFETCH_DISTANCE) {
                ahead.prefetch();
            }
            if series.state.is_active(generation) {
                series.last_seen_ms = bounds.end_unix_ms;
            }
        }
        // Removing series shifts the positions of those after them in the
        // map's order; when none expired, the first pass's list still lines up.
        if self.expire_idle(bounds.end_unix_ms) > 0 {
            reads = self.close_reads();
        }
        let mut rollups = Vec::with_capacity(self.series.len());
        let mut segments = Vec::new();
        for (i, series) in self.series.values_mut().enumerate() {
            if let Some(ahead) = reads.get(i + PREFETCH_DISTANCE) {
                ahead.prefetch();
            }
            let (rollup, segment) = series.close(generation, &self.settings.tuning.series);
            if let Some(mut segment) = segment {
                segment.rollup = rollups.len() as u32;
                segments.push(segment);
            }
            rollups.push(rollup);
        }
        self.telemetry.shards[self.index]
            .series
            .store(self.series.len() as u64, Ordering::Relaxed);
        ClosedWindow {
            bounds,
            quantiles: self.settings.tuning.window_quantiles(),
            native: self.settings.tuning.native,
            rollups,
            segments,
        }
    }

    /// Where closing each series will read, in the map's order (one
    /// sequential pass over the entries), so that the passes of a close can
    /// prefetch [`PREFETCH_DISTANCE`] series ahead.
    fn close_reads(&self) -> Vec<CloseReads> {
        self.series.values().map(Series::close_reads).collect()
    }

    /// Removes the series whose last data is their idle time (a mapping rule's
    /// `ttl`, else `limits.series_idle_ttl`) or more before `now_ms`; returns
    /// how many it removed.
    fn expire_idle(&mut self, now_ms: u64) -> usize {
        let default_ttl = self.settings.tuning.idle_ttl_ms;
        let before = self.series.len();
        self.series.retain(|_, series| {
            let ttl = series
                .meta
                .options
                .as_deref()
                .and_then(|o| o.idle_ttl_ms)
                .unwrap_or(default_ttl);
            now_ms.saturating_sub(series.last_seen_ms) < ttl.max(1)
        });
        let expired = before - self.series.len();
        self.telemetry.shards[self.index]
            .series_expired
            .add(expired as u64);
        expired
    }
}

/// A new series for the first sample of it, `sample` in `batch`.
fn new_series(settings: &ShardSettings, batch: &Batch, sample: &BatchSample) -> Series {
    let meta = series_meta(batch, sample);
    let state = State::new(
        &meta,
        settings.tuning.buckets_for(&meta),
        &settings.tuning.series,
    );
    Series {
        meta: Arc::new(meta),
        last_seen_ms: 0,
        state,
    }
}

/// The identity of the series of `sample`: mapped by the mapping the batch was
/// routed under, if any (the router made its key from the same mapping).
fn series_meta(batch: &Batch, sample: &BatchSample) -> SeriesMeta {
    let (name, tags) = (batch.name(sample), batch.tags(sample));
    let mapping = batch.mapper.as_deref().map(|m| m.map(sample.kind, name));
    match mapping {
        Some(Mapping::Map(mapped)) => SeriesMeta::mapped(
            sample.kind,
            &mapped.name,
            &mapped.labels,
            tags,
            mapped.rule.honor_labels,
            mapped.rule.options.clone(),
        ),
        Some(Mapping::Unmatched(Some(options))) => {
            SeriesMeta::new(sample.kind, name, tags).with_options(options.clone())
        }
        _ => SeriesMeta::new(sample.kind, name, tags),
    }
}
