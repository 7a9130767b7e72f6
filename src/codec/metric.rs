//! Borrowed views of one decoded metric line: name, type, values, rate, tags.
//!
//! Everything here points into the received datagram; nothing is copied. Values
//! are validated when the line is decoded, but only the first one is kept parsed:
//! most lines carry one value, and re-parsing the rest of a packed line
//! (`name:1:2:3|d`) when it is iterated costs less than storing a variable number
//! of floats without allocating.

use std::num::NonZeroU64;

use super::number::parse_finite;

/// The metric type named after the first `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`: summed, scaled by 1/rate.
    Counter,
    /// `g`: last value, or a delta when signed in statsd mode.
    Gauge,
    /// `ms`: timer samples.
    Timer,
    /// `h`: histogram samples.
    Histogram,
    /// `d`: distribution samples.
    Distribution,
    /// `s`: distinct members counted.
    Set,
}

impl MetricType {
    /// Parses the type field (`c`, `g`, `ms`, `h`, `d`, `s`).
    pub fn from_field(field: &str) -> Option<Self> {
        Some(match field {
            "c" => MetricType::Counter,
            "g" => MetricType::Gauge,
            "ms" => MetricType::Timer,
            "h" => MetricType::Histogram,
            "d" => MetricType::Distribution,
            "s" => MetricType::Set,
            _ => return None,
        })
    }

    /// The wire spelling of this type.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "c",
            MetricType::Gauge => "g",
            MetricType::Timer => "ms",
            MetricType::Histogram => "h",
            MetricType::Distribution => "d",
            MetricType::Set => "s",
        }
    }
}

/// One numeric value of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The value, always finite.
    pub value: f64,
    /// The text began with `+` or `-`: a gauge delta in statsd mode.
    pub signed: bool,
}

impl Sample {
    /// Parses one value; rejects empty, non-numeric and non-finite text.
    #[inline(always)]
    pub fn parse(text: &str) -> Option<Sample> {
        let value = parse_finite(text)?;
        let first = text.as_bytes()[0];
        Some(Sample {
            value,
            signed: first == b'+' || first == b'-',
        })
    }
}

/// What a line carries: numbers, or one set member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    /// One or more numbers; `rest` holds the validated text after the first, without
    /// its leading `:` (empty when the line carried one value).
    Numbers { first: Sample, rest: &'a str },
    /// The raw member text of a set, colons included.
    SetMember(&'a str),
}

impl<'a> Payload<'a> {
    /// Parses the value text of a line of type `kind`.
    #[inline(always)]
    pub(crate) fn parse(kind: MetricType, text: &'a str) -> Option<Payload<'a>> {
        if kind == MetricType::Set {
            return (!text.is_empty()).then_some(Payload::SetMember(text));
        }
        // A number never contains `:`, so the common single value is parsed in one pass
        // and only a failed parse looks for packed values.
        if let Some(first) = Sample::parse(text) {
            return Some(Payload::Numbers { first, rest: "" });
        }
        let (first, rest) = text.split_once(':')?;
        let first = Sample::parse(first)?;
        // Every packed value must be valid (an empty `rest` from `1:` is not), so that
        // iterating later cannot fail.
        if !rest.split(':').all(|t| Sample::parse(t).is_some()) {
            return None;
        }
        Some(Payload::Numbers { first, rest })
    }

    /// Every numeric value of the line, in order; nothing for a set.
    pub fn samples(&self) -> impl Iterator<Item = Sample> + 'a {
        let (first, rest) = match *self {
            Payload::Numbers { first, rest } => (Some(first), rest),
            Payload::SetMember(_) => (None, ""),
        };
        let packed = (!rest.is_empty())
            .then(|| rest.split(':'))
            .into_iter()
            .flatten();
        first.into_iter().chain(packed.filter_map(Sample::parse))
    }
}

/// The tags of a line: the raw `#` field (`key:value` or bare `key`, split on
/// `,`, empty ones skipped), and tags carried in the name by another tag style
/// (`key=value`, split on that style's separator), both borrowed.
///
/// Both lie in the same line, the name's section first, so one slice spanning
/// them and two offsets hold both in 24 bytes: every decoded line, tagged this
/// way or not, stays as small to move as it can (the decoder's throughput
/// follows the size of a decoded line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags<'a> {
    /// From the name's tag section (if any) to the end of the `#` field.
    span: &'a str,
    /// Length of the name's tag section at the start of `span`: its opening
    /// character (`,`, `#`, `[` or `;`, which also says how pairs are
    /// separated: `;` for `;`, `,` otherwise), then the pairs; 0 without one.
    named_len: u32,
    /// Where the `#` field's text starts in `span`.
    text_start: u32,
}

