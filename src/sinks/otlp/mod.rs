//! The OTLP export sink: every closed window pushed to an OpenTelemetry
//! collector or a vendor's OTLP endpoint, over gRPC ([`grpc`]) or HTTP with
//! protobuf bodies ([`http`]), cumulative or delta.
//!
//! Its [`Encoder`] turns each window into encoded data points ([`encode`]);
//! its [`Transport`] wraps a chunk of `max_samples_per_send` of them in one
//! `ExportMetricsServiceRequest` for the sink's resource. A partial success
//! (`rejected_data_points`) counts those points dropped as `rejected`, the
//! rest sent. tallyd's own metrics are not exported: a second tallyd taking
//! them would serve them beside its own `tallyd_*`; scrape `/metrics` for
//! them.

pub mod encode;
mod grpc;
mod http;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
use tokio::sync::{mpsc, watch};

pub use encode::{OtlpPoint, Points, RequestHead};

use self::grpc::GrpcExporter;
use self::http::HttpExporter;
use super::connect::ClientError;
use super::delivery::{Answer, DeliverySettings, Transport, deliver};
use crate::config::{OtlpExport, OtlpProtocol};
use crate::store::WindowSnapshot;
use crate::telemetry::{SinkFailure, SinkStats};

/// What one export came to, over either protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Taken, maybe in part.
    Taken(Option<ExportMetricsPartialSuccess>),
    /// Worth sending again.
    Retry {
        /// Why it failed.
        failure: SinkFailure,
        /// How long the target asked to wait.
        after: Option<Duration>,
    },
    /// Refused for good.
    Refused {
        /// Why it failed.
        failure: SinkFailure,
        /// What the target said.
        message: String,
    },
}

enum Exporter {
    Grpc(GrpcExporter),
    Http(Box<HttpExporter>),
}

/// One OTLP target.
struct OtlpTransport {
    exporter: Exporter,
    head: RequestHead,
}

impl Transport for OtlpTransport {
    type Item = OtlpPoint;
    const KIND: &'static str = "otlp";

    async fn send(&self, chunk: &[OtlpPoint]) -> Answer {
        let body = Bytes::from(self.head.request(chunk));
        let reply = match &self.exporter {
            Exporter::Grpc(grpc) => grpc.export(body).await,
            Exporter::Http(http) => http.export(body).await,
        };
        match reply {
            Reply::Taken(Some(partial)) if partial.rejected_data_points > 0 => Answer::Partly {
                rejected: usize::try_from(partial.rejected_data_points)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len()),
                message: partial.error_message,
            },
            Reply::Taken(_) => Answer::Stored,
            Reply::Retry { failure, after } => Answer::Retry { failure, after },
            Reply::Refused { failure, message } => Answer::Refused { failure, message },
        }
    }
}

/// An OTLP export sink, ready to run on its own thread.
pub struct OtlpSink {
    transport: OtlpTransport,
    encoder: Points,
    settings: DeliverySettings,
    stats: Arc<SinkStats>,
}

impl OtlpSink {
    /// A sink for `config`, counting into `stats`.
    pub fn new(config: &OtlpExport, stats: Arc<SinkStats>) -> Result<Self, ClientError> {
        let exporter = match config.protocol {
            OtlpProtocol::Grpc => Exporter::Grpc(GrpcExporter::new(config)?),
            OtlpProtocol::HttpProtobuf => Exporter::Http(Box::new(HttpExporter::new(config)?)),
        };
        Ok(OtlpSink {
            transport: OtlpTransport {
                exporter,
                head: RequestHead::new(config.resource_attributes.iter(), config.temporality),
            },
            encoder: Points::new(config.temporality),
            settings: DeliverySettings::from(&config.queue_config),
            stats,
        })
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
