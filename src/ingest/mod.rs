//! Sockets and servers: receive bytes, hand them to the codec and the router.
//!
//! Transports own their sockets and threads and nothing else: decoding is in
//! `codec`, routing in `shard::Router`, counting in `telemetry`.

mod lines;
pub mod udp;

pub use lines::{ingest_buffer, whole_lines};
