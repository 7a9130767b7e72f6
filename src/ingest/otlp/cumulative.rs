//! Turning cumulative OTLP streams into increases per window.
//!
//! A cumulative point carries the total since the stream's start time. tallyd
//! aggregates increases, so it remembers the last total of each stream (keyed by
//! a hash of series name and tags) and routes the difference. A start time that
//! changes, or a total that goes down, is a reset: the new total is the increase
//! since the reset. The first point of a stream is counted in full only when the
//! stream started while tallyd was running; an older stream's first point is a
//! baseline, since most of its total was counted before tallyd saw it. Streams
//! silent for `limits.series_idle_ttl` are forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often forgotten streams are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The last total of every cumulative stream.
#[derive(Debug)]
pub struct Cumulative {
    streams: HashMap<u128, Last>,
    started_unix_nanos: u64,
    idle_ttl: Duration,
    last_sweep: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    start_unix_nanos: u64,
    total: f64,
    seen: Instant,
}

impl Cumulative {
    /// A tracker for a process that started at `started_unix_nanos`.
    pub fn new(started_unix_nanos: u64, idle_ttl: Duration) -> Self {
        Cumulative {
            streams: HashMap::new(),
            started_unix_nanos,
            idle_ttl,
            last_sweep: Instant::now(),
        }
    }

    /// The increase that `total` (since `start_unix_nanos`) makes on stream `key`,
    /// or `None` for the baseline point of a stream older than tallyd.
    pub fn increase(
        &mut self,
        key: u128,
        start_unix_nanos: u64,
        total: f64,
        now: Instant,
    ) -> Option<f64> {
        let last = Last {
            start_unix_nanos,
            total,
            seen: now,
        };
        match self.streams.insert(key, last) {
            Some(previous)
                if previous.start_unix_nanos == start_unix_nanos && total >= previous.total =>
            {
                Some(total - previous.total)
            }
            Some(_) => Some(total),
            None if start_unix_nanos != 0 && start_unix_nanos >= self.started_unix_nanos => {
                Some(total)
            }
            None => None,
        }
    }

    /// Forgets streams idle for longer than the TTL, at most once a minute.
    pub fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        let ttl = self.idle_ttl;
        self.streams
            .retain(|_, last| now.duration_since(last.seen) < ttl);
    }

    /// True when no stream is remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTED: u64 = 1_000;

    #[test]
    fn totals_become_increases_and_resets_start_over() {
        let mut streams = Cumulative::new(STARTED, Duration::from_secs(300));
        let now = Instant::now();
        // Started after tallyd: the first total counts in full.
        assert_eq!(streams.increase(1, 2_000, 5.0, now), Some(5.0));
        assert_eq!(streams.increase(1, 2_000, 7.5, now), Some(2.5));
        assert_eq!(streams.increase(1, 2_000, 7.5, now), Some(0.0));
        // The total went down: the process behind the stream restarted.
        assert_eq!(streams.increase(1, 2_000, 3.0, now), Some(3.0));
        // A new start time is a reset even when the total is higher.
        assert_eq!(streams.increase(1, 9_000, 10.0, now), Some(10.0));
    }

    #[test]
    fn the_first_point_of_an_older_stream_is_only_a_baseline() {
        let mut streams = Cumulative::new(STARTED, Duration::from_secs(300));
        let now = Instant::now();
        assert_eq!(streams.increase(2, 500, 100.0, now), None);
        assert_eq!(streams.increase(2, 500, 104.0, now), Some(4.0));
        assert_eq!(streams.increase(3, 0, 100.0, now), None);
    }

    #[test]
    fn idle_streams_are_forgotten() {
        let mut streams = Cumulative::new(STARTED, Duration::from_secs(1));
        let now = Instant::now();
        streams.increase(1, 2_000, 1.0, now);
        streams.sweep(now + SWEEP_EVERY);
        assert!(streams.is_empty());
    }
}
