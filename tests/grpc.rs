//! gRPC on the real daemon: the generated tonic client for tallyd's own API, the
//! OTLP client from `opentelemetry-proto`, and the same events over every
//! transport giving identical rollups.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::{UnixDatagram, UnixStream};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric as OtlpMetric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use serde_json::Value;
use support::{Daemon, in_one_window, sample_in};
use tallyd::ingest::proto::ingest_client::IngestClient;
use tallyd::ingest::proto::{Batch, Metric, MetricType, PushSummary};

const SHORT_WINDOWS: &str = "window: { interval: 500ms, retain: 100 }";

fn grpc_addr(daemon: &Daemon) -> SocketAddr {
    daemon.ready["grpc"].as_str().unwrap().parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn metric(name: &str, kind: MetricType, values: &[f64]) -> Metric {
    Metric {
        name: name.into(),
        tags: vec!["env:prod".into()],
        r#type: kind as i32,
        values: values.to_vec(),
        sample_rate: 0.0,
        set_members: Vec::new(),
    }
}

fn push_batch(daemon: &Daemon, metrics: Vec<Metric>) -> PushSummary {
    runtime().block_on(async {
        let mut client = IngestClient::connect(format!("http://{}", grpc_addr(daemon)))
            .await
            .unwrap();
        client
            .push_batch(Batch { metrics })
            .await
            .unwrap()
            .into_inner()
    })
}

/// The newest window's series named `name`.
fn series(daemon: &Daemon, name: &str) -> Value {
    daemon.wait_for_series(name)
}

/// The series that `filter` selects in the newest retained window holding any.
fn window_series(daemon: &Daemon, filter: &str) -> Vec<Value> {
    let rollups = daemon.rollups(&format!("{filter}&windows=100"));
    rollups["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["series"].as_array().unwrap().clone())
        .find(|series| !series.is_empty())
        .unwrap_or_default()
}

#[test]
fn push_batch_accepts_valid_values_and_says_why_it_refused_the_rest() {
    let daemon = Daemon::start_listening("  grpc: \"127.0.0.1:0\"", SHORT_WINDOWS);
    let mut set = metric("g.users", MetricType::Set, &[]);
    set.set_members = vec!["a".into(), "b".into(), "a".into()];
    let mut sampled = metric("g.sampled", MetricType::Counter, &[1.0]);
    sampled.sample_rate = 0.25;
    let mut bad_rate = metric("g.bad", MetricType::Counter, &[1.0]);
    bad_rate.sample_rate = 2.0;
    let summary = push_batch(
        &daemon,
        vec![
            metric("g.hits", MetricType::Counter, &[1.0, 2.0, 3.0]),
            metric("g.temp", MetricType::Gauge, &[20.0, 21.5]),
            metric("g.lat", MetricType::Timer, &[5.0, f64::NAN, 1.0, 3.0]),
            set,
            sampled,
            bad_rate,
            metric("", MetricType::Counter, &[1.0]),
            metric("g.untyped", MetricType::Unspecified, &[1.0, 2.0]),
        ],
    );
    assert_eq!(summary.accepted, 3 + 2 + 3 + 3 + 1);
    assert_eq!(summary.rejected, 5);
    let reasons: Vec<(&str, u64)> = summary
        .rejected_by_reason
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let mut reasons = reasons;
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("bad_sample_rate", 1),
            ("bad_value", 1),
            ("empty_name", 1),
            ("unknown_type", 2)
        ]
    );
    daemon.wait_for("every accepted value", || {
        sample_in(
            &daemon.metrics(),
            "tallyd_lines_received_total{transport=\"grpc\"}",
        ) == Some(17.0)
    });
    let hits = series(&daemon, "g.hits");
    assert_eq!(
        (hits["total"].clone(), hits["tags"].clone()),
        (6.0.into(), serde_json::json!(["env:prod"]))
    );
    assert_eq!(series(&daemon, "g.temp")["value"], 21.5);
    assert_eq!(series(&daemon, "g.users")["unique"], 2);
    assert_eq!(series(&daemon, "g.sampled")["total"], 4.0);
    let lat = series(&daemon, "g.lat");
    assert_eq!(
        (lat["count"].clone(), lat["max"].clone()),
        (3.0.into(), 5.0.into())
    );
    assert_eq!(
        sample_in(
            &daemon.metrics(),
            "tallyd_lines_rejected_total{transport=\"grpc\",reason=\"unknown_type\"}"
        ),
        Some(2.0)
    );
}

