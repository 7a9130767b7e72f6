//! A shard applying batches: the map probe and state update every sample costs,
//! and what a series costs when it first arrives.
//!
//! Run: `cargo bench --bench apply`. One shard of two holds the counter series
//! whose keys route to it (about 50,000 of 100,000, each named
//! `app.requests.N` with three tags, as a busy host sends them): `known` applies
//! ten samples to each series already held, the steady state where at 100k
//! series every probe misses the cache; `new` applies one sample to each into
//! an empty shard, so each creates its series (name and labels rendered, map
//! grown). Building the batches is set-up, not measured. Every iteration checks
//! the shard holds every series. Under `cargo test` it runs once at 1,000
//! series, as a check.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tallyd::codec::{Decoder, Message};
use tallyd::config::Config;
use tallyd::kernels::Kernels;
use tallyd::series::KeyHasher;
use tallyd::shard::{Batch, ShardSettings, ShardState, WindowSamples};
use tallyd::telemetry::Telemetry;

const SHARDS: usize = 2;
const SAMPLES_PER_SERIES: usize = 10;

fn series_count() -> usize {
    if std::env::args().any(|arg| arg == "--bench") {
        100_000
    } else {
        1_000
    }
}

/// Batches holding `rounds` samples of each of `series` counter series whose
/// keys route to shard 0 of `SHARDS`, and how many series that is.
fn counter_batches(series: usize, rounds: usize) -> (Vec<Batch>, usize) {
    let decoder = Decoder::new(65_535);
    let mut hasher = KeyHasher::new();
    let mut out = vec![Batch::with_capacity()];
    let mut held = 0;
    for round in 0..rounds {
        let mut text = String::new();
        for s in 0..series {
            let host = s % 50;
            text.push_str(&format!(
                "app.requests.{s}:{round}|c|#env:prod,service:checkout,host:web-{host}\n"
            ));
        }
        for message in decoder.lines(text.as_bytes()) {
            let Ok(Message::Metric(m)) = message else {
                panic!("not a metric line")
            };
            let key = hasher.key(m.kind, m.name, m.tags);
            if key.shard(SHARDS) != 0 {
                continue;
            }
            held += usize::from(round == 0);
            if !out.last_mut().expect("one batch").push(key, &m) {
                out.push(Batch::with_capacity());
                assert!(out.last_mut().expect("one batch").push(key, &m));
            }
        }
    }
    (out, held)
}

fn shard() -> ShardState {
    let settings = ShardSettings::from_config(&Config::default(), SHARDS, Kernels::default());
    ShardState::new(0, settings, Arc::new(Telemetry::new(SHARDS)))
}

fn bench_apply(c: &mut Criterion) {
    let series = series_count();
    let mut group = c.benchmark_group("apply");
    let mut window = WindowSamples::default();

    let (batches, held) = counter_batches(series, SAMPLES_PER_SERIES);
    let mut state = shard();
    state.begin_window(&mut window);
    for batch in &batches {
        state.apply(&mut window, batch);
    }
    group.throughput(Throughput::Elements((held * SAMPLES_PER_SERIES) as u64));
    group.bench_function(
        BenchmarkId::new("known", format!("{series}_counters")),
        |b| {
            b.iter(|| {
                for batch in black_box(&batches) {
                    state.apply(&mut window, batch);
                }
                assert_eq!(state.series_count(), held);
            })
        },
    );

    let (firsts, held) = counter_batches(series, 1);
    group.throughput(Throughput::Elements(held as u64));
    group.bench_function(BenchmarkId::new("new", format!("{series}_counters")), |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                let mut state = shard();
                state.begin_window(&mut window);
                let started = Instant::now();
                for batch in black_box(&firsts) {
                    state.apply(&mut window, batch);
                }
                measured += started.elapsed();
                assert_eq!(state.series_count(), held);
            }
            measured
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_apply
}
criterion_main!(benches);
