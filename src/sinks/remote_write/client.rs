//! One remote-write target over HTTP: the request each protocol asks for, its
//! authentication and TLS, and what the answer means for the data.
//!
//! Built on hyper's pooled client (keep-alive connections, HTTP/1.1) with
//! rustls for `https://`. Credential files are re-read for every request, so a
//! rotated token is picked up without a restart; the last good value is kept
//! when a read fails.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::RemoteWrite;
use crate::sinks::backoff::retry_after;
use crate::sinks::connect::{ClientError, HttpVersion, connector};
use crate::telemetry::SinkFailure;

/// Which message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// What an answer means for the data sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored. For 2.0: whether the receiver said how much it wrote (a 1.0
    /// receiver answers 2xx to a 2.0 body and stores nothing).
    Sent {
        /// `X-Prometheus-Remote-Write-*-Written` headers were present.
        written_headers: bool,
    },
    /// Worth sending again, after `after` when the receiver said so.
    Retry {
        /// Why it failed.
        failure: SinkFailure,
        /// `Retry-After`, in seconds.
        after: Option<Duration>,
    },
    /// Refused for good: dropped and counted, never retried.
    Reject {
        /// Why it failed.
        failure: SinkFailure,
        /// What the receiver said: status and the start of its body.
        message: String,
    },
    /// 415: the receiver does not take this protocol.
    Unsupported,
}

/// A secret given inline or in a file re-read per request.
#[derive(Debug)]
enum Secret {
    Inline(String),
    File { path: PathBuf, last: Mutex<String> },
}

impl Secret {
    fn new(
        sink: &str,
        inline: Option<&String>,
        file: Option<&PathBuf>,
    ) -> Result<Self, ClientError> {
        match (inline, file) {
            (_, Some(path)) => Ok(Secret::File {
                last: Mutex::new(read_secret(sink, path)?),
                path: path.clone(),
            }),
            (inline, None) => Ok(Secret::Inline(inline.cloned().unwrap_or_default())),
        }
    }

    fn get(&self, sink: &str) -> String {
        match self {
            Secret::Inline(value) => value.clone(),
            Secret::File { path, last } => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                match read_secret(sink, path) {
                    Ok(value) => *last = value,
                    Err(err) => tracing::warn!(%err, "keeping the last credentials read"),
                }
                last.clone()
            }
        }
    }
}

fn read_secret(sink: &str, path: &Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| ClientError::Read {
            sink: sink.to_owned(),
            path: path.to_owned(),
            source,
        })
}

#[derive(Debug)]
enum Auth {
    None,
    Basic { username: String, password: Secret },
    Header { kind: String, credentials: Secret },
}

/// A remote-write target.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: hyper::Uri,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    auth: Arc<Auth>,
    timeout: Duration,
    sink: Arc<str>,
}

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("tallyd/", env!("CARGO_PKG_VERSION"));

impl Client {
    /// A client for `config`, its files read and its TLS set up.
    pub fn new(config: &RemoteWrite) -> Result<Self, ClientError> {
        let sink = config.sink_name();
        let http_error = |message: String| ClientError::Http {
            sink: sink.clone(),
            message,
        };
        let uri: hyper::Uri = config
            .url
            .as_str()
            .parse()
            .map_err(|e| http_error(format!("url: {e}")))?;
        let mut headers = Vec::new();
        for (name, value) in &config.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| http_error(format!("headers: {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| http_error(format!("headers: {name}: {e}")))?;
            headers.push((name, value));
        }
        let auth = match (&config.basic_auth, &config.authorization) {
            (Some(basic), _) => Auth::Basic {
                username: basic.username.clone(),
                password: Secret::new(
                    &sink,
                    basic.password.as_ref(),
                    basic.password_file.as_ref(),
                )?,
            },
            (None, Some(authorization)) => Auth::Header {
                kind: authorization.kind.clone(),
                credentials: Secret::new(
                    &sink,
                    authorization.credentials.as_ref(),
                    authorization.credentials_file.as_ref(),
                )?,
            },
            (None, None) => Auth::None,
        };
        let connector = connector(
            &sink,
            config.url.is_https(),
            config.tls_config.as_ref(),
            config.remote_timeout.get(),
            HttpVersion::Http1,
        )?;
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client {
            http,
            uri,
            headers: Arc::new(headers),
            auth: Arc::new(auth),
            timeout: config.remote_timeout.get(),
            sink: sink.into(),
        })
    }

