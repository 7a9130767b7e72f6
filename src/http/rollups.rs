//! `GET /api/v1/rollups`: closed windows as JSON, filtered by name and tags.
//!
//! Query parameters: `windows=N` (the last N closed windows, newest first;
//! default 1), `name=` (exact metric name as received), `tag=k:v` (repeatable; a
//! series must carry every one; a bare `tag=k` matches a bare tag). A series is
//! listed in a window when it received data in it; gauges, which persist, are
//! always listed. Fields by type (DESIGN.md, JSON):
//!
//! - counter: `value` (sum of value/rate in the window), `rate` (per second),
//!   `total` (since the series appeared);
//! - gauge: `value`;
//! - set: `unique`;
//! - timer, histogram, distribution: `count`, `sum`, `min`, `max`, `mean`,
//!   `stddev`, `quantiles` (a map from "0.5" to value), `rate` (count per second),
//!   and `quantiles_from: "histogram"` when the quantiles are estimates.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::codec::MetricType;
use crate::store::{History, Rollup, SeriesRollup, WindowSnapshot};

/// A parsed rollups query.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    windows: usize,
    name: Option<String>,
    tags: Vec<(String, String)>,
}

/// A query parameter that cannot be used, with a message for the caller.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(String);

impl Query {
    /// Parses the query string of a request (without `?`).
    pub fn parse(query: &str) -> Result<Self, BadQuery> {
        let mut parsed = Query {
            windows: 1,
            ..Query::default()
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "windows" => {
                    parsed.windows = value.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                        BadQuery(format!("windows={value:?} is not a positive integer"))
                    })?;
                }
                "name" => parsed.name = Some(value.into_owned()),
                "tag" => {
                    let (k, v) = value.split_once(':').unwrap_or((&value, ""));
                    parsed.tags.push((k.to_owned(), v.to_owned()));
                }
                other => {
                    return Err(BadQuery(format!(
                        "unknown parameter {other:?} (use windows, name, tag)"
                    )));
                }
            }
        }
        Ok(parsed)
    }

    fn matches(&self, series: &SeriesRollup) -> bool {
        let meta = &series.meta;
        self.name.as_deref().is_none_or(|n| meta.name() == n)
            && self.tags.iter().all(|(k, v)| meta.has_tag(k, v))
            && series.rollup.is_reported()
    }
}

/// The response body. Every object's keys are written in sorted order, as the
/// API has always written them: fields are declared alphabetically.
#[derive(Serialize)]
struct RollupsJson<'a> {
    windows: Vec<WindowJson<'a>>,
}

#[derive(Serialize)]
struct WindowJson<'a> {
    end_unix_ms: u64,
    series: Vec<SeriesJson<'a>>,
    start_unix_ms: u64,
}

/// One series; which of the optional fields it has depends on its type.
#[derive(Serialize, Default)]
struct SeriesJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    name: &'a str,
    /// From the quantile as written ("0.5") to its value (null when NaN).
    #[serde(skip_serializing_if = "Option::is_none")]
    quantiles: Option<BTreeMap<String, f64>>,
    /// `"histogram"` when the quantiles are estimates from binned samples
    /// (`timer_samples: histogram`); absent when they are exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    quantiles_from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stddev: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<f64>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
}

/// The JSON body answering `query` from `history`.
pub fn render(history: &History, query: &Query) -> Vec<u8> {
    let windows: Vec<WindowJson<'_>> = history
        .iter()
        .rev()
        .take(query.windows)
        .map(|window| WindowJson {
            start_unix_ms: window.bounds.start_unix_ms,
            end_unix_ms: window.bounds.end_unix_ms,
            series: window
                .series
                .iter()
                .filter(|s| query.matches(s))
                .map(|s| series_json(window, s))
                .collect(),
        })
        .collect();
    serde_json::to_vec(&RollupsJson { windows }).unwrap_or_default()
}

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Timer => "timer",
        MetricType::Histogram => "histogram",
        MetricType::Distribution => "distribution",
        MetricType::Set => "set",
    }
}

