//! The Prometheus remote-write sink: every closed window pushed to a target
//! (Mimir, Thanos Receive, Cortex, VictoriaMetrics, Prometheus).
//!
//! Its [`Encoder`] turns each window into [`Point`]s (the `/metrics` view,
//! stale markers for series that idled out since the window before, tallyd's
//! own metrics); its [`Transport`] sends a chunk of `max_samples_per_send` of
//! them as one request. Queueing, concurrency (`max_shards`), order and
//! retries are the shared [`deliver`] design. An answer is judged as the spec
//! says: connection errors, timeouts and 5xx are retried (429 too when
//! `retry_on_http_429`), other refusals dropped, counted. A 2.0 sink falls
//! back to 1.0 for good when the receiver answers 415, or 2xx without saying
//! what it wrote, and sends the same chunk again.

mod client;
mod encode;
pub mod proto;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

pub use encode::{Point, STALE_NAN, compress, encode_v1, encode_v2};

use self::client::{Client, Outcome, Protocol};
use self::encode::PointWriter;
use super::connect::ClientError;

use self::proto::Label;
use super::delivery::{Answer, DeliverySettings, Encoder, Item, Transport, deliver};
use super::queue::Weighed;
use crate::config::{ExternalLabels, ProtobufMessage, RemoteWrite};
use crate::exposition::{write_self_metrics, write_snapshot};
use crate::store::{SeriesRollup, WindowSnapshot};
use crate::telemetry::{ScrapeFacts, SinkFailure, SinkStats, Telemetry};

impl Weighed for Point {
    fn bytes(&self) -> usize {
        self.size()
    }
}

impl Item for Point {
    fn is_histogram(&self) -> bool {
        Point::is_histogram(self)
    }
}

/// One remote-write target: its client and the protocol it speaks now.
struct RemoteWriteTransport {
    client: Client,
    /// Still sending 2.0 (configured so, and no fallback yet).
    v2: AtomicBool,
    retry_on_http_429: bool,
    name: String,
}

impl Transport for RemoteWriteTransport {
    type Item = Point;
    const KIND: &'static str = "remote_write";

    async fn send(&self, chunk: &[Point]) -> Answer {
        let mut buf = Vec::new();
        let protocol = if self.v2.load(Ordering::Relaxed) {
            encode_v2(chunk, &mut buf);
            Protocol::V2
        } else {
            encode_v1(chunk, &mut buf);
            Protocol::V1
        };
        let body = Bytes::from(compress(&buf));
        match self.client.send(body, protocol).await {
            Outcome::Sent {
                written_headers: false,
            } if protocol == Protocol::V2 => {
                self.fall_back("answered 2xx without X-Prometheus-Remote-Write-*-Written headers");
                Answer::Resend
            }
            Outcome::Unsupported if protocol == Protocol::V2 => {
                self.fall_back("answered 415 Unsupported Media Type");
                Answer::Resend
            }
            Outcome::Sent { .. } => Answer::Stored,
            Outcome::Unsupported => Answer::Refused {
                failure: SinkFailure::ClientError,
                message: "415 Unsupported Media Type".into(),
            },
            Outcome::Retry { failure, .. }
                if failure == SinkFailure::TooManyRequests && !self.retry_on_http_429 =>
            {
                Answer::Refused {
                    failure,
                    message: "429 Too Many Requests (retry_on_http_429 is off)".into(),
                }
            }
            Outcome::Retry { failure, after } => Answer::Retry { failure, after },
            Outcome::Reject { failure, message } => Answer::Refused { failure, message },
        }
    }
}

impl RemoteWriteTransport {
    fn fall_back(&self, why: &str) {
        if self.v2.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                sink = %self.name,
                why,
                "remote_write: the receiver does not take io.prometheus.write.v2.Request; sending prometheus.WriteRequest (1.0) from now on"
            );
        }
    }
}

/// A remote-write sink, ready to run on its own thread.
pub struct RemoteWriteSink {
    transport: RemoteWriteTransport,
    settings: DeliverySettings,
    stats: Arc<SinkStats>,
    encoder: Points,
}

/// The sink's [`Encoder`]: windows as [`Point`]s.
struct Points {
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
        let queue = &config.queue_config;
        Ok(RemoteWriteSink {
            transport: RemoteWriteTransport {
                client,
                v2: AtomicBool::new(config.protobuf_message == ProtobufMessage::V2),
                retry_on_http_429: queue.retry_on_http_429,
                name: stats.name.clone(),
            },
            settings: DeliverySettings::from(queue),
            stats,
            encoder: Points {
                external: external
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    })
                    .collect(),
                native: config.send_native_histograms,
                telemetry,
            },
        })
    }

    /// The points of `window`: its series, stale markers for those in
    /// `previous` that are gone, and tallyd's own metrics.
    pub fn points(&self, window: &WindowSnapshot, previous: Option<&WindowSnapshot>) -> Vec<Point> {
        self.encoder.encode(window, previous)
    }

    /// Sends every window `windows` brings until `stop` gives a deadline;
    /// then sends what is left until it passes, counting what is not sent.
    pub async fn run(
        self,
        windows: mpsc::UnboundedReceiver<Arc<WindowSnapshot>>,
        stop: watch::Receiver<Option<Instant>>,
    ) {
        deliver(
            self.encoder,
            self.transport,
            self.settings,
            self.stats,
            windows,
            stop,
        )
        .await;
    }
}

impl Encoder for Points {
    type Item = Point;

    fn encode(&self, window: &WindowSnapshot, previous: Option<&WindowSnapshot>) -> Vec<Point> {
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
}

/// Series of `previous` that `current` no longer has (both sorted alike).
fn gone_series(previous: &WindowSnapshot, current: &WindowSnapshot) -> Vec<SeriesRollup> {
    fn key(s: &SeriesRollup) -> (&str, u8, &str) {
        (s.meta.prom_name(), s.meta.kind as u8, s.meta.prom_labels())
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

/// How long shutdown waits for queued samples to be sent.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
