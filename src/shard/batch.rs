//! The unit handed from ingest to a shard: pre-hashed samples plus the bytes they name.
//!
//! A batch carries up to [`Batch::CAPACITY`] samples for one shard. Each sample has
//! its series key already computed, so a shard that knows the series never looks
//! at a name or a tag. The name, tags and set member of each line are copied into
//! one byte buffer (about 40 bytes a line) because a shard seeing a series for the
//! first time must build its labels; copying always is cheaper than asking.
//!
//! Batches are recycled through a [`BatchPool`]: a shard empties a batch and
//! returns it, ingest takes it back, and in the steady state no batch, sample
//! vector or byte buffer is allocated. The pool hands out the batch returned
//! last: a shard and the receiver feeding it usually share a core, so that
//! batch is still in its cache, where the one returned first (a queue's
//! order) has been pushed out by every batch since.

use std::sync::{Arc, Mutex, PoisonError};

use crate::codec::{Metric, MetricType, Payload, Tags};
use crate::mapping::Mapper;
use crate::series::SeriesKey;

/// One value for one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSample {
    /// The series.
    pub key: SeriesKey,
    /// The value (unused for sets).
    pub value: f64,
    /// The sample rate in (0, 1].
    pub sample_rate: f64,
    /// Offset of the name in [`Batch::bytes`]; the tags follow it, then the set member.
    pub text_start: u32,
    /// Length of the name.
    pub name_len: u16,
    /// Length of the raw tags.
    pub tags_len: u16,
    /// Length of the set member (0 for other types).
    pub member_len: u16,
    /// The metric type.
    pub kind: MetricType,
    /// The value text was signed (`+`/`-`): a gauge delta in statsd mode.
    pub signed: bool,
}

/// Samples for one shard, with the text they point into.
#[derive(Debug, Default)]
pub struct Batch {
    /// The samples, in arrival order.
    pub samples: Vec<BatchSample>,
    /// Names, tags and set members of the samples.
    pub bytes: Vec<u8>,
    /// Lines (not samples) in the batch: what a dropped batch counts as lost.
    pub lines: u64,
    /// The mapping its keys were made under (`mapping.file`), which the shard
    /// applies again to name a new series.
    pub mapper: Option<Arc<Mapper>>,
    /// When its oldest line was received (unix nanoseconds, the kernel's time
    /// for datagrams); 0 when unknown.
    pub received_unix_nanos: u64,
}

impl Batch {
    /// Samples in a full batch: large enough to amortise a queue hand-off (about
    /// 100 ns) to well under a nanosecond a sample, small enough (about 60 KiB)
    /// to stay in L2 between ingest and shard.
    pub const CAPACITY: usize = 1024;

    /// An empty batch with room for a full load.
    pub fn with_capacity() -> Self {
        Batch {
            samples: Vec::with_capacity(Self::CAPACITY),
            bytes: Vec::with_capacity(Self::CAPACITY * 64),
            lines: 0,
            mapper: None,
            received_unix_nanos: 0,
        }
    }

    /// True when one more line could overflow the batch.
    pub fn is_full(&self) -> bool {
        self.samples.len() >= Self::CAPACITY
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.bytes.clear();
        self.lines = 0;
        self.mapper = None;
        self.received_unix_nanos = 0;
    }

    /// Appends every value of `metric` under `key`. Lines whose name, tags or member
    /// exceed 64 KiB cannot be represented and return `false` (the caller counts
    /// them as too long); the datagram limit normally stops them earlier.
    pub fn push(&mut self, key: SeriesKey, metric: &Metric<'_>) -> bool {
        let member = match metric.payload {
            Payload::SetMember(member) => member,
            Payload::Numbers { .. } => "",
        };
        let Some(text) = self.append_text(metric, member) else {
            return false;
        };
        let sample = |value: f64, signed: bool| text.sample(key, metric, value, signed);
        match metric.payload {
            Payload::SetMember(_) => self.samples.push(sample(0.0, false)),
            Payload::Numbers { first, rest: "" } => {
                self.samples.push(sample(first.value, first.signed))
            }
            payload => {
                for s in payload.samples() {
                    self.samples.push(sample(s.value, s.signed));
                }
            }
        }
        self.lines += 1;
        true
    }

    /// Appends as many of `values` as fit under `key` (all of them unless the batch
    /// fills), with the name and tags stored once; each value counts as a line.
    /// Returns how many were taken, or `None` when the name or tags exceed 64 KiB.
    pub fn push_values(
        &mut self,
        key: SeriesKey,
        metric: &Metric<'_>,
        values: &[f64],
    ) -> Option<usize> {
        let taken = values
            .len()
            .min(Self::CAPACITY.saturating_sub(self.samples.len()));
        if taken == 0 {
            return Some(0);
        }
        let text = self.append_text(metric, "")?;
        self.samples.extend(
            values[..taken]
                .iter()
                .map(|&value| text.sample(key, metric, value, false)),
        );
        self.lines += taken as u64;
        Some(taken)
    }

