//! A window's series as remote-write samples, and samples as request bodies.
//!
//! [`PointWriter`] is an [`Exposition`]: the walk that renders `/metrics`
//! ([`write_snapshot`], [`write_self_metrics`]) hands it every family and series,
//! so what is pushed has the names, labels and values a scrape sees. Each
//! sample becomes one [`Point`] (one series, one sample or native histogram,
//! stamped with the window's end), with `external_labels` added where the
//! series has no label of that name. In stale mode every sample is Prometheus'
//! stale marker, for series that idled out.
//!
//! Bodies are encoded in either protocol and compressed with snappy's block
//! format, as both specs require.
//!
//! [`write_snapshot`]: crate::exposition::write_snapshot
//! [`write_self_metrics`]: crate::exposition::write_self_metrics

use std::collections::HashMap;

use prost::Message;

use super::proto::{
    BucketSpan, Count, Histogram, Label, MetadataV2, MetricTypeV2, RequestV2, Sample, TimeSeries,
    TimeSeriesV2, ZeroCount,
};
use crate::exposition::{
    Exposition, FamilyType, HistogramValues, SummaryValues, parse_labels, write_value,
};
use crate::store::{NativeHistogram, Span};

/// Prometheus' stale marker: a NaN no computation produces.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// One series with its one sample, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Labels (sorted, `__name__` included) and the sample or histogram.
    pub series: TimeSeries,
    /// The family's type, for 2.0's metadata.
    pub kind: MetricTypeV2,
}

impl Point {
    /// True when it carries a native histogram.
    pub fn is_histogram(&self) -> bool {
        !self.series.histograms.is_empty()
    }

    /// Its size on the wire before compression: the queue's byte measure.
    pub fn size(&self) -> usize {
        self.series.encoded_len()
    }
}

/// An [`Exposition`] that collects [`Point`]s.
pub struct PointWriter<'a> {
    out: &'a mut Vec<Point>,
    external: &'a [Label],
    timestamp: i64,
    stale: bool,
    native: bool,
    family: String,
    kind: FamilyType,
    le: String,
}

impl<'a> PointWriter<'a> {
    /// A writer appending to `out` samples stamped `timestamp` (unix ms), with
    /// `external` labels (sorted) added; native histograms sent as such when
    /// `native`, as their `+Inf` bucket, `_sum` and `_count` otherwise.
    pub fn new(
        out: &'a mut Vec<Point>,
        external: &'a [Label],
        timestamp: i64,
        native: bool,
    ) -> Self {
        PointWriter {
            out,
            external,
            timestamp,
            stale: false,
            native,
            family: String::new(),
            kind: FamilyType::Gauge,
            le: String::new(),
        }
    }

    /// Every sample written from now on is a stale marker.
    pub fn stale(mut self) -> Self {
        self.stale = true;
        self
    }

    fn metric_type(&self) -> MetricTypeV2 {
        match self.kind {
            FamilyType::Counter => MetricTypeV2::Counter,
            FamilyType::Gauge => MetricTypeV2::Gauge,
            FamilyType::Summary => MetricTypeV2::Summary,
            FamilyType::Histogram => MetricTypeV2::Histogram,
        }
    }

    /// The labels of the family's sample `suffix` for a series rendered as
    /// `labels`, with `extra` (`quantile`, `le`) and the external labels.
    fn labels(&self, suffix: &str, labels: &str, extra: Option<(&str, &str)>) -> Vec<Label> {
        let mut out = Vec::with_capacity(4 + self.external.len());
        let mut name = String::with_capacity(self.family.len() + suffix.len());
        name.push_str(&self.family);
        name.push_str(suffix);
        out.push(Label {
            name: "__name__".to_owned(),
            value: name,
        });
        parse_labels(labels, |name, value| {
            out.push(Label {
                name: name.to_owned(),
                value: value.into_owned(),
            })
        });
        if let Some((name, value)) = extra {
            out.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        for label in self.external {
            if !out.iter().any(|l| l.name == label.name) {
                out.push(label.clone());
            }
        }
        // Sorted and unique, empty values left out, as a scrape stores them.
        out.retain(|l| !l.value.is_empty());
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|later, first| later.name == first.name);
        out
    }

    fn float(&mut self, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        let value = if self.stale { STALE_NAN } else { value };
        let series = TimeSeries {
            labels: self.labels(suffix, labels, extra),
            samples: vec![Sample {
                value,
                timestamp: self.timestamp,
            }],
            histograms: Vec::new(),
        };
        let kind = self.metric_type();
        self.out.push(Point { series, kind });
    }
}

