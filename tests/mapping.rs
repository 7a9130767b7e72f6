//! `mapping.file` end to end: statsd_exporter's documented mappings applied to
//! StatsD lines sent over UDP to the real daemon, read back from `/metrics`;
//! reloads of the file; the tag styles of `aggregation.tag_styles`.

mod support;

use support::Daemon;

const SHORT_WINDOWS: &str = "window: { interval: 300ms, retain: 100 }";

/// statsd_exporter's README examples, plus a rule that merges many names into
/// one series and one that sets help, a histogram and a scale.
const MAPPING: &str = r#"
mappings:
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "*.signup.*.*"
  name: "signup_events_total"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
- match: "fleet.*.requests"
  name: "fleet_requests"
  help: "Requests, all hosts together"
- match: "test.timing.*.*.*"
  observer_type: histogram
  histogram_options:
    buckets: [ 0.01, 0.025, 0.05, 0.1 ]
  scale: 0.001
  name: "my_timer"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
- match: "(.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count"
  match_type: regex
  name: "request_total"
  labels:
    hostname: "$1"
    exec: "$2"
    protocol: "$3"
    code: "$4"
- match: "junk\\..*"
  match_type: regex
  action: drop
  name: "dropped"
"#;

fn start_with_mapping(mapping: &str, extra: &str) -> (Daemon, tempfile::NamedTempFile) {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), mapping).unwrap();
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\nmapping: {{ file: {} }}\n{extra}",
        file.path().display()
    ));
    (daemon, file)
}

