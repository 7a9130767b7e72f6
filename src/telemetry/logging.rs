//! Log setup: `tracing` events to stderr, pretty or JSON, level from the config.
//!
//! `RUST_LOG`, when set, replaces the configured level entirely, so an operator can
//! turn on `RUST_LOG=tallyd::config=debug` for one module without editing the file.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Logging};

/// Installs the global subscriber. Call once, before anything logs.
///
/// Returns an error if `RUST_LOG` does not parse, or a subscriber is already set.
pub fn init_logging(logging: &Logging) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::new(logging.level.as_str()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match logging.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
}
