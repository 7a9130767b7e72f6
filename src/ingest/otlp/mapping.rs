//! OTLP metrics in tallyd's model (the README's "OTLP mapping" states it for
//! operators).
//!
//! - Resource and data-point attributes become tags `key:value` (commas in them
//!   become `_`, since a tag cannot hold one); the metric name is kept as is.
//! - Monotonic sums become counters: a delta point adds its value, a cumulative
//!   point adds its increase ([`Cumulative`]).
//! - Non-monotonic sums and gauges become gauges holding the last value.
//! - Histograms (and exponential histograms, whose buckets are turned into
//!   explicit bounds) become counters `<name>.count`, `<name>.sum` and
//!   `<name>.bucket` with a tag `le:<bound>` (values at or below the bound, as
//!   Prometheus counts them), gauges `<name>.min` and `<name>.max` for delta
//!   points, and gauges `<name>.quantile` with a tag `q:<quantile>` for each
//!   configured quantile. No raw values reach tallyd, so those quantiles are
//!   *estimated* from the point's buckets by linear interpolation, as
//!   Prometheus' `histogram_quantile` does.
//! - Summaries become counters `<name>.count` and `<name>.sum` and gauges
//!   `<name>.quantile` with a tag `q:<quantile>`, holding the client's values.
//!
//! A point that cannot be mapped (no value, a value that is not finite, a
//! histogram whose bucket counts do not match its bounds) is refused with a
//! reason and reported back as a rejected data point.

use std::time::Instant;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    SummaryDataPoint, metric::Data, number_data_point,
};
use xxhash_rust::xxh3::xxh3_128;

use super::cumulative::Cumulative;
use crate::codec::{MetricType, RejectReason};
use crate::ingest::call::Call;

/// Maps one export request into a call.
pub struct Mapper<'a> {
    /// Where routed values go.
    pub call: &'a mut Call,
    /// Totals of cumulative streams.
    pub streams: &'a mut Cumulative,
    /// Quantiles estimated from histogram buckets.
    pub quantiles: &'a [f64],
    /// When the request arrived.
    pub now: Instant,
}

/// The temporality of a sum or histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Temporality {
    Delta,
    Cumulative,
}

impl Temporality {
    fn of(value: i32) -> Option<Temporality> {
        match AggregationTemporality::try_from(value) {
            Ok(AggregationTemporality::Delta) => Some(Temporality::Delta),
            Ok(AggregationTemporality::Cumulative) => Some(Temporality::Cumulative),
            _ => None,
        }
    }
}

/// The identity and timing of one data point.
struct Point<'p> {
    name: &'p str,
    tags: Vec<String>,
    start: u64,
    temporality: Temporality,
}

