//! tallyd's own counters: one shared, lock-free registry written by ingest and shards.
//!
//! Every drop and rejection in the pipeline lands in exactly one counter here, and
//! `http` renders them as `tallyd_*` metrics. Writers accumulate locally and add
//! once per receive batch or window, so the atomics are touched a few thousand
//! times a second, not per line: contention stays far below a cache miss per line.
//! Counters are `Relaxed`: each is a monotonic total read on its own, and no
//! reader infers anything from the order in which two of them moved.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Transport;
use crate::codec::RejectReason;
use crate::kernels::Backend;

/// Now, in unix seconds: the value of every `*_timestamp_seconds` gauge.
pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why an accepted line was not aggregated. The label names are operator interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The shard's queue was full, so the ingest thread dropped the whole batch.
    QueueFull,
    /// The line would have created a series beyond `limits.max_series`.
    SeriesLimit,
    /// The line was cut by a datagram longer than `limits.max_datagram_bytes`.
    Truncated,
    /// A gRPC call's deadline passed while a shard queue was full; the events not
    /// queued were reported back to the client as rejected.
    QueueTimeout,
    /// A `mapping.file` rule with `action: drop` matched the name.
    MappingDrop,
    /// A `mapping.file` rule matched but its name template gave an empty name.
    MappingEmptyName,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::SeriesLimit,
        DropReason::Truncated,
        DropReason::QueueTimeout,
        DropReason::MappingDrop,
        DropReason::MappingEmptyName,
    ];

    /// The reason's position in [`DropReason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::SeriesLimit => "series_limit",
            DropReason::Truncated => "truncated",
            DropReason::QueueTimeout => "queue_timeout",
            DropReason::MappingDrop => "mapping_drop",
            DropReason::MappingEmptyName => "mapping_empty_name",
        }
    }
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        if n != 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge holding an `f64`.
#[derive(Debug, Default)]
pub struct FloatGauge(AtomicU64);

impl FloatGauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// What one shard reports about itself.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Series the shard holds now.
    pub series: AtomicU64,
    /// Windows the shard has closed.
    pub windows_flushed: Counter,
    /// Windows the shard never closed: it was further behind than it catches up.
    pub windows_skipped: Counter,
    /// Seconds the last window close took.
    pub last_flush_seconds: FloatGauge,
    /// Seconds spent closing windows, in total.
    pub flush_seconds_total: FloatGauge,
    /// Seconds the flush thread stood aside while its shard was behind.
    pub flush_paused_seconds_total: FloatGauge,
    /// Series removed after `limits.series_idle_ttl` without data.
    pub series_expired: Counter,
    /// The shard thread is running.
    pub running: AtomicBool,
}

/// Counters of the ingest side, one set per [`Transport`].
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// The transport has a listener bound (its metrics are exported).
    pub enabled: AtomicBool,
    /// Frames received: datagrams, or gRPC messages. Stream transports have none.
    pub frames: Counter,
    /// Payload bytes received.
    pub bytes: Counter,
    /// Datagrams longer than `limits.max_datagram_bytes`.
    pub truncated_datagrams: Counter,
    /// Lines (gRPC: values, OTLP: data points) seen: accepted metrics, events,
    /// service checks and rejected ones.
    pub lines: Counter,
    /// DogStatsD events, counted and not aggregated.
    pub events: Counter,
    /// DogStatsD service checks, counted and not aggregated.
    pub service_checks: Counter,
    /// Lines refused, by [`RejectReason::index`].
    rejected: [Counter; RejectReason::ALL.len()],
    /// Connections (streams, gRPC connections) accepted.
    pub connections_accepted: Counter,
    /// Connections open now.
    pub connections_open: AtomicI64,
}

impl IngestCounters {
    /// The counter of lines refused for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> &Counter {
        &self.rejected[reason.index()]
    }
}

/// An open connection, counted in `connections_open` while it lives.
#[derive(Debug)]
pub struct ConnectionGuard {
    telemetry: Arc<Telemetry>,
    transport: Transport,
}

