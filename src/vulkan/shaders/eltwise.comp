#version 450
// Elementwise ops over n outputs, a grid-stride loop: add, mul, scale, the
// activations (op_silu, op_gelu, op_gelu_tanh, op_quick_gelu), GEGLU
// (in (rows, 2C) = [hidden | gate] -> hidden * gelu(gate)) and the
// classifier-free guidance combine u + g (c - u). In place allowed except
// GEGLU.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer ABuf { float a_[]; };
layout(std430, binding = 2) readonly buffer BBuf { float b_[]; };

layout(push_constant) uniform PC {
    uint o_off, a_off, b_off;
    uint n, op, C;
    float s;
} p;

#define OP_ADD 0u
#define OP_MUL 1u
#define OP_SCALE 2u
#define OP_SILU 3u
#define OP_GELU 4u
#define OP_GELU_TANH 5u
#define OP_QUICK_GELU 6u
#define OP_GUIDANCE 7u
#define OP_GEGLU 8u

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float r;
        if (p.op == OP_GEGLU) {
            uint row = i / p.C, c = i - row * p.C;
            uint src = p.a_off + row * 2u * p.C + c;
            r = a_[src] * gelu_erf(a_[src + p.C]);
        } else {
            float a = a_[p.a_off + i];
            switch (p.op) {
            case OP_ADD: r = a + b_[p.b_off + i]; break;
            case OP_MUL: r = a * b_[p.b_off + i]; break;
            case OP_SCALE: r = a * p.s; break;
            case OP_SILU: r = silu(a); break;
            case OP_GELU: r = gelu_erf(a); break;
            case OP_GELU_TANH: r = gelu_tanh(a); break;
            case OP_QUICK_GELU: r = quick_gelu(a); break;
            default: r = a + p.s * (b_[p.b_off + i] - a); break; // OP_GUIDANCE
            }
        }
        o_[p.o_off + i] = r;
    }
}
