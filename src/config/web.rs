//! The web configuration file (`web.config_file`), in the Prometheus
//! exporter-toolkit format that `--web.config.file` reads, so an operator can
//! point tallyd at the file their exporters already use.
//!
//! This is the file's shape and every check that needs no I/O: the names of
//! TLS versions, client-auth policies, cipher suites and curves are enums (a
//! typo is refused with the accepted names), headers are those exporter-toolkit
//! allows, with the values it allows. Reading the certificates and building
//! the TLS server is `web`'s work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::{ConfigError, InvalidConfig, parse_yaml};
use super::values::HumanDuration;

/// The whole web configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebFile {
    /// TLS on the HTTP endpoint and the gRPC port. Absent: plain text.
    pub tls_server_config: Option<TlsServerConfig>,
    /// Response headers and HTTP/2.
    pub http_server_config: HttpServerConfig,
    /// User name to bcrypt hash; when any, every HTTP request needs one of them.
    pub basic_auth_users: BTreeMap<String, String>,
    /// A token bucket in front of every HTTP request.
    pub rate_limit: Option<RateLimit>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// The server certificate chain, PEM, inline (instead of `cert_file`).
    pub cert: Option<String>,
    /// The server's private key, PEM, inline (instead of `key_file`).
    pub key: Option<String>,
    /// The client CA certificates, PEM, inline (instead of `client_ca_file`).
    pub client_ca: Option<String>,
    /// The server certificate chain, a PEM file.
    pub cert_file: Option<PathBuf>,
    /// The server's private key, a PEM file.
    pub key_file: Option<PathBuf>,
    /// What is asked of clients. Default `NoClientCert`.
    pub client_auth_type: ClientAuthType,
    /// The CA certificates that sign client certificates, a PEM file.
    pub client_ca_file: Option<PathBuf>,
    /// DNS names or IP addresses one of which a client certificate must carry.
    pub client_allowed_sans: Vec<String>,
    /// Default `TLS12`.
    pub min_version: Option<TlsVersion>,
    /// Default `TLS13`.
    pub max_version: Option<TlsVersion>,
    /// TLS 1.2 cipher suites, by their Go names; empty: every suite rustls has.
    /// TLS 1.3 suites are not configurable (as in Go).
    pub cipher_suites: Vec<CipherSuite>,
    /// Choose the server's preferred suite rather than the client's. Default true.
    pub prefer_server_cipher_suites: Option<bool>,
    /// Key exchange groups in order of preference; empty: rustls' defaults.
    pub curve_preferences: Vec<Curve>,
}

/// `client_auth_type`, as Go's `tls.ClientAuthType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// A certificate is asked for, not required, and not verified.
    RequestClientCert,
    /// A certificate is required but not verified.
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must verify.
    VerifyClientCertIfGiven,
    /// A certificate is required and must verify against the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// Whether certificates sent are checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }

    /// Whether a client without a certificate is refused.
    pub fn requires(self) -> bool {
        matches!(
            self,
            ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version. rustls has no TLS 1.0 or 1.1, and neither does tallyd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    TLS12,
    /// TLS 1.3.
    TLS13,
}

/// A TLS 1.2 cipher suite rustls implements, by its Go name (the IANA name;
/// Go also spells the ChaCha20 suites without `_SHA256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types, missing_docs)]
pub enum CipherSuite {
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    #[serde(alias = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305")]
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    #[serde(alias = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305")]
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

/// A key exchange group, by its Go `tls.CurveID` name. rustls has no P-521.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Curve {
    /// X25519.
    X25519,
    /// NIST P-256.
    CurveP256,
    /// NIST P-384.
    CurveP384,
}

/// `http_server_config`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; tallyd's HTTP endpoint speaks HTTP/1.1
    /// (its gRPC port speaks HTTP/2).
    pub http2: Option<bool>,
    /// Headers added to every response.
    pub headers: ResponseHeaders,
}