fn series_json<'a>(window: &WindowSnapshot, series: &'a SeriesRollup) -> SeriesJson<'a> {
    let meta = &series.meta;
    let tags: Vec<String> = meta
        .tags()
        .map(|(k, v)| {
            if v.is_empty() {
                k.to_string()
            } else {
                format!("{k}:{v}")
            }
        })
        .collect();
    let common = SeriesJson {
        name: meta.name(),
        kind: type_name(meta.kind),
        tags,
        ..SeriesJson::default()
    };
    let seconds = window.seconds();
    match &series.rollup {
        Rollup::Counter { sum, total, .. } => SeriesJson {
            value: Some(*sum),
            rate: Some(sum / seconds),
            total: Some(*total),
            ..common
        },
        Rollup::Gauge { value, .. } => SeriesJson {
            value: Some(*value),
            ..common
        },
        Rollup::Set { unique, .. } => SeriesJson {
            unique: Some(*unique),
            ..common
        },
        Rollup::Samples(samples) => match &samples.window {
            Some(w) => SeriesJson {
                count: Some(w.count),
                sum: Some(w.sum),
                min: Some(w.min),
                max: Some(w.max),
                mean: Some(w.mean),
                stddev: Some(w.stddev),
                quantiles: Some(
                    window
                        .quantiles_of(&series.meta)
                        .map(|(i, q)| (q.to_string(), w.quantiles[i]))
                        .collect(),
                ),
                quantiles_from: w.quantiles_from_histogram.then_some("histogram"),
                rate: Some(w.count / seconds),
                ..common
            },
            None => common,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WindowQuantiles;

    #[test]
    fn queries_parse_windows_names_and_repeated_tags() {
        let q = Query::parse("windows=3&name=api.req&tag=env:prod&tag=canary").unwrap();
        assert_eq!(q.windows, 3);
        assert_eq!(q.name.as_deref(), Some("api.req"));
        assert_eq!(
            q.tags,
            [("env".into(), "prod".into()), ("canary".into(), "".into())]
        );
        assert_eq!(Query::parse("").unwrap().windows, 1);
    }

    /// A history of one window holding a series of every kind.
    fn one_window_of_every_kind() -> std::sync::Arc<History> {
        use std::sync::Arc;

        use crate::codec::Tags;
        use crate::series::SeriesMeta;
        use crate::store::{SampleRollup, SamplesRollup, Store, WindowBounds};

        let meta = |kind, name, tags| Arc::new(SeriesMeta::new(kind, name, Tags::new(tags)));
        let samples = |quantiles: &[f64]| SamplesRollup {
            window: Some(SampleRollup {
                count: 100.0,
                sum: 5050.0,
                min: 1.0,
                max: 100.0,
                mean: 50.5,
                stddev: 28.86607004772212,
                quantiles: quantiles.into(),
                quantiles_from_histogram: false,
            }),
            total_count: 300.0,
            total_sum: 15150.0,
            buckets: None,
            native: None,
        };
        let series = vec![
            SeriesRollup {
                meta: meta(MetricType::Timer, "api.latency", "env:prod,canary"),
                rollup: Rollup::Samples(Box::new(samples(&[50.0, 90.0, 99.0]))),
            },
            SeriesRollup {
                meta: meta(MetricType::Counter, "api.requests", "env:prod"),
                rollup: Rollup::Counter {
                    sum: 25.0,
                    total: 125.5,
                    active: true,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Gauge, "queue.depth", ""),
                rollup: Rollup::Gauge {
                    value: -3.25,
                    active: false,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Set, "users", "env:prod"),
                rollup: Rollup::Set {
                    unique: 7,
                    active: true,
                },
            },
            SeriesRollup {
                meta: meta(MetricType::Distribution, "idle", ""),
                rollup: Rollup::Samples(Box::new(SamplesRollup {
                    window: None,
                    ..samples(&[])
                })),
            },
            SeriesRollup {
                meta: meta(MetricType::Histogram, "size", ""),
                rollup: Rollup::Samples(Box::new(samples(&[f64::NAN, 7.5, 9.0]))),
            },
        ];
        let store = Store::new(1, 4);
        let bounds = WindowBounds {
            start_unix_ms: 1_795_263_410_000,
            end_unix_ms: 1_795_263_420_000,
        };
        store.publish(
            bounds,
            WindowQuantiles::same(Arc::from([0.5, 0.9, 0.99])),
            series,
        );
        store.history()
    }

    #[test]
    fn a_full_response_is_pinned() {
        let body = render(&one_window_of_every_kind(), &Query::parse("").unwrap());
        let body = String::from_utf8(body).unwrap();
        // Keys in sorted order, as the API has always written them; a quantile
        // without a value is null; a series with no data in the window is left out.
        let expected = r#"{"windows":[{"end_unix_ms":1795263420000,"series":[{"count":100.0,"max":100.0,"mean":50.5,"min":1.0,"name":"api.latency","quantiles":{"0.5":50.0,"0.9":90.0,"0.99":99.0},"rate":10.0,"stddev":28.86607004772212,"sum":5050.0,"tags":["canary","env:prod"],"type":"timer"},{"name":"api.requests","rate":2.5,"tags":["env:prod"],"total":125.5,"type":"counter","value":25.0},{"name":"queue.depth","tags":[],"type":"gauge","value":-3.25},{"count":100.0,"max":100.0,"mean":50.5,"min":1.0,"name":"size","quantiles":{"0.5":null,"0.9":7.5,"0.99":9.0},"rate":10.0,"stddev":28.86607004772212,"sum":5050.0,"tags":[],"type":"histogram"},{"name":"users","tags":["env:prod"],"type":"set","unique":7}],"start_unix_ms":1795263410000}]}"#;
        assert_eq!(body, expected);
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        assert!(
            Query::parse("windows=0")
                .unwrap_err()
                .0
                .contains("positive")
        );
        assert!(
            Query::parse("window=2")
                .unwrap_err()
                .0
                .contains("unknown parameter")
        );
    }
}
