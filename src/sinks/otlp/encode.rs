//! Closed windows as OTLP data points, and chunks of them as the bytes of an
//! `ExportMetricsServiceRequest`.
//!
//! - counters: monotonic Sums (the window's sum as a delta, the total since
//!   the series appeared as a cumulative);
//! - gauges and set counts: Gauges;
//! - timers, histograms, distributions: ExponentialHistograms from the native
//!   histograms when those are computed (bucket `k` of schema `s` is OTLP
//!   scale `s`, index `k - 1`), else explicit-bucket Histograms (the classic
//!   buckets a histogram rule gives, or one bucket holding everything), with
//!   count and sum, and min and max for a delta.
//!
//! OTLP counts are integers: a count that sample rates made fractional is
//! rounded. A cumulative point starts at the start of the window its series
//! first appeared in (or when the sink started, if later); a delta point spans
//! its window. Deltas of buckets are the cumulative
//! buckets less those of the window before, kept per series.
//!
//! Each point is encoded with prost when its window closes and kept as bytes,
//! so the queue holds what will be sent; a chunk only wraps them in their
//! `Metric`, `ScopeMetrics`, `ResourceMetrics` and request (consecutive
//! points of one metric share one `Metric`). A test decodes the result with
//! prost.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    exponential_histogram_data_point::Buckets, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use crate::config::OtlpTemporality;
use crate::series::SeriesMeta;
use crate::sinks::delivery::{Encoder, Item};
use crate::sinks::queue::Weighed;
use crate::store::{NativeHistogram, Rollup, SamplesRollup, SeriesRollup, WindowSnapshot};
use crate::telemetry::unix_seconds;

/// Which `Metric.data` a point belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// `Gauge`.
    Gauge,
    /// A monotonic `Sum`.
    Sum,
    /// An explicit-bucket `Histogram`.
    Histogram,
    /// An `ExponentialHistogram`.
    Exponential,
}

impl DataKind {
    /// The field of `Metric` that holds it.
    const fn field(self) -> u32 {
        match self {
            DataKind::Gauge => 5,
            DataKind::Sum => 7,
            DataKind::Histogram => 9,
            DataKind::Exponential => 10,
        }
    }
}

/// A metric's name and kind, shared by its points.
#[derive(Debug, PartialEq, Eq)]
pub struct MetricHead {
    /// The name, as received.
    pub name: Box<str>,
    /// Where its points go.
    pub kind: DataKind,
}

/// One encoded data point of one metric.
#[derive(Debug, Clone)]
pub struct OtlpPoint {
    /// Its metric.
    pub metric: Arc<MetricHead>,
    /// The encoded `NumberDataPoint`, `HistogramDataPoint` or
    /// `ExponentialHistogramDataPoint`.
    pub bytes: Box<[u8]>,
}

impl Weighed for OtlpPoint {
    fn bytes(&self) -> usize {
        self.bytes.len() + std::mem::size_of::<OtlpPoint>()
    }
}

impl Item for OtlpPoint {
    fn is_histogram(&self) -> bool {
        self.metric.kind == DataKind::Exponential
    }
}

/// What the encoder remembers of a series from one window to the next.
struct SeriesState {
    /// Keeps the series' identity alive, so its address stays its own; when
    /// this is the last reference the series is gone.
    meta: Arc<SeriesMeta>,
    start_unix_nanos: u64,
    classic: Option<Box<[f64]>>,
    native: Option<Arc<NativeHistogram>>,
}

/// The sink's [`Encoder`].
pub struct Points {
    /// Cumulative or delta.
    pub temporality: OtlpTemporality,
    /// By the address of each live series' `SeriesMeta`.
    state: RefCell<HashMap<usize, SeriesState>>,
    /// When the sink started, in unix nanoseconds: no series counted
    /// anything before.
    started_unix_nanos: u64,
}

