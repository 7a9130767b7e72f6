//! What a series is called: its name and tags as received, and their Prometheus forms.
//!
//! Built once, when a shard first sees a series, and shared (`Arc`) with every
//! window snapshot after that, so a scrape never sanitises a name or escapes a
//! label value: it copies bytes rendered here. The cost is paid per new series
//! (a few hundred nanoseconds and about 150 bytes for a name with three tags),
//! never per event or per scrape.
//!
//! Mapping rules (DESIGN.md, exposition): names keep `[a-zA-Z0-9_:]` and every
//! other character becomes `_`; a leading digit gets a `_` prefix. A tag `k:v`
//! becomes the label `k="v"`, a bare tag `k` becomes `k="true"`, label names keep
//! `[a-zA-Z0-9_]`. Tags are sorted; one key given several values becomes one label
//! whose values are joined with `,` (Prometheus allows one value per name). A tag
//! named `quantile` or `le` would clash with the labels tallyd adds to summaries and
//! histograms, so it is exposed as `exported_quantile`/`exported_le`, the
//! convention Prometheus itself uses for clashing labels.

use std::fmt::Write;
use std::sync::Arc;

use crate::codec::{MetricType, Tags};

/// What a mapping rule (`mapping.file`) sets for the series it names, beyond
/// its name and labels. Shared by every series of the rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesOptions {
    /// The `# HELP` text, in place of the generated one.
    pub help: Option<Box<str>>,
    /// Idle time before removal, in place of `limits.series_idle_ttl`.
    pub idle_ttl_ms: Option<u64>,
    /// How a timer, histogram or distribution is exposed, in place of
    /// `aggregation.quantiles` and `aggregation.histograms`.
    pub observer: Option<Observer>,
    /// Native histogram resolution of this series, within the config's.
    pub native: Option<NativeOverride>,
}

/// How a sampled series is exposed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observer {
    /// A summary of these quantiles.
    Summary {
        /// Sorted, distinct, in [0, 1].
        quantiles: Arc<[f64]>,
    },
    /// A histogram of these bucket upper bounds (`+Inf` implied).
    Histogram {
        /// Strictly increasing, finite.
        buckets: Arc<[f64]>,
    },
}

/// A native histogram resolution set for one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeOverride {
    /// The schema, when set; the config's when finer is never used.
    pub schema: Option<i8>,
    /// Populated buckets before the schema is lowered, when set.
    pub max_buckets: Option<usize>,
}

/// A series' identity in readable form, rendered once.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesMeta {
    /// The metric name as received.
    pub name: Box<str>,
    /// The metric type.
    pub kind: MetricType,
    /// Tags as `(key, value)`, sorted, duplicates removed; a bare tag has value `""`.
    pub tags: Box<[(Box<str>, Box<str>)]>,
    /// The Prometheus family name, sanitised, without any suffix.
    pub prom_name: Box<str>,
    /// The rendered labels without braces, e.g. `env="prod",host="a"`; empty when the
    /// series has no tags.
    pub prom_labels: Box<str>,
    /// What a mapping rule set for it, if one did.
    pub options: Option<Arc<SeriesOptions>>,
}

impl SeriesMeta {
    /// Builds the readable identity of a series from the raw fields of its first line.
    pub fn new(kind: MetricType, name: &str, tags: Tags<'_>) -> Self {
        let pairs: Vec<(Box<str>, Box<str>)> = tags.pairs().map(boxed).collect();
        Self::from_parts(kind, name, sanitise_name(name), pairs, None)
    }

    /// The identity of a series a mapping rule renamed to `name` (escaped
    /// already) and gave `labels`, from a line carrying `tags`. A label
    /// replaces every tag of the same (sanitised) key, unless `honor_labels`
    /// and the line carries that key, in which case the tags stay.
    pub fn mapped(
        kind: MetricType,
        name: &str,
        labels: &[(Box<str>, String)],
        tags: Tags<'_>,
        honor_labels: bool,
        options: Option<Arc<SeriesOptions>>,
    ) -> Self {
        let mut pairs: Vec<(Box<str>, Box<str>)> = tags
            .pairs()
            .filter(|(k, _)| honor_labels || !labels.iter().any(|(l, _)| label_key_is(k, l)))
            .map(boxed)
            .collect();
        for (label, value) in labels {
            if !(honor_labels && pairs.iter().any(|(k, _)| label_key_is(k, label))) {
                pairs.push((label.clone(), value.as_str().into()));
            }
        }
        Self::from_parts(kind, name, name.to_owned(), pairs, options)
    }

