#version 450
// Memory-efficient scaled-dot-product attention (op_attention's contract):
// q (B, Tq, heads*D), k, v (B, Tk, heads*D) -> out (B, Tq, heads*D). A
// workgroup takes 64 queries of one (batch, head); each thread owns one
// query, its q row and its output row in registers. Keys and values stream
// through shared memory in tiles of BKEYS rows, with an online softmax
// (running max m, running sum l, output rescaled by exp(m_old - m_new)), so
// no Tq x Tk matrix exists anywhere. Hidden keys (key_mask byte 0; causal:
// key > query) get no weight; a query that sees no key outputs 0.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const int D = 64;     // head dim
layout(constant_id = 1) const int BKEYS = 32; // keys per tile

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer QBuf { float q_[]; };
layout(std430, binding = 2) readonly buffer KBuf { float k_[]; };
layout(std430, binding = 3) readonly buffer VBuf { float v_[]; };
layout(std430, binding = 4) readonly buffer MaskBuf { uint m_[]; };

layout(push_constant) uniform PC {
    uint o_off, q_off, k_off, v_off, m_off;
    uint Tq, Tk, heads;
    float scale;
    uint flags; // 1: key mask, 2: causal
} p;

shared float Ks[BKEYS * D];
shared float Vs[BKEYS * D];

bool key_visible(uint b, uint key) {
    if ((p.flags & 1u) == 0u) return true;
    uint bi = p.m_off + b * p.Tk + key;
    return ((m_[bi >> 2] >> ((bi & 3u) * 8u)) & 0xffu) != 0u;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y;
    uint q0 = gl_WorkGroupID.x * 64u, qi = q0 + lid;
    bool valid = qi < p.Tq;
    bool causal = (p.flags & 2u) != 0u;
    uint hd = p.heads * uint(D);

    float q[D], acc[D];
    for (int c = 0; c < D; c++) acc[c] = 0.0;
    if (valid) {
        uint base = p.q_off + (b * p.Tq + qi) * hd + h * uint(D);
        for (int c = 0; c < D; c++) q[c] = q_[base + uint(c)] * p.scale;
    }
    float m = NEG_INF, l = 0.0;

    uint kend = causal ? min(p.Tk, q0 + 64u) : p.Tk;
    for (uint k0 = 0u; k0 < kend; k0 += uint(BKEYS)) {
        uint nk = min(uint(BKEYS), kend - k0);
        barrier();
        for (uint e = lid; e < nk * uint(D); e += 64u) {
            uint j = e / uint(D), c = e - j * uint(D);
            uint src = (b * p.Tk + k0 + j) * hd + h * uint(D) + c;
            Ks[e] = k_[p.k_off + src];
            Vs[e] = v_[p.v_off + src];
        }
        barrier();
        if (valid) {
            float s[BKEYS];
            float mt = NEG_INF;
            for (uint j = 0u; j < nk; j++) {
                uint key = k0 + j;
                float sc = NEG_INF;
                if (key_visible(b, key) && !(causal && key > qi)) {
                    sc = 0.0;
                    for (int c = 0; c < D; c++) sc = fma(q[c], Ks[j * uint(D) + uint(c)], sc);
                }
                s[j] = sc;
                mt = max(mt, sc);
            }
            float mn = max(m, mt);
            if (mn != NEG_INF) { // some key visible so far
                float alpha = m == NEG_INF ? 0.0 : exp(m - mn);
                for (int c = 0; c < D; c++) acc[c] *= alpha;
                float ls = 0.0;
                for (uint j = 0u; j < nk; j++) {
                    if (s[j] == NEG_INF) continue;
                    float pj = exp(s[j] - mn);
                    ls += pj;
                    for (int c = 0; c < D; c++) acc[c] = fma(pj, Vs[j * uint(D) + uint(c)], acc[c]);
                }
                l = l * alpha + ls;
                m = mn;
            }
        }
    }
    if (valid) {
        uint base = p.o_off + (b * p.Tq + qi) * hd + h * uint(D);
        float inv = l > 0.0 ? 1.0 / l : 0.0;
        for (int c = 0; c < D; c++) o_[base + uint(c)] = acc[c] * inv;
    }
}
