//! Window flush on the scalar reference, the SIMD backend and the GPU, in one
//! group per window shape, to find where the GPU starts to pay.
//!
//! Run: `cargo bench --bench gpu`. Windows of 1e5, 1e6, 1e7 and 1e8 samples,
//! either one series or 100,000 series (fewer when the window is smaller: at
//! least one sample each), get moments and p50/p90/p99, as a shard's flush
//! computes them. The CPU backends select in place, so each of their
//! iterations starts from a fresh copy (made outside the timing); the GPU's
//! time includes the upload and the readback. `TALLYD_GPU_BENCH_MAX_SAMPLES`
//! caps the window size (a 1e8 window needs about 3 GiB of host memory).
//! Every GPU answer is compared with the scalar reference's quantiles, so a
//! backend that skips work fails the bench. Under `cargo test` (no `--bench`)
//! only the smallest window runs, once, as a check. Without an adapter the GPU
//! line says "skipped: no GPU adapter" and the CPU lines still run.

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use tallyd::gpu::{GpuKernels, Outputs, Request};
use tallyd::kernels::{Backend, Kernels, Moments};

const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

fn sizes() -> Vec<usize> {
    let all = [100_000, 1_000_000, 10_000_000, 100_000_000];
    if !std::env::args().any(|arg| arg == "--bench") {
        return vec![all[0]];
    }
    let cap = std::env::var("TALLYD_GPU_BENCH_MAX_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    all.into_iter().filter(|&n| n <= cap).collect()
}

/// Seeded timer-like values: milliseconds with a long tail.
fn window(samples: usize, series: usize) -> (Vec<f64>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(samples as u64 ^ series as u64);
    let values = (0..samples)
        .map(|_| (rng.random::<f64>() * 6.0).exp().round())
        .collect();
    let offsets = (0..=series).map(|i| i * samples / series).collect();
    (values, offsets)
}

fn cpu_flush(kernels: Kernels, values: &mut [f64], offsets: &[usize]) -> Vec<f64> {
    let segments = offsets.len() - 1;
    let mut moments = vec![Moments::EMPTY; segments];
    kernels.moments_segmented(values, offsets, &mut moments);
    let mut quantiles = vec![0.0; segments * QUANTILES.len()];
    kernels.quantiles_segmented(values, offsets, &QUANTILES, &mut quantiles);
    quantiles
}

fn gpu_flush(gpu: &mut GpuKernels, values: &[f64], offsets: &[usize]) -> Vec<f64> {
    let segments = offsets.len() - 1;
    let mut moments = vec![Moments::EMPTY; segments];
    let mut quantiles = vec![0.0; segments * QUANTILES.len()];
    let request = Request {
        values,
        offsets,
        quantiles: &QUANTILES,
        bounds: &[],
    };
    let out = Outputs {
        moments: &mut moments,
        quantiles: &mut quantiles,
        buckets: &mut [],
    };
    gpu.run(request, out).expect("the GPU computes the window");
    quantiles
}

fn flush(c: &mut Criterion) {
    let mut gpu = match GpuKernels::open(Duration::from_secs(600), true) {
        Ok(gpu) => {
            eprintln!("GPU: {}", gpu.adapter());
            Some(gpu)
        }
        Err(e) => {
            eprintln!("skipped: no GPU adapter ({e})");
            None
        }
    };
    let simd = Kernels::default();
    let mut cpu_backends = vec![("scalar", Kernels::SCALAR)];
    if simd.backend() != Backend::Scalar {
        cpu_backends.push((simd.backend().as_str(), simd));
    }
    for series in [1, 100_000] {
        let mut group = c.benchmark_group(format!("gpu/flush/{series}_series"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500));
        for samples in sizes() {
            let (values, offsets) = window(samples, series.min(samples));
            let expected = cpu_flush(Kernels::SCALAR, &mut values.clone(), &offsets);
            group.throughput(Throughput::Elements(samples as u64));
            for &(name, kernels) in &cpu_backends {
                group.bench_with_input(BenchmarkId::new(name, samples), &values, |b, values| {
                    b.iter_batched_ref(
                        || values.clone(),
                        |scratch| cpu_flush(kernels, scratch, &offsets),
                        BatchSize::PerIteration,
                    );
                });
            }
            if let Some(gpu) = gpu.as_mut() {
                assert_eq!(gpu_flush(gpu, &values, &offsets), expected, "GPU quantiles");
                group.bench_with_input(BenchmarkId::new("gpu", samples), &values, |b, values| {
                    b.iter(|| gpu_flush(gpu, values, &offsets));
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, flush);
criterion_main!(benches);
