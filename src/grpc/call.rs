//! One gRPC call's worth of ingest: validate each metric, route its values, and
//! say what was accepted and what was refused, by reason.
//!
//! The decoded [`Batch`] already groups values by series, so each metric is
//! hashed once and its values are copied into shard batches in runs
//! ([`Router::route_values`]); the tags are joined into one reused buffer. No
//! allocation is made per value.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;

use super::proto::{self, Batch, PushSummary};
use crate::codec::{Metric, MetricType, Payload, RejectReason, Sample, Tags};
use crate::shard::{self, BatchPool, Overflow, Router};
use crate::telemetry::{DropReason, LocalTally, Telemetry, Transport};

/// What every call of one server shares.
#[derive(Clone)]
pub struct CallContext {
    /// The shard queues.
    pub queues: Vec<Sender<shard::Batch>>,
    /// Recycled batches.
    pub pool: BatchPool,
    /// Counters.
    pub telemetry: Arc<Telemetry>,
}

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
    /// A call that waits for full queues until `deadline`.
    pub fn new(context: &CallContext, transport: Transport, deadline: Instant) -> Self {
        let mut router = Router::new(context.queues.clone(), context.pool.clone());
        router.set_overflow(Overflow::WaitUntil(deadline));
        Call {
            router,
            tally: LocalTally::default(),
            tags: String::new(),
            finite: Vec::new(),
            transport,
            telemetry: context.telemetry.clone(),
        }
    }

    /// Counts one received message of `bytes` bytes.
    pub fn received(&mut self, bytes: usize) {
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
        self.tally.rejected[reason.index()] += n as u64;
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
            let n = self.tally.rejected[reason.index()];
            if n > 0 {
                summary
                    .rejected_by_reason
                    .insert(reason.as_str().to_owned(), n);
            }
        }
        for reason in [DropReason::QueueTimeout, DropReason::QueueFull] {
            let n = self.tally.dropped[reason as usize];
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
        tags: Tags(tags),
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
