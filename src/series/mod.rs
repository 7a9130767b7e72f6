//! Series identity: which events belong together, and which shard owns them.
//!
//! Pure and synchronous, like `codec`: no I/O, no tokio. Ingest threads compute a
//! [`SeriesKey`] per event and route it with [`SeriesKey::shard`]; shards use the
//! key alone as the identity of a series.

mod key;

pub use key::{KeyHasher, SeriesKey};
