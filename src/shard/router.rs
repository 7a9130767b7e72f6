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
//! shard that cannot keep up fills its queue instead of growing memory. What
//! happens then is the router's [`Overflow`] policy. Datagram transports wait a
//! few milliseconds ([`Overflow::Grace`]): asleep, the receiver leaves its core
//! to a shard that shares it (shards run below receivers) while the socket
//! buffer holds what arrives; then they drop the batch and count each of its
//! lines in `tallyd_lines_dropped_total{reason="queue_full"}`. Dropping at once
//! measured no better flat out and, with shards under `SCHED_IDLE`, starved
//! them. Stream transports wait, so the connection is not read and TCP flow
//! control pushes back on the sender. gRPC calls wait until their deadline and
//! report what could not be queued.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};

use super::batch::{Batch, BatchPool};
use super::mapped_names::{LiveMapping, MappedNames};
use crate::codec::Metric;
use crate::series::{KeyHasher, SeriesKey};
use crate::telemetry::{DropReason, LocalTally};

/// What a router does with a batch whose shard queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the batch, counting its lines as `queue_full`.
    Drop,
    /// Wait up to this long for room, then drop the batch counting its lines
    /// as `queue_full` (datagram transports). The wait puts the receiver to
    /// sleep, which is when a shard below it (`shard_priority: idle`) on the
    /// same core gets to empty its queue; meanwhile the socket buffer holds
    /// what arrives.
    Grace(std::time::Duration),
    /// Wait for room, however long it takes (stream transports).
    Wait,
    /// Wait for room until the instant, then drop the batch counting its lines as
    /// `queue_timeout` (gRPC calls, which tell their client).
    WaitUntil(Instant),
}

/// Ingest's side of the shard queues.
#[derive(Debug)]
pub struct Router {
    hasher: KeyHasher,
    queues: Vec<Sender<Batch>>,
    open: Vec<Batch>,
    pool: BatchPool,
    overflow: Overflow,
    /// The mapping file's view, when the router was given the live mapping.
    mapping: Option<MappedNames>,
    /// When the lines being routed arrived (see [`Router::note_arrival`]).
    arrival_unix_nanos: u64,
}

/// What routing a line can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// A name, tag list or set member over 64 KiB.
    TooLong,
}

impl Router {
    /// A router feeding `queues` (one per shard, by shard index) that drops
    /// batches meeting a full queue.
    pub fn new(queues: Vec<Sender<Batch>>, pool: BatchPool) -> Self {
        let open = queues.iter().map(|_| pool.take()).collect();
        Router {
            hasher: KeyHasher::new(),
            queues,
            open,
            pool,
            overflow: Overflow::Drop,
            mapping: None,
            arrival_unix_nanos: 0,
        }
    }

    /// Keys lines under `live` (`mapping.file`) from now on, following its reloads.
    pub fn set_mapping(&mut self, live: Arc<LiveMapping>) {
        self.mapping = Some(MappedNames::new(live));
    }

    /// The key of `metric` and the factor its values are scaled by; `None` when
    /// the mapping drops it (counted here).
    #[inline]
    fn key(&mut self, metric: &Metric<'_>, tally: &mut LocalTally) -> Option<(SeriesKey, f64)> {
        match &mut self.mapping {
            None => Some((self.hasher.key(metric.kind, metric.name, metric.tags), 1.0)),
            Some(mapping) => match mapping.key(&mut self.hasher, metric) {
                Ok(keyed) => Some(keyed),
                Err(reason) => {
                    tally.drop_lines(reason, 1);
                    None
                }
            },
        }
    }

    /// Lines routed from now on arrived at `unix_nanos` (0: unknown); a batch
    /// carries the arrival of its first line to its shard.
    #[inline]
    pub fn note_arrival(&mut self, unix_nanos: u64) {
        self.arrival_unix_nanos = unix_nanos;
    }

    /// Sets what happens to batches meeting a full queue from now on.
    pub fn set_overflow(&mut self, overflow: Overflow) {
        self.overflow = overflow;
    }