impl Mapper<'_> {
    /// Maps every data point of `request`.
    pub fn export(&mut self, request: &ExportMetricsServiceRequest) {
        for resource_metrics in &request.resource_metrics {
            let resource_tags: Vec<String> = resource_metrics
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .map(tag)
                .collect();
            for metric in resource_metrics
                .scope_metrics
                .iter()
                .flat_map(|s| s.metrics.iter())
            {
                self.metric(&metric.name, &resource_tags, metric.data.as_ref());
            }
        }
        self.streams.sweep(self.now);
    }

    fn metric(&mut self, name: &str, resource_tags: &[String], data: Option<&Data>) {
        let point = |attributes: &[KeyValue], start, temporality| Point {
            name,
            tags: resource_tags
                .iter()
                .cloned()
                .chain(attributes.iter().map(tag))
                .collect(),
            start,
            temporality,
        };
        match data {
            None => {}
            Some(Data::Gauge(gauge)) => {
                for p in &gauge.data_points {
                    self.gauge_point(&point(&p.attributes, 0, Temporality::Delta), p);
                }
            }
            Some(Data::Sum(sum)) => {
                let temporality = Temporality::of(sum.aggregation_temporality);
                for p in &sum.data_points {
                    match temporality {
                        Some(t) if sum.is_monotonic => {
                            self.counter_point(&point(&p.attributes, p.start_time_unix_nano, t), p)
                        }
                        Some(t) => self.gauge_point(&point(&p.attributes, 0, t), p),
                        None => self.refuse(RejectReason::Malformed),
                    }
                }
            }
            Some(Data::Histogram(histogram)) => {
                let temporality = Temporality::of(histogram.aggregation_temporality);
                for p in &histogram.data_points {
                    match temporality {
                        Some(t) => self
                            .histogram_point(&point(&p.attributes, p.start_time_unix_nano, t), p),
                        None => self.refuse(RejectReason::Malformed),
                    }
                }
            }
            Some(Data::ExponentialHistogram(histogram)) => {
                let temporality = Temporality::of(histogram.aggregation_temporality);
                for p in &histogram.data_points {
                    match temporality {
                        Some(t) => self.histogram_point(
                            &point(&p.attributes, p.start_time_unix_nano, t),
                            &explicit_buckets(p),
                        ),
                        None => self.refuse(RejectReason::Malformed),
                    }
                }
            }
            Some(Data::Summary(summary)) => {
                for p in &summary.data_points {
                    let at = point(
                        &p.attributes,
                        p.start_time_unix_nano,
                        Temporality::Cumulative,
                    );
                    self.summary_point(&at, p);
                }
            }
        }
    }

    fn refuse(&mut self, reason: RejectReason) {
        self.call.count_events(1);
        self.call.reject(reason, 1);
    }

    fn gauge_point(&mut self, point: &Point<'_>, p: &NumberDataPoint) {
        self.call.count_events(1);
        let Some(value) = number(p) else {
            return self.call.reject(RejectReason::BadValue, 1);
        };
        if let Err(reason) = self.route(point.name, &point.tags, MetricType::Gauge, value) {
            self.call.reject(reason, 1);
        }
    }

    fn counter_point(&mut self, point: &Point<'_>, p: &NumberDataPoint) {
        self.call.count_events(1);
        match number(p) {
            Some(value) if value >= 0.0 => {
                if let Err(reason) = self.counter(point, point.name, &[], value) {
                    self.call.reject(reason, 1);
                }
            }
            _ => self.call.reject(RejectReason::BadValue, 1),
        }
    }

    fn histogram_point(&mut self, point: &Point<'_>, p: &HistogramDataPoint) {
        self.call.count_events(1);
        if let Err(reason) = self.histogram(point, p) {
            self.call.reject(reason, 1);
        }
    }

    fn histogram(&mut self, point: &Point<'_>, p: &HistogramDataPoint) -> Result<(), RejectReason> {
        let bounds = &p.explicit_bounds;
        if p.bucket_counts.len() != bounds.len() + 1
            || !bounds.windows(2).all(|w| w[0] < w[1])
            || !bounds.iter().all(|b| b.is_finite())
        {
            return Err(RejectReason::Malformed);
        }
        let name = point.name;
        let count = format!("{name}.count");
        let bucket = format!("{name}.bucket");
        self.counter(point, &count, &[], p.count as f64)?;
        if let Some(sum) = p.sum.filter(|s| s.is_finite()) {
            self.counter(point, &format!("{name}.sum"), &[], sum)?;
        }
        if point.temporality == Temporality::Delta {
            for (suffix, value) in [("min", p.min), ("max", p.max)] {
                if let Some(value) = value.filter(|v| v.is_finite()) {
                    self.route(
                        &format!("{name}.{suffix}"),
                        &point.tags,
                        MetricType::Gauge,
                        value,
                    )?;
                }
            }
        }
        // Counts at or below each bound, then in all (+Inf), as Prometheus has them.
        let mut at_or_below = Vec::with_capacity(p.bucket_counts.len());
        let mut running = 0u64;
        for (i, n) in p.bucket_counts.iter().enumerate() {
            running += n;
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let increase = self.counter(point, &bucket, &[format!("le:{le}")], running as f64)?;
            at_or_below.push(increase);
        }
        // Quantiles from this point's own increases; a baseline point has none.
        let Some(at_or_below) = at_or_below.into_iter().collect::<Option<Vec<f64>>>() else {
            return Ok(());
        };
        for &q in self.quantiles {
            if let Some(estimate) = estimate_quantile(q, bounds, &at_or_below) {
                let q_tag = format!("q:{q}");
                let tags: Vec<String> = point.tags.iter().cloned().chain([q_tag]).collect();
                self.route(
                    &format!("{name}.quantile"),
                    &tags,
                    MetricType::Gauge,
                    estimate,
                )?;
            }
        }
        Ok(())
    }

    fn summary_point(&mut self, point: &Point<'_>, p: &SummaryDataPoint) {
        self.call.count_events(1);
        let name = point.name;
        let result = (|| {
            self.counter(point, &format!("{name}.count"), &[], p.count as f64)?;
            if p.sum.is_finite() {
                self.counter(point, &format!("{name}.sum"), &[], p.sum)?;
            }
            for quantile in &p.quantile_values {
                if !quantile.value.is_finite() {
                    continue;
                }
                let tags: Vec<String> = point
                    .tags
                    .iter()
                    .cloned()
                    .chain([format!("q:{}", quantile.quantile)])
                    .collect();
                self.route(
                    &format!("{name}.quantile"),
                    &tags,
                    MetricType::Gauge,
                    quantile.value,
                )?;
            }
            Ok(())
        })();
        if let Err(reason) = result {
            self.call.reject(reason, 1);
        }
    }

    /// Routes the increase `total` makes on the counter `name` (tags of the point
    /// plus `extra`); returns the increase, `None` for a baseline point.
    fn counter(
        &mut self,
        point: &Point<'_>,
        name: &str,
        extra: &[String],
        total: f64,
    ) -> Result<Option<f64>, RejectReason> {
        let tags: Vec<String> = point.tags.iter().chain(extra).cloned().collect();
        let increase = match point.temporality {
            Temporality::Delta => Some(total),
            Temporality::Cumulative => {
                let key = stream_key(name, &tags);
                self.streams.increase(key, point.start, total, self.now)
            }
        };
        if let Some(increase) = increase {
            self.route(name, &tags, MetricType::Counter, increase)?;
        }
        Ok(increase)
    }

    fn route(
        &mut self,
        name: &str,
        tags: &[String],
        kind: MetricType,
        value: f64,
    ) -> Result<(), RejectReason> {
        if !value.is_finite() {
            return Err(RejectReason::BadValue);
        }
        self.call
            .route_parts(name, tags.iter().map(String::as_str), kind, &[value])
    }
}

