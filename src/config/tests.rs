//! Loading the shipped config, round trips, and one test per kind of bad value.

use std::path::Path;

use super::*;

fn shipped_config_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tallyd.yaml"))
}

/// The error text for `yaml`, which must be rejected.
fn rejection(yaml: &str) -> String {
    parse(yaml, "t.yaml")
        .expect_err("config should be rejected")
        .to_string()
}

#[test]
fn shipped_config_equals_the_built_in_defaults() {
    let loaded = load_file(shipped_config_path()).expect("shipped config loads");
    assert_eq!(loaded, Config::default());
}

#[test]
fn empty_file_means_all_defaults() {
    assert_eq!(parse("", "t.yaml").unwrap(), Config::default());
    assert_eq!(parse("{}", "t.yaml").unwrap(), Config::default());
}

#[test]
fn defaults_have_the_documented_values() {
    let c = Config::default();
    assert_eq!(
        c.listen
            .udp
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["127.0.0.1:8125"]
    );
    assert!(c.listen.tcp.is_empty());
    assert_eq!(c.listen.http.get().to_string(), "127.0.0.1:9102");
    assert_eq!(c.window.interval.get().as_secs(), 10);
    assert_eq!(c.window.retain.get(), 6);
    assert_eq!(
        c.aggregation.quantiles.iter().collect::<Vec<_>>(),
        [0.5, 0.9, 0.99]
    );
    assert_eq!(c.aggregation.gauge_sign, GaugeSign::Statsd);
    assert_eq!(c.limits.max_series.get(), 1_000_000);
    assert_eq!(c.limits.series_idle_ttl.get().as_secs(), 300);
    assert_eq!(c.limits.max_datagram_bytes.bytes(), 65_535);
    assert_eq!(c.limits.max_connections.get(), 1024);
    assert_eq!(c.limits.connection_idle_timeout.get().as_secs(), 300);
    assert_eq!(c.limits.max_grpc_message_bytes.bytes(), 4 << 20);
    assert_eq!(c.shards, ThreadCount::Auto);
    assert_eq!(c.shard_priority, ShardPriority::Idle);
    assert_eq!(
        c.logging,
        Logging {
            level: LogLevel::Info,
            format: LogFormat::Pretty
        }
    );
}

#[test]
fn effective_config_printed_as_yaml_loads_back_identically() {
    let yaml = r#"
listen: { udp: ["0.0.0.0:8125", "[::1]:8125"], tcp: ["127.0.0.1:8125"], unix_datagram: /run/t.sock, grpc: "127.0.0.1:8126", http: "0.0.0.0:9102" }
window: { interval: 1m 30s, retain: 5 }
aggregation:
  quantiles: [0.25, 1]
  gauge_sign: dogstatsd
  histograms: [{ match: "api.*", buckets: [0.1, 1, 10] }]
limits: { max_series: 10, series_idle_ttl: 1h, max_datagram_bytes: 8KiB }
shards: 3
logging: { level: debug, format: json }
"#;
    let config = parse(yaml, "t.yaml").unwrap();
    assert_eq!(config.limits.max_datagram_bytes.bytes(), 8192);
    assert_eq!(config.window.interval.get().as_secs(), 90);
    assert_eq!(config.shards.resolve().get(), 3);
    assert!(
        config.aggregation.histograms[0]
            .pattern
            .is_match("api.requests")
    );
    assert!(
        !config.aggregation.histograms[0]
            .pattern
            .is_match("web.requests")
    );
    let printed = config.to_yaml();
    assert_eq!(
        parse(&printed, "printed").unwrap(),
        config,
        "printed:\n{printed}"
    );
}

#[test]
fn names_file_position_and_key_of_a_bad_duration() {
    let yaml = "listen:\n  udp: []\nwindow:\n  retain: 3\n  interval: 10q\n";
    assert_eq!(
        rejection(yaml),
        r#"t.yaml:5:13: window.interval: "10q" is not a duration (use e.g. 10s, 1m)"#
    );
}

#[test]
fn names_the_position_of_an_unknown_key() {
    let msg = rejection("window:\n  interval: 10s\n  retian: 3\n");
    assert!(
        msg.starts_with("t.yaml:3:3: window.retian: unknown field `retian`"),
        "{msg}"
    );
}

#[test]
fn rejects_a_duplicate_key() {
    let msg = rejection("shards: 2\nshards: 3\n");
    assert!(
        msg.starts_with("t.yaml:2:1: ") && msg.contains("duplicate"),
        "{msg}"
    );
}

