//! The remote-write sink against a scripted HTTP receiver: what the wire
//! carries (headers, credentials, snappy-compressed protobuf, labels, one
//! sample per series per request, order per series), and what each kind of
//! answer does to the data (415 falls back to 1.0, 5xx and 429 are retried,
//! other 4xx dropped and counted, a dead receiver fills the queue, shutdown
//! sends the last window). Real receivers (Prometheus, VictoriaMetrics) are
//! tested in `tests/python/test_remote_write.py`; this one answers what they
//! cannot be made to answer on demand.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prost::Message;
use support::{Daemon, sample_in};
use tallyd::sinks::remote_write::STALE_NAN;
use tallyd::sinks::remote_write::proto::{RequestV2, TimeSeries, WriteRequest};

/// One request as the receiver saw it, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    /// The body after snappy decompression.
    body: Vec<u8>,
    status: u16,
    /// When it arrived.
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn is_v2(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.contains("proto=io.prometheus.write.v2.Request"))
    }

    /// The 1.0 body.
    fn series(&self) -> Vec<TimeSeries> {
        assert!(!self.is_v2());
        WriteRequest::decode(&self.body[..])
            .expect("a prometheus.WriteRequest")
            .timeseries
    }

    /// Float samples and histograms in the request.
    fn samples(&self) -> usize {
        if self.is_v2() {
            let request = RequestV2::decode(&self.body[..]).expect("a v2 Request");
            return request
                .timeseries
                .iter()
                .map(|s| s.samples.len() + s.histograms.len())
                .sum();
        }
        self.series()
            .iter()
            .map(|s| s.samples.len() + s.histograms.len())
            .sum()
    }

    fn sink(&self) -> &str {
        self.header("x-test-sink").unwrap_or("")
    }
}

