//! Closed windows as immutable snapshots, kept for readers; the shards' only output.
//!
//! Shards publish, HTTP handlers read. Readers never take a lock that a shard
//! holds, and a snapshot never changes once published.

mod bounds;
mod history;
mod native;
mod snapshot;

pub use bounds::WindowBounds;
pub use history::{History, Store, WindowListener};
pub use native::{KeyScratch, NativeHistogram, Span};
pub use snapshot::{
    Buckets, Rollup, SampleRollup, SamplesRollup, SeriesRollup, WindowQuantiles, WindowSnapshot,
};
