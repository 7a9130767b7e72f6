//! Who may use the HTTP endpoint and the gRPC port: the web configuration file
//! (`web.config_file`, in the Prometheus exporter-toolkit format) made into
//! TLS servers, basic auth, response headers and a rate limit, and held live so
//! that a reload swaps them whole while connections keep being served; and how
//! many connections each listener holds at once ([`ConnectionLimit`]). The
//! client side of TLS, for the sinks and the health probe, is here too
//! ([`client_config`]), so both sides use one crypto provider.
//!
//! The HTTP server and the gRPC listener read [`LiveWeb::current`] once per
//! connection (TLS) or request (auth); a reload that fails to read a file
//! keeps what is in force. This module never serves a request itself.

mod accept;
mod auth;
mod client_tls;
mod connection_limit;
#[cfg(test)]
mod properties;
mod rate_limit;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

pub use accept::{HANDSHAKE_TIMEOUT, handshake};
pub use auth::BasicAuth;
pub use client_tls::{ClientTlsError, client_config};
pub use connection_limit::ConnectionLimit;
pub use rate_limit::RateLimiter;

use crate::config::{self, ConfigError, Web, WebFile};

/// Why a web configuration could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The web configuration file does not load.
    #[error("web.config_file: {0}")]
    Config(#[from] ConfigError),
    /// A certificate or key file could not be read.
    #[error("web.config_file: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS settings were refused.
    #[error("web.config_file: tls_server_config: {0}")]
    Tls(String),
}

/// One web configuration, ready to serve.
#[derive(Default)]
pub struct WebSecurity {
    /// TLS for the HTTP endpoint (ALPN `http/1.1`); none: plain text.
    pub http_tls: Option<TlsAcceptor>,
    /// TLS for the gRPC port (ALPN `h2`); none: plain text.
    pub grpc_tls: Option<TlsAcceptor>,
    /// Basic auth on every HTTP request; none: open.
    pub auth: Option<BasicAuth>,
    /// Headers added to every HTTP response.
    pub headers: Vec<(&'static str, String)>,
    /// The token bucket in front of HTTP requests.
    pub rate_limit: Option<RateLimiter>,
}

impl WebSecurity {
    /// Reads the file at `path` and everything it names.
    pub fn load(path: &Path) -> Result<Self, WebError> {
        let file = config::load_web_file(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_file(&file, dir)
    }

    /// `file`, whose relative paths are read from `dir`.
    pub fn from_file(file: &WebFile, dir: &Path) -> Result<Self, WebError> {
        let acceptor = |alpn: &[&[u8]]| -> Result<Option<TlsAcceptor>, WebError> {
            file.tls_server_config
                .as_ref()
                .map(|tls| tls::server_config(tls, dir, alpn))
                .transpose()
                .map(|c| c.map(|c| TlsAcceptor::from(Arc::new(c))))
        };
        Ok(WebSecurity {
            http_tls: acceptor(&[b"http/1.1"])?,
            grpc_tls: acceptor(&[b"h2"])?,
            auth: (!file.basic_auth_users.is_empty())
                .then(|| BasicAuth::new(file.basic_auth_users.clone())),
            headers: file
                .http_server_config
                .headers
                .iter()
                .map(|(k, v)| (k, v.to_owned()))
                .collect(),
            rate_limit: file
                .rate_limit
                .and_then(|r| RateLimiter::new(r.interval.get(), r.burst)),
        })
    }

    /// What is in force, for the startup log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.http_tls.is_some() {
            parts.push("tls");
        }
        if self.auth.is_some() {
            parts.push("basic_auth");
        }
        if self.rate_limit.is_some() {
            parts.push("rate_limit");
        }
        if parts.is_empty() {
            "open".to_owned()
        } else {
            parts.join(",")
        }
    }
}

/// The web configuration in force, swapped whole by a reload.
pub struct LiveWeb {
    current: ArcSwap<WebSecurity>,
    lifecycle: AtomicBool,
}

impl LiveWeb {
    /// Puts `web` in force; an error refuses the start.
    pub fn start(web: &Web) -> Result<Arc<LiveWeb>, WebError> {
        let live = LiveWeb {
            current: ArcSwap::from_pointee(WebSecurity::default()),
            lifecycle: AtomicBool::new(false),
        };
        live.apply(web)?;
        Ok(Arc::new(live))
    }

    /// Re-reads `web`'s file (and the certificates and users it names) and
    /// puts it in force; an error leaves everything as it was.
    pub fn apply(&self, web: &Web) -> Result<(), WebError> {
        let security = self.prepare(web)?;
        self.install(security, web);
        Ok(())
    }

    /// Reads `web`'s file and everything it names, changing nothing yet.
    pub fn prepare(&self, web: &Web) -> Result<WebSecurity, WebError> {
        match &web.config_file {
            Some(path) => WebSecurity::load(path),
            None => Ok(WebSecurity::default()),
        }
    }

    /// Puts a prepared configuration in force, with `web`'s lifecycle switch.
    pub fn install(&self, security: WebSecurity, web: &Web) {
        self.current.store(Arc::new(security));
        self.lifecycle
            .store(web.enable_lifecycle, Ordering::Relaxed);
    }

    /// The web configuration in force now.
    pub fn current(&self) -> Arc<WebSecurity> {
        self.current.load_full()
    }

    /// Whether `POST /-/reload` is served.
    pub fn lifecycle_enabled(&self) -> bool {
        self.lifecycle.load(Ordering::Relaxed)
    }
}