/// `http_server_config.headers`: exporter-toolkit's five, with its allowed
/// values where it has a list. An empty value leaves the header out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseHeaders {
    /// `Content-Security-Policy`.
    #[serde(rename = "Content-Security-Policy")]
    pub content_security_policy: String,
    /// `X-Frame-Options`: `deny` or `sameorigin`.
    #[serde(rename = "X-Frame-Options")]
    pub x_frame_options: String,
    /// `X-Content-Type-Options`: `nosniff`.
    #[serde(rename = "X-Content-Type-Options")]
    pub x_content_type_options: String,
    /// `X-XSS-Protection`.
    #[serde(rename = "X-XSS-Protection")]
    pub x_xss_protection: String,
    /// `Strict-Transport-Security`.
    #[serde(rename = "Strict-Transport-Security")]
    pub strict_transport_security: String,
}

impl ResponseHeaders {
    /// The headers set, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("Content-Security-Policy", &self.content_security_policy),
            ("X-Frame-Options", &self.x_frame_options),
            ("X-Content-Type-Options", &self.x_content_type_options),
            ("X-XSS-Protection", &self.x_xss_protection),
            ("Strict-Transport-Security", &self.strict_transport_security),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
    }
}

/// `rate_limit`: one request per `interval` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Time between two requests; zero turns the limit off.
    pub interval: HumanDuration,
    /// Requests allowed at once.
    pub burst: u32,
}

impl WebFile {
    /// The file as YAML, as it loaded (and loads again).
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a loaded web config always serialises")
    }
}

/// Reads and checks the web configuration file at `path`.
pub fn load_web_file(path: &Path) -> Result<WebFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_web_file(&text, &path.display().to_string()).map_err(ConfigError::Invalid)
}

/// Parses web configuration text; `source_name` is used in error messages.
pub fn parse_web_file(text: &str, source_name: &str) -> Result<WebFile, InvalidConfig> {
    let file: WebFile = parse_yaml(text, source_name)?;
    check(&file).map_err(|(key, message)| InvalidConfig {
        source_name: source_name.to_owned(),
        position: None,
        key: key.to_owned(),
        message,
    })?;
    Ok(file)
}

/// What serde cannot say: keys that exclude each other or need each other.
fn check(file: &WebFile) -> Result<(), (&'static str, String)> {
    let headers = &file.http_server_config.headers;
    let one_of = |key, value: &str, allowed: &[&str]| {
        if value.is_empty() || allowed.contains(&value) {
            Ok(())
        } else {
            Err((
                key,
                format!("{value:?} is not allowed; use one of {allowed:?}"),
            ))
        }
    };
    one_of(
        "http_server_config.headers.X-Frame-Options",
        &headers.x_frame_options,
        &["deny", "sameorigin"],
    )?;
    one_of(
        "http_server_config.headers.X-Content-Type-Options",
        &headers.x_content_type_options,
        &["nosniff"],
    )?;
    for (name, value) in headers.iter() {
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err((
                "http_server_config.headers",
                format!("{name}: control characters are not allowed"),
            ));
        }
    }
    for (user, hash) in &file.basic_auth_users {
        if !is_bcrypt_hash(hash) {
            return Err((
                "basic_auth_users",
                format!(
                    "{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                ),
            ));
        }
        if user.contains(':') {
            return Err((
                "basic_auth_users",
                format!("{user:?}: a user name cannot contain ':'"),
            ));
        }
    }
    let Some(tls) = &file.tls_server_config else {
        return Ok(());
    };
    let both = |inline: bool, file: bool, key: &'static str, what: &str| match (inline, file) {
        (true, true) => Err((key, format!("give {what} inline or as a file, not both"))),
        (false, false) => Err((key, format!("{what} is required"))),
        _ => Ok(()),
    };
    both(
        tls.cert.is_some(),
        tls.cert_file.is_some(),
        "tls_server_config.cert_file",
        "the server certificate (cert or cert_file)",
    )?;
    both(
        tls.key.is_some(),
        tls.key_file.is_some(),
        "tls_server_config.key_file",
        "the server key (key or key_file)",
    )?;
    let has_ca = tls.client_ca.is_some() || tls.client_ca_file.is_some();
    if tls.client_ca.is_some() && tls.client_ca_file.is_some() {
        return Err((
            "tls_server_config.client_ca_file",
            "give the client CA inline or as a file, not both".into(),
        ));
    }
    if tls.client_auth_type.verifies() && !has_ca {
        return Err((
            "tls_server_config.client_ca_file",
            format!(
                "client_auth_type {:?} verifies client certificates: it needs client_ca_file",
                tls.client_auth_type
            ),
        ));
    }
    if has_ca && tls.client_auth_type == ClientAuthType::NoClientCert {
        return Err((
            "tls_server_config.client_auth_type",
            "a client CA is set but client_auth_type is NoClientCert; use RequireAndVerifyClientCert"
                .into(),
        ));
    }
    if !tls.client_allowed_sans.is_empty() && !tls.client_auth_type.verifies() {
        return Err((
            "tls_server_config.client_allowed_sans",
            "needs a client_auth_type that verifies certificates (RequireAndVerifyClientCert)"
                .into(),
        ));
    }
    let min = tls.min_version.unwrap_or(TlsVersion::TLS12);
    let max = tls.max_version.unwrap_or(TlsVersion::TLS13);
    if min > max {
        return Err((
            "tls_server_config.min_version",
            format!("{min:?} is above max_version {max:?}"),
        ));
    }
    if !tls.cipher_suites.is_empty() && min == TlsVersion::TLS13 {
        return Err((
            "tls_server_config.cipher_suites",
            "only TLS 1.2 suites are configurable, and min_version is TLS13".into(),
        ));
    }
    Ok(())
}

