//! The one delivery design every push sink shares. A sink is an [`Encoder`]
//! (a closed window as items: samples, lines) and a [`Transport`] (a chunk of
//! items to its target, and what the answer means); [`deliver`] does the rest,
//! the same for every sink, counted in the sink's [`SinkStats`].
//!
//! Windows are encoded as they arrive and queued whole in a bounded
//! [`WindowQueue`] (past its capacity the oldest items go, counted
//! `queue_full`). The oldest window is cut into chunks of at most `per_send`
//! items, up to `in_flight` of them sent at once; the next window starts only
//! when every chunk of the one before has ended, so a chunk holds a series at
//! most once and each series' items arrive in order. A chunk the transport
//! cannot deliver is retried, waiting as [`Backoff`] says, until it is
//! delivered or refused for good (dropped, counted `rejected`). When `stop`
//! gives a deadline, what is queued is still sent until it passes; what is
//! left then is counted `shutdown`. Nothing here blocks the shards: the store
//! only hands an `Arc` to the channel.

use std::future::Future;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::backoff::Backoff;
use super::queue::{Weighed, WindowQueue};
use crate::config::{PushQueue, QueueConfig};
use crate::store::WindowSnapshot;
use crate::telemetry::{SinkDropReason, SinkFailure, SinkStats, unix_seconds};

/// One thing a sink sends: a sample, a histogram, a line.
pub trait Item: Weighed + Send + Sync + 'static {
    /// True for a native histogram (counted apart from float samples).
    fn is_histogram(&self) -> bool {
        false
    }
}

/// Turns closed windows into items.
pub trait Encoder: Send + 'static {
    /// What it makes.
    type Item: Item;

    /// The items of `window`; `previous` is the window before it (for stale
    /// markers), `None` for the first.
    fn encode(&self, window: &WindowSnapshot, previous: Option<&WindowSnapshot>)
    -> Vec<Self::Item>;
}

/// What became of one chunk sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The target took it.
    Stored,
    /// Send it again at once: the transport changed how it sends (a protocol
    /// fallback), nothing failed.
    Resend,
    /// Not delivered; worth sending again, after `after` when the target
    /// said so.
    Retry {
        /// Why it failed.
        failure: SinkFailure,
        /// How long the target asked to wait.
        after: Option<Duration>,
    },
    /// The target took all but `rejected` items, refusing those for good
    /// (an OTLP partial success): they are counted `rejected`.
    Partly {
        /// Items refused.
        rejected: usize,
        /// What the target said.
        message: String,
    },
    /// Refused for good: dropped and counted, never retried.
    Refused {
        /// Why it failed.
        failure: SinkFailure,
        /// What the target said.
        message: String,
    },
}

/// Sends chunks of items to one target.
pub trait Transport: Send + Sync + 'static {
    /// What it sends.
    type Item: Item;

    /// The sink's kind, for the log (`remote_write`).
    const KIND: &'static str;

    /// Sends `chunk` once.
    fn send(&self, chunk: &[Self::Item]) -> impl Future<Output = Answer> + Send;
}

/// How a sink queues and sends.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Items held while the target cannot take them.
    pub capacity: NonZeroUsize,
    /// Most items in one chunk.
    pub per_send: NonZeroUsize,
    /// Chunks sent at once.
    pub in_flight: NonZeroUsize,
    /// First wait before a retry.
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

impl From<&PushQueue> for DeliverySettings {
    fn from(queue: &PushQueue) -> Self {
        DeliverySettings {
            capacity: queue.capacity,
            per_send: queue.max_samples_per_send,
            in_flight: queue.max_shards.resolve(),
            min_backoff: queue.min_backoff.get(),
            max_backoff: queue.max_backoff.get(),
        }
    }
}

impl From<&QueueConfig> for DeliverySettings {
    fn from(queue: &QueueConfig) -> Self {
        DeliverySettings {
            capacity: queue.capacity,
            per_send: queue.max_samples_per_send,
            in_flight: queue.max_shards.resolve(),
            min_backoff: queue.min_backoff.get(),
            max_backoff: queue.max_backoff.get(),
        }
    }
}

