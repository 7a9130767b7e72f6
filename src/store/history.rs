//! The last `window.retain` window snapshots, assembled from the shards' parts.
//!
//! Each shard closes the same aligned windows and hands its part to
//! [`Store::publish`]. The part that completes a window (the last shard to report)
//! merges and sorts the parts and swaps a new history in with one atomic pointer
//! store (`arc-swap`): readers load the current history without a lock and never
//! wait for shards, and shards wait only on each other's publication, once a
//! window, for microseconds.
//!
//! A late shard closes the windows it missed, empty, so windows are complete
//! unless a shard skipped one (the clock jumped far past it; counted in
//! `tallyd_windows_skipped_total`). Its data is not lost: it went into the
//! window the shard did close. When a later window completes, earlier
//! incomplete ones are published as they are, so nothing waits forever.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::WindowBounds;
use super::snapshot::{SeriesRollup, WindowQuantiles, WindowSnapshot};

/// Closed windows, oldest first.
pub type History = Vec<Arc<WindowSnapshot>>;

/// Told of each window as it is published, in order. Called on the shard
/// thread that completed the window: it must hand the window on and return.
pub type WindowListener = Box<dyn Fn(&Arc<WindowSnapshot>) + Send + Sync>;

/// Windows being assembled: parts received so far, keyed by window start.
#[derive(Debug, Default)]
struct Pending {
    windows: BTreeMap<u64, PendingWindow>,
}

#[derive(Debug)]
struct PendingWindow {
    bounds: WindowBounds,
    quantiles: WindowQuantiles,
    parts: Vec<Vec<SeriesRollup>>,
    reported: usize,
}

/// The store of closed windows.
#[derive(Debug)]
pub struct Store {
    history: ArcSwap<History>,
    pending: Mutex<Pending>,
    shards: usize,
    retain: usize,
    listeners: Listeners,
}

/// The listeners, behind their own lock (shown by count).
#[derive(Default)]
struct Listeners(Mutex<Vec<WindowListener>>);

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map_or(0, |l| l.len());
        write!(f, "Listeners({count})")
    }
}

impl Store {
    /// A store for `shards` shards keeping the last `retain` windows.
    pub fn new(shards: usize, retain: usize) -> Self {
        Store {
            history: ArcSwap::from_pointee(Vec::new()),
            pending: Mutex::new(Pending::default()),
            shards,
            retain: retain.max(1),
            listeners: Listeners::default(),
        }
    }

    /// Tells `listener` of every window published from now on (the push
    /// sinks' feed).
    pub fn subscribe(&self, listener: WindowListener) {
        self.listeners
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    /// Records one shard's rollups for the window `bounds`, whose sample rollups
    /// carry `quantiles` (the same for every shard of a window: a reload changes
    /// them from a window on). Each shard reports each window at most once.
    /// True when this part completed the window, which is visible from now on.
    pub fn publish(
        &self,
        bounds: WindowBounds,
        quantiles: WindowQuantiles,
        part: Vec<SeriesRollup>,
    ) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let window = pending
            .windows
            .entry(bounds.start_unix_ms)
            .or_insert_with(|| PendingWindow {
                bounds,
                quantiles,
                parts: Vec::with_capacity(self.shards),
                reported: 0,
            });
        window.parts.push(part);
        window.reported += 1;
        if window.reported < self.shards {
            return false;
        }
        // This window is complete: it and every earlier one are published now.
        let later = pending.windows.split_off(&(bounds.start_unix_ms + 1));
        let ready = std::mem::replace(&mut pending.windows, later);
        let mut history: History = (**self.history.load()).clone();
        let published: Vec<Arc<WindowSnapshot>> = ready
            .into_values()
            .map(|window| Arc::new(assemble(window)))
            .collect();
        history.extend(published.iter().cloned());
        let excess = history.len().saturating_sub(self.retain);
        history.drain(..excess);
        self.history.store(Arc::new(history));
        // Still under the pending lock, so listeners see windows in order.
        let listeners = self.listeners.0.lock().unwrap_or_else(|e| e.into_inner());
        for window in &published {
            for listener in listeners.iter() {
                listener(window);
            }
        }
        true
    }

