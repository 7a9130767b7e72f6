//! Series identity: which events belong together, which shard owns them, and
//! their readable names.
//!
//! Pure and synchronous, like `codec`: no I/O, no tokio. Ingest threads compute a
//! [`SeriesKey`] per event and route it with [`SeriesKey::shard`]; shards use the
//! key alone as the identity of a series and build a [`SeriesMeta`] once, when a
//! series first appears.

mod key;
mod meta;

pub use key::{KeyHasher, SeriesKey};
pub use meta::{
    NativeOverride, Observer, SeriesMeta, SeriesOptions, TagIter, escape_label_value, label_key_is,
    sanitise_name,
};