/// Sends every window `windows` brings through `encoder` and `transport`
/// until `stop` gives a deadline; then sends what is left until it passes,
/// counting what is not sent.
pub async fn deliver<E, T>(
    encoder: E,
    transport: T,
    settings: DeliverySettings,
    stats: Arc<SinkStats>,
    mut windows: mpsc::UnboundedReceiver<Arc<WindowSnapshot>>,
    mut stop: watch::Receiver<Option<Instant>>,
) where
    E: Encoder,
    T: Transport<Item = E::Item>,
{
    let per_send = settings.per_send.get();
    let shared = Arc::new(Shared {
        transport,
        stats: stats.clone(),
        settings,
        failing: AtomicBool::new(false),
    });
    let mut queue = WindowQueue::<E::Item>::new(settings.capacity.get());
    let mut previous: Option<Arc<WindowSnapshot>> = None;
    let mut sending: Option<(Arc<[E::Item]>, usize)> = None;
    let mut tasks: JoinSet<usize> = JoinSet::new();
    let mut in_flight = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        // Start chunks: the current window's next ones, or the next window
        // once every chunk of the current one has ended.
        if sending
            .as_ref()
            .is_none_or(|(items, next)| *next >= items.len())
            && tasks.is_empty()
        {
            sending = queue.pop().map(|items| (Arc::from(items), 0));
        }
        if let Some((items, next)) = &mut sending {
            while tasks.len() < settings.in_flight.get() && *next < items.len() {
                let end = (*next + per_send).min(items.len());
                in_flight += end - *next;
                tasks.spawn(send_until_done(shared.clone(), items.clone(), *next..end));
                *next = end;
            }
        }
        let unsent = sending
            .as_ref()
            .map_or(0, |(items, next)| items.len() - next);
        stats
            .queue_samples
            .set((queue.samples() + unsent + in_flight) as f64);
        stats.queue_bytes.set(queue.bytes() as f64);
        let idle = tasks.is_empty() && unsent == 0 && queue.is_empty();
        if deadline.is_some() && idle && windows.is_empty() {
            break;
        }
        tokio::select! {
            window = windows.recv(), if !windows.is_closed() || !windows.is_empty() => {
                let Some(window) = window else { continue };
                let items = encoder.encode(&window, previous.as_deref());
                previous = Some(window);
                let dropped = queue.push(items, unsent + in_flight);
                if dropped > 0 {
                    stats.dropped(SinkDropReason::QueueFull).add(dropped as u64);
                    tracing::warn!(
                        sink = %stats.name,
                        kind = T::KIND,
                        dropped,
                        "sink queue over its capacity: oldest samples dropped"
                    );
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                in_flight -= done.unwrap_or(0);
            }
            changed = stop.changed(), if deadline.is_none() => {
                let at = if changed.is_ok() { *stop.borrow() } else { Some(Instant::now()) };
                deadline = Some(at.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std));
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                tasks.abort_all();
                let left = queue.samples() + unsent + in_flight;
                stats.dropped(SinkDropReason::Shutdown).add(left as u64);
                if left > 0 {
                    tracing::warn!(sink = %stats.name, kind = T::KIND, samples = left, "sink shutdown deadline passed, samples not sent");
                }
                break;
            }
        }
    }
    stats.queue_samples.set(0.0);
    stats.queue_bytes.set(0.0);
}

