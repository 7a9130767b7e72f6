//! TLS on the client side, for every connection tallyd opens: the push sinks
//! (`tls_config` of remote_write and otlp_export) and `tallyd healthcheck`.
//! rustls with the ring provider, as on tallyd's own listeners, so one crypto
//! provider serves the whole binary.
//!
//! The server is checked against the CA file, or the system's roots when none
//! is given; a client certificate is presented when both its files are set;
//! `insecure_skip_verify` accepts any server certificate (signatures are
//! still checked, so the handshake is sound, the peer simply unauthenticated).

use std::path::Path;
use std::sync::Arc;

use hyper_rustls::ConfigBuilderExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::TlsConfig;

/// Why client TLS settings were refused: the file or setting, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientTlsError(String);

impl From<String> for ClientTlsError {
    fn from(message: String) -> Self {
        ClientTlsError(message)
    }
}

/// rustls client settings as `tls` says.
pub fn client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, ClientTlsError> {
    let file_error = |key: &str, path: &Path, e: &dyn std::fmt::Display| {
        ClientTlsError(format!("{key} {}: {e}", path.display()))
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientTlsError(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new()))
    } else if let Some(ca_file) = &tls.ca_file {
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| file_error("ca_file", ca_file, &e))?;
        for cert in certs {
            let cert = cert.map_err(|e| file_error("ca_file", ca_file, &e))?;
            roots
                .add(cert)
                .map_err(|e| file_error("ca_file", ca_file, &e))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .with_native_roots()
            .map_err(|e| ClientTlsError(format!("the system's CA certificates: {e}")))?
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| file_error("cert_file", cert_file, &e))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| file_error("key_file", key_file, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientTlsError(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
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
