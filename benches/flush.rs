//! The cost of a window close at 100,000 timer series, with and without native
//! histograms: what a shard's flush thread does once per window.
//!
//! Run: `cargo bench --bench flush`. One shard holds 100,000 timer series of 30
//! samples each (3 M samples, a full window at 100k series and about 1 M timer
//! lines/s); each iteration closes the window (O(series), on the shard thread)
//! and completes it (moments, p50/p90/p99 and, with native histograms, the
//! bucket-key kernel and the cumulative histograms), dropping the window
//! before it as the store does. Filling the window is set-up, not measured.
//! Every iteration checks that each series came back with 30 samples (and a
//! native histogram holding them). Under `cargo test` it runs once at 1,000
//! series, as a check.
//!
//! `summaries_shard_part` times the shard thread's share alone (`close`): the
//! time its queue waits at each window end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tallyd::codec::{Decoder, Message};
use tallyd::config::{Config, parse};
use tallyd::kernels::Kernels;
use tallyd::series::KeyHasher;
use tallyd::shard::{
    Batch, Completion, FlushScratch, NativeBook, ShardSettings, ShardState, WindowSamples,
};
use tallyd::store::{Rollup, SeriesRollup, WindowBounds};
use tallyd::telemetry::Telemetry;

const SAMPLES_PER_SERIES: usize = 30;

fn series_count() -> usize {
    if std::env::args().any(|arg| arg == "--bench") {
        100_000
    } else {
        1_000
    }
}

/// Batches holding `SAMPLES_PER_SERIES` timer samples of each of `series` series.
fn batches(series: usize) -> Vec<Batch> {
    let decoder = Decoder::new(65_535);
    let mut hasher = KeyHasher::new();
    let mut out = vec![Batch::with_capacity()];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..SAMPLES_PER_SERIES {
        let mut text = String::new();
        for s in 0..series {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let ms = ((state >> 11) as f64 / (1u64 << 53) as f64 * 7.0).exp();
            text.push_str(&format!("api.latency.{s}:{ms:.3}|ms\n"));
        }
        for message in decoder.lines(text.as_bytes()) {
            let Ok(Message::Metric(m)) = message else {
                panic!("not a metric line")
            };
            let key = hasher.key(m.kind, m.name, m.tags);
            if !out.last_mut().expect("one batch").push(key, &m) {
                out.push(Batch::with_capacity());
                assert!(out.last_mut().expect("one batch").push(key, &m));
            }
        }
    }
    out
}

fn bounds(n: u64) -> WindowBounds {
    WindowBounds {
        start_unix_ms: n * 10_000,
        end_unix_ms: (n + 1) * 10_000,
    }
}

fn check(rollups: &[SeriesRollup], series: usize, native: bool) {
    assert_eq!(rollups.len(), series);
    for rollup in rollups {
        let Rollup::Samples(samples) = &rollup.rollup else {
            panic!("not a timer")
        };
        let window = samples.window.as_ref().expect("samples in the window");
        assert_eq!(window.count, SAMPLES_PER_SERIES as f64);
        if native {
            let histogram = samples.native.as_ref().expect("a native histogram");
            let counted: f64 = histogram.positive.iter().map(|&(_, c)| c).sum();
            assert_eq!(counted, histogram.count);
        }
    }
}

fn bench_window_close(c: &mut Criterion) {
    let series = series_count();
    let batches = batches(series);
    let mut group = c.benchmark_group("flush/window_close");
    group.throughput(Throughput::Elements((series * SAMPLES_PER_SERIES) as u64));
    for (name, yaml, shard_part_only) in [
        ("summaries", "", false),
        ("summaries_shard_part", "", true),
        (
            "native_histograms",
            "aggregation: { native_histograms: { enabled: true } }",
            false,
        ),
    ] {
        let config: Config = parse(yaml, "bench.yaml").expect("valid config");
        let native = config.aggregation.native_histograms.enabled;
        let settings = ShardSettings::from_config(&config, 1, Kernels::default());
        let mut state = ShardState::new(0, settings, Arc::new(Telemetry::new(1)));
        let mut window = WindowSamples::default();
        let (mut scratch, mut book) = (FlushScratch::default(), NativeBook::default());
        // The last window's rollups stay alive, as in the store, so a native
        // histogram is copied before a window adds to it.
        let mut retained: Vec<SeriesRollup> = Vec::new();
        let mut n = 0;
        let id = BenchmarkId::new(name, format!("{series}x{SAMPLES_PER_SERIES}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iterations| {
                let mut measured = Duration::ZERO;
                for _ in 0..iterations {
                    n += 1;
                    state.begin_window(&mut window);
                    for batch in &batches {
                        state.apply(&mut window, batch);
                    }
                    let started = Instant::now();
                    let closed = state.close(&window, bounds(n));
                    if shard_part_only {
                        measured += started.elapsed();
                    }
                    let completion = Completion::default();
                    let rollups = closed.complete(&window, &completion, &mut scratch, &mut book);
                    retained = rollups;
                    if !shard_part_only {
                        measured += started.elapsed();
                    }
                    check(&retained, series, native);
                }
                measured
            })
        });
    }
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
    targets = bench_window_close
}
criterion_main!(benches);
