//! The shard thread: receive batches, close windows on time, publish rollups.
//!
//! One OS thread per shard, not a tokio task: a shard is CPU-bound and must never
//! be descheduled behind an HTTP request. The thread waits on its queue with a
//! timeout that ends at the open window's close, so an idle shard still closes
//! its windows on time; a busy one checks the clock after every batch (a vDSO
//! call, about 20 ns per 1,024 samples).
//!
//! At a window close the shard takes the O(series) rollups and hands the
//! window's samples to its own flush thread (`tallyd-flush-N`), which runs the
//! kernels and publishes; two sample buffers rotate between them, so the shard
//! keeps draining its queue during the kernel work. Both threads run below
//! the receivers (`shard_priority`, see `priority`), and the flush stands
//! aside while the shard is behind (`pacing`).
//!
//! A batch goes into the window its receipt time falls in (datagrams, streams
//! and gRPC messages all carry one), whenever the shard takes it: at a window's
//! end the shard first applies the queued batches received before it, and a
//! batch taken late that was received after the end opens the next window.
//! Windows stay cut at the same instants on every shard, so the lines of one
//! datagram or export land in one window whichever shard they reach. A shard
//! woken past the end of more than one window closes each one it missed
//! (`Windowing::next_after`), empty unless a held batch falls in it.
//!
//! When every sender is gone (ingest has stopped) the thread drains what is left
//! in its queue, closes the open window early, waits for its flush thread to
//! publish it, and ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::batch::{Batch, BatchPool};
use super::clock::Clock;
use super::flush::{ClosedWindow, Completion, FlushScratch};
use super::native_book::NativeBook;
use super::pacing::ShardBacklog;
use super::priority;
use super::state::{ShardSettings, ShardState};
use super::window::Windowing;
use super::window_samples::WindowSamples;
use crate::store::{Store, WindowBounds};
use crate::telemetry::Telemetry;

/// What a shard thread needs, besides its queue.
#[derive(Clone)]
pub struct ShardContext {
    /// Settings shared by every shard.
    pub settings: ShardSettings,
    /// Where closed windows go.
    pub store: Arc<Store>,
    /// Self-metrics.
    pub telemetry: Arc<Telemetry>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Window length and alignment.
    pub windowing: Windowing,
    /// Where emptied batches go back.
    pub pool: BatchPool,
}

/// Starts shard `index`, fed by `queue`. The thread ends after `queue` disconnects
/// and the open window has been published.
pub fn spawn_shard(
    index: usize,
    context: ShardContext,
    queue: Receiver<Batch>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("tallyd-shard-{index}"))
        .spawn(move || run(index, context, queue))
}

/// Batches each shard queue holds: 256 x 1,024 samples is about 25 ms of work for a
/// shard at 10M samples/s, enough to ride out scheduling pauses of a core shared
/// with receivers, and about 29 MiB (113 KiB a batch) queued per shard at worst.
pub const QUEUE_BATCHES: usize = 256;

/// The running shard threads.
pub struct Shards {
    threads: Vec<JoinHandle<()>>,
}

impl Shards {
    /// Starts one thread per entry of `context.telemetry.shards`, each behind a
    /// queue of [`QUEUE_BATCHES`]; returns them and the queues' senders, in shard
    /// order. The shards run until every clone of the senders is dropped.
    pub fn start(context: &ShardContext) -> std::io::Result<(Shards, Vec<Sender<Batch>>)> {
        let count = context.telemetry.shards.len();
        let mut shards = Shards {
            threads: Vec::with_capacity(count),
        };
        let mut queues = Vec::with_capacity(count);
        for index in 0..count {
            let (sender, receiver) = crossbeam_channel::bounded(QUEUE_BATCHES);
            match spawn_shard(index, context.clone(), receiver) {
                Ok(thread) => shards.threads.push(thread),
                Err(err) => {
                    drop(queues);
                    shards.join();
                    return Err(err);
                }
            }
            queues.push(sender);
        }
        Ok((shards, queues))
    }

