//! The mapping file as written: statsd_exporter's YAML schema, read with positions.
//!
//! Every key statsd_exporter documents is known here. Those tallyd honours are
//! kept; those it cannot honour (`glob_disable_ordering: true`, a summary's
//! `max_age`, `age_buckets` and `buf_cap`) are refused while the file is read, so
//! the error names the key and its line, as every config error does. Nothing here
//! checks meaning across keys: that is `rules.rs`'s job, with the positions kept
//! in [`Spanned`] fields.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingFile {
    /// What every mapping inherits.
    pub defaults: Defaults,
    /// The rules, in file order.
    pub mappings: Vec<Spanned<RawMapping>>,
}

/// `defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// `summary` or `histogram` for timers, histograms and distributions.
    pub observer_type: Option<ObserverType>,
    /// `glob` (the default) or `regex`.
    pub match_type: Option<MatchType>,
    /// Only `false` is accepted: globs always match in file order here.
    #[serde(deserialize_with = "ordering_only")]
    pub glob_disable_ordering: bool,
    /// Idle time after which a mapped series is removed.
    pub ttl: Option<Ttl>,
    /// Quantiles of summaries.
    pub summary_options: Option<SummaryOptions>,
    /// Buckets of histograms.
    pub histogram_options: Option<HistogramOptions>,
}

/// One entry of `mappings`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// The glob or regular expression a StatsD name must match.
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    /// The Prometheus name, with `$1`/`${1}` captures.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Label names and value templates.
    #[serde(default)]
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
    /// When true, a tag the line carries wins over a mapping label of the same name.
    #[serde(default)]
    pub honor_labels: bool,
    /// `summary` or `histogram`.
    #[serde(default)]
    pub observer_type: Option<ObserverType>,
    /// `glob` or `regex`.
    #[serde(default)]
    pub match_type: Option<MatchType>,
    /// The `# HELP` text.
    #[serde(default)]
    pub help: Option<String>,
    /// `map` (the default) or `drop`.
    #[serde(default)]
    pub action: Option<Action>,
    /// Only lines of this type match.
    #[serde(default)]
    pub match_metric_type: Option<MetricTypeFilter>,
    /// Idle time after which the series is removed (`limits.series_idle_ttl` otherwise).
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// Quantiles of this summary.
    #[serde(default)]
    pub summary_options: Option<SummaryOptions>,
    /// Buckets of this histogram.
    #[serde(default)]
    pub histogram_options: Option<HistogramOptions>,
    /// Every value is multiplied by this.
    #[serde(default)]
    pub scale: Option<f64>,
}

/// How `match` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Dot-separated components, `*` standing for one whole component.
    Glob,
    /// A regular expression (RE2 syntax).
    Regex,
}

/// What a matching line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Renamed and labelled.
    Map,
    /// Dropped and counted.
    Drop,
}

/// `match_metric_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricTypeFilter {
    /// `c` lines.
    Counter,
    /// `g` lines.
    Gauge,
    /// `ms`, `h` and `d` lines.
    Observer,
}

/// `observer_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverType {
    /// Quantiles with `_sum` and `_count`.
    Summary,
    /// Cumulative buckets with `_sum` and `_count`.
    Histogram,
}

/// `summary_options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryOptions {
    /// The quantiles to expose.
    #[serde(default)]
    pub quantiles: Vec<Objective>,
    /// Refused: quantiles cover one aggregation window.
    #[serde(default, deserialize_with = "refuse_window_key")]
    pub max_age: (),
    /// Refused: quantiles cover one aggregation window.
    #[serde(default, deserialize_with = "refuse_window_key")]
    pub age_buckets: (),
    /// Refused: quantiles are exact, from every sample of the window.
    #[serde(default, deserialize_with = "refuse_buf_cap")]
    pub buf_cap: (),
}

/// One quantile of `summary_options.quantiles`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// The quantile, in [0, 1].
    pub quantile: f64,
    /// The error allowed: any is met, since quantiles are exact.
    #[serde(default)]
    pub error: Option<f64>,
}

/// `histogram_options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramOptions {
    /// Upper bounds of the classic buckets.
    #[serde(default)]
    pub buckets: Vec<f64>,
    /// Growth factor of native buckets: the native schema is the finest whose
    /// factor does not exceed it.
    #[serde(default)]
    pub native_histogram_bucket_factor: Option<f64>,
    /// Populated native buckets before the schema is lowered.
    #[serde(default)]
    pub native_histogram_max_buckets: Option<u32>,
}

/// A `ttl`: a duration, where `0s` means "inherit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(pub std::time::Duration);

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(d) = humantime::parse_duration(&text) {
            return Ok(Ttl(d));
        }
        // "0" is how statsd_exporter's examples write "no ttl of its own".
        match text.trim() {
            "0" => Ok(Ttl(std::time::Duration::ZERO)),
            _ => Err(de::Error::custom(format!(
                "{text:?} is not a duration (use e.g. 30s, 5m, 1h30m)"
            ))),
        }
    }
}

fn ordering_only<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    if bool::deserialize(d)? {
        return Err(de::Error::custom(
            "tallyd always matches globs in file order (the first match wins); remove this key",
        ));
    }
    Ok(false)
}

fn refuse_window_key<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(de::Error::custom(
        "tallyd's quantiles cover one aggregation window (window.interval), not a sliding age; remove this key",
    ))
}

fn refuse_buf_cap<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(de::Error::custom(
        "tallyd's quantiles are exact over every sample of the window, with no stream buffer; remove this key",
    ))
}
