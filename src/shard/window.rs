//! Window arithmetic: which aligned window a moment falls in, and when it closes.
//!
//! Windows are aligned to multiples of the interval since the unix epoch, so every
//! tallyd on a host (and every shard in one) cuts time at the same instants, and a
//! window's bounds can be compared across machines. Resolution is one millisecond;
//! the config guarantees an interval of at least 10 ms.

use std::time::Duration;

use crate::store::WindowBounds;

/// Cuts time into windows of one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    interval_ms: u64,
}

impl Windowing {
    /// Windows of `interval`, rounded down to whole milliseconds (at least 1 ms).
    pub fn new(interval: Duration) -> Self {
        let interval_ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Windowing { interval_ms }
    }

    /// The window length in milliseconds.
    pub const fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The window holding the moment `unix_ms`.
    pub const fn containing(&self, unix_ms: u64) -> WindowBounds {
        let start = unix_ms - unix_ms % self.interval_ms;
        WindowBounds {
            start_unix_ms: start,
            end_unix_ms: start.saturating_add(self.interval_ms),
        }
    }

    /// Time from `unix_ms` until the window holding it closes (never zero).
    pub const fn until_close(&self, unix_ms: u64) -> Duration {
        Duration::from_millis(self.containing(unix_ms).end_unix_ms - unix_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{Clock, ManualClock};

    const TEN_SECONDS: Duration = Duration::from_secs(10);

    #[test]
    fn windows_align_to_multiples_of_the_interval() {
        let w = Windowing::new(TEN_SECONDS);
        let bounds = WindowBounds {
            start_unix_ms: 1_700_000_000_000,
            end_unix_ms: 1_700_000_010_000,
        };
        assert_eq!(w.containing(1_700_000_000_000), bounds);
        assert_eq!(w.containing(1_700_000_009_999), bounds);
        assert_eq!(
            w.containing(1_700_000_010_000).start_unix_ms,
            1_700_000_010_000
        );
        assert_eq!(bounds.seconds(), 10.0);
    }

    #[test]
    fn a_window_closes_exactly_at_its_end() {
        let clock = ManualClock::new(1_700_000_003_250);
        let w = Windowing::new(TEN_SECONDS);
        let open = w.containing(clock.now_unix_ms());
        assert_eq!(
            w.until_close(clock.now_unix_ms()),
            Duration::from_millis(6_750)
        );
        clock.advance(6_749);
        assert!(!open.is_closed_at(clock.now_unix_ms()));
        clock.advance(1);
        assert!(open.is_closed_at(clock.now_unix_ms()));
        assert_eq!(w.until_close(clock.now_unix_ms()), TEN_SECONDS);
    }

    #[test]
    fn short_intervals_keep_millisecond_alignment() {
        let w = Windowing::new(Duration::from_millis(250));
        assert_eq!(w.containing(1_001).start_unix_ms, 1_000);
        assert_eq!(w.containing(1_249).end_unix_ms, 1_250);
    }
}
