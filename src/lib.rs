//! tallyd: a StatsD/DogStatsD metrics aggregation daemon.
//!
//! The binary is a thin shell around this library so that benches, fuzz targets
//! and integration tests exercise the same code the daemon runs.
//!
//! The pipeline, and the module that owns each step (dependencies point down
//! this list; `tests/architecture.rs` fails on an arrow the design forbids and
//! on any cycle between these modules):
//! - [`ingest`]: the one front door. Every transport (UDP with `SO_REUSEPORT`
//!   and `recvmmsg`, Unix datagram, TCP and Unix stream with backpressure,
//!   gRPC: tallyd's own API and OTLP metrics) is started by `ingest::start` and
//!   stopped by `Ingest::stop`, and feeds the shards through one `Inlet`;
//! - [`codec`]: datagram bytes to borrowed metric lines, zero-copy, every rejection
//!   with a reason; synchronous, no tokio;
//! - [`series`]: the identity of a series (order-independent 128-bit key), the
//!   shard that owns it, its Prometheus name and labels;
//! - [`mapping`]: statsd_exporter's mapping file, compiled and matched; routers
//!   cache its outcome per name and shards apply it once per new series;
//! - [`shard`]: routing into per-shard batches, shard threads owning their series,
//!   aligned windows on an injected clock, a flush thread per shard;
//! - [`kernels`]: the arithmetic of a window close (moments, exact quantiles,
//!   buckets), scalar reference first; [`gpu`]: the same on a GPU for large
//!   windows, chosen by a cost model;
//! - [`store`]: closed windows as immutable snapshots, swapped atomically, and
//!   the native histograms they carry (bucket keys from [`kernels`]); it
//!   imports neither the shards that write it nor the readers above it;
//! - [`http`]: `/metrics` (Prometheus, OpenMetrics), `/api/v1/rollups`, health;
//!   it reads the store, series names and telemetry only;
//! - [`web`]: the exporter-toolkit web configuration (TLS, client
//!   certificates, basic auth, headers, a rate limit) that [`http`] and the
//!   gRPC listener of [`ingest`] apply, swapped whole by a reload;
//! - [`telemetry`]: logs, and tallyd's own `tallyd_*` metrics: one typed
//!   catalogue of families, the counters written where events happen, and
//!   their collection at scrape time;
//! - [`config`]: every knob, refused at load time when invalid; [`app`] brings the
//!   daemon up and down and is the only module that sees every other;
//!   [`workload`] generates realistic traffic for benches, tests and the load
//!   generator.

pub mod app;
pub mod codec;
pub mod config;
pub mod exposition;
pub mod gpu;
pub mod http;
pub mod ingest;
pub mod kernels;
pub mod mapping;
pub mod series;
pub mod shard;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod workload;
