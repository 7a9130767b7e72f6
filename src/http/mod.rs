//! The HTTP side: Prometheus exposition (text, OpenMetrics, protobuf with native
//! histograms), the JSON rollups API, health
//! (and the probe that `tallyd healthcheck` uses).
//!
//! Reads only: the store's snapshots and the telemetry counters. Never blocks a
//! shard, never writes series state.

mod exposition;
mod probe;
mod protobuf;
mod rollups;
mod self_metrics;
mod server;

pub use exposition::{Format, write_value};
pub use probe::{ProbeError, probe};
pub use rollups::{BadQuery, Query};
pub use server::{HttpState, ReloadHook, serve};
