//! The part of the shard settings a config reload may change ([`Tuning`]), and
//! how a reload reaches every shard at the same window ([`LiveTuning`]).
//!
//! A reload publishes new tuning with the start of the first window it applies
//! to: the window after the one open at the time of the reload. Each shard
//! asks for the tuning of a window when it opens it, so every shard switches
//! at the same window, and the window open during the reload is closed under
//! the settings it was opened with (its quantiles, its buckets). Readers take
//! no lock: the versions sit behind an `ArcSwap`.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::native_book::NativeSettings;
use super::series::SeriesSettings;
use crate::codec::MetricType;
use crate::config::{Config, NamePattern, TimerSamples};
use crate::mapping::Mapper;
use crate::series::{Observer, SeriesMeta};
use crate::store::WindowQuantiles;

/// What a reload may change for shards.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Quantiles and gauge mode.
    pub series: SeriesSettings,
    /// Histogram rules: the first pattern matching a sampled series' name gives its
    /// bucket bounds.
    pub histograms: Vec<(NamePattern, Arc<[f64]>)>,
    /// Series this shard may hold: `limits.max_series` divided among the shards,
    /// rounded up.
    pub max_series: usize,
    /// Milliseconds without data after which a series is removed.
    pub idle_ttl_ms: u64,
    /// Native histograms, when enabled.
    pub native: Option<NativeSettings>,
    /// `aggregation.quantiles`: what a series shows unless a mapping rule gives
    /// it its own list (`series.quantiles` holds those too).
    pub default_quantiles: Arc<[f64]>,
}

impl Tuning {
    /// The tuning of each of `shards` shards under `config`.
    pub fn from_config(config: &Config, shards: usize) -> Tuning {
        let aggregation = &config.aggregation;
        let max_series = config.limits.max_series.get().div_ceil(shards as u64);
        let native = NativeSettings::from_config(&aggregation.native_histograms);
        let quantiles: Arc<[f64]> = aggregation.quantiles.iter().collect();
        Tuning {
            default_quantiles: quantiles.clone(),
            series: SeriesSettings {
                quantiles,
                gauge_sign: aggregation.gauge_sign,
                native,
                binned: (aggregation.timer_samples == TimerSamples::Histogram)
                    .then(|| NativeSettings::of(&aggregation.native_histograms)),
            },
            histograms: aggregation
                .histograms
                .iter()
                .map(|rule| (rule.pattern.clone(), Arc::from(rule.buckets.bounds())))
                .collect(),
            max_series: usize::try_from(max_series).unwrap_or(usize::MAX),
            idle_ttl_ms: u64::try_from(config.limits.series_idle_ttl.get().as_millis())
                .unwrap_or(u64::MAX),
            native,
        }
    }

    /// The same tuning, also computing every quantile `mapper`'s summary rules
    /// ask for.
    pub fn with_mapping(mut self, mapper: Option<&Mapper>) -> Tuning {
        let extra = mapper.map_or(&[][..], |m| m.quantiles());
        if extra.iter().any(|q| !self.default_quantiles.contains(q)) {
            let mut all = self.default_quantiles.to_vec();
            all.extend(extra.iter().filter(|q| !self.default_quantiles.contains(q)));
            self.series.quantiles = all.into();
        }
        self
    }

    /// The quantiles of windows under this tuning.
    pub fn window_quantiles(&self) -> WindowQuantiles {
        WindowQuantiles {
            computed: self.series.quantiles.clone(),
            default: self.default_quantiles.clone(),
        }
    }

    /// The bucket bounds of a series: its mapping rule's when it is a histogram
    /// rule (none when it is a summary rule), else from the first histogram rule
    /// matching its name; none for counters, gauges and sets.
    pub fn buckets_for(&self, meta: &SeriesMeta) -> Option<Arc<[f64]>> {
        if !matches!(
            meta.kind,
            MetricType::Timer | MetricType::Histogram | MetricType::Distribution
        ) {
            return None;
        }
        match meta.options.as_deref().and_then(|o| o.observer.as_ref()) {
            Some(Observer::Histogram { buckets }) => return Some(buckets.clone()),
            Some(Observer::Summary { .. }) => return None,
            None => {}
        }
        self.histograms
            .iter()
            .find(|(pattern, _)| pattern.is_match(meta.name()))
            .map(|(_, bounds)| bounds.clone())
    }
}

/// The tuning in force, and the one before it for windows that started earlier.
#[derive(Debug)]
struct Versions {
    current: Arc<Tuning>,
    /// Start of the first window `current` applies to.
    effective_from_ms: u64,
    previous: Arc<Tuning>,
}

/// Tuning published by reloads, read by shards at each window start.
#[derive(Debug)]
pub struct LiveTuning {
    versions: ArcSwap<Versions>,
}

impl LiveTuning {
    /// Tuning that applies to every window until a reload.
    pub fn new(initial: Arc<Tuning>) -> LiveTuning {
        LiveTuning {
            versions: ArcSwap::from_pointee(Versions {
                current: initial.clone(),
                effective_from_ms: 0,
                previous: initial,
            }),
        }
    }

    /// Makes `next` the tuning of windows starting at or after `effective_from_ms`.
    /// Only reloads call this (one at a time).
    pub fn publish(&self, next: Tuning, effective_from_ms: u64) {
        let previous = self.for_window(effective_from_ms.saturating_sub(1));
        self.versions.store(Arc::new(Versions {
            current: Arc::new(next),
            effective_from_ms,
            previous,
        }));
    }

    /// The tuning of the window starting at `start_ms`.
    pub fn for_window(&self, start_ms: u64) -> Arc<Tuning> {
        let versions = self.versions.load();
        if start_ms >= versions.effective_from_ms {
            versions.current.clone()
        } else {
            versions.previous.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(max_series: usize) -> Tuning {
        let mut tuning = Tuning::from_config(&Config::default(), 1);
        tuning.max_series = max_series;
        tuning
    }

    #[test]
    fn a_reload_applies_from_its_window_on() {
        let live = LiveTuning::new(Arc::new(tuning(1)));
        live.publish(tuning(2), 20_000);
        assert_eq!(live.for_window(10_000).max_series, 1);
        assert_eq!(live.for_window(20_000).max_series, 2);
        // A second reload before the first took effect replaces it.
        live.publish(tuning(3), 20_000);
        assert_eq!(live.for_window(10_000).max_series, 1);
        assert_eq!(live.for_window(30_000).max_series, 3);
        live.publish(tuning(4), 40_000);
        assert_eq!(live.for_window(30_000).max_series, 3);
        assert_eq!(live.for_window(40_000).max_series, 4);
    }
}
