/* CPU kernels: group norm, layer norm, activations, softmax. See ops.h.
 *
 * Statistics are accumulated in double, in NSUM fixed interleaved partial
 * sums (vectorisable without reassociation), two passes (mean, then the sum
 * of squared deviations), so the variance does not cancel. Each chunk of
 * the worker pool (pool.h) owns whole (sample, group) slices or rows: the
 * bits of a result do not depend on the thread count. */
#include <math.h>
#include <stddef.h>

#include "core/ops.h"
#include "core/ops_simd.h"
#include "core/pool.h"

#define NSUM 8

static double sum_f(const float *x, size_t n) {
    double acc[NSUM] = {0};
    size_t i = 0;
    for (; i + NSUM <= n; i += NSUM)
        for (int j = 0; j < NSUM; j++) acc[j] += (double)x[i + j];
    for (; i < n; i++) acc[i % NSUM] += (double)x[i];
    double s = 0;
    for (int j = 0; j < NSUM; j++) s += acc[j];
    return s;
}

static double sum_sqdev(const float *x, size_t n, double mean) {
    double acc[NSUM] = {0};
    size_t i = 0;
    for (; i + NSUM <= n; i += NSUM)
        for (int j = 0; j < NSUM; j++) {
            double d = (double)x[i + j] - mean;
            acc[j] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        acc[i % NSUM] += d * d;
    }
    double s = 0;
    for (int j = 0; j < NSUM; j++) s += acc[j];
    return s;
}

/* y = x*a + b over n floats, then SiLU if fuse_silu. In place allowed. */
static void affine_row(float *y, const float *x, size_t n, float a, float b, int fuse_silu) {
    size_t i = 0;
    if (fuse_silu) {
        for (; i + VL <= n; i += VL) {
            vf v = vfma(vload(x + i), vset1(a), vset1(b));
            vstore(y + i, v / (1.0f + vexp(-v)));
        }
        for (; i < n; i++) {
            float v = sfma(x[i], a, b);
            y[i] = v / (1.0f + sexp(-v));
        }
    } else {
        for (; i + VL <= n; i += VL) vstore(y + i, vfma(vload(x + i), vset1(a), vset1(b)));
        for (; i < n; i++) y[i] = sfma(x[i], a, b);
    }
}

typedef struct {
    float *out;
    const float *in, *gamma, *beta;
    int C, HW, groups, fuse_silu;
    float eps;
} group_norm_job;

static void group_norm_slices(void *ctx, long t0, long t1, int worker) {
    const group_norm_job *jb = ctx;
    float *out = jb->out;
    const float *in = jb->in, *gamma = jb->gamma, *beta = jb->beta;
    int C = jb->C, HW = jb->HW, groups = jb->groups, fuse_silu = jb->fuse_silu, cg = C / groups;
    float eps = jb->eps;
    for (long t = t0; t < t1; t++) {
        int n = (int)(t / groups), g = (int)(t % groups);
        size_t off = ((size_t)n * C + (size_t)g * cg) * HW, len = (size_t)cg * HW;
        const float *x = in + off;
        float *y = out + off;
        double mean = sum_f(x, len) / (double)len;
        double var = sum_sqdev(x, len, mean) / (double)len;
        float rstd = (float)(1.0 / sqrt(var + (double)eps));
        for (int j = 0; j < cg; j++) {
            int c = g * cg + j;
            /* torch's form: y = x * (rstd*gamma) + (beta - mean*rstd*gamma) */
            float a = rstd * (gamma ? gamma[c] : 1.0f);
            float b = (beta ? beta[c] : 0.0f) - (float)mean * a;
            affine_row(y + (size_t)j * HW, x + (size_t)j * HW, (size_t)HW, a, b, fuse_silu);
        }
    }
}

void op_group_norm(float *out, const float *in, const float *gamma, const float *beta, int N,
                   int C, int HW, int groups, float eps, int fuse_silu) {
    /* x (N, C, HW); each (n, g) normalises C/groups channels together */
    long tasks = (long)N * groups;
    group_norm_job j = {out, in, gamma, beta, C, HW, groups, fuse_silu, eps};
    pool_for(tasks, pool_grain(tasks, 3.0 * (C / groups) * HW), group_norm_slices, &j);
}

