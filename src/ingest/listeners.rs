//! Accept loops of the stream listeners: TCP and Unix stream.
//!
//! Each accepted connection becomes a task tracked by the pipeline, so that stop
//! can wait for every connection to hand its last lines over before the shards
//! close their windows. A connection past `limits.max_connections` is closed as
//! soon as it is accepted (counted by [`ConnectionLimit`]). A failed accept
//! (out of file descriptors, say) is logged and retried after a pause rather
//! than ending the listener.

use std::io;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stream::{ByteStream, StreamSource, serve_connection};
#[cfg(doc)]
use crate::web::ConnectionLimit;

/// Pause after a failed accept, so that running out of descriptors does not spin.
pub(super) const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A listener handing out connected streams.
pub trait StreamListener: Send + 'static {
    /// The connection type.
    type Stream: ByteStream;
    /// Waits for the next connection.
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl StreamListener for TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        let (stream, _) = self.accept().await?;
        // Lines are small and latency matters more than packet count on loopback.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

impl StreamListener for UnixListener {
    type Stream = tokio::net::UnixStream;

    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        Ok(self.accept().await?.0)
    }
}

/// Accepts connections until `stop` is cancelled, serving each on `tracker`.
pub async fn accept_loop<L: StreamListener>(
    listener: L,
    source: StreamSource,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept_stream() => accepted,
            () = stop.cancelled() => return,
        };
        match accepted {
            Ok(stream) => match source.connections.admit() {
                Some(permit) => {
                    let connection = serve_connection(stream, source.clone(), stop.clone());
                    tracker.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                None => drop(stream),
            },
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    transport = source.transport.as_str(),
                    "accept failed; retrying"
                );
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_RETRY) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}