/// The answer to a request: a status and extra headers.
type Answer = (u16, Vec<(&'static str, String)>);

/// Decides an answer from the request and those before it.
type Script = dyn Fn(&Received, &[Received]) -> Answer + Send + Sync;

/// An HTTP server answering as its script says and keeping every request.
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(script: impl Fn(&Received, &[Received]) -> Answer + Send + Sync + 'static) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let log = Arc::new(Mutex::new(Vec::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = log.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let (log, script) = (shared.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (log, script) = (log.clone(), script.clone());
                        async move { Ok::<_, hyper::Error>(answer(request, &log, &*script).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            log,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Polls until `condition` holds over the requests so far.
    fn wait_for(&self, what: &str, condition: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        while !condition(&self.requests()) {
            assert!(
                start.elapsed() < support::DEADLINE,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    log: &Mutex<Vec<Received>>,
    script: &Script,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let compressed = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut received = Received {
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: snap::raw::Decoder::new()
            .decompress_vec(&compressed)
            .expect("a snappy block"),
        status: 0,
        at: Instant::now(),
    };
    let mut log = log.lock().unwrap();
    let (status, headers) = script(&received, &log);
    received.status = status;
    log.push(received);
    let mut response = hyper::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(Full::new(Bytes::new())).unwrap()
}

/// `name` and every label but `__name__`, sorted, of a 1.0 series.
fn identity(series: &TimeSeries) -> (String, Vec<(String, String)>) {
    let name = series
        .labels
        .iter()
        .find(|l| l.name == "__name__")
        .map(|l| l.value.clone())
        .unwrap_or_default();
    let labels = series
        .labels
        .iter()
        .filter(|l| l.name != "__name__")
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    (name, labels)
}

/// The float samples of series `name` stored (answered 2xx), in arrival order.
fn stored(requests: &[Received], name: &str) -> Vec<(i64, f64)> {
    requests
        .iter()
        .filter(|r| (200..300).contains(&r.status) && !r.is_v2())
        .flat_map(Received::series)
        .filter(|s| identity(s).0 == name)
        .flat_map(|s| s.samples.into_iter().map(|x| (x.timestamp, x.value)))
        .collect()
}

/// A sink counter's value on `/metrics`.
fn sink_metric(daemon: &Daemon, family: &str, sink: &str, reason: Option<&str>) -> f64 {
    let labels = match reason {
        Some(reason) => format!("{{sink=\"{sink}\",reason=\"{reason}\"}}"),
        None => format!("{{sink=\"{sink}\"}}"),
    };
    sample_in(&daemon.metrics(), &format!("{family}{labels}"))
        .unwrap_or_else(|| panic!("{family}{labels} on /metrics"))
}

fn no_drops(daemon: &Daemon, sink: &str) {
    for reason in ["queue_full", "rejected", "shutdown"] {
        assert_eq!(
            sink_metric(
                daemon,
                "tallyd_sink_samples_dropped_total",
                sink,
                Some(reason)
            ),
            0.0,
            "{sink}: {reason}"
        );
    }
}

const WINDOW_MS: i64 = 200;

#[test]
fn pushes_carry_headers_credentials_and_external_labels_and_a_2_0_sink_falls_back_on_415() {
    let receiver = Receiver::start(|request, _| {
        if request.is_v2() {
            (415, vec![])
        } else {
            (204, vec![])
        }
    });
    let password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password.path(), "first\n").unwrap();
    let daemon = Daemon::start(&format!(
        "window: {{ interval: {WINDOW_MS}ms }}\n\
         external_labels: {{ host: node-a, code: never-wins }}\n\
         remote_write:\n\
         \x20 - url: {}\n\
         \x20   name: rw\n\
         \x20   protobuf_message: io.prometheus.write.v2.Request\n\
         \x20   headers: {{ X-Scope-OrgID: team-a }}\n\
         \x20   basic_auth: {{ username: tallyd, password_file: {} }}\n",
        receiver.url(),
        password.path().display()
    ));
    daemon.send(&["rw.gauge:5|g\nrw.hits:3|c|#code:200\nrw.hits:4|c|#code:500"]);
    receiver.wait_for("the gauge stored", |r| !stored(r, "rw_gauge").is_empty());

    let requests = receiver.requests();
    let first = &requests[0];
    assert!(first.is_v2(), "{:?}", first.headers);
    assert_eq!(
        first.header("x-prometheus-remote-write-version"),
        Some("2.0.0")
    );
    assert_eq!(first.status, 415);
    let v1: Vec<&Received> = requests.iter().filter(|r| !r.is_v2()).collect();
    // Fell back for good: no 2.0 request after the first 1.0 one.
    let first_v1 = requests.iter().position(|r| !r.is_v2()).unwrap();
    assert!(requests[first_v1..].iter().all(|r| !r.is_v2()));
    for request in &v1 {
        assert_eq!(
            request.header("content-type"),
            Some("application/x-protobuf")
        );
        assert_eq!(request.header("content-encoding"), Some("snappy"));
        assert_eq!(
            request.header("x-prometheus-remote-write-version"),
            Some("0.1.0")
        );
        assert!(request.header("user-agent").unwrap().starts_with("tallyd/"));
        assert_eq!(request.header("x-scope-orgid"), Some("team-a"));
        assert_eq!(
            request.header("authorization").map(str::to_owned),
            Some(format!("Basic {}", BASE64_STANDARD.encode("tallyd:first")))
        );
    }
    let series: Vec<TimeSeries> = v1.iter().flat_map(|r| r.series()).collect();
    let hits: HashMap<String, f64> = series
        .iter()
        .filter(|s| identity(s).0 == "rw_hits_total")
        .map(|s| {
            let (_, labels) = identity(s);
            let code = labels.iter().find(|(k, _)| k == "code").unwrap().1.clone();
            assert!(labels.contains(&("host".into(), "node-a".into())));
            (code, s.samples[0].value)
        })
        .collect();
    // The series' own `code` label wins over the external one.
    assert_eq!(hits.get("200"), Some(&3.0));
    assert_eq!(hits.get("500"), Some(&4.0));
    for s in &series {
        let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "labels sorted and unique");
        for sample in &s.samples {
            assert_eq!(
                sample.timestamp % WINDOW_MS,
                0,
                "stamped with a window's end"
            );
        }
    }
    // tallyd's own metrics travel with the rollups.
    assert!(
        series
            .iter()
            .any(|s| identity(s).0 == "tallyd_lines_received_total")
    );

    // A rotated password is read for the next request.
    std::fs::write(password.path(), "second\n").unwrap();
    let rotated = format!("Basic {}", BASE64_STANDARD.encode("tallyd:second"));
    receiver.wait_for("the rotated password", |r| {
        r.last().and_then(|r| r.header("authorization")) == Some(rotated.as_str())
    });
    no_drops(&daemon, "rw");
    assert!(sink_metric(&daemon, "tallyd_sink_samples_sent_total", "rw", None) > 0.0);
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn every_request_holds_a_series_once_and_each_series_arrives_in_order() {
    let receiver = Receiver::start(|_, _| (204, vec![]));
    let daemon = Daemon::start(&format!(
        "window: {{ interval: {WINDOW_MS}ms }}\n\
         remote_write:\n\
         \x20 - url: {}\n\
         \x20   name: order\n\
         \x20   queue_config: {{ max_samples_per_send: 50, max_shards: 8 }}\n",
        receiver.url()
    ));
    let lines: String = (0..500).map(|i| format!("order.g{i}:{i}|g\n")).collect();
    daemon.send(&[&lines]);
    // Five windows holding every gauge, each cut into requests of at most 50.
    receiver.wait_for("five windows of every gauge", |r| {
        stored(r, "order_g499").len() >= 5
    });
    let requests = receiver.requests();
    let mut last: HashMap<(String, Vec<(String, String)>), i64> = HashMap::new();
    for request in &requests {
        let series = request.series();
        assert!(series.len() <= 50, "{} series in one request", series.len());
        let mut seen = HashSet::new();
        for s in series {
            let id = identity(&s);
            assert!(seen.insert(id.clone()), "{id:?} twice in one request");
            for sample in &s.samples {
                if let Some(&before) = last.get(&id) {
                    assert!(sample.timestamp > before, "{id:?} out of order");
                }
                last.insert(id.clone(), sample.timestamp);
            }
        }
    }
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn server_errors_and_429s_are_retried_and_other_refusals_dropped_and_counted() {
    // Each sink sends its name in a header; the receiver answers by sink.
    let receiver = Receiver::start(|request, before| {
        let earlier = before.iter().filter(|r| r.sink() == request.sink()).count();
        match request.sink() {
            "flaky" if earlier < 3 => (503, vec![]),
            "throttled" if earlier < 2 => (429, vec![("Retry-After", "1".to_owned())]),
            "throttled_no_retry" | "refused" => (
                if request.sink() == "refused" {
                    400
                } else {
                    429
                },
                vec![],
            ),
            _ => (204, vec![]),
        }
    });
    let sink = |name: &str, queue: &str| {
        format!(
            "  - url: {}\n    name: {name}\n    headers: {{ X-Test-Sink: {name} }}\n    queue_config: {{ min_backoff: 10ms, max_backoff: 50ms{queue} }}\n",
            receiver.url()
        )
    };
    let daemon = Daemon::start(&format!(
        "window: {{ interval: {WINDOW_MS}ms }}\nremote_write:\n{}{}{}{}",
        sink("flaky", ""),
        sink("throttled", ", retry_on_http_429: true"),
        sink("throttled_no_retry", ""),
        sink("refused", ""),
    ));
    daemon.send(&["retry.gauge:9|g"]);
    receiver.wait_for("the gauge through the flaky and the throttled sinks", |r| {
        ["flaky", "throttled"].iter().all(|&name| {
            r.iter().any(|req| {
                req.sink() == name
                    && req.status == 204
                    && req.series().iter().any(|s| identity(s).0 == "retry_gauge")
            })
        })
    });
    // What the receiver answered and what each sink counted agree, at a
    // moment when no request is between the two.
    let answered = |sink: &str, status: u16| -> (f64, f64) {
        let requests: Vec<Received> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.sink() == sink && r.status == status)
            .collect();
        (
            requests.len() as f64,
            requests.iter().map(Received::samples).sum::<usize>() as f64,
        )
    };
    daemon.wait_for("the counters to match the answers", || {
        let failed = |sink, reason| {
            sink_metric(
                &daemon,
                "tallyd_sink_requests_failed_total",
                sink,
                Some(reason),
            )
        };
        let retries = |sink| sink_metric(&daemon, "tallyd_sink_retries_total", sink, None);
        let rejected = |sink| {
            sink_metric(
                &daemon,
                "tallyd_sink_samples_dropped_total",
                sink,
                Some("rejected"),
            )
        };
        let (refused_requests, refused_samples) = answered("refused", 400);
        let (throttled_requests, throttled_samples) = answered("throttled_no_retry", 429);
        failed("flaky", "server_error") == 3.0
            && retries("flaky") == 3.0
            && failed("throttled", "too_many_requests") == 2.0
            && retries("throttled") == 2.0
            && refused_requests > 0.0
            && failed("refused", "client_error") == refused_requests
            && rejected("refused") == refused_samples
            && retries("refused") == 0.0
            && throttled_requests > 0.0
            && failed("throttled_no_retry", "too_many_requests") == throttled_requests
            && rejected("throttled_no_retry") == throttled_samples
            && retries("throttled_no_retry") == 0.0
    });
    no_drops(&daemon, "flaky");
    no_drops(&daemon, "throttled");
    // Retry-After: 1 held the throttled sink back a second each time,
    // though its backoff is 10-50 ms.
    let throttled: Vec<Received> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.sink() == "throttled")
        .collect();
    assert_eq!(throttled[0].status, 429);
    assert_eq!(throttled[1].status, 429);
    for pair in throttled[..3].windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_secs(1));
    }
    let (status, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn a_dead_receiver_fills_the_queue_which_drops_its_oldest_and_counts_them() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", dead.local_addr().unwrap());
    drop(dead);
    let daemon = Daemon::start(&format!(
        "window: {{ interval: {WINDOW_MS}ms }}\n\
         remote_write:\n\
         \x20 - url: {url}\n\
         \x20   name: dead\n\
         \x20   queue_config: {{ capacity: 500, min_backoff: 10ms, max_backoff: 20ms }}\n"
    ));
    daemon.send(&["dead.gauge:1|g"]);
    daemon.wait_for("the queue over capacity", || {
        sink_metric(
            &daemon,
            "tallyd_sink_samples_dropped_total",
            "dead",
            Some("queue_full"),
        ) > 0.0
    });
    let queued = sink_metric(&daemon, "tallyd_sink_queue_samples", "dead", None);
    assert!(queued > 0.0 && queued <= 500.0, "{queued} queued");
    assert!(
        sink_metric(
            &daemon,
            "tallyd_sink_requests_failed_total",
            "dead",
            Some("connection")
        ) > 0.0
    );
    assert_eq!(
        sink_metric(&daemon, "tallyd_sink_samples_sent_total", "dead", None),
        0.0
    );
    // Shutdown waits for the receiver up to its deadline, then says what it
    // could not send.
    let (status, logs) = daemon.stop();
    assert!(status.success());
    let left = logs
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("shutdown deadline passed"))
        })
        .expect("a log line counting what was not sent");
    assert!(left["samples"].as_u64().unwrap() > 0, "{left}");
}

#[test]
fn shutdown_sends_the_open_window() {
    let receiver = Receiver::start(|_, _| (204, vec![]));
    let daemon = Daemon::start(&format!(
        "window: {{ interval: 10m }}\nremote_write:\n  - url: {}\n    name: last\n",
        receiver.url()
    ));
    daemon.send(&["last.gauge:7|g"]);
    daemon.wait_for_lines(1);
    let (status, _) = daemon.stop();
    assert!(status.success());
    assert_eq!(
        stored(&receiver.requests(), "last_gauge")
            .iter()
            .map(|&(_, v)| v)
            .collect::<Vec<_>>(),
        [7.0]
    );
}

#[test]
fn a_series_that_idles_out_is_marked_stale() {
    let receiver = Receiver::start(|_, _| (204, vec![]));
    let daemon = Daemon::start(&format!(
        "window: {{ interval: {WINDOW_MS}ms }}\n\
         limits: {{ series_idle_ttl: 1s }}\n\
         remote_write:\n  - url: {}\n    name: stale\n",
        receiver.url()
    ));
    daemon.send(&["stale.gauge:3|g"]);
    let is_stale = |v: f64| v.to_bits() == STALE_NAN.to_bits();
    receiver.wait_for("a stale marker", |r| {
        stored(r, "stale_gauge").iter().any(|&(_, v)| is_stale(v))
    });
    let samples = stored(&receiver.requests(), "stale_gauge");
    let marker = samples.iter().position(|&(_, v)| is_stale(v)).unwrap();
    assert!(marker > 0, "values before the marker");
    assert!(samples[..marker].iter().all(|&(_, v)| v == 3.0));
    // The marker comes once, one window after the last value.
    assert_eq!(samples.len(), marker + 1, "{samples:?}");
    assert_eq!(samples[marker].0 - samples[marker - 1].0, WINDOW_MS);
    let (status, _) = daemon.stop();
    assert!(status.success());
}
