//! Decoding of one line (already split, CR stripped, UTF-8 checked) into a [`Message`].
//!
//! Grammar: `<name>:<value>[:<value>...]|<type>[|<field>...]`. Fields after the type
//! come in any order: `@<rate>`, `#<tags>`, `c:<container>`, `T<unix seconds>`;
//! `e:`, `card:`, empty and unknown fields are skipped so newer clients keep
//! working. When a field repeats, the last one wins. The cost per line is a few
//! word-at-a-time delimiter searches and one float parse for the common
//! single-value line.

use std::num::NonZeroU64;

use super::error::RejectReason;
use super::event::{Event, ServiceCheck, decode_event, decode_service_check};
use super::metric::{Metric, MetricType, Payload, Tags};
use super::number::parse_finite;
use super::scan::find_any;
use super::tag_styles::TagStyles;

/// What a line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message<'a> {
    /// A metric sample to aggregate.
    Metric(Metric<'a>),
    /// A DogStatsD event: counted, not aggregated.
    Event(Event<'a>),
    /// A DogStatsD service check: counted, not aggregated.
    ServiceCheck(ServiceCheck<'a>),
}

/// Decodes one non-empty line without its line terminator, reading DogStatsD tags.
#[inline]
pub fn decode_line(line: &str) -> Result<Message<'_>, RejectReason> {
    decode_line_with(line, TagStyles::DOGSTATSD)
}

/// Decodes one non-empty line without its line terminator, reading tags in `styles`.
#[inline]
pub(crate) fn decode_line_with(line: &str, styles: TagStyles) -> Result<Message<'_>, RejectReason> {
    if line.starts_with("_e{") {
        return decode_event(line).map(Message::Event);
    }
    if line.starts_with("_sc|") {
        return decode_service_check(line).map(Message::ServiceCheck);
    }
    decode_metric_prefix(line, styles).map(|(metric, _)| Message::Metric(metric))
}

/// Position of the first `|` or `\n` in `bytes` at or after `from`, or `bytes.len()`.
#[inline]
fn find_field_end(bytes: &[u8], from: usize) -> usize {
    find_any(bytes, from, [b'|', b'\n'])
}

/// `text[from..to]` without a trailing `\r` when `to` ends the line, so `\r\n`
/// endings leave no `\r` in the last field.
#[inline]
fn last_field(text: &str, from: usize, to: usize) -> &str {
    let field = &text[from..to];
    if text.as_bytes().get(to) == Some(&b'|') {
        field
    } else {
        field.strip_suffix('\r').unwrap_or(field)
    }
}

/// Decodes a metric line (without its terminator).
#[inline]
pub fn decode_metric(line: &str) -> Result<Metric<'_>, RejectReason> {
    decode_metric_prefix(line, TagStyles::DOGSTATSD).map(|(metric, _)| metric)
}

/// Decodes the metric line at the start of `text`, which may hold further lines, in
/// one forward pass; returns it with the position of the `\n` that ends it (or
/// `text.len()`). Finding the line end while parsing saves a separate newline scan.
/// Tags are read in `styles`: a name style moves tags out of the name, and
/// without DogStatsD's style the `#` field is skipped.
#[inline]
pub(crate) fn decode_metric_prefix(
    text: &str,
    styles: TagStyles,
) -> Result<(Metric<'_>, usize), RejectReason> {
    let mut metric = Metric::BLANK;
    let end = decode_metric_prefix_into(text, styles, &mut metric)?;
    Ok((metric, end))
}

/// [`decode_metric_prefix`] writing the line into `metric`, where the caller
/// reads it: a decoded line is 112 bytes, and moving one just written field by
/// field costs the core a stalled load (it cannot forward several narrow
/// stores to one wide load), which the receiving path pays on every line.
/// On a rejection `metric` is left partly written.
#[inline]
pub(crate) fn decode_metric_prefix_into<'a>(
    text: &'a str,
    styles: TagStyles,
    metric: &mut Metric<'a>,
) -> Result<usize, RejectReason> {
    // Two copies of the decoder: DogStatsD's own, which every line took before
    // other styles existed and stays exactly that, and the styled one.
    if styles == TagStyles::DOGSTATSD {
        decode_metric_styled::<false>(text, styles, metric)
    } else {
        decode_metric_with_styles(text, styles, metric)
    }
}

/// The styled copy, kept out of line so that it does not weigh on the inlined
/// DogStatsD copy's code.
#[inline(never)]
fn decode_metric_with_styles<'a>(
    text: &'a str,
    styles: TagStyles,
    metric: &mut Metric<'a>,
) -> Result<usize, RejectReason> {
    decode_metric_styled::<true>(text, styles, metric)
}

#[inline]
fn decode_metric_styled<'a, const STYLED: bool>(
    text: &'a str,
    styles: TagStyles,
    metric: &mut Metric<'a>,
) -> Result<usize, RejectReason> {
    let bytes = text.as_bytes();
    let name_end = find_any(bytes, 0, [b':', b'|', b'\n']);
    if bytes.get(name_end) != Some(&b':') {
        return Err(RejectReason::Malformed);
    }
    if name_end == 0 {
        return Err(RejectReason::EmptyName);
    }
    let value_end = find_field_end(bytes, name_end + 1);
    if bytes.get(value_end) != Some(&b'|') {
        return Err(RejectReason::Malformed);
    }
    let type_end = find_field_end(bytes, value_end + 1);
    let kind = MetricType::from_field(last_field(text, value_end + 1, type_end))
        .ok_or(RejectReason::UnknownType)?;
    let payload =
        Payload::parse(kind, &text[name_end + 1..value_end]).ok_or(RejectReason::BadValue)?;

    *metric = Metric {
        name: &text[..name_end],
        kind,
        payload,
        sample_rate: 1.0,
        tags: Tags::default(),
        container_id: None,
        timestamp: None,
    };
    // Each iteration starts at a `|`; the loop ends at the `\n` or the end of `text`.
    let mut field_start = type_end;
    while bytes.get(field_start) == Some(&b'|') {
        let field_end = find_field_end(bytes, field_start + 1);
        apply_field(metric, last_field(text, field_start + 1, field_end))?;
        field_start = field_end;
    }
    if STYLED {
        styles.apply(metric, text)?;
    }
    Ok(field_start)
}

/// Applies one optional field after the type to `metric`.
#[inline]
fn apply_field<'a>(metric: &mut Metric<'a>, field: &'a str) -> Result<(), RejectReason> {
    match field.as_bytes().first() {
        Some(b'@') => {
            let rate = parse_finite(&field[1..]).ok_or(RejectReason::BadSampleRate)?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(RejectReason::BadSampleRate);
            }
            metric.sample_rate = rate;
        }
        Some(b'#') => metric.tags = Tags::new(&field[1..]),
        Some(b'T') => {
            let ts = field[1..].parse().map_err(|_| RejectReason::BadTimestamp)?;
            metric.timestamp = NonZeroU64::new(ts);
        }
        Some(b'c') if field.as_bytes().get(1) == Some(&b':') => {
            metric.container_id = Some(&field[2..]);
        }
        // `e:` (external data), `card:` (cardinality), empty and unknown fields.
        _ => {}
    }
    Ok(())
}
