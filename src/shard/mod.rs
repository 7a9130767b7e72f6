//! Shards: one thread per core owning its series, fed by the ingest threads.
//!
//! Ingest hashes each line and appends it to a per-shard [`Batch`] ([`Router`]);
//! the shard thread ([`spawn_shard`]) applies batches to its [`ShardState`] and
//! closes windows on time, publishing rollups to the store. Window logic reads
//! time only through [`Clock`], so tests move a [`ManualClock`] rather than
//! sleeping. No tokio on this side of the router: a shard is a plain thread fed
//! through bounded queues.

mod batch;
mod binned;
mod bucket_hits;
mod clock;
mod flush;
mod key_map;
mod mapped_names;
mod native_book;
mod pacing;
mod priority;
mod router;
mod series;
mod state;
mod thread;
mod tuning;
mod window;
mod window_samples;

pub use batch::{Batch, BatchPool, BatchSample};
pub use clock::{Clock, ManualClock, SystemClock};
pub use flush::{ClosedWindow, Completion, FlushScratch};
pub use mapped_names::LiveMapping;
pub use native_book::{NativeBook, NativeSettings};
pub use router::{Overflow, RouteError, Router};
pub use series::{Segment, SeriesSettings};
pub use state::{ShardSettings, ShardState};
pub use thread::{QUEUE_BATCHES, ShardContext, Shards, spawn_shard};
pub use tuning::{LiveTuning, Tuning};
pub use window::Windowing;
pub use window_samples::WindowSamples;

#[cfg(test)]
mod tests;
