// Shared by every kernel: per-dispatch parameters, the tile of work, and the
// order-preserving key. The engine prepends this file to each kernel's source.

// Per-dispatch parameters: one 256-byte slot of the parameter buffer each.
struct Params {
    // First tile, job or slot of this dispatch, and how many.
    first: u32,
    count: u32,
    // Radix selection: bit position of this pass's digit.
    shift: u32,
    // Radix selection: first rank of this batch and ranks in it; for the small
    // selection, ranks per job.
    rank_first: u32,
    rank_count: u32,
    // Radix selection: ranks per large segment, and the first large segment of
    // the group that this dispatch serves.
    ranks: u32,
    group_first: u32,
    // Histogram buckets: number of bounds.
    bounds: u32,
}

// A run of one segment's values inside one chunk of the window.
struct Tile {
    // Chunk-local range of the values.
    start: u32,
    end: u32,
    // Index among the part's large segments (radix selection), or 0xffffffff.
    large: u32,
    // Part-local segment index (read by the host only).
    segment: u32,
    // Bits of the segment's first value, the shift of the moments' sums.
    shift: u64,
}

const WORKGROUP: u32 = 256u;

// Maps f64 bits to a u64 whose unsigned order is `f64::total_cmp`'s order:
// negative values have every bit flipped, the others only the sign bit.
fn order_key(bits: u64) -> u64 {
    let negative = (bits >> 63u) == 1lu;
    return select(bits | 0x8000000000000000lu, ~bits, negative);
}

// The linear index of a workgroup in a dispatch of (x, y, 1) workgroups.
fn workgroup_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.y * groups.x + id.x;
}

// Where an invocation of a packed kernel is in its dispatch.
struct Invocation {
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
}

// The item (tile or job) of one invocation of a packed kernel, which serves
// WORKGROUP items a workgroup.
fn packed_index(at: Invocation) -> u32 {
    return workgroup_index(at.id, at.groups) * WORKGROUP + at.lane;
}

// Radix selection (see radix_histogram.wgsl): digits of one byte.
const RADIX: u32 = 256u;

// Radix selection: the state of one slot (one wanted rank of one large
// segment): the key bytes chosen so far, and the rank still wanted among the
// values that share them.
struct SlotState {
    prefix: u64,
    rank: u32,
    padding: u32,
}
