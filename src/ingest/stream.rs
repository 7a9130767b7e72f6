//! Serving one stream connection (TCP or Unix stream): newline-delimited lines.
//!
//! Each connection is a task on the ingest runtime with its own [`LineFramer`]
//! and [`Router`]. The router waits when a shard queue is full
//! ([`Overflow::Wait`]), so the connection is simply not read meanwhile and the
//! kernel's flow control slows the sender down: nothing read from a stream is
//! dropped for lack of room. Waiting blocks the runtime worker; that is the
//! point, since a full queue means the shards, not ingest, are the bottleneck.
//!
//! Partial batches are handed over when the connection has nothing more to read
//! or when their oldest line is [`FLUSH_AFTER`] old. A connection that sends
//! nothing for `limits.connection_idle_timeout` is closed and counted, so idle
//! clients do not hold descriptors forever; waiting on a full shard queue is
//! not idleness. On stop, the connection takes whatever the socket already
//! holds, ingests it, and closes.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Inlet;
use super::framing::LineFramer;
use super::lines::ingest_buffer;
use super::udp::FLUSH_AFTER;
use crate::codec::{Decoder, RejectReason};
use crate::shard::{Overflow, Router};
use crate::telemetry::{ConnectionGuard, LocalTally, Transport, unix_nanos};
use crate::web::ConnectionLimit;

/// Reads taken before the connection's tallies are added to the shared counters.
const PUBLISH_EVERY_READS: u32 = 64;

/// A connected byte stream read by readiness, so that the connection can tell
/// "nothing more for now" (hand partial batches over) from "more is coming".
pub trait ByteStream: Send + 'static {
    /// Waits until a read may make progress.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is there without waiting (`WouldBlock` when nothing is).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl ByteStream for tokio::net::TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::readable(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_read(self, buf)
    }
}

impl ByteStream for tokio::net::UnixStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        tokio::net::UnixStream::readable(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_read(self, buf)
    }
}

/// What every connection of one listener shares: the inlet, which transport the
/// listener is, the longest line it accepts, and its connection limits.
#[derive(Clone)]
pub struct StreamSource {
    /// Into the shards.
    pub inlet: Inlet,
    /// Which transport the listener is.
    pub transport: Transport,
    /// Longest line accepted (`limits.max_datagram_bytes`).
    pub max_line: usize,
    /// Connections held at once (`limits.max_connections`).
    pub connections: ConnectionLimit,
    /// A connection silent this long is closed (`limits.connection_idle_timeout`).
    pub idle_timeout: Duration,
}

/// Reads `stream` until it closes, fails, or `stop` is cancelled.
pub async fn serve_connection<S: ByteStream>(
    stream: S,
    source: StreamSource,
    stop: CancellationToken,
) {
    let _open = ConnectionGuard::new(source.inlet.telemetry().clone(), source.transport);
    let idle_timeout = source.idle_timeout;
    let mut connection = Connection::new(source);
    loop {
        match stream.try_read(connection.framer.spare()) {
            Ok(0) => break,
            Ok(n) => connection.received(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                connection.idle();
                tokio::select! {
                    ready = tokio::time::timeout(idle_timeout, stream.readable()) => match ready {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            connection.failed(&err);
                            break;
                        }
                        Err(_) => {
                            connection.idled_out();
                            break;
                        }
                    },
                    () = stop.cancelled() => {
                        connection.drain(&stream);
                        break;
                    }
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                connection.failed(&err);
                break;
            }
        }
    }
    connection.finish();
}

/// The state of one connection.
struct Connection {
    framer: LineFramer,
    decoder: Decoder,
    router: Router,
    tally: LocalTally,
    /// When the oldest line in a partial batch arrived.
    pending_since: Option<Instant>,
    reads_unpublished: u32,
    source: StreamSource,
}

impl Connection {
    fn new(source: StreamSource) -> Self {
        Connection {
            framer: LineFramer::new(source.max_line),
            decoder: source.inlet.decoder(source.max_line),
            router: source.inlet.router(Overflow::Wait),
            tally: LocalTally::default(),
            pending_since: None,
            reads_unpublished: 0,
            source,
        }
    }

    /// Ingests the complete lines among `n` bytes just read.
    fn received(&mut self, n: usize) {
        self.tally.bytes += n as u64;
        self.router.note_arrival(unix_nanos());
        let Connection {
            framer,
            decoder,
            router,
            tally,
            ..
        } = self;
        let too_long = framer.commit(n, |lines| ingest_buffer(decoder, lines, router, tally));
        self.count_too_long(too_long);
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= FLUSH_AFTER {
            self.router.flush(&mut self.tally);
            self.pending_since = None;
        }
        self.reads_unpublished += 1;
        if self.reads_unpublished >= PUBLISH_EVERY_READS {
            self.publish();
        }
    }

    /// Nothing more to read for now: hand partial batches over.
    fn idle(&mut self) {
        if self.pending_since.take().is_some() {
            self.router.flush(&mut self.tally);
        }
        self.publish();
    }

    /// On stop: takes what the socket already holds.
    fn drain<S: ByteStream>(&mut self, stream: &S) {
        loop {
            match stream.try_read(self.framer.spare()) {
                Ok(0) | Err(_) => return,
                Ok(n) => self.received(n),
            }
        }
    }

    /// Nothing came for `limits.connection_idle_timeout`.
    fn idled_out(&self) {
        let listener = self.source.connections.listener();
        let telemetry = self.source.inlet.telemetry();
        telemetry.access.connection_idle_closed(listener).add(1);
        tracing::debug!(
            transport = self.source.transport.as_str(),
            "closing an idle connection (limits.connection_idle_timeout)"
        );
    }

    fn failed(&self, err: &io::Error) {
        tracing::debug!(
            error = %err,
            transport = self.source.transport.as_str(),
            "connection read failed"
        );
    }

    /// At the end: the last line without a newline, then everything handed over.
    fn finish(mut self) {
        let tail = self.framer.finish();
        if !tail.is_empty() {
            ingest_buffer(&self.decoder, tail, &mut self.router, &mut self.tally);
        }
        self.router.flush(&mut self.tally);
        self.publish();
    }

    fn count_too_long(&mut self, lines: u64) {
        self.tally.lines += lines;
        self.tally.reject(RejectReason::TooLong, lines);
    }

    fn publish(&mut self) {
        self.tally
            .publish(self.source.inlet.telemetry(), self.source.transport);
        self.reads_unpublished = 0;
    }
}