impl Default for Tags<'_> {
    fn default() -> Self {
        Tags::new("")
    }
}

impl<'a> Tags<'a> {
    /// Tags in DogStatsD's form: `key:value` or `key`, separated by `,`.
    pub const fn new(text: &'a str) -> Self {
        Tags {
            span: text,
            named_len: 0,
            text_start: 0,
        }
    }

    /// These tags plus the name's tag section `named`: its opening character,
    /// then `key=value` pairs (already checked: none empty or lacking a key or a
    /// value). `line` holds both `named` and the `#` field, `named` first.
    pub(crate) fn with_named(self, line: &'a str, named: &'a str) -> Self {
        let offset = |part: &str| part.as_ptr() as usize - line.as_ptr() as usize;
        let start = offset(named);
        let text = self.raw();
        let (text_start, end) = if text.is_empty() {
            (start + named.len(), start + named.len())
        } else {
            (offset(text), offset(text) + text.len())
        };
        Tags {
            span: &line[start..end],
            named_len: named.len() as u32,
            text_start: (text_start - start) as u32,
        }
    }

    /// The DogStatsD tag text as received, without the leading `#`.
    pub fn raw(&self) -> &'a str {
        // SAFETY: `text_start` is 0 (`new`) or, from `with_named`, the offset
        // of the `#` field's text within `span`, a slice of the same line that
        // ends with that text: in bounds and on a character boundary. The
        // fields are private, so nothing else sets them.
        unsafe { self.span.get_unchecked(self.text_start as usize..) }
    }

    /// The tags carried in the name, as received (`key=value` pairs).
    pub fn named(&self) -> impl Iterator<Item = &'a str> + 'a {
        let named = &self.span[..self.named_len as usize];
        let separator = if named.starts_with(';') { ';' } else { ',' };
        named
            .get(1..)
            .unwrap_or("")
            .split(separator)
            .filter(|t| !t.is_empty())
    }

    /// True when the line carried no tag text at all: no `#` field (or an
    /// empty one) and no tags in its name. One comparison, where
    /// [`Tags::is_empty`] also looks through empty tags.
    #[inline]
    pub fn is_absent(&self) -> bool {
        self.span.is_empty()
    }

    /// True when the line carried no non-empty tag.
    pub fn is_empty(&self) -> bool {
        self.named().next().is_none() && self.iter().next().is_none()
    }

    /// Each non-empty DogStatsD tag (`key:value` or a bare `key`), in received order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.raw().split(',').filter(|t| !t.is_empty())
    }

    /// Every tag as `(key, value)`, the name's first (a bare tag's value is empty).
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let named = self.named().map(|t| t.split_once('=').unwrap_or((t, "")));
        let tags = self.iter().map(|t| t.split_once(':').unwrap_or((t, "")));
        named.chain(tags)
    }
}

/// One decoded metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// Everything before the first `:`, never empty.
    pub name: &'a str,
    /// The type after the first `|`.
    pub kind: MetricType,
    /// The values, validated.
    pub payload: Payload<'a>,
    /// The `@` field, in (0, 1]; 1.0 when absent.
    pub sample_rate: f64,
    /// The `#` field.
    pub tags: Tags<'a>,
    /// The `c:` field (origin container id).
    pub container_id: Option<&'a str>,
    /// The `T` field: client-side unix timestamp in seconds; `T0` is read as no
    /// timestamp (which keeps this field, and so every decoded line that moves
    /// through the decoder, 8 bytes smaller).
    pub timestamp: Option<NonZeroU64>,
}

impl Metric<'_> {
    /// An empty counter line (`:0|c` with no name): what a line to be decoded
    /// into starts as.
    pub const BLANK: Metric<'static> = Metric {
        name: "",
        kind: MetricType::Counter,
        payload: Payload::Numbers {
            first: Sample {
                value: 0.0,
                signed: false,
            },
            rest: "",
        },
        sample_rate: 1.0,
        tags: Tags::new(""),
        container_id: None,
        timestamp: None,
    };
}
