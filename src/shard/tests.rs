//! Shard state driven directly: batches in, window close, rollups out; no threads.

use std::sync::Arc;

use super::*;
use crate::codec::{Decoder, Message, MetricType};
use crate::config::Config;
use crate::kernels::Kernels;
use crate::series::KeyHasher;
use crate::store::{Rollup, SeriesRollup, WindowBounds};
use crate::telemetry::{DropReason, Telemetry};

const WINDOW: WindowBounds = WindowBounds {
    start_unix_ms: 10_000,
    end_unix_ms: 20_000,
};

fn next(bounds: WindowBounds, windows: u64) -> WindowBounds {
    let len = bounds.end_unix_ms - bounds.start_unix_ms;
    WindowBounds {
        start_unix_ms: bounds.start_unix_ms + windows * len,
        end_unix_ms: bounds.end_unix_ms + windows * len,
    }
}

pub(super) fn batch_of(text: &str) -> Batch {
    let mut batch = Batch::with_capacity();
    let mut hasher = KeyHasher::new();
    for message in Decoder::new(4096).lines(text.as_bytes()) {
        let Ok(Message::Metric(m)) = message else {
            panic!("not a metric line in {text:?}");
        };
        assert!(batch.push(hasher.key(m.kind, m.name, m.tags), &m));
    }
    batch
}

struct Harness {
    state: ShardState,
    telemetry: Arc<Telemetry>,
    samples: WindowSamples,
    book: NativeBook,
}

impl Harness {
    fn new(yaml: &str) -> Self {
        let config: Config = crate::config::parse(yaml, "test.yaml").unwrap();
        let telemetry = Arc::new(Telemetry::new(1));
        let settings = ShardSettings::from_config(&config, 1, Kernels::default());
        Harness {
            state: ShardState::new(0, settings, telemetry.clone()),
            telemetry,
            samples: WindowSamples::default(),
            book: NativeBook::default(),
        }
    }

    /// Applies `text` in one window spanning `bounds`, closes it and completes it.
    fn window(&mut self, bounds: WindowBounds, text: &str) -> Vec<SeriesRollup> {
        self.state.begin_window(&mut self.samples);
        if !text.is_empty() {
            self.state.apply(&mut self.samples, &batch_of(text));
        }
        let closed = self.state.close(&self.samples, bounds);
        closed.complete(
            &self.samples,
            &Completion::default(),
            &mut FlushScratch::default(),
            &mut self.book,
        )
    }
}

fn find<'a>(rollups: &'a [SeriesRollup], name: &str) -> &'a Rollup {
    &rollups
        .iter()
        .find(|r| r.meta.name() == name)
        .unwrap_or_else(|| panic!("no series {name}"))
        .rollup
}

#[test]
fn counters_sum_value_over_rate_and_keep_a_running_total() {
    let mut h = Harness::new("{}");
    let first = h.window(WINDOW, "c:1|c\nc:2|c|@0.5\nc:3:4|c");
    assert_eq!(
        find(&first, "c"),
        &Rollup::Counter {
            sum: 12.0,
            total: 12.0,
            active: true
        }
    );
    let second = h.window(next(WINDOW, 1), "");
    assert_eq!(
        find(&second, "c"),
        &Rollup::Counter {
            sum: 0.0,
            total: 12.0,
            active: false
        }
    );
    let third = h.window(next(WINDOW, 2), "c:-2|c");
    assert_eq!(
        find(&third, "c"),
        &Rollup::Counter {
            sum: -2.0,
            total: 10.0,
            active: true
        }
    );
}

#[test]
fn signed_gauges_adjust_in_statsd_mode_and_persist_across_windows() {
    let mut h = Harness::new("{}");
    let first = h.window(WINDOW, "g:10|g\ng:+5|g\ng:-3|g\nn:-4|g");
    assert_eq!(
        find(&first, "g"),
        &Rollup::Gauge {
            value: 12.0,
            active: true
        }
    );
    assert_eq!(
        find(&first, "n"),
        &Rollup::Gauge {
            value: -4.0,
            active: true
        }
    );
    let second = h.window(next(WINDOW, 1), "");
    assert_eq!(
        find(&second, "g"),
        &Rollup::Gauge {
            value: 12.0,
            active: false
        }
    );
    let third = h.window(next(WINDOW, 2), "g:2|g");
    assert_eq!(
        find(&third, "g"),
        &Rollup::Gauge {
            value: 2.0,
            active: true
        }
    );
}

