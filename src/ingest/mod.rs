//! The one front door: every way metrics come in, started and stopped as one.
//!
//! [`start`] binds what `listen` names and returns the running [`Ingest`];
//! [`Ingest::stop`] ends it without losing what was accepted. Every transport
//! feeds the shards through clones of one [`Inlet`] (shard queues, batch pool,
//! counters) and owns only its sockets, threads and tasks: decoding is in
//! `codec`, routing in `shard::Router`, counting in `telemetry`.
//!
//! - Datagrams (UDP with `SO_REUSEPORT` and `recvmmsg`, Unix datagram): a
//!   receiving thread per socket (`udp`); a full shard queue drops the batch,
//!   counted.
//! - Streams (TCP, Unix stream): tasks on one multi-threaded runtime sized by
//!   `listen.stream_threads` (`listeners`, `stream`); a full queue stops reading,
//!   so flow control slows the sender.
//! - gRPC on the same runtime: tallyd's own API (`grpc`, [`proto`]) and OTLP
//!   metrics (`otlp`), served on one port (`grpc_server`); each call goes through
//!   a `call::Call` that waits for full queues until its deadline and reports
//!   what it could not queue.
//!
//! Ingest never imports `http`, `store` or `app`.

mod call;
mod framing;
mod front_door;
mod grpc;
mod grpc_server;
mod inlet;
mod lines;
mod listeners;
mod otlp;
pub mod proto;
mod stream;
mod udp;
mod unix_socket;

pub use front_door::{Bound, Ingest, StartError, start};
pub use inlet::Inlet;
pub use lines::ingest_buffer;
