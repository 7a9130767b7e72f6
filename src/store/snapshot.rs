//! What a closed window looks like to readers: immutable rollups of every live series.
//!
//! A snapshot is built once by the shards when a window closes and never changes
//! afterwards, so any number of HTTP readers share it through an `Arc` without a
//! lock. Series identity (`SeriesMeta`, with its pre-rendered Prometheus labels) is
//! shared with the shard by `Arc` too: a snapshot costs 32 bytes per series,
//! plus about 150 bytes (boxed rollup and quantiles) for each timer, histogram
//! or distribution.
//!
//! Every live series is in every snapshot, also when it received nothing in that
//! window (`active: false`): Prometheus needs cumulative counters and persisting
//! gauges at every scrape, and carrying them here keeps the shard the single owner
//! of series state.

use std::sync::Arc;

use super::{NativeHistogram, WindowBounds};
use crate::series::{Observer, SeriesMeta};

/// Rollups of one closed window, across all shards.
#[derive(Debug, Clone)]
pub struct WindowSnapshot {
    /// The window's span.
    pub bounds: WindowBounds,
    /// The quantiles reported in [`SampleRollup::quantiles`], in the same order.
    pub quantiles: Arc<[f64]>,
    /// Those a series exposes unless a mapping rule gives it its own.
    pub default_quantiles: Arc<[f64]>,
    /// Every live series, sorted by Prometheus family name, then type, then labels.
    pub series: Vec<SeriesRollup>,
}

/// The quantiles of a window: those computed, and those a series shows by default.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowQuantiles {
    /// Computed for every sampled series (`aggregation.quantiles` and every
    /// quantile a mapping rule asks for), sorted as configured.
    pub computed: Arc<[f64]>,
    /// `aggregation.quantiles`: what a series without its own list shows.
    pub default: Arc<[f64]>,
}

impl WindowQuantiles {
    /// Computing and showing the same `quantiles`.
    pub fn same(quantiles: Arc<[f64]>) -> Self {
        WindowQuantiles {
            computed: quantiles.clone(),
            default: quantiles,
        }
    }
}

impl WindowSnapshot {
    /// The quantiles the series `meta` shows, each with its position in
    /// [`WindowSnapshot::quantiles`] (and so in its rollup's values): a mapping
    /// rule's own list, or the default one.
    pub fn quantiles_of<'a>(
        &'a self,
        meta: &'a SeriesMeta,
    ) -> impl Iterator<Item = (usize, f64)> + 'a {
        let list = match meta.options.as_deref().and_then(|o| o.observer.as_ref()) {
            Some(Observer::Summary { quantiles }) => &quantiles[..],
            _ => &self.default_quantiles[..],
        };
        list.iter()
            .filter_map(|&q| self.quantiles.iter().position(|&c| c == q).map(|i| (i, q)))
    }

    /// The window's length in seconds (the divisor of counter rates).
    pub fn seconds(&self) -> f64 {
        (self.bounds.end_unix_ms - self.bounds.start_unix_ms) as f64 / 1000.0
    }
}

/// One series' state at the close of a window.
#[derive(Debug, Clone)]
pub struct SeriesRollup {
    /// Name, type, tags and their Prometheus rendering.
    pub meta: Arc<SeriesMeta>,
    /// The values.
    pub rollup: Rollup,
}

/// The values of a series, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollup {
    /// A counter (`c`).
    Counter {
        /// Sum of value/rate in this window.
        sum: f64,
        /// Sum since the series appeared (Prometheus `_total`).
        total: f64,
        /// Samples arrived in this window.
        active: bool,
    },
    /// A gauge (`g`); the value persists across windows.
    Gauge {
        /// The last value.
        value: f64,
        /// Samples arrived in this window.
        active: bool,
    },
    /// A set (`s`).
    Set {
        /// Distinct members in this window.
        unique: u64,
        /// Members arrived in this window.
        active: bool,
    },
    /// A timer, histogram or distribution (`ms`, `h`, `d`).
    Samples(Box<SamplesRollup>),
}

/// A timer, histogram or distribution at the close of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplesRollup {
    /// This window's statistics; `None` when no sample arrived.
    pub window: Option<SampleRollup>,
    /// Sum of 1/rate over every sample since the series appeared (`_count`).
    pub total_count: f64,
    /// Sum of value/rate over every sample since the series appeared (`_sum`).
    pub total_sum: f64,
    /// Cumulative Prometheus buckets when a histogram rule matches the name.
    pub buckets: Option<Buckets>,
    /// The cumulative native histogram, when native histograms are enabled.
    pub native: Option<Arc<NativeHistogram>>,
}

/// Statistics of one window's samples of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRollup {
    /// Samples received, each counted as 1/rate.
    pub count: f64,
    /// Sum of value/rate.
    pub sum: f64,
    /// Smallest value received.
    pub min: f64,
    /// Largest value received.
    pub max: f64,
    /// `sum / count`.
    pub mean: f64,
    /// Population standard deviation of the values received.
    pub stddev: f64,
    /// Quantiles of the values received, one per configured quantile: exact,
    /// or estimated from a histogram when `quantiles_from_histogram`.
    pub quantiles: Box<[f64]>,
    /// The series binned its samples (`timer_samples: histogram`): quantiles
    /// are estimates, within one bucket's width.
    pub quantiles_from_histogram: bool,
}

/// Prometheus histogram buckets, cumulative since the series appeared.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Upper bounds, strictly increasing, without `+Inf`.
    pub bounds: Arc<[f64]>,
    /// `counts[i]`: samples (each counted as 1/rate) `<= bounds[i]`.
    pub counts: Box<[f64]>,
}

impl Rollup {
    /// True when the series received data in the window, or is a gauge (which
    /// persists): what the JSON API lists.
    pub fn is_reported(&self) -> bool {
        match self {
            Rollup::Counter { active, .. } | Rollup::Set { active, .. } => *active,
            Rollup::Gauge { .. } => true,
            Rollup::Samples(s) => s.window.is_some(),
        }
    }
}
