//! One gRPC call's worth of ingest: validate each metric, route its values, and
//! say what was accepted and what was refused, by reason.
//!
//! The decoded [`Batch`] already groups values by series, so each metric is
//! hashed once and its values are copied into shard batches in runs
//! ([`Router::route_values`]); the tags are joined into one reused buffer. No
//! allocation is made per value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Request;

use super::Inlet;
use super::proto::{self, Batch, PushSummary};
use crate::codec::{Metric, MetricType, Payload, RejectReason, Sample, Tags};
use crate::shard::{Overflow, Router};
use crate::telemetry::{DropReason, LocalTally, Telemetry, Transport};

/// The share of a client's own timeout spent waiting for queues, leaving the
/// rest to deliver the summary before the client gives up.
const CLIENT_TIMEOUT_SHARE: f64 = 0.9;

/// The state of one call: its router, its tallies and scratch buffers.
pub struct Call {
    router: Router,
    tally: LocalTally,
    tags: String,
    finite: Vec<f64>,
    transport: Transport,
    telemetry: Arc<Telemetry>,
}

impl Call {
    /// A call into `inlet` that waits for full queues until `deadline`.
    pub fn new(inlet: &Inlet, transport: Transport, deadline: Instant) -> Self {
        Call {
            router: inlet.router(Overflow::WaitUntil(deadline)),
            tally: LocalTally::default(),
            tags: String::new(),
            finite: Vec::new(),
            transport,
            telemetry: inlet.telemetry().clone(),
        }
    }

    /// Counts one received message of `bytes` bytes; its lines were received
    /// now (the shard places a batch in a window by that time).
    pub fn received(&mut self, bytes: usize) {
        self.router.note_arrival(crate::telemetry::unix_nanos());
        self.tally.frames += 1;
        self.tally.bytes += bytes as u64;
    }

    /// Routes every metric of `batch` and hands the batches over.
    pub fn push(&mut self, batch: &Batch) {
        for metric in &batch.metrics {
            self.push_metric(metric);
        }
        self.router.flush(&mut self.tally);
    }

    /// Counts `n` events (lines) received; callers that route by parts count
    /// their own events, since one of theirs may become several values.
    pub fn count_events(&mut self, n: usize) {
        self.tally.lines += n as u64;
    }

    /// Counts `n` events refused for `reason`.
    pub fn reject(&mut self, reason: RejectReason, n: usize) {
        self.tally.reject(reason, n as u64);
    }

