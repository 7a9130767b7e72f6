//! The real daemon fed over UDP by the `cadence` client and raw datagrams, read
//! back over HTTP: exact values for every type, the limits, the counters, shutdown.

mod support;

use std::io::Read;
use std::net::UdpSocket;

use cadence::prelude::*;
use cadence::{StatsdClient, UdpMetricSink};
use serde_json::Value;
use support::{Daemon, in_one_window, sample_in};

/// Windows short enough that a test sees several close in well under a second.
const SHORT_WINDOWS: &str = "window: { interval: 300ms, retain: 100 }";

fn cadence_client(daemon: &Daemon, prefix: &str) -> StatsdClient {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpMetricSink::from(daemon.udp, socket).unwrap();
    StatsdClient::from_sink(prefix, sink)
}

/// The windows in which series `name` received data, newest first.
fn windows_holding(daemon: &Daemon, name: &str) -> Vec<Value> {
    daemon.rollups(&format!("name={name}&windows=100"))["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["series"].as_array().unwrap().first().cloned())
        .collect()
}

/// Waits until the series in `names` have `count` samples (or lines) in total
/// across windows; true when each of them landed in a single window.
fn landed_in_one_window(daemon: &Daemon, names: &[(&str, &str, f64)]) -> bool {
    let mut single = true;
    for (name, field, expected) in names {
        daemon.wait_for(&format!("{name} to total {expected} {field}"), || {
            let total: f64 = windows_holding(daemon, name)
                .iter()
                .map(|s| s[*field].as_f64().unwrap_or(0.0))
                .sum();
            total == *expected
        });
        single &= windows_holding(daemon, name).len() == 1;
    }
    single
}

#[test]
fn cadence_metrics_of_every_type_roll_up_exactly() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\naggregation: {{ quantiles: [0.5, 0.9, 0.99] }}"
    ));
    let prefix = in_one_window(
        |prefix| {
            let client = cadence_client(&daemon, prefix);
            client
                .count_with_tags("req", 3)
                .with_tag("env", "prod")
                .send();
            client
                .count_with_tags("req", 2)
                .with_tag("env", "prod")
                .with_sampling_rate(0.5)
                .send();
            client.gauge("temp", 21.5).unwrap();
            for member in [7, 8, 7, 9, 7] {
                client.set("users", member).unwrap();
            }
            // 1..=100 in a shuffled order, as timers, one datagram each.
            for i in 0..100u64 {
                client.time("lat", (i * 37) % 100 + 1).unwrap();
            }
            client.histogram("size", vec![10u64, 20, 30]).unwrap();
            client.distribution("dist", 2.5).unwrap();
        },
        |prefix| {
            landed_in_one_window(
                &daemon,
                &[
                    (&format!("{prefix}.lat"), "count", 100.0),
                    (&format!("{prefix}.req"), "value", 7.0),
                    (&format!("{prefix}.users"), "unique", 3.0),
                    (&format!("{prefix}.size"), "count", 3.0),
                    (&format!("{prefix}.dist"), "count", 1.0),
                    (&format!("{prefix}.temp"), "value", 21.5),
                ],
            )
        },
    );
    let lat = &windows_holding(&daemon, &format!("{prefix}.lat"))[0];
    assert_eq!(lat["type"], "timer");
    assert_eq!(lat["sum"], 5050.0);
    assert_eq!(
        (lat["min"].as_f64(), lat["max"].as_f64()),
        (Some(1.0), Some(100.0))
    );
    assert_eq!(lat["mean"], 50.5);
    assert_eq!(lat["quantiles"]["0.5"], 50.0);
    assert_eq!(lat["quantiles"]["0.9"], 90.0);
    assert_eq!(lat["quantiles"]["0.99"], 99.0);
    let stddev = lat["stddev"].as_f64().unwrap();
    assert!((stddev - 833.25f64.sqrt()).abs() < 1e-9, "{stddev}");

    let req = &windows_holding(&daemon, &format!("{prefix}.req"))[0];
    assert_eq!(req["tags"], serde_json::json!(["env:prod"]));
    assert_eq!(req["type"], "counter");
    let rate = req["rate"].as_f64().unwrap();
    assert!((rate - 7.0 / 0.3).abs() < 1e-9, "{rate}");

    let size = &windows_holding(&daemon, &format!("{prefix}.size"))[0];
    assert_eq!(
        (size["type"].as_str(), size["sum"].as_f64()),
        (Some("histogram"), Some(60.0))
    );
    let dist = &windows_holding(&daemon, &format!("{prefix}.dist"))[0];
    assert_eq!(
        (dist["type"].as_str(), dist["max"].as_f64()),
        (Some("distribution"), Some(2.5))
    );

    let metrics = daemon.metrics();
    let p = prefix;
    assert_eq!(
        sample_in(&metrics, &format!("{p}_req_total{{env=\"prod\"}}")),
        Some(7.0)
    );
    assert_eq!(sample_in(&metrics, &format!("{p}_temp")), Some(21.5));
    assert_eq!(sample_in(&metrics, &format!("{p}_lat_sum")), Some(5050.0));
    assert_eq!(sample_in(&metrics, &format!("{p}_lat_count")), Some(100.0));
    assert!(metrics.contains(&format!("# TYPE {p}_lat summary")));
    assert!(metrics.contains(&format!("# TYPE {p}_req_total counter")));
}

