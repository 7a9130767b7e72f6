//! A minimal HTTP/1.0 client for `tallyd healthcheck`, so a container image
//! with nothing but the binary can probe `/healthz` (Docker's HEALTHCHECK runs
//! a command inside the container), in plain text or over TLS, presenting a
//! client certificate when the endpoint requires one. `/healthz` needs no
//! basic auth, so the probe sends none.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::web::ClientTlsError;

/// How the probe speaks TLS.
pub struct ProbeTls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl ProbeTls {
    /// TLS with `config` (see [`crate::web::client_config`]), checking the
    /// server's certificate against `server_name`.
    pub fn new(config: rustls::ClientConfig, server_name: &str) -> Result<Self, ProbeError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| ProbeError::Tls(ClientTlsError::from(format!("server name: {e}"))))?;
        Ok(ProbeTls {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address does not resolve.
    #[error("{addr}: {source}")]
    Resolve {
        /// The address given.
        addr: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// The address resolves to nothing.
    #[error("{addr}: no address")]
    NoAddress {
        /// The address given.
        addr: String,
    },
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The address given.
        addr: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings were refused.
    #[error("TLS: {0}")]
    Tls(#[from] ClientTlsError),
    /// The server answered with another status than 200.
    #[error("GET {path} on {addr} answered {status_line:?}")]
    Status {
        /// The path asked for.
        path: String,
        /// The address given.
        addr: String,
        /// The answer's first line.
        status_line: String,
    },
}

/// GETs `path` from `addr` (`host:port`), over TLS when `tls` is set; Ok
/// when the answer is 200.
pub fn probe(
    addr: &str,
    path: &str,
    timeout: Duration,
    tls: Option<&ProbeTls>,
) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io {
        addr: addr.to_owned(),
        source,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress {
            addr: addr.to_owned(),
        })?;
    let stream = TcpStream::connect_timeout(&target, timeout).map_err(io)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(io)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut head = [0u8; 64];
    let n = match tls {
        None => exchange(stream, &request, &mut head),
        Some(tls) => {
            let connection =
                rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
                    .map_err(|e| io(std::io::Error::other(e)))?;
            exchange(
                rustls::StreamOwned::new(connection, stream),
                &request,
                &mut head,
            )
        }
    }
    .map_err(io)?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(ProbeError::Status {
            path: path.to_owned(),
            addr: addr.to_owned(),
            status_line: status_line.lines().next().unwrap_or("").to_owned(),
        })
    }
}

/// Writes `request` and reads the start of the answer into `head`.
fn exchange(
    mut stream: impl Read + Write,
    request: &str,
    head: &mut [u8],
) -> std::io::Result<usize> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    stream.read(head)
}
