//! The gRPC server: both APIs on one listener, connections counted, graceful stop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::grpc::IngestService;
use super::otlp::OtlpService;
use super::proto::ingest_server::IngestServer;
use crate::telemetry::{ConnectionGuard, Telemetry, Transport};

/// Largest gRPC message accepted: a 10k-value batch is about 200 KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Serves `ingest` on `listener` until `stop` is cancelled, then lets the calls
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    ingest: IngestService,
    otlp: OtlpService,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) {
    let incoming = TcpListenerStream::new(listener).map(move |accepted| {
        accepted.map(|stream| {
            let _ = stream.set_nodelay(true);
            CountedStream {
                stream,
                _open: ConnectionGuard::new(telemetry.clone(), Transport::Grpc),
            }
        })
    });
    let result = tonic::transport::Server::builder()
        .add_service(IngestServer::new(ingest).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(otlp.into_server(MAX_MESSAGE_BYTES))
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "gRPC server failed");
    }
}

/// A gRPC connection, counted open while it lives.
struct CountedStream {
    stream: TcpStream,
    _open: ConnectionGuard,
}

impl Connected for CountedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
