//! `tls_server_config` made into a rustls server: certificates read from
//! their files (paths relative to the web configuration file, as
//! exporter-toolkit resolves them), client certificates asked for, verified
//! and matched by SAN as the policy says, versions, TLS 1.2 suites and key
//! exchange groups chosen from the ring provider, the one crypto provider of
//! the whole binary.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme, SupportedCipherSuite,
};

use super::WebError;
use crate::config::{CipherSuite, ClientAuthType, Curve, TlsServerConfig, TlsVersion};

/// A rustls server for `tls`, offering `alpn` (most preferred first);
/// relative paths are read from `dir`.
pub fn server_config(
    tls: &TlsServerConfig,
    dir: &Path,
    alpn: &[&[u8]],
) -> Result<ServerConfig, WebError> {
    let provider = Arc::new(provider(tls));
    let chain = certificates(
        pem(&tls.cert, &tls.cert_file, dir, "cert_file")?,
        "cert_file",
    )?;
    let key_pem = pem(&tls.key, &tls.key_file, dir, "key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| tls_error(format!("key_file: no private key: {e}")))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::TLS12, &rustls::version::TLS12),
        (TlsVersion::TLS13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| {
        (tls.min_version.unwrap_or(TlsVersion::TLS12)
            ..=tls.max_version.unwrap_or(TlsVersion::TLS13))
            .contains(v)
    })
    .map(|(_, v)| v)
    .collect();
    let verifier = client_verifier(tls, dir, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| tls_error(format!("min_version, max_version, cipher_suites: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls_error(format!("cert_file and key_file: {e}")))?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// ring, narrowed to the TLS 1.2 suites and the groups the file names.
fn provider(tls: &TlsServerConfig) -> CryptoProvider {
    let mut provider = ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let tls12: Vec<SupportedCipherSuite> =
            tls.cipher_suites.iter().map(|s| cipher_suite(*s)).collect();
        provider.cipher_suites = ring::DEFAULT_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .chain(tls12)
            .collect();
    }
    if !tls.curve_preferences.is_empty() {
        provider.kx_groups = tls
            .curve_preferences
            .iter()
            .map(|c| match c {
                Curve::X25519 => ring::kx_group::X25519,
                Curve::CurveP256 => ring::kx_group::SECP256R1,
                Curve::CurveP384 => ring::kx_group::SECP384R1,
            })
            .collect();
    }
    provider
}

fn cipher_suite(suite: CipherSuite) -> SupportedCipherSuite {
    use ring::cipher_suite as s;
    match suite {
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
            s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
            s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => {
            s::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => {
            s::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            s::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
    }
}

/// What `client_auth_type` asks of clients.
fn client_verifier(
    tls: &TlsServerConfig,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebError> {
    let policy = tls.client_auth_type;
    if policy == ClientAuthType::NoClientCert {
        return Ok(WebPkiClientVerifier::no_client_auth());
    }
    if !policy.verifies() {
        return Ok(Arc::new(AnyClientCert {
            mandatory: policy.requires(),
            algorithms: provider.signature_verification_algorithms,
        }));
    }
    let ca = pem(&tls.client_ca, &tls.client_ca_file, dir, "client_ca_file")?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca, "client_ca_file")? {
        roots
            .add(cert)
            .map_err(|e| tls_error(format!("client_ca_file: {e}")))?;
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !policy.requires() {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder
        .build()
        .map_err(|e| tls_error(format!("client_ca_file: {e}")))?;
    if tls.client_allowed_sans.is_empty() {
        return Ok(verifier);
    }
    let allowed = tls
        .client_allowed_sans
        .iter()
        .map(|san| AllowedSan::parse(san))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(SanChecked {
        inner: verifier,
        allowed,
    }))
}

/// The PEM bytes given inline or in a file.
fn pem(
    inline: &Option<String>,
    file: &Option<std::path::PathBuf>,
    dir: &Path,
    key: &'static str,
) -> Result<Vec<u8>, WebError> {
    if let Some(text) = inline {
        return Ok(text.as_bytes().to_vec());
    }
    let Some(file) = file else {
        return Err(tls_error(format!("{key} is required")));
    };
    let path = dir.join(file);
    std::fs::read(&path).map_err(|source| WebError::Read { path, source })
}

fn certificates(pem: Vec<u8>, key: &str) -> Result<Vec<CertificateDer<'static>>, WebError> {
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{key}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{key}: no PEM certificate in it")));
    }
    Ok(certs)
}

fn tls_error(message: String) -> WebError {
    WebError::Tls(message)
}

/// `RequestClientCert` and `RequireAnyClientCert`: a certificate is taken
/// unverified, but the client must still prove it holds the key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One entry of `client_allowed_sans`.
#[derive(Debug)]
enum AllowedSan {
    Dns(String),
    Ip(ServerName<'static>),
}

impl AllowedSan {
    fn parse(san: &str) -> Result<AllowedSan, WebError> {
        if let Ok(ip) = san.parse::<IpAddr>() {
            return Ok(AllowedSan::Ip(ServerName::IpAddress(ip.into())));
        }
        match ServerName::try_from(san) {
            Ok(ServerName::DnsName(_)) => Ok(AllowedSan::Dns(san.to_ascii_lowercase())),
            _ => Err(tls_error(format!(
                "client_allowed_sans: {san:?}: only DNS names and IP addresses are matched"
            ))),
        }
    }

    /// Whether the certificate carries this name (DNS names compared exactly,
    /// as exporter-toolkit does, wildcards included).
    fn matches(&self, cert: &webpki::EndEntityCert<'_>) -> bool {
        match self {
            AllowedSan::Dns(name) => cert
                .valid_dns_names()
                .any(|presented| presented.eq_ignore_ascii_case(name)),
            AllowedSan::Ip(ip) => cert.verify_is_valid_for_subject_name(ip).is_ok(),
        }
    }
}

/// A verified client certificate must also carry one of the allowed SANs.
#[derive(Debug)]
struct SanChecked {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<AllowedSan>,
}

impl ClientCertVerifier for SanChecked {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self.allowed.iter().any(|san| san.matches(&cert)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
