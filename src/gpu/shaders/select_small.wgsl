// Exact quantiles of small segments (at most SMALL_MAX values), one workgroup
// a segment: the keys go to workgroup memory, each value counts the values
// below it and at or below it, and the value whose range of ranks holds a
// wanted rank writes itself out. Equal values write the same key.
// `select_packed` does the same for packed (short) segments with one
// invocation a segment, reading the keys from the values buffer.

const SMALL_MAX: u32 = 1024u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<u64>;
@group(0) @binding(2) var<storage, read> tiles: array<Tile>;
// Per job: the tile that holds its segment.
@group(0) @binding(3) var<storage, read> jobs: array<u32>;
// Per job, `params.rank_count` wanted 0-based ranks.
@group(0) @binding(4) var<storage, read> ranks: array<u32>;
@group(0) @binding(5) var<storage, read_write> results: array<u64>;

var<workgroup> keys: array<u64, SMALL_MAX>;

// Writes `key` for each wanted rank of `job` in `[below, at_or_below)`, the
// ranks that values equal to it occupy.
fn write_if_wanted(job: u32, key: u64, below: u32, at_or_below: u32) {
    let wanted = params.rank_count;
    for (var r = 0u; r < wanted; r++) {
        let rank = ranks[job * wanted + r];
        if below <= rank && rank < at_or_below {
            results[job * wanted + r] = key;
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn select_small(
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = workgroup_index(id, groups);
    if index >= params.count {
        return;
    }
    let job = params.first + index;
    let tile = tiles[jobs[job]];
    let n = tile.end - tile.start;
    for (var i = lane; i < n; i += WORKGROUP) {
        keys[i] = order_key(values[tile.start + i]);
    }
    workgroupBarrier();
    for (var i = lane; i < n; i += WORKGROUP) {
        let key = keys[i];
        var below = 0u;
        var at_or_below = 0u;
        for (var j = 0u; j < n; j++) {
            let other = keys[j];
            below += select(0u, 1u, other < key);
            at_or_below += select(0u, 1u, other <= key);
        }
        write_if_wanted(job, key, below, at_or_below);
    }
}

@compute @workgroup_size(WORKGROUP)
fn select_packed(at: Invocation) {
    let index = packed_index(at);
    if index >= params.count {
        return;
    }
    let job = params.first + index;
    let tile = tiles[jobs[job]];
    for (var i = tile.start; i < tile.end; i++) {
        let key = order_key(values[i]);
        var below = 0u;
        var at_or_below = 0u;
        for (var j = tile.start; j < tile.end; j++) {
            let other = order_key(values[j]);
            below += select(0u, 1u, other < key);
            at_or_below += select(0u, 1u, other <= key);
        }
        write_if_wanted(job, key, below, at_or_below);
    }
}