    /// Adds `values` of the numeric `metric` (its payload is ignored) to its
    /// shard's batches: the series is hashed once, and each value counts as a line.
    pub fn route_values(
        &mut self,
        metric: &Metric<'_>,
        mut values: &[f64],
        tally: &mut LocalTally,
    ) -> Result<(), RouteError> {
        let Some((key, scale)) = self.key(metric, tally) else {
            return Ok(());
        };
        let shard = key.shard(self.queues.len());
        while !values.is_empty() {
            let first = self.open[shard].samples.len();
            if first == 0 {
                self.open[shard].received_unix_nanos = self.arrival_unix_nanos;
            }
            let taken = self.open[shard]
                .push_values(key, metric, values)
                .ok_or(RouteError::TooLong)?;
            scale_from(&mut self.open[shard], first, scale);
            values = &values[taken..];
            if self.open[shard].is_full() {
                self.send(shard, tally);
            }
        }
        Ok(())
    }

    /// Adds `metric` to its shard's batch, handing the batch over when it fills.
    #[inline]
    pub fn route(&mut self, metric: &Metric<'_>, tally: &mut LocalTally) -> Result<(), RouteError> {
        let Some((key, scale)) = self.key(metric, tally) else {
            return Ok(());
        };
        let shard = key.shard(self.queues.len());
        let first = self.open[shard].samples.len();
        if first == 0 {
            self.open[shard].received_unix_nanos = self.arrival_unix_nanos;
        }
        if !self.open[shard].push(key, metric) {
            return Err(RouteError::TooLong);
        }
        scale_from(&mut self.open[shard], first, scale);
        if self.open[shard].is_full() {
            self.send(shard, tally);
        }
        Ok(())
    }

    /// Hands every non-empty batch to its shard, then takes up a reloaded mapping.
    pub fn flush(&mut self, tally: &mut LocalTally) {
        for shard in 0..self.open.len() {
            if !self.open[shard].samples.is_empty() {
                self.send(shard, tally);
            }
        }
        if let Some(mapping) = &mut self.mapping {
            mapping.refresh();
        }
    }

    fn send(&mut self, shard: usize, tally: &mut LocalTally) {
        let mut batch = std::mem::replace(&mut self.open[shard], self.pool.take());
        batch.mapper = self.mapping.as_ref().and_then(|m| m.mapper().cloned());
        let queue = &self.queues[shard];
        let refused = match self.overflow {
            Overflow::Drop => match queue.try_send(batch) {
                Ok(()) => return,
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    (batch, DropReason::QueueFull)
                }
            },
            // Woken as soon as the shard takes a batch. (Napping a fixed time
            // instead measured 40% lower flat out: the shard ran dry.)
            Overflow::Grace(wait) => match queue.send_timeout(batch, wait) {
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(batch) | SendTimeoutError::Disconnected(batch)) => {
                    (batch, DropReason::QueueFull)
                }
            },
            // A send fails only once the shard is gone, which happens after every
            // ingest has stopped; counted all the same.
            Overflow::Wait => match queue.send(batch) {
                Ok(()) => return,
                Err(err) => (err.into_inner(), DropReason::QueueFull),
            },
            Overflow::WaitUntil(deadline) => match queue.send_deadline(batch, deadline) {
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(batch)) => (batch, DropReason::QueueTimeout),
                Err(SendTimeoutError::Disconnected(batch)) => (batch, DropReason::QueueFull),
            },
        };
        let (batch, reason) = refused;
        tally.drop_lines(reason, batch.lines);
        self.pool.give_back(batch);
    }
}

