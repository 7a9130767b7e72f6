//! tallyd: a StatsD/DogStatsD metrics aggregation daemon.
//!
//! The binary is a thin shell around this library so that benches, fuzz targets
//! and integration tests exercise the same code the daemon runs.
//!
//! The pipeline, and the module that owns each step:
//! - [`codec`]: datagram bytes to borrowed metric lines, zero-copy, every rejection
//!   with a reason;
//! - [`series`]: the identity of a series (order-independent 128-bit key) and the
//!   shard that owns it;
//! - [`shard`]: per-core owners of series; time through an injected clock, aligned
//!   windows;
//! - [`kernels`]: the arithmetic of a window close (moments, exact quantiles,
//!   buckets), scalar reference first;
//! - [`config`]: every knob, refused at load time when invalid; [`app`] brings the
//!   daemon up and down; [`telemetry`] sets up logs; [`workload`] generates
//!   realistic traffic for benches and tests.

pub mod app;
pub mod codec;
pub mod config;
pub mod http;
pub mod ingest;
pub mod kernels;
pub mod series;
pub mod shard;
pub mod store;
pub mod telemetry;
pub mod workload;
