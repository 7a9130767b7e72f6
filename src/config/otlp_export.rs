//! The `otlp_export` sinks: OpenTelemetry collectors and vendors' OTLP
//! endpoints fed every window, over gRPC or HTTP with protobuf bodies.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::sinks::{PushQueue, SinkUrl, TlsConfig, expand_env};
use super::values::HumanDuration;

/// One `otlp_export` target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExport {
    /// `http://` or `https://`: the collector's gRPC address
    /// (`http://collector:4317`), or for `http/protobuf` its base url
    /// (`/v1/metrics` is added when the url has no path) or full url.
    pub endpoint: SinkUrl,
    /// The `sink` label on tallyd's own metrics for this target. Default: the
    /// endpoint without its scheme.
    #[serde(default)]
    pub name: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Extra headers (gRPC metadata): an API key, a tenant.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `cumulative` (default: totals since the series appeared) or `delta`
    /// (each window's own values).
    #[serde(default)]
    pub temporality: OtlpTemporality,
    /// `gzip` (default) or `none`.
    #[serde(default)]
    pub compression: OtlpCompression,
    /// Longest one export may take, connection included. Default 10s.
    #[serde(default = "OtlpExport::default_timeout")]
    pub timeout: HumanDuration,
    /// TLS towards an `https://` endpoint (as remote_write's `tls_config`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Attributes of the resource every point belongs to; `${VAR}` expands
    /// from the environment. Default `{service.name: tallyd}`.
    #[serde(default = "ResourceAttributes::default_attributes")]
    pub resource_attributes: ResourceAttributes,
    /// The queue in front of the target; a send is one export request.
    #[serde(default)]
    pub queue_config: PushQueue,
}

impl OtlpExport {
    fn default_timeout() -> HumanDuration {
        HumanDuration::from_secs(10)
    }

    /// The `sink` label: `name`, or the endpoint without its scheme.
    pub fn sink_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => {
                let url = self.endpoint.as_str();
                url.split_once("://")
                    .map_or(url, |(_, rest)| rest)
                    .to_owned()
            }
        }
    }
}

/// How exports travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// `MetricsService/Export` over HTTP/2.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// `POST /v1/metrics` with an `application/x-protobuf` body.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// Totals or increases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpTemporality {
    /// Each point holds the total since its series appeared.
    #[default]
    Cumulative,
    /// Each point holds its window's values.
    Delta,
}

/// Body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// gzip.
    #[default]
    Gzip,
    /// None.
    None,
}

/// `resource_attributes`: key to value, `${VAR}` expanded when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceAttributes(BTreeMap<String, String>);

impl ResourceAttributes {
    fn default_attributes() -> Self {
        ResourceAttributes(BTreeMap::from([(
            "service.name".to_owned(),
            "tallyd".to_owned(),
        )]))
    }

    /// The attributes, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<'de> Deserialize<'de> for ResourceAttributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        let mut attributes = BTreeMap::new();
        for (key, value) in raw {
            if key.is_empty() {
                return Err(de::Error::custom("an attribute key cannot be empty"));
            }
            let value = expand_env(&value, |var| std::env::var(var).ok())
                .map_err(|e| de::Error::custom(format!("{key}: {e}")))?;
            attributes.insert(key, value);
        }
        Ok(ResourceAttributes(attributes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_target_takes_the_defaults() {
        let sink: OtlpExport =
            crate::config::parse_yaml("endpoint: http://collector:4317\n", "<test>").unwrap();
        assert_eq!(sink.protocol, OtlpProtocol::Grpc);
        assert_eq!(sink.temporality, OtlpTemporality::Cumulative);
        assert_eq!(sink.compression, OtlpCompression::Gzip);
        assert_eq!(sink.sink_name(), "collector:4317");
        assert_eq!(
            sink.resource_attributes.iter().collect::<Vec<_>>(),
            [("service.name", "tallyd")]
        );
        let sink: OtlpExport = crate::config::parse_yaml(
            "endpoint: https://otlp.example.com\nprotocol: http/protobuf\ntemporality: delta\n\
             compression: none\nresource_attributes: { host.name: a }\n",
            "<test>",
        )
        .unwrap();
        assert_eq!(sink.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(sink.temporality, OtlpTemporality::Delta);
        assert_eq!(
            sink.resource_attributes.iter().collect::<Vec<_>>(),
            [("host.name", "a")]
        );
        let err = crate::config::parse_yaml::<OtlpExport>(
            "endpoint: http://c:4317\nprotocol: http/json\n",
            "<test>",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("protocol"), "{err}");
    }
}
