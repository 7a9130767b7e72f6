//! The samples of one window: one list per sampled series, in an owned bump arena.
//!
//! Timers, histograms and distributions keep every value of a window (exact
//! quantiles need them all). Each series appends to chunks taken from the arena
//! that double in size (8 values first, at most [`MAX_CHUNK`]); a full chunk is
//! kept, never copied, so the arena holds the samples plus the unfilled end of
//! each series' last chunk: close to 8 bytes a sample. (A doubling vector in an
//! arena cannot free what it outgrows and costs two to three times that.)
//!
//! The arena is owned, not borrowed, so a closed window moves whole to the flush
//! thread while the shard fills the next one, and comes back to be reused:
//! `reset` frees everything in one operation and keeps the arena's largest chunk
//! and every list's chunk table, so the steady state allocates nothing.
//!
//! Safety: chunk pointers point into `arena`, which this struct owns. They are
//! created only by `push`, read only through `&self`, and all dropped (lists
//! cleared) before the arena is reset; moving the struct moves the `Bump`
//! handle, not its chunks.

use std::ptr::NonNull;

use bumpalo::Bump;

/// Values in a series' first chunk.
const MIN_CHUNK: usize = 8;
/// Values in the largest chunk (32 KiB): bounds the unfilled tail per series.
const MAX_CHUNK: usize = 4096;

/// One series' samples: arena chunks, filled in order.
#[derive(Debug, Default)]
struct SampleList {
    /// Start and capacity of each chunk.
    chunks: Vec<(NonNull<f64>, usize)>,
    /// Values written into the last chunk.
    filled: usize,
    len: usize,
}

/// The samples of one window, by slot (one slot per series with samples).
#[derive(Debug, Default)]
pub struct WindowSamples {
    arena: Bump,
    lists: Vec<SampleList>,
    used: usize,
    generation: u64,
}

// SAFETY: the raw chunk pointers point only into `arena`, owned by the same value
// and moved with it; nothing else aliases them.
unsafe impl Send for WindowSamples {}

impl WindowSamples {
    /// An empty window whose arena starts with `bytes` of room.
    pub fn with_capacity(bytes: usize) -> Self {
        WindowSamples {
            arena: Bump::with_capacity(bytes),
            ..WindowSamples::default()
        }
    }

    /// Empties the window for reuse as window number `generation`.
    pub fn reset(&mut self, generation: u64) {
        for list in &mut self.lists[..self.used] {
            list.chunks.clear();
            list.filled = 0;
            list.len = 0;
        }
        self.used = 0;
        // No chunk pointer survives the clearing above.
        self.arena.reset();
        self.generation = generation;
    }

    /// The number that tells this window's slots from those of earlier windows.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A new, empty list; returns its slot.
    pub(super) fn new_slot(&mut self) -> u32 {
        if self.used == self.lists.len() {
            self.lists.push(SampleList::default());
        }
        self.used += 1;
        (self.used - 1) as u32
    }

    /// Appends `value` to the list in `slot`.
    #[inline]
    pub(super) fn push(&mut self, slot: u32, value: f64) {
        let list = &mut self.lists[slot as usize];
        let full = list
            .chunks
            .last()
            .is_none_or(|&(_, cap)| list.filled == cap);
        if full {
            let size = list.len.clamp(MIN_CHUNK, MAX_CHUNK);
            let chunk = self.arena.alloc_slice_fill_copy(size, 0.0f64);
            list.chunks.push((NonNull::from(chunk).cast::<f64>(), size));
            list.filled = 0;
        }
        let (start, _) = list.chunks[list.chunks.len() - 1];
        // SAFETY: `filled < capacity` of this chunk, which lives in `self.arena`
        // until the next `reset`, and no reference into it exists.
        unsafe { start.as_ptr().add(list.filled).write(value) };
        list.filled += 1;
        list.len += 1;
    }

    /// Appends the values of `slot` to `out`, in the order added.
    pub fn append_to(&self, slot: u32, out: &mut Vec<f64>) {
        let list = &self.lists[slot as usize];
        out.reserve(list.len);
        let last = list.chunks.len().saturating_sub(1);
        for (i, &(start, cap)) in list.chunks.iter().enumerate() {
            let used = if i == last { list.filled } else { cap };
            // SAFETY: the first `used` values of the chunk were written by `push`,
            // and the arena holding them is borrowed through `&self`.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(start.as_ptr(), used) });
        }
    }

    /// Samples held, over all series.
    pub fn len(&self) -> usize {
        self.lists[..self.used].iter().map(|l| l.len).sum()
    }

    /// True when no sample is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_in_order_across_chunks_and_resets() {
        let mut window = WindowSamples::default();
        for round in 0..3 {
            window.reset(round);
            let slots: Vec<u32> = (0..7).map(|_| window.new_slot()).collect();
            for (i, &slot) in slots.iter().enumerate() {
                for v in 0..(i * 1000 + round as usize) {
                    window.push(slot, v as f64);
                }
            }
            for (i, &slot) in slots.iter().enumerate() {
                let mut out = Vec::new();
                window.append_to(slot, &mut out);
                let expected: Vec<f64> =
                    (0..(i * 1000 + round as usize)).map(|v| v as f64).collect();
                assert_eq!(out, expected);
            }
        }
    }

    #[test]
    fn the_arena_holds_little_more_than_the_values() {
        let mut window = WindowSamples::default();
        let slots: Vec<u32> = (0..100).map(|_| window.new_slot()).collect();
        for i in 0..100_000 {
            window.push(slots[i % 100], i as f64);
        }
        let values_bytes = 100_000 * 8;
        let used = window.arena.allocated_bytes();
        assert!(
            used < values_bytes * 3 / 2,
            "{used} bytes for {values_bytes} of values"
        );
        assert_eq!(window.len(), 100_000);
    }

    #[test]
    fn a_window_moves_to_another_thread_with_its_samples() {
        let mut window = WindowSamples::default();
        let slot = window.new_slot();
        window.push(slot, 4.5);
        let moved = std::thread::spawn(move || {
            let mut out = Vec::new();
            window.append_to(slot, &mut out);
            out
        });
        assert_eq!(moved.join().unwrap(), [4.5]);
    }
}
