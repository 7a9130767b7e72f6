//! Starting and stopping the threads and tasks of the pipeline: shards and every
//! ingest transport.
//!
//! Order matters in both directions. Up: shards first (so queues have a
//! consumer), then sockets, then receivers. Down: datagram receivers stop and
//! flush their batches; stream connections and gRPC calls take what their
//! sockets hold and hand it over; dropping the last queue sender then tells each
//! shard to drain its queue, close the open window and publish it; only then are
//! the shards joined and the socket files removed. Nothing accepted before the
//! stop is lost on the way out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use crossbeam_channel::Sender;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::Decoder;
use crate::config::Config;
use crate::grpc::{self, CallContext, IngestService};
use crate::ingest::listeners::{StreamListener, accept_loop};
use crate::ingest::stream::StreamContext;
use crate::ingest::udp::{self, Receiver};
use crate::ingest::unix_socket::{self, SocketFile};
use crate::otlp::OtlpService;
use crate::shard::{Batch, BatchPool, Router, ShardContext, spawn_shard};
use crate::telemetry::{Telemetry, Transport};

/// Batches each shard queue holds: 256 x 1,024 samples is about 25 ms of work for a
/// shard at 10M samples/s, enough to ride out scheduling pauses of a core shared
/// with receivers, and about 29 MiB (113 KiB a batch) queued per shard at worst.
pub const QUEUE_BATCHES: usize = 256;

/// The running threads of the pipeline.
pub struct Pipeline {
    shards: Vec<JoinHandle<()>>,
    receivers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The async transports, when any is configured.
    tasks: Option<AsyncIngest>,
    /// The shard queues' senders; every transport routes through clones of them.
    queues: Vec<Sender<Batch>>,
    pool: BatchPool,
    socket_files: Vec<SocketFile>,
    /// Where the pipeline listens, ports resolved.
    pub bound: Bound,
}

/// The addresses and paths bound.
#[derive(Debug, Default)]
pub struct Bound {
    /// UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses.
    pub tcp: Vec<SocketAddr>,
    /// Unix socket paths (datagram, then stream).
    pub unix: Vec<PathBuf>,
    /// The gRPC address.
    pub grpc: Option<SocketAddr>,
}

