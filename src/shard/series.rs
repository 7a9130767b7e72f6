//! The state of one series inside its shard, and how a sample changes it.
//!
//! Counters, gauges and sets are updated in place. Timers, histograms and
//! distributions append each value to the window's arena (`WindowSamples`) and
//! keep only running weights here; the values are reduced by the kernels when
//! the window closes. Sizes: a counter or gauge costs about 100 bytes with its
//! map entry and shared name; a set also holds 8 bytes per distinct member of the
//! window; a sampled series holds a boxed 64-byte state plus 8 bytes per sample
//! in the arena.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

use super::key_map::IdentityHasher;
use super::sample_list::SampleList;
use crate::config::GaugeSign;
use crate::kernels::scalar;
use crate::series::SeriesMeta;
use crate::store::{Buckets, Rollup, SampleRollup, SamplesRollup, SeriesRollup};

/// The samples of one window, arena-allocated: one growable list per sampled series.
pub struct WindowSamples<'a> {
    arena: &'a Bump,
    lists: BumpVec<'a, SampleList<'a>>,
    generation: u64,
}

impl<'a> WindowSamples<'a> {
    /// An empty window whose lists live in `arena`; `generation` tells its slots
    /// apart from those of earlier windows.
    pub(super) fn new(arena: &'a Bump, generation: u64) -> Self {
        WindowSamples {
            arena,
            lists: BumpVec::new_in(arena),
            generation,
        }
    }

    /// Samples held, over all series.
    pub fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len()).sum()
    }

    /// True when no sample is held.
    pub fn is_empty(&self) -> bool {
        self.lists.iter().all(|l| l.is_empty())
    }
}

/// Buffers reused by every series at a window close.
#[derive(Debug, Default)]
pub struct CloseScratch {
    /// One series' samples, made contiguous for the kernels.
    values: Vec<f64>,
    /// Bucket counts of one series.
    buckets: Vec<u64>,
}

/// Per-shard settings every series update needs.
#[derive(Debug, Clone)]
pub struct SeriesSettings {
    /// Quantiles computed for sampled series.
    pub quantiles: Arc<[f64]>,
    /// How signed gauge values are read.
    pub gauge_sign: GaugeSign,
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

#[derive(Debug)]
pub(super) enum State {
    Counter { sum: f64, total: f64, active: bool },
    Gauge { value: f64, active: bool },
    Set { members: MemberSet },
    Samples(Box<SampleState>),
}

#[derive(Debug)]
pub(super) struct SampleState {
    /// Index of this series' list in the window, valid when `generation` matches.
    slot: u32,
    generation: u64,
    /// Sum of 1/rate and of value/rate in this window.
    weight: f64,
    weighted_sum: f64,
    total_count: f64,
    total_sum: f64,
    buckets: Option<Buckets>,
}

impl State {
    /// The empty state of a new series of `meta.kind`, with histogram `bounds` when a
    /// rule matched its name.
    pub fn new(meta: &SeriesMeta, bounds: Option<Arc<[f64]>>) -> Self {
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
                members: MemberSet::default(),
            },
            Timer | Histogram | Distribution => State::Samples(Box::new(SampleState {
                slot: 0,
                generation: u64::MAX,
                weight: 0.0,
                weighted_sum: 0.0,
                total_count: 0.0,
                total_sum: 0.0,
                buckets: bounds.map(|bounds| Buckets {
                    counts: vec![0.0; bounds.len()].into_boxed_slice(),
                    bounds,
                }),
            })),
        }
    }

    /// Applies one numeric sample (`signed`: the text had a sign) at `rate`.
    #[inline]
    pub fn add(
        &mut self,
        value: f64,
        signed: bool,
        rate: f64,
        window: &mut WindowSamples<'_>,
        gauge_sign: GaugeSign,
    ) {
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
            State::Samples(state) => state.add(value, rate, window),
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

    /// True when the series received data in the open window.
    pub fn is_active(&self, generation: u64) -> bool {
        match self {
            State::Counter { active, .. } | State::Gauge { active, .. } => *active,
            State::Set { members } => !members.is_empty(),
            State::Samples(state) => state.generation == generation,
        }
    }

    /// The rollup of the window that is closing, resetting the window's state.
    pub fn close(
        &mut self,
        window: &mut WindowSamples<'_>,
        settings: &SeriesSettings,
        scratch: &mut CloseScratch,
    ) -> Rollup {
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
                rollup
            }
            State::Gauge { value, active } => {
                let rollup = Rollup::Gauge {
                    value: *value,
                    active: *active,
                };
                *active = false;
                rollup
            }
            State::Set { members } => {
                let rollup = Rollup::Set {
                    unique: members.len() as u64,
                    active: !members.is_empty(),
                };
                members.clear();
                rollup
            }
            State::Samples(state) => {
                Rollup::Samples(Box::new(state.close(window, settings, scratch)))
            }
        }
    }
}