#[test]
fn the_readme_mappings_give_the_documented_series() {
    let (daemon, _file) = start_with_mapping(MAPPING, "");
    let mut lines = vec![
        "test.dispatcher.FooProcessor.send.success:3|c".to_owned(),
        "foo_product.signup.facebook.failure:1|c".to_owned(),
        "test.web-server.foo.bar:2|g".to_owned(),
        "web1.api--http.status.200.count:5|c".to_owned(),
        "junk.a:1|c".to_owned(),
        "junk.b:1|g".to_owned(),
        "test.timing.web.aws.ok:20|ms".to_owned(),
        "test.timing.web.aws.ok:40|ms".to_owned(),
        "test.timing.web.aws.ok:200|ms".to_owned(),
    ];
    // Ten hosts' counters become one series, summed exactly.
    lines.extend((0..10).map(|host| format!("fleet.host{host}.requests:{}|c", host + 1)));
    daemon.send(&[&lines.join("\n")]);
    daemon.wait_for_lines(lines.len() as u64);

    let dispatcher = r#"dispatcher_events_total{action="send",job="test_dispatcher",outcome="success",processor="FooProcessor"}"#;
    daemon.wait_for("the mapped series", || {
        daemon.sample(dispatcher) == Some(3.0)
            && daemon.sample("fleet_requests_total") == Some(55.0)
    });
    let metrics = daemon.metrics();
    let sample = |s: &str| support::sample_in(&metrics, s);
    // A name already ending in _total keeps it, once.
    assert!(!metrics.contains("_total_total"), "{metrics}");
    assert_eq!(
        sample(
            r#"signup_events_total{job="foo_product_server",outcome="failure",provider="facebook"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample("test_web_server_foo_bar"), Some(2.0));
    assert_eq!(
        sample(r#"request_total{code="200",exec="api",hostname="web1",protocol="http"}"#),
        Some(5.0)
    );
    assert!(metrics.contains("# HELP fleet_requests_total Requests, all hosts together\n"));
    // Scaled to seconds, in the rule's buckets: 0.02, 0.04, 0.2.
    let timer = r#"job="web_server",outcome="ok",provider="aws""#;
    assert_eq!(
        sample(&format!("my_timer_bucket{{{timer},le=\"0.025\"}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&format!("my_timer_bucket{{{timer},le=\"0.05\"}}")),
        Some(2.0)
    );
    assert_eq!(
        sample(&format!("my_timer_bucket{{{timer},le=\"+Inf\"}}")),
        Some(3.0)
    );
    assert!((sample(&format!("my_timer_sum{{{timer}}}")).unwrap() - 0.26).abs() < 1e-12);
    assert!(!metrics.contains("junk"), "{metrics}");
    assert_eq!(
        sample(r#"tallyd_lines_dropped_total{reason="mapping_drop"}"#),
        Some(2.0)
    );
}

#[test]
fn mapping_labels_win_over_tags_unless_honour_labels_is_set() {
    let mapping = r#"
mappings:
- match: "svc.*.hits"
  name: "hits"
  labels: {env: "$1"}
- match: "svc.*.misses"
  name: "misses"
  honor_labels: true
  labels: {env: "$1"}
"#;
    let (daemon, _file) = start_with_mapping(mapping, "");
    let lines = [
        "svc.prod.hits:1|c|#env:staging,az:a",
        "svc.prod.hits:2|c|#az:a",
        "svc.prod.misses:4|c|#env:staging",
        "svc.prod.misses:8|c",
    ];
    daemon.send(&[&lines.join("\n")]);
    daemon.wait_for_lines(4);
    daemon.wait_for("hits and misses", || {
        let metrics = daemon.metrics();
        // The env tag is replaced: both lines are one series.
        support::sample_in(&metrics, r#"hits_total{az="a",env="prod"}"#) == Some(3.0)
            && support::sample_in(&metrics, r#"misses_total{env="staging"}"#) == Some(4.0)
            && support::sample_in(&metrics, r#"misses_total{env="prod"}"#) == Some(8.0)
    });
}

#[test]
fn a_reload_applies_a_new_mapping_and_a_broken_one_keeps_the_old() {
    let (daemon, file) = start_with_mapping(
        "mappings:\n- match: 'app.*.count'\n  name: 'first_${1}'\n",
        "web: { enable_lifecycle: true }",
    );
    let send = || daemon.send(&["app.x.count:1|c"]);
    send();
    daemon.wait_for("the first mapping", || {
        daemon.sample("first_x_total").is_some()
    });

    std::fs::write(
        &file,
        "mappings:\n- match: 'app.*.count'\n  name: 'second'\n  labels: {part: '$1'}\n",
    )
    .unwrap();
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("mapping.file"), "{body}");
    daemon.wait_for("the second mapping", || {
        send();
        daemon.sample(r#"second_total{part="x"}"#).is_some()
    });

    std::fs::write(
        &file,
        "mappings:\n- match: 'app.*.count'\n  name: 'bad.name'\n",
    )
    .unwrap();
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("mappings[0].name"), "{body}");
    let before = daemon.sample(r#"second_total{part="x"}"#).unwrap();
    daemon.wait_for("the second mapping still in force", || {
        send();
        daemon.sample(r#"second_total{part="x"}"#) > Some(before)
    });
    assert!(daemon.metrics().lines().all(|l| !l.starts_with("bad")));
}

#[test]
fn each_tag_style_over_udp_lands_as_labels() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\naggregation: {{ tag_styles: [dogstatsd, influxdb, librato, signalfx, graphite] }}"
    ));
    let lines = [
        "influx.hits,env=prod,az=a:1|c",
        "librato.hits#env=prod,az=a:2|c",
        "signalfx.hits[env=prod,az=a]:3|c",
        "graphite.hits;env=prod;az=a:4|c",
        // Name tags and |# tags together, and the same series twice.
        "mixed.hits,env=prod:5|c|#az:a",
        "mixed.hits:6|c|#az:a,env:prod",
        "bad.hits,env:1|c",
    ];
    daemon.send(&[&lines.join("\n")]);
    daemon.wait_for_lines(lines.len() as u64);
    daemon.wait_for("every style's series", || {
        let metrics = daemon.metrics();
        let value =
            |name: &str| support::sample_in(&metrics, &format!("{name}{{az=\"a\",env=\"prod\"}}"));
        value("influx_hits_total") == Some(1.0)
            && value("librato_hits_total") == Some(2.0)
            && value("signalfx_hits_total") == Some(3.0)
            && value("graphite_hits_total") == Some(4.0)
            && value("mixed_hits_total") == Some(11.0)
    });
    assert_eq!(
        daemon.sample(r#"tallyd_lines_rejected_total{transport="udp",reason="bad_tags"}"#),
        Some(1.0)
    );
}
