//! OTLP over gRPC: `MetricsService/Export` on a tonic channel whose
//! connections come from the sinks' shared connector (rustls, HTTP/2), the
//! request body being the bytes [`super::encode`] assembled.
//!
//! Answers are judged as the OTLP specification says: `CANCELLED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE` and
//! `DATA_LOSS` are retried, `RESOURCE_EXHAUSTED` only when the server sent
//! `RetryInfo` (whose delay replaces the backoff); every other code is a
//! refusal. A status the transport made up (a reset connection, a TLS alert
//! such as a collector asking for a client certificate it did not get) is a
//! connection failure and retried, whatever code tonic gave it: the server
//! never answered.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, TimeoutExpired};

use super::Reply;
use crate::config::{OtlpCompression, OtlpExport};
use crate::sinks::connect::{ClientError, HttpVersion, connector};
use crate::telemetry::SinkFailure;

const EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// One collector, over gRPC.
pub struct GrpcExporter {
    channel: Channel,
    metadata: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
    gzip: bool,
    timeout: Duration,
}

impl GrpcExporter {
    /// A lazily connecting channel to `config.endpoint`.
    pub fn new(config: &OtlpExport) -> Result<Self, ClientError> {
        let sink = config.sink_name();
        let http_error = |message: String| ClientError::Http {
            sink: sink.clone(),
            message,
        };
        let endpoint = Endpoint::from_shared(config.endpoint.as_str().to_owned())
            .map_err(|e| http_error(format!("endpoint: {e}")))?
            .timeout(config.timeout.get())
            .connect_timeout(config.timeout.get())
            .user_agent(concat!("tallyd/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| http_error(e.to_string()))?;
        let connector = connector(
            &sink,
            config.endpoint.is_https(),
            config.tls.as_ref(),
            config.timeout.get(),
            HttpVersion::Http2,
        )?;
        let mut metadata = Vec::new();
        for (name, value) in &config.headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|e| http_error(format!("headers: {name:?}: {e}")))?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|e| http_error(format!("headers: {name}: {e}")))?;
            metadata.push((key, value));
        }
        Ok(GrpcExporter {
            channel: endpoint.connect_with_connector_lazy(connector),
            metadata,
            gzip: config.compression == OtlpCompression::Gzip,
            timeout: config.timeout.get(),
        })
    }

    /// Sends one encoded `ExportMetricsServiceRequest`.
    pub async fn export(&self, body: Bytes) -> Reply {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip);
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        let answer = async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("not connected: {e}")))?;
            let mut request = tonic::Request::new(body);
            request.set_timeout(self.timeout);
            for (key, value) in &self.metadata {
                request.metadata_mut().insert(key.clone(), value.clone());
            }
            grpc.unary(request, PathAndQuery::from_static(EXPORT), RawCodec)
                .await
        };
        match tokio::time::timeout(self.timeout, answer).await {
            Err(_) => Reply::Retry {
                failure: SinkFailure::Timeout,
                after: None,
            },
            Ok(Ok(response)) => Reply::Taken(response.into_inner().partial_success),
            Ok(Err(status)) => judge(&status),
        }
    }
}

/// What a failed call means.
fn judge(status: &Status) -> Reply {
    let retry = |failure| Reply::Retry {
        failure,
        after: None,
    };
    if let Some(cause) = std::error::Error::source(status) {
        // Statuses decoded from a server's answer carry no source.
        return retry(if timed_out(cause) {
            SinkFailure::Timeout
        } else {
            SinkFailure::Connection
        });
    }
    match status.code() {
        Code::DeadlineExceeded => retry(SinkFailure::Timeout),
        Code::Unavailable => retry(SinkFailure::Connection),
        Code::Cancelled | Code::Aborted | Code::OutOfRange | Code::DataLoss => {
            retry(SinkFailure::ServerError)
        }
        Code::ResourceExhausted => match retry_delay(status.details()) {
            Some(after) => Reply::Retry {
                failure: SinkFailure::TooManyRequests,
                after: Some(after),
            },
            None => Reply::Refused {
                failure: SinkFailure::TooManyRequests,
                message: format!("RESOURCE_EXHAUSTED without RetryInfo: {}", status.message()),
            },
        },
        code => Reply::Refused {
            failure: SinkFailure::ClientError,
            message: format!("{code:?}: {}", status.message()),
        },
    }
}

/// Whether a transport error was tonic's request timeout.
fn timed_out(mut cause: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if cause.is::<TimeoutExpired>() {
            return true;
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return false,
        }
    }
}

/// `google.rpc.Status`, as far as the retry delay goes.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The `RetryInfo` delay in `grpc-status-details-bin`, if the server sent one.
fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let info = status
        .details
        .iter()
        .find(|any| any.type_url.ends_with("google.rpc.RetryInfo"))?;
    let delay = RetryInfo::decode(&info.value[..]).ok()?.retry_delay?;
    Some(Duration::new(
        u64::try_from(delay.seconds).ok()?,
        u32::try_from(delay.nanos).ok()?,
    ))
}

/// Sends bytes encoded already; decodes the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportMetricsServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportMetricsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("undecodable ExportMetricsServiceResponse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_exhausted_is_retried_only_with_retry_info() {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: 2,
                nanos: 500_000_000,
            }),
        };
        let details = RpcStatus {
            details: vec![RpcAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let with = Status::with_details(Code::ResourceExhausted, "slow down", details.into());
        assert_eq!(
            judge(&with),
            Reply::Retry {
                failure: SinkFailure::TooManyRequests,
                after: Some(Duration::from_millis(2500)),
            }
        );
        let without = Status::resource_exhausted("full");
        assert!(matches!(judge(&without), Reply::Refused { .. }));
        assert!(matches!(
            judge(&Status::unavailable("down")),
            Reply::Retry {
                failure: SinkFailure::Connection,
                ..
            }
        ));
        let reset = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        )));
        assert!(matches!(
            judge(&reset),
            Reply::Retry {
                failure: SinkFailure::Connection,
                ..
            }
        ));
        assert!(matches!(
            judge(&Status::from_error(Box::new(TimeoutExpired(())))),
            Reply::Retry {
                failure: SinkFailure::Timeout,
                ..
            }
        ));
        assert!(matches!(
            judge(&Status::invalid_argument("bad")),
            Reply::Refused {
                failure: SinkFailure::ClientError,
                ..
            }
        ));
    }
}