impl Points {
    /// An encoder with no series seen yet.
    pub fn new(temporality: OtlpTemporality) -> Self {
        Self::started_at(temporality, (unix_seconds() * 1e9) as u64)
    }

    /// An encoder for a sink that started at `started_unix_nanos`.
    pub fn started_at(temporality: OtlpTemporality, started_unix_nanos: u64) -> Self {
        Points {
            temporality,
            state: RefCell::new(HashMap::new()),
            started_unix_nanos,
        }
    }
}

const NANOS_PER_MS: u64 = 1_000_000;

impl Encoder for Points {
    type Item = OtlpPoint;

    fn encode(&self, window: &WindowSnapshot, _: Option<&WindowSnapshot>) -> Vec<OtlpPoint> {
        let delta = self.temporality == OtlpTemporality::Delta;
        let start = window.bounds.start_unix_ms * NANOS_PER_MS;
        let end = window.bounds.end_unix_ms * NANOS_PER_MS;
        let mut state = self.state.borrow_mut();
        let mut points = Vec::with_capacity(window.series.len());
        let mut head: Option<Arc<MetricHead>> = None;
        for series in &window.series {
            let key = Arc::as_ptr(&series.meta) as usize;
            let before = state.get(&key);
            // A new series began in this window, and not before the sink
            // started: a receiver may count a cumulative stream's first point
            // in full only when it began after the receiver did.
            let first = before.map_or_else(
                || start.max(self.started_unix_nanos).min(end),
                |s| s.start_unix_nanos,
            );
            let at = Span {
                attributes: attributes(&series.meta),
                start: if delta { start } else { first },
                end,
            };
            let (kind, bytes) = point(series, &at, delta, before);
            let same = head
                .as_ref()
                .is_some_and(|h| h.kind == kind && h.name.as_ref() == series.meta.name());
            if !same {
                head = Some(Arc::new(MetricHead {
                    name: series.meta.name().into(),
                    kind,
                }));
            }
            let metric = head.clone().expect("set above");
            points.push(OtlpPoint {
                metric,
                bytes: bytes.into_boxed_slice(),
            });
            let samples = match &series.rollup {
                Rollup::Samples(s) if delta => Some(s),
                _ => None,
            };
            state.insert(
                key,
                SeriesState {
                    meta: series.meta.clone(),
                    start_unix_nanos: first,
                    classic: samples.and_then(|s| s.buckets.as_ref().map(|b| b.counts.clone())),
                    native: samples.and_then(|s| s.native.clone()),
                },
            );
        }
        // A series missing from this window (its shard skipped it) keeps its
        // state; one that nothing else holds any more (its shard dropped it and
        // no retained window has it) is gone for good.
        state.retain(|_, s| Arc::strong_count(&s.meta) > 1);
        points
    }
}

/// The attributes and times of one point.
struct Span {
    attributes: Vec<KeyValue>,
    start: u64,
    end: u64,
}

/// A series' tags as attributes: one key's values joined with `,`, a bare
/// tag with an empty value.
fn attributes(meta: &SeriesMeta) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = Vec::new();
    for (key, value) in meta.tags() {
        if let Some(last) = out.last_mut().filter(|kv| kv.key == key) {
            if let Some(AnyValue {
                value: Some(any_value::Value::StringValue(joined)),
            }) = &mut last.value
            {
                joined.push(',');
                joined.push_str(value);
            }
            continue;
        }
        out.push(string_attribute(key, value));
    }
    out
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn point(
    series: &SeriesRollup,
    at: &Span,
    delta: bool,
    before: Option<&SeriesState>,
) -> (DataKind, Vec<u8>) {
    let number = |value: f64, start: u64| NumberDataPoint {
        attributes: at.attributes.clone(),
        start_time_unix_nano: start,
        time_unix_nano: at.end,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    };
    match &series.rollup {
        Rollup::Counter { sum, total, .. } => {
            let value = if delta { *sum } else { *total };
            (DataKind::Sum, number(value, at.start).encode_to_vec())
        }
        Rollup::Gauge { value, .. } => (DataKind::Gauge, number(*value, 0).encode_to_vec()),
        Rollup::Set { unique, .. } => (DataKind::Gauge, number(*unique as f64, 0).encode_to_vec()),
        Rollup::Samples(samples) => match &samples.native {
            Some(native) => (
                DataKind::Exponential,
                exponential(samples, native, at, delta, before).encode_to_vec(),
            ),
            None => (
                DataKind::Histogram,
                histogram(samples, at, delta, before).encode_to_vec(),
            ),
        },
    }
}