impl SampleState {
    #[inline]
    fn add(&mut self, value: f64, rate: f64, window: &mut WindowSamples<'_>) {
        if self.generation != window.generation {
            self.generation = window.generation;
            self.slot = window.lists.len() as u32;
            self.weight = 0.0;
            self.weighted_sum = 0.0;
            window.lists.push(SampleList::new_in(window.arena));
        }
        window.lists[self.slot as usize].push(window.arena, value);
        self.weight += 1.0 / rate;
        self.weighted_sum += value / rate;
    }

    fn close(
        &mut self,
        window: &mut WindowSamples<'_>,
        settings: &SeriesSettings,
        scratch: &mut CloseScratch,
    ) -> SamplesRollup {
        let stats = (self.generation == window.generation).then(|| {
            window.lists[self.slot as usize].copy_to(&mut scratch.values);
            self.window_stats(
                &mut scratch.values,
                &settings.quantiles,
                &mut scratch.buckets,
            )
        });
        if let Some(stats) = &stats {
            self.total_count += stats.count;
            self.total_sum += stats.sum;
        }
        self.generation = u64::MAX;
        SamplesRollup {
            window: stats,
            total_count: self.total_count,
            total_sum: self.total_sum,
            buckets: self.buckets.clone(),
        }
    }

    /// Reduces one window's values; sorts `values` in place.
    fn window_stats(
        &mut self,
        values: &mut [f64],
        qs: &[f64],
        scratch: &mut Vec<u64>,
    ) -> SampleRollup {
        let moments = scalar::moments(values);
        let n = values.len() as f64;
        // With every rate at 1 the weights equal the plain count and sum; the kernel's
        // fixed-order sum is then used, so results match the reference exactly.
        let (count, sum) = if self.weight == n {
            (n, moments.sum)
        } else {
            (self.weight, self.weighted_sum)
        };
        if let Some(buckets) = &mut self.buckets {
            scratch.resize(buckets.bounds.len(), 0);
            scalar::cumulative_buckets(values, &buckets.bounds, scratch);
            // Each value counts as 1/rate, like `_count`; with mixed rates in one
            // window the mean weight is used, so the `+Inf` bucket still equals `_count`.
            let scale = count / n;
            for (total, &hits) in buckets.counts.iter_mut().zip(scratch.iter()) {
                *total += hits as f64 * scale;
            }
        }
        let mut quantiles = vec![0.0; qs.len()].into_boxed_slice();
        scalar::quantiles(values, qs, &mut quantiles);
        SampleRollup {
            count,
            sum,
            min: moments.min,
            max: moments.max,
            mean: sum / count,
            stddev: moments.stddev(),
            quantiles,
        }
    }
}

impl Series {
    /// The snapshot entry of this series for the window that is closing.
    pub fn close(
        &mut self,
        window: &mut WindowSamples<'_>,
        settings: &SeriesSettings,
        scratch: &mut CloseScratch,
    ) -> SeriesRollup {
        SeriesRollup {
            meta: self.meta.clone(),
            rollup: self.state.close(window, settings, scratch),
        }
    }
}
