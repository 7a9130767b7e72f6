//! Window arithmetic: which aligned window a moment falls in, and when it closes.
//!
//! Windows are aligned to multiples of the interval since the unix epoch, so every
//! tallyd on a host (and every shard in one) cuts time at the same instants, and a
//! window's bounds can be compared across machines. Resolution is one millisecond;
//! the config guarantees an interval of at least 10 ms.
//!
//! A shard that falls behind (starved of CPU, or waiting on a slow flush) wakes
//! past the end of more than one window. It still closes every window it
//! missed, empty, up to [`MAX_CATCH_UP_WINDOWS`] of them, so each window every
//! shard publishes holds every live series: a consumer never sees a series
//! vanish for one window (the OTLP sink would start its cumulative stream over,
//! remote_write would mark it stale). Farther behind than that (the clock
//! jumped), the missed windows are skipped and counted.

use std::time::Duration;

use crate::store::WindowBounds;

/// How many missed windows a late shard still closes (empty) before it skips
/// to the window holding now: enough for a shard starved for a few intervals,
/// few enough that a clock jumping hours ahead costs a handful of closes.
pub const MAX_CATCH_UP_WINDOWS: u64 = 16;

/// The window to open next, and how many were skipped to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextWindow {
    /// Its bounds.
    pub bounds: WindowBounds,
    /// Windows between the last closed and this one that no shard part will
    /// be published for.
    pub skipped: u64,
}

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

    /// The window a shard opens next, at `now_unix_ms`, after closing the one
    /// that ended at `last_end_unix_ms` (none yet: `None`): the window right
    /// after the last when the shard is at most [`MAX_CATCH_UP_WINDOWS`]
    /// behind, else the window holding now, with the count of windows skipped.
    pub fn next_after(&self, last_end_unix_ms: Option<u64>, now_unix_ms: u64) -> NextWindow {
        let current = self.containing(now_unix_ms);
        let Some(last_end) = last_end_unix_ms else {
            return NextWindow {
                bounds: current,
                skipped: 0,
            };
        };
        let behind = current.start_unix_ms.saturating_sub(last_end) / self.interval_ms;
        if behind == 0 || behind > MAX_CATCH_UP_WINDOWS {
            return NextWindow {
                bounds: current,
                skipped: behind,
            };
        }
        NextWindow {
            bounds: WindowBounds {
                start_unix_ms: last_end,
                end_unix_ms: last_end.saturating_add(self.interval_ms),
            },
            skipped: 0,
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
    fn a_late_shard_opens_each_missed_window_and_skips_only_past_the_limit() {
        let w = Windowing::new(TEN_SECONDS);
        let at = |start: u64| WindowBounds {
            start_unix_ms: start,
            end_unix_ms: start + 10_000,
        };
        // The first window, and a shard on time: the window holding now.
        let first = w.next_after(None, 1_700_000_003_250);
        assert_eq!((first.bounds, first.skipped), (at(1_700_000_000_000), 0));
        let on_time = w.next_after(Some(1_700_000_010_000), 1_700_000_010_004);
        assert_eq!(
            (on_time.bounds, on_time.skipped),
            (at(1_700_000_010_000), 0)
        );
        // Woken three windows late: the one right after the last closed.
        let late = w.next_after(Some(1_700_000_010_000), 1_700_000_040_001);
        assert_eq!((late.bounds, late.skipped), (at(1_700_000_010_000), 0));
        // Exactly the limit behind still catches up; one more skips.
        let limit = MAX_CATCH_UP_WINDOWS * 10_000;
        let edge = w.next_after(Some(1_700_000_010_000), 1_700_000_010_000 + limit);
        assert_eq!(edge.bounds, at(1_700_000_010_000));
        let jumped = w.next_after(Some(1_700_000_010_000), 1_700_000_010_000 + limit + 10_000);
        assert_eq!(
            (jumped.bounds, jumped.skipped),
            (
                at(1_700_000_010_000 + limit + 10_000),
                MAX_CATCH_UP_WINDOWS + 1
            )
        );
        // A clock that went back opens the window holding now, as before.
        let back = w.next_after(Some(1_700_000_010_000), 1_700_000_000_500);
        assert_eq!((back.bounds, back.skipped), (at(1_700_000_000_000), 0));
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