#[test]
fn signed_gauges_are_absolute_in_dogstatsd_mode() {
    let mut h = Harness::new("aggregation: { gauge_sign: dogstatsd }");
    let rollups = h.window(WINDOW, "g:10|g\ng:+5|g\ng:-3|g");
    assert_eq!(
        find(&rollups, "g"),
        &Rollup::Gauge {
            value: -3.0,
            active: true
        }
    );
    assert_eq!(h.state.series_count(), 1);
}

#[test]
fn sets_count_distinct_members_per_window() {
    let mut h = Harness::new("{}");
    let first = h.window(WINDOW, "u:a|s\nu:b|s\nu:a|s\nu:a:b|s");
    assert_eq!(
        find(&first, "u"),
        &Rollup::Set {
            unique: 3,
            active: true
        }
    );
    let second = h.window(next(WINDOW, 1), "u:z|s");
    assert_eq!(
        find(&second, "u"),
        &Rollup::Set {
            unique: 1,
            active: true
        }
    );
}

#[test]
fn timers_report_exact_quantiles_and_rate_scaled_count_and_sum() {
    let mut h = Harness::new("aggregation: { quantiles: [0.5, 0.9, 1] }");
    let lines: String = (1..=10).rev().map(|v| format!("t:{v}|ms\n")).collect();
    let rollups = h.window(WINDOW, &lines);
    let Rollup::Samples(s) = find(&rollups, "t") else {
        panic!("not samples")
    };
    let w = s.window.as_ref().unwrap();
    assert_eq!(
        (w.count, w.sum, w.min, w.max, w.mean),
        (10.0, 55.0, 1.0, 10.0, 5.5)
    );
    assert_eq!(&*w.quantiles, [5.0, 9.0, 10.0]);
    assert!((w.stddev - 8.25f64.sqrt()).abs() < 1e-12);
    assert_eq!((s.total_count, s.total_sum), (10.0, 55.0));

    let rated = h.window(next(WINDOW, 1), "t:4|ms|@0.5\nt:2|ms|@0.5");
    let Rollup::Samples(s) = find(&rated, "t") else {
        panic!("not samples")
    };
    let w = s.window.as_ref().unwrap();
    assert_eq!(
        (w.count, w.sum, w.mean, w.min, w.max),
        (4.0, 12.0, 3.0, 2.0, 4.0)
    );
    assert_eq!((s.total_count, s.total_sum), (14.0, 67.0));

    let idle = h.window(next(WINDOW, 2), "");
    let Rollup::Samples(s) = find(&idle, "t") else {
        panic!("not samples")
    };
    assert!(s.window.is_none());
    assert_eq!(s.total_count, 14.0);
}

#[test]
fn retuning_changes_quantiles_and_restarts_changed_buckets() {
    let mut h =
        Harness::new("aggregation: { histograms: [ { match: 'lat.*', buckets: [1, 5] } ] }");
    h.window(WINDOW, "lat.a:0.5|h\nlat.b:3|h");
    let config: Config = crate::config::parse(
        "aggregation: { quantiles: [1], histograms: [ { match: 'lat.a', buckets: [1, 5] }, { match: 'lat.*', buckets: [2] } ] }",
        "test.yaml",
    )
    .unwrap();
    h.state
        .retune(Arc::new(crate::shard::Tuning::from_config(&config, 1)));
    let rollups = h.window(next(WINDOW, 1), "lat.a:4|h\nlat.b:1|h");
    let samples = |name| match find(&rollups, name) {
        Rollup::Samples(s) => s.clone(),
        _ => panic!("not samples"),
    };
    let (a, b) = (samples("lat.a"), samples("lat.b"));
    assert_eq!(&*rollups_quantiles(&a), [4.0], "the new quantiles");
    // lat.a kept its bounds, so its counts go on; lat.b's changed and restart.
    assert_eq!(&*a.buckets.as_ref().unwrap().counts, [1.0, 2.0]);
    let b_buckets = b.buckets.as_ref().unwrap();
    assert_eq!(
        (&*b_buckets.bounds, &*b_buckets.counts),
        (&[2.0][..], &[1.0][..])
    );
}

fn rollups_quantiles(samples: &crate::store::SamplesRollup) -> Box<[f64]> {
    samples.window.as_ref().unwrap().quantiles.clone()
}