    /// Routes the numeric `values` of one series given by parts (for APIs whose
    /// messages are not a [`Batch`]), refusing non-finite values.
    pub fn route_parts<'a>(
        &mut self,
        name: &str,
        tags: impl IntoIterator<Item = &'a str>,
        kind: MetricType,
        values: &[f64],
    ) -> Result<(), RejectReason> {
        if name.is_empty() {
            return Err(RejectReason::EmptyName);
        }
        self.join_tags(tags)?;
        self.route_numbers(name, kind, 1.0, values);
        Ok(())
    }

    fn push_metric(&mut self, metric: &proto::Metric) {
        let events = metric.values.len() + metric.set_members.len();
        self.tally.lines += events as u64;
        let checked = (|| {
            if metric.name.is_empty() {
                return Err(RejectReason::EmptyName);
            }
            let kind = metric_type(metric.r#type()).ok_or(RejectReason::UnknownType)?;
            let rate = match metric.sample_rate {
                0.0 => 1.0,
                r if r > 0.0 && r <= 1.0 => r,
                _ => return Err(RejectReason::BadSampleRate),
            };
            Ok((kind, rate))
        })()
        .and_then(|checked| {
            self.join_tags(metric.tags.iter().map(String::as_str))
                .map(|()| checked)
        });
        let (kind, rate) = match checked {
            Ok(checked) => checked,
            Err(reason) => return self.reject(reason, events),
        };
        if kind == MetricType::Set {
            self.reject(RejectReason::Malformed, metric.values.len());
            for member in &metric.set_members {
                if member.is_empty() {
                    self.reject(RejectReason::BadValue, 1);
                    continue;
                }
                let routed = Metric {
                    payload: Payload::SetMember(member),
                    ..routed_metric(&self.tags, &metric.name, kind, rate)
                };
                if self.router.route(&routed, &mut self.tally).is_err() {
                    self.reject(RejectReason::TooLong, 1);
                }
            }
        } else {
            self.reject(RejectReason::Malformed, metric.set_members.len());
            self.route_numbers(&metric.name, kind, rate, &metric.values);
        }
    }

    /// Routes the finite values among `values`, refusing the others.
    fn route_numbers(&mut self, name: &str, kind: MetricType, rate: f64, values: &[f64]) {
        if values.iter().all(|v| v.is_finite()) {
            return self.route_finite(name, kind, rate, values);
        }
        let mut finite = std::mem::take(&mut self.finite);
        finite.clear();
        finite.extend(values.iter().copied().filter(|v| v.is_finite()));
        self.reject(RejectReason::BadValue, values.len() - finite.len());
        self.route_finite(name, kind, rate, &finite);
        self.finite = finite;
    }

    fn route_finite(&mut self, name: &str, kind: MetricType, rate: f64, values: &[f64]) {
        let metric = routed_metric(&self.tags, name, kind, rate);
        if self
            .router
            .route_values(&metric, values, &mut self.tally)
            .is_err()
        {
            self.reject(RejectReason::TooLong, values.len());
        }
    }

    /// Joins `tags` with commas into the scratch buffer; a tag holding a comma
    /// cannot be represented.
    fn join_tags<'a>(
        &mut self,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RejectReason> {
        self.tags.clear();
        for tag in tags {
            if tag.contains(',') {
                return Err(RejectReason::Malformed);
            }
            if tag.is_empty() {
                continue;
            }
            if !self.tags.is_empty() {
                self.tags.push(',');
            }
            self.tags.push_str(tag);
        }
        Ok(())
    }

    /// Hands every batch over and says what the call accepted; adds its tallies to
    /// the shared counters.
    pub fn finish(mut self) -> PushSummary {
        self.router.flush(&mut self.tally);
        let mut summary = PushSummary::default();
        for reason in RejectReason::ALL {
            let n = self.tally.rejected(reason);
            if n > 0 {
                summary
                    .rejected_by_reason
                    .insert(reason.as_str().to_owned(), n);
            }
        }
        for reason in [DropReason::QueueTimeout, DropReason::QueueFull] {
            let n = self.tally.dropped(reason);
            if n > 0 {
                summary
                    .rejected_by_reason
                    .insert(reason.as_str().to_owned(), n);
            }
        }
        summary.rejected = summary.rejected_by_reason.values().sum();
        summary.accepted = self.tally.lines.saturating_sub(summary.rejected);
        self.tally.publish(&self.telemetry, self.transport);
        summary
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

/// A metric to route; its payload is filled in by the caller when it matters.
fn routed_metric<'a>(
    tags: &'a str,
    name: &'a str,
    kind: MetricType,
    sample_rate: f64,
) -> Metric<'a> {
    Metric {
        name,
        kind,
        payload: Payload::Numbers {
            first: Sample {
                value: 0.0,
                signed: false,
            },
            rest: "",
        },
        sample_rate,
        tags: Tags::new(tags),
        container_id: None,
        timestamp: None,
    }
}

fn metric_type(kind: proto::MetricType) -> Option<MetricType> {
    Some(match kind {
        proto::MetricType::Unspecified => return None,
        proto::MetricType::Counter => MetricType::Counter,
        proto::MetricType::Gauge => MetricType::Gauge,
        proto::MetricType::Timer => MetricType::Timer,
        proto::MetricType::Histogram => MetricType::Histogram,
        proto::MetricType::Distribution => MetricType::Distribution,
        proto::MetricType::Set => MetricType::Set,
    })
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
