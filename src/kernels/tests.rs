//! One property-test harness for every backend, against the scalar reference.
//!
//! `backend_matches_the_reference!` instantiates the whole harness for one
//! backend; a backend the CPU lacks says so on stderr and passes (CI forces the
//! scalar run separately, see `.ci/run`). Values are adversarial but NaN-free:
//! signed zeros, subnormals, magnitudes near `f64::MAX`, runs of repeats, and
//! inputs already sorted or reversed; slices start at every alignment. The
//! strategies are shared with the GPU backend's harness (`gpu::tests`).

use proptest::prelude::*;

use super::common::{Moments, quantile_rank};
use super::native::{Layout, MAX_SCHEMA, MIN_SCHEMA};
use super::{Backend, Kernels, scalar};

/// The kernels on `backend`, or `None` (and a loud line) when this CPU lacks it.
fn kernels_or_skip(backend: Backend) -> Option<Kernels> {
    let kernels = Kernels::on(backend);
    if kernels.is_none() {
        eprintln!("skipped: this CPU cannot run the {backend} backend");
    }
    kernels
}

/// One value of the kinds that break careless kernels.
pub(crate) fn adversarial_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6f64..1e6,
        2 => (-4i8..4).prop_map(f64::from),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => (1u64..1 << 52).prop_map(f64::from_bits),
        1 => (1u64..1 << 52).prop_map(|bits| -f64::from_bits(bits)),
        1 => 1e300f64..f64::MAX,
        1 => -f64::MAX..-1e300f64,
    ]
}

/// How a series' values are laid out before a kernel sees them.
#[derive(Debug, Clone, Copy)]
enum Shape {
    AsDrawn,
    Sorted,
    Reversed,
}

/// A series of 0..2000 values in some shape, starting `skip` elements (0..8, so
/// every 8-byte alignment within a 64-byte line) into its buffer.
pub(crate) fn series() -> impl Strategy<Value = (Vec<f64>, usize)> {
    (
        proptest::collection::vec(adversarial_value(), 0..2000),
        prop_oneof![
            Just(Shape::AsDrawn),
            Just(Shape::Sorted),
            Just(Shape::Reversed)
        ],
        0usize..8,
    )
        .prop_map(|(mut values, shape, skip)| {
            match shape {
                Shape::AsDrawn => {}
                Shape::Sorted => values.sort_by(f64::total_cmp),
                Shape::Reversed => values.sort_by(|a, b| b.total_cmp(a)),
            }
            let mut buffer = vec![7.0; skip];
            buffer.extend(values);
            (buffer, skip)
        })
}

/// Quantile lists as a config may give them: unordered, near 0 and 1.
pub(crate) fn quantile_list() -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(
        prop_oneof![
            Just(0.5),
            Just(0.99),
            Just(1.0),
            Just(0.001),
            0.0001f64..=1.0
        ],
        1..8,
    )
}

/// Strictly increasing bounds, some taken from the values themselves so that
/// values land exactly on them.
pub(crate) fn bounds_for(values: &[f64], extra: &[f64]) -> Vec<f64> {
    let mut bounds: Vec<f64> = values
        .iter()
        .step_by(97)
        .copied()
        .chain(extra.iter().copied())
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup_by(|a, b| a == b);
    bounds
}

pub(crate) fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|x| x.to_bits()).collect()
}

fn same_moments(a: &Moments, b: &Moments) -> bool {
    a.same_bits(b)
}

/// Random cut points turning `len` values into segments (some empty).
pub(crate) fn offsets_for(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut offsets: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    offsets.push(0);
    offsets.push(len);
    offsets.sort_unstable();
    offsets
}

