//! How a segmented window is cut into GPU work: parts, chunks, tiles, jobs.
//!
//! Pure host-side bookkeeping, no device calls, so it is tested without an
//! adapter. The cuts keep every buffer within the adapter's binding limit:
//!
//! - A **part** is a run of whole segments processed by one round of uploads,
//!   dispatches and one readback. A part holds at most `chunk_values` samples
//!   and [`MAX_PART_SEGMENTS`] segments, so every per-part table is bounded;
//!   a segment larger than `chunk_values` is a part of its own.
//! - A **chunk** is the part's samples that one storage buffer holds (at most
//!   `chunk_values`). Only a part of one oversized segment has several.
//! - A **tile** is up to [`TILE_VALUES`] values of one segment inside one
//!   chunk: the unit of one workgroup for moments, buckets and radix counts.
//! - Segments of at most [`SMALL_MAX`] values get their quantiles by rank
//!   counting in workgroup memory (one *small job* each, always one tile);
//!   longer ones are *large* and go through radix selection.
//! - Segments of at most [`PACKED_MAX`] values are *packed*: one invocation,
//!   not one workgroup, computes each of their tiles and jobs, so a
//!   workgroup serves [`WORKGROUP`] of them. Their tiles come first in a chunk
//!   and their jobs first among the small jobs, so each kind is one
//!   contiguous range for its dispatch.

use std::ops::Range;

/// Values in a tile (one workgroup's share of a segment).
pub const TILE_VALUES: usize = 4096;
/// The longest segment whose quantiles are found by rank counting (the
/// shader's workgroup array of keys has this many entries).
pub const SMALL_MAX: usize = 1024;
/// The longest segment computed by one invocation (see the module docs):
/// short enough that one invocation's serial pass, quadratic for the rank
/// counting, costs less than a workgroup's barriers.
pub const PACKED_MAX: usize = 32;
/// Invocations in a workgroup (`WORKGROUP` in `common.wgsl`).
pub const WORKGROUP: usize = 256;
/// Segments in one part at most, which bounds the per-part tables.
pub const MAX_PART_SEGMENTS: usize = 1 << 18;

/// One tile as the shaders read it (`Tile` in `common.wgsl`, 24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Chunk-local start of the values.
    pub start: u32,
    /// Chunk-local end of the values.
    pub end: u32,
    /// Index among the part's large segments, or [`Tile::NOT_LARGE`].
    pub large: u32,
    /// Part-local segment index.
    pub segment: u32,
    /// Bits of the segment's first value.
    pub shift: u64,
}

impl Tile {
    /// `large` of a tile of a small segment.
    pub const NOT_LARGE: u32 = u32::MAX;
    /// Bytes of one tile in a storage buffer.
    pub const BYTES: usize = 24;

    /// Appends the tile's bytes in the shader's layout.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for word in [self.start, self.end, self.large, self.segment] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.shift.to_le_bytes());
    }
}

/// One part of a window (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// The window's segments in this part.
    pub segments: Range<usize>,
    /// Sample ranges of the window, one per chunk buffer.
    pub chunks: Vec<Range<usize>>,
    /// Every tile, chunk by chunk, segments in order within a chunk.
    pub tiles: Vec<Tile>,
    /// The range of `tiles` in each chunk.
    pub chunk_tiles: Vec<Range<u32>>,
    /// The packed tiles of each chunk: the start of its `chunk_tiles`.
    pub chunk_packed: Vec<Range<u32>>,
    /// Per small job: the index of its (only) tile; packed jobs first.
    pub small_jobs: Vec<u32>,
    /// Per large segment: its part-local segment index.
    pub large: Vec<u32>,
    /// Indices of the large segments' tiles, by chunk then segment.
    pub large_tiles: Vec<u32>,
    /// The range of `large_tiles` in each chunk.
    pub chunk_large_tiles: Vec<Range<u32>>,
}

