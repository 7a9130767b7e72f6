//! tallyd's own `tallyd_*` metrics, rendered after the user's series on `/metrics`.
//!
//! Each metric is read from the shared [`Telemetry`] counters at scrape time; the
//! names and labels here are operator interface (README, "Self-metrics") and stay
//! stable.

use super::exposition::Writer;
use crate::codec::RejectReason;
use crate::telemetry::{DropReason, IngestCounters, Telemetry, Transport, udp_kernel_drops};

/// What the scrape itself found, to report beside the counters.
pub struct ScrapeFacts {
    /// Series skipped as exposition conflicts in this scrape.
    pub conflicts: u64,
    /// Series in the last closed window.
    pub window_series: usize,
    /// End of the last closed window, in unix seconds (0 before the first).
    pub last_window_end_seconds: f64,
}

/// Writes every `tallyd_*` family.
pub fn write_self_metrics(w: &mut Writer<'_>, telemetry: &Telemetry, facts: &ScrapeFacts) {
    w.family(
        "tallyd_build_info",
        "gauge",
        "Version of the running tallyd.",
    );
    w.sample(
        "tallyd_build_info",
        "",
        "",
        Some(("version", env!("CARGO_PKG_VERSION"))),
        1.0,
    );

    if let Some(backend) = telemetry.kernel_backend.get() {
        w.family(
            "tallyd_kernel_backend_info",
            "gauge",
            "The aggregation kernel backend completing windows (aggregation.kernel).",
        );
        w.sample(
            "tallyd_kernel_backend_info",
            "",
            "",
            Some(("backend", backend.as_str())),
            1.0,
        );
    }

    gauge(
        w,
        "tallyd_config_last_reload_success",
        "Whether the last config load (startup or reload) succeeded.",
        if telemetry
            .config_last_reload_success
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            1.0
        } else {
            0.0
        },
    );
    gauge(
        w,
        "tallyd_config_last_reload_success_timestamp_seconds",
        "When the config was last loaded successfully (startup or reload), unix seconds.",
        telemetry.config_last_reload_success_seconds.get(),
    );
    write_gpu(w, telemetry);
    write_ingest(w, telemetry);
    let inodes = telemetry
        .udp_socket_inodes
        .lock()
        .map(|i| i.clone())
        .unwrap_or_default();
    if let Some(drops) = udp_kernel_drops(&inodes) {
        counter(
            w,
            "tallyd_udp_kernel_drops",
            "Datagrams the kernel dropped on tallyd's UDP sockets (receive buffer full).",
            drops,
        );
    }
    w.family(
        "tallyd_lines_dropped",
        "counter",
        "Valid lines not aggregated, by reason.",
    );
    for reason in DropReason::ALL {
        let n = telemetry.dropped(reason).get();
        w.sample(
            "tallyd_lines_dropped",
            "_total",
            "",
            Some(("reason", reason.as_str())),
            n as f64,
        );
    }

    per_shard(
        w,
        telemetry,
        "tallyd_series",
        "gauge",
        "Series held, per shard.",
        |s| s.series.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    per_shard(
        w,
        telemetry,
        "tallyd_series_expired",
        "counter",
        "Series removed after limits.series_idle_ttl without data.",
        |s| s.series_expired.get() as f64,
    );
    per_shard(
        w,
        telemetry,
        "tallyd_windows_flushed",
        "counter",
        "Windows closed, per shard.",
        |s| s.windows_flushed.get() as f64,
    );
    per_shard(
        w,
        telemetry,
        "tallyd_window_flush_seconds",
        "counter",
        "Seconds spent closing windows, per shard.",
        |s| s.flush_seconds_total.get(),
    );
    per_shard(
        w,
        telemetry,
        "tallyd_window_last_flush_seconds",
        "gauge",
        "Seconds the last window close took, per shard.",
        |s| s.last_flush_seconds.get(),
    );

    gauge(
        w,
        "tallyd_window_series",
        "Series in the last closed window.",
        facts.window_series as f64,
    );
    gauge(
        w,
        "tallyd_window_last_end_timestamp_seconds",
        "End of the last closed window, unix seconds.",
        facts.last_window_end_seconds,
    );
    gauge(
        w,
        "tallyd_exposition_conflicts",
        "Series left out of this scrape: same sanitised name as another series with another type or the same labels.",
        facts.conflicts as f64,
    );
}

