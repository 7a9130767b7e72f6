//! Live reload: SIGHUP and `POST /-/reload` re-read the config file and apply
//! what can change without losing data.
//!
//! Applied from the next window on (every shard switches at the same window,
//! see `shard::LiveTuning`): `aggregation.quantiles`, `aggregation.histograms`
//! (series whose bounds change start those buckets afresh),
//! `aggregation.native_histograms` (a lower schema or another zero threshold
//! starts every native histogram afresh), `aggregation.gauge_sign`,
//! `limits.max_series`, `limits.series_idle_ttl`, and `gpu.*`. Applied at once: `logging.level` (unless `RUST_LOG` is set),
//! `mapping.file`, re-read on every reload (lines are mapped by the new
//! rules from each router's next flush; series named by the old rules stay
//! until they idle out), and `web.*`: the web configuration file and the
//! certificates and users it names are re-read on every reload too (new
//! connections get the new TLS settings, every request the new users). Every
//! other key needs a restart: a change to one is reported (logged and in the
//! answer) and not applied, so the daemon keeps running as it was started.
//!
//! A file that does not load is refused with its error logged, and the running
//! config stays. `tallyd_config_last_reload_success` and
//! `tallyd_config_last_reload_success_timestamp_seconds` say how the last
//! attempt went.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::{self, Config};
use crate::mapping;
use crate::shard::{LiveMapping, ShardContext, Tuning};
use crate::telemetry::{set_log_level, unix_seconds};
use crate::web::{LiveWeb, WebError};

/// Why a reload was refused; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Started on the built-in defaults: there is no file.
    #[error("tallyd was started without --config: there is no file to reload")]
    NoFile,
    /// The file does not load.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The new log level could not be installed.
    #[error("cannot apply logging.level: {0}")]
    LogLevel(#[from] tracing_subscriber::reload::Error),
    /// The web configuration file, or a file it names, does not load.
    #[error(transparent)]
    Web(#[from] WebError),
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadOutcome {
    /// Changed keys now in effect (or from the next window on).
    pub applied: Vec<&'static str>,
    /// Changed keys that keep their old value until a restart.
    pub restart_required: Vec<&'static str>,
}

/// Re-reads the config file on request.
pub struct Reloader {
    path: Option<PathBuf>,
    running: Mutex<Config>,
    /// The shards' settings, windowing, clock and telemetry.
    context: ShardContext,
    /// The mapping file in force, replaced by each reload.
    mapping: Arc<LiveMapping>,
    /// The web configuration in force, replaced by each reload.
    web: Arc<LiveWeb>,
}

/// One key of the config: its name, whether it changed, and whether a reload
/// may apply it.
struct Key {
    name: &'static str,
    changed: bool,
    live: bool,
}

impl Reloader {
    /// A reloader of the file at `path` (none: started on the built-in
    /// defaults, so there is nothing to re-read), for a daemon running `running`
    /// with the shards of `context`.
    pub fn new(
        path: Option<PathBuf>,
        running: Config,
        context: ShardContext,
        mapping: Arc<LiveMapping>,
        web: Arc<LiveWeb>,
    ) -> Reloader {
        context
            .telemetry
            .config_last_reload_success_seconds
            .set(unix_seconds());
        Reloader {
            path,
            running: Mutex::new(running),
            context,
            mapping,
            web,
        }
    }

    /// Re-reads and applies the file; an error (logged) leaves everything as it was.
    pub fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let result = self.try_reload();
        let telemetry = &self.context.telemetry;
        telemetry
            .config_last_reload_success
            .store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
        match &result {
            Ok(outcome) => {
                telemetry
                    .config_last_reload_success_seconds
                    .set(unix_seconds());
                tracing::info!(
                    applied = %outcome.applied.join(","),
                    restart_required = %outcome.restart_required.join(","),
                    "config reloaded"
                );
                if !outcome.restart_required.is_empty() {
                    tracing::warn!(
                        keys = %outcome.restart_required.join(","),
                        "config keys changed that need a restart; they keep their running values"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "config reload refused; the running config stays")
            }
        }
        result
    }

    fn try_reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let Some(path) = &self.path else {
            return Err(ReloadError::NoFile);
        };
        let new = config::load_file(path)?;
        // Read before anything changes: a broken mapping file keeps everything.
        let mapper = mapping::load(&new)?.map(Arc::new);
        let web = self.web.prepare(&new.web)?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let keys = compare(&running, &new);
        let changed = |live: bool| -> Vec<&'static str> {
            keys.iter()
                .filter(|k| k.changed && k.live == live)
                .map(|k| k.name)
                .collect()
        };
        let mut outcome = ReloadOutcome {
            applied: changed(true),
            restart_required: changed(false),
        };
        // The file is read again on every reload, changed path or not.
        if mapper.is_some() && !outcome.applied.contains(&"mapping.file") {
            outcome.applied.push("mapping.file");
        }
        if new.web.config_file.is_some() && !outcome.applied.contains(&"web.config_file") {
            outcome.applied.push("web.config_file");
        }
        // The running config takes the keys a reload applies, and only those.
        running.aggregation.quantiles = new.aggregation.quantiles.clone();
        running.aggregation.histograms = new.aggregation.histograms.clone();
        running.aggregation.gauge_sign = new.aggregation.gauge_sign;
        running.aggregation.native_histograms = new.aggregation.native_histograms;
        running.limits.max_series = new.limits.max_series;
        running.limits.series_idle_ttl = new.limits.series_idle_ttl;
        running.logging.level = new.logging.level;
        running.gpu = new.gpu;
        running.mapping = new.mapping.clone();
        running.web = new.web.clone();

        let context = &self.context;
        let now = context.clock.now_unix_ms();
        let next_window = context.windowing.containing(now).end_unix_ms;
        // `shards` needs a restart, so the running value is the started one.
        let shards = running.shards.resolve().get();
        let tuning = Tuning::from_config(&running, shards).with_mapping(mapper.as_deref());
        context.settings.live.publish(tuning, next_window);
        self.mapping.publish(mapper);
        self.web.install(web, &running.web);
        if let Some(offload) = &context.settings.offload {
            let quantiles: Vec<f64> = running.aggregation.quantiles.iter().collect();
            offload.reconfigure(&running.gpu, context.settings.kernels, quantiles);
        }
        if set_log_level(running.logging.level)? {
            tracing::debug!(level = running.logging.level.as_str(), "log level set");
        }
        Ok(outcome)
    }
}