/// The numeric value of a point, if it has a finite one.
fn number(p: &NumberDataPoint) -> Option<f64> {
    match p.value? {
        number_data_point::Value::AsDouble(v) => Some(v).filter(|v| v.is_finite()),
        number_data_point::Value::AsInt(v) => Some(v as f64),
    }
}

/// `key:value` for an attribute, with commas (which separate tags) as `_`.
fn tag(attribute: &KeyValue) -> String {
    let value = attribute
        .value
        .as_ref()
        .map(any_value_text)
        .unwrap_or_default();
    let text = if value.is_empty() {
        attribute.key.clone()
    } else {
        format!("{}:{value}", attribute.key)
    };
    text.replace(',', "_")
}

fn any_value_text(value: &AnyValue) -> String {
    match &value.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(array)) => array
            .values
            .iter()
            .map(any_value_text)
            .collect::<Vec<_>>()
            .join(";"),
        Some(any_value::Value::KvlistValue(list)) => list
            .values
            .iter()
            .map(|kv| {
                let v = kv.value.as_ref().map(any_value_text).unwrap_or_default();
                format!("{}={v}", kv.key)
            })
            .collect::<Vec<_>>()
            .join(";"),
        Some(any_value::Value::BytesValue(bytes)) => {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        // An index into a string table only profiles carry; metrics never use it.
        Some(any_value::Value::StringValueStrindex(index)) => index.to_string(),
    }
}

/// The identity of a cumulative stream: the series name and its tags, in any order.
fn stream_key(name: &str, tags: &[String]) -> u128 {
    let mut sorted: Vec<&str> = tags.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut text = String::with_capacity(name.len() + 64);
    text.push_str(name);
    for tag in sorted {
        text.push('\n');
        text.push_str(tag);
    }
    xxh3_128(text.as_bytes())
}

