//! Kernel throughput, every backend this CPU supports in one group per kernel.
//!
//! Run: `cargo bench --bench kernels` (add a filter such as `kernels/flush` for
//! one group). Each kernel runs over 1e3, 1e5 and 1e7 seeded timer-like values
//! (milliseconds, log-normal-ish with repeats); "kernels/native_keys" finds
//! their native histogram buckets at schema 3; "kernels/flush" completes a
//! window of 100,000 series of 100 samples each in the segmented form, as a
//! shard's flush does (moments, then p50/p90/p99). Every iteration's answer is
//! compared with the scalar reference computed up front, so a backend that
//! skips work fails the bench. Under `cargo test` (no `--bench`) only the small
//! sizes run, once, as a check.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tallyd::kernels::native::Layout;
use tallyd::kernels::{Backend, Kernels, Moments};

const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
const BOUNDS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Sizes to measure: all three under `cargo bench`, the small ones under `cargo test`.
fn sizes() -> &'static [usize] {
    if std::env::args().any(|arg| arg == "--bench") {
        &[1_000, 100_000, 10_000_000]
    } else {
        &[1_000, 100_000]
    }
}

/// The backends to compare: every one this CPU supports, scalar included.
fn backends() -> Vec<(Backend, Kernels)> {
    Backend::supported()
        .iter()
        .filter_map(|&b| Kernels::on(b).map(|k| (b, k)))
        .collect()
}

/// Timer-like values: a skewed spread of milliseconds with a tenth whole numbers.
fn timer_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
            if i % 10 == 0 {
                (uniform * 50.0).floor()
            } else {
                (uniform * 7.0).exp() - 1.0
            }
        })
        .collect()
}

fn bench_moments(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels/moments");
    for &n in sizes() {
        let values = timer_values(n, 1);
        let expected = Kernels::SCALAR.moments(&values);
        group.throughput(Throughput::Elements(n as u64));
        for (backend, kernels) in backends() {
            group.bench_with_input(BenchmarkId::new(backend.as_str(), n), &values, |b, v| {
                b.iter(|| {
                    let got = kernels.moments(black_box(v));
                    assert!(got.same_bits(&expected));
                    got
                })
            });
        }
    }
    group.finish();
}

fn bench_quantiles(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels/quantiles");
    for &n in sizes() {
        let values = timer_values(n, 2);
        let mut expected = [0.0; 3];
        Kernels::SCALAR.quantiles(&mut values.clone(), &QUANTILES, &mut expected);
        group.throughput(Throughput::Elements(n as u64));
        for (backend, kernels) in backends() {
            group.bench_with_input(BenchmarkId::new(backend.as_str(), n), &values, |b, v| {
                // Selection reorders its input: each iteration gets a fresh copy,
                // made outside the timing.
                b.iter_batched_ref(
                    || v.clone(),
                    |copy| {
                        let mut out = [0.0; 3];
                        kernels.quantiles(copy, &QUANTILES, &mut out);
                        assert_eq!(out, expected);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

fn bench_buckets(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels/buckets");
    for &n in sizes() {
        let values = timer_values(n, 3);
        let mut expected = [0; BOUNDS.len()];
        Kernels::SCALAR.cumulative_buckets(&values, &BOUNDS, &mut expected);
        group.throughput(Throughput::Elements(n as u64));
        for (backend, kernels) in backends() {
            group.bench_with_input(BenchmarkId::new(backend.as_str(), n), &values, |b, v| {
                b.iter(|| {
                    let mut out = [0; BOUNDS.len()];
                    kernels.cumulative_buckets(black_box(v), &BOUNDS, &mut out);
                    assert_eq!(out, expected);
                })
            });
        }
    }
    group.finish();
}

fn bench_native_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels/native_keys");
    let layout = Layout::of(3);
    for &n in sizes() {
        let values = timer_values(n, 6);
        let mut expected = vec![0; n];
        Kernels::SCALAR.native_keys(&values, layout, 0.0, &mut expected);
        group.throughput(Throughput::Elements(n as u64));
        for (backend, kernels) in backends() {
            group.bench_with_input(BenchmarkId::new(backend.as_str(), n), &values, |b, v| {
                let mut keys = vec![0; n];
                b.iter(|| {
                    kernels.native_keys(black_box(v), layout, 0.0, &mut keys);
                    assert!(keys == expected);
                })
            });
        }
    }
    group.finish();
}

fn bench_distinct(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels/distinct");
    for &n in sizes() {
        // Member hashes with about one distinct member in four.
        let hashes: Vec<u64> = timer_values(n, 4)
            .iter()
            .map(|x| x.to_bits().wrapping_mul(0x9E37_79B9_7F4A_7C15) % (n as u64 / 4 + 1))
            .map(|k| k.wrapping_mul(0xD6E8_FEB8_6659_FD93))
            .collect();
        let expected = Kernels::SCALAR.distinct_count(&mut hashes.clone());
        group.throughput(Throughput::Elements(n as u64));
        for (backend, kernels) in backends() {
            group.bench_with_input(BenchmarkId::new(backend.as_str(), n), &hashes, |b, h| {
                b.iter_batched_ref(
                    || h.clone(),
                    |copy| assert_eq!(kernels.distinct_count(copy), expected),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

/// What a flush computes for a window: moments, then quantiles, per series.
fn flush(
    kernels: Kernels,
    values: &mut [f64],
    offsets: &[usize],
    moments: &mut [Moments],
    quantiles: &mut [f64],
) {
    kernels.moments_segmented(values, offsets, moments);
    kernels.quantiles_segmented(values, offsets, &QUANTILES, quantiles);
}

fn bench_flush(c: &mut Criterion) {
    let series = if sizes().len() == 3 { 100_000 } else { 1_000 };
    let values = timer_values(series * 100, 5);
    // 100 samples a series on average: lengths 50..150, all within the buffer.
    let mut offsets = vec![0];
    for i in 0..series {
        let len = 50 + (i * 7919) % 101;
        offsets.push((offsets[i] + len).min(values.len()));
    }
    *offsets.last_mut().unwrap_or(&mut 0) = values.len();
    let segments = offsets.len() - 1;
    let mut expected_moments = vec![Moments::EMPTY; segments];
    let mut expected_quantiles = vec![0.0; segments * QUANTILES.len()];
    flush(
        Kernels::SCALAR,
        &mut values.clone(),
        &offsets,
        &mut expected_moments,
        &mut expected_quantiles,
    );

    let mut group = c.benchmark_group("kernels/flush");
    group.throughput(Throughput::Elements(values.len() as u64));
    for (backend, kernels) in backends() {
        let id = BenchmarkId::new(backend.as_str(), format!("{series}x100"));
        group.bench_with_input(id, &values, |b, v| {
            let mut moments = vec![Moments::EMPTY; segments];
            let mut quantiles = vec![0.0; segments * QUANTILES.len()];
            b.iter_batched_ref(
                || v.clone(),
                |copy| {
                    flush(kernels, copy, &offsets, &mut moments, &mut quantiles);
                    assert!(
                        moments
                            .iter()
                            .zip(&expected_moments)
                            .all(|(a, b)| a.same_bits(b))
                    );
                    assert_eq!(quantiles, expected_quantiles);
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_moments, bench_quantiles, bench_buckets, bench_native_keys, bench_distinct, bench_flush
}
criterion_main!(benches);
