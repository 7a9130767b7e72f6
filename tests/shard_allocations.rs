//! Allocation budget of routing and shard insertion in the steady state: once
//! every series exists and the batch pool and arena are warm, routing lines into
//! batches, handing them over and applying them to the shards allocates nothing.
//!
//! dhat replaces the global allocator in this test binary only, so the count is exact.

use std::sync::Arc;

use tallyd::codec::{Decoder, Message};
use tallyd::config::Config;
use tallyd::kernels::Kernels;
use tallyd::shard::{
    Batch, BatchPool, Completion, FlushScratch, NativeBook, Router, ShardSettings, ShardState,
    WindowSamples,
};
use tallyd::store::WindowBounds;
use tallyd::telemetry::{LocalTally, Telemetry};
use tallyd::workload::{Generator, Spec};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const SHARDS: usize = 2;

fn bounds(n: u64) -> WindowBounds {
    WindowBounds {
        start_unix_ms: n * 10_000,
        end_unix_ms: (n + 1) * 10_000,
    }
}

/// The ingest side and the shard side of one window, run in turns on one thread.
struct Feed<'f> {
    datagrams: &'f [Vec<u8>],
    decoder: &'f Decoder,
    router: &'f mut Router,
    receivers: &'f [crossbeam_channel::Receiver<Batch>],
    pool: &'f BatchPool,
}

impl Feed<'_> {
    /// Routes every datagram and applies the batches to `windows`; returns the
    /// lines routed.
    fn run(&mut self, shards: &mut [ShardState], windows: &mut [WindowSamples]) -> usize {
        let mut tally = LocalTally::default();
        let mut routed = 0;
        for datagram in self.datagrams {
            for message in self.decoder.lines(datagram) {
                if let Ok(Message::Metric(m)) = message {
                    self.router.route(&m, &mut tally).unwrap();
                    routed += 1;
                }
            }
            self.router.flush(&mut tally);
            for (shard, receiver) in self.receivers.iter().enumerate() {
                while let Ok(batch) = receiver.try_recv() {
                    shards[shard].apply(&mut windows[shard], &batch);
                    self.pool.give_back(batch);
                }
            }
        }
        routed
    }
}

#[test]
fn routing_and_applying_known_series_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();

    // Every type, including sets and multi-value lines, over 1,000 series.
    let spec = Spec {
        mix: [4, 2, 3, 1],
        ..Spec::default()
    };
    let (mut datagrams, lines) = Generator::new(&spec).packed_datagrams(300);
    datagrams.push(b"users:alice|s\nusers:bob|s|#env:a\nlat:1:2:3|ms|@0.5".to_vec());
    let telemetry = Arc::new(Telemetry::new(SHARDS));
    let settings = ShardSettings::from_config(&Config::default(), SHARDS, Kernels::default());
    let mut shards: Vec<ShardState> = (0..SHARDS)
        .map(|i| ShardState::new(i, settings.clone(), telemetry.clone()))
        .collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..SHARDS)
        .map(|_| crossbeam_channel::bounded::<Batch>(1024))
        .unzip();
    let pool = BatchPool::new(1024);
    let mut router = Router::new(senders, pool.clone());
    let decoder = Decoder::new(65_535);
    // Windows whose arenas hold a whole window in their first chunk, as a
    // shard's do after its first few windows.
    let mut windows: Vec<WindowSamples> = (0..SHARDS)
        .map(|_| WindowSamples::with_capacity(64 << 20))
        .collect();

    // Warm-up: creates every series, grows the pool, the sets and the arena.
    let mut feed = Feed {
        datagrams: &datagrams,
        decoder: &decoder,
        router: &mut router,
        receivers: &receivers,
        pool: &pool,
    };
    for (shard, window) in shards.iter_mut().zip(&mut windows) {
        shard.begin_window(window);
    }
    feed.run(&mut shards, &mut windows);
    for (shard, window) in shards.iter_mut().zip(&windows) {
        shard.close(window, bounds(0));
    }

    for (shard, window) in shards.iter_mut().zip(&mut windows) {
        shard.begin_window(window);
    }
    let before = dhat::HeapStats::get();
    let routed = feed.run(&mut shards, &mut windows);
    let after = dhat::HeapStats::get();

    assert_eq!(routed, lines + 3);
    let samples: usize = windows.iter().map(|w| w.len()).sum();
    assert!(samples > 0);
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
    for (shard, window) in shards.iter_mut().zip(&windows) {
        let closed = shard.close(window, bounds(1));
        assert!(!closed.segments.is_empty());
        let rollups = closed.complete(
            window,
            &Completion::default(),
            &mut FlushScratch::default(),
            &mut NativeBook::default(),
        );
        assert!(!rollups.is_empty());
    }
}
