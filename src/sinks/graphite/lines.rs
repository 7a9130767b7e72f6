//! A closed window as carbon plaintext lines, `path value timestamp`, with
//! Etsy StatsD's names under the sink's prefix:
//!
//! - counters: `counters.<name>.count` (this window's sum of value/rate) and
//!   `.rate` (that per second);
//! - timers, histograms, distributions: `timers.<name>.count`, `.count_ps`,
//!   `.sum`, `.mean`, `.upper`, `.lower`, `.std` and `.upper_<pct>` for each
//!   quantile the series shows on `/metrics` (the same exact values); a
//!   series without samples in the window sends `.count` and `.count_ps` 0;
//! - gauges: `gauges.<name>`, every window while the series lives;
//! - sets: `sets.<name>.count`;
//! - tallyd's own metrics: `tallyd.<family>`, label values as tags, or as
//!   further path components without tags.
//!
//! The timestamp is the window's end in seconds. Two series that end up with
//! one path (tags dropped, or names that sanitise alike) cannot both be
//! stored: the first is sent, the others counted `name_conflict`.

use std::collections::HashSet;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::names::{push_path, push_percentile_stat, push_tags};
use crate::config::GraphiteTags;
use crate::exposition::write_value;
use crate::sinks::delivery::{Encoder, Item};
use crate::sinks::queue::Weighed;
use crate::store::{Rollup, SeriesRollup, WindowSnapshot};
use crate::telemetry::{
    Collector, Family, HistogramSnapshot, ScrapeFacts, SinkDropReason, SinkStats, Telemetry,
};

/// One plaintext line, newline included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line(pub Box<str>);

impl Weighed for Line {
    fn bytes(&self) -> usize {
        self.0.len() + std::mem::size_of::<Line>()
    }
}

impl Item for Line {}

/// The sink's [`Encoder`].
pub struct Lines {
    /// `prefix.` (empty for no prefix).
    pub prefix: String,
    /// How tags are sent.
    pub tags: GraphiteTags,
    /// For tallyd's own metrics.
    pub telemetry: Arc<Telemetry>,
    /// Where name conflicts are counted.
    pub stats: Arc<SinkStats>,
}

/// Lines being written for one window.
struct Out {
    lines: Vec<Line>,
    /// ` <timestamp>\n`.
    stamp: String,
    /// Scratch: the line being built.
    line: String,
}

impl Out {
    /// `{base}{stat}{tags} {value} {timestamp}`; `stat` includes its dot.
    fn line(&mut self, base: &str, stat: &str, tags: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.line.clear();
        self.line.push_str(base);
        self.line.push_str(stat);
        self.line.push_str(tags);
        self.line.push(' ');
        write_value(&mut self.line, value);
        self.line.push_str(&self.stamp);
        self.lines.push(Line(self.line.as_str().into()));
    }
}

impl Encoder for Lines {
    type Item = Line;

    fn encode(&self, window: &WindowSnapshot, _: Option<&WindowSnapshot>) -> Vec<Line> {
        let mut out = Out {
            lines: Vec::with_capacity(window.series.len() * 3 + 256),
            stamp: format!(" {}\n", window.bounds.end_unix_ms / 1000),
            line: String::new(),
        };
        let mut seen = HashSet::with_capacity(window.series.len());
        let (mut base, mut tags, mut stat) = (String::new(), String::new(), String::new());
        let mut conflicts = 0u64;
        for series in &window.series {
            base.clear();
            base.push_str(&self.prefix);
            base.push_str(section(&series.rollup));
            push_path(&mut base, series.meta.name());
            tags.clear();
            if self.tags == GraphiteTags::Graphite {
                push_tags(&mut tags, series.meta.tags());
            }
            let mut identity = Xxh3::new();
            identity.update(base.as_bytes());
            identity.update(tags.as_bytes());
            let identity = identity.digest128();
            if !seen.insert(identity) {
                conflicts += 1;
                continue;
            }
            self.series(&mut out, window, series, &base, &tags, &mut stat);
        }
        if conflicts > 0 {
            self.stats
                .dropped(SinkDropReason::NameConflict)
                .add(conflicts);
            tracing::debug!(sink = %self.stats.name, conflicts, "graphite: series sharing a path skipped");
        }
        let facts = ScrapeFacts {
            conflicts: 0,
            window_series: window.series.len(),
            last_window_end_seconds: window.bounds.end_unix_ms as f64 / 1000.0,
        };
        let mut own = OwnMetrics {
            out: &mut out,
            base: String::new(),
            root: format!("{}tallyd.", self.prefix),
            tags: self.tags,
            family: None,
        };
        self.telemetry.collect(&facts, &mut own);
        out.lines
    }
}

