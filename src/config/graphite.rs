//! The `graphite` sinks: carbon plaintext receivers (carbon-cache,
//! carbon-relay, go-carbon, VictoriaMetrics' Graphite port) fed every window
//! with Etsy StatsD's names.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::sinks::{PushQueue, expand_env};
use super::values::HumanDuration;

/// One `graphite` target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graphite {
    /// `host:port` of the carbon plaintext receiver (port 2003 usually). The
    /// host is looked up again at every connection.
    pub address: HostPort,
    /// The `sink` label on tallyd's own metrics for this target. Default: the
    /// address.
    #[serde(default)]
    pub name: Option<String>,
    /// The first path component of every metric (Etsy StatsD's
    /// `globalPrefix`); `${VAR}` is expanded from the environment. Default
    /// `stats`; empty for none.
    #[serde(default)]
    pub prefix: GraphitePrefix,
    /// `graphite` sends tags as Graphite 1.1 tags (`path;k=v`); `none` drops
    /// them. Default `graphite`.
    #[serde(default)]
    pub tags: GraphiteTags,
    /// Longest a connection may take to connect, take the lines and close.
    /// Default 10s.
    #[serde(default = "Graphite::default_timeout")]
    pub timeout: HumanDuration,
    /// The queue in front of the target; a send is one connection.
    #[serde(default)]
    pub queue_config: PushQueue,
}

impl Graphite {
    fn default_timeout() -> HumanDuration {
        HumanDuration::from_secs(10)
    }

    /// The `sink` label: `name`, or the address.
    pub fn sink_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.address.as_str().to_owned())
    }
}

/// How a series' tags reach Graphite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphiteTags {
    /// Graphite 1.1 tagged series: `path;k=v;k2=v2`.
    #[default]
    Graphite,
    /// No tags: series that differ only by tags share a path, so only the
    /// first is sent (the others are counted `name_conflict`).
    None,
}

/// `host:port`, with a port number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(String);

impl HostPort {
    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("{text:?} is not host:port (e.g. carbon:2003)"));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(format!("{text:?} has no host (use e.g. carbon:2003)"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(HostPort(text.to_owned())),
            _ => Err(format!("{text:?}: {port:?} is not a port number")),
        }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HostPort::parse(text.trim()).map_err(de::Error::custom)
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A Graphite path prefix: dot-separated components of `[A-Za-z0-9_-]`,
/// environment variables expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphitePrefix(String);

impl Default for GraphitePrefix {
    fn default() -> Self {
        GraphitePrefix("stats".to_owned())
    }
}

impl GraphitePrefix {
    /// The prefix, without a trailing dot; empty for none.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let expanded = expand_env(text, lookup).map_err(|e| e.to_string())?;
        let prefix = expanded.trim_matches('.');
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !prefix.is_empty() && !prefix.split('.').all(valid) {
            return Err(format!(
                "{expanded:?} is not a Graphite path prefix (dot-separated parts of letters, digits, _ and -)"
            ));
        }
        Ok(GraphitePrefix(prefix.to_owned()))
    }
}

impl fmt::Display for GraphitePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GraphitePrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        GraphitePrefix::parse(&text, |var| std::env::var(var).ok()).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_expand_and_must_be_graphite_paths() {
        let env = |var: &str| (var == "NODE").then(|| "node-7".to_owned());
        let parse = |text| GraphitePrefix::parse(text, env).map(|p| p.0);
        assert_eq!(parse("stats").unwrap(), "stats");
        assert_eq!(parse("stats.${NODE}.").unwrap(), "stats.node-7");
        assert_eq!(parse("").unwrap(), "");
        assert!(parse("stats..x").is_err());
        assert!(parse("a b").is_err());
        assert!(parse("${HOST}").unwrap_err().contains("HOST is not set"));
    }

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert!(HostPort::parse("carbon:2003").is_ok());
        assert!(HostPort::parse("[::1]:2003").is_ok());
        assert!(HostPort::parse("carbon").is_err());
        assert!(HostPort::parse(":2003").is_err());
        assert!(HostPort::parse("carbon:x").is_err());
        assert!(HostPort::parse("carbon:0").is_err());
    }

    #[test]
    fn a_minimal_target_takes_the_defaults() {
        let sink: Graphite = crate::config::parse_yaml("address: carbon:2003\n", "<test>").unwrap();
        assert_eq!(sink.prefix.as_str(), "stats");
        assert_eq!(sink.tags, GraphiteTags::Graphite);
        assert_eq!(sink.sink_name(), "carbon:2003");
        let err =
            crate::config::parse_yaml::<Graphite>("address: carbon:2003\ntags: yes\n", "<test>")
                .unwrap_err()
                .to_string();
        assert!(err.contains("tags"), "{err}");
    }

    #[test]
    fn graphite_needs_windows_of_whole_seconds_and_distinct_names() {
        let sink = "graphite: [{ address: \"carbon:2003\" }]\n";
        assert!(crate::config::parse(sink, "<test>").is_ok());
        let err =
            crate::config::parse(&format!("window: {{ interval: 1500ms }}\n{sink}"), "<test>")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("window.interval") && err.contains("whole seconds"),
            "{err}"
        );
        let twice = "graphite: [{ address: \"carbon:2003\" }, { address: \"carbon:2003\" }]\n";
        let err = crate::config::parse(twice, "<test>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("graphite[1].name"), "{err}");
    }
}