#[test]
fn a_push_stream_is_summed_into_one_summary() {
    let daemon = Daemon::start_listening("  grpc: \"127.0.0.1:0\"", SHORT_WINDOWS);
    let summary = runtime().block_on(async {
        let mut client = IngestClient::connect(format!("http://{}", grpc_addr(&daemon)))
            .await
            .unwrap();
        let batches = (0..3).map(|i| Batch {
            metrics: vec![metric(
                "s.hits",
                MetricType::Counter,
                &vec![1.0; 1000 * (i + 1)],
            )],
        });
        client
            .push(tokio_stream::iter(batches))
            .await
            .unwrap()
            .into_inner()
    });
    assert_eq!((summary.accepted, summary.rejected), (6000, 0));
    daemon.wait_for("s.hits at 6000", || {
        daemon.rollups("name=s.hits&windows=1")["windows"][0]["series"][0]["total"] == 6000.0
    });
    assert_eq!(
        sample_in(
            &daemon.metrics(),
            "tallyd_frames_received_total{transport=\"grpc\"}"
        ),
        Some(3.0)
    );
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn number_point(start: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![attribute("route", "/a,b")],
        start_time_unix_nano: start,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn export(data: Vec<(&str, Data)>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![attribute("service.name", "shop")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: data
                    .into_iter()
                    .map(|(name, data)| OtlpMetric {
                        name: name.into(),
                        data: Some(data),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn otlp_cumulative_sums_add_their_increase_and_bad_points_are_reported() {
    let daemon = Daemon::start_listening("  grpc: \"127.0.0.1:0\"", SHORT_WINDOWS);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let cumulative = |total: f64| {
        Data::Sum(Sum {
            data_points: vec![number_point(now, total)],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })
    };
    let responses = runtime().block_on(async {
        let mut client = MetricsServiceClient::connect(format!("http://{}", grpc_addr(&daemon)))
            .await
            .unwrap();
        let mut responses = Vec::new();
        for request in [
            export(vec![("o.requests", cumulative(5.0))]),
            export(vec![
                ("o.requests", cumulative(12.0)),
                (
                    "o.temp",
                    Data::Gauge(Gauge {
                        data_points: vec![number_point(0, 3.5), number_point(0, f64::NAN)],
                    }),
                ),
                (
                    "o.latency",
                    Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            count: 10,
                            sum: Some(150.0),
                            bucket_counts: vec![4, 4, 2, 0],
                            explicit_bounds: vec![10.0, 20.0, 40.0],
                            min: Some(1.0),
                            max: Some(35.0),
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                    }),
                ),
            ]),
        ] {
            responses.push(client.export(request).await.unwrap().into_inner());
        }
        responses
    });
    assert_eq!(responses[0].partial_success, None);
    let partial = responses[1].partial_success.as_ref().unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(partial.error_message.contains("bad_value=1"), "{partial:?}");

    daemon.wait_for("o.requests at 12", || {
        daemon.rollups("name=o.requests&windows=1")["windows"][0]["series"][0]["total"] == 12.0
    });
    let requests = series(&daemon, "o.requests");
    assert_eq!(
        requests["tags"],
        serde_json::json!(["route:/a_b", "service.name:shop"])
    );
    assert_eq!(series(&daemon, "o.temp")["value"], 3.5);
    assert_eq!(series(&daemon, "o.latency.count")["value"], 10.0);
    assert_eq!(series(&daemon, "o.latency.sum")["value"], 150.0);
    assert_eq!(series(&daemon, "o.latency.max")["value"], 35.0);
    // The window that holds the export, not the latest: one may have closed
    // since (a series without data in a window is left out of it).
    let quantiles = window_series(&daemon, "name=o.latency.quantile")
        .iter()
        .map(|s| (s["tags"].to_string(), s["value"].as_f64().unwrap()))
        .collect::<Vec<_>>();
    assert!(
        quantiles.contains(&("[\"q:0.5\",\"service.name:shop\"]".into(), 12.5)),
        "{quantiles:?}"
    );
    let buckets = window_series(&daemon, "name=o.latency.bucket&tag=le:20");
    assert_eq!(buckets[0]["value"], 8.0);
}

/// The same events as StatsD text and as a gRPC batch, under `prefix`.
fn events_as_text(prefix: &str) -> String {
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!("{prefix}.c:{}|c|#k:v\n", i % 7));
        text.push_str(&format!("{prefix}.t:{}|ms\n", (i * 37) % 50));
        text.push_str(&format!("{prefix}.s:m{}|s\n", i % 9));
    }
    text.push_str(&format!("{prefix}.g:3.25|g\n"));
    text
}

fn events_as_batch(prefix: &str) -> Vec<Metric> {
    let counter = Metric {
        tags: vec!["k:v".into()],
        ..metric(
            &format!("{prefix}.c"),
            MetricType::Counter,
            &(0..50).map(|i| f64::from(i % 7)).collect::<Vec<_>>(),
        )
    };
    let timer = Metric {
        tags: Vec::new(),
        ..metric(
            &format!("{prefix}.t"),
            MetricType::Timer,
            &(0..50)
                .map(|i| f64::from((i * 37) % 50))
                .collect::<Vec<_>>(),
        )
    };
    let set = Metric {
        tags: Vec::new(),
        set_members: (0..50).map(|i| format!("m{}", i % 9)).collect(),
        ..metric(&format!("{prefix}.s"), MetricType::Set, &[])
    };
    let gauge = Metric {
        tags: Vec::new(),
        ..metric(&format!("{prefix}.g"), MetricType::Gauge, &[3.25])
    };
    vec![counter, timer, set, gauge]
}

/// A series' rollup without what names it, when all its data landed in one
/// window: the only window holding it, or for a gauge (reported in every window
/// until it expires) the first.
fn rollup_body(daemon: &Daemon, name: &str) -> Option<Value> {
    let windows = daemon.rollups(&format!("name={name}&windows=100"));
    let holding: Vec<Value> = windows["windows"]
        .as_array()?
        .iter()
        .filter_map(|w| w["series"].as_array()?.first().cloned())
        .collect();
    let first = holding.last()?;
    if holding.len() != 1 && first["type"] != "gauge" {
        return None;
    }
    let mut body = first.clone();
    body.as_object_mut()?.remove("name");
    Some(body)
}

#[test]
fn the_same_events_over_every_transport_give_identical_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("d.sock");
    let stream = dir.path().join("s.sock");
    let daemon = Daemon::start_listening(
        &format!(
            "  tcp: [\"127.0.0.1:0\"]\n  grpc: \"127.0.0.1:0\"\n  unix_datagram: {}\n  unix_stream: {}",
            dgram.display(),
            stream.display()
        ),
        "window: { interval: 2s, retain: 100 }",
    );
    let transports = ["udp", "tcp", "dgram", "stream", "grpc"];
    let runtime = runtime();
    let mut grpc = runtime
        .block_on(IngestClient::connect(format!(
            "http://{}",
            grpc_addr(&daemon)
        )))
        .unwrap();
    let tcp: SocketAddr = daemon.ready["tcp"].as_str().unwrap().parse().unwrap();
    in_one_window(
        |attempt| {
            for transport in transports {
                let prefix = format!("{attempt}.{transport}");
                let text = events_as_text(&prefix);
                match transport {
                    "udp" => daemon.send(&text.lines().collect::<Vec<_>>()),
                    "tcp" => std::net::TcpStream::connect(tcp)
                        .unwrap()
                        .write_all(text.as_bytes())
                        .unwrap(),
                    "dgram" => {
                        let socket = UnixDatagram::unbound().unwrap();
                        for line in text.lines() {
                            socket.send_to(line.as_bytes(), &dgram).unwrap();
                        }
                    }
                    "stream" => UnixStream::connect(&stream)
                        .unwrap()
                        .write_all(text.as_bytes())
                        .unwrap(),
                    _ => {
                        let summary = runtime
                            .block_on(grpc.push_batch(Batch {
                                metrics: events_as_batch(&prefix),
                            }))
                            .unwrap()
                            .into_inner();
                        assert_eq!(summary.accepted, 151);
                    }
                }
            }
        },
        |attempt| {
            // Everything sent has reached closed windows: counter and timer totals
            // across windows are complete, and the set and gauge are there.
            for transport in transports {
                let total = |kind: &str, field: &str| -> f64 {
                    let name = format!("{attempt}.{transport}.{kind}");
                    daemon.rollups(&format!("name={name}&windows=100"))["windows"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|w| w["series"][0][field].as_f64())
                        .sum()
                };
                daemon.wait_for(&format!("{attempt} over {transport}"), || {
                    total("c", "value") == 147.0
                        && total("t", "count") == 50.0
                        && total("s", "unique") > 0.0
                        && total("g", "value") > 0.0
                });
            }
            for kind in ["c", "t", "s", "g"] {
                let bodies: Vec<Option<Value>> = transports
                    .iter()
                    .map(|t| rollup_body(&daemon, &format!("{attempt}.{t}.{kind}")))
                    .collect();
                if bodies.iter().any(Option::is_none) {
                    return false;
                }
                for (transport, body) in transports.iter().zip(&bodies) {
                    assert_eq!(body, &bodies[0], "{kind} over {transport}");
                }
            }
            true
        },
    );
}