macro_rules! backend_matches_the_reference {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(256))]

                #[test]
                fn moments_are_identical((buffer, skip) in series()) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let values = &buffer[skip..];
                    let expected = scalar::moments(values);
                    let got = kernels.moments(values);
                    prop_assert!(same_moments(&got, &expected), "{got:?} != {expected:?}");
                }

                #[test]
                fn quantiles_are_identical((buffer, skip) in series(), qs in quantile_list()) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let mut expected = vec![0.0; qs.len()];
                    scalar::quantiles(&mut buffer[skip..].to_vec(), &qs, &mut expected);
                    let mut got = vec![0.0; qs.len()];
                    kernels.quantiles(&mut buffer.clone()[skip..], &qs, &mut got);
                    prop_assert_eq!(bits(&got), bits(&expected));
                }

                #[test]
                fn buckets_are_identical((buffer, skip) in series(), extra in proptest::collection::vec(adversarial_value(), 1..20)) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let values = &buffer[skip..];
                    let bounds = bounds_for(values, &extra);
                    let mut expected = vec![0; bounds.len()];
                    scalar::cumulative_buckets(values, &bounds, &mut expected);
                    let mut got = vec![u64::MAX; bounds.len()];
                    kernels.cumulative_buckets(values, &bounds, &mut got);
                    prop_assert_eq!(got, expected);
                }

                #[test]
                fn native_keys_are_identical(
                    (buffer, skip) in series(),
                    schema in MIN_SCHEMA..=MAX_SCHEMA,
                    edges in proptest::collection::vec(-3000i32..3000, 0..64),
                    threshold in prop_oneof![Just(0.0), Just(1e-9), 0.0f64..10.0],
                ) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let layout = Layout::of(schema);
                    // Bucket edges and their neighbours, where a wrong key shows first.
                    let mut values = buffer[skip..].to_vec();
                    for key in edges {
                        let edge = layout.upper_bound(key);
                        values.extend([edge, edge.next_up(), edge.next_down(), -edge, f64::INFINITY, -0.0]);
                    }
                    let mut expected = vec![0; values.len()];
                    scalar::native_keys(&values, layout, threshold, &mut expected);
                    let mut got = vec![7; values.len()];
                    kernels.native_keys(&values, layout, threshold, &mut got);
                    prop_assert_eq!(got, expected);
                }

                #[test]
                fn distinct_counts_are_identical(
                    hashes in proptest::collection::vec(prop_oneof![0u64..40, any::<u64>(), Just(u64::MAX), Just(1 << 63)], 0..2000),
                ) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let expected = scalar::distinct_count(&mut hashes.clone());
                    prop_assert_eq!(kernels.distinct_count(&mut hashes.clone()), expected);
                }

                #[test]
                fn segmented_forms_match_each_series(
                    (buffer, skip) in series(),
                    cuts in proptest::collection::vec(any::<usize>(), 0..40),
                ) {
                    let Some(kernels) = kernels_or_skip($backend) else { return Ok(()) };
                    let values = &buffer[skip..];
                    let offsets = offsets_for(values.len(), &cuts);
                    let segments = offsets.len() - 1;
                    let qs = [0.99, 0.5, 0.9];
                    let bounds = bounds_for(values, &[0.0, 1.0]);

                    let mut moments = vec![Moments::EMPTY; segments];
                    kernels.moments_segmented(values, &offsets, &mut moments);
                    let mut buckets = vec![0; segments * bounds.len()];
                    kernels.buckets_segmented(values, &offsets, &bounds, &mut buckets);
                    let mut quantiles = vec![0.0; segments * qs.len()];
                    kernels.quantiles_segmented(&mut values.to_vec(), &offsets, &qs, &mut quantiles);
                    let mut hashes: Vec<u64> = values.iter().map(|x| x.to_bits() % 50).collect();
                    let mut distinct = vec![0; segments];
                    kernels.distinct_segmented(&mut hashes, &offsets, &mut distinct);

                    for (i, segment) in offsets.windows(2).enumerate() {
                        let series = &values[segment[0]..segment[1]];
                        prop_assert!(same_moments(&moments[i], &scalar::moments(series)));
                        let mut expected_buckets = vec![0; bounds.len()];
                        scalar::cumulative_buckets(series, &bounds, &mut expected_buckets);
                        prop_assert_eq!(&buckets[i * bounds.len()..(i + 1) * bounds.len()], &expected_buckets[..]);
                        let mut expected_quantiles = [0.0; 3];
                        scalar::quantiles(&mut series.to_vec(), &qs, &mut expected_quantiles);
                        prop_assert_eq!(bits(&quantiles[i * 3..(i + 1) * 3]), bits(&expected_quantiles));
                        let mut series_hashes: Vec<u64> = series.iter().map(|x| x.to_bits() % 50).collect();
                        prop_assert_eq!(distinct[i], scalar::distinct_count(&mut series_hashes));
                    }
                }
            }

            #[test]
            fn large_series_are_identical() {
                let Some(kernels) = kernels_or_skip($backend) else { return };
                for n in [65_537, 1_000_003] {
                    let values = seeded_values(n, n as u64);
                    assert!(same_moments(&kernels.moments(&values), &scalar::moments(&values)));
                    let qs = [0.5, 0.9, 0.99, 0.999, 1.0, 0.0001];
                    let (mut expected, mut got) = ([0.0; 6], [0.0; 6]);
                    scalar::quantiles(&mut values.clone(), &qs, &mut expected);
                    kernels.quantiles(&mut values.clone(), &qs, &mut got);
                    assert_eq!(bits(&got), bits(&expected), "n = {n}");
                    let bounds: Vec<f64> = (0..20).map(|i| f64::from(i) * 50.0 - 500.0).collect();
                    let (mut expected, mut got) = (vec![0; 20], vec![0; 20]);
                    scalar::cumulative_buckets(&values, &bounds, &mut expected);
                    kernels.cumulative_buckets(&values, &bounds, &mut got);
                    assert_eq!(got, expected, "n = {n}");
                    let hashes: Vec<u64> = values.iter().map(|x| x.to_bits() % 100_003).collect();
                    assert_eq!(
                        kernels.distinct_count(&mut hashes.clone()),
                        scalar::distinct_count(&mut hashes.clone())
                    );
                }
            }

            #[test]
            fn all_equal_and_two_valued_series_are_identical() {
                let Some(kernels) = kernels_or_skip($backend) else { return };
                for values in [vec![3.0; 10_000], (0..10_000).map(|i| f64::from(i % 2) - 0.0).collect(), (0..10_000).map(|i| if i % 3 == 0 { -0.0 } else { 0.0 }).collect::<Vec<f64>>()] {
                    let qs = [0.0001, 0.3333, 0.5, 0.6667, 1.0];
                    let (mut expected, mut got) = ([0.0; 5], [0.0; 5]);
                    scalar::quantiles(&mut values.clone(), &qs, &mut expected);
                    kernels.quantiles(&mut values.clone(), &qs, &mut got);
                    assert_eq!(bits(&got), bits(&expected));
                    assert!(same_moments(&kernels.moments(&values), &scalar::moments(&values)));
                }
            }
        }
    };
}

