#version 450
// Data movement over n outputs, a grid-stride loop:
//   0 upsample_nearest2x  planes (H = d0, W = d1) -> (2H, 2W)
//   1 concat_channels     per sample [a (d0 floats) | b (d1 floats)]
//   2 add_channel_bias    out (N*C planes of d0) += a[plane]   (out is x)
//   3 transpose           each (R = d0, Cc = d1) matrix -> (Cc, R)
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer ABuf { float a_[]; };
layout(std430, binding = 2) readonly buffer BBuf { float b_[]; };

layout(push_constant) uniform PC {
    uint o_off, a_off, b_off;
    uint n, op, d0, d1;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        if (p.op == 0u) {
            uint W2 = 2u * p.d1, plane_out = 4u * p.d0 * p.d1;
            uint pl = i / plane_out, r = i - pl * plane_out;
            uint y = r / W2, x = r - y * W2;
            o_[p.o_off + i] = a_[p.a_off + pl * p.d0 * p.d1 + (y >> 1) * p.d1 + (x >> 1)];
        } else if (p.op == 1u) {
            uint per = p.d0 + p.d1;
            uint s = i / per, r = i - s * per;
            o_[p.o_off + i] = r < p.d0 ? a_[p.a_off + s * p.d0 + r] : b_[p.b_off + s * p.d1 + (r - p.d0)];
        } else if (p.op == 2u) {
            o_[p.o_off + i] += a_[p.a_off + i / p.d0];
        } else {
            uint per = p.d0 * p.d1;
            uint s = i / per, r = i - s * per;
            uint c = r / p.d0, row = r - c * p.d0; // out (Cc, R): element (c, row)
            o_[p.o_off + i] = a_[p.a_off + s * per + row * p.d1 + c];
        }
    }
}
