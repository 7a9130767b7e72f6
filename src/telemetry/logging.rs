//! Log setup: `tracing` events to stderr, pretty or JSON, level from the config.
//!
//! `RUST_LOG`, when set, replaces the configured level entirely, so an operator can
//! turn on `RUST_LOG=tallyd::config=debug` for one module without editing the file.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::reload::{self, Handle};

use crate::config::{LogFormat, LogLevel, Logging};

/// Replaces the level filter of the installed subscriber.
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), reload::Error> + Send + Sync>;

/// How a reload changes the level, once logging is set up.
static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

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
        LogFormat::Pretty => {
            let builder = builder.with_filter_reloading();
            keep_handle(builder.reload_handle());
            builder.try_init()
        }
        LogFormat::Json => {
            let builder = builder.json().flatten_event(true).with_filter_reloading();
            keep_handle(builder.reload_handle());
            builder.try_init()
        }
    }
}

fn keep_handle<S: 'static>(handle: Handle<EnvFilter, S>) {
    let _ = SET_FILTER.set(Box::new(move |filter| handle.reload(filter)));
}

/// Applies a reloaded `logging.level`. Returns false, changing nothing, when
/// `RUST_LOG` decides the level or logging is not set up.
pub fn set_log_level(level: LogLevel) -> Result<bool, reload::Error> {
    if std::env::var("RUST_LOG").is_ok_and(|d| !d.is_empty()) {
        return Ok(false);
    }
    match SET_FILTER.get() {
        Some(set) => set(EnvFilter::new(level.as_str())).map(|()| true),
        None => Ok(false),
    }
}
