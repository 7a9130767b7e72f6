//! The `tallyd.v1.Ingest` service: `PushBatch` (unary) and `Push` (client streaming).
//!
//! Each call routes through its own [`Call`]. Routing may wait for room in a
//! full shard queue, blocking the runtime worker until the call's deadline: the
//! shards are then the bottleneck, and holding the call is the backpressure
//! the client should feel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::Inlet;
use super::call::{Call, wait_for};
use super::proto::ingest_server::Ingest;
use super::proto::{Batch, PushSummary};
use crate::telemetry::{Telemetry, Transport};

/// The service, cloned per connection by tonic.
#[derive(Clone)]
pub struct IngestService {
    inlet: Inlet,
    queue_wait: Duration,
}

impl IngestService {
    /// The counters its calls write.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        self.inlet.telemetry()
    }

    /// A service routing into `inlet`, waiting at most `queue_wait`.
    pub fn new(inlet: Inlet, queue_wait: Duration) -> Self {
        IngestService { inlet, queue_wait }
    }

    fn call<T>(&self, request: &Request<T>) -> Call {
        let deadline = Instant::now() + wait_for(request, self.queue_wait);
        Call::new(&self.inlet, Transport::Grpc, deadline)
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn push(
        &self,
        request: Request<Streaming<Batch>>,
    ) -> Result<Response<PushSummary>, Status> {
        let mut call = self.call(&request);
        let mut stream = request.into_inner();
        loop {
            match stream.message().await {
                Ok(Some(batch)) => {
                    call.received(batch.encoded_len());
                    call.push(&batch);
                }
                Ok(None) => break,
                Err(status) => {
                    // What was queued stays queued; the client learns of the error.
                    let summary = call.finish();
                    tracing::debug!(?summary, %status, "gRPC push stream failed");
                    return Err(status);
                }
            }
        }
        Ok(Response::new(call.finish()))
    }

    async fn push_batch(&self, request: Request<Batch>) -> Result<Response<PushSummary>, Status> {
        let mut call = self.call(&request);
        let batch = request.into_inner();
        call.received(batch.encoded_len());
        call.push(&batch);
        Ok(Response::new(call.finish()))
    }
}