    /// Waits for every shard to drain its queue and publish its open window: call
    /// once the senders are gone.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// A closed window and its samples, on their way to the flush thread.
struct FlushJob {
    closed: ClosedWindow,
    samples: WindowSamples,
    /// Seconds the shard spent closing it.
    close_seconds: f64,
}

fn run(index: usize, context: ShardContext, queue: Receiver<Batch>) {
    let ShardContext {
        settings,
        store,
        telemetry,
        clock,
        windowing,
        pool,
    } = context;
    let completion = Completion {
        kernels: settings.kernels,
        offload: settings.offload.clone(),
    };
    let live = settings.live.clone();
    let priority = settings.priority;
    priority::apply(priority, "shard");
    let mut state = ShardState::new(index, settings, telemetry.clone());
    // Two windows' samples rotate: the shard fills one while the flush thread
    // completes the other and sends it back.
    let (jobs, job_queue) = crossbeam_channel::bounded::<FlushJob>(1);
    let (spare_sender, spares) = crossbeam_channel::bounded::<WindowSamples>(2);
    let _ = spare_sender.send(WindowSamples::default());
    let interval = std::time::Duration::from_millis(windowing.interval_ms());
    let backlog = ShardBacklog::new(queue.clone(), interval / 2);
    let flusher = std::thread::Builder::new()
        .name(format!("tallyd-flush-{index}"))
        .spawn({
            let telemetry = telemetry.clone();
            move || {
                priority::apply(priority, "flush");
                flush_loop(
                    index,
                    job_queue,
                    spare_sender,
                    backlog,
                    &store,
                    &telemetry,
                    &completion,
                )
            }
        });
    let Ok(flusher) = flusher else {
        tracing::error!(
            shard = index,
            "cannot start the flush thread; the shard is not running"
        );
        return;
    };

    let counters = &telemetry.shards[index];
    counters.running.store(true, Ordering::Release);
    let mut window = WindowSamples::default();
    let mut last_end = None;
    // A batch taken late, received after the open window ended: it opens the
    // next window instead.
    let mut held: Option<Batch> = None;
    loop {
        let opening = windowing.next_after(last_end, clock.now_unix_ms());
        counters.windows_skipped.add(opening.skipped);
        let bounds = opening.bounds;
        last_end = Some(bounds.end_unix_ms);
        let tuning = live.for_window(bounds.start_unix_ms);
        if !Arc::ptr_eq(&tuning, state.tuning()) {
            state.retune(tuning);
        }
        state.begin_window(&mut window);
        let mut apply = |batch: Batch| {
            state.apply(&mut window, &batch);
            telemetry
                .ingest_delay
                .observe_since(batch.received_unix_nanos);
            pool.give_back(batch);
        };
        let disconnected = loop {
            let now = clock.now_unix_ms();
            if let Some(batch) = held.take() {
                if belongs_after(&batch, bounds, || now) {
                    held = Some(batch);
                    break false;
                }
                apply(batch);
            }
            if now >= bounds.end_unix_ms {
                // Batches received before the end and still queued belong to
                // this window; the first that does not (or has no receipt
                // time) opens the next.
                while let Ok(batch) = queue.try_recv() {
                    if batch.received_unix_nanos == 0 || belongs_after(&batch, bounds, || now) {
                        held = Some(batch);
                        break;
                    }
                    apply(batch);
                }
                break false;
            }
            match queue.recv_timeout(windowing.until_close(now)) {
                Ok(batch) if belongs_after(&batch, bounds, || clock.now_unix_ms()) => {
                    held = Some(batch);
                    break false;
                }
                Ok(batch) => apply(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break true,
            }
        };
        let started = Instant::now();
        let closed = state.close(&window, bounds);
        // Waits only when the previous window's flush is still running: a flush
        // longer than the interval, which the flush-time metrics show.
        let Ok(next) = spares.recv() else { break };
        let samples = std::mem::replace(&mut window, next);
        let job = FlushJob {
            closed,
            samples,
            close_seconds: started.elapsed().as_secs_f64(),
        };
        if jobs.send(job).is_err() || disconnected {
            break;
        }
    }
    drop(jobs);
    let _ = flusher.join();
    counters.running.store(false, Ordering::Release);
}

/// True when `batch` must wait for a later window than `bounds`: the shard
/// took it late, after the window ended (`now_unix_ms`), and it was received
/// after the end too. A batch with no receipt time, or any batch while the
/// window is still open, goes into the window. The clock is read only for a
/// batch received after the end: the usual batch costs one comparison.
fn belongs_after(batch: &Batch, bounds: WindowBounds, now_unix_ms: impl FnOnce() -> u64) -> bool {
    batch.received_unix_nanos / 1_000_000 >= bounds.end_unix_ms
        && now_unix_ms() >= bounds.end_unix_ms
}

/// The flush thread of shard `index`: completes closed windows in order, publishes
/// them, and hands their samples back for reuse, standing aside while the
/// shard is behind (`backlog`).
fn flush_loop(
    index: usize,
    jobs: Receiver<FlushJob>,
    spares: Sender<WindowSamples>,
    mut backlog: ShardBacklog<Batch>,
    store: &Store,
    telemetry: &Telemetry,
    completion: &Completion,
) {
    let counters = &telemetry.shards[index];
    let mut scratch = FlushScratch::default();
    let mut book = NativeBook::default();
    for job in jobs {
        let started = Instant::now();
        let bounds = job.closed.bounds;
        let series = job.closed.rollups.len();
        let quantiles = job.closed.quantiles.clone();
        let rollups = job.closed.complete_paced(
            &job.samples,
            completion,
            &mut scratch,
            &mut book,
            &mut || backlog.wait_while_behind(),
        );
        if store.publish(bounds, quantiles, rollups) {
            let end_nanos = bounds.end_unix_ms.saturating_mul(1_000_000);
            telemetry.window_publish_delay.observe_since(end_nanos);
        }
        let paused = backlog.end_window();
        let seconds = job.close_seconds + started.elapsed().saturating_sub(paused).as_secs_f64();
        counters.last_flush_seconds.set(seconds);
        counters
            .flush_paused_seconds_total
            .set(counters.flush_paused_seconds_total.get() + paused.as_secs_f64());
        counters
            .flush_seconds_total
            .set(counters.flush_seconds_total.get() + seconds);
        counters.windows_flushed.add(1);
        tracing::debug!(shard = index, series, seconds, "window closed");
        let _ = spares.send(job.samples);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::kernels::Kernels;
    use crate::shard::ManualClock;
    use crate::shard::tests::batch_of;
    use crate::shard::window::MAX_CATCH_UP_WINDOWS;
    use crate::store::Rollup;

    const INTERVAL_MS: u64 = 10_000;
    const START_MS: u64 = 1_700_000_000_000;

    /// Returns once `ready` holds; panics after ten seconds.
    fn wait_until(ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(Instant::now() < deadline, "the shard never got there");
            std::thread::yield_now();
        }
    }

    /// The counter `c` of each published window: (window start, sum, total).
    fn counters(store: &Store) -> Vec<(u64, f64, f64)> {
        store
            .history()
            .iter()
            .map(|w| {
                let c = w.series.iter().find(|s| s.meta.name() == "c");
                match c.map(|s| &s.rollup) {
                    Some(Rollup::Counter { sum, total, .. }) => {
                        (w.bounds.start_unix_ms, *sum, *total)
                    }
                    other => panic!("window {:?}: c is {other:?}", w.bounds),
                }
            })
            .collect()
    }

    #[test]
    fn a_late_shard_closes_each_missed_window_and_skips_only_past_the_limit() {
        let config = crate::config::parse("{}", "test.yaml").unwrap();
        let telemetry = Arc::new(Telemetry::new(1));
        let store = Arc::new(Store::new(1, 100));
        // A millisecond before the end of the first window: the shard wakes
        // every millisecond to look at the clock.
        let clock = Arc::new(ManualClock::new(START_MS + INTERVAL_MS - 1));
        let context = ShardContext {
            settings: ShardSettings::from_config(&config, 1, Kernels::default()),
            store: store.clone(),
            telemetry: telemetry.clone(),
            clock: clock.clone(),
            windowing: Windowing::new(Duration::from_millis(INTERVAL_MS)),
            pool: BatchPool::new(4),
        };
        // A rendezvous queue: a send returns once the shard has taken the batch
        // in its receive loop, so it goes into the window the shard has open.
        let (sender, queue) = crossbeam_channel::bounded(0);
        let shard = spawn_shard(0, context, queue).unwrap();
        sender.send(batch_of("c:1|c")).unwrap();
        // Three windows pass at once: the shard closes the open one and the two
        // it missed, and opens the window holding now.
        clock.advance(3 * INTERVAL_MS);
        wait_until(|| store.history().len() == 3);
        sender.send(batch_of("c:2|c")).unwrap();
        // Farther than it catches up: it skips to the window holding now.
        let far = (MAX_CATCH_UP_WINDOWS + 2) * INTERVAL_MS;
        clock.advance(far);
        wait_until(|| telemetry.shards[0].windows_skipped.get() > 0);
        drop(sender);
        shard.join().unwrap();
        let at = |windows: u64| START_MS + windows * INTERVAL_MS;
        assert_eq!(
            counters(&store),
            [
                (at(0), 1.0, 1.0),
                (at(1), 0.0, 1.0),
                (at(2), 0.0, 1.0),
                (at(3), 2.0, 3.0),
                (at(3) + far, 0.0, 3.0),
            ]
        );
        assert_eq!(
            telemetry.shards[0].windows_skipped.get(),
            MAX_CATCH_UP_WINDOWS + 1
        );
    }

    #[test]
    fn a_batch_taken_after_its_window_ended_waits_for_the_window_it_was_received_in() {
        let window = WindowBounds {
            start_unix_ms: START_MS,
            end_unix_ms: START_MS + INTERVAL_MS,
        };
        let end = window.end_unix_ms;
        let received_at = |ms: u64| {
            let mut batch = batch_of("c:1|c");
            batch.received_unix_nanos = ms * 1_000_000;
            batch
        };
        // Taken while the window is open: in, whenever it was received.
        assert!(!belongs_after(&received_at(end + 5), window, || end - 1));
        // Taken late: in when received before the end, held when after.
        assert!(!belongs_after(&received_at(end - 1), window, || end + 50));
        assert!(belongs_after(&received_at(end), window, || end + 50));
        // No receipt time: in.
        assert!(!belongs_after(&batch_of("c:1|c"), window, || end + 50));
    }

    /// A clock that reads each of its times once, then the last for ever: the
    /// shard's reads of the time, scripted.
    struct ScriptedClock(std::sync::Mutex<Vec<u64>>);

    impl Clock for ScriptedClock {
        fn now_unix_ms(&self) -> u64 {
            let mut times = self.0.lock().unwrap();
            if times.len() > 1 {
                times.remove(0)
            } else {
                times[0]
            }
        }
    }

    #[test]
    fn batches_queued_at_a_window_end_go_into_the_window_they_were_received_in() {
        let config = crate::config::parse("{}", "test.yaml").unwrap();
        let store = Arc::new(Store::new(1, 100));
        let end = START_MS + INTERVAL_MS;
        // The shard opens the first window, and next finds it ended.
        let clock = ScriptedClock(std::sync::Mutex::new(vec![START_MS + 100, end + 5]));
        let context = ShardContext {
            settings: ShardSettings::from_config(&config, 1, Kernels::default()),
            store: store.clone(),
            telemetry: Arc::new(Telemetry::new(1)),
            clock: Arc::new(clock),
            windowing: Windowing::new(Duration::from_millis(INTERVAL_MS)),
            pool: BatchPool::new(4),
        };
        let (sender, queue) = crossbeam_channel::bounded(4);
        for (text, received_ms) in [("c:1|c", end - 500), ("c:2|c", end + 2)] {
            let mut batch = batch_of(text);
            batch.received_unix_nanos = received_ms * 1_000_000;
            sender.send(batch).unwrap();
        }
        drop(sender);
        spawn_shard(0, context, queue).unwrap().join().unwrap();
        assert_eq!(counters(&store), [(START_MS, 1.0, 1.0), (end, 2.0, 3.0)]);
    }
}
