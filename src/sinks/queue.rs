//! The bounded queue every sink keeps in front of its target: whole windows,
//! oldest first, measured in samples; past its capacity the oldest samples go.
//!
//! A window leaves the queue whole when the sink starts sending it, and the
//! next leaves only once every request of the one before has ended: that is
//! how a series' samples reach the target in order though requests run
//! concurrently (a window holds each series once).

use std::collections::VecDeque;

/// What the queue measures an item by.
pub trait Weighed {
    /// Its size in bytes, roughly.
    fn bytes(&self) -> usize;
}

/// Windows waiting to be sent.
#[derive(Debug)]
pub struct WindowQueue<T> {
    windows: VecDeque<Vec<T>>,
    samples: usize,
    bytes: usize,
    capacity: usize,
}

impl<T: Weighed> WindowQueue<T> {
    /// An empty queue holding at most `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        WindowQueue {
            windows: VecDeque::new(),
            samples: 0,
            bytes: 0,
            capacity: capacity.max(1),
        }
    }

    /// Adds a window's samples behind the others. While the queue and
    /// `in_flight` samples (being sent) exceed the capacity, the oldest queued
    /// samples are dropped; returns how many.
    pub fn push(&mut self, window: Vec<T>, in_flight: usize) -> usize {
        if window.is_empty() {
            return 0;
        }
        self.samples += window.len();
        self.bytes += window.iter().map(Weighed::bytes).sum::<usize>();
        self.windows.push_back(window);
        let mut dropped = 0;
        while self.samples + in_flight > self.capacity {
            let Some(oldest) = self.windows.front_mut() else {
                break;
            };
            let excess = (self.samples + in_flight - self.capacity).min(oldest.len());
            for item in oldest.drain(..excess) {
                self.bytes -= item.bytes();
            }
            self.samples -= excess;
            dropped += excess;
            if oldest.is_empty() {
                self.windows.pop_front();
            }
        }
        dropped
    }

    /// The oldest window, taken out to be sent.
    pub fn pop(&mut self) -> Option<Vec<T>> {
        let window = self.windows.pop_front()?;
        self.samples -= window.len();
        self.bytes -= window.iter().map(Weighed::bytes).sum::<usize>();
        Some(window)
    }

    /// Samples queued.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Their bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weighed for u32 {
        fn bytes(&self) -> usize {
            4
        }
    }

    #[test]
    fn windows_leave_whole_and_in_order() {
        let mut queue = WindowQueue::new(10);
        assert_eq!(queue.push(vec![1, 2], 0), 0);
        assert_eq!(queue.push(vec![3], 0), 0);
        assert_eq!((queue.samples(), queue.bytes()), (3, 12));
        assert_eq!(queue.pop(), Some(vec![1, 2]));
        assert_eq!(queue.pop(), Some(vec![3]));
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
        assert_eq!((queue.samples(), queue.bytes()), (0, 0));
    }

    #[test]
    fn past_capacity_the_oldest_samples_are_dropped_counting_those_in_flight() {
        let mut queue = WindowQueue::new(5);
        assert_eq!(queue.push(vec![1, 2, 3], 0), 0);
        // Two in flight: 3 + 3 + 2 = 8, three over.
        assert_eq!(queue.push(vec![4, 5, 6], 2), 3);
        assert_eq!(queue.pop(), Some(vec![4, 5, 6]));
        // A window larger than the queue keeps its newest samples.
        assert_eq!(queue.push((10..20).collect(), 0), 5);
        assert_eq!(queue.pop(), Some((15..20).collect()));
        assert_eq!((queue.samples(), queue.bytes()), (0, 0));
    }
}