#[test]
fn summaries_show_the_last_window_quantiles_and_nan_when_it_had_none() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    daemon.send(&["t:5|ms\nt:1|ms\nt:3|ms"]);
    daemon.wait_for("quantile of t", || {
        daemon.sample("t{quantile=\"0.5\"}") == Some(3.0)
    });
    // Windows keep closing; with no new samples the quantiles become NaN while
    // `_sum` and `_count` stay cumulative.
    daemon.wait_for("quantile of an empty window", || {
        daemon
            .sample("t{quantile=\"0.5\"}")
            .is_some_and(|v| v.is_nan())
    });
    assert_eq!(daemon.sample("t_sum"), Some(9.0));
    assert_eq!(daemon.sample("t_count"), Some(3.0));
}

#[test]
fn counters_accumulate_across_windows_and_tag_order_does_not_matter() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    daemon.send(&[
        "hits:1|c|#x:1,y:2\nhits:2|c|#y:2,x:1",
        "hits:4|c|@0.5|#y:2,x:1,x:1",
    ]);
    daemon.wait_for("hits to total 11", || {
        daemon.sample("hits_total{x=\"1\",y=\"2\"}") == Some(11.0)
    });
    daemon.send(&["hits:1|c|#x:1,y:2"]);
    daemon.wait_for("hits to total 12", || {
        daemon.sample("hits_total{x=\"1\",y=\"2\"}") == Some(12.0)
    });
    assert_eq!(daemon.metrics().matches("hits_total{").count(), 1);
}

#[test]
fn signed_gauges_adjust_in_statsd_mode() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    daemon.send(&["g:10|g\ng:+5|g\ng:-3|g\nfresh:-4|g"]);
    daemon.wait_for("g at 12", || daemon.sample("g") == Some(12.0));
    assert_eq!(daemon.sample("fresh"), Some(-4.0));
}

#[test]
fn signed_gauges_are_absolute_in_dogstatsd_mode() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\naggregation: {{ gauge_sign: dogstatsd }}"
    ));
    daemon.send(&["g:10|g\ng:+5|g\ng:-3|g"]);
    daemon.wait_for("g at -3", || daemon.sample("g") == Some(-3.0));
}

#[test]
fn configured_buckets_expose_a_prometheus_histogram() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\naggregation:\n  histograms:\n    - match: \"api.*\"\n      buckets: [0.1, 0.5, 1]"
    ));
    daemon.send(&["api.latency:0.05|h\napi.latency:0.5|h\napi.latency:0.7|h\napi.latency:3|h"]);
    daemon.wait_for("api_latency_count", || {
        daemon.sample("api_latency_count") == Some(4.0)
    });
    let metrics = daemon.metrics();
    assert!(metrics.contains("# TYPE api_latency histogram"));
    let bucket = |le: &str| sample_in(&metrics, &format!("api_latency_bucket{{le=\"{le}\"}}"));
    assert_eq!(bucket("0.1"), Some(1.0));
    assert_eq!(bucket("0.5"), Some(2.0));
    assert_eq!(bucket("1"), Some(3.0));
    assert_eq!(bucket("+Inf"), Some(4.0));
    assert_eq!(sample_in(&metrics, "api_latency_sum"), Some(4.25));
}

#[test]
fn series_over_the_limit_are_dropped_and_counted() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\nshards: 1\nlimits: {{ max_series: 2 }}"
    ));
    daemon.send(&["a:1|c\nb:1|c\nc:1|c\nc:1|c\na:1|c"]);
    daemon.wait_for("two series dropped", || {
        daemon.sample("tallyd_lines_dropped_total{reason=\"series_limit\"}") == Some(2.0)
    });
    daemon.wait_for("a at 2", || daemon.sample("a_total") == Some(2.0));
    assert_eq!(daemon.sample("c_total"), None);
    assert_eq!(daemon.sample("tallyd_series{shard=\"0\"}"), Some(2.0));
}

