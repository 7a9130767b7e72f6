//! Turning a received buffer into routed samples and counted outcomes.
//!
//! Shared by every transport: decode each line, route metrics to their shard,
//! count events, service checks and each rejection by reason. Nothing is
//! allocated and nothing is logged per line; a flood of bad input costs only the
//! decoding and a counter increment.

use crate::codec::{Decoder, LineKind, Metric, RejectReason};
use crate::shard::Router;
use crate::telemetry::LocalTally;

/// Decodes every line of `buf` and routes the metrics. Each metric line is
/// decoded into one reused `Metric` and routed from there, never moved.
#[inline]
pub fn ingest_buffer(decoder: &Decoder, buf: &[u8], router: &mut Router, tally: &mut LocalTally) {
    let mut lines = decoder.lines(buf);
    let mut metric = Metric::BLANK;
    while let Some(line) = lines.next_into(&mut metric) {
        tally.lines += 1;
        match line {
            Ok(LineKind::Metric) => {
                if router.route(&metric, tally).is_err() {
                    tally.reject(RejectReason::TooLong, 1);
                }
            }
            Ok(LineKind::Event) => tally.events += 1,
            Ok(LineKind::ServiceCheck) => tally.service_checks += 1,
            Err(err) => tally.reject(err.reason, 1),
        }
    }
}

/// The part of a truncated datagram that holds whole lines: everything up to and
/// including its last `\n`. The cut line after it is dropped, never decoded.
pub fn whole_lines(buf: &[u8]) -> &[u8] {
    match memchr::memrchr(b'\n', buf) {
        Some(end) => &buf[..=end],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_datagram_keeps_only_its_whole_lines() {
        assert_eq!(whole_lines(b"a:1|c\nb:2|c\nc:3"), b"a:1|c\nb:2|c\n");
        assert_eq!(whole_lines(b"a:1|"), b"");
    }
}
