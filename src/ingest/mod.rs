//! Sockets and servers: receive bytes, hand them to the codec and the router.
//!
//! Transports own their sockets and threads and nothing else: decoding is in
//! `codec`, routing in `shard::Router`, counting in `telemetry`. Datagram
//! sockets (UDP, Unix datagram) have a receiving thread each; stream sockets
//! (TCP, Unix stream) and gRPC are tasks on one multi-threaded runtime.

mod framing;
mod lines;
pub mod listeners;
pub mod stream;
pub mod udp;
pub mod unix_socket;

pub use framing::LineFramer;
pub use lines::{ingest_buffer, whole_lines};