/// Every key of the file, compared.
fn compare(old: &Config, new: &Config) -> Vec<Key> {
    let key = |name, changed, live| Key {
        name,
        changed,
        live,
    };
    vec![
        key("listen", old.listen != new.listen, false),
        key("shards", old.shards != new.shards, false),
        key(
            "shard_priority",
            old.shard_priority != new.shard_priority,
            false,
        ),
        key(
            "window.interval",
            old.window.interval != new.window.interval,
            false,
        ),
        key(
            "window.retain",
            old.window.retain != new.window.retain,
            false,
        ),
        key(
            "aggregation.quantiles",
            old.aggregation.quantiles != new.aggregation.quantiles,
            true,
        ),
        key(
            "aggregation.histograms",
            old.aggregation.histograms != new.aggregation.histograms,
            true,
        ),
        key(
            "aggregation.gauge_sign",
            old.aggregation.gauge_sign != new.aggregation.gauge_sign,
            true,
        ),
        key(
            "aggregation.native_histograms",
            old.aggregation.native_histograms != new.aggregation.native_histograms,
            true,
        ),
        key(
            "aggregation.timer_samples",
            old.aggregation.timer_samples != new.aggregation.timer_samples,
            false,
        ),
        key(
            "aggregation.kernel",
            old.aggregation.kernel != new.aggregation.kernel,
            false,
        ),
        key(
            "limits.max_series",
            old.limits.max_series != new.limits.max_series,
            true,
        ),
        key(
            "limits.series_idle_ttl",
            old.limits.series_idle_ttl != new.limits.series_idle_ttl,
            true,
        ),
        key(
            "limits.max_datagram_bytes",
            old.limits.max_datagram_bytes != new.limits.max_datagram_bytes,
            false,
        ),
        key(
            "limits.queue_wait",
            old.limits.queue_wait != new.limits.queue_wait,
            false,
        ),
        key(
            "limits.max_connections",
            old.limits.max_connections != new.limits.max_connections,
            false,
        ),
        key(
            "limits.connection_idle_timeout",
            old.limits.connection_idle_timeout != new.limits.connection_idle_timeout,
            false,
        ),
        key(
            "limits.max_grpc_message_bytes",
            old.limits.max_grpc_message_bytes != new.limits.max_grpc_message_bytes,
            false,
        ),
        key(
            "logging.level",
            old.logging.level != new.logging.level,
            true,
        ),
        key(
            "logging.format",
            old.logging.format != new.logging.format,
            false,
        ),
        key(
            "external_labels",
            old.external_labels != new.external_labels,
            false,
        ),
        key("remote_write", old.remote_write != new.remote_write, false),
        key("graphite", old.graphite != new.graphite, false),
        key("otlp_export", old.otlp_export != new.otlp_export, false),
        key(
            "aggregation.tag_styles",
            old.aggregation.tag_styles != new.aggregation.tag_styles,
            false,
        ),
        key("mapping.file", old.mapping.file != new.mapping.file, true),
        key("gpu.mode", old.gpu.mode != new.gpu.mode, true),
        key(
            "web.config_file",
            old.web.config_file != new.web.config_file,
            true,
        ),
        key(
            "web.enable_lifecycle",
            old.web.enable_lifecycle != new.web.enable_lifecycle,
            true,
        ),
        key(
            "gpu.min_window_samples",
            old.gpu.min_window_samples != new.gpu.min_window_samples,
            true,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_file_is_compared() {
        // A key added to the config must be classified here: the YAML of the
        // defaults names every leaf, and each must map to a compared key.
        let yaml = Config::default().to_yaml();
        let names: Vec<&str> = compare(&Config::default(), &Config::default())
            .iter()
            .map(|k| k.name)
            .collect();
        let mut section = "";
        for line in yaml
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('-'))
        {
            let indent = line.len() - line.trim_start().len();
            let name = line.trim().split(':').next().unwrap();
            if indent == 0 {
                section = name;
                if line.trim_end().ends_with(':') {
                    continue;
                }
                assert!(
                    names.contains(&name),
                    "top-level key {name} is not compared"
                );
            } else if indent == 2 && section != "listen" {
                let full = format!("{section}.{name}");
                assert!(names.contains(&full.as_str()), "key {full} is not compared");
            }
        }
    }

    #[test]
    fn changes_are_sorted_into_applied_and_restart_required() {
        let old = Config::default();
        let mut new = old.clone();
        new.limits.max_series = std::num::NonZeroU64::new(5).unwrap();
        new.window.retain = std::num::NonZeroU32::new(7).unwrap();
        let changed: Vec<(&str, bool)> = compare(&old, &new)
            .iter()
            .filter(|k| k.changed)
            .map(|k| (k.name, k.live))
            .collect();
        assert_eq!(
            changed,
            vec![("window.retain", false), ("limits.max_series", true)]
        );
    }
}
