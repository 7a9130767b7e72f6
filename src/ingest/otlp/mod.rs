//! OTLP metrics over gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
//!
//! Each export is mapped into tallyd's model ([`mapping`]) and routed like any
//! other gRPC call, waiting for full queues until the call's deadline. Points
//! that could not be mapped or queued are reported back as OTLP partial success
//! (`rejected_data_points` with a message naming the reasons), as the OTLP
//! specification asks, and counted in `tallyd_lines_rejected_total{transport="otlp"}`.

mod cumulative;
mod mapping;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::Inlet;
use super::call::{Call, wait_for};
use crate::telemetry::Transport;
use cumulative::Cumulative;
use mapping::Mapper;

/// The OTLP metrics service, cloned per connection by tonic.
#[derive(Clone)]
pub struct OtlpService {
    inlet: Inlet,
    queue_wait: Duration,
    quantiles: Arc<[f64]>,
    streams: Arc<Mutex<Cumulative>>,
}

impl OtlpService {
    /// A service routing into `inlet`; `quantiles` are estimated from
    /// histogram buckets; cumulative streams idle for `idle_ttl` are forgotten.
    pub fn new(
        inlet: Inlet,
        queue_wait: Duration,
        quantiles: Vec<f64>,
        idle_ttl: Duration,
    ) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        OtlpService {
            inlet,
            queue_wait,
            quantiles: quantiles.into(),
            streams: Arc::new(Mutex::new(Cumulative::new(started, idle_ttl))),
        }
    }

    /// The tonic service, accepting messages up to `max_message_bytes`
    /// (after decompression), gzip-compressed or not, as OTLP exporters send.
    pub fn into_server(self, max_message_bytes: usize) -> MetricsServiceServer<Self> {
        MetricsServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpService {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let deadline = Instant::now() + wait_for(&request, self.queue_wait);
        let export = request.into_inner();
        let mut call = Call::new(&self.inlet, Transport::Otlp, deadline);
        call.received(export.encoded_len());
        {
            let mut streams = self
                .streams
                .lock()
                .map_err(|_| Status::internal("OTLP stream state poisoned"))?;
            Mapper {
                call: &mut call,
                streams: &mut streams,
                quantiles: &self.quantiles,
                now: Instant::now(),
            }
            .export(&export);
        }
        let summary = call.finish();
        let partial_success = (summary.rejected > 0).then(|| {
            let reasons: Vec<String> = summary
                .rejected_by_reason
                .iter()
                .map(|(reason, n)| format!("{reason}={n}"))
                .collect();
            ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(summary.rejected).unwrap_or(i64::MAX),
                error_message: format!("data points refused by reason: {}", reasons.join(", ")),
            }
        });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}
