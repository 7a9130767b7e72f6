//! statsd_exporter's documented examples, and the refusals.

use super::*;
use crate::codec::MetricType::{self, Counter, Gauge, Timer};
use crate::series::Observer;

fn mapper(yaml: &str) -> Mapper {
    parse(yaml, "mapping.yaml", true).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(yaml: &str) -> String {
    parse(yaml, "mapping.yaml", false).unwrap_err().to_string()
}

/// The name and sorted labels `name` maps to, or a word for what else happened.
fn mapped(mapper: &Mapper, kind: MetricType, name: &str) -> String {
    match mapper.map(kind, name) {
        Mapping::Map(m) => {
            let mut labels = m.labels.clone();
            labels.sort();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{}{{{}}}", m.name, labels.join(","))
        }
        Mapping::Unmatched(_) => "unmatched".into(),
        Mapping::Drop => "drop".into(),
        Mapping::EmptyName => "empty".into(),
    }
}

#[test]
fn the_readme_glob_example() {
    let m = mapper(
        r#"
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
"#,
    );
    assert_eq!(
        mapped(&m, Counter, "test.dispatcher.FooProcessor.send.success"),
        r#"dispatcher_events_total{action="send",job="test_dispatcher",outcome="success",processor="FooProcessor"}"#
    );
    assert_eq!(
        mapped(&m, Counter, "foo_product.signup.facebook.failure"),
        r#"signup_events_total{job="foo_product_server",outcome="failure",provider="facebook"}"#
    );
    assert_eq!(mapped(&m, Counter, "test.web-server.foo.bar"), "unmatched");
}

#[test]
fn the_first_glob_in_file_order_wins_and_globs_beat_regexes() {
    let m = mapper(
        r#"
mappings:
- match: "(.*)"
  match_type: regex
  name: "regex_${1}"
- match: "a.b.*"
  name: "first"
- match: "a.*.c"
  name: "second"
- match: "a.*.*"
  name: "third_$2"
"#,
    );
    assert_eq!(mapped(&m, Counter, "a.b.c"), "first{}");
    assert_eq!(mapped(&m, Counter, "a.x.c"), "second{}");
    assert_eq!(mapped(&m, Counter, "a.x.y"), "third_y{}");
    // A `*` is one whole component: different lengths do not match.
    assert_eq!(mapped(&m, Counter, "a.x.y.z"), "regex_a_x_y_z{}");
    assert_eq!(mapped(&m, Counter, "a..c"), "second{}");
}

#[test]
fn the_readme_regex_examples() {
    let m = mapper(
        r#"
mappings:
- match: "test\\.(\\w+)\\.(\\w+)\\.counter"
  match_type: regex
  name: "${2}_total"
  labels:
    provider: "$1"
- match: "(.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count"
  match_type: regex
  name: "request_total"
  labels:
    hostname: "$1"
    exec: "$2"
    protocol: "$3"
    code: "$4"
- match: ".+"
  match_type: regex
  name: "$0"
  labels:
    statsd_metric_name: "$0"
"#,
    );
    assert_eq!(
        mapped(&m, Counter, "test.aws.requests.counter"),
        r#"requests_total{provider="aws"}"#
    );
    assert_eq!(
        mapped(&m, Counter, "web1.api--http.status.200.count"),
        r#"request_total{code="200",exec="api",hostname="web1",protocol="http"}"#
    );
    assert_eq!(
        mapped(&m, Counter, "my.statsd_counter"),
        r#"my_statsd_counter{statsd_metric_name="my.statsd_counter"}"#
    );
}

#[test]
fn the_readme_drop_and_metric_type_examples() {
    let m = mapper(
        r#"
mappings:
- match: "test.timing.*.*.*"
  name: "my_timer"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
- match: "test.foo.*"
  name: "test_foo"
  match_metric_type: counter
  labels:
    provider: "$1"
- match: "."
  match_type: regex
  action: drop
  name: "dropped"
"#,
    );
    assert_eq!(
        mapped(&m, Timer, "test.timing.web.aws.ok"),
        r#"my_timer{job="web_server",outcome="ok",provider="aws"}"#
    );
    assert_eq!(
        mapped(&m, Counter, "test.foo.aws"),
        r#"test_foo{provider="aws"}"#
    );
    assert_eq!(mapped(&m, Gauge, "test.foo.aws"), "drop");
    assert_eq!(mapped(&m, Counter, "anything.else"), "drop");
}

#[test]
fn the_readme_histogram_example_gives_buckets_and_native_resolution() {
    let m = mapper(
        r#"
mappings:
- match: "test.timing.*.*.*"
  observer_type: histogram
  histogram_options:
    buckets: [ 0.01, 0.025, 0.05, 0.1 ]
    native_histogram_bucket_factor: 1.1
    native_histogram_max_buckets: 256
  name: "my_timer"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
- match: "other.*"
  observer_type: histogram
  name: "other"
"#,
    );
    let Mapping::Map(timer) = m.map(Timer, "test.timing.a.b.c") else {
        panic!("not mapped");
    };
    let options = timer.rule.options.as_deref().expect("options");
    assert_eq!(
        options.observer,
        Some(Observer::Histogram {
            buckets: vec![0.01, 0.025, 0.05, 0.1].into()
        })
    );
    let native = options.native.expect("native options");
    assert_eq!((native.schema, native.max_buckets), (Some(3), Some(256)));
    let Mapping::Map(other) = m.map(Timer, "other.x") else {
        panic!("not mapped");
    };
    assert_eq!(
        other.rule.options.as_deref().unwrap().observer,
        Some(Observer::Histogram {
            buckets: DEFAULT_BUCKETS.to_vec().into()
        })
    );
}

#[test]
fn summaries_defaults_ttl_help_and_scale() {
    let m = mapper(
        r#"
defaults:
  ttl: 45s
  summary_options:
    quantiles: [{quantile: 0.5}, {quantile: 0.75, error: 0.01}]
mappings:
- match: "a.*"
  name: "a"
  help: "What a counts"
  ttl: 10m
  scale: 0.001
  summary_options:
    quantiles: [{quantile: 0.999}]
- match: "b.*"
  name: "b"
"#,
    );
    let Mapping::Map(a) = m.map(Timer, "a.x") else {
        panic!()
    };
    let options = a.rule.options.as_deref().unwrap();
    assert_eq!(options.help.as_deref(), Some("What a counts"));
    assert_eq!(options.idle_ttl_ms, Some(600_000));
    assert_eq!(a.rule.scale, Some(0.001));
    assert_eq!(
        options.observer,
        Some(Observer::Summary {
            quantiles: vec![0.999].into()
        })
    );
    let Mapping::Map(b) = m.map(Timer, "b.x") else {
        panic!()
    };
    let options = b.rule.options.as_deref().unwrap();
    assert_eq!(options.idle_ttl_ms, Some(45_000));
    // Unmatched names take the defaults too.
    let Mapping::Unmatched(Some(unmatched)) = m.map(Timer, "zzz") else {
        panic!()
    };
    assert_eq!(unmatched.idle_ttl_ms, Some(45_000));
    assert_eq!(m.quantiles(), [0.5, 0.75, 0.999]);
}

#[test]
fn keys_tallyd_cannot_honour_are_refused_with_their_position() {
    let summary = "mappings:\n- match: a.*\n  name: a\n  summary_options:\n    max_age: 30s\n";
    let error = refused(summary);
    assert!(
        error.starts_with("mapping.yaml:5:")
            && error.contains("mappings[0].summary_options.max_age"),
        "{error}"
    );
    let error = refused("defaults:\n  glob_disable_ordering: true\n");
    assert!(error.contains("defaults.glob_disable_ordering"), "{error}");
    let error = refused("mappings:\n- match: a.*\n  name: a\n  typo: 1\n");
    assert!(
        error.starts_with("mapping.yaml:4:") && error.contains("typo"),
        "{error}"
    );
    let native = "mappings:\n- match: a.*\n  name: a\n  observer_type: histogram\n  histogram_options: {native_histogram_bucket_factor: 1.1}\n";
    let error = refused(native);
    assert!(
        error.contains("aggregation.native_histograms.enabled"),
        "{error}"
    );
}

#[test]
fn invalid_rules_are_refused_with_their_position() {
    for (yaml, expect) in [
        (
            "mappings:\n- match: a.*\n  name: a.b\n",
            "mapping.yaml:3:9: mappings[0].name",
        ),
        (
            "mappings:\n- match: 'a.*x'\n  name: a\n",
            "mapping.yaml:2:10: mappings[0].match",
        ),
        (
            "mappings:\n- match: '('\n  match_type: regex\n  name: a\n",
            "mapping.yaml:2:10: mappings[0].match",
        ),
        (
            "mappings:\n- match: a.*\n  name: a\n  labels: {x: '1'}\n",
            "mappings[0].labels",
        ),
        (
            "mappings:\n- match: a.*\n",
            "mappings[0].name: a mapping needs a name",
        ),
        (
            "mappings:\n- match: a.*\n  name: a\n  observer_type: histogram\n  summary_options: {quantiles: [{quantile: 0.5}]}\n",
            "summary_options cannot go with observer_type: histogram",
        ),
        (
            "mappings:\n- match: a.*\n  name: a\n  histogram_options: {buckets: [2, 1]}\n  observer_type: histogram\n",
            "strictly increasing",
        ),
    ] {
        let error = refused(yaml);
        assert!(error.contains(expect), "{yaml}: {error}");
    }
}

#[test]
fn an_empty_name_drops_and_sets_match_only_untyped_rules() {
    let m = mapper(
        "mappings:\n- match: a.*\n  name: '${2}'\n- match: b.*\n  name: b\n  match_metric_type: counter\n- match: c.*\n  name: c\n",
    );
    assert_eq!(mapped(&m, Counter, "a.x"), "empty");
    assert_eq!(mapped(&m, MetricType::Set, "b.x"), "unmatched");
    assert_eq!(mapped(&m, MetricType::Set, "c.x"), "c{}");
}
