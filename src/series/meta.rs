//! What a series is called: its name and tags as received, and their Prometheus forms.
//!
//! Built once, when a shard first sees a series, and shared (`Arc`) with every
//! window snapshot after that, so a scrape never sanitises a name or escapes a
//! label value: it copies bytes rendered here. The cost is paid per new series
//! (about half a microsecond, and 64 bytes plus its texts: about 160 bytes for
//! a name of 26 characters with three tags), never per event or per scrape.
//!
//! Mapping rules (DESIGN.md, exposition): names keep `[a-zA-Z0-9_:]` and every
//! other character becomes `_`; a leading digit gets a `_` prefix. A tag `k:v`
//! becomes the label `k="v"`, a bare tag `k` becomes `k="true"`, label names keep
//! `[a-zA-Z0-9_]`. Tags are sorted; one key given several values becomes one label
//! whose values are joined with `,` (Prometheus allows one value per name). A tag
//! named `quantile` or `le` would clash with the labels tallyd adds to summaries and
//! histograms, so it is exposed as `exported_quantile`/`exported_le`, the
//! convention Prometheus itself uses for clashing labels.

use std::borrow::Cow;
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
///
/// Its texts share one allocation: the name, then the Prometheus name unless it
/// is the name itself, then the rendered labels. The tags are read back from the
/// labels when those render them as they are (`key="value"` for every tag: the
/// key a valid label name, the value non-empty with nothing escaped, no key
/// twice), which is the common case; other tags are also kept as received. An
/// identity is 64 bytes (its `Arc` included) plus its texts this way, where
/// separately allocated strings cost about 350 for a name with three tags.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesMeta {
    /// The metric type.
    pub kind: MetricType,
    /// What a mapping rule set for it, if one did.
    pub options: Option<Arc<SeriesOptions>>,
    /// Name, Prometheus name (empty when equal to the name), labels.
    text: Box<str>,
    name_end: u32,
    prom_name_end: u32,
    /// The tags, sorted, duplicates removed, when the labels do not render them
    /// as they are.
    unrendered_tags: Option<Box<TagPairs>>,
}

/// Tags as `(key, value)`; a bare tag has value `""`.
type TagPairs = Box<[(Box<str>, Box<str>)]>;

impl SeriesMeta {
    /// Builds the readable identity of a series from the raw fields of its first line.
    pub fn new(kind: MetricType, name: &str, tags: Tags<'_>) -> Self {
        let prom_name = sanitise_name(name);
        Self::from_parts(kind, name, &prom_name, tags.pairs().collect(), None)
    }

    /// The same identity with `options` set (a mapping rule's that kept the name).
    pub fn with_options(self, options: Arc<SeriesOptions>) -> Self {
        SeriesMeta {
            options: Some(options),
            ..self
        }
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
        let mut pairs: Vec<(&str, &str)> = tags
            .pairs()
            .filter(|(k, _)| honor_labels || !labels.iter().any(|(l, _)| label_key_is(k, l)))
            .collect();
        for (label, value) in labels {
            if !(honor_labels && pairs.iter().any(|(k, _)| label_key_is(k, label))) {
                pairs.push((label, value));
            }
        }
        Self::from_parts(kind, name, name, pairs, options)
    }