    fn from_parts(
        kind: MetricType,
        name: &str,
        prom_name: String,
        mut pairs: Vec<(Box<str>, Box<str>)>,
        options: Option<Arc<SeriesOptions>>,
    ) -> Self {
        pairs.sort();
        pairs.dedup();
        SeriesMeta {
            name: name.into(),
            kind,
            prom_name: prom_name.into(),
            prom_labels: render_labels(&pairs).into(),
            tags: pairs.into_boxed_slice(),
            options,
        }
    }

    /// True when the series carries the tag `key:value` (`value` empty for a bare tag).
    pub fn has_tag(&self, key: &str, value: &str) -> bool {
        self.tags.iter().any(|(k, v)| &**k == key && &**v == value)
    }
}

/// A tag's key and value, owned.
fn boxed((key, value): (&str, &str)) -> (Box<str>, Box<str>) {
    (key.into(), value.into())
}

/// True when the tag key `key` and the label name `label` (a valid label name)
/// become the same label once sanitised; compares in place, without allocating.
pub fn label_key_is(key: &str, label: &str) -> bool {
    if key == label {
        return true;
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // A leading digit gets a `_` in front when sanitised.
    let label = match (
        key.starts_with(|c: char| c.is_ascii_digit()),
        label.strip_prefix('_'),
    ) {
        (true, Some(rest)) => rest,
        (true, None) => return false,
        (false, _) => label,
    };
    let mut label_chars = label.chars();
    key.chars()
        .all(|c| label_chars.next() == Some(if valid(c) { c } else { '_' }))
        && label_chars.next().is_none()
}

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_`.
pub fn sanitise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// A tag key as a Prometheus label name.
fn sanitise_label_name(key: &str) -> String {
    let mut out = sanitise_name(key).replace(':', "_");
    if out.is_empty() {
        out.push('_');
    }
    if out == "quantile" || out == "le" {
        out.insert_str(0, "exported_");
    }
    out
}

/// Appends `value` to `out` with `\`, `"` and newlines escaped as the text format requires.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders sorted tags as a label list without braces, merging repeated keys.
fn render_labels(tags: &[(Box<str>, Box<str>)]) -> String {
    let mut labels: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for (key, value) in tags {
        let name = sanitise_label_name(key);
        let value = if value.is_empty() { "true" } else { value };
        match labels.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => labels.push((name, value.to_owned())),
        }
    }
    labels.sort();
    let mut out = String::new();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"");
        escape_label_value(&mut out, value);
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decoder, Message};

    fn meta_of(line: &str) -> SeriesMeta {
        let Some(Ok(Message::Metric(m))) = Decoder::new(1024).lines(line.as_bytes()).next() else {
            panic!("{line} is not a metric line");
        };
        SeriesMeta::new(m.kind, m.name, m.tags)
    }

    #[test]
    fn names_are_sanitised_for_prometheus() {
        assert_eq!(&*meta_of("api.req-count:1|c").prom_name, "api_req_count");
        assert_eq!(&*meta_of("9lives:1|c").prom_name, "_9lives");
        assert_eq!(&*meta_of("a/b c:1|c").prom_name, "a_b_c");
    }

    #[test]
    fn tags_become_sorted_escaped_labels() {
        let meta = meta_of(r#"a:1|c|#z:1,env:"q\",host.name:b"#);
        assert_eq!(&*meta.prom_labels, r#"env="\"q\\\"",host_name="b",z="1""#);
        assert!(meta.has_tag("z", "1"));
    }

    #[test]
    fn bare_repeated_and_reserved_tags_are_mapped() {
        let meta = meta_of("a:1|ms|#canary,env:b,env:a,quantile:x,le:y,env:a");
        assert_eq!(
            &*meta.prom_labels,
            r#"canary="true",env="a,b",exported_le="y",exported_quantile="x""#
        );
        assert_eq!(meta.tags.len(), 5);
    }
}
