//! The gRPC server: both APIs on one listener, connections counted, graceful
//! stop, and TLS as the web configuration in force says (read per connection,
//! so a reload reaches new connections). Handshakes run in their own tasks,
//! bounded in time, so a slow or silent client never holds up the accept loop.
//!
//! Limits: connections past `limits.max_connections` are closed at accept; a
//! connection that sends no byte for `limits.connection_idle_timeout` is
//! closed (HTTP/2 pings from the client count as bytes); a message over
//! `limits.max_grpc_message_bytes`, measured after gzip is undone, is refused
//! by tonic before it is decoded, and [`CountTooLarge`] counts it from the
//! status the call ends with. Each is counted in a `tallyd_*` family.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::codegen::{Service, http};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::grpc::IngestService;
use super::listeners::ACCEPT_RETRY;
use super::otlp::OtlpService;
use super::proto::ingest_server::IngestServer;
use crate::telemetry::{ConnectionGuard, ConnectionListener, Listener, Telemetry, Transport};
use crate::web::{ConnectionLimit, LiveWeb, handshake};

/// Connections handed to the server but not yet taken up.
const PENDING_CONNECTIONS: usize = 64;

/// The two APIs served on the port.
pub struct Services {
    /// tallyd's own API (`tallyd.v1.Ingest`).
    pub ingest: IngestService,
    /// OTLP metrics (`MetricsService/Export`).
    pub otlp: OtlpService,
}

/// What the port holds a client to.
pub struct ServerLimits {
    /// Connections held at once.
    pub connections: ConnectionLimit,
    /// A connection that sends nothing this long is closed.
    pub idle_timeout: Duration,
    /// Largest message, after decompression.
    pub max_message_bytes: usize,
}

/// Serves both APIs on `listener` until `stop` is cancelled, then lets the
/// calls in flight finish.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    limits: ServerLimits,
    web: Arc<LiveWeb>,
    stop: CancellationToken,
) {
    let telemetry = services.ingest.telemetry().clone();
    let (connections, incoming) = mpsc::channel(PENDING_CONNECTIONS);
    tokio::spawn(accept_loop(
        listener,
        connections,
        Door {
            connections: limits.connections,
            idle_timeout: limits.idle_timeout,
            telemetry: telemetry.clone(),
            web,
        },
        stop.clone(),
    ));
    let incoming = ReceiverStream::new(incoming).map(Ok::<_, std::io::Error>);
    let max = limits.max_message_bytes;
    let result = tonic::transport::Server::builder()
        .layer(CountTooLargeLayer { telemetry })
        .add_service(IngestServer::new(services.ingest).max_decoding_message_size(max))
        .add_service(services.otlp.into_server(max))
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "gRPC server failed");
    }
}

/// What the accept loop checks each connection against.
struct Door {
    connections: ConnectionLimit,
    idle_timeout: Duration,
    telemetry: Arc<Telemetry>,
    web: Arc<LiveWeb>,
}

impl Door {
    /// `stream`, counted open and timed for idleness.
    fn counted(&self, stream: GrpcStream, permit: OwnedSemaphorePermit) -> CountedStream {
        CountedStream {
            stream,
            idle: IdleClock::new(self.idle_timeout),
            telemetry: self.telemetry.clone(),
            _open: ConnectionGuard::new(self.telemetry.clone(), Transport::Grpc),
            _permit: permit,
        }
    }
}

/// Accepts connections until stop; each one within the connection limit,
/// after its handshake when TLS is on, goes to the server.
async fn accept_loop(
    listener: TcpListener,
    connections: mpsc::Sender<CountedStream>,
    door: Door,
    stop: CancellationToken,
) {
    let door = Arc::new(door);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a gRPC connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let Some(permit) = door.connections.admit() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = door.web.current().grpc_tls.clone() else {
            let _ = connections
                .send(door.counted(GrpcStream::Plain(stream), permit))
                .await;
            continue;
        };
        let connections = connections.clone();
        let door = door.clone();
        tokio::spawn(async move {
            if let Some(tls) = handshake(&acceptor, stream, Listener::Grpc, &door.telemetry).await {
                let stream = GrpcStream::Tls(Box::new(tls));
                let _ = connections.send(door.counted(stream, permit)).await;
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

/// A gRPC connection, counted open and holding its place in the connection
/// limit while it lives, closed when it sends nothing for too long.
struct CountedStream {
    stream: GrpcStream,
    idle: IdleClock,
    telemetry: Arc<Telemetry>,
    _open: ConnectionGuard,
    _permit: OwnedSemaphorePermit,
}

/// When a connection that keeps silent is closed.
struct IdleClock {
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleClock {
    fn new(timeout: Duration) -> Self {
        IdleClock {
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Bytes came: the silence starts over.
    fn heard(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// Whether the connection has been silent for the whole timeout.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match either!(self.as_mut(), poll_read(cx, buf)) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.idle.heard();
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.idle.expired(cx) => {
                let telemetry = &self.telemetry.access;
                telemetry
                    .connection_idle_closed(ConnectionListener::Grpc)
                    .add(1);
                tracing::debug!("closing an idle gRPC connection (limits.connection_idle_timeout)");
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no byte within limits.connection_idle_timeout",
                )))
            }
            other => other,
        }
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

/// Counts the calls tonic refused for a message over the size limit: it
/// answers them itself, before any handler runs, with `OUT_OF_RANGE` (the
/// length prefix is too large) or `RESOURCE_EXHAUSTED` (a compressed message
/// grew past the limit), as a trailers-only response whose headers carry the
/// status. The message text is tonic's, checked by the tests.
#[derive(Clone)]
struct CountTooLargeLayer {
    telemetry: Arc<Telemetry>,
}

impl<S> tower_layer::Layer<S> for CountTooLargeLayer {
    type Service = CountTooLarge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountTooLarge {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// The service [`CountTooLargeLayer`] wraps around the server.
#[derive(Clone)]
struct CountTooLarge<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S, Req, Res> Service<http::Request<Req>> for CountTooLarge<S>
where
    S: Service<http::Request<Req>, Response = http::Response<Res>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Req>) -> Self::Future {
        let transport = if request.uri().path().starts_with("/opentelemetry.") {
            Transport::Otlp
        } else {
            Transport::Grpc
        };
        let telemetry = self.telemetry.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if refused_as_too_large(response.headers()) {
                telemetry.access.grpc_message_too_large(transport).add(1);
            }
            Ok(response)
        })
    }
}

/// Whether a trailers-only answer is tonic's refusal of an oversized message.
fn refused_as_too_large(headers: &http::HeaderMap) -> bool {
    let status = tonic::Status::from_header_map(headers);
    status.is_some_and(|status| match status.code() {
        Code::OutOfRange => status.message().contains("message length too large"),
        Code::ResourceExhausted => status.message().contains("size limit"),
        _ => false,
    })
}
