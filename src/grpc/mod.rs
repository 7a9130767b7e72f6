//! gRPC ingest: tallyd's own API (`proto/tallyd/v1/ingest.proto`) and OTLP
//! metrics, served together on `listen.grpc`.
//!
//! Both APIs feed the same routers and shards as the text transports. A call's
//! values are acknowledged only once they are in a shard queue; when queues are
//! full the call waits (bounded by its deadline and `limits.queue_wait`) and
//! reports what it could not queue, so nothing acknowledged is dropped.

mod call;
mod ingest_service;
mod server;

pub use call::{Call, CallContext};
pub use ingest_service::{IngestService, wait_for};
pub use server::serve;

/// Code generated from `proto/tallyd/v1/ingest.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("tallyd.v1");
}