#[test]
fn idle_series_expire_after_the_ttl() {
    let daemon =
        Daemon::start("window: { interval: 100ms }\nshards: 1\nlimits: { series_idle_ttl: 300ms }");
    daemon.send(&["short.lived:1|g"]);
    daemon.wait_for("the gauge", || daemon.sample("short_lived") == Some(1.0));
    daemon.wait_for("the gauge to expire", || {
        daemon.sample("short_lived").is_none()
    });
    assert_eq!(
        daemon.sample("tallyd_series_expired_total{shard=\"0\"}"),
        Some(1.0)
    );
    assert_eq!(daemon.sample("tallyd_series{shard=\"0\"}"), Some(0.0));
}

#[test]
fn bad_lines_and_truncated_datagrams_are_counted_and_good_lines_kept() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\nlimits: {{ max_datagram_bytes: 64 }}"
    ));
    daemon.send(&[
        "ok:1|c\nnovalue|c\nx:1|q\ny:1|c|@2\n_e{1,1}:a|b\n_sc|db|0",
        // 80 bytes: the datagram is cut at 64, keeping two whole lines.
        "ok:1|c\nok:1|c\nthis.line.is.cut.by.the.datagram.limit.and.is.never.parsed:1|c",
    ]);
    daemon.wait_for("ok at 3", || daemon.sample("ok_total") == Some(3.0));
    let metrics = daemon.metrics();
    let rejected = |reason: &str| {
        sample_in(
            &metrics,
            &format!("tallyd_lines_rejected_total{{transport=\"udp\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("malformed"), Some(1.0));
    assert_eq!(rejected("unknown_type"), Some(1.0));
    assert_eq!(rejected("bad_sample_rate"), Some(1.0));
    assert_eq!(
        sample_in(&metrics, "tallyd_events_received_total{transport=\"udp\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_service_checks_received_total{transport=\"udp\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_datagrams_truncated_total{transport=\"udp\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample_in(&metrics, "tallyd_lines_dropped_total{reason=\"truncated\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample_in(&metrics, "tallyd_lines_received_total{transport=\"udp\"}"),
        Some(8.0)
    );
    assert_eq!(daemon.get("/healthz").0, 200);
}

#[test]
fn openmetrics_and_gzip_are_served_when_asked_for() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    daemon.send(&["jobs:2|c"]);
    daemon.wait_for("jobs", || daemon.sample("jobs_total") == Some(2.0));
    let agent = ureq::Agent::new_with_defaults();
    let url = format!("http://{}/metrics", daemon.http);
    let mut om = agent
        .get(&url)
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .call()
        .unwrap();
    let content_type = om.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"));
    let body = om.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("# TYPE jobs counter\njobs_total 2\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));

    let raw = std::net::TcpStream::connect(daemon.http).unwrap();
    let gzip = gzip_get(raw, "/metrics");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(sample_in(&text, "jobs_total"), Some(2.0));
}

/// A bare HTTP/1.1 GET asking for gzip; returns the body bytes undecoded.
fn gzip_get(mut stream: std::net::TcpStream, path: &str) -> Vec<u8> {
    use std::io::Write;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: tallyd\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(!head.contains("transfer-encoding: chunked"), "{head}");
    response[split + 4..].to_vec()
}

#[test]
fn the_rollups_api_filters_by_name_and_tags_and_refuses_bad_queries() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    daemon.send(&["q:1|c|#env:a,zone:1\nq:1|c|#env:b\nother:1|c|#env:a"]);
    daemon.wait_for("q{env=b}", || {
        daemon.sample("q_total{env=\"b\"}") == Some(1.0)
    });
    let series_in = |query: &str| -> usize {
        daemon.rollups(&format!("{query}&windows=100"))["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["series"].as_array().unwrap().len())
            .sum()
    };
    assert_eq!(series_in("name=q"), 2);
    assert_eq!(series_in("name=q&tag=env:a"), 1);
    assert_eq!(series_in("tag=env:a"), 2);
    assert_eq!(series_in("tag=env:a&tag=zone:1"), 1);
    assert_eq!(daemon.get("/api/v1/rollups?windows=0").0, 400);
    assert_eq!(daemon.get("/nope").0, 404);
}

#[test]
fn sigterm_publishes_the_open_window_and_exits_zero() {
    let daemon = Daemon::start("window: { interval: 1h }\nshards: 1");
    daemon.send(&["late:1|c\nlate:2|c"]);
    daemon.wait_for_lines(2);
    let (status, logs) = daemon.stop();
    assert!(status.success(), "{status}");
    let closed: Vec<&Value> = logs
        .iter()
        .filter(|e| e["message"] == "window closed")
        .collect();
    // The hour-long window was still open: only the shutdown closed it.
    assert_eq!(
        closed.last().map(|e| &e["series"]),
        Some(&Value::from(1)),
        "{logs:?}"
    );
    assert!(logs.iter().any(|e| e["message"] == "stopped"));
}

#[test]
fn logs_and_exports_the_kernel_backend_it_chose() {
    let chosen = |daemon: &Daemon| {
        let backend = daemon
            .logs()
            .into_iter()
            .find(|line| line["message"] == "kernel backend chosen")
            .map(|line| line["backend"].as_str().unwrap_or("").to_owned())
            .expect("the choice is logged");
        let exported = daemon.sample(&format!(
            "tallyd_kernel_backend_info{{backend=\"{backend}\"}}"
        ));
        assert_eq!(exported, Some(1.0), "{}", daemon.metrics());
        backend
    };
    let forced = Daemon::start("aggregation:\n  kernel: scalar\n");
    assert_eq!(chosen(&forced), "scalar");
    let automatic = Daemon::start("");
    assert_eq!(
        chosen(&automatic),
        tallyd::kernels::Backend::best().as_str()
    );
}

#[test]
fn gpu_force_computes_windows_on_the_gpu_with_the_reference_answers() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\nshards: 1\ngpu: {{ mode: force }}"
    ));
    let logs = daemon.logs();
    if !logs
        .iter()
        .any(|line| line["message"] == "GPU offload ready")
    {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "CI=true and no GPU adapter: {logs:?}");
        eprintln!("skipped: no GPU adapter");
        assert_eq!(
            daemon.sample("tallyd_kernel_gpu_info{state=\"unavailable\"}"),
            Some(1.0)
        );
        return;
    }
    let lines: Vec<String> = (1..=100).rev().map(|v| format!("gpu.t:{v}|ms")).collect();
    daemon.send(&[&lines.join("\n")]);
    daemon.wait_for("the window's quantiles", || {
        daemon.sample("gpu_t{quantile=\"0.5\"}") == Some(50.0)
    });
    assert_eq!(daemon.sample("gpu_t{quantile=\"0.9\"}"), Some(90.0));
    assert_eq!(daemon.sample("gpu_t{quantile=\"0.99\"}"), Some(99.0));
    assert_eq!(daemon.sample("gpu_t_sum"), Some(5050.0));
    assert_eq!(daemon.sample("gpu_t_count"), Some(100.0));
    let series = daemon.wait_for_series("gpu.t");
    assert_eq!(
        (series["min"].as_f64(), series["max"].as_f64()),
        (Some(1.0), Some(100.0))
    );
    let stddev = series["stddev"].as_f64().unwrap();
    assert!(
        (stddev - (9999.0f64 / 12.0).sqrt()).abs() < 1e-9,
        "stddev {stddev}"
    );
    assert!(daemon.sample("tallyd_kernel_gpu_windows_total") >= Some(1.0));
    assert_eq!(
        daemon.sample("tallyd_kernel_gpu_fallbacks_total"),
        Some(0.0)
    );
    assert_eq!(
        daemon.sample("tallyd_kernel_gpu_info{state=\"ready\"}"),
        Some(1.0)
    );
    assert!(daemon.sample("tallyd_kernel_gpu_upload_bytes_per_second") > Some(0.0));
}

