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
//!   `stddev`, `quantiles` (a map from "0.5" to value), `rate` (count per second).

use serde::Serialize;
use serde_json::{Map, Value, json};

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
        self.name.as_deref().is_none_or(|n| *meta.name == *n)
            && self.tags.iter().all(|(k, v)| meta.has_tag(k, v))
            && series.rollup.is_reported()
    }
}

#[derive(Serialize)]
struct WindowJson {
    start_unix_ms: u64,
    end_unix_ms: u64,
    series: Vec<Value>,
}

/// The JSON body answering `query` from `history`.
pub fn render(history: &History, query: &Query) -> Vec<u8> {
    let windows: Vec<WindowJson> = history
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
    serde_json::to_vec(&json!({ "windows": windows })).unwrap_or_default()
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

fn series_json(window: &WindowSnapshot, series: &SeriesRollup) -> Value {
    let meta = &series.meta;
    let tags: Vec<String> = meta
        .tags
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.to_string()
            } else {
                format!("{k}:{v}")
            }
        })
        .collect();
    let mut object = Map::new();
    object.insert("name".into(), json!(meta.name));
    object.insert("type".into(), json!(type_name(meta.kind)));
    object.insert("tags".into(), json!(tags));
    let seconds = window.seconds();
    match &series.rollup {
        Rollup::Counter { sum, total, .. } => {
            object.insert("value".into(), json!(sum));
            object.insert("rate".into(), json!(sum / seconds));
            object.insert("total".into(), json!(total));
        }
        Rollup::Gauge { value, .. } => {
            object.insert("value".into(), json!(value));
        }
        Rollup::Set { unique, .. } => {
            object.insert("unique".into(), json!(unique));
        }
        Rollup::Samples(samples) => {
            if let Some(w) = &samples.window {
                let quantiles: Map<String, Value> = window
                    .quantiles
                    .iter()
                    .zip(w.quantiles.iter())
                    .map(|(q, v)| (q.to_string(), json!(v)))
                    .collect();
                object.insert("count".into(), json!(w.count));
                object.insert("sum".into(), json!(w.sum));
                object.insert("min".into(), json!(w.min));
                object.insert("max".into(), json!(w.max));
                object.insert("mean".into(), json!(w.mean));
                object.insert("stddev".into(), json!(w.stddev));
                object.insert("quantiles".into(), Value::Object(quantiles));
                object.insert("rate".into(), json!(w.count / seconds));
            }
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

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
