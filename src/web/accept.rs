//! The TLS handshake of an accepted connection: bounded in time, so a client
//! that connects and says nothing holds a socket for seconds, not forever,
//! and counted when it fails.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::telemetry::{Listener, Telemetry};

/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the server side of a handshake on `stream`; a failure (logged at
/// debug, counted for `listener`) is `None`.
pub async fn handshake<IO>(
    acceptor: &TlsAcceptor,
    stream: IO,
    listener: Listener,
    telemetry: &Telemetry,
) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let error = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
    };
    telemetry.access.handshake_failed(listener).add(1);
    tracing::debug!(listener = listener.as_str(), %error, "TLS handshake failed");
    None
}