/// The runtime serving stream connections and gRPC, and what stops it.
struct AsyncIngest {
    runtime: tokio::runtime::Runtime,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl AsyncIngest {
    /// Accepts connections on `listener` until stop, each served with `context`.
    fn serve_streams<L: StreamListener>(&self, listener: L, context: StreamContext) {
        self.tracker.spawn(accept_loop(
            listener,
            context,
            self.stop.clone(),
            self.tracker.clone(),
        ));
    }
}

impl Pipeline {
    /// Starts the shards and every configured listener.
    pub fn start(
        config: &Config,
        context: ShardContext,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<Self> {
        let shard_count = telemetry.shards.len();
        let mut queues: Vec<Sender<Batch>> = Vec::with_capacity(shard_count);
        let mut shards = Vec::with_capacity(shard_count);
        for index in 0..shard_count {
            let (sender, receiver) = crossbeam_channel::bounded(QUEUE_BATCHES);
            queues.push(sender);
            shards.push(
                spawn_shard(index, context.clone(), receiver)
                    .context("cannot start a shard thread")?,
            );
        }
        let mut pipeline = Pipeline {
            shards,
            receivers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            tasks: None,
            queues,
            pool: context.pool.clone(),
            socket_files: Vec::new(),
            bound: Bound::default(),
        };
        if let Err(err) = pipeline.start_listeners(config, telemetry) {
            pipeline.stop();
            return Err(err);
        }
        Ok(pipeline)
    }

    fn start_listeners(
        &mut self,
        config: &Config,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<()> {
        self.start_udp(config, telemetry)?;
        self.start_unix_datagram(config, telemetry)?;
        let listen = &config.listen;
        if listen.tcp.is_empty() && listen.unix_stream.is_none() && listen.grpc.is_none() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.listen.udp_threads.resolve().get())
            .thread_name("tallyd-ingest")
            .enable_all()
            .build()
            .context("cannot start the ingest runtime")?;
        let tasks = self.tasks.insert(AsyncIngest {
            runtime,
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let _entered = tasks.runtime.enter();
        let max_line = max_datagram_bytes(config);
        let stream_context = |transport| {
            telemetry.enable(transport);
            StreamContext {
                queues: self.queues.clone(),
                pool: self.pool.clone(),
                max_line,
                telemetry: telemetry.clone(),
                transport,
            }
        };
        for addr in listen.tcp.iter() {
            let listener =
                bind_tcp(addr).with_context(|| format!("cannot bind TCP {addr} (listen.tcp)"))?;
            let local = listener.local_addr()?;
            tracing::info!(address = %local, "TCP listener bound");
            self.bound.tcp.push(local);
            tasks.serve_streams(listener, stream_context(Transport::Tcp));
        }
        if let Some(path) = &listen.unix_stream {
            let path = path.get();
            let (listener, file) = unix_socket::bind_stream(path, listen.unix_socket_mode.bits())
                .with_context(|| {
                format!(
                    "cannot bind Unix stream socket {} (listen.unix_stream)",
                    path.display()
                )
            })?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(listener)?;
            tracing::info!(path = %path.display(), "Unix stream listener bound");
            self.bound.unix.push(file.path().to_owned());
            self.socket_files.push(file);
            tasks.serve_streams(listener, stream_context(Transport::UnixStream));
        }
        if let Some(addr) = listen.grpc {
            let addr = addr.get();
            let listener =
                bind_tcp(addr).with_context(|| format!("cannot bind gRPC {addr} (listen.grpc)"))?;
            let local = listener.local_addr()?;
            tracing::info!(address = %local, "gRPC listener bound (tallyd.v1.Ingest, OTLP metrics)");
            self.bound.grpc = Some(local);
            for transport in [Transport::Grpc, Transport::Otlp] {
                telemetry.enable(transport);
            }
            let context = CallContext {
                queues: self.queues.clone(),
                pool: self.pool.clone(),
                telemetry: telemetry.clone(),
            };
            let queue_wait = config.limits.queue_wait.get();
            let ingest = IngestService::new(context.clone(), queue_wait);
            let otlp = OtlpService::new(
                context,
                queue_wait,
                config.aggregation.quantiles.iter().collect(),
                config.limits.series_idle_ttl.get(),
            );
            tasks.tracker.spawn(grpc::serve(
                listener,
                ingest,
                otlp,
                telemetry.clone(),
                tasks.stop.clone(),
            ));
        }
        Ok(())
    }

    fn start_udp(&mut self, config: &Config, telemetry: &Arc<Telemetry>) -> anyhow::Result<()> {
        let threads = config.listen.udp_threads.resolve().get();
        let wanted_buffer =
            usize::try_from(config.listen.udp_recv_buffer.bytes()).unwrap_or(usize::MAX);
        for addr in config.listen.udp.iter() {
            let group = udp::bind_group(addr, threads, wanted_buffer)
                .with_context(|| format!("cannot bind UDP {addr} (listen.udp)"))?;
            if group.recv_buffer < wanted_buffer {
                tracing::warn!(
                    address = %group.local_addr,
                    wanted = wanted_buffer,
                    granted = group.recv_buffer,
                    "UDP receive buffer capped by net.core.rmem_max; raise the sysctl or grant CAP_NET_ADMIN"
                );
            }
            tracing::info!(
                address = %group.local_addr,
                sockets = group.sockets.len(),
                recv_buffer = group.recv_buffer,
                "UDP listener bound"
            );
            self.bound.udp.push(group.local_addr);
            telemetry.enable(Transport::Udp);
            for socket in group.sockets {
                if let Some(inode) = udp::socket_inode(&socket)
                    && let Ok(mut inodes) = telemetry.udp_socket_inodes.lock()
                {
                    inodes.push(inode);
                }
                self.spawn_receiver(config, socket, Transport::Udp, telemetry)?;
            }
        }
        Ok(())
    }

    fn start_unix_datagram(
        &mut self,
        config: &Config,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<()> {
        let Some(path) = &config.listen.unix_datagram else {
            return Ok(());
        };
        let path = path.get();
        let (socket, file) =
            unix_socket::bind_datagram(path, config.listen.unix_socket_mode.bits()).with_context(
                || {
                    format!(
                        "cannot bind Unix datagram socket {} (listen.unix_datagram)",
                        path.display()
                    )
                },
            )?;
        let socket = unix_socket::datagram_socket(socket);
        let wanted_buffer =
            usize::try_from(config.listen.udp_recv_buffer.bytes()).unwrap_or(usize::MAX);
        udp::set_recv_buffer(&socket, wanted_buffer)?;
        socket.set_read_timeout(Some(udp::STOP_POLL))?;
        tracing::info!(path = %path.display(), recv_buffer = socket.recv_buffer_size()?, "Unix datagram listener bound");
        self.bound.unix.push(file.path().to_owned());
        self.socket_files.push(file);
        telemetry.enable(Transport::UnixDatagram);
        self.spawn_receiver(config, socket, Transport::UnixDatagram, telemetry)
    }

    fn spawn_receiver(
        &mut self,
        config: &Config,
        socket: socket2::Socket,
        transport: Transport,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<()> {
        let max_datagram_bytes = max_datagram_bytes(config);
        let receiver = Receiver {
            socket,
            transport,
            router: Router::new(self.queues.clone(), self.pool.clone()),
            decoder: Decoder::new(max_datagram_bytes),
            max_datagram_bytes,
            telemetry: telemetry.clone(),
            stop: self.stop.clone(),
        };
        let index = self.receivers.len();
        self.receivers
            .push(udp::spawn_receiver(index, receiver).context("cannot start a receiving thread")?);
        Ok(())
    }

    /// Stops receiving, then lets every shard publish its open window, and waits.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(tasks) = self.tasks {
            tasks.stop.cancel();
            tasks.tracker.close();
            tasks.runtime.block_on(tasks.tracker.wait());
            tasks.runtime.shutdown_background();
        }
        for receiver in self.receivers {
            let _ = receiver.join();
        }
        // With every router gone, these are the last queue senders: once they are
        // dropped each shard drains its queue and closes its window.
        drop(self.queues);
        for shard in self.shards {
            let _ = shard.join();
        }
        drop(self.socket_files);
    }
}

/// A TCP listener on `addr` for the ingest runtime (which must be entered).
fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

fn max_datagram_bytes(config: &Config) -> usize {
    usize::try_from(config.limits.max_datagram_bytes.bytes()).unwrap_or(usize::MAX)
}
