//! The one way into the shards that every transport shares: the shard queues,
//! the pool of reusable batches, and the counters.
//!
//! The app builds one [`Inlet`] from the shards it started and hands it to
//! [`start`](super::start); each receiving thread, stream connection and gRPC
//! call takes a [`Router`] from it. Dropping the last inlet (and the routers made
//! from it) disconnects the queues, which tells the shards to drain and close
//! their windows: ingest keeps no other handle on them.

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::codec::{Decoder, TagStyles};
use crate::shard::{Batch, BatchPool, LiveMapping, Overflow, Router};
use crate::telemetry::Telemetry;

/// The shard queues, recycled batches and counters, cloned by every transport.
#[derive(Clone)]
pub struct Inlet {
    queues: Vec<Sender<Batch>>,
    pool: BatchPool,
    telemetry: Arc<Telemetry>,
    mapping: Arc<LiveMapping>,
    tag_styles: TagStyles,
}

impl Inlet {
    /// An inlet into `queues` (one per shard, in shard order), taking batches
    /// from `pool`, counting into `telemetry`, keying lines under `mapping`.
    pub fn new(
        queues: Vec<Sender<Batch>>,
        pool: BatchPool,
        telemetry: Arc<Telemetry>,
        mapping: Arc<LiveMapping>,
    ) -> Self {
        Inlet {
            queues,
            pool,
            telemetry,
            mapping,
            tag_styles: TagStyles::DOGSTATSD,
        }
    }

    /// Reads tags in `styles` from now on (`aggregation.tag_styles`).
    pub fn set_tag_styles(&mut self, styles: TagStyles) {
        self.tag_styles = styles;
    }

    /// A decoder of lines up to `max_line_bytes`, reading the configured tag styles.
    pub fn decoder(&self, max_line_bytes: usize) -> Decoder {
        Decoder::new(max_line_bytes).with_tag_styles(self.tag_styles)
    }

    /// A router into the shard queues that meets a full queue with `overflow`.
    pub fn router(&self, overflow: Overflow) -> Router {
        let mut router = Router::new(self.queues.clone(), self.pool.clone());
        router.set_overflow(overflow);
        router.set_mapping(self.mapping.clone());
        router
    }

    /// The counters.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }
}
