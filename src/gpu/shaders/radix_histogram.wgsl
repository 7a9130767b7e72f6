// Exact quantiles of large segments by most-significant-digit radix selection
// on order keys, eight passes of one byte each. A slot is one wanted rank of
// one large segment. Each pass counts, per slot, the next byte of the values
// that match the slot's prefix (this kernel, one workgroup a tile, counting in
// workgroup memory first), then `radix_choose` picks the byte whose counts
// hold the rank. After the last pass the prefix is the key of the value at
// that rank.

const RANK_BATCH: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<u64>;
@group(0) @binding(2) var<storage, read> tiles: array<Tile>;
// Tiles of the large segments, by chunk then segment.
@group(0) @binding(3) var<storage, read> large_tiles: array<u32>;
@group(0) @binding(4) var<storage, read> states: array<SlotState>;
// Per slot of the group, RADIX counts.
@group(0) @binding(5) var<storage, read_write> histograms: array<atomic<u32>>;

var<workgroup> local_counts: array<atomic<u32>, 2048>;
var<workgroup> prefixes: array<u64, RANK_BATCH>;

@compute @workgroup_size(WORKGROUP)
fn radix_histogram(
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = workgroup_index(id, groups);
    if index >= params.count {
        return;
    }
    let tile = tiles[large_tiles[params.first + index]];
    // The segment's place in the group, and its first slot there.
    let member = tile.large - params.group_first;
    let batch = params.rank_count;
    for (var b = lane; b < batch * RADIX; b += WORKGROUP) {
        atomicStore(&local_counts[b], 0u);
    }
    if lane < batch {
        let slot = (params.group_first + member) * params.ranks + params.rank_first + lane;
        prefixes[lane] = states[slot].prefix;
    }
    workgroupBarrier();
    // The bits above this pass's digit; none on the first pass.
    let above = select(0xfffffffffffffffflu << (params.shift + 8u), 0lu, params.shift >= 56u);
    for (var i = tile.start + lane; i < tile.end; i += WORKGROUP) {
        let key = order_key(values[i]);
        let digit = u32((key >> params.shift) & 0xfflu);
        for (var r = 0u; r < batch; r++) {
            if (key & above) == (prefixes[r] & above) {
                atomicAdd(&local_counts[r * RADIX + digit], 1u);
            }
        }
    }
    workgroupBarrier();
    for (var b = lane; b < batch * RADIX; b += WORKGROUP) {
        let count = atomicLoad(&local_counts[b]);
        if count != 0u {
            let slot = member * params.ranks + params.rank_first + b / RADIX;
            atomicAdd(&histograms[slot * RADIX + b % RADIX], count);
        }
    }
}
