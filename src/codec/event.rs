//! DogStatsD events (`_e{..}`) and service checks (`_sc|`): recognised, not aggregated.
//!
//! tallyd counts these so an operator can see that a client sends them, but does
//! not store them. Decoding is just deep enough to tell a well-formed one from
//! garbage: the title and text lengths of an event must match its content, and a
//! service check needs a name and a status of 0-3.

use memchr::memchr;

use super::error::RejectReason;
use super::metric::Tags;

/// `_e{<title len>,<text len>}:<title>|<text>[|field...]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The title, exactly as many bytes as announced.
    pub title: &'a str,
    /// The text, exactly as many bytes as announced.
    pub text: &'a str,
    /// The `#` field, if any.
    pub tags: Tags<'a>,
}

/// `_sc|<name>|<status>[|field...]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCheck<'a> {
    /// The check name, never empty.
    pub name: &'a str,
    /// 0 ok, 1 warning, 2 critical, 3 unknown.
    pub status: u8,
    /// The `#` field, if any.
    pub tags: Tags<'a>,
}

/// The `#` field among `|`-separated optional fields (the last one wins).
fn find_tags(fields: &str) -> Tags<'_> {
    fields
        .split('|')
        .rev()
        .find_map(|f| f.strip_prefix('#'))
        .map(Tags::new)
        .unwrap_or_default()
}

/// Decodes a line that starts with `_e{`.
pub(crate) fn decode_event(line: &str) -> Result<Event<'_>, RejectReason> {
    const BAD: RejectReason = RejectReason::MalformedEvent;
    let body = line.strip_prefix("_e{").ok_or(BAD)?;
    let close = memchr(b'}', body.as_bytes()).ok_or(BAD)?;
    let (title_len, text_len) = body[..close].split_once(',').ok_or(BAD)?;
    let title_len: usize = title_len.parse().map_err(|_| BAD)?;
    let text_len: usize = text_len.parse().map_err(|_| BAD)?;
    let content = body[close + 1..].strip_prefix(':').ok_or(BAD)?;
    let title = content.get(..title_len).ok_or(BAD)?;
    let after_title = content[title_len..].strip_prefix('|').ok_or(BAD)?;
    let text = after_title.get(..text_len).ok_or(BAD)?;
    let fields = &after_title[text_len..];
    if title.is_empty() || !(fields.is_empty() || fields.starts_with('|')) {
        return Err(BAD);
    }
    Ok(Event {
        title,
        text,
        tags: find_tags(fields),
    })
}

/// Decodes a line that starts with `_sc|`.
pub(crate) fn decode_service_check(line: &str) -> Result<ServiceCheck<'_>, RejectReason> {
    const BAD: RejectReason = RejectReason::MalformedServiceCheck;
    let mut parts = line.strip_prefix("_sc|").ok_or(BAD)?.splitn(3, '|');
    let name = parts.next().filter(|n| !n.is_empty()).ok_or(BAD)?;
    let status = match parts.next() {
        Some("0") => 0,
        Some("1") => 1,
        Some("2") => 2,
        Some("3") => 3,
        _ => return Err(BAD),
    };
    Ok(ServiceCheck {
        name,
        status,
        tags: find_tags(parts.next().unwrap_or("")),
    })
}
