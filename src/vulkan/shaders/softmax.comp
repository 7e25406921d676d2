#version 450
// Row softmax (op_softmax): x (rows, cols), a workgroup per row: the max,
// the sum of exp(x - max), then the quotients. A row of -inf gives zeros.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer InBuf { float x_[]; };

layout(push_constant) uniform PC {
    uint o_off, x_off;
    uint rows, cols;
} p;

shared float red[256];

void main() {
    uint row = group_linear();
    if (row >= p.rows) return;
    uint lid = gl_LocalInvocationID.x;
    uint base = row * p.cols;
    float mx = NEG_INF;
    for (uint i = lid; i < p.cols; i += 256u) mx = max(mx, x_[p.x_off + base + i]);
    red[lid] = mx;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (lid < s) red[lid] = max(red[lid], red[lid + s]);
        barrier();
    }
    mx = red[0];
    barrier();
    float sum = 0.0;
    if (mx != NEG_INF)
        for (uint i = lid; i < p.cols; i += 256u) sum += exp(x_[p.x_off + base + i] - mx);
    red[lid] = sum;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier();
    }
    float inv = mx != NEG_INF ? 1.0 / red[0] : 0.0;
    for (uint i = lid; i < p.cols; i += 256u) {
        float v = x_[p.x_off + base + i];
        o_[p.o_off + base + i] = mx != NEG_INF ? exp(v - mx) * inv : 0.0;
    }
}
