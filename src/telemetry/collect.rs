//! Reading the counters at scrape time, family by family, in catalogue terms.
//!
//! [`Telemetry::collect`] hands each family's descriptor and then its samples
//! to a [`Collector`] (the `/metrics` renderer, or a test). Families that do not
//! apply are left out whole: per-transport families for transports without a
//! listener, the GPU cost model before it is probed, the backend before it is
//! chosen. Every counter that applies is reported from start-up at 0.

use std::sync::atomic::Ordering;

use super::catalogue::{self as c, Family};
use super::{
    ConnectionListener, DropReason, HistogramSnapshot, HttpRefusal, IngestCounters, Listener,
    ShardCounters, SinkDropReason, SinkFailure, SinkStats, Telemetry, Transport, udp_kernel_drops,
};
use crate::codec::RejectReason;

/// Reads one value of a sink's counters.
type SinkValue = fn(&SinkStats) -> f64;

/// What receives the families.
pub trait Collector {
    /// Starts `family`; its samples follow.
    fn family(&mut self, family: &'static Family);
    /// One sample of the family started last: label values in the order of its
    /// `labels`.
    fn sample(&mut self, label_values: &[&str], value: f64);
    /// One histogram of the (histogram) family started last.
    fn histogram(&mut self, label_values: &[&str], histogram: &HistogramSnapshot);
}

/// What only the scrape knows, reported beside the counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScrapeFacts {
    /// Series skipped as exposition conflicts in this scrape.
    pub conflicts: u64,
    /// Series in the last closed window.
    pub window_series: usize,
    /// End of the last closed window, in unix seconds (0 before the first).
    pub last_window_end_seconds: f64,
}

impl Telemetry {
    /// Hands every family that applies, with its samples, to `out`.
    pub fn collect(&self, facts: &ScrapeFacts, out: &mut impl Collector) {
        single(out, &c::BUILD_INFO, &[env!("CARGO_PKG_VERSION")], 1.0);
        if let Some(backend) = self.kernel_backend.get() {
            single(out, &c::KERNEL_BACKEND_INFO, &[backend.as_str()], 1.0);
        }
        let reload_success = self.config_last_reload_success.load(Ordering::Relaxed);
        single(
            out,
            &c::CONFIG_LAST_RELOAD_SUCCESS,
            &[],
            if reload_success { 1.0 } else { 0.0 },
        );
        single(
            out,
            &c::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
            &[],
            self.config_last_reload_success_seconds.get(),
        );
        self.collect_gpu(out);
        self.collect_ingest(out);
        let inodes = self
            .udp_socket_inodes
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default();
        if let Some(drops) = udp_kernel_drops(&inodes) {
            single(out, &c::UDP_KERNEL_DROPS, &[], drops as f64);
        }
        out.family(&c::LINES_DROPPED);
        for reason in DropReason::ALL {
            out.sample(&[reason.as_str()], self.dropped(reason).get() as f64);
        }
        self.per_shard(out, &c::SERIES, |s| s.series.load(Ordering::Relaxed) as f64);
        self.per_shard(out, &c::SERIES_EXPIRED, |s| s.series_expired.get() as f64);
        self.per_shard(out, &c::WINDOWS_FLUSHED, |s| s.windows_flushed.get() as f64);
        self.per_shard(out, &c::WINDOWS_SKIPPED, |s| s.windows_skipped.get() as f64);
        self.per_shard(out, &c::WINDOW_FLUSH_SECONDS, |s| {
            s.flush_seconds_total.get()
        });
        self.per_shard(out, &c::WINDOW_FLUSH_PAUSED_SECONDS, |s| {
            s.flush_paused_seconds_total.get()
        });
        self.per_shard(out, &c::WINDOW_LAST_FLUSH_SECONDS, |s| {
            s.last_flush_seconds.get()
        });
        single(out, &c::WINDOW_SERIES, &[], facts.window_series as f64);
        single(
            out,
            &c::WINDOW_LAST_END_TIMESTAMP,
            &[],
            facts.last_window_end_seconds,
        );
        out.family(&c::SOCKET_WAIT);
        for transport in [Transport::Udp, Transport::UnixDatagram] {
            if self.ingest(transport).enabled.load(Ordering::Relaxed) {
                out.histogram(
                    &[transport.as_str()],
                    &self.socket_wait(transport).snapshot(),
                );
            }
        }
        out.family(&c::INGEST_DELAY);
        out.histogram(&[], &self.ingest_delay.snapshot());
        out.family(&c::WINDOW_PUBLISH_DELAY);
        out.histogram(&[], &self.window_publish_delay.snapshot());
        single(out, &c::EXPOSITION_CONFLICTS, &[], facts.conflicts as f64);
        out.family(&c::TLS_HANDSHAKES_FAILED);
        for listener in Listener::ALL {
            let failed = self.access.handshake_failed(listener).get();
            out.sample(&[listener.as_str()], failed as f64);
        }
        out.family(&c::HTTP_REQUESTS_REFUSED);
        for reason in HttpRefusal::ALL {
            let refused = self.access.http_refused(reason).get();
            out.sample(&[reason.as_str()], refused as f64);
        }
        out.family(&c::CONNECTIONS_REFUSED);
        for listener in ConnectionListener::ALL {
            let refused = self.access.connection_refused(listener).get();
            out.sample(&[listener.as_str()], refused as f64);
        }
        out.family(&c::CONNECTIONS_IDLE_CLOSED);
        for listener in ConnectionListener::IDLE_CLOSED {
            let closed = self.access.connection_idle_closed(listener).get();
            out.sample(&[listener.as_str()], closed as f64);
        }
        out.family(&c::GRPC_MESSAGES_TOO_LARGE);
        for transport in [Transport::Grpc, Transport::Otlp] {
            let refused = self.access.grpc_message_too_large(transport).get();
            out.sample(&[transport.as_str()], refused as f64);
        }
        self.collect_sinks(out);
    }

