//! Shards: one thread per core owning its series; here, so far, time and windows.
//!
//! Window logic reads time only through [`Clock`], so tests move a
//! [`ManualClock`] rather than sleeping. No tokio on this side of the router: a
//! shard is a plain thread fed through bounded queues.

mod clock;
mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use window::{WindowBounds, Windowing};
