//! tallyd's own observability: log setup, and the `tallyd_*` metrics: their
//! typed catalogue (`catalogue`), the counters behind them (`Telemetry`), and
//! their collection at scrape time (`Telemetry::collect`).
//!
//! Nothing here is on the hot path; ingest and shards bump counters (batched per
//! receive call or window) that `http` renders.

mod access;
mod catalogue;
mod collect;
mod counters;
mod gpu;
mod kernel_drops;
mod latency;
mod logging;
mod sinks;
mod transport;

pub use access::{AccessCounters, ConnectionListener, HttpRefusal, Listener};
pub use catalogue::{CATALOGUE, Family, Kind};
pub use collect::{Collector, ScrapeFacts};
pub use counters::{
    ConnectionGuard, Counter, DropReason, FloatGauge, IngestCounters, LocalTally, ShardCounters,
    Telemetry, unix_seconds,
};
pub use gpu::{GpuState, GpuStats};
pub use kernel_drops::udp_kernel_drops;
pub use latency::{HistogramSnapshot, LATENCY_BOUNDS, LatencyHistogram, unix_nanos};
pub use logging::{init_logging, set_log_level};
pub use sinks::{SinkDropReason, SinkFailure, SinkRegistry, SinkStats};
pub use transport::Transport;
