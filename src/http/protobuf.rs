//! Prometheus' protobuf exposition: length-delimited `io.prometheus.client.MetricFamily`
//! messages, the format that carries native histograms.
//!
//! The messages are declared here with `prost`'s derive, field for field as
//! Prometheus' `metrics.proto` numbers them (only the fields tallyd writes);
//! the integration tests decode this output with Prometheus' own
//! `metrics.proto` and scrape it with a real Prometheus server.
//!
//! A native histogram is written as Prometheus' clients write it: integer
//! counts as deltas between consecutive buckets, or (when some sample had a
//! rate, so a count is fractional) absolute float counts; spans with gaps of
//! up to two buckets filled with zeros; and an empty histogram marked native
//! by one empty span, so a scraper does not take it for a classic one.

use prost::Message;

use crate::exposition::{Exposition, FamilyType, HistogramValues, SummaryValues, parse_labels};
use crate::store::{NativeHistogram, Span};

#[derive(Clone, PartialEq, prost::Message)]
struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    help: Option<String>,
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
enum MetricType {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Histogram = 4,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Value>,
    #[prost(message, optional, tag = "4")]
    summary: Option<Summary>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// `Gauge` and `Counter` alike: field 1 is the value.
#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    quantile: Vec<Quantile>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Quantile {
    #[prost(double, optional, tag = "1")]
    quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    sample_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    zero_count: Option<u64>,
    #[prost(double, optional, tag = "8")]
    zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "9")]
    negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "10")]
    negative_delta: Vec<i64>,
    #[prost(double, repeated, tag = "11")]
    negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    positive_delta: Vec<i64>,
    #[prost(double, repeated, tag = "14")]
    positive_count: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    cumulative_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

/// A protobuf exposition being written into `out`.
pub struct ProtoWriter<'a> {
    out: &'a mut Vec<u8>,
    family: Option<MetricFamily>,
}

impl<'a> ProtoWriter<'a> {
    /// A writer appending delimited families to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        ProtoWriter { out, family: None }
    }

    /// Writes the last family.
    pub fn finish(mut self) {
        self.end_family();
    }

    fn end_family(&mut self) {
        if let Some(family) = self.family.take() {
            // Writing into a Vec cannot run out of room.
            let _ = family.encode_length_delimited(self.out);
        }
    }

    fn push(&mut self, labels: &str, fill: impl FnOnce(&mut Metric)) {
        let Some(family) = &mut self.family else {
            return;
        };
        let mut metric = Metric::default();
        parse_labels(labels, |name, value| {
            metric.label.push(LabelPair {
                name: Some(name.to_owned()),
                value: Some(value.into_owned()),
            })
        });
        fill(&mut metric);
        family.metric.push(metric);
    }
}

