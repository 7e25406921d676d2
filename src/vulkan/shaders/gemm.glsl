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
// COOPMAT (the *_cm variants, GL_NV_cooperative_matrix, tensor cores): the
// same tiles are stored as fp16 in shared memory and multiplied by the
// subgroups as lM x lN x lK cooperative matrices (specialisation constants:
// a shape the device reports for fp16 x fp16 -> fp32) with fp32
// accumulators; each subgroup takes tiles of C in turn (at most
// CM_MAX_TILES). The accumulators go through shared memory to the same
// epilogue. Inputs are rounded to fp16: results differ from the fp32 path.
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

#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(constant_id = 0) const uint lM = 16;
layout(constant_id = 1) const uint lN = 16;
layout(constant_id = 2) const uint lK = 16;
#define CM_MAX_TILES 8
// strides in multiples of 16 bytes (cooperative loads and stores)
#define AS_STRIDE (BM + 8)
#define BS_STRIDE (BN + 8)
#define CS_STRIDE (BN + 4)
#define TILE_T float16_t
shared float Cs[BM * CS_STRIDE];
#else
#define AS_STRIDE (BM + 1)
#define BS_STRIDE (BN + 1)
#define TILE_T float
#endif
// As: the A tile k-major (As[k * AS_STRIDE + m]); Bs: the B tile (Bs[k * BS_STRIDE + n])
shared TILE_T As[BK * AS_STRIDE];
shared TILE_T Bs[BK * BS_STRIDE];

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

#ifdef COOPMAT
    const uint tiles_m = BM / lM, tiles = tiles_m * (BN / lN);
    fcoopmatNV<32, gl_ScopeSubgroup, lM, lN> cacc[CM_MAX_TILES];
    for (uint i = 0; i < CM_MAX_TILES; i++) cacc[i] = fcoopmatNV<32, gl_ScopeSubgroup, lM, lN>(0.0);
#else
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
#endif

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // A tile: 64 rows x 16 k, consecutive threads along k
        for (uint r = 0; r < 4; r++) {
            uint e = tid + 256 * r;
            uint ml = e / BK, kl = e % BK;
            uint gm = m0 + ml, gk = k0 + kl;
            As[kl * AS_STRIDE + ml] = TILE_T((gm < p.M && gk < p.K) ? float(a_[abase + gm * p.K + gk]) : 0.0);
        }
        // B tile: 16 k x 64 n, consecutive threads along n (along k for NT)
        for (uint r = 0; r < 4; r++) {
            uint e = tid + 256 * r;
#if MODE == MODE_NT
            uint nl = e / BK, kl = e % BK;
#else
            uint kl = e / BN, nl = e % BN;
#endif
            Bs[kl * BS_STRIDE + nl] = TILE_T(load_b(bbase, k0 + kl, n0 + nl));
        }
        barrier();
#ifdef COOPMAT
        for (uint kk = 0; kk < BK; kk += lK) {
            for (uint i = 0; i < CM_MAX_TILES; i++) {
                uint t = gl_SubgroupID + i * gl_NumSubgroups;
                if (t < tiles) { // uniform in the subgroup; a constant-bound loop unrolls (constant cacc index)
                    uint tm = t % tiles_m, tn = t / tiles_m;
                    fcoopmatNV<16, gl_ScopeSubgroup, lM, lK> ma;
                    fcoopmatNV<16, gl_ScopeSubgroup, lK, lN> mb;
                    coopMatLoadNV(ma, As, kk * AS_STRIDE + tm * lM, AS_STRIDE, true); // As is column-major A
                    coopMatLoadNV(mb, Bs, kk * BS_STRIDE + tn * lN, BS_STRIDE, false);
                    cacc[i] = coopMatMulAddNV(ma, mb, cacc[i]);
                }
            }
        }
#else
        for (uint kk = 0; kk < BK; kk++) {
            float av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = As[kk * AS_STRIDE + ty + 16 * i];
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk * BS_STRIDE + tx + 16 * j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
#endif
        barrier();
    }
#ifdef COOPMAT
    for (uint i = 0; i < CM_MAX_TILES; i++) {
        uint t = gl_SubgroupID + i * gl_NumSubgroups;
        if (t < tiles) {
            uint tm = t % tiles_m, tn = t / tiles_m;
            coopMatStoreNV(cacc[i], Cs, tm * lM * CS_STRIDE + tn * lN, CS_STRIDE, false);
        }
    }
    barrier();
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = Cs[(ty + 16 * i) * CS_STRIDE + tx + 16 * j];
#endif

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
