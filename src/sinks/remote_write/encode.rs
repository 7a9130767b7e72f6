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
//! A point is kept encoded, as the 1.0 `TimeSeries` message it will be sent
//! as: one allocation a sample (labels are parsed from the rendered text onto
//! the stack and written straight out), and what the queue holds is what goes
//! on the wire. A 1.0 body is those messages end to end; a 2.0 body decodes
//! them again to intern their labels.
//!
//! Bodies are compressed with snappy's block format, as both specs require.
//!
//! [`write_snapshot`]: crate::exposition::write_snapshot
//! [`write_self_metrics`]: crate::exposition::write_self_metrics

use std::borrow::Cow;
use std::collections::HashMap;

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use smallvec::SmallVec;

use super::proto::{
    BucketSpan, Count, Histogram, Label, MetadataV2, MetricTypeV2, RequestV2, Sample, TimeSeries,
    TimeSeriesV2, ZeroCount,
};
use crate::exposition::{Exposition, FamilyType, HistogramValues, SummaryValues, parse_labels};
use crate::store::{NativeHistogram, Span};

/// Prometheus' stale marker: a NaN no computation produces.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// One series with its one sample, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The series as an encoded 1.0 `TimeSeries`: labels (sorted, `__name__`
    /// included) and the sample or histogram.
    encoded: Box<[u8]>,
    /// The family's type, for 2.0's metadata.
    pub kind: MetricTypeV2,
    histogram: bool,
}

impl Point {
    /// True when it carries a native histogram.
    pub fn is_histogram(&self) -> bool {
        self.histogram
    }

    /// Its size on the wire before compression: the queue's byte measure.
    pub fn size(&self) -> usize {
        self.encoded.len()
    }

