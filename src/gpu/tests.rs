//! The kernels' property-test harness, instantiated for the GPU backend.
//!
//! The strategies are the SIMD backends' (`kernels::tests`); the reference is
//! the scalar backend. Counts, extremes, quantiles and bucket counts must be
//! identical; sums must lie within the stated bounds of both backends
//! ([`sum_error_bound`] and the reference's lane bound). Without an adapter
//! every test says "skipped: no GPU adapter" on stderr and passes, except
//! under `CI=true`, where a missing adapter fails: CI installs lavapipe.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use proptest::prelude::*;

use super::{GpuKernels, Outputs, Request, sum_error_bound};
use crate::kernels::Moments;
use crate::kernels::scalar;
use crate::kernels::tests::{
    adversarial_value, bits, bounds_for, offsets_for, quantile_list, seeded_values, series,
};

/// The engine every test shares (opening a device per test is slow), or
/// `None` with a loud line when there is no adapter.
fn engine() -> Option<MutexGuard<'static, GpuKernels>> {
    static ENGINE: OnceLock<Option<Mutex<GpuKernels>>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| match GpuKernels::open(Duration::from_secs(120), true) {
        Ok(engine) => {
            eprintln!("GPU tests run on {}", engine.adapter());
            Some(Mutex::new(engine))
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and no usable GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no GPU adapter ({e})");
            None
        }
    });
    let engine = engine.as_ref()?;
    Some(engine.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Everything the GPU computes for one window.
struct Results {
    moments: Vec<Moments>,
    quantiles: Vec<f64>,
    buckets: Vec<u64>,
}

fn run(
    gpu: &mut GpuKernels,
    values: &[f64],
    offsets: &[usize],
    qs: &[f64],
    bounds: &[f64],
) -> Results {
    let segments = offsets.len() - 1;
    let mut results = Results {
        moments: vec![Moments::EMPTY; segments],
        quantiles: vec![-1.0; segments * qs.len()],
        buckets: vec![u64::MAX; segments * bounds.len()],
    };
    gpu.run(
        Request {
            values,
            offsets,
            quantiles: qs,
            bounds,
        },
        Outputs {
            moments: &mut results.moments,
            quantiles: &mut results.quantiles,
            buckets: &mut results.buckets,
        },
    )
    .expect("the GPU computes the window");
    results
}

/// Checks one segment's GPU results against the reference; `Err` says how
/// they differ.
fn check_segment(
    series: &[f64],
    got: &Results,
    index: usize,
    qs: &[f64],
    bounds: &[f64],
) -> Result<(), String> {
    let expected = scalar::moments(series);
    let moments = got.moments[index];
    let exact = (moments.count, moments.min.to_bits(), moments.max.to_bits());
    if exact
        != (
            expected.count,
            expected.min.to_bits(),
            expected.max.to_bits(),
        )
    {
        return Err(format!("moments {moments:?} != {expected:?}"));
    }
    let magnitude: f64 = series.iter().map(|x| x.abs()).sum();
    if magnitude.is_finite() {
        let reference_bound =
            (series.len().div_ceil(16) as f64 + 4.0) * f64::EPSILON / 2.0 * magnitude;
        let allowed = sum_error_bound(series.len(), magnitude) + reference_bound;
        if (moments.sum - expected.sum).abs() > allowed {
            return Err(format!(
                "sum {} != {} (allowed {allowed})",
                moments.sum, expected.sum
            ));
        }
    }
    let mut expected_quantiles = vec![0.0; qs.len()];
    scalar::quantiles(&mut series.to_vec(), qs, &mut expected_quantiles);
    let quantiles = &got.quantiles[index * qs.len()..(index + 1) * qs.len()];
    if bits(quantiles) != bits(&expected_quantiles) {
        return Err(format!("quantiles {quantiles:?} != {expected_quantiles:?}"));
    }
    let mut expected_buckets = vec![0; bounds.len()];
    scalar::cumulative_buckets(series, bounds, &mut expected_buckets);
    let buckets = &got.buckets[index * bounds.len()..(index + 1) * bounds.len()];
    if buckets != expected_buckets {
        return Err(format!("buckets {buckets:?} != {expected_buckets:?}"));
    }
    Ok(())
}

/// Runs a window and checks every segment.
fn check_window(
    gpu: &mut GpuKernels,
    values: &[f64],
    offsets: &[usize],
    qs: &[f64],
    bounds: &[f64],
) -> Result<(), String> {
    let got = run(gpu, values, offsets, qs, bounds);
    for (i, segment) in offsets.windows(2).enumerate() {
        check_segment(&values[segment[0]..segment[1]], &got, i, qs, bounds).map_err(|e| {
            format!(
                "segment {i} of {} ({} values): {e}",
                offsets.len() - 1,
                segment[1] - segment[0]
            )
        })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_series_matches_the_reference(
        (buffer, skip) in series(),
        qs in quantile_list(),
        extra in proptest::collection::vec(adversarial_value(), 1..20),
    ) {
        let Some(mut gpu) = engine() else { return Ok(()) };
        let values = &buffer[skip..];
        let bounds = bounds_for(values, &extra);
        let result = check_window(&mut gpu, values, &[0, values.len()], &qs, &bounds);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn segmented_windows_match_the_reference(
        (buffer, skip) in series(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        qs in quantile_list(),
    ) {
        let Some(mut gpu) = engine() else { return Ok(()) };
        let values = &buffer[skip..];
        let offsets = offsets_for(values.len(), &cuts);
        let bounds = bounds_for(values, &[0.0, 1.0]);
        let result = check_window(&mut gpu, values, &offsets, &qs, &bounds);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// The GPU sum's error against the exact sum stays within
    /// [`sum_error_bound`]; values are multiples of 2^-20 below 2^30, so their
    /// exact sum is an integer count of 2^-20 in an i128.
    #[test]
    fn sum_error_is_within_the_stated_bound(
        numerators in proptest::collection::vec(-(1i64 << 50)..(1i64 << 50), 1..20_000),
    ) {
        let Some(mut gpu) = engine() else { return Ok(()) };
        let scale = (-20f64).exp2();
        let values: Vec<f64> = numerators.iter().map(|&k| k as f64 * scale).collect();
        let exact: i128 = numerators.iter().map(|&k| i128::from(k)).sum();
        let got = run(&mut gpu, &values, &[0, values.len()], &[], &[]).moments[0].sum;
        let error = (got - exact as f64 * scale).abs();
        let magnitude: f64 = values.iter().map(|x| x.abs()).sum();
        let bound = sum_error_bound(values.len(), magnitude);
        prop_assert!(error <= bound + got.abs() * f64::EPSILON, "error {error} > bound {bound}");
    }
}

#[test]
fn large_series_match_the_reference() {
    let Some(mut gpu) = engine() else { return };
    let qs = [0.5, 0.9, 0.99, 0.999, 1.0, 0.0001];
    let bounds: Vec<f64> = (0..20).map(|i| f64::from(i) * 50.0 - 500.0).collect();
    for n in [65_537, 1_000_003] {
        let values = seeded_values(n, n as u64);
        check_window(&mut gpu, &values, &[0, n], &qs, &bounds).unwrap();
    }
}

#[test]
fn all_equal_and_two_valued_series_match_the_reference() {
    let Some(mut gpu) = engine() else { return };
    let qs = [0.0001, 0.3333, 0.5, 0.6667, 1.0];
    for values in [
        vec![3.0; 10_000],
        (0..10_000).map(|i| f64::from(i % 2)).collect(),
        (0..10_000)
            .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
            .collect::<Vec<f64>>(),
        (0..500)
            .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
            .collect::<Vec<f64>>(),
    ] {
        check_window(
            &mut gpu,
            &values,
            &[0, values.len()],
            &qs,
            &[-0.0, 0.0, 1.0],
        )
        .unwrap();
    }
}

/// Windows cut into several chunks, parts and radix groups give the same
/// answers as whole ones.
#[test]
fn chunked_parts_and_grouped_selection_match_the_reference() {
    let Some(mut gpu) = engine() else { return };
    let values = seeded_values(300_000, 7);
    // One series over several chunks, then a run of mixed series.
    let mut offsets = vec![0, 100_000];
    let mut at = 100_000;
    for length in [0, 1, 1024, 1025, 4096, 4097, 9000, 3, 50_000]
        .iter()
        .cycle()
        .take(40)
    {
        at = (at + length).min(values.len());
        offsets.push(at);
    }
    offsets.push(values.len());
    let qs = [0.5, 0.99, 0.01, 1.0, 0.25, 0.75, 0.9, 0.95, 0.999];
    let bounds = [-500.0, 0.0, 3.0, 500.0];
    gpu.limit_work(Some((16_384, 9 * 1024 * 2)));
    let result = check_window(&mut gpu, &values, &offsets, &qs, &bounds);
    gpu.limit_work(None);
    result.unwrap();
}

/// Segments on both sides of the packing limit, interleaved, give the
/// reference's moments, buckets and quantiles.
#[test]
fn packed_and_workgroup_segments_match_the_reference() {
    let Some(mut gpu) = engine() else { return };
    let packed = super::plan::PACKED_MAX;
    let mut offsets = vec![0];
    for length in (0..=packed + 8).chain([1, 300, 2, 5000, 0, packed, packed + 1, 1]) {
        offsets.push(offsets.last().unwrap() + length);
    }
    let values = seeded_values(*offsets.last().unwrap(), 5);
    let qs = [0.0001, 0.25, 0.5, 0.9, 1.0];
    let bounds = [-100.0, 0.0, 50.0, 1000.0];
    check_window(&mut gpu, &values, &offsets, &qs, &bounds).unwrap();
}

/// More segments than one part holds.
#[test]
fn windows_of_many_tiny_series_match_the_reference() {
    let Some(mut gpu) = engine() else { return };
    let segments = super::plan::MAX_PART_SEGMENTS + 1000;
    let values = seeded_values(segments * 2, 11);
    let offsets: Vec<usize> = (0..=segments).map(|i| i * 2).collect();
    check_window(&mut gpu, &values, &offsets, &[0.5, 1.0], &[0.0]).unwrap();
}

/// A failed window is counted and reported to the caller (who re-runs it on
/// the CPU); three failures in a row turn the GPU off; a success resets the
/// count.
#[test]
fn failures_fall_back_and_repeated_ones_disable_the_gpu() {
    use std::sync::Arc;

    use crate::config::{Gpu, GpuMode};
    use crate::gpu::Offload;
    use crate::gpu::offload::MAX_CONSECUTIVE_FAILURES;
    use crate::kernels::Kernels;
    use crate::telemetry::{GpuState, Telemetry};

    if engine().is_none() {
        return;
    }
    let telemetry = Arc::new(Telemetry::new(1));
    let settings = Gpu {
        mode: GpuMode::Force,
        min_window_samples: 1,
    };
    let offload = Offload::start(&settings, Kernels::default(), vec![0.5], telemetry.clone());
    assert_eq!(telemetry.gpu.state(), GpuState::Ready);
    let values = seeded_values(5000, 3);
    let offsets = [0, 2000, 5000];
    let compute = || {
        let mut moments = [Moments::EMPTY; 2];
        let mut quantiles = [0.0; 2];
        let request = Request {
            values: &values,
            offsets: &offsets,
            quantiles: &[0.5],
            bounds: &[],
        };
        let out = Outputs {
            moments: &mut moments,
            quantiles: &mut quantiles,
            buckets: &mut [],
        };
        offload.compute(request, out).map(|()| quantiles)
    };
    let mut expected = [0.0];
    scalar::quantiles(&mut values[..2000].to_vec(), &[0.5], &mut expected);
    assert_eq!(compute().unwrap()[0], expected[0]);
    offload.inject_fault();
    assert!(compute().is_err());
    assert_eq!(telemetry.gpu.fallbacks.get(), 1);
    assert!(compute().is_ok(), "a success after a failure");
    for _ in 0..MAX_CONSECUTIVE_FAILURES {
        assert!(offload.wants(5000));
        offload.inject_fault();
        assert!(compute().is_err());
    }
    assert_eq!(telemetry.gpu.state(), GpuState::Disabled);
    assert!(!offload.wants(5000));
    assert!(compute().is_err());
    assert_eq!(telemetry.gpu.windows_offloaded.get(), 2);
    assert_eq!(
        telemetry.gpu.fallbacks.get(),
        1 + u64::from(MAX_CONSECUTIVE_FAILURES)
    );
}
