#version 450
// The DDIM transfer (op_ddim_transfer), per row b of n values with host
// coefficients cf[4b..4b+3] = sqrt(1-a), sqrt(a), sqrt(a2), sqrt(1-a2):
//   x0 = (x - sqrt(1-a) eps) / sqrt(a)   [clamped]
//   out = sqrt(a2) x0 + sqrt(1-a2) eps
// `precise`: no fused multiply-add, as torch's float32 order on the CPU.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer EpsBuf { float e_[]; };
layout(std430, binding = 2) readonly buffer XBuf { float x_[]; };
layout(std430, binding = 3) readonly buffer CoefBuf { float cf_[]; };
layout(std430, binding = 4) buffer X0Buf { float x0_[]; };

layout(push_constant) uniform PC {
    uint o_off, e_off, x_off, c_off, x0_off;
    uint n, total, flags; // 1: clip, 2: write x0
    float clip_range;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint b = i / p.n;
        float sb = cf_[p.c_off + 4u * b], sa = cf_[p.c_off + 4u * b + 1u];
        float sa2 = cf_[p.c_off + 4u * b + 2u], dir = cf_[p.c_off + 4u * b + 3u];
        float e = e_[p.e_off + i];
        precise float x0 = (x_[p.x_off + i] - sb * e) / sa;
        if ((p.flags & 1u) != 0u) x0 = clamp(x0, -p.clip_range, p.clip_range);
        if ((p.flags & 2u) != 0u) x0_[p.x0_off + i] = x0;
        precise float r = sa2 * x0 + dir * e;
        o_[p.o_off + i] = r;
    }
}
