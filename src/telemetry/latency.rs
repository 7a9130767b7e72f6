//! Latency histograms of tallyd's own pipeline: how long a datagram waited in
//! its socket before a receiver read it, how long from its receipt to its
//! shard applying it, and how long from a window's end to the window showing
//! on `/metrics`.
//!
//! Fixed bounds from 50 µs to 10 s (Prometheus' classic buckets, cumulative at
//! scrape time), one atomic add per bucket hit, sum in nanoseconds. Observed
//! once per receive call, per batch (up to 1,024 samples) and per window, so
//! the cost is tens of nanoseconds per thousands of lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Upper bounds of the buckets, seconds (`+Inf` implied).
pub const LATENCY_BOUNDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// One latency histogram, written by many threads.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per bucket (the last is `+Inf`), not cumulative.
    hits: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

/// What a scrape reads of a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, seconds.
    pub bounds: &'static [f64],
    /// Observations at or below each bound (cumulative).
    pub cumulative: Vec<u64>,
    /// Every observation.
    pub count: u64,
    /// Their sum, seconds.
    pub sum: f64,
}

impl LatencyHistogram {
    /// Records one latency of `nanos` nanoseconds.
    pub fn observe_nanos(&self, nanos: u64) {
        let seconds = nanos as f64 * 1e-9;
        let bucket = LATENCY_BOUNDS.partition_point(|&bound| bound < seconds);
        self.hits[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Records the time from `since_unix_nanos` (wall clock) to now; nothing
    /// when `since_unix_nanos` is 0 (unknown). A clock step backwards counts 0.
    pub fn observe_since(&self, since_unix_nanos: u64) {
        if since_unix_nanos != 0 {
            self.observe_nanos(unix_nanos().saturating_sub(since_unix_nanos));
        }
    }

    /// The buckets as a scrape shows them.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(LATENCY_BOUNDS.len());
        for hits in &self.hits[..LATENCY_BOUNDS.len()] {
            total += hits.load(Ordering::Relaxed);
            cumulative.push(total);
        }
        total += self.hits[LATENCY_BOUNDS.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            bounds: &LATENCY_BOUNDS,
            cumulative,
            count: total,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        }
    }
}

/// Nanoseconds since the unix epoch, by the wall clock (the kernel's receive
/// timestamps use the same clock).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let histogram = LatencyHistogram::default();
        histogram.observe_nanos(50_000); // 50 µs: on the first bound
        histogram.observe_nanos(60_000);
        histogram.observe_nanos(3_000_000); // 3 ms
        histogram.observe_nanos(20_000_000_000); // 20 s: +Inf only
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.cumulative[0], 1);
        assert_eq!(snapshot.cumulative[1], 2);
        let at = |bound: f64| {
            snapshot.cumulative[LATENCY_BOUNDS.iter().position(|&b| b == bound).unwrap()]
        };
        assert_eq!(at(0.0025), 2);
        assert_eq!(at(0.005), 3);
        assert_eq!(at(10.0), 3);
        assert!((snapshot.sum - 20.003_11).abs() < 1e-9, "{}", snapshot.sum);
    }

    #[test]
    fn an_unknown_start_is_not_observed() {
        let histogram = LatencyHistogram::default();
        histogram.observe_since(0);
        histogram.observe_since(unix_nanos());
        assert_eq!(histogram.snapshot().count, 1);
    }
}
