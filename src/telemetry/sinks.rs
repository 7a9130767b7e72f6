//! What each push sink reports about itself: samples sent, failed requests,
//! retries and drops by reason, its queue, and its last success.
//!
//! A sink counts from its own thread; `collect` reads the counters at scrape
//! time (and when a sink pushes tallyd's own metrics).

use std::sync::Arc;

use super::counters::{Counter, FloatGauge};

/// Why a sink gave up samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkDropReason {
    /// The queue was over `capacity`: the oldest went.
    QueueFull,
    /// The receiver refused them for good (4xx, or 429 without retries).
    Rejected,
    /// Still queued when the shutdown deadline passed.
    Shutdown,
    /// Shares its name with another series where the target cannot tell them
    /// apart (Graphite without tags): only the first is sent.
    NameConflict,
}

impl SinkDropReason {
    /// Every reason, in the order they are reported.
    pub const ALL: [SinkDropReason; 4] = [
        SinkDropReason::QueueFull,
        SinkDropReason::Rejected,
        SinkDropReason::Shutdown,
        SinkDropReason::NameConflict,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkDropReason::QueueFull => "queue_full",
            SinkDropReason::Rejected => "rejected",
            SinkDropReason::Shutdown => "shutdown",
            SinkDropReason::NameConflict => "name_conflict",
        }
    }
}

/// Why one request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFailure {
    /// No connection, or it broke.
    Connection,
    /// No answer within `remote_timeout`.
    Timeout,
    /// A 5xx answer.
    ServerError,
    /// A 429 answer.
    TooManyRequests,
    /// Any other non-2xx answer.
    ClientError,
}

impl SinkFailure {
    /// Every kind, in the order they are reported.
    pub const ALL: [SinkFailure; 5] = [
        SinkFailure::Connection,
        SinkFailure::Timeout,
        SinkFailure::ServerError,
        SinkFailure::TooManyRequests,
        SinkFailure::ClientError,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkFailure::Connection => "connection",
            SinkFailure::Timeout => "timeout",
            SinkFailure::ServerError => "server_error",
            SinkFailure::TooManyRequests => "too_many_requests",
            SinkFailure::ClientError => "client_error",
        }
    }
}

/// One sink's counters.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// The `sink` label.
    pub name: String,
    /// Float samples the receiver accepted.
    pub samples_sent: Counter,
    /// Native histograms the receiver accepted.
    pub histograms_sent: Counter,
    dropped: [Counter; SinkDropReason::ALL.len()],
    failed: [Counter; SinkFailure::ALL.len()],
    /// Requests sent again after a failure.
    pub retries: Counter,
    /// Requests completed, whatever their answer.
    pub requests: Counter,
    /// Time spent in requests, seconds.
    pub request_seconds: FloatGauge,
    /// Samples waiting to be sent (in flight included).
    pub queue_samples: FloatGauge,
    /// Their size, roughly, in bytes.
    pub queue_bytes: FloatGauge,
    /// When a request last succeeded, unix seconds (0 before).
    pub last_success_seconds: FloatGauge,
}

impl SinkStats {
    /// Counters at zero for the sink `name`.
    pub fn new(name: String) -> Self {
        SinkStats {
            name,
            ..SinkStats::default()
        }
    }

    /// Samples given up for `reason`.
    pub fn dropped(&self, reason: SinkDropReason) -> &Counter {
        &self.dropped[reason as usize]
    }

    /// Requests that failed for `reason`.
    pub fn failed(&self, reason: SinkFailure) -> &Counter {
        &self.failed[reason as usize]
    }
}

/// The sinks registered, in config order.
#[derive(Debug, Default)]
pub struct SinkRegistry(std::sync::Mutex<Vec<Arc<SinkStats>>>);

impl SinkRegistry {
    /// Counters for a new sink `name`, reported from now on.
    pub fn register(&self, name: String) -> Arc<SinkStats> {
        let stats = Arc::new(SinkStats::new(name));
        if let Ok(mut sinks) = self.0.lock() {
            sinks.push(stats.clone());
        }
        stats
    }

    /// Every sink's counters.
    pub fn all(&self) -> Vec<Arc<SinkStats>> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
