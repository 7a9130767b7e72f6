//! The gRPC server: both APIs on one listener, connections counted, graceful
//! stop, and TLS as the web configuration in force says (read per connection,
//! so a reload reaches new connections). Handshakes run in their own tasks,
//! bounded in time, so a slow or silent client never holds up the accept loop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::grpc::IngestService;
use super::otlp::OtlpService;
use super::proto::ingest_server::IngestServer;
use crate::telemetry::{ConnectionGuard, Listener, Telemetry, Transport};
use crate::web::{LiveWeb, handshake};

/// Largest gRPC message accepted: a 10k-value batch is about 200 KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Connections handed to the server but not yet taken up.
const PENDING_CONNECTIONS: usize = 64;

/// Serves `ingest` on `listener` until `stop` is cancelled, then lets the calls
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    ingest: IngestService,
    otlp: OtlpService,
    telemetry: Arc<Telemetry>,
    web: Arc<LiveWeb>,
    stop: CancellationToken,
) {
    let (connections, incoming) = mpsc::channel(PENDING_CONNECTIONS);
    tokio::spawn(accept_loop(
        listener,
        connections,
        telemetry,
        web,
        stop.clone(),
    ));
    let incoming = ReceiverStream::new(incoming).map(Ok::<_, std::io::Error>);
    let result = tonic::transport::Server::builder()
        .add_service(IngestServer::new(ingest).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(otlp.into_server(MAX_MESSAGE_BYTES))
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "gRPC server failed");
    }
}

/// Accepts connections until stop; each one, after its handshake when TLS is
/// on, goes to the server.
async fn accept_loop(
    listener: TcpListener,
    connections: mpsc::Sender<CountedStream>,
    telemetry: Arc<Telemetry>,
    web: Arc<LiveWeb>,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a gRPC connection");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let open = ConnectionGuard::new(telemetry.clone(), Transport::Grpc);
        let Some(acceptor) = web.current().grpc_tls.clone() else {
            let _ = connections
                .send(CountedStream {
                    stream: GrpcStream::Plain(stream),
                    _open: open,
                })
                .await;
            continue;
        };
        let connections = connections.clone();
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            if let Some(tls) = handshake(&acceptor, stream, Listener::Grpc, &telemetry).await {
                let _ = connections
                    .send(CountedStream {
                        stream: GrpcStream::Tls(Box::new(tls)),
                        _open: open,
                    })
                    .await;
            }
        });
    }
}

/// A connection, in plain text or TLS.
enum GrpcStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl GrpcStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            GrpcStream::Plain(stream) => stream,
            GrpcStream::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// A gRPC connection, counted open while it lives.
struct CountedStream {
    stream: GrpcStream,
    _open: ConnectionGuard,
}

impl Connected for CountedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.tcp().connect_info()
    }
}

/// Calls `$method` on whichever stream the connection is.
macro_rules! either {
    ($self:expr, $method:ident($($arg:expr),*)) => {
        match &mut $self.get_mut().stream {
            GrpcStream::Plain(stream) => Pin::new(stream).$method($($arg),*),
            GrpcStream::Tls(tls) => Pin::new(tls.as_mut()).$method($($arg),*),
        }
    };
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        either!(self, poll_read(cx, buf))
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        either!(self, poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        either!(self, poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        either!(self, poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        either!(self, poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            GrpcStream::Plain(stream) => stream.is_write_vectored(),
            GrpcStream::Tls(tls) => tls.is_write_vectored(),
        }
    }
}
