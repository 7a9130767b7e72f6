//! What a client may make tallyd hold, tried by clients that exceed it on the
//! real daemon: connections per listener, idle connections, gRPC message size
//! (plain and gzip-compressed), the HTTP request head, and `?windows=` past
//! `window.retain`.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric as OtlpMetric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
    number_data_point,
};
use support::{DEADLINE, Daemon, sample_in};
use tallyd::ingest::proto::ingest_client::IngestClient;
use tallyd::ingest::proto::{Batch, Metric, MetricType};
use tonic::Code;
use tonic::codec::CompressionEncoding;

fn addr(daemon: &Daemon, key: &str) -> SocketAddr {
    daemon.ready[key].as_str().unwrap().parse().unwrap()
}

fn listener_sample(daemon: &Daemon, family: &str, listener: &str) -> Option<f64> {
    sample_in(
        &daemon.metrics(),
        &format!("{family}{{listener=\"{listener}\"}}"),
    )
}

/// Reads until the server closes `stream`; true when it did within the
/// deadline (end of stream or reset), false when the connection stayed open.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn tcp_connections_past_the_limit_are_closed_and_counted_and_room_frees_up() {
    let daemon = Daemon::start_listening(
        "  tcp: [\"127.0.0.1:0\"]",
        "window: { interval: 200ms, retain: 50 }\nlimits: { max_connections: 3 }",
    );
    let tcp = addr(&daemon, "tcp");
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(tcp).unwrap()).collect();
    daemon.wait_for("three open TCP connections", || {
        sample_in(
            &daemon.metrics(),
            "tallyd_connections_open{transport=\"tcp\"}",
        ) == Some(3.0)
    });
    for _ in 0..5 {
        let mut extra = TcpStream::connect(tcp).unwrap();
        assert!(
            closed_by_server(&mut extra, DEADLINE),
            "a connection past the limit is closed at once"
        );
    }
    assert_eq!(
        listener_sample(&daemon, "tallyd_connections_refused_total", "tcp"),
        Some(5.0)
    );
    assert_eq!(
        listener_sample(&daemon, "tallyd_connections_refused_total", "http"),
        Some(0.0),
        "the HTTP endpoint has its own budget"
    );
    // The held connections still work, and a closed one makes room.
    held[0].write_all(b"limits.held:1|c\n").unwrap();
    drop(held.remove(1));
    daemon.wait_for("a free place", || {
        sample_in(
            &daemon.metrics(),
            "tallyd_connections_open{transport=\"tcp\"}",
        ) == Some(2.0)
    });
    let mut newcomer = TcpStream::connect(tcp).unwrap();
    newcomer.write_all(b"limits.newcomer:2|c\n").unwrap();
    for name in ["limits.held", "limits.newcomer"] {
        daemon.wait_for_series(name);
    }
    assert_eq!(
        listener_sample(&daemon, "tallyd_connections_refused_total", "tcp"),
        Some(5.0)
    );
}

#[test]
fn http_connections_past_the_limit_are_closed_and_the_endpoint_recovers() {
    let daemon = Daemon::start("limits: { max_connections: 4 }");
    // The test's own HTTP client may hold a kept-alive connection: of six
    // silent connections, at least two are over the budget.
    let mut silent: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect(daemon.http).unwrap())
        .collect();
    let closed = silent
        .iter_mut()
        .filter_map(|s| closed_by_server(s, Duration::from_millis(500)).then_some(()))
        .count();
    assert!(closed >= 2, "{closed} of 6 connections closed at once");
    drop(silent);
    let refused = listener_sample(&daemon, "tallyd_connections_refused_total", "http")
        .expect("the family is served");
    assert!(
        (2.0..=6.0).contains(&refused),
        "{refused} refusals counted for {closed} closed connections"
    );
}

