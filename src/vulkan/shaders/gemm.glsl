// Tiled GEMM in shared memory: C (M, N) = alpha A (M, K) B + beta C + bias,
// a 64 x 64 tile of C per workgroup of 16 x 16 threads (4 x 4 outputs
// each), K in steps of 16. A is row-major (M, K); B is read by MODE:
//   MODE_NN   B (K, N) row-major                 (matmul, 1x1 convolution)
//   MODE_NT   B (N, K) row-major, used as B^T    (linear, matmul b_trans)
//   MODE_CONV B (C_in k k, Ho Wo) gathered from the image (N, C_in, H, W):
//             implicit-GEMM convolution with zero padding, no im2col buffer.
// Batch: workgroup z, operands advanced by their strides (elements).
// A_F16 / B_F16 (the *_a16, *_b16, *_ab16 variants, fp16 weights): that
// operand is stored as fp16 and widened to fp32 as the tile loads it; the
// arithmetic is fp32 either way.
#extension GL_GOOGLE_include_directive : enable
#include "common.glsl"

#define MODE_NN 0
#define MODE_NT 1
#define MODE_CONV 2

#define BM 64
#define BN 64
#define BK 16

layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;

#ifdef A_F16
#define A_TYPE float16_t
#else
#define A_TYPE float
#endif
#ifdef B_F16
#define B_TYPE float16_t
#else
#define B_TYPE float
#endif

layout(std430, binding = 0) buffer OutBuf { float o_[]; };
layout(std430, binding = 1) readonly buffer ABuf { A_TYPE a_[]; };
layout(std430, binding = 2) readonly buffer BBuf { B_TYPE b_[]; };
layout(std430, binding = 3) readonly buffer BiasBuf { float bias_[]; };

layout(push_constant) uniform PC {
    uint o_off, a_off, b_off, bias_off;
    uint M, N, K;
    uint sa, sb, so;   // batch strides
    float alpha, beta;
    uint flags;        // 1: bias per column n, 2: bias per row m, 4: add beta * C
    uint cin, H, W, ks, stride, pad, Wo; // MODE_CONV
} p;

shared float As[BK][BM + 1];
shared float Bs[BK][BN + 1];

float load_b(uint base, uint k, uint n) {
    if (k >= p.K || n >= p.N) return 0.0;
#if MODE == MODE_NN
    return float(b_[base + k * p.N + n]);
#elif MODE == MODE_NT
    return float(b_[base + n * p.K + k]);
#else
    uint kk = p.ks * p.ks;
    uint ci = k / kk, r = k - ci * kk;
    uint ky = r / p.ks, kx = r - ky * p.ks;
    uint oy = n / p.Wo, ox = n - oy * p.Wo;
    int iy = int(oy * p.stride + ky) - int(p.pad);
    int ix = int(ox * p.stride + kx) - int(p.pad);
    if (iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) return 0.0;
    return float(b_[base + (ci * p.H + uint(iy)) * p.W + uint(ix)]);
#endif
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16 + tx;
    uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM, z = gl_WorkGroupID.z;
    uint abase = p.a_off + z * p.sa, bbase = p.b_off + z * p.sb, obase = p.o_off + z * p.so;

    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // A tile: 64 rows x 16 k, consecutive threads along k
        for (uint r = 0; r < 4; r++) {
            uint e = tid + 256 * r;
            uint ml = e / BK, kl = e % BK;
            uint gm = m0 + ml, gk = k0 + kl;
            As[kl][ml] = (gm < p.M && gk < p.K) ? float(a_[abase + gm * p.K + gk]) : 0.0;
        }
        // B tile: 16 k x 64 n, consecutive threads along n (along k for NT)
        for (uint r = 0; r < 4; r++) {
            uint e = tid + 256 * r;
#if MODE == MODE_NT
            uint nl = e / BK, kl = e % BK;
#else
            uint kl = e / BN, nl = e % BN;
#endif
            Bs[kl][nl] = load_b(bbase, k0 + kl, n0 + nl);
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier();
    }

    for (int i = 0; i < 4; i++) {
        uint m = m0 + ty + 16 * i;
        if (m >= p.M) continue;
        for (int j = 0; j < 4; j++) {
            uint n = n0 + tx + 16 * j;
            if (n >= p.N) continue;
            uint idx = obase + m * p.N + n;
            float v = p.alpha * acc[i][j];
            if ((p.flags & 4u) != 0u) v += p.beta * o_[idx];
            if ((p.flags & 1u) != 0u) v += bias_[p.bias_off + n];
            if ((p.flags & 2u) != 0u) v += bias_[p.bias_off + m];
            o_[idx] = v;
        }
    }
}
