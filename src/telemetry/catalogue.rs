//! The catalogue of tallyd's own metrics: one typed descriptor per `tallyd_*`
//! family, the single place their names, help, types and labels are written.
//!
//! Ingest, shards and the GPU offload count into the storage of [`Telemetry`]
//! where each event happens; [`Telemetry::collect`] reads that storage family
//! by family, naming each by its descriptor here, and `http` renders what it is
//! handed without knowing any name. The README's self-metrics table is checked
//! against [`CATALOGUE`] by a test, so the docs cannot drift.
//!
//! Adding a metric: a descriptor here (and in [`CATALOGUE`]), its storage in
//! `Telemetry`, one `collect` step, and a README row.
//!
//! [`Telemetry`]: super::Telemetry
//! [`Telemetry::collect`]: super::Telemetry::collect

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic total; its sample is named `<family>_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket` with `le`), `_sum` and `_count`.
    Histogram,
}

/// One `tallyd_*` family: what an operator finds on `/metrics`.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// The family name; a counter's sample adds `_total`.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Label names, in the order each sample gives their values.
    pub labels: &'static [&'static str],
}

impl Family {
    /// The name its samples carry: with `_total` for a counter.
    pub fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge | Kind::Histogram => self.name.to_owned(),
        }
    }
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        labels,
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: Kind::Gauge,
        labels,
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Histogram,
        labels,
    }
}

const TRANSPORT: &[&str] = &["transport"];
const SHARD: &[&str] = &["shard"];

