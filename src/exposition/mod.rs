//! The Prometheus view of a window snapshot, shared by everything that shows it:
//! the walk over its series ([`write_snapshot`], [`write_self_metrics`]) into an
//! [`Exposition`], and the text formats (Prometheus 0.0.4, OpenMetrics 1.0).
//! `/metrics` and the remote-write sink implement [`Exposition`], so both serve
//! the same names, labels and values.
//!
//! Written by hand into one reused buffer: the labels of each series were rendered
//! when the series was created (`SeriesMeta::prom_labels`), so a scrape only copies
//! them and formats numbers (`itoa` for integral values, `ryu` otherwise). For
//! 100k series that is a few milliseconds and one buffer, against a
//! per-scrape label map and a `String` per label that a generic registry would
//! build.
//!
//! The snapshot is sorted by family name and type, so a family's samples are
//! adjacent and get one `# TYPE` line. Two series that sanitise to the same
//! family with different types (`a.b` counter and `a_b` timer), or to the same
//! name and labels, cannot both be exposed validly: the later one is skipped and
//! counted in `tallyd_exposition_conflicts`.

mod labels;
mod self_metrics;

use std::fmt::Write;

pub use labels::parse_labels;
pub use self_metrics::write_self_metrics;

use crate::codec::MetricType;
use crate::store::{Buckets, NativeHistogram, Rollup, SeriesRollup, WindowSnapshot};

/// Which format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
    /// Prometheus' protobuf format: length-delimited `MetricFamily` messages,
    /// the only one that carries native histograms.
    Protobuf,
}

/// The media type of the protobuf format, as scrapers ask for it.
const PROTOBUF_TYPE: &str = "application/vnd.google.protobuf";

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// The format an `Accept` header prefers: of the formats it names, the one
    /// with the highest `q` (the first on a tie); Prometheus text otherwise.
    /// Protobuf counts only in its delimited `MetricFamily` form.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let mut best = (Format::Prometheus, 0.0f64);
        for part in accept.unwrap_or("").split(',') {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or("");
            let (mut q, mut proto, mut delimited) = (1.0, false, false);
            for field in fields {
                let (key, value) = field.split_once('=').unwrap_or((field, ""));
                let value = value.trim().trim_matches('"');
                match key.trim() {
                    "q" => q = value.parse().unwrap_or(0.0),
                    "proto" => proto = value == "io.prometheus.client.MetricFamily",
                    "encoding" => delimited = value == "delimited",
                    _ => {}
                }
            }
            let format = match media {
                "application/openmetrics-text" => Format::OpenMetrics,
                PROTOBUF_TYPE if proto && delimited => Format::Protobuf,
                "text/plain" | "*/*" => Format::Prometheus,
                _ => continue,
            };
            if q > best.1 {
                best = (format, q);
            }
        }
        best.0
    }
}

/// The type a family is declared with (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    /// A monotonic total; samples end in `_total`.
    Counter,
    /// A value.
    Gauge,
    /// Quantiles with `_sum` and `_count`.
    Summary,
    /// Cumulative buckets with `_sum` and `_count`.
    Histogram,
}

impl FamilyType {
    /// The word on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Summary => "summary",
            FamilyType::Histogram => "histogram",
        }
    }
}

/// Appends a sample value as the text formats spell it.
pub fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == value.trunc() && value.abs() < 9.0e15 {
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// A summary's values: the window's quantiles (as numbers and as label
/// values), which of them the series shows, this window's value of each
/// (`None` when no sample arrived), and the cumulative `_sum` and `_count`.
pub struct SummaryValues<'a> {
    /// The window's quantiles.
    pub quantiles: &'a [f64],
    /// The same, as `quantile` label values.
    pub quantile_labels: &'a [String],
    /// Positions in `quantiles` of those this series shows, in order.
    pub shown: &'a [usize],
    /// The window's value of each quantile.
    pub values: Option<&'a [f64]>,
    /// Sum of value/rate since the series appeared.
    pub sum: f64,
    /// Sum of 1/rate since the series appeared.
    pub count: f64,
}

/// A histogram's values: classic buckets, a native histogram, or both.
pub struct HistogramValues<'a> {
    /// Cumulative classic buckets, when a histogram rule matched.
    pub classic: Option<&'a Buckets>,
    /// The native histogram, when enabled.
    pub native: Option<&'a NativeHistogram>,
    /// Sum of value/rate since the series appeared.
    pub sum: f64,
    /// Sum of 1/rate since the series appeared.
    pub count: f64,
}