impl Lines {
    fn series(
        &self,
        out: &mut Out,
        window: &WindowSnapshot,
        series: &SeriesRollup,
        base: &str,
        tags: &str,
        stat: &mut String,
    ) {
        let seconds = window.seconds();
        match &series.rollup {
            Rollup::Counter { sum, .. } => {
                out.line(base, ".count", tags, *sum);
                out.line(base, ".rate", tags, *sum / seconds);
            }
            Rollup::Gauge { value, .. } => out.line(base, "", tags, *value),
            Rollup::Set { unique, .. } => out.line(base, ".count", tags, *unique as f64),
            Rollup::Samples(samples) => match &samples.window {
                None => {
                    out.line(base, ".count", tags, 0.0);
                    out.line(base, ".count_ps", tags, 0.0);
                }
                Some(w) => {
                    out.line(base, ".count", tags, w.count);
                    out.line(base, ".count_ps", tags, w.count / seconds);
                    out.line(base, ".sum", tags, w.sum);
                    out.line(base, ".mean", tags, w.mean);
                    out.line(base, ".upper", tags, w.max);
                    out.line(base, ".lower", tags, w.min);
                    out.line(base, ".std", tags, w.stddev);
                    for (i, q) in window.quantiles_of(&series.meta) {
                        stat.clear();
                        stat.push('.');
                        push_percentile_stat(stat, q);
                        out.line(base, stat, tags, w.quantiles[i]);
                    }
                }
            },
        }
    }
}

/// Etsy StatsD's namespace of a series' type, with its dot.
fn section(rollup: &Rollup) -> &'static str {
    match rollup {
        Rollup::Counter { .. } => "counters.",
        Rollup::Gauge { .. } => "gauges.",
        Rollup::Set { .. } => "sets.",
        Rollup::Samples(_) => "timers.",
    }
}

/// tallyd's own metrics as lines.
struct OwnMetrics<'o> {
    out: &'o mut Out,
    base: String,
    /// `prefix.tallyd.`
    root: String,
    tags: GraphiteTags,
    family: Option<&'static Family>,
}

impl Collector for OwnMetrics<'_> {
    fn family(&mut self, family: &'static Family) {
        self.family = Some(family);
    }

    fn sample(&mut self, label_values: &[&str], value: f64) {
        self.line(label_values, "", value);
    }

    /// A histogram as its count and sum (`.count`, `.sum`); its buckets stay
    /// on `/metrics`.
    fn histogram(&mut self, label_values: &[&str], histogram: &HistogramSnapshot) {
        self.line(label_values, ".count", histogram.count as f64);
        self.line(label_values, ".sum", histogram.sum);
    }
}

