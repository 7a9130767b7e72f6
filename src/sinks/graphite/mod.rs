//! The Graphite sink: every closed window sent to a carbon plaintext receiver
//! with Etsy StatsD's names ([`lines`]), tags as Graphite 1.1 tags or none.
//!
//! Carbon's plaintext protocol has no acknowledgement, so a connection that
//! breaks after a write could lose lines without anyone knowing. Each send is
//! therefore one connection: write the chunk's lines, close our side, and
//! count them delivered only when the receiver closes its side too, which it
//! does after reading everything (carbon, go-carbon and VictoriaMetrics all
//! read to the end before closing). Anything else (no connection, a reset, no
//! close within `timeout`) is retried with backoff, the host looked up again
//! each time. A resend is harmless: Graphite keeps one value per path and
//! timestamp, so the same line twice stores the same point.

mod lines;
mod names;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

pub use lines::{Line, Lines};

use super::delivery::{Answer, DeliverySettings, Encoder, Transport, deliver};
use crate::config::Graphite;
use crate::store::WindowSnapshot;
use crate::telemetry::{SinkFailure, SinkStats, Telemetry};

/// One carbon receiver.
struct Carbon {
    address: String,
    timeout: Duration,
    sink: String,
}

impl Transport for Carbon {
    type Item = Line;
    const KIND: &'static str = "graphite";

    async fn send(&self, chunk: &[Line]) -> Answer {
        let mut body = Vec::with_capacity(chunk.iter().map(|line| line.0.len()).sum());
        for line in chunk {
            body.extend_from_slice(line.0.as_bytes());
        }
        match tokio::time::timeout(self.timeout, self.write(&body)).await {
            Ok(Ok(())) => Answer::Stored,
            Ok(Err(err)) => {
                tracing::debug!(sink = %self.sink, address = %self.address, %err, "graphite send failed");
                Answer::Retry {
                    failure: SinkFailure::Connection,
                    after: None,
                }
            }
            Err(_) => Answer::Retry {
                failure: SinkFailure::Timeout,
                after: None,
            },
        }
    }
}

impl Carbon {
    /// Writes `body` on a new connection and waits for the receiver to close
    /// it after our end of data.
    async fn write(&self, body: &[u8]) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        stream.write_all(body).await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 512];
        while stream.read(&mut discard).await? > 0 {}
        Ok(())
    }
}

/// A Graphite sink, ready to run on its own thread.
pub struct GraphiteSink {
    transport: Carbon,
    encoder: Lines,
    settings: DeliverySettings,
    stats: Arc<SinkStats>,
}

impl GraphiteSink {
    /// A sink for `config`, counting into `stats`.
    pub fn new(config: &Graphite, telemetry: Arc<Telemetry>, stats: Arc<SinkStats>) -> Self {
        let mut prefix = config.prefix.as_str().to_owned();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        GraphiteSink {
            transport: Carbon {
                address: config.address.as_str().to_owned(),
                timeout: config.timeout.get(),
                sink: stats.name.clone(),
            },
            encoder: Lines {
                prefix,
                tags: config.tags,
                telemetry,
                stats: stats.clone(),
            },
            settings: DeliverySettings::from(&config.queue_config),
            stats,
        }
    }

    /// The lines of `window`.
    pub fn lines(&self, window: &WindowSnapshot) -> Vec<Line> {
        self.encoder.encode(window, None)
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
