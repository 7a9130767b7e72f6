//! The push side of the config: `remote_write` targets, in the shape of
//! Prometheus' own `remote_write` block so an operator can paste theirs, the
//! queue the other sinks share, and the `external_labels` every pushed series
//! carries.
//!
//! Checks that span sections (a sink sending native histograms that are not
//! computed, two sinks with one name) are in [`check_sinks`], run after the
//! tree is read.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::model::Config;
use super::otlp_export::OtlpProtocol;
use super::values::{HumanDuration, ThreadCount};

/// One `remote_write` target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWrite {
    /// Where to POST, `http://` or `https://`.
    pub url: SinkUrl,
    /// The `sink` label on tallyd's own metrics for this target. Default: the
    /// url's host, port and path.
    #[serde(default)]
    pub name: Option<String>,
    /// Longest a request may take, connection included. Default 30s.
    #[serde(default = "RemoteWrite::default_timeout")]
    pub remote_timeout: HumanDuration,
    /// Extra HTTP headers (a tenant's `X-Scope-OrgID`...). The protocol's own
    /// headers cannot be replaced.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization: <type> <credentials>` header.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// TLS towards an `https://` url.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Push timers, histograms and distributions as native histograms (needs
    /// `aggregation.native_histograms.enabled: true`). Default false.
    #[serde(default)]
    pub send_native_histograms: bool,
    /// Remote write 1.0 (`prometheus.WriteRequest`, the default) or 2.0
    /// (`io.prometheus.write.v2.Request`, falling back to 1.0 when the
    /// receiver does not take it).
    #[serde(default)]
    pub protobuf_message: ProtobufMessage,
    /// The queue in front of the target.
    #[serde(default)]
    pub queue_config: QueueConfig,
}

impl RemoteWrite {
    fn default_timeout() -> HumanDuration {
        HumanDuration::from_secs(30)
    }

    /// The `sink` label: `name`, or the url without its scheme.
    pub fn sink_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => {
                let url = self.url.as_str();
                url.split_once("://")
                    .map_or(url, |(_, rest)| rest)
                    .to_owned()
            }
        }
    }
}

/// `basic_auth`: a username and one of `password`, `password_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user.
    pub username: String,
    /// The password, inline.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (read at start and on reload; a trailing
    /// newline is dropped).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// `authorization`: a type and one of `credentials`, `credentials_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme. Default `Bearer`.
    #[serde(default = "Authorization::default_type", rename = "type")]
    pub kind: String,
    /// The credentials, inline.
    #[serde(default)]
    pub credentials: Option<String>,
    /// A file holding the credentials (a trailing newline is dropped).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

impl Authorization {
    fn default_type() -> String {
        "Bearer".to_owned()
    }
}

/// `tls_config`, as Prometheus spells it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA certificates that sign the server's certificate. Default: the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (with `key_file`) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's PEM private key.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry. Default: the url's host.
    pub server_name: Option<String>,
    /// Accept any server certificate. Never in production.
    pub insecure_skip_verify: bool,
}

/// Which remote-write message a sink sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProtobufMessage {
    /// Remote write 1.0.
    #[default]
    #[serde(rename = "prometheus.WriteRequest")]
    V1,
    /// Remote write 2.0.
    #[serde(rename = "io.prometheus.write.v2.Request")]
    V2,
}

/// `queue_config`: how much a sink holds and how it retries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples held while the target cannot take them; past it the oldest are
    /// dropped and counted. Default 10000.
    pub capacity: NonZeroUsize,
    /// Most samples (a native histogram counts as one) in one request.
    /// Default 2000.
    pub max_samples_per_send: NonZeroUsize,
    /// Accepted as Prometheus has it; tallyd sends each window as it closes, so
    /// no batch waits longer than a window. Default 5s.
    pub batch_send_deadline: HumanDuration,
    /// First wait before a retry, doubled on each failure. Default 30ms.
    pub min_backoff: HumanDuration,
    /// Longest wait between retries. Default 5s.
    pub max_backoff: HumanDuration,
    /// Retry requests answered 429 (honouring `Retry-After`) instead of
    /// dropping them. Default false.
    pub retry_on_http_429: bool,
    /// Requests in flight at once, each with distinct series: `auto` (one per
    /// core) or a number. Default `auto`.
    pub max_shards: ThreadCount,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: NonZeroUsize::new(10_000).unwrap(),
            max_samples_per_send: NonZeroUsize::new(2_000).unwrap(),
            batch_send_deadline: HumanDuration::from_secs(5),
            min_backoff: HumanDuration::from_millis(30),
            max_backoff: HumanDuration::from_secs(5),
            retry_on_http_429: false,
            max_shards: ThreadCount::Auto,
        }
    }
}