    /// The closed windows, oldest first; empty before the first window closes.
    pub fn history(&self) -> Arc<History> {
        self.history.load_full()
    }

    /// The last closed window.
    pub fn latest(&self) -> Option<Arc<WindowSnapshot>> {
        self.history.load().last().cloned()
    }
}

/// The snapshot of a window every shard has reported.
fn assemble(window: PendingWindow) -> WindowSnapshot {
    let mut series: Vec<SeriesRollup> = window.parts.into_iter().flatten().collect();
    series.sort_unstable_by(|a, b| {
        let (a, b) = (&a.meta, &b.meta);
        (a.prom_name(), a.kind as u8, a.prom_labels()).cmp(&(
            b.prom_name(),
            b.kind as u8,
            b.prom_labels(),
        ))
    });
    WindowSnapshot {
        bounds: window.bounds,
        quantiles: window.quantiles.computed,
        default_quantiles: window.quantiles.default,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{MetricType, Tags};
    use crate::series::SeriesMeta;
    use crate::store::Rollup;

    fn gauge(name: &str, value: f64) -> SeriesRollup {
        SeriesRollup {
            meta: Arc::new(SeriesMeta::new(MetricType::Gauge, name, Tags::default())),
            rollup: Rollup::Gauge {
                value,
                active: true,
            },
        }
    }

    fn window(start: u64) -> WindowBounds {
        WindowBounds {
            start_unix_ms: start,
            end_unix_ms: start + 10,
        }
    }

    #[test]
    fn a_window_appears_when_every_shard_has_reported_sorted_by_name() {
        let store = Store::new(2, 3);
        store.publish(
            window(0),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("b", 1.0)],
        );
        assert!(store.latest().is_none());
        store.publish(
            window(0),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("a", 2.0)],
        );
        let latest = store.latest().unwrap();
        let names: Vec<&str> = latest.series.iter().map(|s| s.meta.name()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn listeners_are_told_of_every_window_in_order() {
        let store = Store::new(1, 1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        store.subscribe(Box::new(move |w| {
            sink.lock().unwrap().push(w.bounds.start_unix_ms);
        }));
        for start in [0, 10, 20] {
            store.publish(
                window(start),
                WindowQuantiles::same(Arc::from([0.5])),
                vec![gauge("a", 1.0)],
            );
        }
        assert_eq!(*seen.lock().unwrap(), [0, 10, 20]);
    }

    #[test]
    fn only_the_last_retain_windows_are_kept() {
        let store = Store::new(1, 2);
        for start in [0, 10, 20] {
            store.publish(
                window(start),
                WindowQuantiles::same(Arc::from([0.5])),
                vec![gauge("a", start as f64)],
            );
        }
        let starts: Vec<u64> = store
            .history()
            .iter()
            .map(|w| w.bounds.start_unix_ms)
            .collect();
        assert_eq!(starts, [10, 20]);
    }

    #[test]
    fn a_window_one_shard_skipped_is_published_when_a_later_one_completes() {
        let store = Store::new(2, 5);
        store.publish(
            window(0),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("a", 1.0)],
        );
        store.publish(window(0), WindowQuantiles::same(Arc::from([0.5])), vec![]);
        store.publish(
            window(10),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("a", 2.0)],
        );
        store.publish(
            window(20),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("b", 3.0)],
        );
        store.publish(
            window(20),
            WindowQuantiles::same(Arc::from([0.5])),
            vec![gauge("a", 4.0)],
        );
        let starts: Vec<u64> = store
            .history()
            .iter()
            .map(|w| w.bounds.start_unix_ms)
            .collect();
        assert_eq!(starts, [0, 10, 20]);
    }
}
