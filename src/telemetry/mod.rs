//! tallyd's own observability: log setup now, its `tallyd_*` metrics later.
//!
//! Nothing here is on the hot path; ingest and shards only bump counters that this
//! module reads.

mod logging;

pub use logging::init_logging;