/// Deterministic pseudo-random values (xorshift), a tenth of them repeats.
pub(crate) fn seeded_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i % 10 == 0 {
                f64::from((state % 7) as u32)
            } else {
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2000.0 - 1000.0
            }
        })
        .collect()
}

backend_matches_the_reference!(scalar_backend, Backend::Scalar);
backend_matches_the_reference!(avx2_backend, Backend::Avx2);
backend_matches_the_reference!(avx512_backend, Backend::Avx512);
backend_matches_the_reference!(neon_backend, Backend::Neon);

proptest! {
    /// The reference sum's error against the exact sum stays within the documented
    /// bound `(ceil(n / 16) + 4) * 2^-53 * sum(|x|)`. Values are multiples of 2^-20
    /// below 2^30, so their exact sum is an integer count of 2^-20 in an i128.
    #[test]
    fn reference_sum_error_is_within_the_stated_bound(
        numerators in proptest::collection::vec(-(1i64 << 50)..(1i64 << 50), 0..3000),
    ) {
        let scale = (-20f64).exp2();
        let values: Vec<f64> = numerators.iter().map(|&k| k as f64 * scale).collect();
        let exact: i128 = values.iter().map(|&x| (x / scale) as i128).sum();
        let got = scalar::moments(&values).sum;
        let error = (got - exact as f64 * scale).abs();
        let magnitude: f64 = values.iter().map(|x| x.abs()).sum();
        let bound = (values.len().div_ceil(16) as f64 + 4.0) * f64::EPSILON / 2.0 * magnitude;
        // `exact as f64` itself rounds once: allow one more unit of the result.
        prop_assert!(error <= bound + got.abs() * f64::EPSILON, "error {error} > bound {bound}");
    }

    /// Quantiles follow `f64::total_cmp` on a sort, for any list of quantiles.
    #[test]
    fn reference_quantiles_match_a_sort(
        values in proptest::collection::vec(adversarial_value(), 1..500),
        qs in quantile_list(),
    ) {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mut out = vec![0.0; qs.len()];
        scalar::quantiles(&mut values.clone(), &qs, &mut out);
        for (&q, got) in qs.iter().zip(out) {
            prop_assert_eq!(got.to_bits(), sorted[quantile_rank(q, values.len()) - 1].to_bits());
        }
    }
}