#[test]
fn reload_applies_new_quantiles_from_a_window_on_and_refuses_a_broken_file() {
    let daemon = Daemon::start(&format!(
        "{SHORT_WINDOWS}\naggregation: {{ quantiles: [0.5] }}\n{LIFECYCLE}"
    ));
    let lines: Vec<String> = (1..=100).map(|v| format!("r.t:{v}|ms")).collect();
    let send = || daemon.send(&[&lines.join("\n")]);
    send();
    daemon.wait_for("the median", || {
        daemon.sample("r_t{quantile=\"0.5\"}") == Some(50.0)
    });
    assert_eq!(
        daemon.sample("tallyd_config_last_reload_success"),
        Some(1.0)
    );

    daemon.rewrite_config(&format!(
        "{SHORT_WINDOWS}\naggregation: {{ quantiles: [0.9] }}\n{LIFECYCLE}"
    ));
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 200, "{body}");
    let outcome: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        outcome["applied"],
        serde_json::json!(["aggregation.quantiles"])
    );
    assert_eq!(outcome["restart_required"], serde_json::json!([]));
    daemon.wait_for("the p90 of a later window", || {
        send();
        daemon.sample("r_t{quantile=\"0.9\"}") == Some(90.0)
    });
    assert_eq!(daemon.sample("r_t{quantile=\"0.5\"}"), None);

    // A broken file is refused; the daemon keeps its config and goes on.
    daemon.write_config_file("aggregation: { quantiles: [2] }\n");
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("quantiles"), "{body}");
    assert_eq!(
        daemon.sample("tallyd_config_last_reload_success"),
        Some(0.0)
    );
    send();
    daemon.wait_for("p90 still computed", || {
        daemon.sample("r_t{quantile=\"0.9\"}") == Some(90.0)
    });
    assert_eq!(daemon.get("/-/reload").0, 405);

    // SIGHUP reloads too, and names the keys that need a restart.
    daemon.rewrite_config(
        "window: { interval: 300ms, retain: 7 }\naggregation: { quantiles: [0.9] }",
    );
    daemon.signal(libc::SIGHUP);
    daemon.wait_for("the reload's log line", || {
        daemon.logs().iter().any(|line| {
            line["message"] == "config reloaded" && line["restart_required"] == "window.retain"
        })
    });
    assert_eq!(
        daemon.sample("tallyd_config_last_reload_success"),
        Some(1.0)
    );
    assert!(daemon.sample("tallyd_config_last_reload_success_timestamp_seconds") > Some(1.7e9));
}