impl Part {
    /// Samples in the part.
    pub fn samples(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// How many of `small_jobs` are packed: one per packed tile, since a
    /// packed segment is one tile and one job.
    pub fn packed_jobs(&self) -> u32 {
        self.chunk_packed.iter().map(|r| r.len() as u32).sum()
    }

    /// The range of `large_tiles` in `chunk` whose segments are the large
    /// segments `group` (a range of indices into `large`).
    pub fn group_tiles(&self, chunk: usize, group: &Range<u32>) -> Range<u32> {
        let range = self.chunk_large_tiles[chunk].clone();
        let in_chunk = &self.large_tiles[range.start as usize..range.end as usize];
        let large_of = |&tile: &u32| self.tiles[tile as usize].large;
        let first = in_chunk.partition_point(|t| large_of(t) < group.start);
        let end = in_chunk.partition_point(|t| large_of(t) < group.end);
        range.start + first as u32..range.start + end as u32
    }
}

/// Cuts the window `values`/`offsets` into parts whose chunks hold at most
/// `chunk_values` samples (a multiple of [`TILE_VALUES`]).
pub fn plan(values: &[f64], offsets: &[usize], chunk_values: usize) -> Vec<Part> {
    assert!(
        chunk_values >= TILE_VALUES && chunk_values.is_multiple_of(TILE_VALUES),
        "chunks hold whole tiles"
    );
    let segments = offsets.len().saturating_sub(1);
    let mut parts = Vec::new();
    let mut first = 0;
    while first < segments {
        let start = offsets[first];
        let mut end_segment = first;
        if offsets[first + 1] - start > chunk_values {
            end_segment += 1;
        } else {
            while end_segment < segments
                && end_segment - first < MAX_PART_SEGMENTS
                && offsets[end_segment + 1] - start <= chunk_values
            {
                end_segment += 1;
            }
        }
        parts.push(part(values, offsets, first..end_segment, chunk_values));
        first = end_segment;
    }
    parts
}

/// The part of `segments` (all in one chunk, or one oversized segment).
fn part(values: &[f64], offsets: &[usize], segments: Range<usize>, chunk_values: usize) -> Part {
    let samples = offsets[segments.start]..offsets[segments.end];
    let mut part = Part {
        segments: segments.clone(),
        ..Part::default()
    };
    let mut chunk_start = samples.start;
    while chunk_start < samples.end || part.chunks.is_empty() {
        let chunk_end = (chunk_start + chunk_values).min(samples.end);
        part.chunks.push(chunk_start..chunk_end);
        chunk_start = chunk_end;
    }
    let mut large_index = vec![Tile::NOT_LARGE; segments.len()];
    for (local, segment) in segments.clone().enumerate() {
        if offsets[segment + 1] - offsets[segment] > SMALL_MAX {
            large_index[local] = part.large.len() as u32;
            part.large.push(local as u32);
        }
    }
    let packed = |segment: usize| offsets[segment + 1] - offsets[segment] <= PACKED_MAX;
    for chunk in part.chunks.clone() {
        let tiles_start = part.tiles.len() as u32;
        let large_start = part.large_tiles.len() as u32;
        // Packed segments' tiles first, then the others, each in segment order.
        let order = segments
            .clone()
            .enumerate()
            .filter(|&(_, segment)| packed(segment))
            .chain(
                segments
                    .clone()
                    .enumerate()
                    .filter(|&(_, segment)| !packed(segment)),
            );
        let mut packed_end = tiles_start;
        for (local, segment) in order {
            let range = offsets[segment].max(chunk.start)..offsets[segment + 1].min(chunk.end);
            if range.is_empty() {
                continue;
            }
            if packed(segment) {
                packed_end += 1;
            }
            let small = large_index[local] == Tile::NOT_LARGE;
            let mut tile_start = range.start;
            while tile_start < range.end {
                let tile_end = (tile_start + TILE_VALUES).min(range.end);
                let index = part.tiles.len() as u32;
                if small {
                    part.small_jobs.push(index);
                } else {
                    part.large_tiles.push(index);
                }
                part.tiles.push(Tile {
                    start: (tile_start - chunk.start) as u32,
                    end: (tile_end - chunk.start) as u32,
                    large: large_index[local],
                    segment: local as u32,
                    shift: values[offsets[segment]].to_bits(),
                });
                tile_start = tile_end;
            }
        }
        part.chunk_tiles.push(tiles_start..part.tiles.len() as u32);
        part.chunk_packed.push(tiles_start..packed_end);
        part.chunk_large_tiles
            .push(large_start..part.large_tiles.len() as u32);
    }
    part
}

/// Splits `0..count` into runs of at most `size` (at least one each).
pub fn runs(count: u32, size: u32) -> impl Iterator<Item = Range<u32>> {
    let size = size.max(1);
    (0..count.div_ceil(size)).map(move |i| i * size..((i + 1) * size).min(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(lengths: &[usize]) -> (Vec<f64>, Vec<usize>) {
        let mut offsets = vec![0];
        for &n in lengths {
            offsets.push(offsets.last().unwrap() + n);
        }
        let values = (0..*offsets.last().unwrap()).map(|i| i as f64).collect();
        (values, offsets)
    }

    #[test]
    fn small_segments_share_a_part_and_get_one_tile_each() {
        let (values, offsets) = window(&[3, 0, 1024, 7]);
        let parts = plan(&values, &offsets, TILE_VALUES);
        assert_eq!(parts.len(), 1);
        let part = &parts[0];
        assert_eq!(part.chunks, vec![0..1034]);
        assert_eq!(part.small_jobs, vec![0, 1, 2]);
        assert!(part.large.is_empty());
        // The packed segments (3 and 7 values) first, then the 1024.
        let tiles: Vec<_> = part
            .tiles
            .iter()
            .map(|t| (t.segment, t.start..t.end))
            .collect();
        assert_eq!(tiles, vec![(0, 0..3), (3, 1027..1034), (2, 3..1027)]);
        assert_eq!(part.tiles[1].shift, 1027f64.to_bits());
        assert_eq!(part.chunk_packed, vec![0..2]);
        assert_eq!(part.packed_jobs(), 2);
    }

    #[test]
    fn a_part_of_only_packed_segments_packs_them_all() {
        let (values, offsets) = window(&[1; 1000]);
        let part = &plan(&values, &offsets, TILE_VALUES)[0];
        assert_eq!(part.chunk_packed, part.chunk_tiles);
        assert_eq!(part.packed_jobs(), 1000);
        let (values, offsets) = window(&[PACKED_MAX + 1, PACKED_MAX]);
        let part = &plan(&values, &offsets, TILE_VALUES)[0];
        assert_eq!(part.chunk_packed, vec![0..1]);
        assert_eq!(part.tiles[0].segment, 1);
    }

    #[test]
    fn a_segment_beyond_a_chunk_is_a_part_of_several_chunks() {
        let (values, offsets) = window(&[10, 3 * TILE_VALUES + 5, 20]);
        let parts = plan(&values, &offsets, 2 * TILE_VALUES);
        assert_eq!(parts.len(), 3);
        let giant = &parts[1];
        assert_eq!(giant.segments, 1..2);
        assert_eq!(giant.chunks.len(), 2);
        assert_eq!(giant.samples(), 3 * TILE_VALUES + 5);
        assert_eq!(giant.large, vec![0]);
        assert_eq!(giant.tiles.len(), 4);
        assert_eq!(giant.chunk_tiles, vec![0..2, 2..4]);
        assert_eq!(giant.tiles[2].start, 0, "tiles are chunk-local");
        assert!(giant.tiles.iter().all(|t| t.shift == 10f64.to_bits()));
        assert_eq!(giant.group_tiles(1, &(0..1)), 2..4);
    }

    #[test]
    fn parts_close_at_the_chunk_size() {
        let (values, offsets) = window(&[TILE_VALUES, TILE_VALUES - 1, 1, 1]);
        let parts = plan(&values, &offsets, TILE_VALUES);
        let segments: Vec<_> = parts.iter().map(|p| p.segments.clone()).collect();
        assert_eq!(segments, vec![0..1, 1..3, 3..4]);
        assert_eq!(parts[1].large, vec![0]);
        // The one-value segment is packed: its tile comes first.
        assert_eq!(parts[1].small_jobs, vec![0]);
    }

    #[test]
    fn groups_of_large_segments_find_their_tiles() {
        let (values, offsets) = window(&[2000, 5, 9000, 1500]);
        let part = &plan(&values, &offsets, 4 * TILE_VALUES)[0];
        assert_eq!(part.large, vec![0, 2, 3]);
        // Tiles: 0 (seg 1, packed), 1 (seg 0), 2..5 (seg 2), 5 (seg 3).
        assert_eq!(part.large_tiles, vec![1, 2, 3, 4, 5]);
        assert_eq!(part.group_tiles(0, &(1..3)), 1..5);
        assert_eq!(part.group_tiles(0, &(0..1)), 0..1);
    }

    #[test]
    fn runs_cover_the_count() {
        let all: Vec<_> = runs(10, 4).collect();
        assert_eq!(all, vec![0..4, 4..8, 8..10]);
        assert_eq!(runs(0, 4).count(), 0);
    }
}