impl Exposition for PointWriter<'_> {
    fn family(&mut self, base: &str, kind: FamilyType, _help: &str) {
        self.family.clear();
        self.family.push_str(base);
        self.kind = kind;
    }

    fn value(&mut self, labels: &str, value: f64) {
        let suffix = if self.kind == FamilyType::Counter {
            "_total"
        } else {
            ""
        };
        self.float(suffix, labels, None, value);
    }

    fn summary(&mut self, labels: &str, summary: &SummaryValues<'_>) {
        for &i in summary.shown {
            let value = summary.values.map_or(f64::NAN, |values| values[i]);
            self.float(
                "",
                labels,
                Some(("quantile", &summary.quantile_labels[i])),
                value,
            );
        }
        self.float("_sum", labels, None, summary.sum);
        self.float("_count", labels, None, summary.count);
    }

    fn histogram(&mut self, labels: &str, values: &HistogramValues<'_>) {
        let native = values.native.filter(|_| self.native);
        if let Some(histogram) = native {
            if self.stale {
                self.float("", labels, None, STALE_NAN);
            } else {
                let series = TimeSeries {
                    labels: self.labels("", labels, None),
                    samples: Vec::new(),
                    histograms: vec![native_histogram(histogram, values, self.timestamp)],
                };
                self.out.push(Point {
                    series,
                    kind: MetricTypeV2::Histogram,
                });
            }
            if values.classic.is_none() {
                return;
            }
        }
        if let Some(buckets) = values.classic {
            let mut le = std::mem::take(&mut self.le);
            for (&bound, &count) in buckets.bounds.iter().zip(buckets.counts.iter()) {
                le.clear();
                write_value(&mut le, bound);
                self.float("_bucket", labels, Some(("le", &le)), count);
            }
            self.le = le;
        }
        self.float("_bucket", labels, Some(("le", "+Inf")), values.count);
        self.float("_sum", labels, None, values.sum);
        self.float("_count", labels, None, values.count);
    }
}

/// A native histogram sample: integer counts as deltas, or (when a sample
/// had a rate) float counts.
fn native_histogram(
    native: &NativeHistogram,
    values: &HistogramValues<'_>,
    timestamp: i64,
) -> Histogram {
    let integral = native.is_integral() && values.count.fract() == 0.0;
    let (positive_spans, positive) = NativeHistogram::spans(&native.positive);
    let (negative_spans, negative) = NativeHistogram::spans(&native.negative);
    let mut out = Histogram {
        sum: values.sum,
        schema: i32::from(native.schema),
        zero_threshold: native.zero_threshold,
        positive_spans: positive_spans.iter().map(span).collect(),
        negative_spans: negative_spans.iter().map(span).collect(),
        timestamp,
        ..Histogram::default()
    };
    if integral {
        out.count = Some(Count::Int(values.count as u64));
        out.zero_count = Some(ZeroCount::Int(native.zero_count as u64));
        out.positive_deltas = NativeHistogram::deltas(&positive);
        out.negative_deltas = NativeHistogram::deltas(&negative);
    } else {
        out.count = Some(Count::Float(values.count));
        out.zero_count = Some(ZeroCount::Float(native.zero_count));
        out.positive_counts = positive;
        out.negative_counts = negative;
    }
    out
}

fn span(span: &Span) -> BucketSpan {
    BucketSpan {
        offset: span.offset,
        length: span.length,
    }
}

/// `points` as a remote write 1.0 body (`prometheus.WriteRequest`), before
/// compression, written into `buf` (cleared first).
pub fn encode_v1(points: &[Point], buf: &mut Vec<u8>) {
    buf.clear();
    for point in points {
        prost::encoding::message::encode(1, &point.series, buf);
    }
}

/// `points` as a remote write 2.0 body (`io.prometheus.write.v2.Request`),
/// before compression, written into `buf` (cleared first).
pub fn encode_v2(points: &[Point], buf: &mut Vec<u8>) {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut refs: HashMap<&str, u32> = HashMap::from([("", 0)]);
    let mut timeseries = Vec::with_capacity(points.len());
    for point in points {
        let mut labels_refs = Vec::with_capacity(point.series.labels.len() * 2);
        for label in &point.series.labels {
            for text in [&label.name, &label.value] {
                let next = refs.len() as u32;
                let index = *refs.entry(text.as_str()).or_insert_with(|| {
                    symbols.push(text.clone());
                    next
                });
                labels_refs.push(index);
            }
        }
        timeseries.push(TimeSeriesV2 {
            labels_refs,
            samples: point.series.samples.clone(),
            histograms: point.series.histograms.clone(),
            metadata: Some(MetadataV2 {
                r#type: point.kind as i32,
                help_ref: 0,
            }),
        });
    }
    buf.clear();
    // Writing into a Vec cannot run out of room.
    let _ = RequestV2 {
        symbols,
        timeseries,
    }
    .encode(buf);
}

