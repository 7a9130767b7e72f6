//! Each push sink's work per window at 100,000 series, on its own thread:
//! - remote write: turning the closed window into samples (the `/metrics`
//!   view with external labels), then encoding them as requests of
//!   `max_samples_per_send` (2,000) and compressing each with snappy, in both
//!   protocols;
//! - Graphite: the window as carbon plaintext lines (Etsy StatsD's names,
//!   Graphite tags);
//! - OTLP: the window as encoded data points (cumulative), then requests of
//!   5,000 points (before gzip).
//!
//! Run: `cargo bench --bench sinks`. The window holds 40,000 counters,
//! 30,000 gauges and 30,000 timers of 10 samples (each timer is p50, p90, p99,
//! `_sum` and `_count`): about 220,000 samples, two labels each plus `host`.
//! Building the window is set-up, not measured. Before measuring, it prints
//! the bytes per sample before and after snappy and checks that the 1.0
//! bodies and the OTLP requests decode to every sample. Under `cargo test` it runs once at 1,000
//! series, as a check. It allocates with jemalloc, as the daemon does.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use tallyd::codec::{Decoder, Message as Line};
use tallyd::config::{Config, parse};
use tallyd::kernels::Kernels;
use tallyd::series::KeyHasher;
use tallyd::shard::{
    Batch, Completion, FlushScratch, NativeBook, ShardSettings, ShardState, WindowSamples,
};
use tallyd::sinks::delivery::Encoder;
use tallyd::sinks::otlp::{Points, RequestHead};
use tallyd::sinks::remote_write::proto::WriteRequest;
use tallyd::sinks::remote_write::{Point, compress, encode_v1, encode_v2};
use tallyd::sinks::{GraphiteSink, RemoteWriteSink};
use tallyd::store::{Store, WindowBounds, WindowSnapshot};
use tallyd::telemetry::Telemetry;

#[cfg(all(feature = "jemalloc", not(feature = "dhat-heap")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PER_SEND: usize = 2_000;

fn series_count() -> usize {
    if std::env::args().any(|arg| arg == "--bench") {
        100_000
    } else {
        1_000
    }
}

const CONFIG: &str = "
external_labels: { host: node-a }
remote_write:
  - url: http://127.0.0.1:9/api/v1/write
graphite:
  - address: 127.0.0.1:9
otlp_export:
  - endpoint: http://127.0.0.1:10
";

/// A closed window of `series` series: 40% counters, 30% gauges, 30% timers.
fn window(config: &Config, series: usize) -> WindowSnapshot {
    let counters = series * 4 / 10;
    let gauges = series * 3 / 10;
    let timers = series - counters - gauges;
    let mut text = String::new();
    for i in 0..counters {
        text.push_str(&format!("api.requests.{i}:1|c|#code:200,env:prod\n"));
    }
    for i in 0..gauges {
        text.push_str(&format!("queue.depth.{i}:{i}|g|#pool:a,env:prod\n"));
    }
    for sample in 0..10 {
        for i in 0..timers {
            text.push_str(&format!(
                "api.latency.{i}:{}.{sample}|ms|#route:x,env:prod\n",
                i % 97
            ));
        }
    }
    let decoder = Decoder::new(65_535);
    let mut hasher = KeyHasher::new();
    let mut batches = vec![Batch::with_capacity()];
    for line in decoder.lines(text.as_bytes()) {
        let Ok(Line::Metric(m)) = line else {
            panic!("not a metric line")
        };
        let key = hasher.key(m.kind, m.name, m.tags);
        if !batches.last_mut().expect("one batch").push(key, &m) {
            batches.push(Batch::with_capacity());
            assert!(batches.last_mut().expect("one batch").push(key, &m));
        }
    }
    let settings = ShardSettings::from_config(config, 1, Kernels::default());
    let mut state = ShardState::new(0, settings, Arc::new(Telemetry::new(1)));
    let mut samples = WindowSamples::default();
    state.begin_window(&mut samples);
    for batch in &batches {
        state.apply(&mut samples, batch);
    }
    let bounds = WindowBounds {
        start_unix_ms: 0,
        end_unix_ms: 10_000,
    };
    let closed = state.close(&samples, bounds);
    let quantiles = closed.quantiles.clone();
    let rollups = closed.complete(
        &samples,
        &Completion::default(),
        &mut FlushScratch::default(),
        &mut NativeBook::default(),
    );
    let store = Store::new(1, 1);
    store.publish(bounds, quantiles, rollups);
    let window = store.latest().expect("the window published");
    assert_eq!(window.series.len(), series);
    (*window).clone()
}

/// Every request body of `points`, compressed; returns the bytes before and after.
fn encode_all(points: &[Point], v2: bool, buf: &mut Vec<u8>) -> (usize, usize) {
    let (mut raw, mut compressed) = (0, 0);
    for chunk in points.chunks(PER_SEND) {
        if v2 {
            encode_v2(chunk, buf);
        } else {
            encode_v1(chunk, buf);
        }
        raw += buf.len();
        compressed += compress(buf).len();
    }
    (raw, compressed)
}