impl Exposition for ProtoWriter<'_> {
    fn family(&mut self, base: &str, kind: FamilyType, help: &str) {
        self.end_family();
        let (name, r#type) = match kind {
            FamilyType::Counter => (format!("{base}_total"), MetricType::Counter),
            FamilyType::Gauge => (base.to_owned(), MetricType::Gauge),
            FamilyType::Summary => (base.to_owned(), MetricType::Summary),
            FamilyType::Histogram => (base.to_owned(), MetricType::Histogram),
        };
        self.family = Some(MetricFamily {
            name: Some(name),
            help: (!help.is_empty()).then(|| help.to_owned()),
            r#type: Some(r#type as i32),
            metric: Vec::new(),
        });
    }

    fn value(&mut self, labels: &str, value: f64) {
        let counter =
            self.family.as_ref().and_then(|f| f.r#type) == Some(MetricType::Counter as i32);
        self.push(labels, |metric| {
            let value = Some(Value { value: Some(value) });
            if counter {
                metric.counter = value;
            } else {
                metric.gauge = value;
            }
        });
    }

    fn summary(&mut self, labels: &str, summary: &SummaryValues<'_>) {
        let quantile = summary
            .shown
            .iter()
            .map(|&i| Quantile {
                quantile: Some(summary.quantiles[i]),
                value: Some(summary.values.map_or(f64::NAN, |values| values[i])),
            })
            .collect();
        self.push(labels, |metric| {
            metric.summary = Some(Summary {
                // The format has no fractional summary count.
                sample_count: Some(summary.count.round() as u64),
                sample_sum: Some(summary.sum),
                quantile,
            });
        });
    }

    fn histogram(&mut self, labels: &str, values: &HistogramValues<'_>) {
        let integral = values.native.is_none_or(NativeHistogram::is_integral)
            && values.count.fract() == 0.0
            && values
                .classic
                .is_none_or(|b| b.counts.iter().all(|c| c.fract() == 0.0));
        let count = |c: f64| {
            if integral {
                (Some(c as u64), None)
            } else {
                (None, Some(c))
            }
        };
        let mut histogram = Histogram {
            sample_sum: Some(values.sum),
            ..Histogram::default()
        };
        (histogram.sample_count, histogram.sample_count_float) = count(values.count);
        if let Some(classic) = values.classic {
            for (&le, &c) in classic.bounds.iter().zip(classic.counts.iter()) {
                let (cumulative_count, cumulative_count_float) = count(c);
                histogram.bucket.push(Bucket {
                    cumulative_count,
                    cumulative_count_float,
                    upper_bound: Some(le),
                });
            }
        }
        if let Some(native) = values.native {
            write_native(&mut histogram, native, integral);
        }
        self.push(labels, |metric| metric.histogram = Some(histogram));
    }
}

/// The native part of a histogram message.
fn write_native(out: &mut Histogram, native: &NativeHistogram, integral: bool) {
    out.schema = Some(i32::from(native.schema));
    out.zero_threshold = Some(native.zero_threshold);
    if integral {
        out.zero_count = Some(native.zero_count as u64);
    } else {
        out.zero_count_float = Some(native.zero_count);
    }
    let (spans, counts) = NativeHistogram::spans(&native.positive);
    out.positive_span = spans.iter().map(bucket_span).collect();
    let (negative_spans, negative_counts) = NativeHistogram::spans(&native.negative);
    out.negative_span = negative_spans.iter().map(bucket_span).collect();
    if integral {
        out.positive_delta = NativeHistogram::deltas(&counts);
        out.negative_delta = NativeHistogram::deltas(&negative_counts);
    } else {
        out.positive_count = counts;
        out.negative_count = negative_counts;
    }
    if native.positive.is_empty() && native.negative.is_empty() {
        // No bucket at all: one empty span says this is a native histogram.
        out.positive_span.push(BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
}

fn bucket_span(span: &Span) -> BucketSpan {
    BucketSpan {
        offset: Some(span.offset),
        length: Some(span.length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_native_histograms_are_written_as_deltas_and_empty_ones_as_one_span() {
        let mut native = NativeHistogram::new(3, 0.0);
        native.positive = vec![(0, 2.0), (1, 5.0), (4, 1.0)];
        native.negative = vec![(-3, 1.0)];
        native.zero_count = 1.0;
        let mut h = Histogram::default();
        write_native(&mut h, &native, true);
        assert_eq!(h.schema, Some(3));
        assert_eq!(h.zero_count, Some(1));
        assert_eq!(
            h.positive_span,
            [BucketSpan {
                offset: Some(0),
                length: Some(5)
            }]
        );
        assert_eq!(h.positive_delta, [2, 3, -5, 0, 1]);
        assert_eq!(h.negative_delta, [1]);
        let mut empty = Histogram::default();
        write_native(&mut empty, &NativeHistogram::new(3, 0.0), true);
        assert_eq!(empty.positive_span.len(), 1);
        assert_eq!(empty.positive_span[0].length, Some(0));
    }
}