    /// Appends the name, tags and `member` of `metric` to the text; `None` when one
    /// of them exceeds 64 KiB.
    /// Tags from the name (`k=v`) are written in DogStatsD's form (`k:v`) ahead
    /// of the `|#` ones, so the shard reads one form.
    fn append_text(&mut self, metric: &Metric<'_>, member: &str) -> Option<TextRef> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(metric.name.as_bytes());
        let tags_start = self.bytes.len();
        let named = (!metric.tags.is_absent()).then(|| metric.tags.named());
        for tag in named.into_iter().flatten() {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            self.bytes.extend_from_slice(key.as_bytes());
            self.bytes.push(b':');
            self.bytes.extend_from_slice(value.as_bytes());
            self.bytes.push(b',');
        }
        self.bytes.extend_from_slice(metric.tags.raw().as_bytes());
        let tags_len = self.bytes.len() - tags_start;
        self.bytes.extend_from_slice(member.as_bytes());
        let text = (|| {
            Some(TextRef {
                start: u32::try_from(start).ok()?,
                name_len: u16::try_from(metric.name.len()).ok()?,
                tags_len: u16::try_from(tags_len).ok()?,
                member_len: u16::try_from(member.len()).ok()?,
            })
        })();
        if text.is_none() {
            self.bytes.truncate(start);
        }
        text
    }

    /// The name of `sample`.
    pub fn name(&self, sample: &BatchSample) -> &str {
        let start = sample.text_start as usize;
        self.text(start, start + usize::from(sample.name_len))
    }

    /// The raw tags of `sample`.
    pub fn tags(&self, sample: &BatchSample) -> Tags<'_> {
        let start = sample.text_start as usize + usize::from(sample.name_len);
        Tags::new(self.text(start, start + usize::from(sample.tags_len)))
    }

    /// The set member of `sample` (empty for other types).
    pub fn member(&self, sample: &BatchSample) -> &[u8] {
        let start = sample.text_start as usize
            + usize::from(sample.name_len)
            + usize::from(sample.tags_len);
        &self.bytes[start..start + usize::from(sample.member_len)]
    }

    fn text(&self, start: usize, end: usize) -> &str {
        // Only whole `&str`s are appended, so every recorded range is valid UTF-8;
        // the check costs nothing next to building a new series, its only caller.
        std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default()
    }
}

/// Where a line's name, tags and member lie in [`Batch::bytes`].
#[derive(Debug, Clone, Copy)]
struct TextRef {
    start: u32,
    name_len: u16,
    tags_len: u16,
    member_len: u16,
}

impl TextRef {
    fn sample(self, key: SeriesKey, metric: &Metric<'_>, value: f64, signed: bool) -> BatchSample {
        BatchSample {
            key,
            value,
            sample_rate: metric.sample_rate,
            text_start: self.start,
            name_len: self.name_len,
            tags_len: self.tags_len,
            member_len: self.member_len,
            kind: metric.kind,
            signed,
        }
    }
}

/// Empty batches waiting to be reused, shared by every ingest thread and shard.
///
/// A stack behind a mutex: each thread takes or returns one batch per 1,024
/// lines, and holds the lock for one push or pop, so it is neither contended
/// nor on the per-line path.
#[derive(Debug, Clone)]
pub struct BatchPool(Arc<PoolStack>);

#[derive(Debug)]
struct PoolStack {
    idle: Mutex<Vec<Batch>>,
    capacity: usize,
}

impl BatchPool {
    /// A pool keeping at most `capacity` idle batches.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        BatchPool(Arc::new(PoolStack {
            idle: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
        }))
    }

    /// An empty batch: the one returned last when any is idle, else a new one.
    pub fn take(&self) -> Batch {
        let recycled = self.idle().pop();
        recycled.unwrap_or_else(Batch::with_capacity)
    }

    /// Returns `batch` for reuse; when the pool is full it is freed.
    pub fn give_back(&self, mut batch: Batch) {
        batch.clear();
        let mut idle = self.idle();
        if idle.len() < self.0.capacity {
            idle.push(batch);
        }
    }

    /// Idle batches in the pool.
    pub fn idle_batches(&self) -> usize {
        self.idle().len()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Batch>> {
        // A panic elsewhere cannot leave the stack half-changed: push and pop
        // do not panic once the capacity is reserved.
        self.0.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_returned_last_is_handed_out_first_and_a_full_pool_frees() {
        let pool = BatchPool::new(2);
        let mut batches: Vec<Batch> = (0..3).map(|_| pool.take()).collect();
        for (i, batch) in batches.iter_mut().enumerate() {
            batch.received_unix_nanos = i as u64;
        }
        let addresses: Vec<*const BatchSample> =
            batches.iter().map(|b| b.samples.as_ptr()).collect();
        for batch in batches {
            pool.give_back(batch);
        }
        assert_eq!(pool.idle_batches(), 2);
        // The third did not fit; the second was returned last.
        let next = pool.take();
        assert_eq!(next.samples.as_ptr(), addresses[1]);
        assert_eq!(next.received_unix_nanos, 0, "a returned batch is emptied");
        assert_eq!(pool.take().samples.as_ptr(), addresses[0]);
        assert_eq!(pool.idle_batches(), 0);
    }
}
