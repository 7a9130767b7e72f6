//! The state of one series inside its shard, and how a sample changes it.
//!
//! Counters, gauges and sets are updated in place. Timers, histograms and
//! distributions append each value to the window's samples (`WindowSamples`)
//! and keep here only what the window close needs without the values: the
//! window's count and sum (each sample weighted 1/rate), cumulative totals, and
//! histogram bucket hits, counted as samples arrive (one `partition_point` over
//! a few bounds) so that every sample is weighted by its own rate. Minimum,
//! maximum, spread and quantiles need the values and are computed by the flush
//! (`flush.rs`), off the shard thread.
//!
//! Sizes: a counter or gauge is one map entry (56 bytes) plus its name and
//! labels, rendered once and shared with the snapshots; a set also holds a
//! boxed set of 8 bytes per distinct member of the window; a sampled series
//! holds a boxed state of under 100 bytes plus 8 bytes per sample.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::binned::BinnedState;
use super::bucket_hits::BucketHits;
use super::key_map::IdentityHasher;
use super::native_book::NativeSettings;
use super::window_samples::WindowSamples;
use crate::config::GaugeSign;
use crate::series::SeriesMeta;
use crate::store::{Rollup, SamplesRollup, SeriesRollup};

/// Per-shard settings every series update needs.
#[derive(Debug, Clone)]
pub struct SeriesSettings {
    /// Quantiles computed for sampled series.
    pub quantiles: Arc<[f64]>,
    /// How signed gauge values are read.
    pub gauge_sign: GaugeSign,
    /// Native histograms are exposed: a sample whose rate differs from the
    /// window's first must be weighed on its own (see [`Segment::adjustments`]).
    pub native: Option<NativeSettings>,
    /// `aggregation.timer_samples: histogram`: sampled series bin their samples
    /// instead of keeping them.
    pub binned: Option<NativeSettings>,
}

/// One series held by a shard.
#[derive(Debug)]
pub(super) struct Series {
    pub meta: Arc<SeriesMeta>,
    /// End of the last window in which the series received data.
    pub last_seen_ms: u64,
    pub state: State,
}

type MemberSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// A set's members are boxed: inline, their 32 bytes would make every
/// series' state (and the shard's map entry) that much larger.
#[derive(Debug)]
pub(super) enum State {
    Counter { sum: f64, total: f64, active: bool },
    Gauge { value: f64, active: bool },
    Set { members: Box<MemberSet> },
    Samples(Box<SampleState>),
    Binned(Box<BinnedState>),
}

#[derive(Debug)]
pub(super) struct SampleState {
    /// This series' list in the window, valid when `generation` matches.
    slot: u32,
    generation: u64,
    /// Sum of 1/rate and of value/rate in this window.
    weight: f64,
    weighted_sum: f64,
    /// Every sample of the window had rate 1.
    unit_rates: bool,
    /// The rate of the window's first sample.
    first_rate: f64,
    /// The slot of (value, 1/rate - 1/first_rate) pairs of the samples at
    /// another rate, when native histograms are exposed and there are some.
    adjustments: Option<u32>,
    total_count: f64,
    total_sum: f64,
    buckets: Option<BucketHits>,
}

/// A sampled series' part of a window close that needs its values: done by the flush.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Index of the series' entry in the window's rollups.
    pub rollup: u32,
    /// The series' list in the closed window's samples.
    pub slot: u32,
    /// Sum of 1/rate over the window's samples.
    pub count: f64,
    /// Sum of value/rate over the window's samples, in arrival order.
    pub sum: f64,
    /// Every sample had rate 1, so `count` and `sum` are plain (and the kernel's
    /// fixed-order sum is reported, as the reference defines it).
    pub unit_rates: bool,
    /// The rate of the window's first sample: every sample weighs 1/rate in a
    /// native histogram, less its adjustment.
    pub first_rate: f64,
    /// When native histograms are kept and some samples came at another rate
    /// than the first: the slot of `(value, 1/rate - 1/first_rate)` pairs that
    /// correct their buckets' weight.
    pub adjustments: Option<u32>,
}

