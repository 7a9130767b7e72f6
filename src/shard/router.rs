//! Routing decoded lines to the shard that owns their series.
//!
//! Each ingest thread owns one [`Router`]: a hasher, one open [`Batch`] per shard,
//! and a sender per shard queue. A line is hashed once, appended to its shard's
//! batch, and the batch is handed over when full or when the ingest thread calls
//! [`Router::flush`] (UDP does so once the oldest waiting line is a millisecond
//! old, or the socket is idle), which bounds how long a line waits in a
//! half-full batch.
//!
//! Queues are bounded `crossbeam-channel`s (lock-free in the steady state): a
//! shard that cannot keep up makes `try_send` fail instead of growing memory. For
//! datagram transports the batch is then dropped and each of its lines counted in
//! `tallyd_lines_dropped_total{reason="queue_full"}`: blocking would only move the
//! loss into the kernel's socket buffer, where it is counted less precisely.

use crossbeam_channel::{Sender, TrySendError};

use super::batch::{Batch, BatchPool};
use crate::codec::Metric;
use crate::series::KeyHasher;
use crate::telemetry::{DropReason, LocalTally};

/// Ingest's side of the shard queues.
#[derive(Debug)]
pub struct Router {
    hasher: KeyHasher,
    queues: Vec<Sender<Batch>>,
    open: Vec<Batch>,
    pool: BatchPool,
}

/// What routing a line can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// A name, tag list or set member over 64 KiB.
    TooLong,
}

impl Router {
    /// A router feeding `queues` (one per shard, by shard index).
    pub fn new(queues: Vec<Sender<Batch>>, pool: BatchPool) -> Self {
        let open = queues.iter().map(|_| pool.take()).collect();
        Router {
            hasher: KeyHasher::new(),
            queues,
            open,
            pool,
        }
    }

    /// Adds `metric` to its shard's batch, handing the batch over when it fills.
    #[inline]
    pub fn route(&mut self, metric: &Metric<'_>, tally: &mut LocalTally) -> Result<(), RouteError> {
        let key = self.hasher.key(metric.kind, metric.name, metric.tags);
        let shard = key.shard(self.queues.len());
        if !self.open[shard].push(key, metric) {
            return Err(RouteError::TooLong);
        }
        if self.open[shard].is_full() {
            self.send(shard, tally);
        }
        Ok(())
    }

    /// Hands every non-empty batch to its shard.
    pub fn flush(&mut self, tally: &mut LocalTally) {
        for shard in 0..self.open.len() {
            if !self.open[shard].samples.is_empty() {
                self.send(shard, tally);
            }
        }
    }

    fn send(&mut self, shard: usize, tally: &mut LocalTally) {
        let batch = std::mem::replace(&mut self.open[shard], self.pool.take());
        match self.queues[shard].try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                tally.dropped[DropReason::QueueFull as usize] += batch.lines;
                self.pool.give_back(batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decoder, Message};

    fn route_all(router: &mut Router, text: &str, tally: &mut LocalTally) {
        for message in Decoder::new(1024).lines(text.as_bytes()) {
            if let Ok(Message::Metric(m)) = message {
                router.route(&m, tally).unwrap();
            }
        }
    }

    #[test]
    fn lines_of_one_series_reach_one_shard_whatever_the_tag_order() {
        let (queues, receivers): (Vec<_>, Vec<_>) =
            (0..4).map(|_| crossbeam_channel::bounded(8)).unzip();
        let mut router = Router::new(queues, BatchPool::new(16));
        let mut tally = LocalTally::default();
        route_all(
            &mut router,
            "a:1|c|#x:1,y:2\na:2|c|#y:2,x:1\na:3:4|c|#x:1,y:2,x:1",
            &mut tally,
        );
        router.flush(&mut tally);
        let batches: Vec<Batch> = receivers.iter().filter_map(|r| r.try_recv().ok()).collect();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.lines, 3);
        let values: Vec<f64> = batch.samples.iter().map(|s| s.value).collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
        assert!(batch.samples.iter().all(|s| s.key == batch.samples[0].key));
        assert_eq!(batch.name(&batch.samples[3]), "a");
        assert_eq!(batch.tags(&batch.samples[3]).raw(), "x:1,y:2,x:1");
    }

    #[test]
    fn a_full_queue_drops_the_batch_and_counts_its_lines() {
        let (queue, receiver) = crossbeam_channel::bounded(1);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        let mut tally = LocalTally::default();
        route_all(&mut router, "a:1|c\nb:x|s", &mut tally);
        router.flush(&mut tally);
        route_all(&mut router, "a:1|c\na:2|c\na:3|c", &mut tally);
        router.flush(&mut tally);
        assert_eq!(tally.dropped[DropReason::QueueFull as usize], 3);
        let kept = receiver.try_recv().unwrap();
        assert_eq!(kept.lines, 2);
        assert_eq!(kept.member(&kept.samples[1]), b"x");
    }
}