/// An integral OTLP count.
fn whole(count: f64) -> u64 {
    count.max(0.0).round() as u64
}

fn histogram(
    samples: &SamplesRollup,
    at: &Span,
    delta: bool,
    before: Option<&SeriesState>,
) -> HistogramDataPoint {
    let (count, sum) = match (&samples.window, delta) {
        (_, false) => (samples.total_count, samples.total_sum),
        (Some(w), true) => (w.count, w.sum),
        (None, true) => (0.0, 0.0),
    };
    // Cumulative counts at or below each bound, less those of the window
    // before for a delta.
    let (bounds, at_or_below): (Vec<f64>, Vec<f64>) = match &samples.buckets {
        Some(buckets) => {
            let earlier = before
                .filter(|_| delta)
                .and_then(|b| b.classic.as_deref())
                .filter(|c| c.len() == buckets.counts.len());
            let counts = buckets
                .counts
                .iter()
                .enumerate()
                .map(|(i, &c)| c - earlier.map_or(0.0, |e| e[i]))
                .collect();
            (buckets.bounds.to_vec(), counts)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut bucket_counts = Vec::with_capacity(bounds.len() + 1);
    let mut below = 0.0;
    for &c in &at_or_below {
        bucket_counts.push(whole(c - below));
        below = c;
    }
    bucket_counts.push(whole(count - below));
    let window = samples.window.as_ref().filter(|_| delta);
    HistogramDataPoint {
        attributes: at.attributes.clone(),
        start_time_unix_nano: at.start,
        time_unix_nano: at.end,
        count: bucket_counts.iter().sum(),
        sum: Some(sum),
        bucket_counts,
        explicit_bounds: bounds,
        min: window.map(|w| w.min),
        max: window.map(|w| w.max),
        ..HistogramDataPoint::default()
    }
}

fn exponential(
    samples: &SamplesRollup,
    native: &NativeHistogram,
    at: &Span,
    delta: bool,
    before: Option<&SeriesState>,
) -> ExponentialHistogramDataPoint {
    let added;
    let histogram = if delta {
        added = match before.and_then(|b| b.native.as_deref()) {
            Some(earlier) => native.since(earlier).unwrap_or_else(|| native.clone()),
            None => native.clone(),
        };
        &added
    } else {
        native
    };
    let positive = dense(&histogram.positive);
    let negative = dense(&histogram.negative);
    let zero_count = whole(histogram.zero_count);
    let count = zero_count
        + positive.bucket_counts.iter().sum::<u64>()
        + negative.bucket_counts.iter().sum::<u64>();
    let window = samples.window.as_ref().filter(|_| delta);
    ExponentialHistogramDataPoint {
        attributes: at.attributes.clone(),
        start_time_unix_nano: at.start,
        time_unix_nano: at.end,
        count,
        sum: Some(window.map_or(histogram.sum, |w| w.sum)),
        scale: i32::from(histogram.schema),
        zero_count,
        positive: Some(positive),
        negative: Some(negative),
        min: window.map(|w| w.min),
        max: window.map(|w| w.max),
        zero_threshold: histogram.zero_threshold,
        ..ExponentialHistogramDataPoint::default()
    }
}

/// Sparse `(key, count)` buckets as OTLP's dense ones: Prometheus' bucket
/// `k` covers `(base^(k-1), base^k]`, OTLP's index `i` covers
/// `(base^i, base^(i+1)]`, so index = key - 1.
fn dense(buckets: &[(i32, f64)]) -> Buckets {
    let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else {
        return Buckets::default();
    };
    let mut counts = vec![0u64; (last - first + 1) as usize];
    for &(key, count) in buckets {
        counts[(key - first) as usize] = whole(count);
    }
    Buckets {
        offset: first - 1,
        bucket_counts: counts,
    }
}

/// What every request of a sink starts with: its resource and scope, encoded.
pub struct RequestHead {
    resource: Vec<u8>,
    scope: Vec<u8>,
    temporality: i32,
}

impl RequestHead {
    /// The head for `resource` attributes and `temporality`.
    pub fn new<'a>(
        resource: impl Iterator<Item = (&'a str, &'a str)>,
        temporality: OtlpTemporality,
    ) -> Self {
        let resource = Resource {
            attributes: resource.map(|(k, v)| string_attribute(k, v)).collect(),
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "tallyd".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        let temporality = match temporality {
            OtlpTemporality::Delta => AggregationTemporality::Delta,
            OtlpTemporality::Cumulative => AggregationTemporality::Cumulative,
        };
        RequestHead {
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
            temporality: temporality as i32,
        }
    }

    /// `chunk` as an `ExportMetricsServiceRequest`.
    pub fn request(&self, chunk: &[OtlpPoint]) -> Vec<u8> {
        let mut metrics = Vec::with_capacity(chunk.iter().map(|p| p.bytes.len() + 8).sum());
        let mut metric = Vec::new();
        let mut data = Vec::new();
        let mut rest = chunk;
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take_while(|p| Arc::ptr_eq(&p.metric, &first.metric))
                .count();
            data.clear();
            for p in &rest[..same] {
                put_bytes(&mut data, 1, &p.bytes);
            }
            match first.metric.kind {
                DataKind::Gauge => {}
                DataKind::Sum => {
                    put_varint(&mut data, 2, self.temporality as u64);
                    put_varint(&mut data, 3, 1);
                }
                DataKind::Histogram | DataKind::Exponential => {
                    put_varint(&mut data, 2, self.temporality as u64);
                }
            }
            metric.clear();
            put_bytes(&mut metric, 1, first.metric.name.as_bytes());
            put_bytes(&mut metric, first.metric.kind.field(), &data);
            put_bytes(&mut metrics, 2, &metric);
            rest = &rest[same..];
        }
        let mut scope_metrics = Vec::with_capacity(metrics.len() + self.scope.len() + 8);
        put_bytes(&mut scope_metrics, 1, &self.scope);
        scope_metrics.extend_from_slice(&metrics);
        let mut resource_metrics =
            Vec::with_capacity(scope_metrics.len() + self.resource.len() + 16);
        put_bytes(&mut resource_metrics, 1, &self.resource);
        put_bytes(&mut resource_metrics, 2, &scope_metrics);
        let mut request = Vec::with_capacity(resource_metrics.len() + 8);
        put_bytes(&mut request, 1, &resource_metrics);
        request
    }
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, field: u32, value: u64) {
    encode_key(field, WireType::Varint, out);
    encode_varint(value, out);
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    use super::*;
    use crate::codec::{MetricType, Tags};
    use crate::store::{Buckets, SampleRollup, WindowBounds};

    fn meta(kind: MetricType, name: &str, tags: &str) -> Arc<SeriesMeta> {
        Arc::new(SeriesMeta::new(kind, name, Tags::new(tags)))
    }

    fn samples(count: f64, classic: Option<&[f64]>, native: Option<NativeHistogram>) -> Rollup {
        Rollup::Samples(Box::new(SamplesRollup {
            window: Some(SampleRollup {
                count,
                sum: count * 2.0,
                min: 1.0,
                max: 3.0,
                mean: 2.0,
                stddev: 1.0,
                quantiles: Box::new([]),
                quantiles_from_histogram: false,
            }),
            total_count: count * 10.0,
            total_sum: count * 20.0,
            buckets: classic.map(|counts| Buckets {
                bounds: Arc::from([1.0, 2.0]),
                counts: counts.into(),
            }),
            native: native.map(Arc::new),
        }))
    }

    /// A window ending at `end_s` seconds of the given series' rollups.
    fn window(end_s: u64, series: &[(Arc<SeriesMeta>, Rollup)]) -> WindowSnapshot {
        WindowSnapshot {
            bounds: WindowBounds {
                start_unix_ms: (end_s - 10) * 1000,
                end_unix_ms: end_s * 1000,
            },
            quantiles: Arc::from([]),
            default_quantiles: Arc::from([]),
            series: series
                .iter()
                .map(|(meta, rollup)| SeriesRollup {
                    meta: meta.clone(),
                    rollup: rollup.clone(),
                })
                .collect(),
        }
    }

    fn decode(points: &[OtlpPoint], temporality: OtlpTemporality) -> ExportMetricsServiceRequest {
        let head = RequestHead::new([("service.name", "tallyd")].into_iter(), temporality);
        ExportMetricsServiceRequest::decode(&head.request(points)[..]).unwrap()
    }

    fn native(positive: Vec<(i32, f64)>, zero: f64) -> NativeHistogram {
        let count = zero + positive.iter().map(|&(_, c)| c).sum::<f64>();
        NativeHistogram {
            positive,
            zero_count: zero,
            count,
            sum: count,
            ..NativeHistogram::new(3, 0.0)
        }
    }

    #[test]
    fn a_window_decodes_as_the_metrics_it_holds() {
        let hits = meta(MetricType::Counter, "api.hits", "env:prod,flag");
        let hits_b = meta(MetricType::Counter, "api.hits", "env:test");
        let queue = meta(MetricType::Gauge, "queue", "");
        let users = meta(MetricType::Set, "users", "");
        let latency = meta(MetricType::Timer, "latency", "");
        let sizes = meta(MetricType::Histogram, "sizes", "");
        let bytes = meta(MetricType::Distribution, "bytes", "");
        let series = [
            (
                hits.clone(),
                Rollup::Counter {
                    sum: 5.0,
                    total: 50.0,
                    active: true,
                },
            ),
            (
                hits_b,
                Rollup::Counter {
                    sum: 1.0,
                    total: 1.0,
                    active: true,
                },
            ),
            (
                queue,
                Rollup::Gauge {
                    value: -2.5,
                    active: true,
                },
            ),
            (
                users,
                Rollup::Set {
                    unique: 3,
                    active: true,
                },
            ),
            (latency, samples(4.0, None, None)),
            (sizes, samples(4.0, Some(&[10.0, 30.0]), None)),
            (
                bytes,
                samples(4.0, None, Some(native(vec![(1, 3.0), (4, 36.0)], 1.0))),
            ),
        ];
        let encoder = Points::started_at(OtlpTemporality::Cumulative, 0);
        let points = encoder.encode(&window(1000, &series), None);
        assert_eq!(points.len(), 7);
        let request = decode(&points, OtlpTemporality::Cumulative);
        let resource = &request.resource_metrics[0];
        assert_eq!(
            resource.resource.as_ref().unwrap().attributes[0].key,
            "service.name"
        );
        let scope = &resource.scope_metrics[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "tallyd");
        let metrics = &scope.metrics;
        // The two api.hits series share one Metric.
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["api.hits", "queue", "users", "latency", "sizes", "bytes"]
        );
        let Some(Data::Sum(sum)) = &metrics[0].data else {
            panic!()
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(sum.data_points.len(), 2);
        let p = &sum.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsDouble(50.0)));
        assert_eq!(p.start_time_unix_nano, 990 * 1_000_000_000);
        assert_eq!(p.time_unix_nano, 1000 * 1_000_000_000);
        let attrs: Vec<(&str, &AnyValue)> = p
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_ref().unwrap()))
            .collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].0, "env");
        assert_eq!(attrs[1].0, "flag");
        let Some(Data::Gauge(gauge)) = &metrics[1].data else {
            panic!()
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(-2.5))
        );
        let Some(Data::Gauge(set)) = &metrics[2].data else {
            panic!()
        };
        assert_eq!(
            set.data_points[0].value,
            Some(number_data_point::Value::AsDouble(3.0))
        );
        let Some(Data::Histogram(latency)) = &metrics[3].data else {
            panic!()
        };
        let p = &latency.data_points[0];
        assert_eq!((p.count, p.sum, p.min), (40, Some(80.0), None));
        assert_eq!(
            (p.bucket_counts.clone(), p.explicit_bounds.clone()),
            (vec![40], vec![])
        );
        let Some(Data::Histogram(sizes)) = &metrics[4].data else {
            panic!()
        };
        let p = &sizes.data_points[0];
        assert_eq!(p.explicit_bounds, [1.0, 2.0]);
        assert_eq!(p.bucket_counts, [10, 20, 10]);
        let Some(Data::ExponentialHistogram(bytes)) = &metrics[5].data else {
            panic!()
        };
        let p = &bytes.data_points[0];
        assert_eq!((p.scale, p.zero_count, p.count), (3, 1, 40));
        let positive = p.positive.as_ref().unwrap();
        assert_eq!(positive.offset, 0);
        assert_eq!(positive.bucket_counts, [3, 0, 0, 36]);
        assert!(points[6].is_histogram() && !points[5].is_histogram());
        // A series new to a sink that started within its window starts then.
        let started = 995 * 1_000_000_000;
        let encoder = Points::started_at(OtlpTemporality::Cumulative, started);
        let points = encoder.encode(&window(1000, &series), None);
        let request = decode(&points, OtlpTemporality::Cumulative);
        let Some(Data::Sum(sum)) = &request.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!()
        };
        assert_eq!(sum.data_points[0].start_time_unix_nano, started);
    }

    #[test]
    fn deltas_are_each_windows_own_values() {
        let hits = meta(MetricType::Counter, "hits", "");
        let sizes = meta(MetricType::Histogram, "sizes", "");
        let bytes = meta(MetricType::Distribution, "bytes", "");
        let encoder = Points::started_at(OtlpTemporality::Delta, 0);
        let first = [
            (
                hits.clone(),
                Rollup::Counter {
                    sum: 5.0,
                    total: 5.0,
                    active: true,
                },
            ),
            (sizes.clone(), samples(4.0, Some(&[1.0, 3.0]), None)),
            (
                bytes.clone(),
                samples(4.0, None, Some(native(vec![(1, 3.0)], 1.0))),
            ),
        ];
        encoder.encode(&window(1000, &first), None);
        let second = [
            (
                hits,
                Rollup::Counter {
                    sum: 2.0,
                    total: 7.0,
                    active: true,
                },
            ),
            (sizes, samples(2.0, Some(&[2.0, 4.0]), None)),
            (
                bytes,
                samples(2.0, None, Some(native(vec![(1, 4.0), (2, 1.0)], 1.0))),
            ),
        ];
        let points = encoder.encode(&window(1010, &second), None);
        let request = decode(&points, OtlpTemporality::Delta);
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Sum(sum)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        let p = &sum.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsDouble(2.0)));
        assert_eq!(p.start_time_unix_nano, 1000 * 1_000_000_000);
        let Some(Data::Histogram(sizes)) = &metrics[1].data else {
            panic!()
        };
        let p = &sizes.data_points[0];
        // Cumulative at-or-below 2, 4 of 2 samples, less 1, 3 before.
        assert_eq!(p.bucket_counts, [1, 0, 1]);
        assert_eq!((p.count, p.min, p.max), (2, Some(1.0), Some(3.0)));
        let Some(Data::ExponentialHistogram(bytes)) = &metrics[2].data else {
            panic!()
        };
        let p = &bytes.data_points[0];
        assert_eq!((p.zero_count, p.count), (0, 2));
        let positive = p.positive.as_ref().unwrap();
        assert_eq!(
            (positive.offset, positive.bucket_counts.clone()),
            (0, vec![1, 1])
        );
    }

    #[test]
    fn a_series_missing_from_one_window_keeps_its_start_and_its_last_buckets() {
        let hits = meta(MetricType::Counter, "hits", "");
        let sizes = meta(MetricType::Histogram, "sizes", "");
        let other = meta(MetricType::Gauge, "other", "");
        let counter = |total: f64| Rollup::Counter {
            sum: 1.0,
            total,
            active: true,
        };
        let gauge = Rollup::Gauge {
            value: 1.0,
            active: true,
        };
        let first = [
            (hits.clone(), counter(5.0)),
            (sizes.clone(), samples(4.0, Some(&[1.0, 3.0]), None)),
            (other.clone(), gauge.clone()),
        ];
        // The shard holding hits and sizes skipped this window.
        let gap = [(other.clone(), gauge.clone())];
        let third = [
            (hits.clone(), counter(7.0)),
            (sizes.clone(), samples(2.0, Some(&[2.0, 4.0]), None)),
            (other.clone(), gauge),
        ];
        for temporality in [OtlpTemporality::Cumulative, OtlpTemporality::Delta] {
            let without_gap = Points::started_at(temporality, 0);
            without_gap.encode(&window(1000, &first), None);
            let expected = decode(
                &without_gap.encode(&window(1020, &third), None),
                temporality,
            );
            let with_gap = Points::started_at(temporality, 0);
            with_gap.encode(&window(1000, &first), None);
            with_gap.encode(&window(1010, &gap), None);
            let got = decode(&with_gap.encode(&window(1020, &third), None), temporality);
            assert_eq!(got, expected, "{temporality:?}");
        }
        // The cumulative stream still starts at its first window.
        let encoder = Points::started_at(OtlpTemporality::Cumulative, 0);
        encoder.encode(&window(1000, &first), None);
        encoder.encode(&window(1010, &gap), None);
        let request = decode(
            &encoder.encode(&window(1020, &third), None),
            OtlpTemporality::Cumulative,
        );
        let Some(Data::Sum(sum)) = &request.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!()
        };
        assert_eq!(sum.data_points[0].start_time_unix_nano, 990 * 1_000_000_000);
    }

    #[test]
    fn a_series_nothing_else_holds_is_forgotten() {
        let encoder = Points::started_at(OtlpTemporality::Cumulative, 0);
        let kept = meta(MetricType::Gauge, "kept", "");
        let gauge = Rollup::Gauge {
            value: 1.0,
            active: true,
        };
        encoder.encode(
            &window(
                1000,
                &[
                    (kept.clone(), gauge.clone()),
                    (meta(MetricType::Gauge, "gone", ""), gauge),
                ],
            ),
            None,
        );
        assert_eq!(encoder.state.borrow().len(), 2);
        // That window is gone: `gone` is held by nothing else, `kept` by this test.
        encoder.encode(&window(1010, &[]), None);
        let names = |e: &Points| -> Vec<String> {
            e.state
                .borrow()
                .values()
                .map(|s| s.meta.name().to_string())
                .collect()
        };
        assert_eq!(names(&encoder), ["kept"]);
        drop(kept);
        encoder.encode(&window(1020, &[]), None);
        assert!(names(&encoder).is_empty());
    }
}
