//! The Prometheus remote-write sink: every closed window pushed to a target
//! (Mimir, Thanos Receive, Cortex, VictoriaMetrics, Prometheus).
//!
//! Each window becomes [`Point`]s (the `/metrics` view, stale markers for
//! series that idled out since the window before, tallyd's own metrics), queued
//! whole in a [`WindowQueue`]. The oldest window is cut into requests of at
//! most `max_samples_per_send` samples, up to `max_shards` of them in flight;
//! the next window starts only when all have ended, so every request holds a
//! series at most once and a series' samples arrive in order. A request is
//! retried with backoff on connection errors, timeouts and 5xx (and 429 when
//! `retry_on_http_429`); other refusals drop it, counted. A 2.0 sink falls
//! back to 1.0 for good when the receiver answers 415, or 2xx without saying
//! what it wrote.

mod client;
mod encode;
pub mod proto;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use client::{Client, ClientError, Outcome, Protocol, classify};
pub use encode::Point;
pub use encode::{PointWriter, STALE_NAN, compress, encode_v1, encode_v2};

use self::proto::Label;
use super::backoff::Backoff;
use super::queue::{Weighed, WindowQueue};
use crate::config::{ExternalLabels, ProtobufMessage, QueueConfig, RemoteWrite};
use crate::exposition::{write_self_metrics, write_snapshot};
use crate::store::{SeriesRollup, WindowSnapshot};
use crate::telemetry::{ScrapeFacts, SinkDropReason, SinkFailure, SinkStats, Telemetry};

impl Weighed for Point {
    fn bytes(&self) -> usize {
        self.size()
    }
}

/// What every request of a sink shares.
struct Target {
    client: Client,
    stats: Arc<SinkStats>,
    queue: QueueConfig,
    /// Still sending 2.0 (configured so, and no fallback yet).
    v2: AtomicBool,
    /// The last request failed (to log the change, not every failure).
    failing: AtomicBool,
}

/// A remote-write sink, ready to run on its own thread.
pub struct RemoteWriteSink {
    target: Arc<Target>,
    external: Vec<Label>,
    native: bool,
    telemetry: Arc<Telemetry>,
}

impl RemoteWriteSink {
    /// A sink for `config`, counting into `stats`.
    pub fn new(
        config: &RemoteWrite,
        external: &ExternalLabels,
        telemetry: Arc<Telemetry>,
        stats: Arc<SinkStats>,
    ) -> Result<Self, ClientError> {
        let client = Client::new(config)?;
        Ok(RemoteWriteSink {
            target: Arc::new(Target {
                client,
                stats,
                queue: config.queue_config,
                v2: AtomicBool::new(config.protobuf_message == ProtobufMessage::V2),
                failing: AtomicBool::new(false),
            }),
            external: external
                .iter()
                .map(|(name, value)| Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })
                .collect(),
            native: config.send_native_histograms,
            telemetry,
        })
    }

    /// The points of `window`: its series, stale markers for those in
    /// `previous` that are gone, and tallyd's own metrics.
    pub fn points(&self, window: &WindowSnapshot, previous: Option<&WindowSnapshot>) -> Vec<Point> {
        let mut points = Vec::with_capacity(window.series.len() * 2 + 256);
        let timestamp = window.bounds.end_unix_ms as i64;
        let mut writer = PointWriter::new(&mut points, &self.external, timestamp, self.native);
        let conflicts = write_snapshot(&mut writer, window);
        let facts = ScrapeFacts {
            conflicts,
            window_series: window.series.len(),
            last_window_end_seconds: window.bounds.end_unix_ms as f64 / 1000.0,
        };
        write_self_metrics(&mut writer, &self.telemetry, &facts);
        if let Some(previous) = previous {
            let gone = gone_series(previous, window);
            if !gone.is_empty() {
                let stale = WindowSnapshot {
                    bounds: window.bounds,
                    quantiles: previous.quantiles.clone(),
                    default_quantiles: previous.default_quantiles.clone(),
                    series: gone,
                };
                let mut writer =
                    PointWriter::new(&mut points, &self.external, timestamp, self.native).stale();
                write_snapshot(&mut writer, &stale);
            }
        }
        points
    }

    /// Sends every window `windows` brings until `stop` gives a deadline;
    /// then sends what is left until it passes, counting what is not sent.
    pub async fn run(
        self,
        mut windows: mpsc::UnboundedReceiver<Arc<WindowSnapshot>>,
        mut stop: watch::Receiver<Option<Instant>>,
    ) {
        let stats = self.target.stats.clone();
        let per_send = self.target.queue.max_samples_per_send.get();
        let shards = self.target.queue.max_shards.resolve().get();
        let mut queue = WindowQueue::<Point>::new(self.target.queue.capacity.get());
        let mut previous: Option<Arc<WindowSnapshot>> = None;
        let mut sending: Option<(Arc<[Point]>, usize)> = None;
        let mut tasks: JoinSet<usize> = JoinSet::new();
        let mut in_flight = 0usize;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            // Start requests: the current window's next chunks, or the next
            // window once every request of the current one has ended.
            if sending.as_ref().is_none_or(|(p, next)| *next >= p.len()) && tasks.is_empty() {
                sending = queue.pop().map(|points| (Arc::from(points), 0));
            }
            if let Some((points, next)) = &mut sending {
                while tasks.len() < shards && *next < points.len() {
                    let end = (*next + per_send).min(points.len());
                    in_flight += end - *next;
                    tasks.spawn(send(self.target.clone(), points.clone(), *next..end));
                    *next = end;
                }
            }
            let unsent = sending.as_ref().map_or(0, |(p, next)| p.len() - next);
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
                    let points = self.points(&window, previous.as_deref());
                    previous = Some(window);
                    let dropped = queue.push(points, unsent + in_flight);
                    if dropped > 0 {
                        stats.dropped(SinkDropReason::QueueFull).add(dropped as u64);
                        tracing::warn!(
                            sink = %stats.name,
                            dropped,
                            "remote_write queue over queue_config.capacity: oldest samples dropped"
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
                        tracing::warn!(sink = %stats.name, samples = left, "remote_write: shutdown deadline passed, samples not sent");
                    }
                    break;
                }
            }
        }
        stats.queue_samples.set(0.0);
        stats.queue_bytes.set(0.0);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Series of `previous` that `current` no longer has (both sorted alike).