/// The per-transport families, for the transports with a listener bound.
fn write_ingest(w: &mut Writer<'_>, telemetry: &Telemetry) {
    let enabled: Vec<(Transport, &IngestCounters)> = Transport::ALL
        .into_iter()
        .map(|t| (t, telemetry.ingest(t)))
        .filter(|(_, c)| c.enabled.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let per_transport = |w: &mut Writer<'_>,
                         name: &str,
                         kind: &str,
                         help: &str,
                         applies: fn(Transport) -> bool,
                         value: fn(&IngestCounters) -> f64| {
        if !enabled.iter().any(|(t, _)| applies(*t)) {
            return;
        }
        w.family(name, kind, help);
        let suffix = if kind == "counter" { "_total" } else { "" };
        for (transport, counters) in enabled.iter().filter(|(t, _)| applies(*t)) {
            w.sample(
                name,
                suffix,
                "",
                Some(("transport", transport.as_str())),
                value(counters),
            );
        }
    };
    let any = |_: Transport| true;
    per_transport(
        w,
        "tallyd_bytes_received",
        "counter",
        "Payload bytes received, per transport.",
        any,
        |c| c.bytes.get() as f64,
    );
    per_transport(
        w,
        "tallyd_frames_received",
        "counter",
        "Datagrams (udp, unix_datagram) or gRPC messages (grpc, otlp) received.",
        |t| t.is_datagram() || !carries_text_lines(t),
        |c| c.frames.get() as f64,
    );
    per_transport(
        w,
        "tallyd_datagrams_truncated",
        "counter",
        "Datagrams longer than limits.max_datagram_bytes; their cut last line is dropped.",
        Transport::is_datagram,
        |c| c.truncated_datagrams.get() as f64,
    );
    per_transport(
        w,
        "tallyd_lines_received",
        "counter",
        "Lines received (grpc: values, otlp: data points): accepted, events, service checks and rejected.",
        any,
        |c| c.lines.get() as f64,
    );
    per_transport(
        w,
        "tallyd_events_received",
        "counter",
        "DogStatsD events received (counted, not aggregated).",
        carries_text_lines,
        |c| c.events.get() as f64,
    );
    per_transport(
        w,
        "tallyd_service_checks_received",
        "counter",
        "DogStatsD service checks received (counted, not aggregated).",
        carries_text_lines,
        |c| c.service_checks.get() as f64,
    );
    per_transport(
        w,
        "tallyd_connections_accepted",
        "counter",
        "Connections accepted.",
        Transport::is_connected,
        |c| c.connections_accepted.get() as f64,
    );
    per_transport(
        w,
        "tallyd_connections_open",
        "gauge",
        "Connections open now.",
        Transport::is_connected,
        |c| {
            c.connections_open
                .load(std::sync::atomic::Ordering::Relaxed) as f64
        },
    );
    if enabled.is_empty() {
        return;
    }
    w.family(
        "tallyd_lines_rejected",
        "counter",
        "Lines (or gRPC values, OTLP data points) refused, by transport and reason.",
    );
    let mut labels = String::new();
    for (transport, counters) in &enabled {
        labels.clear();
        labels.push_str("transport=\"");
        labels.push_str(transport.as_str());
        labels.push('"');
        for reason in RejectReason::ALL {
            w.sample(
                "tallyd_lines_rejected",
                "_total",
                &labels,
                Some(("reason", reason.as_str())),
                counters.rejected(reason).get() as f64,
            );
        }
    }
}

/// Whether the transport carries StatsD text (and so events and service checks).
fn carries_text_lines(transport: Transport) -> bool {
    !matches!(transport, Transport::Grpc | Transport::Otlp)
}

/// The GPU offload: its state, the adapter, windows offloaded and fallen
/// back, and the cost model's figures once probed.
fn write_gpu(w: &mut Writer<'_>, telemetry: &Telemetry) {
    let gpu = &telemetry.gpu;
    w.family(
        "tallyd_kernel_gpu_info",
        "gauge",
        "State of the GPU offload (off, starting, ready, unavailable, disabled).",
    );
    w.sample(
        "tallyd_kernel_gpu_info",
        "",
        "",
        Some(("state", gpu.state().as_str())),
        1.0,
    );
    let adapter = gpu.adapter.lock().map(|a| a.clone()).unwrap_or_default();
    if !adapter.is_empty() {
        w.family(
            "tallyd_kernel_gpu_adapter_info",
            "gauge",
            "The GPU adapter windows are offloaded to.",
        );
        w.sample(
            "tallyd_kernel_gpu_adapter_info",
            "",
            "",
            Some(("adapter", &adapter)),
            1.0,
        );
    }
    counter(
        w,
        "tallyd_kernel_gpu_windows",
        "Windows computed on the GPU.",
        gpu.windows_offloaded.get(),
    );
    counter(
        w,
        "tallyd_kernel_gpu_fallbacks",
        "Windows the GPU failed (device lost, timeout, mapping error), re-run on the CPU.",
        gpu.fallbacks.get(),
    );
    let model = [
        (
            "tallyd_kernel_cpu_seconds_per_sample",
            "Cost model: predicted CPU seconds per window sample.",
            gpu.cpu_seconds_per_sample.get(),
        ),
        (
            "tallyd_kernel_gpu_seconds_per_sample",
            "Cost model: predicted GPU seconds per window sample (kernels and readback).",
            gpu.gpu_seconds_per_sample.get(),
        ),
        (
            "tallyd_kernel_gpu_latency_seconds",
            "Cost model: GPU seconds per window whatever its size.",
            gpu.gpu_latency_seconds.get(),
        ),
        (
            "tallyd_kernel_gpu_upload_bytes_per_second",
            "Cost model: host to GPU upload bandwidth.",
            gpu.upload_bytes_per_second.get(),
        ),
    ];
    if model[0].2 > 0.0 {
        for (name, help, value) in model {
            gauge(w, name, help, value);
        }
    }
}

fn counter(w: &mut Writer<'_>, base: &str, help: &str, value: u64) {
    w.family(base, "counter", help);
    w.sample(base, "_total", "", None, value as f64);
}

fn gauge(w: &mut Writer<'_>, name: &str, help: &str, value: f64) {
    w.family(name, "gauge", help);
    w.sample(name, "", "", None, value);
}

fn per_shard(
    w: &mut Writer<'_>,
    telemetry: &Telemetry,
    base: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&crate::telemetry::ShardCounters) -> f64,
) {
    w.family(base, kind, help);
    let suffix = if kind == "counter" { "_total" } else { "" };
    let mut index = itoa::Buffer::new();
    for (i, shard) in telemetry.shards.iter().enumerate() {
        w.sample(
            base,
            suffix,
            "",
            Some(("shard", index.format(i))),
            value(shard),
        );
    }
}
