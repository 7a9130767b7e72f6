//! OTLP over HTTP with protobuf bodies: `POST /v1/metrics`,
//! `Content-Type: application/x-protobuf`, gzip when asked, on hyper's
//! pooled client with the sinks' shared connector.
//!
//! Answers as the OTLP specification says: 2xx is taken (its body an
//! `ExportMetricsServiceResponse`, maybe with a partial success); 429, 502,
//! 503 and 504 are retried, after `Retry-After` when given; anything else is
//! a refusal.

use std::io::Write;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;

use super::Reply;
use crate::config::{OtlpCompression, OtlpExport};
use crate::sinks::backoff::retry_after;
use crate::sinks::connect::{ClientError, HttpVersion, connector};
use crate::telemetry::SinkFailure;

/// One collector, over HTTP.
pub struct HttpExporter {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    gzip: bool,
    timeout: Duration,
}

impl HttpExporter {
    /// A client for `config.endpoint`, with `/v1/metrics` added when the
    /// url has no path.
    pub fn new(config: &OtlpExport) -> Result<Self, ClientError> {
        let sink = config.sink_name();
        let http_error = |message: String| ClientError::Http {
            sink: sink.clone(),
            message,
        };
        let mut url = config.endpoint.as_str().to_owned();
        let path = url
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split_once('/')
            .map_or("", |(_, path)| path);
        if path.is_empty() {
            url = format!("{}/v1/metrics", url.trim_end_matches('/'));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| http_error(format!("endpoint: {e}")))?;
        let mut headers = Vec::new();
        for (name, value) in &config.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| http_error(format!("headers: {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| http_error(format!("headers: {name}: {e}")))?;
            headers.push((name, value));
        }
        let connector = connector(
            &sink,
            config.endpoint.is_https(),
            config.tls.as_ref(),
            config.timeout.get(),
            HttpVersion::Http1,
        )?;
        Ok(HttpExporter {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            uri,
            headers,
            gzip: config.compression == OtlpCompression::Gzip,
            timeout: config.timeout.get(),
        })
    }

    /// Sends one encoded `ExportMetricsServiceRequest`.
    pub async fn export(&self, body: Bytes) -> Reply {
        let mut builder = Request::post(self.uri.clone())
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", concat!("tallyd/", env!("CARGO_PKG_VERSION")));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let body = if self.gzip {
            builder = builder.header("Content-Encoding", "gzip");
            let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            let _ = gz.write_all(&body);
            Bytes::from(gz.finish().unwrap_or_default())
        } else {
            body
        };
        let request = match builder.body(Full::new(body)) {
            Ok(request) => request,
            Err(e) => {
                return Reply::Refused {
                    failure: SinkFailure::ClientError,
                    message: e.to_string(),
                };
            }
        };
        let exchange = async {
            let response = self.http.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((parts, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Reply::Retry {
                failure: SinkFailure::Timeout,
                after: None,
            },
            Ok(Err(err)) => {
                tracing::debug!(%err, "OTLP export failed");
                Reply::Retry {
                    failure: SinkFailure::Connection,
                    after: None,
                }
            }
            Ok(Ok((parts, body))) => judge(parts.status, &parts.headers, &body),
        }
    }
}

/// What an answer means.
fn judge(status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> Reply {
    if status.is_success() {
        let response = ExportMetricsServiceResponse::decode(body).unwrap_or_default();
        return Reply::Taken(response.partial_success);
    }
    let after = headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, SystemTime::now()));
    let failure = match status.as_u16() {
        429 => SinkFailure::TooManyRequests,
        500..=599 => SinkFailure::ServerError,
        _ => SinkFailure::ClientError,
    };
    match status.as_u16() {
        429 | 502 | 503 | 504 => Reply::Retry { failure, after },
        _ => Reply::Refused {
            failure,
            message: format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(256)]).trim()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_statuses_the_spec_names_are_retried() {
        let mut later = hyper::HeaderMap::new();
        later.insert("Retry-After", HeaderValue::from_static("3"));
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, &later, b""),
            Reply::Retry {
                failure: SinkFailure::TooManyRequests,
                after: Some(Duration::from_secs(3)),
            }
        );
        for status in [502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(judge(status, &later, b""), Reply::Retry { .. }));
        }
        for status in [400, 401, 413, 500, 501] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(judge(status, &later, b""), Reply::Refused { .. }),
                "{status}"
            );
        }
        assert_eq!(judge(StatusCode::OK, &later, b""), Reply::Taken(None));
    }
}