    /// Each push sink's counters, labelled by sink (families only when a
    /// sink is configured).
    fn collect_sinks(&self, out: &mut impl Collector) {
        let sinks = self.sinks.all();
        if sinks.is_empty() {
            return;
        }
        let families: [(&'static Family, SinkValue); 8] = [
            (&c::SINK_SAMPLES_SENT, |s| s.samples_sent.get() as f64),
            (&c::SINK_HISTOGRAMS_SENT, |s| s.histograms_sent.get() as f64),
            (&c::SINK_RETRIES, |s| s.retries.get() as f64),
            (&c::SINK_REQUESTS, |s| s.requests.get() as f64),
            (&c::SINK_REQUEST_SECONDS, |s| s.request_seconds.get()),
            (&c::SINK_QUEUE_SAMPLES, |s| s.queue_samples.get()),
            (&c::SINK_QUEUE_BYTES, |s| s.queue_bytes.get()),
            (&c::SINK_LAST_SEND_TIMESTAMP, |s| {
                s.last_success_seconds.get()
            }),
        ];
        for (family, value) in families {
            out.family(family);
            for sink in &sinks {
                out.sample(&[&sink.name], value(sink));
            }
        }
        out.family(&c::SINK_SAMPLES_DROPPED);
        for sink in &sinks {
            for reason in SinkDropReason::ALL {
                out.sample(
                    &[&sink.name, reason.as_str()],
                    sink.dropped(reason).get() as f64,
                );
            }
        }
        out.family(&c::SINK_REQUESTS_FAILED);
        for sink in &sinks {
            for reason in SinkFailure::ALL {
                out.sample(
                    &[&sink.name, reason.as_str()],
                    sink.failed(reason).get() as f64,
                );
            }
        }
    }

    /// The GPU offload: its state, the adapter, windows offloaded and fallen
    /// back, and the cost model's figures once probed.
    fn collect_gpu(&self, out: &mut impl Collector) {
        let gpu = &self.gpu;
        single(out, &c::KERNEL_GPU_INFO, &[gpu.state().as_str()], 1.0);
        let adapter = gpu.adapter.lock().map(|a| a.clone()).unwrap_or_default();
        if !adapter.is_empty() {
            single(out, &c::KERNEL_GPU_ADAPTER_INFO, &[&adapter], 1.0);
        }
        single(
            out,
            &c::KERNEL_GPU_WINDOWS,
            &[],
            gpu.windows_offloaded.get() as f64,
        );
        single(
            out,
            &c::KERNEL_GPU_FALLBACKS,
            &[],
            gpu.fallbacks.get() as f64,
        );
        let cpu_seconds_per_sample = gpu.cpu_seconds_per_sample.get();
        if cpu_seconds_per_sample > 0.0 {
            let model = [
                (&c::KERNEL_CPU_SECONDS_PER_SAMPLE, cpu_seconds_per_sample),
                (
                    &c::KERNEL_GPU_SECONDS_PER_SAMPLE,
                    gpu.gpu_seconds_per_sample.get(),
                ),
                (
                    &c::KERNEL_GPU_LATENCY_SECONDS,
                    gpu.gpu_latency_seconds.get(),
                ),
                (
                    &c::KERNEL_GPU_UPLOAD_BYTES_PER_SECOND,
                    gpu.upload_bytes_per_second.get(),
                ),
            ];
            for (family, value) in model {
                single(out, family, &[], value);
            }
        }
    }

    /// The per-transport families, for the transports with a listener bound.
    fn collect_ingest(&self, out: &mut impl Collector) {
        let enabled: Vec<(Transport, &IngestCounters)> = Transport::ALL
            .into_iter()
            .map(|t| (t, self.ingest(t)))
            .filter(|(_, c)| c.enabled.load(Ordering::Relaxed))
            .collect();
        let mut per_transport =
            |family: &'static Family,
             applies: fn(Transport) -> bool,
             value: fn(&IngestCounters) -> f64| {
                let mut applicable = enabled.iter().filter(|(t, _)| applies(*t)).peekable();
                if applicable.peek().is_none() {
                    return;
                }
                out.family(family);
                for (transport, counters) in applicable {
                    out.sample(&[transport.as_str()], value(counters));
                }
            };
        let any = |_: Transport| true;
        per_transport(&c::BYTES_RECEIVED, any, |c| c.bytes.get() as f64);
        per_transport(&c::FRAMES_RECEIVED, Transport::has_frames, |c| {
            c.frames.get() as f64
        });
        per_transport(&c::DATAGRAMS_TRUNCATED, Transport::is_datagram, |c| {
            c.truncated_datagrams.get() as f64
        });
        per_transport(&c::LINES_RECEIVED, any, |c| c.lines.get() as f64);
        per_transport(&c::EVENTS_RECEIVED, Transport::carries_text_lines, |c| {
            c.events.get() as f64
        });
        per_transport(
            &c::SERVICE_CHECKS_RECEIVED,
            Transport::carries_text_lines,
            |c| c.service_checks.get() as f64,
        );
        per_transport(&c::CONNECTIONS_ACCEPTED, Transport::is_connected, |c| {
            c.connections_accepted.get() as f64
        });
        per_transport(&c::CONNECTIONS_OPEN, Transport::is_connected, |c| {
            c.connections_open.load(Ordering::Relaxed) as f64
        });
        if enabled.is_empty() {
            return;
        }
        out.family(&c::LINES_REJECTED);
        for (transport, counters) in &enabled {
            for reason in RejectReason::ALL {
                out.sample(
                    &[transport.as_str(), reason.as_str()],
                    counters.rejected(reason).get() as f64,
                );
            }
        }
    }

    fn per_shard(
        &self,
        out: &mut impl Collector,
        family: &'static Family,
        value: impl Fn(&ShardCounters) -> f64,
    ) {
        out.family(family);
        let mut index = itoa::Buffer::new();
        for (i, shard) in self.shards.iter().enumerate() {
            out.sample(&[index.format(i)], value(shard));
        }
    }
}

/// A family with one sample.
fn single(out: &mut impl Collector, family: &'static Family, label_values: &[&str], value: f64) {
    out.family(family);
    out.sample(label_values, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{CATALOGUE, Kind};

    /// Checks each family against the catalogue and each sample against its family.
    #[derive(Default)]
    struct Checked {
        families: Vec<&'static str>,
        current: Option<&'static Family>,
    }

    impl Collector for Checked {
        fn family(&mut self, family: &'static Family) {
            assert!(
                CATALOGUE.iter().any(|f| std::ptr::eq(*f, family)),
                "{} is not in the catalogue",
                family.name
            );
            assert!(
                !self.families.contains(&family.name),
                "{} twice",
                family.name
            );
            self.families.push(family.name);
            self.current = Some(family);
        }

        fn sample(&mut self, label_values: &[&str], _value: f64) {
            let family = self.current.expect("a sample before any family");
            assert_eq!(label_values.len(), family.labels.len(), "{}", family.name);
            assert_ne!(family.kind, Kind::Histogram, "{}", family.name);
        }

        fn histogram(&mut self, label_values: &[&str], histogram: &HistogramSnapshot) {
            let family = self.current.expect("a histogram before any family");
            assert_eq!(label_values.len(), family.labels.len(), "{}", family.name);
            assert_eq!(family.kind, Kind::Histogram, "{}", family.name);
            assert_eq!(histogram.cumulative.len(), histogram.bounds.len());
        }
    }

    #[test]
    fn every_family_collected_is_catalogued_with_its_labels() {
        let telemetry = Telemetry::new(2);
        for transport in Transport::ALL {
            telemetry.enable(transport);
        }
        telemetry.gpu.cpu_seconds_per_sample.set(1e-9);
        if let Ok(mut adapter) = telemetry.gpu.adapter.lock() {
            adapter.push_str("test adapter");
        }
        let _ = telemetry
            .kernel_backend
            .set(crate::kernels::Backend::Scalar);
        telemetry.sinks.register("test".to_owned());
        let mut checked = Checked::default();
        telemetry.collect(&ScrapeFacts::default(), &mut checked);
        // Everything applies here but the kernel's drop counter, which needs
        // /proc/net/udp; the order is the catalogue's.
        let expected: Vec<&str> = CATALOGUE
            .iter()
            .map(|f| f.name)
            .filter(|n| checked.families.contains(n))
            .collect();
        assert_eq!(checked.families, expected);
        assert!(checked.families.len() >= CATALOGUE.len() - 1);
    }
}