    fn from_parts(
        kind: MetricType,
        name: &str,
        prom_name: &str,
        mut pairs: Vec<(&str, &str)>,
        options: Option<Arc<SeriesOptions>>,
    ) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        let prom_name = if prom_name == name { "" } else { prom_name };
        let mut text = String::with_capacity(name.len() + prom_name.len() + 16 * pairs.len());
        text.push_str(name);
        text.push_str(prom_name);
        render_labels(&mut text, &pairs);
        // Texts longer than 4 GiB cannot arrive: lines and messages are bounded far below.
        let name_end = name.len() as u32;
        let meta = SeriesMeta {
            kind,
            options,
            text: text.into_boxed_str(),
            name_end,
            prom_name_end: name_end + prom_name.len() as u32,
            unrendered_tags: None,
        };
        if meta.rendered_tags().eq(pairs.iter().copied()) {
            meta
        } else {
            let pairs = pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            SeriesMeta {
                unrendered_tags: Some(Box::new(pairs)),
                ..meta
            }
        }
    }

    /// The metric name as received.
    pub fn name(&self) -> &str {
        &self.text[..self.name_end as usize]
    }

    /// The Prometheus family name, sanitised, without any suffix.
    pub fn prom_name(&self) -> &str {
        match &self.text[self.name_end as usize..self.prom_name_end as usize] {
            "" => self.name(),
            prom_name => prom_name,
        }
    }

    /// The rendered labels without braces, e.g. `env="prod",host="a"`; empty when
    /// the series has no tags.
    pub fn prom_labels(&self) -> &str {
        &self.text[self.prom_name_end as usize..]
    }

    /// The tags as `(key, value)`, sorted, duplicates removed; a bare tag has value `""`.
    pub fn tags(&self) -> TagIter<'_> {
        match self.unrendered_tags.as_deref() {
            Some(pairs) => TagIter(TagSource::Kept(pairs.iter())),
            None => self.rendered_tags(),
        }
    }

    /// True when the series carries the tag `key:value` (`value` empty for a bare tag).
    pub fn has_tag(&self, key: &str, value: &str) -> bool {
        self.tags().any(|(k, v)| k == key && v == value)
    }

    /// The labels read as `(name, value)` pairs, as if none were escaped: the
    /// tags themselves when the labels render them as they are.
    fn rendered_tags(&self) -> TagIter<'_> {
        TagIter(TagSource::Rendered(self.prom_labels()))
    }
}

/// The tags of a series (see [`SeriesMeta::tags`]).
#[derive(Debug, Clone)]
pub struct TagIter<'m>(TagSource<'m>);

#[derive(Debug, Clone)]
enum TagSource<'m> {
    /// Read from labels `name="value",...` whose names and values are the tags.
    Rendered(&'m str),
    /// Kept as received.
    Kept(std::slice::Iter<'m, (Box<str>, Box<str>)>),
}

impl<'m> Iterator for TagIter<'m> {
    type Item = (&'m str, &'m str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            TagSource::Kept(pairs) => pairs.next().map(|(k, v)| (&**k, &**v)),
            TagSource::Rendered(rest) => {
                // A label name has no `=` and a value read back has no `"`.
                let (key, after) = rest.split_once('=')?;
                let (value, after) = after.strip_prefix('"')?.split_once('"')?;
                *rest = after.strip_prefix(',').unwrap_or(after);
                Some((key, value))
            }
        }
    }
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

/// `name` with every character outside `[a-zA-Z0-9_:]` replaced by `_`, and a
/// `_` before a leading digit; borrowed when that changes nothing.
pub fn sanitise_name(name: &str) -> Cow<'_, str> {
    let keeps = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let leading_digit = name.starts_with(|c: char| c.is_ascii_digit());
    if !leading_digit && name.chars().all(keeps) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if leading_digit {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if keeps(c) { c } else { '_' }));
    Cow::Owned(out)
}

