/* Private to the kernels (src/core/ops*.c): a portable SIMD float vector
 * (GCC/Clang vector extensions, as wide as the target's registers), fused
 * multiply-add, and a vectorised exp accurate to about 1 ulp.
 *
 * The Makefile builds in ISO C mode, where GCC does not contract a*b+c into
 * an FMA, so vfma() uses the intrinsic when the target has FMA. No fast-math:
 * every operation here is an ordinary IEEE operation in a fixed order, so a
 * kernel gives the same bits whichever thread runs it. */
#ifndef OIR_CORE_OPS_SIMD_H
#define OIR_CORE_OPS_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
#elif defined(__AVX__)
#include <immintrin.h>
#define VL 8
#else
#define VL 4
#endif

typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));
typedef uint32_t vu __attribute__((vector_size(VL * sizeof(uint32_t))));

static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf vset1(float x) {
#if defined(__AVX512F__)
    return (vf)_mm512_set1_ps(x);
#elif defined(__AVX__)
    return (vf)_mm256_set1_ps(x);
#else
    vf v;
    for (int i = 0; i < VL; i++) v[i] = x;
    return v;
#endif
}

static inline vi vset1i(int32_t x) {
    vi v;
    for (int i = 0; i < VL; i++) v[i] = x;
    return v;
}

/* a*b + c, fused where the target has FMA. */
static inline vf vfma(vf a, vf b, vf c) {
#if defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__AVX__) && defined(__FMA__)
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* Scalar a*b + c computed exactly as one lane of vfma (for loop tails). */
static inline float sfma(float a, float b, float c) {
#if defined(__AVX512F__) || (defined(__AVX__) && defined(__FMA__))
    return fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

/* Lane-wise a > b ? a : b (and a < b ? a : b): a NaN in b passes through,
 * as with the x86 max/min instructions. */
static inline vf vmax(vf a, vf b) {
#if defined(__AVX512F__)
    return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
    return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
    vi m = a > b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
#endif
}

static inline vf vmin(vf a, vf b) {
#if defined(__AVX512F__)
    return (vf)_mm512_min_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
    return (vf)_mm256_min_ps((__m256)a, (__m256)b);
#else
    vi m = a < b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
#endif
}

static inline float vhsum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < VL; i++) s += v[i];
    return s;
}

static inline float vhmax(vf v) {
    float m = v[0];
    for (int i = 1; i < VL; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* exp(x) lane-wise, Cephes' expf polynomial (about 1 ulp on [-87, 88]).
 * x <= -88 (and -inf) gives exactly 0; x >= 88 saturates near 1.65e38. */
static inline vf vexp(vf x) {
    const vf magic = vset1(12582912.0f); /* 1.5 * 2^23: round to nearest */
    x = vmax(vset1(-88.0f), x);
    x = vmin(vset1(88.0f), x);
    vf t = vfma(x, vset1(1.44269504088896341f), magic);
    vf n = t - magic;
    vu ni = (vu)t - (vu)magic; /* the integer n in the low mantissa bits */
    vf r = vfma(n, vset1(-0.693359375f), x);
    r = vfma(n, vset1(2.12194440e-4f), r);
    vf p = vset1(1.9875691500E-4f);
    p = vfma(p, r, vset1(1.3981999507E-3f));
    p = vfma(p, r, vset1(8.3334519073E-3f));
    p = vfma(p, r, vset1(4.1665795894E-2f));
    p = vfma(p, r, vset1(1.6666665459E-1f));
    p = vfma(p, r, vset1(5.0000001201E-1f));
    p = vfma(p, r * r, r + 1.0f);
    vu e = (ni + 127u) << 23; /* 2^n; n = -127 (x near -88) gives 0 */
    return p * (vf)e;
}

/* 2^x lane-wise, Cephes' exp2f polynomial (relative error about 2e-7 on
 * [-127, 127]). x <= -127 (and -inf) gives exactly 0. */
static inline vf vexp2(vf x) {
    const vf magic = vset1(12582912.0f);
    x = vmax(vset1(-127.0f), x);
    x = vmin(vset1(127.0f), x);
    vf t = x + magic;
    vf r = x - (t - magic); /* in [-0.5, 0.5] */
    vu ni = (vu)t - (vu)magic;
    vf p = vset1(1.535336188319500E-4f);
    p = vfma(p, r, vset1(1.339887440266574E-3f));
    p = vfma(p, r, vset1(9.618437357674640E-3f));
    p = vfma(p, r, vset1(5.550332471162809E-2f));
    p = vfma(p, r, vset1(2.402264791363012E-1f));
    p = vfma(p, r, vset1(6.931472028550421E-1f));
    p = vfma(p, r, vset1(1.0f));
    vu e = (ni + 127u) << 23;
    return p * (vf)e;
}

/* Scalar exp with the same polynomial, for loop tails (so that a value does
 * not depend on whether it fell in a vector or in the tail). */
static inline float sexp(float x) {
    vf v = vexp(vset1(x));
    return v[0];
}

#endif