impl State {
    /// The empty state of a new series of `meta.kind`, with histogram `bounds` when a
    /// rule matched its name.
    pub fn new(meta: &SeriesMeta, bounds: Option<Arc<[f64]>>, settings: &SeriesSettings) -> Self {
        use crate::codec::MetricType::*;
        match meta.kind {
            Counter => State::Counter {
                sum: 0.0,
                total: 0.0,
                active: false,
            },
            Gauge => State::Gauge {
                value: 0.0,
                active: false,
            },
            Set => State::Set {
                members: Box::default(),
            },
            Timer | Histogram | Distribution => match settings.binned {
                Some(binned) => State::Binned(Box::new(BinnedState::new(
                    binned,
                    BucketHits::new(bounds),
                    settings.native.is_some(),
                ))),
                None => State::Samples(Box::new(SampleState {
                    slot: 0,
                    generation: u64::MAX,
                    weight: 0.0,
                    weighted_sum: 0.0,
                    unit_rates: true,
                    first_rate: 1.0,
                    adjustments: None,
                    total_count: 0.0,
                    total_sum: 0.0,
                    buckets: BucketHits::new(bounds),
                })),
            },
        }
    }

    /// Gives a sampled series the histogram `bounds` a reload assigned it; bounds
    /// that differ from its own start from zero. Other kinds ignore it.
    pub fn set_buckets(&mut self, bounds: Option<Arc<[f64]>>) {
        let buckets = match self {
            State::Samples(state) => &mut state.buckets,
            State::Binned(state) => &mut state.buckets,
            _ => return,
        };
        *buckets = BucketHits::retuned(buckets.take(), bounds);
    }

    /// Applies one numeric sample (`signed`: the text had a sign) at `rate`.
    #[inline]
    pub fn add(
        &mut self,
        value: f64,
        signed: bool,
        rate: f64,
        window: &mut WindowSamples,
        settings: &SeriesSettings,
    ) {
        let gauge_sign = settings.gauge_sign;
        match self {
            State::Counter { sum, active, .. } => {
                *sum += value / rate;
                *active = true;
            }
            State::Gauge {
                value: current,
                active,
            } => {
                // A signed value on a gauge that exists adjusts it (Etsy StatsD); on a
                // new gauge it is the same as adjusting zero.
                if signed && gauge_sign == GaugeSign::Statsd {
                    *current += value;
                } else {
                    *current = value;
                }
                *active = true;
            }
            State::Samples(state) => state.add(value, rate, window, settings.native.is_some()),
            State::Binned(state) => state.add(value, rate),
            // Sets are fed through `add_member`.
            State::Set { .. } => {}
        }
    }

    /// Adds one set member, identified by a 64-bit hash of its text.
    #[inline]
    pub fn add_member(&mut self, member: &[u8]) {
        if let State::Set { members } = self {
            members.insert(xxhash_rust::xxh3::xxh3_64(member));
        }
    }

    /// True when the series received data in the open window (`generation`).
    pub fn is_active(&self, generation: u64) -> bool {
        match self {
            State::Counter { active, .. } | State::Gauge { active, .. } => *active,
            State::Set { members } => !members.is_empty(),
            State::Samples(state) => state.generation == generation,
            State::Binned(state) => state.is_active(),
        }
    }