typedef struct {
    float *out;
    const float *in, *gamma, *beta;
    int C;
    float eps;
} layer_norm_job;

static void layer_norm_rows(void *ctx, long r0, long r1, int worker) {
    const layer_norm_job *jb = ctx;
    float *out = jb->out;
    const float *in = jb->in, *gamma = jb->gamma, *beta = jb->beta;
    int C = jb->C;
    float eps = jb->eps;
    for (long r = r0; r < r1; r++) {
        const float *x = in + (size_t)r * C;
        float *y = out + (size_t)r * C;
        double mean = sum_f(x, (size_t)C) / C;
        double var = sum_sqdev(x, (size_t)C, mean) / C;
        float rstd = (float)(1.0 / sqrt(var + (double)eps));
        float m = (float)mean;
        for (int c = 0; c < C; c++) {
            float v = (x[c] - m) * rstd;
            y[c] = v * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
        }
    }
}

void op_layer_norm(float *out, const float *in, const float *gamma, const float *beta, int rows,
                   int C, float eps) {
    /* x (rows, C), normalised over C */
    layer_norm_job j = {out, in, gamma, beta, C, eps};
    pool_for(rows, pool_grain(rows, 3.0 * C), layer_norm_rows, &j);
}

/* ---- activations -------------------------------------------------------- */

#define ACT_CHUNK 16384

typedef void (*act_range_fn)(float *out, const float *in, size_t lo, size_t hi);

typedef struct {
    act_range_fn fn;
    float *out;
    const float *in;
} act_job;

static void act_chunk(void *ctx, long lo, long hi, int worker) {
    const act_job *j = ctx;
    j->fn(j->out, j->in, (size_t)lo, (size_t)hi);
}

/* Runs fn over [0, n) in fixed chunks of ACT_CHUNK on the pool. */
static void act_loop(size_t n, act_range_fn fn, float *out, const float *in) {
    act_job j = {fn, out, in};
    pool_for((long)n, ACT_CHUNK, act_chunk, &j);
}

static void silu_range(float *out, const float *in, size_t lo, size_t hi) {
    size_t i = lo;
    for (; i + VL <= hi; i += VL) {
        vf v = vload(in + i);
        vstore(out + i, v / (1.0f + vexp(-v)));
    }
    for (; i < hi; i++) out[i] = in[i] / (1.0f + sexp(-in[i]));
}

void op_silu(float *out, const float *in, size_t n) { act_loop(n, silu_range, out, in); }

/* erf(x) lane-wise, max error about 1 ulp: N. Juffa's minimax erff (a
 * polynomial in x^2 below |x| = 0.9277, 1 - exp(polynomial) above), both
 * halves computed and blended, so it vectorises. libm's erff is not
 * vectorised and costs ~40 cycles, which made GEGLU slower than its matmul. */
static inline vf verf(vf a) {
    const vi sign = vset1i(INT32_MIN);
    vf t = (vf)((vi)a & ~sign), s = a * a;
    vf r = vfma(vset1(-1.72853470e-5f), t, vset1(3.83197126e-4f));
    vf u = vfma(vset1(-3.88396438e-3f), t, vset1(2.42546219e-2f));
    r = vfma(r, s, u);
    r = vfma(r, t, vset1(-1.06777877e-1f));
    r = vfma(r, t, vset1(-6.34846687e-1f));
    r = vfma(r, t, vset1(-1.28717512e-1f));
    r = vfma(r, t, -t);
    r = 1.0f - vexp(r);
    r = (vf)(((vi)r & ~sign) | ((vi)a & sign)); /* copysign(r, a) */
    vf c = vset1(-5.96761703e-4f);
    c = vfma(c, s, vset1(4.99119423e-3f));
    c = vfma(c, s, vset1(-2.67681349e-2f));
    c = vfma(c, s, vset1(1.12819925e-1f));
    c = vfma(c, s, vset1(-3.76125336e-1f));
    c = vfma(c, s, vset1(1.28379166e-1f));
    c = vfma(c, a, a);
    vi big = t > 0.927734375f;
    return (vf)(((vi)r & big) | ((vi)c & ~big));
}