/// `body` compressed with snappy's block format.
pub fn compress(body: &[u8]) -> Vec<u8> {
    // Only an input over 4 GiB fails; a request is far smaller.
    snap::raw::Encoder::new()
        .compress_vec(body)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::remote_write::proto::WriteRequest;

    fn labels(point: &Point) -> Vec<(&str, &str)> {
        point
            .series
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn samples_carry_sorted_labels_with_the_external_ones_where_the_series_has_none() {
        let external = [
            Label {
                name: "host".into(),
                value: "a".into(),
            },
            Label {
                name: "zone".into(),
                value: "z1".into(),
            },
        ];
        let mut points = Vec::new();
        let mut w = PointWriter::new(&mut points, &external, 1_000, false);
        w.family("requests", FamilyType::Counter, "");
        w.value(r#"zone="mine",code="2\"00""#, 5.0);
        assert_eq!(points.len(), 1);
        assert_eq!(
            labels(&points[0]),
            [
                ("__name__", "requests_total"),
                ("code", "2\"00"),
                ("host", "a"),
                ("zone", "mine")
            ]
        );
        assert_eq!(
            points[0].series.samples,
            [Sample {
                value: 5.0,
                timestamp: 1_000
            }]
        );
        assert_eq!(points[0].kind, MetricTypeV2::Counter);
    }

    #[test]
    fn summaries_become_quantile_sum_and_count_series_and_stale_ones_stale_markers() {
        let mut points = Vec::new();
        let mut w = PointWriter::new(&mut points, &[], 7, false).stale();
        w.family("latency", FamilyType::Summary, "");
        w.summary(
            "",
            &SummaryValues {
                quantiles: &[0.5, 0.99],
                quantile_labels: &["0.5".into(), "0.99".into()],
                shown: &[1],
                values: Some(&[1.0, 2.0]),
                sum: 3.0,
                count: 2.0,
            },
        );
        let names: Vec<_> = points.iter().map(|p| labels(p)).collect();
        assert_eq!(
            names,
            [
                vec![("__name__", "latency"), ("quantile", "0.99")],
                vec![("__name__", "latency_sum")],
                vec![("__name__", "latency_count")],
            ]
        );
        assert!(
            points
                .iter()
                .all(|p| p.series.samples[0].value.to_bits() == STALE_NAN.to_bits())
        );
    }

    #[test]
    fn native_histograms_are_one_series_with_delta_counts() {
        let mut native = NativeHistogram::new(3, 0.0);
        native.positive = vec![(0, 2.0), (1, 5.0), (4, 1.0)];
        native.zero_count = 1.0;
        let mut points = Vec::new();
        let mut w = PointWriter::new(&mut points, &[], 7, true);
        w.family("latency", FamilyType::Histogram, "");
        w.histogram(
            r#"a="b""#,
            &HistogramValues {
                classic: None,
                native: Some(&native),
                sum: 10.0,
                count: 9.0,
            },
        );
        assert_eq!(points.len(), 1);
        let h = &points[0].series.histograms[0];
        assert_eq!(h.count, Some(Count::Int(9)));
        assert_eq!(h.zero_count, Some(ZeroCount::Int(1)));
        assert_eq!(h.positive_deltas, [2, 3, -5, 0, 1]);
        assert_eq!(h.timestamp, 7);
        assert_eq!(points[0].kind, MetricTypeV2::Histogram);
    }

    #[test]
    fn bodies_decode_as_the_messages_they_claim_to_be() {
        let mut points = Vec::new();
        let mut w = PointWriter::new(&mut points, &[], 7, false);
        w.family("g", FamilyType::Gauge, "");
        w.value(r#"a="x""#, 1.5);
        w.value(r#"a="y""#, 2.5);
        let mut body = Vec::new();
        encode_v1(&points, &mut body);
        let v1 = WriteRequest::decode(&body[..]).unwrap();
        assert_eq!(v1.timeseries.len(), 2);
        assert_eq!(v1.timeseries[1], points[1].series);

        encode_v2(&points, &mut body);
        let v2 = RequestV2::decode(&body[..]).unwrap();
        assert_eq!(v2.symbols[0], "");
        let second: Vec<&str> = v2.timeseries[1]
            .labels_refs
            .iter()
            .map(|&i| v2.symbols[i as usize].as_str())
            .collect();
        assert_eq!(second, ["__name__", "g", "a", "y"]);
        // "__name__", "g" and "a" are written once.
        assert_eq!(v2.symbols, ["", "__name__", "g", "a", "x", "y"]);
        assert_eq!(
            v2.timeseries[0].metadata.unwrap().r#type,
            MetricTypeV2::Gauge as i32
        );

        let compressed = compress(&body);
        let back = snap::raw::Decoder::new()
            .decompress_vec(&compressed)
            .unwrap();
        assert_eq!(back, body);
    }
}