impl OwnMetrics<'_> {
    /// One line of the current family: its name, labels as tags or path
    /// components, then `suffix`.
    fn line(&mut self, label_values: &[&str], suffix: &str, value: f64) {
        let Some(family) = self.family else { return };
        self.base.clear();
        self.base.push_str(&self.root);
        let name = family.sample_name();
        self.base
            .push_str(name.strip_prefix("tallyd_").unwrap_or(&name));
        let mut tags = String::new();
        match self.tags {
            GraphiteTags::Graphite => {
                let mut pairs: Vec<(&str, &str)> = family
                    .labels
                    .iter()
                    .zip(label_values)
                    .map(|(k, v)| (*k, *v))
                    .collect();
                pairs.sort();
                push_tags(&mut tags, pairs);
            }
            GraphiteTags::None => {
                for value in label_values {
                    self.base.push('.');
                    push_path(&mut self.base, value);
                }
            }
        }
        self.base.push_str(suffix);
        let base = std::mem::take(&mut self.base);
        self.out.line(&base, "", &tags, value);
        self.base = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{MetricType, Tags};
    use crate::series::SeriesMeta;
    use crate::store::{SampleRollup, SamplesRollup, WindowBounds};

    fn window() -> WindowSnapshot {
        let meta = |kind, name, tags| Arc::new(SeriesMeta::new(kind, name, Tags::new(tags)));
        let timer = SamplesRollup {
            window: Some(SampleRollup {
                count: 4.0,
                sum: 10.0,
                min: 1.0,
                max: 4.0,
                mean: 2.5,
                stddev: 1.118033988749895,
                quantiles: vec![3.0, 4.0].into(),
                quantiles_from_histogram: false,
            }),
            total_count: 8.0,
            total_sum: 20.0,
            buckets: None,
            native: None,
        };
        let series = vec![
            SeriesRollup {
                meta: meta(MetricType::Counter, "api.hits", "env:prod"),
                rollup: Rollup::Counter {
                    sum: 25.0,
                    total: 125.0,
                    active: true,
                },
            },
            // Differs only by its tag: a conflict without tags.
            SeriesRollup {
                meta: meta(MetricType::Counter, "api.hits", "env:test"),
                rollup: Rollup::Counter {
                    sum: 1.0,
                    total: 1.0,
                    active: true,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Gauge, "queue depth", ""),
                rollup: Rollup::Gauge {
                    value: -3.25,
                    active: false,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Set, "users", ""),
                rollup: Rollup::Set {
                    unique: 7,
                    active: true,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Timer, "api.latency", "route:/x"),
                rollup: Rollup::Samples(Box::new(timer.clone())),
            },
            SeriesRollup {
                meta: meta(MetricType::Distribution, "idle", ""),
                rollup: Rollup::Samples(Box::new(SamplesRollup {
                    window: None,
                    ..timer
                })),
            },
        ];
        WindowSnapshot {
            bounds: WindowBounds {
                start_unix_ms: 1_795_263_410_000,
                end_unix_ms: 1_795_263_420_000,
            },
            quantiles: Arc::from([0.9, 0.999]),
            default_quantiles: Arc::from([0.9, 0.999]),
            series,
        }
    }

    fn lines(tags: GraphiteTags) -> (Vec<String>, Arc<SinkStats>) {
        let stats = Arc::new(SinkStats::new("test".into()));
        let encoder = Lines {
            prefix: "stats.".into(),
            tags,
            telemetry: Arc::new(Telemetry::new(1)),
            stats: stats.clone(),
        };
        let lines = encoder
            .encode(&window(), None)
            .into_iter()
            .map(|line| line.0.into_string())
            .collect();
        (lines, stats)
    }

    #[test]
    fn rollups_get_etsy_statsd_names_and_tags() {
        let (lines, stats) = lines(GraphiteTags::Graphite);
        let t = " 1795263420\n";
        let user: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("stats.tallyd."))
            .collect();
        let expected: Vec<String> = [
            "stats.counters.api.hits.count;env=prod 25",
            "stats.counters.api.hits.rate;env=prod 2.5",
            "stats.counters.api.hits.count;env=test 1",
            "stats.counters.api.hits.rate;env=test 0.1",
            "stats.gauges.queue_depth -3.25",
            "stats.sets.users.count 7",
            "stats.timers.api.latency.count;route=/x 4",
            "stats.timers.api.latency.count_ps;route=/x 0.4",
            "stats.timers.api.latency.sum;route=/x 10",
            "stats.timers.api.latency.mean;route=/x 2.5",
            "stats.timers.api.latency.upper;route=/x 4",
            "stats.timers.api.latency.lower;route=/x 1",
            "stats.timers.api.latency.std;route=/x 1.118033988749895",
            "stats.timers.api.latency.upper_90;route=/x 3",
            "stats.timers.api.latency.upper_99_9;route=/x 4",
            "stats.timers.idle.count 0",
            "stats.timers.idle.count_ps 0",
        ]
        .iter()
        .map(|l| format!("{l}{t}"))
        .collect();
        assert_eq!(user, expected);
        assert_eq!(stats.dropped(SinkDropReason::NameConflict).get(), 0);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("stats.tallyd.build_info;version=")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| l.ends_with(t)));
    }

    #[test]
    fn without_tags_series_sharing_a_path_are_counted_not_sent() {
        let (lines, stats) = lines(GraphiteTags::None);
        let hits: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("stats.counters.api.hits"))
            .collect();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits[0].starts_with("stats.counters.api.hits.count 25 "));
        assert_eq!(stats.dropped(SinkDropReason::NameConflict).get(), 1);
        assert!(lines.iter().all(|l| !l.contains(';')));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("stats.tallyd.build_info.")),
            "{lines:?}"
        );
    }
}