/// Version of the running tallyd.
pub static BUILD_INFO: Family = gauge(
    "tallyd_build_info",
    &["version"],
    "Version of the running tallyd.",
);
/// The CPU kernel backend.
pub static KERNEL_BACKEND_INFO: Family = gauge(
    "tallyd_kernel_backend_info",
    &["backend"],
    "The aggregation kernel backend completing windows (aggregation.kernel).",
);
/// Whether the last config load succeeded.
pub static CONFIG_LAST_RELOAD_SUCCESS: Family = gauge(
    "tallyd_config_last_reload_success",
    &[],
    "Whether the last config load (startup or reload) succeeded.",
);
/// When the config last loaded.
pub static CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP: Family = gauge(
    "tallyd_config_last_reload_success_timestamp_seconds",
    &[],
    "When the config was last loaded successfully (startup or reload), unix seconds.",
);
/// The GPU offload's state.
pub static KERNEL_GPU_INFO: Family = gauge(
    "tallyd_kernel_gpu_info",
    &["state"],
    "State of the GPU offload (off, starting, ready, unavailable, disabled).",
);
/// The GPU adapter in use.
pub static KERNEL_GPU_ADAPTER_INFO: Family = gauge(
    "tallyd_kernel_gpu_adapter_info",
    &["adapter"],
    "The GPU adapter windows are offloaded to.",
);
/// Windows computed on the GPU.
pub static KERNEL_GPU_WINDOWS: Family = counter(
    "tallyd_kernel_gpu_windows",
    &[],
    "Windows computed on the GPU.",
);
/// Windows the GPU failed.
pub static KERNEL_GPU_FALLBACKS: Family = counter(
    "tallyd_kernel_gpu_fallbacks",
    &[],
    "Windows the GPU failed (device lost, timeout, mapping error), re-run on the CPU.",
);
/// Cost model: CPU seconds per sample.
pub static KERNEL_CPU_SECONDS_PER_SAMPLE: Family = gauge(
    "tallyd_kernel_cpu_seconds_per_sample",
    &[],
    "Cost model: predicted CPU seconds per window sample.",
);
/// Cost model: GPU seconds per sample.
pub static KERNEL_GPU_SECONDS_PER_SAMPLE: Family = gauge(
    "tallyd_kernel_gpu_seconds_per_sample",
    &[],
    "Cost model: predicted GPU seconds per window sample (kernels and readback).",
);
/// Cost model: GPU latency per window.
pub static KERNEL_GPU_LATENCY_SECONDS: Family = gauge(
    "tallyd_kernel_gpu_latency_seconds",
    &[],
    "Cost model: GPU seconds per window whatever its size.",
);
/// Cost model: upload bandwidth.
pub static KERNEL_GPU_UPLOAD_BYTES_PER_SECOND: Family = gauge(
    "tallyd_kernel_gpu_upload_bytes_per_second",
    &[],
    "Cost model: host to GPU upload bandwidth.",
);
/// Payload bytes received.
pub static BYTES_RECEIVED: Family = counter(
    "tallyd_bytes_received",
    TRANSPORT,
    "Payload bytes received, per transport.",
);
/// Datagrams or gRPC messages received.
pub static FRAMES_RECEIVED: Family = counter(
    "tallyd_frames_received",
    TRANSPORT,
    "Datagrams (udp, unix_datagram) or gRPC messages (grpc, otlp) received.",
);
/// Datagrams over the size limit.
pub static DATAGRAMS_TRUNCATED: Family = counter(
    "tallyd_datagrams_truncated",
    TRANSPORT,
    "Datagrams longer than limits.max_datagram_bytes; their cut last line is dropped.",
);
/// Lines seen.
pub static LINES_RECEIVED: Family = counter(
    "tallyd_lines_received",
    TRANSPORT,
    "Lines received (grpc: values, otlp: data points): accepted, events, service checks and rejected.",
);
/// DogStatsD events.
pub static EVENTS_RECEIVED: Family = counter(
    "tallyd_events_received",
    TRANSPORT,
    "DogStatsD events received (counted, not aggregated).",
);
/// DogStatsD service checks.
pub static SERVICE_CHECKS_RECEIVED: Family = counter(
    "tallyd_service_checks_received",
    TRANSPORT,
    "DogStatsD service checks received (counted, not aggregated).",
);
/// Connections accepted.
pub static CONNECTIONS_ACCEPTED: Family = counter(
    "tallyd_connections_accepted",
    TRANSPORT,
    "Connections accepted.",
);
/// Connections open now.
pub static CONNECTIONS_OPEN: Family = gauge(
    "tallyd_connections_open",
    TRANSPORT,
    "Connections open now.",
);
/// Lines refused, by reason.
pub static LINES_REJECTED: Family = counter(
    "tallyd_lines_rejected",
    &["transport", "reason"],
    "Lines (or gRPC values, OTLP data points) refused, by transport and reason.",
);
/// Datagrams the kernel dropped.
pub static UDP_KERNEL_DROPS: Family = counter(
    "tallyd_udp_kernel_drops",
    &[],
    "Datagrams the kernel dropped on tallyd's UDP sockets (receive buffer full).",
);
/// Valid lines not aggregated.
pub static LINES_DROPPED: Family = counter(
    "tallyd_lines_dropped",
    &["reason"],
    "Valid lines not aggregated, by reason.",
);
/// Series held.
pub static SERIES: Family = gauge("tallyd_series", SHARD, "Series held, per shard.");
/// Series idled out.
pub static SERIES_EXPIRED: Family = counter(
    "tallyd_series_expired",
    SHARD,
    "Series removed after limits.series_idle_ttl without data.",
);
/// Windows closed.
pub static WINDOWS_FLUSHED: Family = counter(
    "tallyd_windows_flushed",
    SHARD,
    "Windows closed, per shard.",
);
/// Windows a shard skipped.
pub static WINDOWS_SKIPPED: Family = counter(
    "tallyd_windows_skipped",
    SHARD,
    "Windows a shard never closed because it woke too far past them (a clock jump, a long stall); its data went into the window it opened instead.",
);
/// Time spent closing windows.
pub static WINDOW_FLUSH_SECONDS: Family = counter(
    "tallyd_window_flush_seconds",
    SHARD,
    "Seconds spent closing windows, per shard.",
);
/// Time the flush stood aside for its shard.
pub static WINDOW_FLUSH_PAUSED_SECONDS: Family = counter(
    "tallyd_window_flush_paused_seconds",
    SHARD,
    "Seconds a shard's flush thread waited while the shard had batches queued, not counted in tallyd_window_flush_seconds_total.",
);
/// Time the last close took.
pub static WINDOW_LAST_FLUSH_SECONDS: Family = gauge(
    "tallyd_window_last_flush_seconds",
    SHARD,
    "Seconds the last window close took, per shard.",
);
/// Series in the last window.
pub static WINDOW_SERIES: Family = gauge(
    "tallyd_window_series",
    &[],
    "Series in the last closed window.",
);
/// End of the last window.
pub static WINDOW_LAST_END_TIMESTAMP: Family = gauge(
    "tallyd_window_last_end_timestamp_seconds",
    &[],
    "End of the last closed window, unix seconds.",
);
/// Series left out of a scrape.
pub static EXPOSITION_CONFLICTS: Family = gauge(
    "tallyd_exposition_conflicts",
    &[],
    "Series left out of this scrape: same sanitised name as another series with another type or the same labels.",
);

