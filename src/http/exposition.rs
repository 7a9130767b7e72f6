//! Prometheus text (0.0.4) and OpenMetrics (1.0) rendering of a window snapshot.
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

use std::fmt::Write;

use crate::codec::MetricType;
use crate::store::{Rollup, SamplesRollup, SeriesRollup, WindowSnapshot};

/// Which text format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it names it.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
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

/// A text exposition being written.
pub struct Writer<'a> {
    out: &'a mut String,
    format: Format,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out` in `format`.
    pub fn new(out: &'a mut String, format: Format) -> Self {
        Writer { out, format }
    }

    /// Writes the `# HELP` (when `help` is not empty) and `# TYPE` lines of a family.
    /// `base` is the name without `_total`; counters get the suffix in the 0.0.4
    /// format, where the family is named like its sample.
    pub fn family(&mut self, base: &str, kind: FamilyType, help: &str) {
        let total = if kind == FamilyType::Counter && self.format == Format::Prometheus {
            "_total"
        } else {
            ""
        };
        if !help.is_empty() {
            let _ = writeln!(self.out, "# HELP {base}{total} {help}");
        }
        let _ = writeln!(self.out, "# TYPE {base}{total} {}", kind.as_str());
    }

    /// Writes one sample line: `{name}{suffix}{labels,extra} value`.
    pub fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        let out = &mut *self.out;
        out.push_str(name);
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
        Rollup::Samples(s) if s.buckets.is_some() => FamilyType::Histogram,
        Rollup::Samples(_) => FamilyType::Summary,
    }
}

/// The family name of a series: its sanitised name, without a `_total` the client
/// already added to a counter (it is added back on the sample).
fn family_name(series: &SeriesRollup) -> &str {
    let name = &*series.meta.prom_name;
    match series.meta.kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// Writes every series of `snapshot`; returns how many were skipped as conflicts.
pub fn write_snapshot(w: &mut Writer<'_>, snapshot: &WindowSnapshot) -> u64 {
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
    let quantile_labels = &quantile_labels[..];
    let mut conflicts = 0;
    let mut help = String::new();
    let mut previous: Option<(&str, FamilyType, &str)> = None;
    for series in &snapshot.series {
        let family = family_name(series);
        let kind = family_type(series);
        let labels = &*series.meta.prom_labels;
        match previous {
            Some((f, k, l)) if f == family && (k != kind || l == labels) => {
                conflicts += 1;
                continue;
            }
            Some((f, _, _)) if f == family => {}
            _ => {
                help.clear();
                help.push_str("DogStatsD ");
                help.push_str(series.meta.kind.as_str());
                help.push(' ');
                escape_help(&mut help, &series.meta.name);
                w.family(family, kind, &help);
            }
        }
        previous = Some((family, kind, labels));
        match &series.rollup {
            Rollup::Counter { total, .. } => w.sample(family, "_total", labels, None, *total),
            Rollup::Gauge { value, .. } => w.sample(family, "", labels, None, *value),
            Rollup::Set { unique, .. } => w.sample(family, "", labels, None, *unique as f64),
            Rollup::Samples(s) => write_samples(w, family, labels, s, quantile_labels),
        }
    }
    conflicts
}

fn write_samples(
    w: &mut Writer<'_>,
    family: &str,
    labels: &str,
    s: &SamplesRollup,
    quantile_labels: &[String],
) {
    match &s.buckets {
        Some(buckets) => {
            let mut bound = String::new();
            for (&le, &count) in buckets.bounds.iter().zip(buckets.counts.iter()) {
                bound.clear();
                write_value(&mut bound, le);
                w.sample(family, "_bucket", labels, Some(("le", &bound)), count);
            }
            w.sample(
                family,
                "_bucket",
                labels,
                Some(("le", "+Inf")),
                s.total_count,
            );
        }
        None => {
            for (i, q) in quantile_labels.iter().enumerate() {
                let value = s.window.as_ref().map_or(f64::NAN, |win| win.quantiles[i]);
                w.sample(family, "", labels, Some(("quantile", q)), value);
            }
        }
    }
    w.sample(family, "_sum", labels, None, s.total_sum);
    w.sample(family, "_count", labels, None, s.total_count);
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
    fn openmetrics_is_asked_for_by_accept_header() {
        let om = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
        assert_eq!(Format::from_accept(Some(om)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
    }
}