/// What every chunk of a sink shares.
struct Shared<T> {
    transport: T,
    stats: Arc<SinkStats>,
    settings: DeliverySettings,
    /// The last chunk failed (to log the change, not every failure).
    failing: AtomicBool,
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends `items[range]` until it is delivered or given up; returns how many
/// items that was.
async fn send_until_done<T: Transport>(
    shared: Arc<Shared<T>>,
    items: Arc<[T::Item]>,
    range: Range<usize>,
) -> usize {
    let chunk = &items[range];
    let histograms = chunk.iter().filter(|item| item.is_histogram()).count() as u64;
    let samples = chunk.len() as u64 - histograms;
    let stats = &shared.stats;
    let mut backoff = Backoff::new(shared.settings.min_backoff, shared.settings.max_backoff);
    loop {
        let started = Instant::now();
        let answer = shared.transport.send(chunk).await;
        stats.requests.add(1);
        stats
            .request_seconds
            .set(stats.request_seconds.get() + started.elapsed().as_secs_f64());
        match answer {
            Answer::Stored => {
                stats.samples_sent.add(samples);
                stats.histograms_sent.add(histograms);
                stats.last_success_seconds.set(unix_seconds());
                if shared.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(sink = %stats.name, kind = T::KIND, "sink target accepts samples again");
                }
                return chunk.len();
            }
            Answer::Partly { rejected, message } => {
                let rejected = rejected.min(chunk.len()) as u64;
                // The target does not say which: samples are counted first.
                let rejected_samples = rejected.min(samples);
                stats.samples_sent.add(samples - rejected_samples);
                stats
                    .histograms_sent
                    .add(histograms - (rejected - rejected_samples));
                stats.dropped(SinkDropReason::Rejected).add(rejected);
                stats.last_success_seconds.set(unix_seconds());
                tracing::warn!(sink = %stats.name, kind = T::KIND, rejected, answer = message, "sink target refused some samples; dropped");
                return chunk.len();
            }
            Answer::Resend => {}
            Answer::Retry { failure, after } => {
                stats.failed(failure).add(1);
                stats.retries.add(1);
                let wait = backoff.wait(after);
                if !shared.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(sink = %stats.name, kind = T::KIND, reason = failure.as_str(), retry_in = ?wait, "sink request failed; retrying");
                }
                tokio::time::sleep(wait).await;
            }
            Answer::Refused { failure, message } => {
                stats.failed(failure).add(1);
                stats
                    .dropped(SinkDropReason::Rejected)
                    .add(chunk.len() as u64);
                tracing::warn!(sink = %stats.name, kind = T::KIND, samples = chunk.len(), answer = message, "sink target refused samples; dropped");
                return chunk.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::WindowBounds;

    /// Series `series` of the window ending at `window`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Sample {
        window: u64,
        series: u32,
    }

    impl Weighed for Sample {
        fn bytes(&self) -> usize {
            8
        }
    }

    impl Item for Sample {}

    /// Ten series a window.
    struct Ten;

    impl Encoder for Ten {
        type Item = Sample;

        fn encode(&self, window: &WindowSnapshot, _: Option<&WindowSnapshot>) -> Vec<Sample> {
            (0..10)
                .map(|series| Sample {
                    window: window.bounds.end_unix_ms,
                    series,
                })
                .collect()
        }
    }

    /// Answers from `script` by call number, recording every chunk and how
    /// many were in flight at once.
    struct Scripted {
        script: fn(usize, &[Sample]) -> Answer,
        calls: Mutex<Vec<(Vec<Sample>, Answer)>>,
        open: Mutex<(usize, usize)>,
    }

    impl Transport for Arc<Scripted> {
        type Item = Sample;
        const KIND: &'static str = "test";

        async fn send(&self, chunk: &[Sample]) -> Answer {
            {
                let mut open = self.open.lock().unwrap();
                open.0 += 1;
                open.1 = open.1.max(open.0);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut calls = self.calls.lock().unwrap();
            let answer = (self.script)(calls.len(), chunk);
            calls.push((chunk.to_vec(), answer.clone()));
            self.open.lock().unwrap().0 -= 1;
            answer
        }
    }

    fn window(end: u64) -> Arc<WindowSnapshot> {
        Arc::new(WindowSnapshot {
            bounds: WindowBounds {
                start_unix_ms: end - 1,
                end_unix_ms: end,
            },
            quantiles: Arc::from([]),
            default_quantiles: Arc::from([]),
            series: Vec::new(),
        })
    }

    fn settings(capacity: usize) -> DeliverySettings {
        let n = |n| NonZeroUsize::new(n).unwrap();
        DeliverySettings {
            capacity: n(capacity),
            per_send: n(3),
            in_flight: n(2),
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        }
    }

    /// Runs a sink over `windows` (all sent before the deadline `grace` from now).
    fn run(
        transport: &Arc<Scripted>,
        settings: DeliverySettings,
        windows: &[u64],
        grace: Duration,
    ) -> Arc<SinkStats> {
        let stats = Arc::new(SinkStats::new("test".into()));
        let (send, received) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(None);
        for &end in windows {
            send.send(window(end)).unwrap();
        }
        stop.send(Some(Instant::now() + grace)).unwrap();
        drop(send);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(deliver(
                Ten,
                transport.clone(),
                settings,
                stats.clone(),
                received,
                stopped,
            ));
        stats
    }

    #[test]
    fn chunks_keep_each_series_in_order_and_every_answer_is_counted() {
        let transport = Arc::new(Scripted {
            script: |call, chunk| match call {
                0 => Answer::Retry {
                    failure: SinkFailure::ServerError,
                    after: None,
                },
                1 => Answer::Resend,
                _ if chunk.contains(&Sample {
                    window: 2,
                    series: 9,
                }) =>
                {
                    Answer::Refused {
                        failure: SinkFailure::ClientError,
                        message: "no".into(),
                    }
                }
                _ => Answer::Stored,
            },
            calls: Mutex::new(Vec::new()),
            open: Mutex::new((0, 0)),
        });
        let stats = run(&transport, settings(100), &[1, 2], Duration::from_secs(5));
        let calls = transport.calls.lock().unwrap();
        assert!(calls.iter().all(|(chunk, _)| chunk.len() <= 3));
        assert_eq!(transport.open.lock().unwrap().1, 2, "two chunks at once");
        // Every window-1 chunk ended before any window-2 chunk was sent.
        let first_of_2 = calls.iter().position(|(c, _)| c[0].window == 2).unwrap();
        assert!(calls[first_of_2..].iter().all(|(c, _)| c[0].window == 2));
        let stored: Vec<Sample> = calls
            .iter()
            .filter(|(_, answer)| *answer == Answer::Stored)
            .flat_map(|(chunk, _)| chunk.clone())
            .collect();
        // The refused chunk (series 9 of window 2, alone in the last chunk).
        assert_eq!(stored.len(), 19);
        assert_eq!(stats.samples_sent.get(), 19);
        assert_eq!(stats.dropped(SinkDropReason::Rejected).get(), 1);
        assert_eq!(stats.failed(SinkFailure::ServerError).get(), 1);
        assert_eq!(stats.failed(SinkFailure::ClientError).get(), 1);
        assert_eq!(stats.retries.get(), 1);
        assert_eq!(stats.requests.get(), calls.len() as u64);
        assert_eq!(stats.dropped(SinkDropReason::Shutdown).get(), 0);
        assert!(stats.last_success_seconds.get() > 0.0);
    }

    #[test]
    fn a_target_that_never_takes_fills_the_queue_and_shutdown_counts_the_rest() {
        let transport = Arc::new(Scripted {
            script: |_, _| Answer::Retry {
                failure: SinkFailure::Connection,
                after: None,
            },
            calls: Mutex::new(Vec::new()),
            open: Mutex::new((0, 0)),
        });
        // 50 samples offered to a queue of 25.
        let stats = run(
            &transport,
            settings(25),
            &[1, 2, 3, 4, 5],
            Duration::from_millis(200),
        );
        let queue_full = stats.dropped(SinkDropReason::QueueFull).get();
        let shutdown = stats.dropped(SinkDropReason::Shutdown).get();
        assert_eq!(queue_full + shutdown, 50);
        assert!(queue_full >= 25, "{queue_full}");
        assert!(shutdown > 0 && shutdown <= 25, "{shutdown}");
        assert_eq!(stats.samples_sent.get(), 0);
        assert_eq!(stats.queue_samples.get(), 0.0);
        // Only the first window was ever in flight: the next waits for it.
        let calls = transport.calls.lock().unwrap();
        assert!(calls.len() > 2);
        assert!(calls.iter().all(|(chunk, _)| chunk[0].window == 1));
    }
}