    /// The rollup of the window `generation` that is closing, resetting the
    /// window's state; for a sampled series with data, also the segment the flush
    /// must complete (its `rollup` index is the caller's to fill in).
    pub fn close(
        &mut self,
        generation: u64,
        settings: &SeriesSettings,
    ) -> (Rollup, Option<Segment>) {
        match self {
            State::Counter { sum, total, active } => {
                *total += *sum;
                let rollup = Rollup::Counter {
                    sum: *sum,
                    total: *total,
                    active: *active,
                };
                *sum = 0.0;
                *active = false;
                (rollup, None)
            }
            State::Gauge { value, active } => {
                let rollup = Rollup::Gauge {
                    value: *value,
                    active: *active,
                };
                *active = false;
                (rollup, None)
            }
            State::Set { members } => {
                let rollup = Rollup::Set {
                    unique: members.len() as u64,
                    active: !members.is_empty(),
                };
                members.clear();
                (rollup, None)
            }
            State::Samples(state) => {
                let (rollup, segment) = state.close(generation);
                (Rollup::Samples(Box::new(rollup)), segment)
            }
            State::Binned(state) => {
                let rollup = state.close(&settings.quantiles);
                (Rollup::Samples(Box::new(rollup)), None)
            }
        }
    }
}

impl SampleState {
    #[inline]
    fn add(&mut self, value: f64, rate: f64, window: &mut WindowSamples, weigh_each: bool) {
        if self.generation != window.generation() {
            self.generation = window.generation();
            self.slot = window.new_slot();
            self.weight = 0.0;
            self.weighted_sum = 0.0;
            self.unit_rates = true;
            self.first_rate = rate;
            self.adjustments = None;
        }
        window.push(self.slot, value);
        let weight = 1.0 / rate;
        if weigh_each && rate != self.first_rate {
            let slot = *self.adjustments.get_or_insert_with(|| window.new_slot());
            window.push(slot, value);
            window.push(slot, weight - 1.0 / self.first_rate);
        }
        self.weight += weight;
        self.weighted_sum += value / rate;
        self.unit_rates &= rate == 1.0;
        if let Some(buckets) = &mut self.buckets {
            buckets.hit(value, weight);
        }
    }

    fn close(&mut self, generation: u64) -> (SamplesRollup, Option<Segment>) {
        let segment = (self.generation == generation).then(|| {
            self.total_count += self.weight;
            self.total_sum += self.weighted_sum;
            Segment {
                rollup: 0,
                slot: self.slot,
                count: self.weight,
                sum: self.weighted_sum,
                unit_rates: self.unit_rates,
                first_rate: self.first_rate,
                adjustments: self.adjustments,
            }
        });
        self.generation = u64::MAX;
        let buckets = self.buckets.as_ref().map(BucketHits::cumulative);
        let rollup = SamplesRollup {
            window: None,
            total_count: self.total_count,
            total_sum: self.total_sum,
            buckets,
            native: None,
        };
        (rollup, segment)
    }
}

/// The addresses closing a series reads beyond its map entry (its boxed state
/// and its identity's reference count), kept as plain numbers so that they
/// can be collected ahead and prefetched: at 100k series each is a cache miss.
#[derive(Debug, Clone, Copy)]
pub(super) struct CloseReads([usize; 2]);

impl CloseReads {
    /// Asks the core to start loading both (on x86_64; elsewhere nothing);
    /// never reads them itself, so a stale address costs nothing but the load.
    #[inline(always)]
    pub fn prefetch(self) {
        #[cfg(target_arch = "x86_64")]
        for address in self.0 {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch is a hint; it never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(address as *const i8) };
        }
    }
}

impl Series {
    /// Where closing this series will read, for [`CloseReads::prefetch`].
    pub fn close_reads(&self) -> CloseReads {
        let state = match &self.state {
            State::Samples(state) => &**state as *const SampleState as usize,
            State::Binned(state) => &**state as *const BinnedState as usize,
            State::Set { members } => &**members as *const MemberSet as usize,
            State::Counter { .. } | State::Gauge { .. } => 0,
        };
        CloseReads([state, Arc::as_ptr(&self.meta) as usize])
    }

    /// The snapshot entry of this series for the window `generation` that is
    /// closing, and the flush's part of it.
    pub fn close(
        &mut self,
        generation: u64,
        settings: &SeriesSettings,
    ) -> (SeriesRollup, Option<Segment>) {
        let (rollup, segment) = self.state.close(generation, settings);
        let entry = SeriesRollup {
            meta: self.meta.clone(),
            rollup,
        };
        (entry, segment)
    }
}
