//! How push sinks reach an HTTP target: a hyper connector for `http://` and
//! `https://`, TLS as [`client_config`] makes it (the CA file or the system's
//! roots, an optional client certificate, or no verification at all when
//! asked) with a fixed server name when one is set, HTTP/1.1 for remote write
//! and HTTP/2 for gRPC. Shared by every sink that speaks HTTP, so their TLS
//! settings mean the same everywhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::ServerName;

use crate::config::TlsConfig;
use crate::web::client_config;

/// Why a sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file the config names could not be read.
    #[error("sink {sink}: cannot read {}: {source}", path.display())]
    Read {
        /// The sink.
        sink: String,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS settings were refused.
    #[error("sink {sink}: TLS: {message}")]
    Tls {
        /// The sink.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// The url or a header is not valid HTTP.
    #[error("sink {sink}: {message}")]
    Http {
        /// The sink.
        sink: String,
        /// What is wrong.
        message: String,
    },
}

/// Which HTTP a connector negotiates over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 (remote write, OTLP over HTTP).
    Http1,
    /// HTTP/2 (gRPC).
    Http2,
}

/// A connector for one target: TLS per `tls` when `https`, plain otherwise.
pub fn connector(
    sink: &str,
    https: bool,
    tls: Option<&TlsConfig>,
    connect_timeout: Duration,
    version: HttpVersion,
) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    if !https {
        return Ok(HttpsConnector::from((http, Arc::new(plain_tls_config()))));
    }
    let config = tls_config(sink, tls)?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    let builder = match tls.and_then(|t| t.server_name.clone()) {
        Some(name) => {
            let name = ServerName::try_from(name).map_err(|e| ClientError::Tls {
                sink: sink.to_owned(),
                message: format!("server_name: {e}"),
            })?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Ok(match version {
        HttpVersion::Http1 => builder.enable_http1().wrap_connector(http),
        HttpVersion::Http2 => builder.enable_http2().wrap_connector(http),
    })
}

/// rustls settings for an `https://` target.
fn tls_config(sink: &str, tls: Option<&TlsConfig>) -> Result<rustls::ClientConfig, ClientError> {
    let default = TlsConfig::default();
    client_config(tls.unwrap_or(&default)).map_err(|e| ClientError::Tls {
        sink: sink.to_owned(),
        message: e.to_string(),
    })
}

/// TLS settings for a plain `http://` target, which never uses them.
fn plain_tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}