/// `queue_config` of the Graphite and OTLP sinks: the keys of remote_write's
/// that mean the same there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushQueue {
    /// Samples (lines, data points) held while the target cannot take them;
    /// past it the oldest are dropped and counted. Default 100000.
    pub capacity: NonZeroUsize,
    /// Most samples in one send. Default 5000.
    pub max_samples_per_send: NonZeroUsize,
    /// First wait before a retry, doubled on each failure. Default 100ms.
    pub min_backoff: HumanDuration,
    /// Longest wait between retries. Default 10s.
    pub max_backoff: HumanDuration,
    /// Sends in flight at once, each with distinct series: `auto` (one per
    /// core) or a number. Default 1.
    pub max_shards: ThreadCount,
}

impl Default for PushQueue {
    fn default() -> Self {
        PushQueue {
            capacity: NonZeroUsize::new(100_000).unwrap(),
            max_samples_per_send: NonZeroUsize::new(5_000).unwrap(),
            min_backoff: HumanDuration::from_millis(100),
            max_backoff: HumanDuration::from_secs(10),
            max_shards: ThreadCount::Count(NonZeroUsize::MIN),
        }
    }
}

/// A sink's url: `http://` or `https://` with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkUrl(String);

impl SinkUrl {
    /// The url as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `https://`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or_else(|| format!("{text:?} is not an http:// or https:// url"))?;
        let host = rest.split(['/', '?']).next().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{text:?} has no host"));
        }
        Ok(SinkUrl(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for SinkUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SinkUrl::parse(text.trim()).map_err(de::Error::custom)
    }
}

impl Serialize for SinkUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// `external_labels`: label name to value, `${VAR}` expanded from the
/// environment when the config is read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExternalLabels(BTreeMap<String, String>);

impl ExternalLabels {
    /// The labels, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn check(raw: BTreeMap<String, String>) -> Result<Self, String> {
        let mut labels = BTreeMap::new();
        for (name, value) in raw {
            if !is_label_name(&name) || name.starts_with("__") {
                return Err(format!(
                    "{name:?} is not a label name (letters, digits and _, not starting with a digit or __)"
                ));
            }
            let value = expand_env(&value, |var| std::env::var(var).ok())
                .map_err(|e| format!("{name}: {e}"))?;
            if value.is_empty() {
                return Err(format!(
                    "{name}: the value is empty, which Prometheus reads as no label"
                ));
            }
            labels.insert(name, value);
        }
        Ok(ExternalLabels(labels))
    }
}

impl<'de> Deserialize<'de> for ExternalLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        ExternalLabels::check(raw).map_err(de::Error::custom)
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Why `${VAR}` could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// The variable is not set.
    Unset(String),
    /// `${` without its `}`.
    Unclosed,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset(var) => write!(f, "environment variable {var} is not set"),
            ExpandError::Unclosed => f.write_str("`${` without a closing `}`"),
        }
    }
}

/// `text` with every `${VAR}` replaced by `lookup(VAR)`; `$$` is a `$`.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = after.strip_prefix('{') {
            let end = after.find('}').ok_or(ExpandError::Unclosed)?;
            let var = &after[..end];
            out.push_str(&lookup(var).ok_or_else(|| ExpandError::Unset(var.to_owned()))?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Headers a sink sets itself, which `headers` may not replace.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "user-agent",
    "x-prometheus-remote-write-version",
];

