//! The flush thread stands aside while its shard is behind.
//!
//! A shard and its flush thread both run under `SCHED_IDLE` (see `priority`),
//! so on a core the receivers keep busy, the scheduler splits what they leave
//! evenly between the two. A window's kernels are a second or more of CPU at
//! 100k timer series and millions of samples: for that long the shard got half
//! of its share, its queue filled, the receivers waited for room and their
//! socket overflowed. So between batches of kernels the flush looks at its
//! shard's queue and, while more than [`BEHIND_BATCHES`] batches wait, sleeps
//! in steps of [`NAP`]: the shard takes the core first. The waits of one
//! window stop at a budget (half the interval), so a shard that stays behind
//! (a core saturated for longer) cannot hold its windows back for ever, nor
//! keep the flush from handing back the samples buffer the shard needs at its
//! next window close.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// Queued batches from which the shard counts as behind: about a millisecond
/// of its work, more than the queue holds in the steady state of a shard
/// that keeps up.
pub const BEHIND_BATCHES: usize = 8;

/// One sleep while the shard is behind.
pub const NAP: Duration = Duration::from_micros(200);

/// A view of a shard's queue, for its flush thread.
#[derive(Debug)]
pub struct ShardBacklog<T> {
    queue: Receiver<T>,
    budget: Duration,
    waited: Duration,
}

impl<T> ShardBacklog<T> {
    /// Watches `queue`, waiting at most `budget` for each window.
    pub fn new(queue: Receiver<T>, budget: Duration) -> Self {
        ShardBacklog {
            queue,
            budget,
            waited: Duration::ZERO,
        }
    }

    /// Ends a window: returns how long it waited, and starts the next budget.
    pub fn end_window(&mut self) -> Duration {
        std::mem::take(&mut self.waited)
    }

    /// Sleeps while the shard is behind and the window's budget lasts;
    /// returns how long it slept.
    pub fn wait_while_behind(&mut self) -> Duration {
        if self.queue.len() <= BEHIND_BATCHES || self.waited >= self.budget {
            return Duration::ZERO;
        }
        let started = Instant::now();
        let until = started + (self.budget - self.waited);
        while self.queue.len() > BEHIND_BATCHES && Instant::now() < until {
            std::thread::sleep(NAP);
        }
        let slept = started.elapsed();
        self.waited += slept;
        slept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_keeping_up_costs_the_flush_no_wait() {
        let (sender, queue) = crossbeam_channel::bounded(64);
        for i in 0..BEHIND_BATCHES {
            sender.send(i).unwrap();
        }
        let mut backlog = ShardBacklog::new(queue, Duration::from_secs(60));
        assert_eq!(backlog.wait_while_behind(), Duration::ZERO);
        assert_eq!(backlog.end_window(), Duration::ZERO);
    }

    #[test]
    fn the_flush_waits_until_the_shard_has_caught_up() {
        let (sender, queue) = crossbeam_channel::bounded(64);
        for i in 0..32 {
            sender.send(i).unwrap();
        }
        let (went_on, left_when_it_went_on) = crossbeam_channel::bounded(1);
        let flush = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut backlog = ShardBacklog::new(queue, Duration::from_secs(600));
                backlog.wait_while_behind();
                went_on.send(backlog.queue.len()).unwrap();
            })
        };
        // The shard takes batches until it is one short of caught up: the
        // flush may not go on yet.
        while queue.len() > BEHIND_BATCHES + 1 {
            queue.recv().unwrap();
        }
        assert!(
            left_when_it_went_on.try_recv().is_err(),
            "the flush went on while its shard was behind"
        );
        queue.recv().unwrap();
        assert_eq!(left_when_it_went_on.recv().unwrap(), BEHIND_BATCHES);
        flush.join().unwrap();
        drop(sender);
    }

    #[test]
    fn a_shard_that_stays_behind_holds_the_flush_only_for_the_budget() {
        let (sender, queue) = crossbeam_channel::bounded(64);
        for i in 0..32 {
            sender.send(i).unwrap();
        }
        let budget = Duration::from_millis(2);
        let mut backlog = ShardBacklog::new(queue, budget);
        let slept = backlog.wait_while_behind();
        assert!(slept >= budget, "slept {slept:?}");
        // The budget is spent: no more waiting this window, however far behind.
        assert_eq!(backlog.wait_while_behind(), Duration::ZERO);
        assert_eq!(backlog.end_window(), slept);
        // A new window waits again.
        assert!(backlog.wait_while_behind() >= budget);
        drop(sender);
    }
}