/// One float sample of a flattened series: the suffix of the family's name,
/// the label it adds (`quantile`, `le`), its value.
pub type FlatSample<'s> = (&'s str, Option<(&'s str, &'s str)>, f64);

impl SummaryValues<'_> {
    /// The summary as the float samples the text formats and remote write
    /// carry: each shown quantile, `_sum`, `_count`.
    pub fn flatten(&self, mut sample: impl FnMut(FlatSample<'_>)) {
        for &i in self.shown {
            let value = self.values.map_or(f64::NAN, |values| values[i]);
            sample(("", Some(("quantile", &self.quantile_labels[i])), value));
        }
        sample(("_sum", None, self.sum));
        sample(("_count", None, self.count));
    }
}

impl HistogramValues<'_> {
    /// The histogram as float samples: its classic buckets (when it has
    /// them), `+Inf`, `_sum`, `_count`. `bound` is scratch for `le` values.
    pub fn flatten(&self, bound: &mut String, mut sample: impl FnMut(FlatSample<'_>)) {
        if let Some(buckets) = self.classic {
            for (&le, &count) in buckets.bounds.iter().zip(buckets.counts.iter()) {
                bound.clear();
                write_value(bound, le);
                sample(("_bucket", Some(("le", bound)), count));
            }
        }
        sample(("_bucket", Some(("le", "+Inf")), self.count));
        sample(("_sum", None, self.sum));
        sample(("_count", None, self.count));
    }
}

/// What `/metrics` writes, in any format: families in order, each followed by
/// its series. `labels` are rendered as the text formats spell them
/// (`k="v",...`, from `SeriesMeta::prom_labels`).
pub trait Exposition {
    /// Starts a family; `base` is the name without `_total`.
    fn family(&mut self, base: &str, kind: FamilyType, help: &str);
    /// A counter's total or a gauge's value, in the current family.
    fn value(&mut self, labels: &str, value: f64);
    /// A summary series of the current family.
    fn summary(&mut self, labels: &str, summary: &SummaryValues<'_>);
    /// A histogram series of the current family.
    fn histogram(&mut self, labels: &str, histogram: &HistogramValues<'_>);
}

/// A text exposition being written.
pub struct Writer<'a> {
    out: &'a mut String,
    format: Format,
    /// The current family's sample name stem and whether it is a counter.
    family: String,
    counter: bool,
    scratch: String,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out` in `format` (a text format).
    pub fn new(out: &'a mut String, format: Format) -> Self {
        Writer {
            out,
            format,
            family: String::new(),
            counter: false,
            scratch: String::new(),
        }
    }

    /// Writes one sample line: `{family}{suffix}{labels,extra} value`.
    fn sample(&mut self, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        let out = &mut *self.out;
        out.push_str(&self.family);
        out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
            out.push_str(labels);
            if let Some((label, label_value)) = extra {
                if !labels.is_empty() {
                    out.push(',');
                }
                out.push_str(label);
                out.push_str("=\"");
                out.push_str(label_value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }

    /// Ends the exposition (`# EOF` for OpenMetrics).
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }
}

impl Exposition for Writer<'_> {
    /// Writes the `# HELP` (when `help` is not empty) and `# TYPE` lines. Counters
    /// get the `_total` suffix in the 0.0.4 format, where the family is named
    /// like its sample.
    fn family(&mut self, base: &str, kind: FamilyType, help: &str) {
        let total = if kind == FamilyType::Counter && self.format == Format::Prometheus {
            "_total"
        } else {
            ""
        };
        if !help.is_empty() {
            let _ = writeln!(self.out, "# HELP {base}{total} {help}");
        }
        let _ = writeln!(self.out, "# TYPE {base}{total} {}", kind.as_str());
        self.family.clear();
        self.family.push_str(base);
        self.counter = kind == FamilyType::Counter;
    }

    fn value(&mut self, labels: &str, value: f64) {
        let suffix = if self.counter { "_total" } else { "" };
        self.sample(suffix, labels, None, value);
    }

    fn summary(&mut self, labels: &str, summary: &SummaryValues<'_>) {
        summary.flatten(|(suffix, extra, value)| self.sample(suffix, labels, extra, value));
    }

    /// Classic buckets when a rule gave them; a native histogram alone is
    /// written as its `+Inf` bucket, `_sum` and `_count` (its buckets need the
    /// protobuf format).
    fn histogram(&mut self, labels: &str, histogram: &HistogramValues<'_>) {
        let mut bound = std::mem::take(&mut self.scratch);
        histogram.flatten(&mut bound, |(suffix, extra, value)| {
            self.sample(suffix, labels, extra, value)
        });
        self.scratch = bound;
    }
}

