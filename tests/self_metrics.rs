//! tallyd's own metrics against their catalogue: every `tallyd_*` family a live
//! daemon serves is catalogued with the same type, and the README's
//! self-metrics table lists exactly the catalogue's families.

mod support;

use std::collections::BTreeSet;

use support::Daemon;
use tallyd::telemetry::{CATALOGUE, Kind};

/// The `# TYPE` lines of the `tallyd_*` families in a 0.0.4 exposition.
fn served_families(exposition: &str) -> Vec<(String, String)> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(name, _)| name.starts_with("tallyd_"))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

#[test]
fn every_family_served_is_in_the_catalogue_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!(
        "  tcp: [\"127.0.0.1:0\"]\n  grpc: \"127.0.0.1:0\"\n  unix_datagram: {}\n  unix_stream: {}",
        dir.path().join("d.sock").display(),
        dir.path().join("s.sock").display()
    );
    let daemon = Daemon::start_listening(&listen, "");
    daemon.send(&["self.check:1|c"]);
    daemon.wait_for_lines(1);
    let served = served_families(&daemon.metrics());
    // Every transport is on, so every per-transport family is served.
    assert!(served.len() >= 25, "too few families served: {served:?}");
    for (name, kind) in &served {
        let family = CATALOGUE
            .iter()
            .find(|f| f.sample_name() == *name)
            .unwrap_or_else(|| panic!("{name} is served but not in the catalogue"));
        let expected = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        assert_eq!(kind, expected, "{name}");
    }
    for transport in ["udp", "tcp", "unix_datagram", "unix_stream", "grpc", "otlp"] {
        assert!(
            daemon
                .sample(&format!(
                    "tallyd_lines_received_total{{transport=\"{transport}\"}}"
                ))
                .is_some(),
            "{transport}"
        );
    }
}

#[test]
fn the_readme_table_lists_exactly_the_catalogued_families() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("### Self-metrics")
        .nth(1)
        .expect("README has a Self-metrics section");
    let mut documented = BTreeSet::new();
    let mut labels = Vec::new();
    for row in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let first_cell = row.split('|').nth(1).unwrap_or("");
        for name in first_cell.split('`').skip(1).step_by(2) {
            let (name, label_list) = name.split_once('{').unwrap_or((name, "}"));
            if name.starts_with("tallyd_") {
                documented.insert(name.to_owned());
                let label_list = label_list.trim_end_matches('}');
                labels.push((name.to_owned(), label_list.to_owned()));
            }
        }
    }
    let catalogued: BTreeSet<String> = CATALOGUE.iter().map(|f| f.sample_name()).collect();
    let missing: Vec<_> = catalogued.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&catalogued).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README self-metrics table: missing {missing:?}, not in the catalogue {stale:?}"
    );
    for (name, documented_labels) in labels {
        let family = CATALOGUE.iter().find(|f| f.sample_name() == name).unwrap();
        assert_eq!(
            documented_labels,
            family.labels.join(","),
            "labels of {name} in the README"
        );
    }
}

#[test]
fn latency_histograms_time_udp_reads_batches_and_window_closes() {
    let daemon = Daemon::start("window: { interval: 200ms, retain: 10 }");
    let count = |sample: &str| daemon.sample(sample).unwrap_or(0.0);
    daemon.send(&["latency.a:1|c", "latency.b:2|ms"]);
    daemon.wait_for("the lines to be applied and their window published", || {
        count("tallyd_socket_wait_seconds_count{transport=\"udp\"}") >= 1.0
            && count("tallyd_ingest_delay_seconds_count") >= 1.0
            && count("tallyd_window_publish_delay_seconds_count") >= 1.0
    });
    let metrics = daemon.metrics();
    for family in [
        "tallyd_socket_wait_seconds",
        "tallyd_ingest_delay_seconds",
        "tallyd_window_publish_delay_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} histogram\n")),
            "{family}"
        );
    }
    // Loopback and an idle machine: waits are far below a second, and the
    // buckets are cumulative up to +Inf.
    let sample = |s: &str| support::sample_in(&metrics, s).unwrap();
    let reads = sample("tallyd_socket_wait_seconds_count{transport=\"udp\"}");
    assert_eq!(
        sample("tallyd_socket_wait_seconds_bucket{transport=\"udp\",le=\"+Inf\"}"),
        reads
    );
    assert_eq!(
        sample("tallyd_socket_wait_seconds_bucket{transport=\"udp\",le=\"1\"}"),
        reads
    );
    let published = sample("tallyd_window_publish_delay_seconds_count");
    let sum = sample("tallyd_window_publish_delay_seconds_sum");
    assert!(
        sum / published < 1.0,
        "mean publish delay {}",
        sum / published
    );
}
