// Radix selection, second half of a pass (see radix_histogram.wgsl): for each
// slot of the group, the byte whose count holds the wanted rank joins the
// prefix, the rank becomes the rank among the values with that byte, and the
// slot's counts are cleared for the next pass. One invocation a slot.

const CHOOSE_WORKGROUP: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> states: array<SlotState>;
@group(0) @binding(2) var<storage, read_write> histograms: array<atomic<u32>>;

@compute @workgroup_size(CHOOSE_WORKGROUP)
fn radix_choose(
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let member_slot = workgroup_index(id, groups) * CHOOSE_WORKGROUP + lane;
    if member_slot >= params.count {
        return;
    }
    let slot = params.group_first * params.ranks + member_slot;
    var state = states[slot];
    var below = 0u;
    var digit = 0u;
    var found = false;
    for (var d = 0u; d < RADIX; d++) {
        let count = atomicLoad(&histograms[member_slot * RADIX + d]);
        if !found {
            if state.rank < below + count {
                digit = d;
                found = true;
                state.rank -= below;
            } else {
                below += count;
            }
        }
        atomicStore(&histograms[member_slot * RADIX + d], 0u);
    }
    state.prefix |= u64(digit) << params.shift;
    states[slot] = state;
}
