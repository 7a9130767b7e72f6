//! How push sinks reach an HTTP target: a hyper connector for `http://` and
//! `https://`, TLS on rustls with the ring provider (the CA file or the
//! system's roots, an optional client certificate, a fixed server name, or no
//! verification at all when asked), HTTP/1.1 for remote write and HTTP/2 for
//! gRPC. Shared by every sink that speaks HTTP, so their TLS settings mean
//! the same everywhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{ConfigBuilderExt, FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::TlsConfig;

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
    let tls_error = |message: String| ClientError::Tls {
        sink: sink.to_owned(),
        message,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?;
    let default = TlsConfig::default();
    let tls = tls.unwrap_or(&default);
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new()))
    } else if let Some(ca_file) = &tls.ca_file {
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| tls_error(format!("ca_file {}: {e}", ca_file.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| tls_error(format!("ca_file {}: {e}", ca_file.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_error(format!("ca_file {}: {e}", ca_file.display())))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .with_native_roots()
            .map_err(|e| tls_error(format!("the system's CA certificates: {e}")))?
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(format!("cert_file {}: {e}", cert_file.display())))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| tls_error(format!("key_file {}: {e}", key_file.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// TLS settings for a plain `http://` target, which never uses them.
fn plain_tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// `insecure_skip_verify: true`: any certificate, any name (signatures still
/// checked, so the handshake is sound; the peer is simply not authenticated).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AcceptAnyCertificate {
    fn new() -> Self {
        AcceptAnyCertificate(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
