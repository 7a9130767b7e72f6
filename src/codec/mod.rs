//! Zero-copy DogStatsD/StatsD decoding: bytes in, borrowed messages out.
//!
//! This module is pure and synchronous: no I/O, no tokio, no allocation. Every
//! decoded name, tag and set member borrows from the caller's buffer, and every
//! rejection is a [`RejectReason`] plus a byte offset, so bad traffic costs no more
//! than good traffic. The accepted grammar and its edge cases are the contract in
//! DESIGN.md's "Semantics"; the table tests in `tests.rs` pin each one down.
//!
//! ```
//! use tallyd::codec::{Decoder, Message, MetricType, RejectReason};
//!
//! let datagram = b"api.req:1|c|@0.5|#env:prod,az:b\nlatency:12.5:13|ms\nbad:nan|g";
//! let mut lines = Decoder::new(65_535).lines(datagram);
//!
//! let Some(Ok(Message::Metric(req))) = lines.next() else { panic!() };
//! assert_eq!((req.name, req.kind, req.sample_rate), ("api.req", MetricType::Counter, 0.5));
//! assert_eq!(req.tags.iter().collect::<Vec<_>>(), ["env:prod", "az:b"]);
//!
//! let Some(Ok(Message::Metric(latency))) = lines.next() else { panic!() };
//! assert_eq!(latency.payload.samples().map(|s| s.value).collect::<Vec<_>>(), [12.5, 13.0]);
//!
//! let rejected = lines.next().unwrap().unwrap_err();
//! assert_eq!((rejected.reason, rejected.offset), (RejectReason::BadValue, 51));
//! assert!(lines.next().is_none());
//! ```

mod datagram;
mod error;
mod event;
mod line;
mod metric;
mod number;
mod scan;
mod tag_styles;
#[cfg(test)]
mod tests;

pub use datagram::{Decoder, LineKind, Lines};
pub use error::{DecodeError, RejectReason};
pub use event::{Event, ServiceCheck};
pub use line::{Message, decode_line, decode_metric};
pub use metric::{Metric, MetricType, Payload, Sample, Tags};
pub use tag_styles::TagStyles;
