//! Splitting a received buffer into lines and decoding each one.
//!
//! A datagram (or a chunk of a stream) holds many `\n`-separated lines. The whole
//! buffer is checked for UTF-8 once with `simdutf8`, which for the usual ASCII
//! traffic costs a fraction of a nanosecond per byte; only when that fails are the
//! lines checked one by one, so a single bad line costs only itself. `\r\n` endings
//! and blank lines are accepted. A line over the length limit is rejected whole,
//! and the lines after it are still decoded.
//!
//! The common case, a metric line in a valid buffer, is decoded in a single pass
//! that finds the line end as it goes. Everything else (events, service checks,
//! rejected lines) takes a second, plainer path: find the line end, check length
//! and UTF-8, decode. Rejections are rare, so decoding a bad line twice is cheap
//! overall and keeps one source of truth for the reasons.

use super::error::{DecodeError, RejectReason};
use super::line::{Message, decode_line_with, decode_metric_prefix_into};
use super::metric::Metric;
use super::scan::find_any;
use super::tag_styles::TagStyles;

/// Decoding settings shared by every ingest path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_line_bytes: usize,
    styles: TagStyles,
}

impl Decoder {
    /// A decoder rejecting lines longer than `max_line_bytes` (terminator excluded),
    /// reading DogStatsD tags only.
    pub const fn new(max_line_bytes: usize) -> Self {
        Decoder {
            max_line_bytes,
            styles: TagStyles::DOGSTATSD,
        }
    }

    /// The same decoder, reading tags in `styles`.
    pub const fn with_tag_styles(self, styles: TagStyles) -> Self {
        Decoder { styles, ..self }
    }

    /// The longest line accepted, in bytes.
    pub const fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Iterates over the lines of `buf`, decoding each one.
    pub fn lines<'a>(&self, buf: &'a [u8]) -> Lines<'a> {
        Lines {
            buf,
            text: simdutf8::basic::from_utf8(buf).ok(),
            pos: 0,
            max_line_bytes: self.max_line_bytes,
            styles: self.styles,
        }
    }
}

/// Iterator over the decoded lines of one buffer; blank lines are skipped.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    buf: &'a [u8],
    /// The whole buffer as text when it is valid UTF-8, so lines need no own check.
    text: Option<&'a str>,
    pos: usize,
    max_line_bytes: usize,
    styles: TagStyles,
}

impl<'a> Lines<'a> {
    /// The text of `self.buf[start..end]`, checking UTF-8 only when the whole buffer failed.
    fn line_text(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.text {
            // `start` and `end` sit next to ASCII `\n` or `\r` bytes: always char boundaries.
            Some(text) => Some(&text[start..end]),
            None => simdutf8::basic::from_utf8(&self.buf[start..end]).ok(),
        }
    }

    /// Position of the `\n` ending the line that starts at `start`, or the buffer end.
    fn line_end(&self, start: usize) -> usize {
        find_any(self.buf, start, [b'\n'])
    }

    /// Length of `self.buf[start..end]` without a trailing `\r`.
    fn content_len(&self, start: usize, end: usize) -> usize {
        let len = end - start;
        if len > 0 && self.buf[end - 1] == b'\r' {
            len - 1
        } else {
            len
        }
    }

    /// The usual case: a metric line in a valid UTF-8 buffer, decoded into
    /// `metric` in one pass that also finds the line end. False for anything
    /// else (events, service checks, rejections), which
    /// [`Lines::decode_separately`] then handles.
    #[inline]
    fn decode_in_place(&mut self, text: &'a str, start: usize, metric: &mut Metric<'a>) -> bool {
        let Ok(len) = decode_metric_prefix_into(&text[start..], self.styles, metric) else {
            return false;
        };
        let end = start + len;
        if self.content_len(start, end) > self.max_line_bytes {
            return false;
        }
        self.pos = end + 1;
        true
    }

    /// Decodes the next line; a metric line in a valid buffer goes straight
    /// into `metric`.
    #[inline]
    fn step(&mut self, metric: &mut Metric<'a>) -> Option<Step<'a>> {
        loop {
            let start = self.pos;
            let first = *self.buf.get(start)?;
            // A blank line: `\n` or `\r\n`.
            if first == b'\n' || (first == b'\r' && self.line_end(start) == start + 1) {
                self.pos = start + 1 + usize::from(first == b'\r');
                continue;
            }
            if let Some(text) = self.text.filter(|_| first != b'_')
                && self.decode_in_place(text, start, metric)
            {
                return Some(Step::InPlace);
            }
            return Some(Step::Separately(self.decode_separately(start)));
        }
    }

    /// The next line, a metric written into `metric` rather than returned:
    /// the receiving path's form of [`Iterator::next`], which spares moving
    /// each decoded line (see `decode_metric_prefix_into`). `metric` holds
    /// the line only after [`LineKind::Metric`]; any other outcome may leave
    /// it partly overwritten.
    #[inline]
    pub fn next_into(&mut self, metric: &mut Metric<'a>) -> Option<Result<LineKind, DecodeError>> {
        Some(match self.step(metric)? {
            Step::InPlace => Ok(LineKind::Metric),
            Step::Separately(decoded) => decoded.map(|message| match message {
                Message::Metric(decoded) => {
                    *metric = decoded;
                    LineKind::Metric
                }
                Message::Event(_) => LineKind::Event,
                Message::ServiceCheck(_) => LineKind::ServiceCheck,
            }),
        })
    }

    /// Finds the line end first, then checks length and UTF-8, then decodes.
    fn decode_separately(&mut self, start: usize) -> Result<Message<'a>, DecodeError> {
        let end = self.line_end(start);
        self.pos = end + 1;
        let reject = |reason| DecodeError {
            reason,
            offset: start,
        };
        let len = self.content_len(start, end);
        if len > self.max_line_bytes {
            return Err(reject(RejectReason::TooLong));
        }
        let line = self
            .line_text(start, start + len)
            .ok_or(reject(RejectReason::InvalidUtf8))?;
        decode_line_with(line, self.styles).map_err(reject)
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut metric = Metric::BLANK;
        Some(match self.step(&mut metric)? {
            Step::InPlace => Ok(Message::Metric(metric)),
            Step::Separately(decoded) => decoded,
        })
    }
}

/// What [`Lines::next_into`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A metric line, now in the caller's `metric`.
    Metric,
    /// A DogStatsD event.
    Event,
    /// A DogStatsD service check.
    ServiceCheck,
}

/// How [`Lines::step`] decoded a line.
enum Step<'a> {
    /// A metric line, written into the caller's `metric`.
    InPlace,
    /// Anything else, decoded on the plain path.
    Separately(Result<Message<'a>, DecodeError>),
}
