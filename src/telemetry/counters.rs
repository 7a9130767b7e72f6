//! tallyd's own counters: one shared, lock-free registry written by ingest and shards.
//!
//! Every drop and rejection in the pipeline lands in exactly one counter here, and
//! `http` renders them as `tallyd_*` metrics. Writers accumulate locally and add
//! once per receive batch or window, so the atomics are touched a few thousand
//! times a second, not per line: contention stays far below a cache miss per line.
//! Counters are `Relaxed`: each is a monotonic total read on its own, and no
//! reader infers anything from the order in which two of them moved.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::codec::RejectReason;

/// Why an accepted line was not aggregated. The label names are operator interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The shard's queue was full, so the ingest thread dropped the whole batch.
    QueueFull,
    /// The line would have created a series beyond `limits.max_series`.
    SeriesLimit,
    /// The line was cut by a datagram longer than `limits.max_datagram_bytes`.
    Truncated,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::SeriesLimit,
        DropReason::Truncated,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::SeriesLimit => "series_limit",
            DropReason::Truncated => "truncated",
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
    /// Seconds the last window close took.
    pub last_flush_seconds: FloatGauge,
    /// Seconds spent closing windows, in total.
    pub flush_seconds_total: FloatGauge,
    /// Series removed after `limits.series_idle_ttl` without data.
    pub series_expired: Counter,
    /// The shard thread is running.
    pub running: AtomicBool,
}

/// Counters of the ingest side, per transport.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Datagrams (or frames) received.
    pub datagrams: Counter,
    /// Payload bytes received.
    pub bytes: Counter,
    /// Datagrams longer than `limits.max_datagram_bytes`.
    pub truncated_datagrams: Counter,
    /// Lines seen: accepted metrics, events, service checks and rejected lines.
    pub lines: Counter,
    /// DogStatsD events, counted and not aggregated.
    pub events: Counter,
    /// DogStatsD service checks, counted and not aggregated.
    pub service_checks: Counter,
}

/// The registry of every `tallyd_*` counter.
#[derive(Debug)]
pub struct Telemetry {
    /// UDP ingest.
    pub udp: IngestCounters,
    rejected: [Counter; RejectReason::ALL.len()],
    dropped: [Counter; DropReason::ALL.len()],
    /// One entry per shard, by shard index.
    pub shards: Vec<ShardCounters>,
    /// Kernel inode numbers of the UDP sockets, to find their drops in /proc/net/udp.
    pub udp_socket_inodes: Mutex<Vec<u64>>,
    /// Every listener is bound.
    pub listeners_ready: AtomicBool,
}

impl Telemetry {
    /// A registry for `shards` shards, every counter at zero.
    pub fn new(shards: usize) -> Self {
        Telemetry {
            udp: IngestCounters::default(),
            rejected: Default::default(),
            dropped: Default::default(),
            shards: (0..shards).map(|_| ShardCounters::default()).collect(),
            udp_socket_inodes: Mutex::new(Vec::new()),
            listeners_ready: AtomicBool::new(false),
        }
    }

    /// The counter of lines rejected for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> &Counter {
        &self.rejected[reason.index()]
    }

    /// The counter of lines dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> &Counter {
        &self.dropped[reason as usize]
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
    /// Datagrams received.
    pub datagrams: u64,
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
    pub rejected: [u64; RejectReason::ALL.len()],
    /// Lines dropped, by [`DropReason`].
    pub dropped: [u64; DropReason::ALL.len()],
}

impl LocalTally {
    /// Adds everything to `telemetry` (for the transport `ingest`) and resets to zero.
    pub fn publish(&mut self, telemetry: &Telemetry, ingest: &IngestCounters) {
        ingest.datagrams.add(self.datagrams);
        ingest.bytes.add(self.bytes);
        ingest.truncated_datagrams.add(self.truncated_datagrams);
        ingest.lines.add(self.lines);
        ingest.events.add(self.events);
        ingest.service_checks.add(self.service_checks);
        for (reason, n) in RejectReason::ALL.iter().zip(self.rejected) {
            telemetry.rejected(*reason).add(n);
        }
        for (reason, n) in DropReason::ALL.iter().zip(self.dropped) {
            telemetry.dropped(*reason).add(n);
        }
        *self = LocalTally::default();
    }
}