fn gone_series(previous: &WindowSnapshot, current: &WindowSnapshot) -> Vec<SeriesRollup> {
    fn key(s: &SeriesRollup) -> (&str, u8, &str) {
        (&s.meta.prom_name, s.meta.kind as u8, &s.meta.prom_labels)
    }
    let mut gone = Vec::new();
    let mut i = 0;
    for series in &previous.series {
        let wanted = key(series);
        while i < current.series.len() && key(&current.series[i]) < wanted {
            i += 1;
        }
        if i < current.series.len() && key(&current.series[i]) == wanted {
            continue;
        }
        gone.push(series.clone());
    }
    gone
}

/// Sends `points[range]` until it is stored or given up; returns how many
/// samples that was.
async fn send(target: Arc<Target>, points: Arc<[Point]>, range: Range<usize>) -> usize {
    let chunk = &points[range.clone()];
    let histograms = chunk.iter().filter(|p| p.is_histogram()).count() as u64;
    let samples = chunk.len() as u64 - histograms;
    let stats = &target.stats;
    let mut backoff = Backoff::new(
        target.queue.min_backoff.get(),
        target.queue.max_backoff.get(),
    );
    let mut buf = Vec::new();
    loop {
        let protocol = if target.v2.load(Ordering::Relaxed) {
            encode_v2(chunk, &mut buf);
            Protocol::V2
        } else {
            encode_v1(chunk, &mut buf);
            Protocol::V1
        };
        let body = Bytes::from(compress(&buf));
        let started = Instant::now();
        let outcome = target.client.send(body, protocol).await;
        stats.requests.add(1);
        stats
            .request_seconds
            .set(stats.request_seconds.get() + started.elapsed().as_secs_f64());
        let failure = match outcome {
            Outcome::Sent {
                written_headers: false,
            } if protocol == Protocol::V2 => {
                fall_back(
                    &target,
                    "answered 2xx without X-Prometheus-Remote-Write-*-Written headers",
                );
                continue;
            }
            Outcome::Unsupported if protocol == Protocol::V2 => {
                fall_back(&target, "answered 415 Unsupported Media Type");
                continue;
            }
            Outcome::Sent { .. } => {
                stats.samples_sent.add(samples);
                stats.histograms_sent.add(histograms);
                stats.last_success_seconds.set(unix_seconds());
                if target.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(sink = %stats.name, "remote_write target accepts samples again");
                }
                return chunk.len();
            }
            Outcome::Unsupported => Outcome::Reject {
                failure: SinkFailure::ClientError,
                message: "415 Unsupported Media Type".into(),
            },
            other => other,
        };
        match failure {
            Outcome::Retry { failure, after }
                if failure != SinkFailure::TooManyRequests || target.queue.retry_on_http_429 =>
            {
                stats.failed(failure).add(1);
                stats.retries.add(1);
                let wait = backoff.wait(after);
                if !target.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(sink = %stats.name, reason = failure.as_str(), retry_in = ?wait, "remote_write request failed; retrying");
                }
                tokio::time::sleep(wait).await;
            }
            Outcome::Retry { failure, .. } => {
                stats.failed(failure).add(1);
                give_up(
                    stats,
                    chunk.len(),
                    "429 Too Many Requests (retry_on_http_429 is off)",
                );
                return chunk.len();
            }
            Outcome::Reject { failure, message } => {
                stats.failed(failure).add(1);
                give_up(stats, chunk.len(), &message);
                return chunk.len();
            }
            Outcome::Sent { .. } | Outcome::Unsupported => unreachable!("handled above"),
        }
    }
}

fn fall_back(target: &Target, why: &str) {
    if target.v2.swap(false, Ordering::Relaxed) {
        tracing::warn!(
            sink = %target.stats.name,
            why,
            "remote_write: the receiver does not take io.prometheus.write.v2.Request; sending prometheus.WriteRequest (1.0) from now on"
        );
    }
}

fn give_up(stats: &SinkStats, samples: usize, message: &str) {
    stats.dropped(SinkDropReason::Rejected).add(samples as u64);
    tracing::warn!(sink = %stats.name, samples, answer = message, "remote_write receiver refused samples; dropped");
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long shutdown waits for queued samples to be sent.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
