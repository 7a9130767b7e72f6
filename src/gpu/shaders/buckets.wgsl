// Histogram bucket counts of each tile: the number of values in each bucket
// `(bounds[b - 1], bounds[b]]`, not yet cumulative; values above the last
// bound are not counted. The host adds a segment's tiles and accumulates.
// `buckets`: one workgroup a tile; `buckets_packed`: one invocation a tile,
// for packed (short) segments, counting straight into its own row.

const MAX_BOUNDS: u32 = 1024u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<u64>;
@group(0) @binding(2) var<storage, read> tiles: array<Tile>;
@group(0) @binding(3) var<storage, read> bounds: array<f64>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;

var<workgroup> local_counts: array<atomic<u32>, MAX_BOUNDS>;

// The first bound that is not below x: x's bucket (`bound_count` when x is
// above every bound).
fn bucket_of(x: f64, bound_count: u32) -> u32 {
    var low = 0u;
    var high = bound_count;
    while low < high {
        let middle = (low + high) / 2u;
        if bounds[middle] < x {
            low = middle + 1u;
        } else {
            high = middle;
        }
    }
    return low;
}

@compute @workgroup_size(WORKGROUP)
fn buckets(
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = workgroup_index(id, groups);
    if index >= params.count {
        return;
    }
    let tile = tiles[params.first + index];
    let bound_count = params.bounds;
    for (var b = lane; b < bound_count; b += WORKGROUP) {
        atomicStore(&local_counts[b], 0u);
    }
    workgroupBarrier();
    for (var i = tile.start + lane; i < tile.end; i += WORKGROUP) {
        let x = bitcast<f64>(values[i]);
        // The first bound that is not below x: x's bucket.
        let bucket = bucket_of(x, bound_count);
        if bucket < bound_count {
            atomicAdd(&local_counts[bucket], 1u);
        }
    }
    workgroupBarrier();
    for (var b = lane; b < bound_count; b += WORKGROUP) {
        counts[(params.first + index) * bound_count + b] = atomicLoad(&local_counts[b]);
    }
}

@compute @workgroup_size(WORKGROUP)
fn buckets_packed(at: Invocation) {
    let index = packed_index(at);
    if index >= params.count {
        return;
    }
    let tile = tiles[params.first + index];
    let bound_count = params.bounds;
    let row = (params.first + index) * bound_count;
    for (var b = 0u; b < bound_count; b++) {
        counts[row + b] = 0u;
    }
    for (var i = tile.start; i < tile.end; i++) {
        let bucket = bucket_of(bitcast<f64>(values[i]), bound_count);
        if bucket < bound_count {
            counts[row + bucket] += 1u;
        }
    }
}
