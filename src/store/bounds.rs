//! The span of time a closed window covers: what every snapshot is labelled with.
//!
//! Shards cut time into windows (`shard::Windowing`) and publish each window
//! under its bounds; readers compare and label windows by them. The type lives
//! here, below the shards, so that the store never looks up at its writers.

/// The half-open span `[start_unix_ms, end_unix_ms)` of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBounds {
    /// First millisecond in the window.
    pub start_unix_ms: u64,
    /// First millisecond after the window.
    pub end_unix_ms: u64,
}

impl WindowBounds {
    /// True once the window has ended at time `unix_ms`.
    pub const fn is_closed_at(&self, unix_ms: u64) -> bool {
        unix_ms >= self.end_unix_ms
    }

    /// The window's length in seconds, for per-second rates.
    pub fn seconds(&self) -> f64 {
        (self.end_unix_ms - self.start_unix_ms) as f64 / 1000.0
    }
}