#[test]
fn rejects_each_kind_of_bad_value_with_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "window: { interval: 0s }",
            "window.interval",
            "greater than zero",
        ),
        (
            "window: { interval: 1ms }",
            "window.interval",
            "shorter than the minimum",
        ),
        (
            "window: { interval: 10 }",
            "window.interval",
            "not a duration",
        ),
        ("window: { retain: 0 }", "window.retain", ""),
        (
            "aggregation: { quantiles: [0.5, 1.5] }",
            "aggregation.quantiles[1]",
            "not a quantile",
        ),
        (
            "aggregation: { quantiles: [0] }",
            "aggregation.quantiles[0]",
            "not a quantile",
        ),
        (
            "aggregation: { quantiles: [0.5, 0.5] }",
            "aggregation.quantiles",
            "listed twice",
        ),
        (
            "aggregation: { gauge_sign: etsy }",
            "aggregation.gauge_sign",
            "etsy",
        ),
        (
            "aggregation: { histograms: [{ match: 'a.*', buckets: [] }] }",
            "aggregation.histograms[0].buckets",
            "at least one",
        ),
        (
            "aggregation: { histograms: [{ match: 'a.*', buckets: [1, 1] }] }",
            "aggregation.histograms[0].buckets",
            "strictly increasing",
        ),
        (
            "aggregation: { histograms: [{ match: 'a[', buckets: [1] }] }",
            "aggregation.histograms[0].match",
            "not a valid pattern",
        ),
        (
            "aggregation: { histograms: [{ buckets: [1] }] }",
            "aggregation.histograms[0]",
            "match",
        ),
        (
            "listen: { udp: ['localhost:8125'] }",
            "listen.udp[0]",
            "use IP:port",
        ),
        (
            "listen: { udp: ['127.0.0.1:1', '127.0.0.1:1'] }",
            "listen.udp",
            "listed twice",
        ),
        ("listen: { http: '' }", "listen.http", "not an address"),
        (
            "listen: { unix_datagram: '' }",
            "listen.unix_datagram",
            "socket path is empty",
        ),
        (
            "limits: { max_datagram_bytes: 10 }",
            "limits.max_datagram_bytes",
            "outside the accepted range",
        ),
        (
            "limits: { max_datagram_bytes: lots }",
            "limits.max_datagram_bytes",
            "not a size",
        ),
        ("limits: { max_series: 0 }", "limits.max_series", ""),
        (
            "limits: { max_connections: 0 }",
            "limits.max_connections",
            "",
        ),
        (
            "limits: { connection_idle_timeout: 0s }",
            "limits.connection_idle_timeout",
            "greater than zero",
        ),
        (
            "limits: { max_grpc_message_bytes: 1GiB }",
            "limits.max_grpc_message_bytes",
            "outside the accepted range",
        ),
        ("shards: 0", "shards", "auto"),
        ("shards: many", "shards", "auto"),
        ("logging: { level: loud }", "logging.level", "loud"),
        (
            "aggregation: { native_histograms: { schema: 9 } }",
            "aggregation.native_histograms.schema",
            "use -4 to 8",
        ),
        (
            "aggregation: { native_histograms: { zero_threshold: -1 } }",
            "aggregation.native_histograms.zero_threshold",
            "finite number >= 0",
        ),
        (
            "aggregation: { native_histograms: { max_buckets: 0 } }",
            "aggregation.native_histograms.max_buckets",
            "",
        ),
    ];
    for &(yaml, key, words) in cases {
        let msg = rejection(yaml);
        assert!(msg.starts_with("t.yaml:1:"), "{yaml} -> {msg}");
        assert!(msg.contains(&format!(": {key}: ")), "{yaml} -> {msg}");
        assert!(msg.contains(words), "{yaml} -> {msg}");
    }
}

#[test]
fn rejects_yaml_syntax_errors_with_a_position() {
    let msg = rejection("window:\n  interval: [10s\n");
    assert!(msg.starts_with("t.yaml:"), "{msg}");
    assert!(
        msg.split(':').nth(1).unwrap().parse::<u64>().is_ok(),
        "{msg}"
    );
}

#[test]
fn reports_an_unreadable_file_by_path() {
    let err = load_file(Path::new("/nonexistent/tallyd.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read config file /nonexistent/tallyd.yaml: "),
        "{err}"
    );
}
