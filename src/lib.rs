//! tallyd: a StatsD/DogStatsD metrics aggregation daemon.
//!
//! The binary is a thin shell around this library so that benches, fuzz targets
//! and integration tests exercise the same code the daemon runs.
//!
//! The pipeline, and the module that owns each step:
//! - [`ingest`]: sockets (UDP with `SO_REUSEPORT` and `recvmmsg`, Unix datagram,
//!   TCP and Unix stream with backpressure), bytes in; [`grpc`]: tallyd's own
//!   gRPC API; [`otlp`]: OTLP metrics mapped into tallyd's model;
//! - [`codec`]: datagram bytes to borrowed metric lines, zero-copy, every rejection
//!   with a reason;
//! - [`series`]: the identity of a series (order-independent 128-bit key), the
//!   shard that owns it, its Prometheus name and labels;
//! - [`shard`]: routing into per-shard batches, shard threads owning their series,
//!   aligned windows on an injected clock, a flush thread per shard;
//! - [`kernels`]: the arithmetic of a window close (moments, exact quantiles,
//!   buckets), scalar reference first; [`gpu`]: the same on a GPU for large
//!   windows, chosen by a cost model;
//! - [`store`]: closed windows as immutable snapshots, swapped atomically;
//! - [`http`]: `/metrics` (Prometheus, OpenMetrics), `/api/v1/rollups`, health;
//! - [`config`]: every knob, refused at load time when invalid; [`app`] brings the
//!   daemon up and down; [`telemetry`] holds logs and the `tallyd_*` counters;
//!   [`workload`] generates realistic traffic for benches, tests and the load
//!   generator.

pub mod app;
pub mod codec;
pub mod config;
pub mod gpu;
pub mod http;
pub mod ingest;
pub mod kernels;
pub mod series;
pub mod shard;
pub mod store;
pub mod telemetry;
pub mod workload;
