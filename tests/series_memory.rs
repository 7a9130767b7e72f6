//! Heap bytes a shard holds per counter series, the series of
//! `benches/memory_per_series.py` (a name and three tags), applied through the
//! router as a receiver does.
//!
//! dhat replaces the global allocator in this test binary only, so the figure
//! is the exact bytes asked of the allocator (resident memory adds the
//! allocator's size classes and free pages: the script measures that). The
//! cost is the series' map entry (56 bytes, at the map's load) and its
//! identity (`SeriesMeta`: one block of 64 bytes and one of its texts).

use std::sync::Arc;

use tallyd::codec::{Decoder, Message};
use tallyd::config::Config;
use tallyd::kernels::Kernels;
use tallyd::shard::{Batch, BatchPool, Router, ShardSettings, ShardState, WindowSamples};
use tallyd::telemetry::{LocalTally, Telemetry};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const SERIES: usize = 200_000;

fn held_after(distinct: bool) -> usize {
    let telemetry = Arc::new(Telemetry::new(1));
    let settings = ShardSettings::from_config(&Config::default(), 1, Kernels::default());
    let mut shard = ShardState::new(0, settings, telemetry);
    let (sender, receiver) = crossbeam_channel::bounded::<Batch>(1024);
    let pool = BatchPool::new(1024);
    let mut router = Router::new(vec![sender], pool.clone());
    let decoder = Decoder::new(65_535);
    let mut window = WindowSamples::with_capacity(1 << 20);
    let mut tally = LocalTally::default();
    shard.begin_window(&mut window);
    let before = dhat::HeapStats::get().curr_bytes;
    for i in 0..SERIES {
        let n = if distinct { i } else { 0 };
        let line = format!(
            "app.requests.latency.{n}:{}|c|#env:prod,service:checkout,host:web-{}",
            i % 97,
            n % 50
        );
        for message in decoder.lines(line.as_bytes()) {
            let Ok(Message::Metric(m)) = message else {
                panic!("{line}")
            };
            router.route(&m, &mut tally).unwrap();
        }
        if i % 64 == 63 || i == SERIES - 1 {
            router.flush(&mut tally);
            while let Ok(batch) = receiver.try_recv() {
                shard.apply(&mut window, &batch);
                pool.give_back(batch);
            }
        }
    }
    assert_eq!(shard.series_count(), if distinct { SERIES } else { 1 });
    dhat::HeapStats::get().curr_bytes - before
}

#[test]
fn a_counter_series_holds_at_most_256_heap_bytes() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let same = held_after(false);
    let distinct = held_after(true);
    let per_series = (distinct - same) / SERIES;
    println!("same {same} B, distinct {distinct} B: {per_series} B per series");
    assert!(per_series <= 256, "{per_series} bytes per counter series");
}