/// Turns on `POST /-/reload`.
const LIFECYCLE: &str = "web: { enable_lifecycle: true }";

#[test]
fn reload_over_http_is_refused_unless_the_lifecycle_api_is_on() {
    let daemon = Daemon::start(SHORT_WINDOWS);
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("web.enable_lifecycle"), "{body}");
    assert_eq!(
        daemon.sample(r#"tallyd_http_requests_refused_total{reason="lifecycle_disabled"}"#),
        Some(1.0)
    );
    // SIGHUP still reloads, and can turn the API on.
    daemon.rewrite_config(&format!("{SHORT_WINDOWS}\n{LIFECYCLE}"));
    daemon.signal(libc::SIGHUP);
    daemon.wait_for("the reload's log line", || {
        daemon.logs().iter().any(|line| {
            line["message"] == "config reloaded" && line["applied"] == "web.enable_lifecycle"
        })
    });
    let (status, body) = daemon.post("/-/reload");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn healthcheck_command_passes_against_a_live_daemon_and_fails_without_one() {
    let daemon = Daemon::start("");
    let healthcheck = |addr: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tallyd"))
            .args(["healthcheck", "--addr", addr])
            .output()
            .expect("tallyd runs")
    };
    let live = healthcheck(&daemon.http.to_string());
    assert!(live.status.success(), "{live:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let dead = healthcheck(&nobody);
    assert!(!dead.status.success());
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("unhealthy"),
        "{dead:?}"
    );
}

/// The scheduling policy of each thread of `pid`, by thread name (field 41 of
/// /proc/PID/task/TID/stat: 0 normal, 5 idle).
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap();
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // Fields after the parenthesised name: state is field 3, policy 41.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let policy = after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap();
        out.push((name.trim().to_owned(), policy));
    }
    out
}

#[test]
fn shard_and_flush_threads_run_below_the_receivers_unless_told_otherwise() {
    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;
    for (config, below) in [("", SCHED_IDLE), ("shard_priority: normal", SCHED_OTHER)] {
        let daemon = Daemon::start(&format!(
            "shards: 2\nwindow: {{ interval: 200ms }}\n{config}"
        ));
        let of = |policies: &[(String, u32)], prefix: &str| -> Vec<u32> {
            policies
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, policy)| *policy)
                .collect()
        };
        // Each thread sets its own policy as it starts.
        daemon.wait_for("shard and flush threads at their policy", || {
            let policies = thread_policies(daemon.pid());
            of(&policies, "tallyd-shard-") == [below, below]
                && of(&policies, "tallyd-flush-") == [below, below]
        });
        let policies = thread_policies(daemon.pid());
        let receivers = of(&policies, "tallyd-udp-");
        assert!(!receivers.is_empty(), "{policies:?}");
        assert!(
            receivers.iter().all(|&p| p == SCHED_OTHER),
            "{config:?}: {policies:?}"
        );
        // Lines still arrive and windows close.
        daemon.send(&["priority.hits:1|c"]);
        daemon.wait_for_series("priority.hits");
    }
}