/// Multiplies the values of `batch`'s samples from `first` on by `scale` (a
/// mapping rule's `scale`; 1 for every other line).
#[inline]
fn scale_from(batch: &mut Batch, first: usize, scale: f64) {
    if scale != 1.0 {
        for sample in &mut batch.samples[first..] {
            sample.value *= scale;
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
        assert_eq!(tally.dropped(DropReason::QueueFull), 3);
        let kept = receiver.try_recv().unwrap();
        assert_eq!(kept.lines, 2);
        assert_eq!(kept.member(&kept.samples[1]), b"x");
    }

    fn counter(name: &str) -> Metric<'_> {
        let mut metric = match Decoder::new(1024).lines(b"x:1|c").next() {
            Some(Ok(Message::Metric(m))) => m,
            other => panic!("{other:?}"),
        };
        metric.name = name;
        metric
    }

    #[test]
    fn values_fill_batches_to_capacity_and_each_counts_as_a_line() {
        let (queue, receiver) = crossbeam_channel::bounded(8);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        let mut tally = LocalTally::default();
        let values: Vec<f64> = (0..2500).map(f64::from).collect();
        router
            .route_values(&counter("a"), &values, &mut tally)
            .unwrap();
        router.flush(&mut tally);
        let batches: Vec<Batch> = receiver.try_iter().collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.samples.len()).collect();
        assert_eq!(
            sizes,
            [Batch::CAPACITY, Batch::CAPACITY, 2500 - 2 * Batch::CAPACITY]
        );
        assert_eq!(batches.iter().map(|b| b.lines).sum::<u64>(), 2500);
        let last = batches[2].samples.last().unwrap();
        assert_eq!((batches[2].name(last), last.value), ("a", 2499.0));
    }

    #[test]
    fn a_grace_waits_for_a_shard_that_makes_room_and_drops_when_none_does() {
        let (queue, receiver) = crossbeam_channel::bounded(1);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        router.set_overflow(Overflow::Grace(std::time::Duration::from_secs(30)));
        let mut tally = LocalTally::default();
        route_all(&mut router, "a:1|c", &mut tally);
        router.flush(&mut tally);
        // The queue is full; the shard takes a batch only after a while.
        let shard = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let first = receiver.recv().unwrap();
            let second = receiver.recv().unwrap();
            (first.lines, second.lines, receiver)
        });
        route_all(&mut router, "a:2|c\na:3|c", &mut tally);
        router.flush(&mut tally);
        let (first, second, receiver) = shard.join().unwrap();
        assert_eq!((first, second), (1, 2));
        assert_eq!(tally.dropped(DropReason::QueueFull), 0);

        // Nobody takes anything: after the grace the batch is dropped, counted.
        router.set_overflow(Overflow::Grace(std::time::Duration::from_millis(5)));
        route_all(&mut router, "a:4|c", &mut tally);
        router.flush(&mut tally);
        route_all(&mut router, "a:5|c\na:6|c", &mut tally);
        router.flush(&mut tally);
        assert_eq!(tally.dropped(DropReason::QueueFull), 2);
        assert_eq!(
            receiver.try_iter().map(|b| b.lines).collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn the_first_line_of_a_batch_stamps_its_arrival() {
        let (queue, receiver) = crossbeam_channel::bounded(4);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        let mut tally = LocalTally::default();
        router.note_arrival(100);
        route_all(&mut router, "a:1|c", &mut tally);
        router.note_arrival(200);
        route_all(&mut router, "a:2|c", &mut tally);
        router.flush(&mut tally);
        route_all(&mut router, "a:3|c", &mut tally);
        router.flush(&mut tally);
        let stamps: Vec<u64> = receiver.try_iter().map(|b| b.received_unix_nanos).collect();
        assert_eq!(stamps, [100, 200]);
    }

    #[test]
    fn a_deadline_turns_a_full_queue_into_counted_timeouts() {
        let (queue, _receiver) = crossbeam_channel::bounded(1);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        router.set_overflow(Overflow::WaitUntil(Instant::now()));
        let mut tally = LocalTally::default();
        router
            .route_values(&counter("a"), &[1.0, 2.0], &mut tally)
            .unwrap();
        router.flush(&mut tally);
        router
            .route_values(&counter("a"), &[3.0], &mut tally)
            .unwrap();
        router.flush(&mut tally);
        assert_eq!(tally.dropped(DropReason::QueueTimeout), 1);
        assert_eq!(tally.dropped(DropReason::QueueFull), 0);
    }

    #[test]
    fn waiting_hands_the_batch_over_once_the_shard_makes_room() {
        let (queue, receiver) = crossbeam_channel::bounded(1);
        let mut router = Router::new(vec![queue], BatchPool::new(4));
        router.set_overflow(Overflow::Wait);
        let mut tally = LocalTally::default();
        router
            .route_values(&counter("a"), &[1.0], &mut tally)
            .unwrap();
        router.flush(&mut tally);
        let shard = std::thread::spawn(move || {
            let first = receiver.recv().unwrap();
            let second = receiver.recv().unwrap();
            (first.lines, second.lines)
        });
        router
            .route_values(&counter("a"), &[2.0, 3.0], &mut tally)
            .unwrap();
        router.flush(&mut tally);
        assert_eq!(shard.join().unwrap(), (1, 2));
        assert!(DropReason::ALL.iter().all(|&r| tally.dropped(r) == 0));
    }
}