#[test]
fn silent_tcp_and_grpc_connections_are_closed_after_the_idle_timeout() {
    let daemon = Daemon::start_listening(
        "  tcp: [\"127.0.0.1:0\"]\n  grpc: \"127.0.0.1:0\"",
        "window: { interval: 200ms, retain: 50 }\nlimits: { connection_idle_timeout: 300ms }",
    );
    let mut tcp = TcpStream::connect(addr(&daemon, "tcp")).unwrap();
    tcp.write_all(b"idle.before:1|c\n").unwrap();
    assert!(closed_by_server(&mut tcp, DEADLINE));
    daemon.wait_for_series("idle.before");
    // gRPC: a client that connects and never speaks (not even the preface).
    let mut grpc = TcpStream::connect(addr(&daemon, "grpc")).unwrap();
    assert!(closed_by_server(&mut grpc, DEADLINE));
    for listener in ["tcp", "grpc"] {
        daemon.wait_for(&format!("an idle close on {listener}"), || {
            listener_sample(&daemon, "tallyd_connections_idle_closed_total", listener) == Some(1.0)
        });
    }
    // A connection that keeps talking is not idle.
    let mut talker = TcpStream::connect(addr(&daemon, "tcp")).unwrap();
    for _ in 0..8 {
        talker.write_all(b"idle.talker:1|c\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    talker.write_all(b"idle.talker:1|c\n").unwrap();
    assert_eq!(
        listener_sample(&daemon, "tallyd_connections_idle_closed_total", "tcp"),
        Some(1.0)
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn gauge_export(name: &str, points: usize) -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        time_unix_nano: 1,
        value: Some(number_data_point::Value::AsDouble(1.0)),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![OtlpMetric {
                    name: name.into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![point; points],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn grpc_messages_over_the_limit_are_refused_after_decompression_and_counted() {
    let daemon = Daemon::start_listening(
        "  grpc: \"127.0.0.1:0\"",
        "window: { interval: 200ms, retain: 50 }\nlimits: { max_grpc_message_bytes: 4KiB }",
    );
    let url = format!("http://{}", addr(&daemon, "grpc"));
    runtime().block_on(async {
        // tallyd's API: a 10,000-value batch is about 80 KiB.
        let mut client = IngestClient::connect(url.clone()).await.unwrap();
        let big = Metric {
            name: "limits.big".into(),
            r#type: MetricType::Timer as i32,
            values: vec![1.5; 10_000],
            ..Default::default()
        };
        let refused = client
            .push_batch(Batch { metrics: vec![big] })
            .await
            .expect_err("a message over the limit is refused");
        assert_eq!(refused.code(), Code::OutOfRange, "{refused}");
        let small = Metric {
            name: "limits.small".into(),
            r#type: MetricType::Counter as i32,
            values: vec![1.0],
            ..Default::default()
        };
        let accepted = client
            .push_batch(Batch {
                metrics: vec![small],
            })
            .await
            .expect("a small message on the same connection")
            .into_inner();
        assert_eq!(accepted.accepted, 1);

        // OTLP, gzip: 4,000 equal points are about 100 KiB but compress to a
        // few hundred bytes, under the limit on the wire.
        let mut otlp = MetricsServiceClient::connect(url)
            .await
            .unwrap()
            .send_compressed(CompressionEncoding::Gzip);
        let bomb = otlp
            .export(gauge_export("limits.otlp_bomb", 4000))
            .await
            .expect_err("a message larger than the limit once inflated is refused");
        assert_eq!(bomb.code(), Code::ResourceExhausted, "{bomb}");
        otlp.export(gauge_export("limits.otlp_small", 1))
            .await
            .expect("a small compressed export");
    });
    daemon.wait_for_series("limits.small");
    daemon.wait_for_series("limits.otlp_small");
    let metrics = daemon.metrics();
    let too_large = |t: &str| {
        sample_in(
            &metrics,
            &format!("tallyd_grpc_messages_too_large_total{{transport=\"{t}\"}}"),
        )
    };
    assert_eq!(too_large("grpc"), Some(1.0));
    assert_eq!(too_large("otlp"), Some(1.0));
    assert_eq!(
        sample_in(&metrics, "tallyd_lines_received_total{transport=\"grpc\"}"),
        Some(1.0),
        "nothing of the refused batch was ingested"
    );
}

#[test]
fn windows_asked_for_past_retain_are_bounded_by_retain() {
    let daemon = Daemon::start("window: { interval: 100ms, retain: 3 }");
    daemon.wait_for("more windows closed than are kept", || {
        daemon
            .sample("tallyd_windows_flushed_total{shard=\"0\"}")
            .is_some_and(|flushed| flushed >= 5.0)
    });
    let rollups = daemon.rollups("windows=1000000");
    assert_eq!(rollups["windows"].as_array().unwrap().len(), 3);
}

#[test]
fn an_http_request_head_over_64_kib_is_answered_431_and_counted() {
    let daemon = Daemon::start("");
    let mut stream = TcpStream::connect(daemon.http).unwrap();
    let padding = "x".repeat(100 << 10);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Padding: {padding}\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes());
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    daemon.wait_for("the refusal to be counted", || {
        daemon.sample("tallyd_http_requests_refused_total{reason=\"too_large\"}") == Some(1.0)
    });
    assert_eq!(daemon.get("/metrics").0, 200, "the endpoint still serves");
}
