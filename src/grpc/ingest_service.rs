//! The `tallyd.v1.Ingest` service: `PushBatch` (unary) and `Push` (client streaming).
//!
//! Each call routes through its own [`Call`]. Routing may wait for room in a
//! full shard queue, blocking the runtime worker until the call's deadline: the
//! shards are then the bottleneck, and holding the call is the backpressure
//! the client should feel.

use std::time::{Duration, Instant};

use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::call::{Call, CallContext};
use super::proto::ingest_server::Ingest;
use super::proto::{Batch, PushSummary};
use crate::telemetry::Transport;

/// The share of a client's own timeout spent waiting for queues, leaving the
/// rest to deliver the summary before the client gives up.
const CLIENT_TIMEOUT_SHARE: f64 = 0.9;

/// The service, cloned per connection by tonic.
#[derive(Clone)]
pub struct IngestService {
    context: CallContext,
    queue_wait: Duration,
}

impl IngestService {
    /// A service routing into `context`'s queues, waiting at most `queue_wait`.
    pub fn new(context: CallContext, queue_wait: Duration) -> Self {
        IngestService {
            context,
            queue_wait,
        }
    }

    fn call<T>(&self, request: &Request<T>) -> Call {
        let deadline = Instant::now() + wait_for(request, self.queue_wait);
        Call::new(&self.context, Transport::Grpc, deadline)
    }
}

/// How long a call may wait for queues: `limit`, or less when the client's
/// `grpc-timeout` is sooner.
pub fn wait_for<T>(request: &Request<T>, limit: Duration) -> Duration {
    request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(limit, |timeout| {
            limit.min(timeout.mul_f64(CLIENT_TIMEOUT_SHARE))
        })
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }

    #[test]
    fn the_client_timeout_shortens_the_wait_but_never_lengthens_it() {
        let limit = Duration::from_secs(10);
        let mut request = Request::new(());
        assert_eq!(wait_for(&request, limit), limit);
        request
            .metadata_mut()
            .insert("grpc-timeout", "1S".parse().unwrap());
        assert_eq!(wait_for(&request, limit), Duration::from_millis(900));
        request
            .metadata_mut()
            .insert("grpc-timeout", "1H".parse().unwrap());
        assert_eq!(wait_for(&request, limit), limit);
    }
}
