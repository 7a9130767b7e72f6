//! tallyd: a StatsD/DogStatsD metrics aggregation daemon.
//!
//! The binary is a thin shell around this library so that benches, fuzz targets
//! and integration tests exercise the same code the daemon runs. Data flows
//! `codec` (bytes to borrowed messages) onward; `config` describes every knob and
//! refuses invalid values at load time; `app` brings the daemon up and down.
//! DESIGN.md in the project's documentation is the map of the full pipeline.

pub mod app;
pub mod codec;
pub mod config;
pub mod kernels;
pub mod series;
pub mod shard;
pub mod telemetry;
pub mod workload;
