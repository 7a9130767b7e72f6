//! statsd_exporter-compatible name mapping: `mapping.file` turns Graphite-style
//! dotted names into Prometheus names and labels.
//!
//! The file is statsd_exporter's (and Grafana Alloy's) format, read with the
//! config's error reporting ([`load`]); keys tallyd cannot honour are refused
//! with their position, never ignored. [`Mapper::map`] is the matcher. It is
//! pure and allocates, so it must never run per line: ingest routers keep a
//! cache from name to outcome (`shard::router`), and a shard maps a series once,
//! when it creates it, keeping the result in the series' metadata.

mod file;
mod rules;
mod template;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use file::{Action, MappingFile};
pub use rules::{DEFAULT_BUCKETS, Mapped, Mapper, Mapping, Rule};
pub use template::escape_metric_name;

use crate::config::{Config, ConfigError, InvalidConfig};

/// Reads and compiles the mapping file `config` names (`mapping.file`), if any.
pub fn load(config: &Config) -> Result<Option<Mapper>, ConfigError> {
    let Some(path) = &config.mapping.file else {
        return Ok(None);
    };
    load_file(path, config.aggregation.native_histograms.enabled).map(Some)
}

/// Reads and compiles the mapping file at `path`.
pub fn load_file(path: &Path, native_enabled: bool) -> Result<Mapper, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadMapping {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string(), native_enabled).map_err(ConfigError::Invalid)
}

/// Compiles mapping file text; `source` names it in errors.
pub fn parse(text: &str, source: &str, native_enabled: bool) -> Result<Mapper, InvalidConfig> {
    let file: MappingFile = if text.trim().is_empty() {
        MappingFile::default()
    } else {
        crate::config::parse_yaml(text, source)?
    };
    Mapper::compile(file, source, native_enabled)
}