/// The checks that span keys: `(key path, message)` of the first failure.
pub fn check_sinks(config: &Config) -> Result<(), (String, String)> {
    let mut names: Vec<String> = Vec::new();
    let mut unique = |key: String, name: String| {
        if names.contains(&name) {
            return Err((
                key,
                format!("{name:?} names another sink too; give each a distinct name"),
            ));
        }
        names.push(name);
        Ok(())
    };
    for (i, sink) in config.graphite.iter().enumerate() {
        let key = |k: &str| format!("graphite[{i}].{k}");
        unique(key("name"), sink.sink_name())?;
        check_backoff(
            &key,
            sink.queue_config.min_backoff,
            sink.queue_config.max_backoff,
        )?;
        if config.window.interval.get().subsec_nanos() != 0 {
            return Err((
                "window.interval".into(),
                format!(
                    "Graphite timestamps are whole seconds, so graphite[{i}] needs a window.interval of whole seconds, not {}",
                    config.window.interval
                ),
            ));
        }
    }
    for (i, sink) in config.otlp_export.iter().enumerate() {
        let key = |k: &str| format!("otlp_export[{i}].{k}");
        unique(key("name"), sink.sink_name())?;
        check_backoff(
            &key,
            sink.queue_config.min_backoff,
            sink.queue_config.max_backoff,
        )?;
        if let Some(tls) = &sink.tls {
            check_tls(&key("tls"), tls, &sink.endpoint)?;
        }
        let reserved: &[&str] = match sink.protocol {
            OtlpProtocol::Grpc => &[
                "content-type",
                "te",
                "user-agent",
                "grpc-encoding",
                "grpc-accept-encoding",
                "grpc-timeout",
            ],
            OtlpProtocol::HttpProtobuf => &[
                "content-type",
                "content-encoding",
                "content-length",
                "host",
                "user-agent",
            ],
        };
        check_headers(&key("headers"), &sink.headers, reserved)?;
    }
    for (i, sink) in config.remote_write.iter().enumerate() {
        let key = |k: &str| format!("remote_write[{i}].{k}");
        if sink.send_native_histograms && !config.aggregation.native_histograms.enabled {
            return Err((
                key("send_native_histograms"),
                "needs native histograms computed: set aggregation.native_histograms.enabled: true"
                    .into(),
            ));
        }
        unique(key("name"), sink.sink_name())?;
        if sink.basic_auth.is_some() && sink.authorization.is_some() {
            return Err((
                key("authorization"),
                "set at most one of basic_auth and authorization".into(),
            ));
        }
        if let Some(auth) = &sink.basic_auth
            && auth.password.is_some() == auth.password_file.is_some()
        {
            return Err((
                key("basic_auth"),
                "set exactly one of password and password_file".into(),
            ));
        }
        if let Some(auth) = &sink.authorization
            && auth.credentials.is_some() == auth.credentials_file.is_some()
        {
            return Err((
                key("authorization"),
                "set exactly one of credentials and credentials_file".into(),
            ));
        }
        if let Some(tls) = &sink.tls_config {
            check_tls(&key("tls_config"), tls, &sink.url)?;
        }
        check_headers(&key("headers"), &sink.headers, RESERVED_HEADERS)?;
        let queue = &sink.queue_config;
        check_backoff(&key, queue.min_backoff, queue.max_backoff)?;
    }
    Ok(())
}

fn check_tls(key: &str, tls: &TlsConfig, url: &SinkUrl) -> Result<(), (String, String)> {
    if !url.is_https() {
        return Err((key.into(), "applies to an https:// url only".into()));
    }
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err((key.into(), "cert_file and key_file go together".into()));
    }
    Ok(())
}

fn check_headers(
    key: &str,
    headers: &BTreeMap<String, String>,
    reserved: &[&str],
) -> Result<(), (String, String)> {
    for header in headers.keys() {
        if reserved.contains(&header.to_ascii_lowercase().as_str()) {
            return Err((
                key.into(),
                format!("{header} is set by the sink itself and cannot be replaced"),
            ));
        }
    }
    Ok(())
}

fn check_backoff(
    key: &impl Fn(&str) -> String,
    min: HumanDuration,
    max: HumanDuration,
) -> Result<(), (String, String)> {
    if min > max {
        return Err((
            key("queue_config.min_backoff"),
            "must not exceed max_backoff".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_from_the_lookup_and_unset_ones_are_errors() {
        let env = |var: &str| (var == "NODE_NAME").then(|| "node-7".to_owned());
        assert_eq!(expand_env("${NODE_NAME}", env).unwrap(), "node-7");
        assert_eq!(expand_env("a-${NODE_NAME}-b", env).unwrap(), "a-node-7-b");
        assert_eq!(expand_env("$$5 and $x", env).unwrap(), "$5 and $x");
        assert_eq!(
            expand_env("${HOST}", env),
            Err(ExpandError::Unset("HOST".into()))
        );
        assert_eq!(expand_env("${HOST", env), Err(ExpandError::Unclosed));
    }

    #[test]
    fn a_sink_is_named_by_its_url_unless_named() {
        let url = SinkUrl::parse("http://mimir:9009/api/v1/push").unwrap();
        let mut sink: RemoteWrite =
            crate::config::parse_yaml("url: http://mimir:9009/api/v1/push\n", "<test>").unwrap();
        assert_eq!(sink.url, url);
        assert_eq!(sink.sink_name(), "mimir:9009/api/v1/push");
        sink.name = Some("mimir".into());
        assert_eq!(sink.sink_name(), "mimir");
        assert!(SinkUrl::parse("mimir:9009").is_err());
        assert!(SinkUrl::parse("http:///x").is_err());
    }
}