/// A tag key as a Prometheus label name; borrowed when it is one already.
fn sanitise_label_name(key: &str) -> Cow<'_, str> {
    let mut out = sanitise_name(key);
    if out.contains(':') {
        out = Cow::Owned(out.replace(':', "_"));
    }
    if out.is_empty() {
        out = Cow::Borrowed("_");
    }
    if out == "quantile" || out == "le" {
        out = Cow::Owned(format!("exported_{out}"));
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

/// Appends sorted tags to `out` as a label list without braces, merging
/// repeated keys.
fn render_labels(out: &mut String, tags: &[(&str, &str)]) {
    let mut labels: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(tags.len());
    for &(key, value) in tags {
        let name = sanitise_label_name(key);
        let value = if value.is_empty() { "true" } else { value };
        match labels.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                let joined = joined.to_mut();
                joined.push(',');
                joined.push_str(value);
            }
            None => labels.push((name, Cow::Borrowed(value))),
        }
    }
    labels.sort_unstable();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(out, value);
        out.push('"');
    }
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
        assert_eq!(meta_of("api.req-count:1|c").prom_name(), "api_req_count");
        assert_eq!(meta_of("9lives:1|c").prom_name(), "_9lives");
        assert_eq!(meta_of("a/b c:1|c").prom_name(), "a_b_c");
    }

    #[test]
    fn tags_become_sorted_escaped_labels() {
        let meta = meta_of(r#"a:1|c|#z:1,env:"q\",host.name:b"#);
        assert_eq!(meta.prom_labels(), r#"env="\"q\\\"",host_name="b",z="1""#);
        assert!(meta.has_tag("z", "1"));
        assert!(meta.unrendered_tags.is_some());
    }

    #[test]
    fn bare_repeated_and_reserved_tags_are_mapped() {
        let meta = meta_of("a:1|ms|#canary,env:b,env:a,quantile:x,le:y,env:a");
        assert_eq!(
            meta.prom_labels(),
            r#"canary="true",env="a,b",exported_le="y",exported_quantile="x""#
        );
        assert_eq!(meta.tags().count(), 5);
        assert!(meta.has_tag("canary", ""));
    }

    #[test]
    fn tags_the_labels_render_as_they_are_are_read_back_from_them() {
        let meta = meta_of("web.requests:1|c|#service:checkout,env:prod,host:web-1");
        assert_eq!(meta.unrendered_tags, None);
        assert_eq!(
            meta.tags().collect::<Vec<_>>(),
            [("env", "prod"), ("host", "web-1"), ("service", "checkout")]
        );
        assert_eq!(meta.name(), "web.requests");
        assert_eq!(meta.prom_name(), "web_requests");
        assert_eq!(
            meta.text.len(),
            "web.requestsweb_requests".len() + meta.prom_labels().len()
        );
    }

    #[test]
    fn a_name_prometheus_accepts_is_stored_once() {
        let meta = meta_of("http_requests_total:1|c|#a:b");
        assert_eq!(
            (meta.name(), meta.prom_name()),
            ("http_requests_total", "http_requests_total")
        );
        assert_eq!(&*meta.text, r#"http_requests_totala="b""#);
        let bare = meta_of("up:1|g");
        assert_eq!(
            (bare.name(), bare.prom_name(), bare.prom_labels()),
            ("up", "up", "")
        );
        assert_eq!(bare.tags().count(), 0);
    }

    #[test]
    fn mapped_labels_needing_escapes_are_kept_as_given() {
        let labels = [
            ("job".into(), r#"a"b"#.to_owned()),
            ("zone".into(), "x,y".to_owned()),
        ];
        let meta = SeriesMeta::mapped(
            MetricType::Counter,
            "mapped",
            &labels,
            Tags::default(),
            false,
            None,
        );
        assert_eq!(meta.prom_labels(), r#"job="a\"b",zone="x,y""#);
        assert_eq!(
            meta.tags().collect::<Vec<_>>(),
            [("job", r#"a"b"#), ("zone", "x,y")]
        );
    }

    proptest::proptest! {
        /// Whatever the tags, they read back sorted with duplicates removed,
        /// whether from the labels or as kept.
        #[test]
        fn tags_read_back_as_received(
            tags in proptest::collection::vec(r#"[a-c_.9"\\=]{1,3}(:[a-c"\\=,.]{0,3})?"#, 0..5)
        ) {
            let line = format!("m:1|c|#{}", tags.join(","));
            let Some(Ok(Message::Metric(m))) = Decoder::new(1024).lines(line.as_bytes()).next()
            else {
                return Ok(());
            };
            let mut expected: Vec<(&str, &str)> = m.tags.pairs().collect();
            expected.sort();
            expected.dedup();
            let meta = SeriesMeta::new(m.kind, m.name, m.tags);
            proptest::prop_assert_eq!(meta.tags().collect::<Vec<_>>(), expected);
        }
    }
}
