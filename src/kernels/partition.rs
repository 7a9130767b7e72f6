//! In-place partition with vector instructions, written once for every ISA.
//!
//! Each backend supplies a [`PartitionVector`]: load, compare with the pivot,
//! and permute a register so the lanes below the pivot come first. The
//! algorithm (the one vqsort and Bramas' AVX-512 sort use) keeps one register
//! from each end of the slice aside, which leaves room to write; it then reads
//! a register from whichever side has less room, permutes it, and stores the
//! same register twice: at the left cursor (where its first lanes belong) and
//! ending at the right cursor (where its last lanes belong). Each store covers
//! only room already read, so nothing unread is overwritten, and there is not a
//! branch per element.
//!
//! The functions here are `#[inline(always)]` and instantiated inside each
//! backend's `#[target_feature]` function, so the intrinsics inline there.

/// Most lanes of any backend's register (AVX-512: eight `f64`).
pub const MAX_LANES: usize = 8;

/// One register of keys, as a backend's partition sees it.
pub trait PartitionVector: Copy {
    /// The element type (`f64`).
    type Key: Copy + PartialOrd;
    /// Keys in a register (at most [`MAX_LANES`]).
    const LANES: usize;

    /// Loads `LANES` keys from `ptr`, unaligned.
    ///
    /// # Safety
    /// `ptr` must be valid for reading `LANES` keys, and the CPU must support the
    /// backend's instructions.
    unsafe fn load(ptr: *const Self::Key) -> Self;

    /// Every lane set to `key`.
    ///
    /// # Safety
    /// The CPU must support the backend's instructions.
    unsafe fn splat(key: Self::Key) -> Self;

    /// This register with the lanes below `pivot` moved first (in lane order) and
    /// the others after them, and how many were below.
    ///
    /// # Safety
    /// The CPU must support the backend's instructions.
    unsafe fn split(self, pivot: Self) -> (Self, usize);

    /// Stores `LANES` keys at `ptr`, unaligned.
    ///
    /// # Safety
    /// `ptr` must be valid for writing `LANES` keys, and the CPU must support the
    /// backend's instructions.
    unsafe fn store(self, ptr: *mut Self::Key);
}

/// Reorders `v` so that the keys below `pivot` come first; returns their number.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
pub unsafe fn partition_in_place<V: PartitionVector>(v: &mut [V::Key], pivot: V::Key) -> usize {
    let n = v.len();
    let w = V::LANES;
    if n < 2 * w {
        return partition_scalar(v, pivot);
    }
    let p = v.as_mut_ptr();
    // SAFETY (for the whole body): every load reads `w` keys from the unread
    // range `[read_left, read_right)` or from the two ends saved first; every
    // store writes `w` keys inside the room already read, `[left, read_left)` or
    // `[read_right, right)`, which the invariant `room_left + room_right == 2w`
    // keeps at least `w` wide on the side being written. The caller vouches for
    // the CPU.
    unsafe {
        let pv = V::splat(pivot);
        let first = V::load(p);
        let last = V::load(p.add(n - w));
        let (mut left, mut right) = (0, n);
        let (mut read_left, mut read_right) = (w, n - w);
        let place = |x: V, left: &mut usize, right: &mut usize| {
            let (y, below) = x.split(pv);
            y.store(p.add(*left));
            y.store(p.add(*right - w));
            *left += below;
            *right -= w - below;
        };
        while read_right - read_left >= w {
            // A branch, not a select: the select puts the next load's address
            // on the critical path (load, compare, count, cursor, address) and
            // measured four times slower than the mispredictions it saves.
            let x = if read_left - left <= right - read_right {
                read_left += w;
                V::load(p.add(read_left - w))
            } else {
                read_right -= w;
                V::load(p.add(read_right))
            };
            place(x, &mut left, &mut right);
        }
        // Fewer than `w` keys remain unread: set them aside too, so that all of
        // `[left, right)` (2w + rest wide) is room.
        let rest = read_right - read_left;
        let mut tail = [pivot; MAX_LANES];
        std::ptr::copy_nonoverlapping(p.add(read_left), tail.as_mut_ptr(), rest);
        place(first, &mut left, &mut right);
        for &x in &tail[..rest] {
            if x < pivot {
                *p.add(left) = x;
                left += 1;
            } else {
                right -= 1;
                *p.add(right) = x;
            }
        }
        // Exactly `w` of room is left: one store places the last register.
        let (y, below) = last.split(pv);
        y.store(p.add(left));
        left + below
    }
}

/// The same partition, one key at a time, for slices shorter than two registers.
#[inline(always)]
pub fn partition_scalar<T: Copy + PartialOrd>(v: &mut [T], pivot: T) -> usize {
    let mut below = 0;
    for i in 0..v.len() {
        if v[i] < pivot {
            v.swap(i, below);
            below += 1;
        }
    }
    below
}