const SINK: &[&str] = &["sink"];
const SINK_REASON: &[&str] = &["sink", "reason"];

/// Float samples a sink delivered.
pub static SINK_SAMPLES_SENT: Family = counter(
    "tallyd_sink_samples_sent",
    SINK,
    "Float samples the sink's receiver accepted.",
);
/// Native histograms a sink delivered.
pub static SINK_HISTOGRAMS_SENT: Family = counter(
    "tallyd_sink_histograms_sent",
    SINK,
    "Native histogram samples the sink's receiver accepted.",
);
/// Samples a sink gave up.
pub static SINK_SAMPLES_DROPPED: Family = counter(
    "tallyd_sink_samples_dropped",
    SINK_REASON,
    "Samples (and histograms) the sink gave up: queue_full (oldest dropped past queue_config.capacity), rejected (refused by the receiver for good), shutdown (still queued at the shutdown deadline), name_conflict (a series sharing its Graphite path with another).",
);
/// Requests that failed.
pub static SINK_REQUESTS_FAILED: Family = counter(
    "tallyd_sink_requests_failed",
    SINK_REASON,
    "Requests that failed: connection, timeout, server_error (5xx), too_many_requests (429), client_error (other 4xx).",
);
/// Requests sent again.
pub static SINK_RETRIES: Family = counter(
    "tallyd_sink_retries",
    SINK,
    "Requests sent again after a failure worth retrying.",
);
/// Requests completed.
pub static SINK_REQUESTS: Family = counter(
    "tallyd_sink_requests",
    SINK,
    "Requests completed, whatever the answer.",
);
/// Time in requests.
pub static SINK_REQUEST_SECONDS: Family = counter(
    "tallyd_sink_request_duration_seconds",
    SINK,
    "Time spent in requests, seconds; divided by tallyd_sink_requests_total, the mean request duration.",
);
/// Queue length.
pub static SINK_QUEUE_SAMPLES: Family = gauge(
    "tallyd_sink_queue_samples",
    SINK,
    "Samples waiting to be sent, those in flight included.",
);
/// Queue size.
pub static SINK_QUEUE_BYTES: Family = gauge(
    "tallyd_sink_queue_bytes",
    SINK,
    "Memory the queued samples take, roughly, in bytes.",
);
/// Last success.
pub static SINK_LAST_SEND_TIMESTAMP: Family = gauge(
    "tallyd_sink_last_send_timestamp_seconds",
    SINK,
    "When a request last succeeded, unix seconds (0 before the first).",
);

/// TLS handshakes that failed.
pub static TLS_HANDSHAKES_FAILED: Family = counter(
    "tallyd_tls_handshakes_failed",
    &["listener"],
    "TLS handshakes that failed or timed out, by listener (http, grpc): no or a wrong client certificate, a client that does not speak TLS, or one too slow to finish.",
);
/// HTTP requests refused.
pub static HTTP_REQUESTS_REFUSED: Family = counter(
    "tallyd_http_requests_refused",
    &["reason"],
    "HTTP requests answered without being served: unauthorized (401, no or wrong basic auth credentials), rate_limited (429, over the web config's rate_limit), lifecycle_disabled (403, POST /-/reload without web.enable_lifecycle), too_large (431, a request head over 64 KiB).",
);
/// Connections closed at accept by the connection limit.
pub static CONNECTIONS_REFUSED: Family = counter(
    "tallyd_connections_refused",
    &["listener"],
    "Connections closed as soon as they were accepted because limits.max_connections were open on that listener (tcp, unix_stream, grpc, http).",
);
/// Connections closed for sending nothing.
pub static CONNECTIONS_IDLE_CLOSED: Family = counter(
    "tallyd_connections_idle_closed",
    &["listener"],
    "Connections closed after limits.connection_idle_timeout without a byte from the client, by listener (tcp, unix_stream, grpc).",
);
/// gRPC messages over the size limit.
pub static GRPC_MESSAGES_TOO_LARGE: Family = counter(
    "tallyd_grpc_messages_too_large",
    TRANSPORT,
    "gRPC messages refused for being larger than limits.max_grpc_message_bytes after decompression, by transport (grpc: tallyd's API, otlp).",
);