impl ConnectionGuard {
    /// Counts a new connection of `transport`; dropping the guard counts it closed.
    pub fn new(telemetry: Arc<Telemetry>, transport: Transport) -> Self {
        let counters = telemetry.ingest(transport);
        counters.connections_accepted.add(1);
        counters.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            telemetry,
            transport,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let counters = self.telemetry.ingest(self.transport);
        counters.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The storage behind every `tallyd_*` family (see [`super::catalogue`]),
/// written where the events happen and read by [`Telemetry::collect`].
#[derive(Debug)]
pub struct Telemetry {
    ingest: [IngestCounters; Transport::ALL.len()],
    dropped: [Counter; DropReason::ALL.len()],
    /// One entry per shard, by shard index.
    pub shards: Vec<ShardCounters>,
    /// Kernel inode numbers of the UDP sockets, to find their drops in /proc/net/udp.
    pub udp_socket_inodes: Mutex<Vec<u64>>,
    /// Every listener is bound.
    pub listeners_ready: AtomicBool,
    /// The kernel backend completing windows, once chosen.
    pub kernel_backend: OnceLock<Backend>,
    /// The GPU offload of large windows.
    pub gpu: super::GpuStats,
    /// Whether the last config load (startup or reload) succeeded.
    pub config_last_reload_success: AtomicBool,
    /// When the config was last loaded successfully, in unix seconds.
    pub config_last_reload_success_seconds: FloatGauge,
    /// The push sinks, each with its counters.
    pub sinks: super::SinkRegistry,
    /// Handshakes failed and requests refused at the HTTP and gRPC listeners.
    pub access: super::AccessCounters,
    /// How long datagrams waited in their socket: UDP, then Unix datagram.
    socket_wait: [super::LatencyHistogram; 2],
    /// From a batch's oldest line's receipt to its shard applying it.
    pub ingest_delay: super::LatencyHistogram,
    /// From a window's end to its publication.
    pub window_publish_delay: super::LatencyHistogram,
}

impl Telemetry {
    /// A registry for `shards` shards, every counter at zero.
    pub fn new(shards: usize) -> Self {
        Telemetry {
            ingest: Default::default(),
            dropped: Default::default(),
            shards: (0..shards).map(|_| ShardCounters::default()).collect(),
            udp_socket_inodes: Mutex::new(Vec::new()),
            listeners_ready: AtomicBool::new(false),
            kernel_backend: OnceLock::new(),
            gpu: super::GpuStats::default(),
            config_last_reload_success: AtomicBool::new(true),
            config_last_reload_success_seconds: FloatGauge::default(),
            sinks: super::SinkRegistry::default(),
            access: super::AccessCounters::default(),
            socket_wait: Default::default(),
            ingest_delay: Default::default(),
            window_publish_delay: Default::default(),
        }
    }

    /// How long datagrams waited in a socket of `transport` (Unix datagram,
    /// or UDP for any other).
    pub fn socket_wait(&self, transport: Transport) -> &super::LatencyHistogram {
        &self.socket_wait[usize::from(transport == Transport::UnixDatagram)]
    }

    /// Adds a UDP socket, by inode, to those whose kernel drops are reported.
    pub fn watch_udp_socket(&self, inode: u64) {
        if let Ok(mut inodes) = self.udp_socket_inodes.lock() {
            inodes.push(inode);
        }
    }

    /// Marks `transport` as having a listener, so its metrics are exported.
    pub fn enable(&self, transport: Transport) {
        self.ingest(transport)
            .enabled
            .store(true, Ordering::Relaxed);
    }

    /// The counters of `transport`.
    pub fn ingest(&self, transport: Transport) -> &IngestCounters {
        &self.ingest[transport.index()]
    }

    /// The counter of lines dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> &Counter {
        &self.dropped[reason.index()]
    }

    /// Listeners bound and every shard running: what `/readyz` reports.
    pub fn is_ready(&self) -> bool {
        self.listeners_ready.load(Ordering::Acquire)
            && self
                .shards
                .iter()
                .all(|s| s.running.load(Ordering::Acquire))
    }
}

/// Per-thread tallies added to the shared [`Telemetry`] once per receive batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalTally {
    /// Frames (datagrams, gRPC messages) received.
    pub frames: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Datagrams cut at the size limit.
    pub truncated_datagrams: u64,
    /// Lines seen.
    pub lines: u64,
    /// Events seen.
    pub events: u64,
    /// Service checks seen.
    pub service_checks: u64,
    /// Lines rejected, by [`RejectReason::index`].
    rejected: [u64; RejectReason::ALL.len()],
    /// Lines dropped, by [`DropReason::index`].
    dropped: [u64; DropReason::ALL.len()],
}

impl LocalTally {
    /// Counts `n` lines refused for `reason`.
    #[inline]
    pub fn reject(&mut self, reason: RejectReason, n: u64) {
        self.rejected[reason.index()] += n;
    }

    /// Lines refused for `reason` so far.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()]
    }

    /// Counts `n` valid lines dropped for `reason`.
    #[inline]
    pub fn drop_lines(&mut self, reason: DropReason, n: u64) {
        self.dropped[reason.index()] += n;
    }

    /// Lines dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Adds everything to `telemetry` (for `transport`) and resets to zero.
    pub fn publish(&mut self, telemetry: &Telemetry, transport: Transport) {
        let ingest = telemetry.ingest(transport);
        ingest.frames.add(self.frames);
        ingest.bytes.add(self.bytes);
        ingest.truncated_datagrams.add(self.truncated_datagrams);
        ingest.lines.add(self.lines);
        ingest.events.add(self.events);
        ingest.service_checks.add(self.service_checks);
        for (reason, n) in RejectReason::ALL.iter().zip(self.rejected) {
            ingest.rejected(*reason).add(n);
        }
        for (reason, n) in DropReason::ALL.iter().zip(self.dropped) {
            telemetry.dropped(*reason).add(n);
        }
        *self = LocalTally::default();
    }
}
