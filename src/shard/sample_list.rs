//! One series' samples in a window, as a chain of arena chunks that never move.
//!
//! A growable vector in an arena cannot free the buffer it outgrows, so a
//! doubling `Vec` in a bump arena leaves dead copies behind and a window of N
//! samples costs 2-3 x 8N bytes. Here each series appends to chunks that double
//! in size (8 values first, at most [`MAX_CHUNK`]), and a full chunk is kept,
//! not copied: the arena holds the samples plus the unfilled end of each series'
//! last chunk. Kernels want one contiguous slice, so a window close copies a
//! series' chunks into a reused scratch buffer first (memcpy speed, small next
//! to sorting for quantiles).

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

/// Values in a series' first chunk.
const MIN_CHUNK: usize = 8;
/// Values in the largest chunk (32 KiB): bounds the unfilled tail per series.
const MAX_CHUNK: usize = 4096;

/// The samples of one series in one window.
pub struct SampleList<'a> {
    chunks: BumpVec<'a, &'a mut [f64]>,
    /// Values written into the last chunk.
    filled: usize,
    len: usize,
}

impl<'a> SampleList<'a> {
    /// An empty list whose chunks will come from `arena`.
    pub fn new_in(arena: &'a Bump) -> Self {
        SampleList {
            chunks: BumpVec::new_in(arena),
            filled: 0,
            len: 0,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no value was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`, taking a new chunk from `arena` when the last one is full.
    #[inline]
    pub fn push(&mut self, arena: &'a Bump, value: f64) {
        let full = self.chunks.last().is_none_or(|c| self.filled == c.len());
        if full {
            let size = self.len.clamp(MIN_CHUNK, MAX_CHUNK);
            self.chunks.push(arena.alloc_slice_fill_copy(size, 0.0));
            self.filled = 0;
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk[self.filled] = value;
            self.filled += 1;
            self.len += 1;
        }
    }

    /// Replaces the contents of `out` with the values, in the order added.
    pub fn copy_to(&self, out: &mut Vec<f64>) {
        out.clear();
        out.reserve(self.len);
        let last = self.chunks.len().saturating_sub(1);
        for (i, chunk) in self.chunks.iter().enumerate() {
            let used = if i == last { self.filled } else { chunk.len() };
            out.extend_from_slice(&chunk[..used]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_in_order_across_chunks() {
        let arena = Bump::new();
        for n in [0, 1, 7, 8, 9, 100, 10_000] {
            let mut list = SampleList::new_in(&arena);
            for i in 0..n {
                list.push(&arena, i as f64);
            }
            let mut out = vec![-1.0];
            list.copy_to(&mut out);
            assert_eq!(list.len(), n);
            assert_eq!(out, (0..n).map(|i| i as f64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_arena_holds_little_more_than_the_values() {
        let arena = Bump::new();
        let mut lists: Vec<SampleList<'_>> = (0..100).map(|_| SampleList::new_in(&arena)).collect();
        for i in 0..100_000 {
            lists[i % 100].push(&arena, i as f64);
        }
        let values_bytes = 100_000 * 8;
        let used = arena.allocated_bytes();
        assert!(
            used < values_bytes * 3 / 2,
            "{used} bytes for {values_bytes} of values"
        );
    }
}