/// How long datagrams waited in their socket before a receiver read them.
pub static SOCKET_WAIT: Family = histogram(
    "tallyd_socket_wait_seconds",
    TRANSPORT,
    "For each read of a datagram socket (udp, unix_datagram), how long its oldest datagram had waited in the socket since the kernel received it: the time the receiving thread left the socket unread while data was there. Long waits overflow the receive buffer.",
);
/// From receipt to the shard applying a line.
pub static INGEST_DELAY: Family = histogram(
    "tallyd_ingest_delay_seconds",
    &[],
    "For each batch a shard applies, how long since its oldest line was received: by the kernel for datagrams, read by tallyd for TCP and Unix streams, the message's arrival for gRPC and OTLP.",
);
/// From a window's end to its rollups on /metrics.
pub static WINDOW_PUBLISH_DELAY: Family = histogram(
    "tallyd_window_publish_delay_seconds",
    &[],
    "For each window, how long from its end until every shard had published it, when it shows on /metrics and sinks are given it.",
);

/// Every family, in the order `/metrics` shows them.
pub static CATALOGUE: &[&Family] = &[
    &BUILD_INFO,
    &KERNEL_BACKEND_INFO,
    &CONFIG_LAST_RELOAD_SUCCESS,
    &CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    &KERNEL_GPU_INFO,
    &KERNEL_GPU_ADAPTER_INFO,
    &KERNEL_GPU_WINDOWS,
    &KERNEL_GPU_FALLBACKS,
    &KERNEL_CPU_SECONDS_PER_SAMPLE,
    &KERNEL_GPU_SECONDS_PER_SAMPLE,
    &KERNEL_GPU_LATENCY_SECONDS,
    &KERNEL_GPU_UPLOAD_BYTES_PER_SECOND,
    &BYTES_RECEIVED,
    &FRAMES_RECEIVED,
    &DATAGRAMS_TRUNCATED,
    &LINES_RECEIVED,
    &EVENTS_RECEIVED,
    &SERVICE_CHECKS_RECEIVED,
    &CONNECTIONS_ACCEPTED,
    &CONNECTIONS_OPEN,
    &LINES_REJECTED,
    &UDP_KERNEL_DROPS,
    &LINES_DROPPED,
    &SERIES,
    &SERIES_EXPIRED,
    &WINDOWS_FLUSHED,
    &WINDOWS_SKIPPED,
    &WINDOW_FLUSH_SECONDS,
    &WINDOW_FLUSH_PAUSED_SECONDS,
    &WINDOW_LAST_FLUSH_SECONDS,
    &WINDOW_SERIES,
    &WINDOW_LAST_END_TIMESTAMP,
    &SOCKET_WAIT,
    &INGEST_DELAY,
    &WINDOW_PUBLISH_DELAY,
    &EXPOSITION_CONFLICTS,
    &TLS_HANDSHAKES_FAILED,
    &HTTP_REQUESTS_REFUSED,
    &CONNECTIONS_REFUSED,
    &CONNECTIONS_IDLE_CLOSED,
    &GRPC_MESSAGES_TOO_LARGE,
    &SINK_SAMPLES_SENT,
    &SINK_HISTOGRAMS_SENT,
    &SINK_RETRIES,
    &SINK_REQUESTS,
    &SINK_REQUEST_SECONDS,
    &SINK_QUEUE_SAMPLES,
    &SINK_QUEUE_BYTES,
    &SINK_LAST_SEND_TIMESTAMP,
    &SINK_SAMPLES_DROPPED,
    &SINK_REQUESTS_FAILED,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_free_of_the_counter_suffix() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "a family is listed twice");
        for family in CATALOGUE {
            assert!(family.name.starts_with("tallyd_"), "{}", family.name);
            assert!(!family.name.ends_with("_total"), "{}", family.name);
            assert!(!family.help.is_empty(), "{} has no help", family.name);
        }
        assert_eq!(LINES_DROPPED.sample_name(), "tallyd_lines_dropped_total");
        assert_eq!(SERIES.sample_name(), "tallyd_series");
    }
}