#[test]
fn matching_histogram_rules_give_cumulative_buckets() {
    let mut h =
        Harness::new("aggregation: { histograms: [ { match: 'lat.*', buckets: [1, 5, 10] } ] }");
    h.window(
        WINDOW,
        "lat.db:0.5|h\nlat.db:5|h\nlat.db:7|d\nlat.db:50|h\nother:1|h",
    );
    let rollups = h.window(next(WINDOW, 1), "lat.db:1|h|@0.5");
    let histogram = rollups
        .iter()
        .find(|r| r.meta.name() == "lat.db" && r.meta.kind == MetricType::Histogram);
    let Some(Rollup::Samples(s)) = histogram.map(|r| &r.rollup) else {
        panic!("no histogram lat.db")
    };
    let buckets = s.buckets.as_ref().unwrap();
    assert_eq!(&*buckets.bounds, [1.0, 5.0, 10.0]);
    // 0.5 and 5 in the first window, 1 at rate 0.5 (counts 2) in the second;
    // `lat.db:7|d` is another series (another type).
    assert_eq!(&*buckets.counts, [3.0, 4.0, 4.0]);
    assert_eq!(s.total_count, 5.0);
    let Rollup::Samples(other) = find(&rollups, "other") else {
        panic!("not samples")
    };
    assert!(other.buckets.is_none());
}

#[test]
fn series_beyond_the_limit_are_refused_and_counted() {
    let mut h = Harness::new("limits: { max_series: 2 }");
    let rollups = h.window(WINDOW, "a:1|c\nb:1|c\nc:1|c\nc:2|c\na:1|c");
    assert_eq!(rollups.len(), 2);
    assert_eq!(h.telemetry.dropped(DropReason::SeriesLimit).get(), 2);
}

#[test]
fn idle_series_are_removed_after_the_ttl() {
    let mut h = Harness::new("limits: { series_idle_ttl: 20s }");
    h.window(WINDOW, "a:1|g\nb:1|c");
    // 10 s idle: kept.
    let kept = h.window(next(WINDOW, 1), "b:1|c");
    assert_eq!(kept.len(), 2);
    // 20 s idle: removed; b, active, stays.
    let after = h.window(next(WINDOW, 2), "b:1|c");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].meta.name(), "b");
    assert_eq!(h.telemetry.shards[0].series_expired.get(), 1);
    // A removed series comes back from zero.
    let back = h.window(next(WINDOW, 3), "a:+2|g");
    assert_eq!(
        find(&back, "a"),
        &Rollup::Gauge {
            value: 2.0,
            active: true
        }
    );
}

fn native_of<'a>(rollups: &'a [SeriesRollup], name: &str) -> &'a crate::store::NativeHistogram {
    let Rollup::Samples(samples) = find(rollups, name) else {
        panic!("{name} is not sampled")
    };
    samples.native.as_deref().expect("a native histogram")
}

const NATIVE: &str = "aggregation: { native_histograms: { enabled: true } }";

#[test]
fn native_histograms_are_cumulative_across_windows() {
    let mut h = Harness::new(NATIVE);
    let first = h.window(WINDOW, "t:1|ms\nt:2|ms\nt:2|ms\nt:0|ms\nt:-1|ms");
    let native = native_of(&first, "t");
    assert_eq!(native.schema, 3);
    assert_eq!(native.positive, [(0, 1.0), (8, 2.0)]);
    assert_eq!(native.negative, [(0, 1.0)]);
    assert_eq!(
        (native.zero_count, native.count, native.sum),
        (1.0, 5.0, 4.0)
    );
    // A window without samples keeps the histogram as it was; one with samples adds.
    let idle = h.window(next(WINDOW, 1), "");
    assert_eq!(native_of(&idle, "t"), native);
    let second = h.window(next(WINDOW, 2), "t:1|ms\nt:3|ms");
    let native = native_of(&second, "t");
    assert_eq!(native.positive, [(0, 2.0), (8, 2.0), (13, 1.0)]);
    assert_eq!(native.count, 7.0);
    // The published histogram of the first window did not change.
    assert_eq!(native_of(&first, "t").count, 5.0);
}

#[test]
fn native_histograms_weigh_each_sample_by_its_own_rate() {
    let mut h = Harness::new(NATIVE);
    // One rate for the window: every sample weighs 1/0.5.
    let uniform = h.window(WINDOW, "u:1|h|@0.5\nu:2|h|@0.5");
    assert_eq!(native_of(&uniform, "u").positive, [(0, 2.0), (8, 2.0)]);
    // Mixed rates: 1 at rate 0.25 (4), 2 at rate 1 (1), 2 at rate 0.1 (10).
    let mixed = h.window(next(WINDOW, 1), "m:1|d|@0.25\nm:2|d\nm:2|d|@0.1");
    let native = native_of(&mixed, "m");
    assert_eq!(native.positive, [(0, 4.0), (8, 11.0)]);
    assert_eq!(native.count, 15.0);
    assert!(native.is_integral());
    let fractional = h.window(next(WINDOW, 2), "f:1|ms|@0.3");
    assert!(!native_of(&fractional, "f").is_integral());
}

