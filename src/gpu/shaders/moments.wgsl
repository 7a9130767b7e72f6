// Moments of each tile: sums (plain, shifted by the segment's first value, and
// of squared shifted values) and the extremes as order keys. The host adds the
// tiles of a segment together. `moments`: one workgroup a tile;
// `moments_packed`: one invocation a tile, for packed (short) segments.

struct Partial {
    sum: f64,
    shifted: f64,
    squares: f64,
    min_key: u64,
    max_key: u64,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<u64>;
@group(0) @binding(2) var<storage, read> tiles: array<Tile>;
@group(0) @binding(3) var<storage, read_write> partials: array<Partial>;

// The moments of the values `tile.start + first`, then every `step`-th.
fn tile_moments(tile: Tile, first: u32, step: u32) -> Partial {
    let shift = bitcast<f64>(tile.shift);
    var out = Partial(0.0lf, 0.0lf, 0.0lf, 0xfffffffffffffffflu, 0lu);
    for (var i = tile.start + first; i < tile.end; i += step) {
        let bits = values[i];
        let x = bitcast<f64>(bits);
        let d = x - shift;
        out.sum += x;
        out.shifted += d;
        out.squares += d * d;
        let key = order_key(bits);
        out.min_key = min(out.min_key, key);
        out.max_key = max(out.max_key, key);
    }
    return out;
}

var<workgroup> sums: array<f64, WORKGROUP>;
var<workgroup> shifted_sums: array<f64, WORKGROUP>;
var<workgroup> square_sums: array<f64, WORKGROUP>;
var<workgroup> min_keys: array<u64, WORKGROUP>;
var<workgroup> max_keys: array<u64, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn moments(
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = workgroup_index(id, groups);
    if index >= params.count {
        return;
    }
    let own = tile_moments(tiles[params.first + index], lane, WORKGROUP);
    sums[lane] = own.sum;
    shifted_sums[lane] = own.shifted;
    square_sums[lane] = own.squares;
    min_keys[lane] = own.min_key;
    max_keys[lane] = own.max_key;
    workgroupBarrier();
    for (var width = WORKGROUP / 2u; width > 0u; width /= 2u) {
        if lane < width {
            sums[lane] += sums[lane + width];
            shifted_sums[lane] += shifted_sums[lane + width];
            square_sums[lane] += square_sums[lane + width];
            min_keys[lane] = min(min_keys[lane], min_keys[lane + width]);
            max_keys[lane] = max(max_keys[lane], max_keys[lane + width]);
        }
        workgroupBarrier();
    }
    if lane == 0u {
        partials[params.first + index] = Partial(
            sums[0], shifted_sums[0], square_sums[0], min_keys[0], max_keys[0]
        );
    }
}

@compute @workgroup_size(WORKGROUP)
fn moments_packed(at: Invocation) {
    let index = packed_index(at);
    if index >= params.count {
        return;
    }
    partials[params.first + index] = tile_moments(tiles[params.first + index], 0u, 1u);
}