/* torch's form: x * 0.5 * (1 + erf(x / sqrt(2))) */
static inline vf vgelu(vf x) { return x * 0.5f * (1.0f + verf(x * (float)M_SQRT1_2)); }

/* Scalar tails go through the same vector code, so an element's value does
 * not depend on where a chunk boundary falls. */
static inline float gelu_erf1(float x) { return vgelu(vset1(x))[0]; }

static void gelu_range(float *out, const float *in, size_t lo, size_t hi) {
    size_t i = lo;
    for (; i + VL <= hi; i += VL) vstore(out + i, vgelu(vload(in + i)));
    for (; i < hi; i++) out[i] = gelu_erf1(in[i]);
}

void op_gelu(float *out, const float *in, size_t n) { act_loop(n, gelu_range, out, in); }

static float gelu_tanh1(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static void gelu_tanh_range(float *out, const float *in, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) out[i] = gelu_tanh1(in[i]);
}

void op_gelu_tanh(float *out, const float *in, size_t n) { act_loop(n, gelu_tanh_range, out, in); }

static void quick_gelu_range(float *out, const float *in, size_t lo, size_t hi) {
    size_t i = lo;
    for (; i + VL <= hi; i += VL) {
        vf v = vload(in + i);
        vstore(out + i, v / (1.0f + vexp(v * -1.702f)));
    }
    for (; i < hi; i++) out[i] = in[i] / (1.0f + sexp(in[i] * -1.702f));
}

void op_quick_gelu(float *out, const float *in, size_t n) { act_loop(n, quick_gelu_range, out, in); }

typedef struct {
    float *out;
    const float *in;
    int cols;
} rows_job;

static void geglu_rows(void *ctx, long r0, long r1, int worker) {
    const rows_job *j = ctx;
    float *out = j->out;
    const float *in = j->in;
    int C = j->cols;
    for (long r = r0; r < r1; r++) {
        const float *h = in + (size_t)r * 2 * C, *g = h + C;
        float *o = out + (size_t)r * C;
        int c = 0;
        for (; c + VL <= C; c += VL) vstore(o + c, vload(h + c) * vgelu(vload(g + c)));
        for (; c < C; c++) o[c] = h[c] * gelu_erf1(g[c]);
    }
}

void op_geglu(float *out, const float *in, int rows, int C) {
    /* in (rows, 2C) = [hidden | gate] -> out (rows, C) = hidden * gelu(gate) */
    rows_job j = {out, in, C};
    pool_for(rows, pool_grain(rows, 6.0 * C), geglu_rows, &j);
}

static void softmax_rows(void *ctx, long r0, long r1, int worker) {
    const rows_job *j = ctx;
    float *out = j->out;
    const float *in = j->in;
    int cols = j->cols;
    for (long r = r0; r < r1; r++) {
        const float *x = in + (size_t)r * cols;
        float *y = out + (size_t)r * cols;
        float mx = -INFINITY;
        for (int c = 0; c < cols; c++) mx = x[c] > mx ? x[c] : mx;
        if (mx == -INFINITY) { /* every entry -inf: no mass anywhere */
            for (int c = 0; c < cols; c++) y[c] = 0.0f;
            continue;
        }
        double s = 0;
        for (int c = 0; c < cols; c++) {
            y[c] = expf(x[c] - mx);
            s += y[c];
        }
        float inv = (float)(1.0 / s);
        for (int c = 0; c < cols; c++) y[c] *= inv;
    }
}

void op_softmax(float *out, const float *in, int rows, int cols) {
    /* x (rows, cols): exp(x - max) / sum, the sum in double */
    rows_job j = {out, in, cols};
    pool_for(rows, pool_grain(rows, 8.0 * cols), softmax_rows, &j);
}
