//! tallyd's own observability: log setup and the counters behind its `tallyd_*` metrics.
//!
//! Nothing here is on the hot path; ingest and shards bump counters (batched per
//! receive call or window) that `http` reads.

mod counters;
mod gpu;
mod kernel_drops;
mod logging;
mod transport;

pub use counters::{
    ConnectionGuard, Counter, DropReason, FloatGauge, IngestCounters, LocalTally, ShardCounters,
    Telemetry,
};
pub use gpu::{GpuState, GpuStats};
pub use kernel_drops::udp_kernel_drops;
pub use logging::{init_logging, set_log_level};
pub use transport::Transport;
