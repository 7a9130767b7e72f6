//! Why a line was rejected, as a small copyable value.
//!
//! The decoder runs once per received line, so a rejection must cost no more than
//! an accepted line: no `String`, no allocation, just a reason and the byte offset
//! of the line inside its datagram. The reason doubles as the `reason` label of
//! `tallyd_lines_rejected_total`, so its names are part of the operator interface
//! and must stay stable.

use std::fmt;

/// The reason a line was not accepted. `as_str` gives the metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No `:` between name and value, or no `|` before the type.
    Malformed,
    /// Nothing before the first `:`.
    EmptyName,
    /// A value that is empty, not a number, or not finite (`nan`, `1e309`).
    BadValue,
    /// A type other than c, g, ms, h, d, s.
    UnknownType,
    /// A sample rate that is not a number in (0, 1].
    BadSampleRate,
    /// A `T` field that is not a unix timestamp in whole seconds.
    BadTimestamp,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is longer than the configured maximum.
    TooLong,
    /// An `_e{..}` event whose title/text lengths do not match its content.
    MalformedEvent,
    /// An `_sc|` service check without a name or with a status other than 0-3.
    MalformedServiceCheck,
    /// Tags in the name (`aggregation.tag_styles`) that are not `key=value` pairs
    /// with both parts, or SignalFx brackets that do not pair up.
    BadTags,
}

impl RejectReason {
    /// Every reason, in a fixed order; telemetry pre-registers one counter per entry.
    pub const ALL: [RejectReason; 11] = [
        RejectReason::Malformed,
        RejectReason::EmptyName,
        RejectReason::BadValue,
        RejectReason::UnknownType,
        RejectReason::BadSampleRate,
        RejectReason::BadTimestamp,
        RejectReason::InvalidUtf8,
        RejectReason::TooLong,
        RejectReason::MalformedEvent,
        RejectReason::MalformedServiceCheck,
        RejectReason::BadTags,
    ];

    /// The stable snake_case name used as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::EmptyName => "empty_name",
            RejectReason::BadValue => "bad_value",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::BadSampleRate => "bad_sample_rate",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::TooLong => "too_long",
            RejectReason::MalformedEvent => "malformed_event",
            RejectReason::MalformedServiceCheck => "malformed_service_check",
            RejectReason::BadTags => "bad_tags",
        }
    }

    /// Position of this reason in [`RejectReason::ALL`], for array-indexed counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected line: why, and where it starts in the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line at byte {offset} rejected: {reason}")]
pub struct DecodeError {
    /// Why the line was rejected.
    pub reason: RejectReason,
    /// Byte offset of the start of the line within the datagram.
    pub offset: usize,
}
