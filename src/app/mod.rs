//! Bringing the daemon up and down: the one place that sees every component.
//!
//! `app` owns start-up order and shutdown order; components never start each other.
//! Errors here are `anyhow`, since they end the process with a message for the
//! operator rather than being handled.

use anyhow::Context;

use crate::config::Config;

/// Runs the daemon with `config` until it is told to stop.
///
/// The pipeline (ingest, shards, windows, HTTP) is not built yet: this logs the
/// effective listeners and returns an error saying so, so that nobody mistakes a
/// process that only loaded its config for a running aggregator.
pub fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&config.logging)
        .map_err(|e| anyhow::anyhow!(e))
        .context("cannot set up logging (check RUST_LOG)")?;
    let udp: Vec<String> = config.listen.udp.iter().map(|a| a.to_string()).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        udp = ?udp,
        http = %config.listen.http.get(),
        shards = config.shards.resolve().get(),
        "configuration loaded"
    );
    anyhow::bail!(
        "the aggregation pipeline is not implemented in this build yet; \
         the configuration is valid (use `tallyd check-config PATH` to print it)"
    )
}
