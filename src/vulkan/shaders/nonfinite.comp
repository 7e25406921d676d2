#version 450
// op_count_nonfinite: values whose exponent bits are all set (inf, NaN),
// counted per thread, then one atomic add per thread with any.
layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer CountBuf { uint count_[]; };
layout(std430, binding = 1) readonly buffer XBuf { float x_[]; };

layout(push_constant) uniform PC {
    uint c_off, x_off;
    uint n;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u, k = 0u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride)
        k += (floatBitsToUint(x_[p.x_off + i]) & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
    if (k != 0u) atomicAdd(count_[p.c_off], k);
}