/// The `q` quantile of a histogram given as counts at or below each bound (the
/// last entry is the total), interpolating linearly inside the bucket that holds
/// the rank, as Prometheus' `histogram_quantile` does. The lowest bucket starts at
/// 0 when its bound is positive; a rank in the `+Inf` bucket gives the highest bound.
pub fn estimate_quantile(q: f64, bounds: &[f64], at_or_below: &[f64]) -> Option<f64> {
    let total = *at_or_below.last()?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let bucket = at_or_below.iter().position(|&n| n >= rank)?;
    if bucket == bounds.len() {
        return bounds.last().copied();
    }
    let upper = bounds[bucket];
    let (lower, below) = match bucket {
        0 if upper > 0.0 => (0.0, 0.0),
        0 => return Some(upper),
        _ => (bounds[bucket - 1], at_or_below[bucket - 1]),
    };
    let in_bucket = at_or_below[bucket] - below;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / in_bucket)
}

/// An exponential histogram point as an explicit-bounds one. Bucket `i` of the
/// positive range covers (base^i, base^(i+1)] with base = 2^(2^-scale); the
/// negative range mirrors it, and the zero bucket ends at the zero threshold.
fn explicit_buckets(p: &ExponentialHistogramDataPoint) -> HistogramDataPoint {
    let scale_factor = (-f64::from(p.scale)).exp2();
    let bound = |index: i64| (index as f64 * scale_factor).exp2();
    let mut explicit_bounds = Vec::new();
    let mut bucket_counts = Vec::new();
    if let Some(negative) = &p.negative {
        // Most negative first: bucket i covers [-base^(i+1), -base^i).
        for (k, &n) in negative.bucket_counts.iter().enumerate().rev() {
            let index = i64::from(negative.offset) + k as i64;
            explicit_bounds.push(-bound(index));
            bucket_counts.push(n);
        }
    }
    explicit_bounds.push(p.zero_threshold);
    bucket_counts.push(p.zero_count);
    if let Some(positive) = &p.positive {
        for (k, &n) in positive.bucket_counts.iter().enumerate() {
            let index = i64::from(positive.offset) + k as i64;
            explicit_bounds.push(bound(index + 1));
            bucket_counts.push(n);
        }
    }
    // Nothing lies above the last positive bound: an empty +Inf bucket.
    bucket_counts.push(0);
    HistogramDataPoint {
        attributes: Vec::new(),
        start_time_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        count: p.count,
        sum: p.sum,
        bucket_counts,
        explicit_bounds,
        exemplars: Vec::new(),
        flags: p.flags,
        min: p.min,
        max: p.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_interpolated_inside_the_bucket_holding_the_rank() {
        // Bounds 10, 20, 40; counts 4, 4, 2, 0 → at or below: 4, 8, 10, 10.
        let at_or_below = [4.0, 8.0, 10.0, 10.0];
        let bounds = [10.0, 20.0, 40.0];
        assert_eq!(estimate_quantile(0.2, &bounds, &at_or_below), Some(5.0));
        assert_eq!(estimate_quantile(0.5, &bounds, &at_or_below), Some(12.5));
        assert_eq!(estimate_quantile(0.9, &bounds, &at_or_below), Some(30.0));
        assert_eq!(estimate_quantile(0.5, &bounds, &[0.0, 0.0, 0.0, 0.0]), None);
        // A rank in +Inf gives the highest bound.
        assert_eq!(
            estimate_quantile(0.99, &bounds, &[0.0, 0.0, 0.0, 5.0]),
            Some(40.0)
        );
    }

    #[test]
    fn exponential_buckets_become_ascending_explicit_bounds() {
        use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
        let point = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            zero_threshold: 0.0,
            positive: Some(Buckets {
                offset: 0,
                bucket_counts: vec![2, 3],
            }),
            negative: Some(Buckets {
                offset: 1,
                bucket_counts: vec![4],
            }),
            count: 10,
            ..Default::default()
        };
        let explicit = explicit_buckets(&point);
        // (-4, -2], (-2, 0], (0, 2], (2, 4], (4, +Inf)
        assert_eq!(explicit.explicit_bounds, [-2.0, 0.0, 2.0, 4.0]);
        assert_eq!(explicit.bucket_counts, [4, 1, 2, 3, 0]);
    }

    #[test]
    fn stream_identity_ignores_tag_order() {
        let a = stream_key("m", &["a:1".into(), "b:2".into()]);
        let b = stream_key("m", &["b:2".into(), "a:1".into()]);
        assert_eq!(a, b);
        assert_ne!(a, stream_key("m", &["a:1".into()]));
    }
}
