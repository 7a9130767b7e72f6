//! The HTTP side: Prometheus exposition (text, OpenMetrics, protobuf with native
//! histograms), the JSON rollups API, health
//! (and the probe that `tallyd healthcheck` uses).
//!
//! Reads only: the store's snapshots and the telemetry counters. Never blocks a
//! shard, never writes series state.

mod probe;
mod protobuf;
mod rollups;
mod server;

pub use crate::exposition::{Format, write_value};
pub use probe::{ProbeError, ProbeTls, probe};
pub use rollups::{BadQuery, Query};
pub use server::{HttpState, ReloadHook, serve};
