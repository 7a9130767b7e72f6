//! A minimal HTTP/1.0 client for `tallyd healthcheck`, so a container image
//! with nothing but the binary can probe `/healthz` (Docker's HEALTHCHECK runs
//! a command inside the container).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

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

/// GETs `path` from `addr` (`host:port`); Ok when the answer is 200.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> Result<(), ProbeError> {
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
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(io)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(io)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(io)?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(io)?;
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