fn bench_remote_write(c: &mut Criterion) {
    let series = series_count();
    let config: Config = parse(CONFIG, "bench.yaml").expect("valid config");
    let window = window(&config, series);
    let telemetry = Arc::new(Telemetry::new(1));
    let stats = telemetry.sinks.register("bench".to_owned());
    let sink = RemoteWriteSink::new(
        &config.remote_write[0],
        &config.external_labels,
        telemetry,
        stats,
    )
    .expect("a sink");
    let points = sink.points(&window, Some(&window));

    // What a window costs on the wire, and a check that it all decodes.
    let mut buf = Vec::new();
    let mut decoded = 0;
    for chunk in points.chunks(PER_SEND) {
        encode_v1(chunk, &mut buf);
        decoded += WriteRequest::decode(&buf[..])
            .expect("1.0 body")
            .timeseries
            .len();
    }
    assert_eq!(decoded, points.len());
    for (name, v2) in [("1.0", false), ("2.0", true)] {
        let (raw, compressed) = encode_all(&points, v2, &mut buf);
        eprintln!(
            "remote_write {name}: {} series, {} samples, {:.1} bytes/sample before snappy, {:.1} after",
            series,
            points.len(),
            raw as f64 / points.len() as f64,
            compressed as f64 / points.len() as f64,
        );
    }

    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(series as u64));
    group.bench_function(BenchmarkId::new("points", series), |b| {
        b.iter(|| sink.points(&window, Some(&window)).len())
    });
    for (name, v2) in [("encode_v1_snappy", false), ("encode_v2_snappy", true)] {
        group.bench_function(BenchmarkId::new(name, series), |b| {
            b.iter(|| encode_all(&points, v2, &mut buf))
        });
    }
    group.finish();
}

fn bench_graphite(c: &mut Criterion) {
    let series = series_count();
    let config: Config = parse(CONFIG, "bench.yaml").expect("valid config");
    let window = window(&config, series);
    let telemetry = Arc::new(Telemetry::new(1));
    let stats = telemetry.sinks.register("graphite".to_owned());
    let sink = GraphiteSink::new(&config.graphite[0], telemetry, stats);
    let lines = sink.lines(&window);
    // Two per counter, one per gauge, 7 + 3 quantiles per timer.
    let user = lines
        .iter()
        .filter(|l| !l.0.starts_with("stats.tallyd."))
        .count();
    assert_eq!(
        user,
        series * 4 / 10 * 2 + series * 3 / 10 + series * 3 / 10 * 10
    );
    let bytes: usize = lines.iter().map(|l| l.0.len()).sum();
    eprintln!(
        "graphite: {series} series, {} lines, {:.1} bytes/line",
        lines.len(),
        bytes as f64 / lines.len() as f64
    );
    let mut group = c.benchmark_group("graphite");
    group.throughput(Throughput::Elements(series as u64));
    group.bench_function(BenchmarkId::new("lines", series), |b| {
        b.iter(|| sink.lines(&window).len())
    });
    group.finish();
}

fn bench_otlp(c: &mut Criterion) {
    const OTLP_PER_SEND: usize = 5_000;
    let series = series_count();
    let config: Config = parse(CONFIG, "bench.yaml").expect("valid config");
    let window = window(&config, series);
    let otlp = &config.otlp_export[0];
    let encoder = Points::new(otlp.temporality);
    let head = RequestHead::new(otlp.resource_attributes.iter(), otlp.temporality);
    let points = encoder.encode(&window, None);
    assert_eq!(points.len(), series);
    let (mut decoded, mut raw) = (0, 0);
    for chunk in points.chunks(OTLP_PER_SEND) {
        let body = head.request(chunk);
        raw += body.len();
        let request = ExportMetricsServiceRequest::decode(&body[..]).expect("an OTLP request");
        for metric in &request.resource_metrics[0].scope_metrics[0].metrics {
            decoded += match &metric.data {
                Some(Data::Sum(d)) => d.data_points.len(),
                Some(Data::Gauge(d)) => d.data_points.len(),
                Some(Data::Histogram(d)) => d.data_points.len(),
                Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
                _ => 0,
            };
        }
    }
    assert_eq!(decoded, points.len());
    eprintln!(
        "otlp: {series} series, {} points, {:.1} bytes/point before gzip",
        points.len(),
        raw as f64 / points.len() as f64
    );
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(series as u64));
    group.bench_function(BenchmarkId::new("points", series), |b| {
        b.iter(|| encoder.encode(&window, None).len())
    });
    group.bench_function(BenchmarkId::new("requests", series), |b| {
        b.iter(|| {
            points
                .chunks(OTLP_PER_SEND)
                .map(|chunk| head.request(chunk).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(10))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_remote_write, bench_graphite, bench_otlp
}
criterion_main!(benches);
