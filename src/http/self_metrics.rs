//! tallyd's own `tallyd_*` metrics, rendered after the user's series on `/metrics`.
//!
//! Each metric is read from the shared [`Telemetry`] counters at scrape time; the
//! names and labels here are operator interface (README, "Self-metrics") and stay
//! stable.

use super::exposition::Writer;
use crate::codec::RejectReason;
use crate::telemetry::{DropReason, Telemetry, udp_kernel_drops};

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

    let udp = &telemetry.udp;
    counter(
        w,
        "tallyd_udp_datagrams_received",
        "UDP datagrams received.",
        udp.datagrams.get(),
    );
    counter(
        w,
        "tallyd_udp_bytes_received",
        "UDP payload bytes received.",
        udp.bytes.get(),
    );
    counter(
        w,
        "tallyd_udp_datagrams_truncated",
        "UDP datagrams longer than limits.max_datagram_bytes; their cut last line is dropped.",
        udp.truncated_datagrams.get(),
    );
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
    counter(
        w,
        "tallyd_lines_received",
        "Lines received: metrics, events, service checks and rejected lines.",
        udp.lines.get(),
    );
    counter(
        w,
        "tallyd_events_received",
        "DogStatsD events received (counted, not aggregated).",
        udp.events.get(),
    );
    counter(
        w,
        "tallyd_service_checks_received",
        "DogStatsD service checks received (counted, not aggregated).",
        udp.service_checks.get(),
    );

    w.family(
        "tallyd_lines_rejected",
        "counter",
        "Lines refused by the decoder, by reason.",
    );
    for reason in RejectReason::ALL {
        let n = telemetry.rejected(reason).get();
        w.sample(
            "tallyd_lines_rejected",
            "_total",
            "",
            Some(("reason", reason.as_str())),
            n as f64,
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