    /// Sends one compressed `body` of `protocol`.
    pub async fn send(&self, body: Bytes, protocol: Protocol) -> Outcome {
        let request = match self.request(body, protocol) {
            Ok(request) => request,
            Err(message) => {
                return Outcome::Reject {
                    failure: SinkFailure::ClientError,
                    message,
                };
            }
        };
        let exchange = async {
            let response = self.http.request(request).await?;
            let (parts, body) = response.into_parts();
            // Read the body so the connection can be reused; keep its start
            // for the log.
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Outcome::Retry {
                    failure: SinkFailure::Timeout,
                    after: None,
                };
            }
            Ok(Err(err)) => {
                tracing::debug!(sink = %self.sink, %err, "remote_write request failed");
                return Outcome::Retry {
                    failure: SinkFailure::Connection,
                    after: None,
                };
            }
            Ok(Ok(answer)) => answer,
        };
        classify(parts.status, &parts.headers, &body)
    }

    fn request(&self, body: Bytes, protocol: Protocol) -> Result<Request<Full<Bytes>>, String> {
        let (content_type, version) = match protocol {
            Protocol::V1 => ("application/x-protobuf", "0.1.0"),
            Protocol::V2 => (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "2.0.0",
            ),
        };
        let mut builder = Request::post(self.uri.clone())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", content_type)
            .header("User-Agent", USER_AGENT)
            .header("X-Prometheus-Remote-Write-Version", version);
        for (name, value) in self.headers.iter() {
            builder = builder.header(name, value);
        }
        match &*self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.get(&self.sink));
                builder = builder.header(
                    "Authorization",
                    format!("Basic {}", BASE64_STANDARD.encode(pair)),
                );
            }
            Auth::Header { kind, credentials } => {
                builder = builder.header(
                    "Authorization",
                    format!("{kind} {}", credentials.get(&self.sink)),
                );
            }
        }
        builder.body(Full::new(body)).map_err(|e| e.to_string())
    }
}

/// What an answer means, by status as the spec says: 2xx stored, 5xx and
/// (when the sink retries them) 429 worth retrying, any other 4xx refused for
/// good, 415 a protocol the receiver does not take.
pub fn classify(status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> Outcome {
    if status.is_success() {
        let written_headers = headers.keys().any(|name| {
            let name = name.as_str();
            name.starts_with("x-prometheus-remote-write-") && name.ends_with("-written")
        });
        return Outcome::Sent { written_headers };
    }
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return Outcome::Unsupported;
    }
    let after = headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, SystemTime::now()));
    if status.is_server_error() {
        return Outcome::Retry {
            failure: SinkFailure::ServerError,
            after,
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Outcome::Retry {
            failure: SinkFailure::TooManyRequests,
            after,
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(256)]);
    Outcome::Reject {
        failure: SinkFailure::ClientError,
        message: format!("{status}: {}", text.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_spec_says() {
        let none = hyper::HeaderMap::new();
        assert_eq!(
            classify(StatusCode::NO_CONTENT, &none, b""),
            Outcome::Sent {
                written_headers: false
            }
        );
        let mut written = hyper::HeaderMap::new();
        written.insert(
            "X-Prometheus-Remote-Write-Samples-Written",
            HeaderValue::from_static("3"),
        );
        assert_eq!(
            classify(StatusCode::NO_CONTENT, &written, b""),
            Outcome::Sent {
                written_headers: true
            }
        );
        let mut later = hyper::HeaderMap::new();
        later.insert("Retry-After", HeaderValue::from_static("7"));
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &later, b""),
            Outcome::Retry {
                failure: SinkFailure::ServerError,
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &later, b""),
            Outcome::Retry {
                failure: SinkFailure::TooManyRequests,
                after: Some(Duration::from_secs(7))
            }
        );
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(
            classify(StatusCode::UNSUPPORTED_MEDIA_TYPE, &none, b""),
            Outcome::Unsupported
        );
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, &none, b"out of order sample\n"),
            Outcome::Reject {
                failure: SinkFailure::ClientError,
                message: "400 Bad Request: out of order sample".into()
            }
        );
    }
}
