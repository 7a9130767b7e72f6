//! Starting and stopping every ingest transport as one: [`start`] and
//! [`Ingest::stop`].
//!
//! Up: the datagram sockets (UDP, Unix datagram) and their receiving threads,
//! then, when a stream or gRPC listener is configured, the async runtime
//! (`listen.stream_threads` workers) and its listeners. A listener that cannot
//! be bound stops whatever was already started and is reported naming its
//! config key.
//!
//! Down: datagram receivers flush their batches and end; stream connections and
//! gRPC calls take what their sockets hold and hand it over; then the last
//! [`Inlet`] is dropped, which disconnects the shard queues and tells each shard
//! to drain, close its open window and publish it. Nothing accepted before the
//! stop is lost on the way out. The caller joins the shards after [`Ingest::stop`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Inlet;
use super::grpc::IngestService;
use super::grpc_server;
use super::listeners::{StreamListener, accept_loop};
use super::otlp::OtlpService;
use super::stream::StreamSource;
use super::udp::{self, Receiver};
use super::unix_socket::{self, SocketFile};
use crate::codec::TagStyles;
use crate::config::{Config, TagStyle};
use crate::telemetry::{ConnectionListener, Transport};
use crate::web::{ConnectionLimit, LiveWeb};

/// Why ingest could not start. Each names the config key to look at.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot bind {what} {address} ({key})")]
    Bind {
        /// What was being bound ("UDP", "Unix stream socket", ...).
        what: &'static str,
        /// The address or path.
        address: String,
        /// The config key that asked for it.
        key: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A socket option or mode could not be set on a bound listener.
    #[error("cannot set up {what} {address} ({key})")]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The address or path.
        address: String,
        /// The config key that asked for it.
        key: &'static str,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A receiving thread could not be started.
    #[error("cannot start a receiving thread")]
    Thread(#[source] io::Error),
    /// The async runtime for streams and gRPC could not be started.
    #[error("cannot start the ingest runtime (listen.stream_threads)")]
    Runtime(#[source] io::Error),
}

/// Where ingest listens, ports resolved.
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

/// Every running transport.
pub struct Ingest {
    /// Where ingest listens, ports resolved.
    pub bound: Bound,
    receivers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The async transports, when any is configured.
    tasks: Option<AsyncIngest>,
    /// The inlet the transports cloned; the last one, dropped on stop.
    inlet: Inlet,
    socket_files: Vec<SocketFile>,
}

/// The runtime serving stream connections and gRPC, and what stops it.
struct AsyncIngest {
    runtime: tokio::runtime::Runtime,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl AsyncIngest {
    /// Accepts connections on `listener` until stop, each read into `source`.
    fn serve_streams<L: StreamListener>(&self, listener: L, source: StreamSource) {
        self.tracker.spawn(accept_loop(
            listener,
            source,
            self.stop.clone(),
            self.tracker.clone(),
        ));
    }
}

/// Binds every listener `config.listen` names and starts receiving into `inlet`.
///
/// The gRPC listener speaks TLS when `web`'s configuration in force says so.
pub fn start(config: &Config, mut inlet: Inlet, web: Arc<LiveWeb>) -> Result<Ingest, StartError> {
    inlet.set_tag_styles(tag_styles(config));
    let mut ingest = Ingest {
        bound: Bound::default(),
        receivers: Vec::new(),
        stop: Arc::new(AtomicBool::new(false)),
        tasks: None,
        inlet,
        socket_files: Vec::new(),
    };
    match ingest.start_all(config, web) {
        Ok(()) => Ok(ingest),
        Err(err) => {
            ingest.stop();
            Err(err)
        }
    }
}

impl Ingest {
    fn start_all(&mut self, config: &Config, web: Arc<LiveWeb>) -> Result<(), StartError> {
        self.start_udp(config)?;
        self.start_unix_datagram(config)?;
        self.start_async(config, web)
    }

    fn start_udp(&mut self, config: &Config) -> Result<(), StartError> {
        let threads = config.listen.udp_threads.resolve().get();
        let wanted_buffer = recv_buffer_bytes(config);
        for addr in config.listen.udp.iter() {
            let group = udp::bind_group(addr, threads, wanted_buffer).map_err(|source| {
                StartError::Bind {
                    what: "UDP",
                    address: addr.to_string(),
                    key: "listen.udp",
                    source,
                }
            })?;
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
            let telemetry = self.inlet.telemetry().clone();
            telemetry.enable(Transport::Udp);
            for socket in group.sockets {
                if let Some(inode) = udp::socket_inode(&socket) {
                    telemetry.watch_udp_socket(inode);
                }
                self.spawn_receiver(config, socket, Transport::Udp)?;
            }
        }
        Ok(())
    }

    fn start_unix_datagram(&mut self, config: &Config) -> Result<(), StartError> {
        let Some(path) = &config.listen.unix_datagram else {
            return Ok(());
        };
        let path = path.get();
        let setup = |source| StartError::Setup {
            what: "Unix datagram socket",
            address: path.display().to_string(),
            key: "listen.unix_datagram",
            source,
        };
        let (socket, file) =
            unix_socket::bind_datagram(path, config.listen.unix_socket_mode.bits()).map_err(
                |source| StartError::Bind {
                    what: "Unix datagram socket",
                    address: path.display().to_string(),
                    key: "listen.unix_datagram",
                    source,
                },
            )?;
        self.bound.unix.push(file.path().to_owned());
        self.socket_files.push(file);
        let socket = unix_socket::datagram_socket(socket);
        udp::set_recv_buffer(&socket, recv_buffer_bytes(config)).map_err(setup)?;
        socket
            .set_read_timeout(Some(udp::STOP_POLL))
            .map_err(setup)?;
        tracing::info!(
            path = %path.display(),
            recv_buffer = socket.recv_buffer_size().map_err(setup)?,
            "Unix datagram listener bound"
        );
        self.inlet.telemetry().enable(Transport::UnixDatagram);
        self.spawn_receiver(config, socket, Transport::UnixDatagram)
    }

    fn spawn_receiver(
        &mut self,
        config: &Config,
        socket: socket2::Socket,
        transport: Transport,
    ) -> Result<(), StartError> {
        let receiver = Receiver::new(
            socket,
            transport,
            &self.inlet,
            max_datagram_bytes(config),
            self.stop.clone(),
        );
        let index = self.receivers.len();
        self.receivers
            .push(udp::spawn_receiver(index, receiver).map_err(StartError::Thread)?);
        Ok(())
    }

    /// The runtime, its stream listeners and the gRPC server, when any is configured.
    fn start_async(&mut self, config: &Config, web: Arc<LiveWeb>) -> Result<(), StartError> {
        let listen = &config.listen;
        if listen.tcp.is_empty() && listen.unix_stream.is_none() && listen.grpc.is_none() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(listen.stream_threads.resolve().get())
            .thread_name("tallyd-ingest")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let tasks = self.tasks.insert(AsyncIngest {
            runtime,
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let _entered = tasks.runtime.enter();
        let inlet = &self.inlet;
        let telemetry = inlet.telemetry();
        let limits = &config.limits;
        let limit =
            |listener| ConnectionLimit::new(limits.max_connections, listener, telemetry.clone());
        let source = |transport, listener| {
            telemetry.enable(transport);
            StreamSource {
                inlet: inlet.clone(),
                transport,
                max_line: max_datagram_bytes(config),
                connections: limit(listener),
                idle_timeout: limits.connection_idle_timeout.get(),
            }
        };
        // Every TCP listener draws on one budget, as the `tcp` label counts them.
        let mut tcp = None;
        for addr in listen.tcp.iter() {
            let listener = bind_tcp(addr).map_err(|source| StartError::Bind {
                what: "TCP",
                address: addr.to_string(),
                key: "listen.tcp",
                source,
            })?;
            let local = local_addr(&listener, "TCP", "listen.tcp")?;
            tracing::info!(address = %local, "TCP listener bound");
            self.bound.tcp.push(local);
            let tcp = tcp.get_or_insert_with(|| source(Transport::Tcp, ConnectionListener::Tcp));
            tasks.serve_streams(listener, tcp.clone());
        }
        if let Some(path) = &listen.unix_stream {
            let path = path.get();
            let (listener, file) = bind_unix_stream(path, listen.unix_socket_mode.bits())?;
            tracing::info!(path = %path.display(), "Unix stream listener bound");
            self.bound.unix.push(file.path().to_owned());
            self.socket_files.push(file);
            tasks.serve_streams(
                listener,
                source(Transport::UnixStream, ConnectionListener::UnixStream),
            );
        }
        if let Some(addr) = listen.grpc {
            let addr = addr.get();
            let listener = bind_tcp(addr).map_err(|source| StartError::Bind {
                what: "gRPC",
                address: addr.to_string(),
                key: "listen.grpc",
                source,
            })?;
            let local = local_addr(&listener, "gRPC", "listen.grpc")?;
            tracing::info!(address = %local, "gRPC listener bound (tallyd.v1.Ingest, OTLP metrics)");
            self.bound.grpc = Some(local);
            for transport in [Transport::Grpc, Transport::Otlp] {
                telemetry.enable(transport);
            }
            let queue_wait = config.limits.queue_wait.get();
            let ingest = IngestService::new(inlet.clone(), queue_wait);
            let otlp = OtlpService::new(
                inlet.clone(),
                queue_wait,
                config.aggregation.quantiles.iter().collect(),
                config.limits.series_idle_ttl.get(),
            );
            tasks.tracker.spawn(grpc_server::serve(
                listener,
                grpc_server::Services { ingest, otlp },
                grpc_server::ServerLimits {
                    connections: limit(ConnectionListener::Grpc),
                    idle_timeout: limits.connection_idle_timeout.get(),
                    max_message_bytes: limits.max_grpc_message_bytes.bytes() as usize,
                },
                web,
                tasks.stop.clone(),
            ));
        }
        Ok(())
    }

    /// Stops receiving, lets every connection and call hand over what it read,
    /// and drops the inlet: the shards then drain their queues and publish.
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
        // With every router gone, these are the last queue senders.
        drop(self.inlet);
        drop(self.socket_files);
    }
}

/// A TCP listener on `addr` for the ingest runtime (which must be entered).
fn bind_tcp(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// A Unix stream listener at `path` for the ingest runtime (which must be entered).
fn bind_unix_stream(
    path: &Path,
    mode: u32,
) -> Result<(tokio::net::UnixListener, SocketFile), StartError> {
    let failed = |source| StartError::Bind {
        what: "Unix stream socket",
        address: path.display().to_string(),
        key: "listen.unix_stream",
        source,
    };
    let (listener, file) = unix_socket::bind_stream(path, mode).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(failed)?;
    Ok((listener, file))
}

fn local_addr(
    listener: &tokio::net::TcpListener,
    what: &'static str,
    key: &'static str,
) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Setup {
        what,
        address: "(bound)".into(),
        key,
        source,
    })
}

/// `aggregation.tag_styles` as the decoder takes it.
fn tag_styles(config: &Config) -> TagStyles {
    config
        .aggregation
        .tag_styles
        .iter()
        .fold(TagStyles::NONE, |styles, style| {
            styles.with(match style {
                TagStyle::Dogstatsd => TagStyles::DOGSTATSD,
                TagStyle::Influxdb => TagStyles::INFLUXDB,
                TagStyle::Librato => TagStyles::LIBRATO,
                TagStyle::Signalfx => TagStyles::SIGNALFX,
                TagStyle::Graphite => TagStyles::GRAPHITE,
            })
        })
}

fn max_datagram_bytes(config: &Config) -> usize {
    usize::try_from(config.limits.max_datagram_bytes.bytes()).unwrap_or(usize::MAX)
}

fn recv_buffer_bytes(config: &Config) -> usize {
    usize::try_from(config.listen.udp_recv_buffer.bytes()).unwrap_or(usize::MAX)
}