/// `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 53 characters of salt and hash.
fn is_bcrypt_hash(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

    fn parse(text: &str) -> Result<WebFile, String> {
        parse_web_file(text, "web.yml").map_err(|e| e.to_string())
    }

    #[test]
    fn exporter_toolkit_sample_loads() {
        let file = parse(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  alice: {HASH}\n\
             rate_limit:\n  interval: 1s\n  burst: 20\n"
        ))
        .unwrap();
        let tls = file.tls_server_config.unwrap();
        assert_eq!(tls.client_auth_type, ClientAuthType::NoClientCert);
        assert_eq!(file.basic_auth_users["alice"], HASH);
        assert_eq!(file.rate_limit.unwrap().burst, 20);
    }

    #[test]
    fn an_empty_file_is_no_security_at_all() {
        assert_eq!(parse("").unwrap(), WebFile::default());
        assert_eq!(parse("{}").unwrap(), WebFile::default());
    }

    #[test]
    fn mistakes_are_refused_with_the_key_and_what_to_write() {
        let cases: &[(&str, &str)] = &[
            (
                "tls_server_config: { cert_file: a }",
                "the server key (key or key_file) is required",
            ),
            (
                "tls_server_config: { cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert }",
                "it needs client_ca_file",
            ),
            (
                "tls_server_config: { cert_file: a, key_file: b, client_ca_file: c }",
                "client_auth_type is NoClientCert",
            ),
            (
                "tls_server_config: { cert_file: a, key_file: b, client_auth_type: Bogus }",
                "RequireAndVerifyClientCert",
            ),
            (
                "tls_server_config: { cert_file: a, key_file: b, min_version: TLS10 }",
                "TLS12",
            ),
            (
                "tls_server_config: { cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12 }",
                "above max_version",
            ),
            ("basic_auth_users: { alice: secret }", "not a bcrypt hash"),
            (
                "http_server_config: { headers: { X-Frame-Options: allow } }",
                "deny",
            ),
            (
                "http_server_config: { headers: { Server: tallyd } }",
                "Server",
            ),
            ("tls_config: {}", "tls_config"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.starts_with("web.yml"), "{err}");
        }
    }

    #[test]
    fn go_names_of_suites_and_curves_are_taken() {
        let file = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    \
             - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n  \
             curve_preferences: [X25519, CurveP256]\n",
        )
        .unwrap();
        let tls = file.tls_server_config.unwrap();
        assert_eq!(
            tls.cipher_suites,
            [
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            ]
        );
        assert_eq!(tls.curve_preferences, [Curve::X25519, Curve::CurveP256]);
        assert!(
            parse(
                "tls_server_config: { cert_file: a, key_file: b, curve_preferences: [CurveP521] }"
            )
            .is_err()
        );
    }

    #[test]
    fn bcrypt_hashes_are_recognised() {
        assert!(is_bcrypt_hash(HASH));
        assert!(is_bcrypt_hash(&HASH.replacen("2y", "2b", 1)));
        assert!(!is_bcrypt_hash(&HASH[..59]));
        assert!(!is_bcrypt_hash(&HASH.replacen("2y", "1y", 1)));
    }
}