#[test]
fn native_histograms_lower_their_schema_past_max_buckets_and_restart_with_the_series() {
    let mut h = Harness::new(
        "aggregation: { native_histograms: { enabled: true, max_buckets: 4 } }\n\
         limits: { series_idle_ttl: 10s }",
    );
    let text: String = (1..=64).map(|v| format!("w:{v}|ms\n")).collect();
    let wide = h.window(WINDOW, &text);
    let native = native_of(&wide, "w");
    assert!(native.buckets() <= 4, "{native:?}");
    assert!(native.schema < 3);
    assert_eq!(native.count, 64.0);
    let total: f64 = native.positive.iter().map(|&(_, c)| c).sum();
    assert_eq!(total, 64.0);
    // Idle past the TTL: removed; when it comes back it starts afresh.
    assert!(h.window(next(WINDOW, 1), "").is_empty());
    let back = h.window(next(WINDOW, 2), "w:1|ms");
    let native = native_of(&back, "w");
    assert_eq!((native.schema, native.count), (3, 1.0));
}

#[test]
fn without_native_histograms_no_rate_is_tracked_and_none_is_attached() {
    let mut h = Harness::new("");
    let rollups = h.window(WINDOW, "m:1|d|@0.25\nm:2|d");
    let Rollup::Samples(samples) = find(&rollups, "m") else {
        panic!("not sampled")
    };
    assert!(samples.native.is_none());
    assert_eq!(h.samples.len(), 2);
}

#[test]
fn binned_timers_keep_no_samples_and_estimate_quantiles_within_a_bucket() {
    let mut h = Harness::new("aggregation: { timer_samples: histogram }");
    let values: Vec<f64> = (1..=200).map(|i| f64::from(i) * 1.37).collect();
    let text: String = values.iter().map(|v| format!("b:{v}|ms\n")).collect();
    let rollups = h.window(WINDOW, &format!("{text}b:5|ms|@0.5\n"));
    assert_eq!(h.samples.len(), 0, "no sample kept in the window");
    let Rollup::Samples(samples) = find(&rollups, "b") else {
        panic!("not sampled")
    };
    let window = samples.window.as_ref().expect("a window");
    assert!(window.quantiles_from_histogram);
    assert_eq!(window.count, 202.0);
    assert_eq!((window.min, window.max), (1.37, 274.0));
    let exact_sum: f64 = values.iter().sum::<f64>() + 10.0;
    assert!((window.sum - exact_sum).abs() < 1e-9);
    let mut all = values.clone();
    all.push(5.0);
    all.sort_by(f64::total_cmp);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let spread = all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64;
    assert!(
        (window.stddev - spread.sqrt()).abs() < 1e-9,
        "{}",
        window.stddev
    );
    let width = 2f64.powf(1.0 / 8.0) - 1.0;
    for (&q, &estimate) in [0.5, 0.9, 0.99].iter().zip(window.quantiles.iter()) {
        let exact = all[(q * all.len() as f64).ceil() as usize - 1];
        assert!(
            (estimate - exact).abs() / exact <= width,
            "q {q}: {estimate} vs {exact}"
        );
    }
    // Native histograms are off: none exposed. The next window starts empty.
    assert!(samples.native.is_none());
    let next_window = h.window(next(WINDOW, 1), "b:2|ms");
    let Rollup::Samples(samples) = find(&next_window, "b") else {
        panic!("not sampled")
    };
    assert_eq!(samples.window.as_ref().map(|w| w.count), Some(1.0));
    assert_eq!(samples.total_count, 203.0);
}

#[test]
fn binned_timers_expose_a_cumulative_native_histogram_when_enabled() {
    let mut h = Harness::new(
        "aggregation: { timer_samples: histogram, native_histograms: { enabled: true } }",
    );
    h.window(WINDOW, "n:1|ms\nn:2|ms");
    let rollups = h.window(next(WINDOW, 1), "n:2|ms\nn:3|ms|@0.5");
    let native = native_of(&rollups, "n");
    assert_eq!(native.positive, [(0, 1.0), (8, 2.0), (13, 2.0)]);
    assert_eq!((native.count, native.sum), (5.0, 11.0));
    assert_eq!(h.book.len(), 0, "binned series bring their own histograms");
}

#[test]
fn turning_native_histograms_off_drops_them() {
    let mut h = Harness::new(NATIVE);
    h.window(WINDOW, "t:1|ms");
    assert_eq!(h.book.len(), 1);
    let off: Config = crate::config::parse("", "test.yaml").unwrap();
    h.state.retune(Arc::new(Tuning::from_config(&off, 1)));
    let rollups = h.window(next(WINDOW, 1), "t:2|ms");
    let Rollup::Samples(samples) = find(&rollups, "t") else {
        panic!("not sampled")
    };
    assert!(samples.native.is_none());
    assert!(h.book.is_empty());
}
