#version 450
// Group norm (op_group_norm) and layer norm (op_layer_norm), + SiLU when
// asked. A workgroup owns one slice: a (sample, group) of C/groups channels
// x HW, or one row of C. Two passes over the slice (mean, then the sum of
// squared deviations), each a per-thread sum and a tree in shared memory.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer InBuf { float x_[]; };
layout(std430, binding = 2) readonly buffer GammaBuf { float g_[]; };
layout(std430, binding = 3) readonly buffer BetaBuf { float be_[]; };

layout(push_constant) uniform PC {
    uint o_off, x_off, g_off, b_off;
    uint slices, C, HW, groups;
    float eps;
    uint flags; // 1: gamma, 2: beta, 4: SiLU, 8: layer norm
} p;

shared float red[256];

float reduce_sum(float v) {
    uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint slice = group_linear();
    if (slice >= p.slices) return;
    uint lid = gl_LocalInvocationID.x;
    bool layer = (p.flags & 8u) != 0u;
    uint cg = layer ? p.C : p.C / p.groups;
    uint len = layer ? p.C : cg * p.HW;
    uint c0 = layer ? 0u : (slice % p.groups) * cg;       // first channel of the slice
    uint base = layer ? slice * p.C : ((slice / p.groups) * p.C + c0) * p.HW;
    uint per = layer ? 1u : p.HW;                          // elements per channel

    float s = 0.0;
    for (uint i = lid; i < len; i += 256u) s += x_[p.x_off + base + i];
    float mean = reduce_sum(s) / float(len);
    s = 0.0;
    for (uint i = lid; i < len; i += 256u) {
        float d = x_[p.x_off + base + i] - mean;
        s = fma(d, d, s);
    }
    float var = reduce_sum(s) / float(len);
    float rstd = 1.0 / sqrt(var + p.eps);
    for (uint i = lid; i < len; i += 256u) {
        uint c = c0 + i / per;
        float gam = (p.flags & 1u) != 0u ? g_[p.g_off + c] : 1.0;
        float bet = (p.flags & 2u) != 0u ? be_[p.b_off + c] : 0.0;
        float y = (x_[p.x_off + base + i] - mean) * rstd * gam + bet;
        if ((p.flags & 4u) != 0u) y = silu(y);
        o_[p.o_off + base + i] = y;
    }
}