/// Appends `text` with `\\` and newlines escaped, as `# HELP` requires.
fn escape_help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The Prometheus type of a series: sampled series are histograms when buckets apply.
fn family_type(series: &SeriesRollup) -> FamilyType {
    match &series.rollup {
        Rollup::Counter { .. } => FamilyType::Counter,
        Rollup::Gauge { .. } | Rollup::Set { .. } => FamilyType::Gauge,
        Rollup::Samples(s) if s.buckets.is_some() || s.native.is_some() => FamilyType::Histogram,
        Rollup::Samples(_) => FamilyType::Summary,
    }
}

/// The family name of a series: its sanitised name, without a `_total` the client
/// already added to a counter (it is added back on the sample).
fn family_name(series: &SeriesRollup) -> &str {
    let name = series.meta.prom_name();
    match series.meta.kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// Writes every series of `snapshot`; returns how many were skipped as conflicts.
pub fn write_snapshot(w: &mut impl Exposition, snapshot: &WindowSnapshot) -> u64 {
    // The window's own quantiles: a reload may have changed them since.
    let quantile_labels: Vec<String> = snapshot
        .quantiles
        .iter()
        .map(|&q| {
            let mut label = String::new();
            write_value(&mut label, q);
            label
        })
        .collect();
    let mut conflicts = 0;
    let mut help = String::new();
    let mut shown = Vec::new();
    let mut previous: Option<(&str, FamilyType, &str)> = None;
    for series in &snapshot.series {
        let family = family_name(series);
        let kind = family_type(series);
        let labels = series.meta.prom_labels();
        match previous {
            Some((f, k, l)) if f == family && (k != kind || l == labels) => {
                conflicts += 1;
                continue;
            }
            Some((f, _, _)) if f == family => {}
            _ => {
                help.clear();
                match series
                    .meta
                    .options
                    .as_deref()
                    .and_then(|o| o.help.as_deref())
                {
                    Some(text) => escape_help(&mut help, text),
                    None => {
                        help.push_str("DogStatsD ");
                        help.push_str(series.meta.kind.as_str());
                        help.push(' ');
                        escape_help(&mut help, series.meta.name());
                    }
                }
                w.family(family, kind, &help);
            }
        }
        previous = Some((family, kind, labels));
        match &series.rollup {
            Rollup::Counter { total, .. } => w.value(labels, *total),
            Rollup::Gauge { value, .. } => w.value(labels, *value),
            Rollup::Set { unique, .. } => w.value(labels, *unique as f64),
            Rollup::Samples(s) if kind == FamilyType::Histogram => w.histogram(
                labels,
                &HistogramValues {
                    classic: s.buckets.as_ref(),
                    native: s.native.as_deref(),
                    sum: s.total_sum,
                    count: s.total_count,
                },
            ),
            Rollup::Samples(s) => {
                shown.clear();
                shown.extend(snapshot.quantiles_of(&series.meta).map(|(i, _)| i));
                w.summary(
                    labels,
                    &SummaryValues {
                        quantiles: &snapshot.quantiles,
                        quantile_labels: &quantile_labels,
                        shown: &shown,
                        values: s.window.as_ref().map(|window| &window.quantiles[..]),
                        sum: s.total_sum,
                        count: s.total_count,
                    },
                )
            }
        }
    }
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn values_are_spelled_as_the_text_format_requires() {
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(3.0), "3");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(0.25), "0.25");
        assert_eq!(value(1e300), "1e300");
        assert_eq!(value(-2.5e-7), "-2.5e-7");
    }

    #[test]
    fn the_accept_header_picks_the_format_by_q() {
        let om = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
        assert_eq!(Format::from_accept(Some(om)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        // What Prometheus sends with native histograms enabled.
        let prometheus = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                          encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::Protobuf);
        let text_first = "text/plain;q=0.9,application/vnd.google.protobuf;\
                          proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5";
        assert_eq!(Format::from_accept(Some(text_first)), Format::Prometheus);
        // Protobuf in its text or compact-text encodings is not served.
        let compact = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                       encoding=compact-text";
        assert_eq!(Format::from_accept(Some(compact)), Format::Prometheus);
    }
}