    /// The series it carries, decoded.
    pub fn series(&self) -> TimeSeries {
        TimeSeries::decode(&self.encoded[..]).expect("a point holds a TimeSeries it encoded")
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
    /// The sample's name (family and suffix), rebuilt for each sample.
    name: String,
    /// The point being encoded.
    scratch: Vec<u8>,
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
            name: String::new(),
            scratch: Vec::with_capacity(256),
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

    /// Appends a point for the family's sample `suffix` of the series
    /// rendered as `labels`, with `extra` (`quantile`, `le`) and the external
    /// labels, carrying `sample` or `histogram`.
    fn push(
        &mut self,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
        sample: Option<Sample>,
        histogram: Option<&Histogram>,
    ) {
        self.name.clear();
        self.name.push_str(&self.family);
        self.name.push_str(suffix);
        self.scratch.clear();
        write_labels(&mut self.scratch, &self.name, labels, extra, self.external);
        if let Some(sample) = sample {
            prost::encoding::message::encode(2, &sample, &mut self.scratch);
        }
        if let Some(histogram) = histogram {
            prost::encoding::message::encode(4, histogram, &mut self.scratch);
        }
        let kind = if histogram.is_some() {
            MetricTypeV2::Histogram
        } else {
            self.metric_type()
        };
        self.out.push(Point {
            encoded: self.scratch.as_slice().into(),
            kind,
            histogram: histogram.is_some(),
        });
    }

    fn float(&mut self, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        let value = if self.stale { STALE_NAN } else { value };
        let sample = Sample {
            value,
            timestamp: self.timestamp,
        };
        self.push(suffix, labels, extra, Some(sample), None);
    }
}

/// Writes the `labels` field of a `TimeSeries` named `name`: the labels
/// rendered as `rendered`, then `extra`, then each external label the series
/// lacks; sorted and unique, empty values left out, as a scrape stores them.
fn write_labels(
    out: &mut Vec<u8>,
    name: &str,
    rendered: &str,
    extra: Option<(&str, &str)>,
    external: &[Label],
) {
    let mut pairs: SmallVec<[(&str, Cow<'_, str>); 8]> = SmallVec::new();
    pairs.push(("__name__", Cow::Borrowed(name)));
    parse_labels(rendered, |name, value| pairs.push((name, value)));
    if let Some((name, value)) = extra {
        pairs.push((name, Cow::Borrowed(value)));
    }
    for label in external {
        if !pairs.iter().any(|(name, _)| *name == label.name) {
            pairs.push((&label.name, Cow::Borrowed(&label.value)));
        }
    }
    pairs.retain(|(_, value)| !value.is_empty());
    // Stable: of two labels with one name, the first pushed stays.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.dedup_by(|later, first| later.0 == first.0);
    for (name, value) in &pairs {
        let len = string_field_len(1, name) + string_field_len(2, value);
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
        string_field(1, name, out);
        string_field(2, value, out);
    }
}

fn string_field_len(tag: u32, text: &str) -> usize {
    key_len(tag) + encoded_len_varint(text.len() as u64) + text.len()
}

fn string_field(tag: u32, text: &str, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
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
        summary.flatten(|(suffix, extra, value)| self.float(suffix, labels, extra, value));
    }

    fn histogram(&mut self, labels: &str, values: &HistogramValues<'_>) {
        let native = values.native.filter(|_| self.native);
        if let Some(histogram) = native {
            if self.stale {
                self.float("", labels, None, STALE_NAN);
            } else {
                let histogram = native_histogram(histogram, values, self.timestamp);
                self.push("", labels, None, None, Some(&histogram));
            }
            if values.classic.is_none() {
                return;
            }
        }
        let mut le = std::mem::take(&mut self.le);
        values.flatten(&mut le, |(suffix, extra, value)| {
            self.float(suffix, labels, extra, value)
        });
        self.le = le;
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
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(point.encoded.len() as u64, buf);
        buf.extend_from_slice(&point.encoded);
    }
}

/// `points` as a remote write 2.0 body (`io.prometheus.write.v2.Request`),
/// before compression, written into `buf` (cleared first).
pub fn encode_v2(points: &[Point], buf: &mut Vec<u8>) {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut refs: HashMap<&str, u32> = HashMap::from([("", 0)]);
    let mut timeseries = Vec::with_capacity(points.len());
    let mut labels = Vec::new();
    for point in points {
        let mut samples = Vec::with_capacity(1);
        let mut histograms = Vec::new();
        labels.clear();
        read_series(&point.encoded, &mut labels, &mut samples, &mut histograms);
        let mut labels_refs = Vec::with_capacity(labels.len() * 2);
        for &(name, value) in &labels {
            for text in [name, value] {
                let next = refs.len() as u32;
                let index = *refs.entry(text).or_insert_with(|| {
                    symbols.push(text.to_owned());
                    next
                });
                labels_refs.push(index);
            }
        }
        timeseries.push(TimeSeriesV2 {
            labels_refs,
            samples,
            histograms,
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

/// The labels (borrowed from `encoded`), samples and histograms of a
/// `TimeSeries` this module encoded.
fn read_series<'a>(
    encoded: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<Sample>,
    histograms: &mut Vec<Histogram>,
) {
    for (tag, field) in fields(encoded) {
        match tag {
            1 => {
                let (mut name, mut value) = ("", "");
                for (tag, text) in fields(field) {
                    let text = std::str::from_utf8(text).expect("labels were written from str");
                    if tag == 1 {
                        name = text;
                    } else {
                        value = text;
                    }
                }
                labels.push((name, value));
            }
            2 => samples.push(Sample::decode(field).expect("a sample this module wrote")),
            _ => histograms.push(Histogram::decode(field).expect("a histogram this module wrote")),
        }
    }
}

/// The length-delimited fields of a message, as (tag, bytes): every field of
/// the messages this module writes is one.
fn fields(mut message: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        if message.is_empty() {
            return None;
        }
        let (tag, _) = prost::encoding::decode_key(&mut message).ok()?;
        let len = prost::encoding::decode_varint(&mut message).ok()? as usize;
        let (field, rest) = message.split_at_checked(len)?;
        message = rest;
        Some((tag, field))
    })
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

    fn labels(point: &Point) -> Vec<(String, String)> {
        labels_of(&point.series())
    }

    fn labels_of(series: &TimeSeries) -> Vec<(String, String)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_owned()))
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
            pairs(&[
                ("__name__", "requests_total"),
                ("code", "2\"00"),
                ("host", "a"),
                ("zone", "mine")
            ])
        );
        assert_eq!(
            points[0].series().samples,
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
        let names: Vec<_> = points.iter().map(labels).collect();
        assert_eq!(
            names,
            [
                pairs(&[("__name__", "latency"), ("quantile", "0.99")]),
                pairs(&[("__name__", "latency_sum")]),
                pairs(&[("__name__", "latency_count")]),
            ]
        );
        assert!(
            points
                .iter()
                .all(|p| p.series().samples[0].value.to_bits() == STALE_NAN.to_bits())
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
        assert!(points[0].is_histogram());
        let h = &points[0].series().histograms[0];
        assert_eq!(h.count, Some(Count::Int(9)));
        assert_eq!(h.zero_count, Some(ZeroCount::Int(1)));
        assert_eq!(h.positive_deltas, [2, 3, -5, 0, 1]);
        assert_eq!(h.timestamp, 7);
        assert_eq!(points[0].kind, MetricTypeV2::Histogram);
    }

    #[test]
    fn a_2_0_body_carries_the_same_samples_and_histograms_as_the_1_0_one() {
        let mut native = NativeHistogram::new(3, 0.0);
        native.positive = vec![(0, 2.0), (3, 1.0)];
        let mut points = Vec::new();
        let mut w = PointWriter::new(&mut points, &[], 9, true);
        w.family("h", FamilyType::Histogram, "");
        w.histogram(
            r#"route="/a\"b""#,
            &HistogramValues {
                classic: None,
                native: Some(&native),
                sum: 4.0,
                count: 3.0,
            },
        );
        w.family("c", FamilyType::Counter, "");
        w.value("", 0.0);
        let mut body = Vec::new();
        encode_v2(&points, &mut body);
        let v2 = RequestV2::decode(&body[..]).unwrap();
        for (point, series) in points.iter().zip(&v2.timeseries) {
            let v1 = point.series();
            let labels: Vec<(String, String)> = series
                .labels_refs
                .chunks(2)
                .map(|pair| {
                    (
                        v2.symbols[pair[0] as usize].clone(),
                        v2.symbols[pair[1] as usize].clone(),
                    )
                })
                .collect();
            assert_eq!(labels, labels_of(&v1));
            assert_eq!(series.samples, v1.samples);
            assert_eq!(series.histograms, v1.histograms);
        }
        assert_eq!(v2.timeseries[0].histograms.len(), 1);
        assert_eq!(
            v2.timeseries[1].samples,
            [Sample {
                value: 0.0,
                timestamp: 9
            }]
        );
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
        assert_eq!(v1.timeseries[1], points[1].series());
        // What prost itself writes for the message, byte for byte.
        assert_eq!(&*points[1].encoded, &points[1].series().encode_to_vec()[..]);

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
