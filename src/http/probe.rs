//! A minimal HTTP/1.0 client for `tallyd healthcheck`, so a container image
//! with nothing but the binary can probe `/healthz` (Docker's HEALTHCHECK runs
//! a command inside the container).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GETs `path` from `addr` (`host:port`); Ok when the answer is 200.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> Result<(), String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&target, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(format!(
            "GET {path} on {addr} answered {:?}",
            status_line.lines().next().unwrap_or("")
        ))
    }
}
