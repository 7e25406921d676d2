/* CPU kernels (src/core/ops.h) against PyTorch references from
 * tests/fixtures/kernels.safetensors (tools/fixtures/make_kernel_fixtures.py),
 * plus: the checker itself, thread-count independence (1 vs 2 threads, bit
 * for bit), the arena, fp16/bf16 conversions, and the attention memory bound.
 *
 * Tolerances (|got - ref| <= atol + rtol*|ref|), per kernel:
 *   conv2d, linear, matmul     atol 1e-5  rtol 1e-4  (float sums of <= 50 terms)
 *   group/layer norm           atol 2e-5  rtol 1e-4  (double statistics; torch
 *                                                    accumulates in float)
 *   silu, quick_gelu           atol 1e-6  rtol 1e-5  (our vectorised exp: ~1 ulp)
 *   gelu, gelu_tanh            atol 1e-6  rtol 1e-5  (our vectorised erf: ~1 ulp;
 *                                                    libm tanhf)
 *   geglu                      atol 3e-6  rtol 1e-5  (h * x/2 * (1 + erf): 1 ulp of erf
 *                                                    near -1 cancels, times |h*x| <= 36)
 *   softmax                    atol 1e-7  rtol 1e-5
 *   attention                  atol 1e-5  rtol 1e-4  (reference in float64; 2e-6
 *                                                    for the 4096-key sum check)
 *   timestep embedding         atol 1.5e-4 rtol 1e-5 (sin/cos of t*freq with t up
 *                                                    to 999: one ulp of the argument
 *                                                    (6e-5) from torch.exp vs expf
 *                                                    moves the result by up to 6e-5)
 *   upsample, elementwise,
 *   concat, layout changes     exact
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "harness.h"
#include "oir.h"

static st_file *fx;

static float *get(const char *name, size_t *n) { return th_fixture_f32(fx, name, n, NULL); }

static float *get2(const char *a, const char *b, size_t *n) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", a, b);
    return get(name, n);
}

static float *alloc_f(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* Deterministic pseudo-random floats in [-1, 1) (xorshift), for the
 * fixture-free checks. */
static void fill_rand(float *x, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = (float)((s >> 8) * (1.0 / 8388608.0)) - 1.0f;
    }
}

/* ---- the checker -------------------------------------------------------- */

static void test_checker(void) {
    float ref[4] = {1.0f, -2.0f, 0.5f, 100.0f};
    float got[4];
    memcpy(got, ref, sizeof got);
    CHECK(th_close_quiet(got, ref, 4, 0, 0), "checker: identical tensors must pass at atol 0");
    got[2] += 1e-3f;
    CHECK(!th_close_quiet(got, ref, 4, 1e-5f, 1e-4f), "checker: a perturbed element must fail");
    got[2] = ref[2];
    got[3] = 100.0f + 5e-3f; /* within rtol 1e-4 * 100 */
    CHECK(th_close_quiet(got, ref, 4, 1e-5f, 1e-4f), "checker: rtol must scale with |ref|");
    got[3] = ref[3];
    got[1] = NAN;
    CHECK(!th_close_quiet(got, ref, 4, 1e9f, 1e9f), "checker: NaN must fail at any tolerance");
    got[1] = INFINITY;
    CHECK(!th_close_quiet(got, ref, 4, 1e9f, 1e9f), "checker: Inf must fail");
}

/* ---- conv2d ------------------------------------------------------------- */

static void test_conv(void) {
    static const struct {
        const char *name;
        int N, Cin, H, W, Cout, k, s, p, bias;
    } cs[] = {
        {"conv1x1_s1_p0", 2, 5, 7, 9, 6, 1, 1, 0, 1},  {"conv1x1_s1_p0_nobias", 1, 5, 4, 6, 3, 1, 1, 0, 0},
        {"conv1x1_s2_p0", 1, 4, 7, 7, 3, 1, 2, 0, 1},  {"conv3x3_s1_p1", 2, 4, 9, 7, 5, 3, 1, 1, 1},
        {"conv3x3_s2_p1", 1, 3, 9, 11, 4, 3, 2, 1, 1}, {"conv3x3_s1_p0", 1, 3, 8, 7, 2, 3, 1, 0, 1},
        {"conv3x3_s2_p0", 1, 2, 10, 9, 3, 3, 2, 0, 1}, {"conv5x5_s1_p2", 1, 2, 6, 5, 3, 5, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        size_t nout;
        float *x = get2(cs[i].name, "in", NULL), *w = get2(cs[i].name, "weight", NULL);
        float *b = cs[i].bias ? get2(cs[i].name, "bias", NULL) : NULL;
        float *ref = get2(cs[i].name, "out", &nout);
        int Ho = (cs[i].H + 2 * cs[i].p - cs[i].k) / cs[i].s + 1;
        int Wo = (cs[i].W + 2 * cs[i].p - cs[i].k) / cs[i].s + 1;
        CHECK(!ref || nout == (size_t)cs[i].N * cs[i].Cout * Ho * Wo, "%s: output size", cs[i].name);
        if (x && w && ref && (b || !cs[i].bias) && nout == (size_t)cs[i].N * cs[i].Cout * Ho * Wo) {
            size_t ns = op_conv2d_scratch(cs[i].Cin, cs[i].H, cs[i].W, cs[i].k, cs[i].s, cs[i].p);
            if (cs[i].k == 1 && cs[i].s == 1 && cs[i].p == 0)
                CHECK(ns == 0, "%s: 1x1 stride-1 conv needs no scratch (got %zu)", cs[i].name, ns);
            float *scratch = alloc_f(ns), *out = alloc_f(nout);
            op_conv2d(out, x, w, b, cs[i].N, cs[i].Cin, cs[i].H, cs[i].W, cs[i].Cout, cs[i].k,
                      cs[i].s, cs[i].p, scratch);
            th_close(cs[i].name, out, ref, nout, 1e-5f, 1e-4f);
            free(scratch);
            free(out);
        }
        free(x);
        free(w);
        free(b);
        free(ref);
    }
}

/* ---- thread-count independence of BLAS-backed ops ----------------------- */

/* Products run as single-threaded sgemm calls on blocks fixed by the shape
 * (ops.c gemm), so their bits, like every other kernel's, do not depend on
 * the thread count. */
static void check_blas_threads(const char *what, const float *one, const float *two, size_t n) {
    CHECK(memcmp(one, two, n * sizeof(float)) == 0, "%s: 1 and 2 threads differ", what);
}

/* A product big enough to be cut into blocks, by rows (M >= N) and by
 * columns (N > M, both B layouts): the same bits with 1, 2 and 3 threads,
 * and within float tolerance of a double-precision product. */
static void test_matmul_blocks(void) {
    static const int shapes[][4] = {{600, 100, 300, 0}, {90, 700, 200, 0}, {90, 700, 200, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2], bt = shapes[si][3];
        float *a = alloc_f((size_t)M * K), *b = alloc_f((size_t)K * N), *ref = alloc_f((size_t)M * N);
        float *c[3];
        fill_rand(a, (size_t)M * K, 51 + (unsigned)si);
        fill_rand(b, (size_t)K * N, 61 + (unsigned)si);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = 0;
                for (int k = 0; k < K; k++)
                    acc += (double)a[(size_t)i * K + k] * (bt ? b[(size_t)j * K + k] : b[(size_t)k * N + j]);
                ref[(size_t)i * N + j] = (float)(0.5 * acc);
            }
        for (int t = 0; t < 3; t++) {
            c[t] = alloc_f((size_t)M * N);
            for (size_t i = 0; i < (size_t)M * N; i++) c[t][i] = 1.0f; /* beta 0 must ignore it */
            oir_set_threads(t + 1);
            op_matmul(c[t], a, b, M, N, K, bt, 0.5f, 0.0f);
        }
        char name[96];
        snprintf(name, sizeof name, "matmul %dx%dx%d%s in blocks", M, N, K, bt ? " b_trans" : "");
        th_close(name, c[1], ref, (size_t)M * N, 1e-4f, 1e-4f);
        CHECK(!memcmp(c[0], c[1], sizeof(float) * M * N) && !memcmp(c[0], c[2], sizeof(float) * M * N),
              "%s: 1, 2 and 3 threads give different bits", name);
        free(a), free(b), free(ref), free(c[0]), free(c[1]), free(c[2]);
    }
}

/* op_conv2d against a direct double-precision loop, and with 1 and 2
 * threads (bitwise). */
static void conv_vs_double(const char *name, int N, int Cin, int H, int W, int Cout, int k, int s, int p) {
    const int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    size_t nx = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * k * k,
           no = (size_t)N * Cout * Ho * Wo;
    size_t ns = op_conv2d_scratch(Cin, H, W, k, s, p);
    float *x = alloc_f(nx), *w = alloc_f(nw), *b = alloc_f(Cout), *out1 = alloc_f(no),
          *out2 = alloc_f(no), *ref = alloc_f(no), *scratch = alloc_f(ns);
    fill_rand(x, nx, 1);
    fill_rand(w, nw, 2);
    fill_rand(b, Cout, 3);
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = b[co];
                    for (int c = 0; c < Cin; c++)
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++) {
                                int iy = oy * s - p + ki, ix = ox * s - p + kj;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)x[(((size_t)n * Cin + c) * H + iy) * W + ix] *
                                       w[(((size_t)co * Cin + c) * k + ki) * k + kj];
                            }
                    ref[(((size_t)n * Cout + co) * Ho + oy) * Wo + ox] = (float)acc;
                }
    oir_set_threads(1);
    op_conv2d(out1, x, w, b, N, Cin, H, W, Cout, k, s, p, scratch);
    oir_set_threads(2);
    op_conv2d(out2, x, w, b, N, Cin, H, W, Cout, k, s, p, scratch);
    th_close(name, out2, ref, no, 1e-4f, 1e-4f);
    check_blas_threads(name, out1, out2, no);
    free(x);
    free(w);
    free(b);
    free(out1);
    free(out2);
    free(ref);
    free(scratch);
}

/* A conv big enough that im2col runs in several bands (its scratch stays
 * below a full im2col), and batches of small maps (stride 2, no padding). */
static void test_conv_banded(void) {
    const int Cin = 64, H = 96, W = 95, k = 3;
    size_t ns = op_conv2d_scratch(Cin, H, W, k, 1, 1);
    CHECK(ns < (size_t)Cin * k * k * H * W, "banded conv: scratch %zu must be below a full "
          "im2col (%zu)", ns, (size_t)Cin * k * k * H * W);
    conv_vs_double("conv3x3 banded (576-term sums) vs double", 1, Cin, H, W, 4, k, 1, 1);
    conv_vs_double("conv3x3 4x4 maps, 70 images vs double", 70, 8, 4, 4, 5, 3, 1, 1);
    conv_vs_double("conv3x3 8x8 maps, 9 images, 128 in-channels vs double", 9, 128, 8, 8, 16, 3, 1, 1);
    conv_vs_double("conv3x3 stride 2 on 9x7 maps, 5 images vs double", 5, 6, 9, 7, 3, 3, 2, 1);
    conv_vs_double("conv3x3 unpadded 6x6 maps, 3 images vs double", 3, 4, 6, 6, 2, 3, 1, 0);
    conv_vs_double("conv1x1 stride 2 on 8x8 maps, 4 images vs double", 4, 6, 8, 8, 3, 1, 2, 0);
}

/* ---- norms, activations, softmax --------------------------------------- */

static void test_norms(void) {
    static const struct {
        int N, C, HW, groups;
        float eps;
    } gn[] = {{2, 8, 30, 4, 1e-5f}, {1, 64, 16, 32, 1e-6f}};
    for (int i = 0; i < 2; i++) {
        char c[16], what[64];
        snprintf(c, sizeof c, "gn%d", i);
        size_t n;
        float *x = get2(c, "in", &n), *g = get2(c, "gamma", NULL), *b = get2(c, "beta", NULL);
        float *ref = get2(c, "out", NULL), *ref_s = get2(c, "out_silu", NULL);
        if (x && g && b && ref && ref_s) {
            float *out = alloc_f(n);
            op_group_norm(out, x, g, b, gn[i].N, gn[i].C, gn[i].HW, gn[i].groups, gn[i].eps, 0);
            snprintf(what, sizeof what, "group_norm %s", c);
            th_close(what, out, ref, n, 2e-5f, 1e-4f);
            op_group_norm(out, x, g, b, gn[i].N, gn[i].C, gn[i].HW, gn[i].groups, gn[i].eps, 1);
            snprintf(what, sizeof what, "group_norm+silu %s", c);
            th_close(what, out, ref_s, n, 2e-5f, 1e-4f);
            memcpy(out, x, n * sizeof(float)); /* in place */
            op_group_norm(out, out, g, b, gn[i].N, gn[i].C, gn[i].HW, gn[i].groups, gn[i].eps, 1);
            snprintf(what, sizeof what, "group_norm+silu %s in place", c);
            th_close(what, out, ref_s, n, 2e-5f, 1e-4f);
            free(out);
        }
        free(x);
        free(g);
        free(b);
        free(ref);
        free(ref_s);
    }
    static const int ln[][2] = {{7, 40}, {3, 77}};
    for (int i = 0; i < 2; i++) {
        char c[16], what[64];
        snprintf(c, sizeof c, "ln%d", i);
        size_t n;
        float *x = get2(c, "in", &n), *g = get2(c, "gamma", NULL), *b = get2(c, "beta", NULL);
        float *ref = get2(c, "out", NULL);
        if (x && g && b && ref) {
            float *out = alloc_f(n);
            op_layer_norm(out, x, g, b, ln[i][0], ln[i][1], 1e-5f);
            snprintf(what, sizeof what, "layer_norm %s", c);
            th_close(what, out, ref, n, 2e-5f, 1e-4f);
            op_layer_norm(x, x, g, b, ln[i][0], ln[i][1], 1e-5f);
            snprintf(what, sizeof what, "layer_norm %s in place", c);
            th_close(what, x, ref, n, 2e-5f, 1e-4f);
            free(out);
        }
        free(x);
        free(g);
        free(b);
        free(ref);
    }
}

static void test_activations(void) {
    size_t n;
    float *x = get("act.in", &n);
    static const struct {
        const char *ref;
        void (*fn)(float *, const float *, size_t);
    } acts[] = {{"act.silu", op_silu},
                {"act.gelu", op_gelu},
                {"act.gelu_tanh", op_gelu_tanh},
                {"act.quick_gelu", op_quick_gelu}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        float *ref = get(acts[i].ref, NULL);
        if (x && ref) {
            float *out = alloc_f(n);
            acts[i].fn(out, x, n);
            th_close(acts[i].ref, out, ref, n, 1e-6f, 1e-5f);
            memcpy(out, x, n * sizeof(float));
            acts[i].fn(out, out, n); /* in place */
            CHECK(th_close_quiet(out, ref, n, 1e-6f, 1e-5f), "%s in place", acts[i].ref);
            free(out);
        }
        free(ref);
    }
    free(x);

    /* GELU on a dense grid against float64 erf: guards the erf polynomial. */
    {
        const size_t ng = 160001; /* [-8, 8] in steps of 1e-4 */
        float *gx = alloc_f(ng), *gy = alloc_f(ng), *gr = alloc_f(ng);
        for (size_t i = 0; i < ng; i++) {
            gx[i] = -8.0f + 1e-4f * (float)i;
            gr[i] = (float)(0.5 * gx[i] * (1.0 + erf(gx[i] * M_SQRT1_2)));
        }
        op_gelu(gy, gx, ng);
        th_close("gelu on [-8, 8] vs float64 (atol 3e-7)", gy, gr, ng, 3e-7f, 2e-6f);
        free(gx);
        free(gy);
        free(gr);
    }

    float *h = get("geglu.in", &n), *ref = get("geglu.out", NULL);
    if (h && ref) {
        float *out = alloc_f(n / 2);
        op_geglu(out, h, 5, 24);
        th_close("geglu", out, ref, n / 2, 3e-6f, 1e-5f);
        free(out);
    }
    free(h);
    free(ref);

    float *s = get("softmax.in", &n), *sref = get("softmax.out", NULL);
    if (s && sref) {
        float *out = alloc_f(n);
        op_softmax(out, s, 6, 37);
        th_close("softmax", out, sref, n, 1e-7f, 1e-5f);
        op_softmax(s, s, 6, 37);
        th_close("softmax in place", s, sref, n, 1e-7f, 1e-5f);
        free(out);
    }
    free(s);
    free(sref);
}

/* ---- attention ---------------------------------------------------------- */

static void test_attention(void) {
    static const struct {
        const char *name;
        int B, Tq, Tk, heads, d, mask, causal;
    } cs[] = {
        {"att_self", 1, 140, 140, 2, 40, 0, 0},  {"att_cross", 2, 64, 77, 1, 40, 0, 0},
        {"att_cross80", 1, 20, 77, 1, 80, 0, 0}, {"att_causal", 1, 77, 77, 1, 64, 0, 1},
        {"att_mask", 2, 50, 50, 2, 32, 1, 0},    {"att_maskc", 1, 40, 40, 1, 16, 1, 1},
        {"att_empty", 2, 9, 12, 1, 8, 1, 0},     {"att_peaky", 1, 33, 150, 1, 24, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        size_t nq, nk, nm = 0;
        float *q = get2(cs[i].name, "q", &nq), *k = get2(cs[i].name, "k", &nk),
              *v = get2(cs[i].name, "v", NULL), *ref = get2(cs[i].name, "out", NULL);
        float *mf = cs[i].mask ? get2(cs[i].name, "mask", &nm) : NULL;
        size_t want_q = (size_t)cs[i].B * cs[i].Tq * cs[i].heads * cs[i].d;
        CHECK(!q || nq == want_q, "%s: q size %zu, expected %zu", cs[i].name, nq, want_q);
        if (q && k && v && ref && (mf || !cs[i].mask) && nq == want_q) {
            uint8_t *mask = NULL;
            if (mf) {
                mask = malloc(nm);
                for (size_t j = 0; j < nm; j++) mask[j] = mf[j] != 0.0f;
            }
            float *scratch = alloc_f(op_attention_scratch(cs[i].Tq, cs[i].Tk, cs[i].heads, cs[i].d));
            float *out = alloc_f(nq);
            for (size_t j = 0; j < nq; j++) out[j] = NAN; /* every output must be written */
            op_attention(out, q, k, v, cs[i].B, cs[i].Tq, cs[i].Tk, cs[i].heads, cs[i].d,
                         1.0f / sqrtf((float)cs[i].d), mask, cs[i].causal, scratch);
            th_close(cs[i].name, out, ref, nq, 1e-5f, 1e-4f);
            free(scratch);
            free(out);
            free(mask);
        }
        free(q);
        free(k);
        free(v);
        free(ref);
        free(mf);
    }

    /* The memory bound: SD 1.5's largest self-attention. */
    size_t bytes = op_attention_scratch(4096, 4096, 8, 40) * sizeof(float);
    printf("  attention scratch for 4096x4096, 8 heads x 40 at %d threads: %zu bytes\n",
           oir_get_threads(), bytes);
    CHECK(bytes < 8u << 20, "attention 4096 tokens: scratch %zu bytes, expected < 8 MB", bytes);
    CHECK(op_attention_scratch(4096, 4096, 8, 40) <= 64 * op_attention_scratch(77, 77, 8, 40),
          "attention scratch must not grow with Tq*Tk");
}

/* Attention with long K/V (a head's K+V rows over 256 KB, so tasks run head
 * by head, as for SD's 4096-token self-attention) against a float64 loop on
 * a sample of query rows, with 1 and 2 threads. The inputs are patterned
 * (as in the kernel benchmark) with v >= 0 and a nearly flat softmax: 4096
 * comparable terms of one sign, where rounding errors do not cancel (a
 * single running sum over all keys was 40x off here; blocked sums are not). */
static void test_attention_long(void) {
    const int B = 1, Tq = 256, Tk = 4096, heads = 2, d = 40, hd = heads * d;
    size_t nq = (size_t)B * Tq * hd, nk = (size_t)B * Tk * hd;
    float *q = alloc_f(nq), *k = alloc_f(nk), *v = alloc_f(nk), *o1 = alloc_f(nq),
          *o2 = alloc_f(nq);
    double *s = malloc((size_t)Tk * sizeof(double));
    for (size_t i = 0; i < nq; i++) q[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < nk; i++) {
        k[i] = (float)(i % 7) * 0.1f - 0.3f;
        v[i] = (float)(i % 5) * 0.1f;
    }
    const float scale = 1.0f / sqrtf((float)d);
    oir_set_threads(1);
    float *scratch = alloc_f(op_attention_scratch(Tq, Tk, heads, d));
    op_attention(o1, q, k, v, B, Tq, Tk, heads, d, scale, NULL, 0, scratch);
    free(scratch);
    oir_set_threads(2);
    scratch = alloc_f(op_attention_scratch(Tq, Tk, heads, d));
    op_attention(o2, q, k, v, B, Tq, Tk, heads, d, scale, NULL, 0, scratch);
    CHECK(memcmp(o1, o2, nq * sizeof(float)) == 0, "attention (long K/V): 1 and 2 threads differ");

    enum { NS = 24 }; /* sampled query rows, both heads */
    float got[NS * 2 * 40], ref[NS * 2 * 40];
    int ns;
    for (ns = 0; ns < NS; ns++)
        for (int h = 0, i = ns * (Tq / NS); h < heads; h++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < Tk; j++) {
                double a = 0;
                for (int c = 0; c < d; c++)
                    a += (double)q[(size_t)i * hd + h * d + c] * k[(size_t)j * hd + h * d + c];
                s[j] = a * scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < Tk; j++) sum += s[j] = exp(s[j] - mx);
            for (int c = 0; c < d; c++) {
                double a = 0;
                for (int j = 0; j < Tk; j++) a += s[j] * v[(size_t)j * hd + h * d + c];
                ref[(ns * heads + h) * d + c] = (float)(a / sum);
                got[(ns * heads + h) * d + c] = o2[(size_t)i * hd + h * d + c];
            }
        }
    th_close("attention 256x4096 h2 d40 vs float64 (sampled rows)", got, ref,
             (size_t)ns * heads * d, 2e-6f, 1e-5f);
    free(scratch);
    free(q);
    free(k);
    free(v);
    free(o1);
    free(o2);
    free(s);
}

/* ---- shape, elementwise, embeddings, products -------------------------- */

static void test_misc(void) {
    size_t n, nr;
    float *x = get("up.in", &n), *ref = get("up.out", &nr);
    if (x && ref) {
        float *out = alloc_f(nr);
        op_upsample_nearest2x(out, x, 1, 3, 5, 4);
        th_close("upsample_nearest2x", out, ref, nr, 0, 0);
        free(out);
    }
    free(x);
    free(ref);

    static const struct {
        int dim, flip;
        float shift;
    } te[] = {{320, 1, 0}, {33, 0, 1}, {64, 1, 1}, {7, 0, 0}};
    for (int i = 0; i < 4; i++) {
        char c[16], what[64];
        snprintf(c, sizeof c, "temb%d", i);
        float *t = get2(c, "t", &n), *tref = get2(c, "out", &nr);
        if (t && tref && nr == n * (size_t)te[i].dim) {
            float *out = alloc_f(nr);
            op_timestep_embedding(out, t, (int)n, te[i].dim, te[i].flip, te[i].shift, 10000.0f);
            snprintf(what, sizeof what, "timestep_embedding dim %d flip %d shift %g", te[i].dim,
                     te[i].flip, te[i].shift);
            th_close(what, out, tref, nr, 1.5e-4f, 1e-5f);
            free(out);
        } else {
            CHECK(0, "%s: fixture missing or of the wrong size", c);
        }
        free(t);
        free(tref);
    }

    float *in = get("linear.in", NULL), *w = get("linear.weight", NULL),
          *b = get("linear.bias", NULL), *lref = get("linear.out", &nr),
          *lref0 = get("linear.out_nobias", NULL);
    if (in && w && b && lref && lref0) {
        float *out = alloc_f(nr);
        op_linear(out, in, w, b, 7, 33, 19);
        th_close("linear", out, lref, nr, 1e-5f, 1e-4f);
        for (size_t i = 0; i < nr; i++) out[i] = NAN; /* beta 0 must not read out */
        op_linear(out, in, w, NULL, 7, 33, 19);
        th_close("linear without bias", out, lref0, nr, 1e-5f, 1e-4f);
        free(out);
    }
    free(in);
    free(w);
    free(b);
    free(lref);
    free(lref0);

    float *a = get("matmul.a", NULL), *bm = get("matmul.b", NULL), *bt = get("matmul.bt", NULL),
          *c = get("matmul.c", &nr), *r0 = get("matmul.out", NULL), *r1 = get("matmul.out_t", NULL),
          *r2 = get("matmul.out_ab", NULL);
    if (a && bm && bt && c && r0 && r1 && r2) {
        float *out = alloc_f(nr);
        op_matmul(out, a, bm, 9, 11, 13, 0, 1.0f, 0.0f);
        th_close("matmul", out, r0, nr, 1e-5f, 1e-4f);
        op_matmul(out, a, bt, 9, 11, 13, 1, 1.0f, 0.0f);
        th_close("matmul b_trans", out, r1, nr, 1e-5f, 1e-4f);
        memcpy(out, c, nr * sizeof(float));
        op_matmul(out, a, bm, 9, 11, 13, 0, 0.5f, 2.0f);
        th_close("matmul alpha 0.5 beta 2", out, r2, nr, 1e-5f, 1e-4f);
        free(out);
    }
    free(a);
    free(bm);
    free(bt);
    free(c);
    free(r0);
    free(r1);
    free(r2);
}

static void test_elementwise(void) {
    const int N = 2, C = 3, Cb = 5, HW = 7;
    const size_t n = 40000; /* more than one chunk, so the loops run threaded */
    float *a = alloc_f(n), *b = alloc_f(n), *out = alloc_f(n), *ref = alloc_f(n);
    fill_rand(a, n, 11);
    fill_rand(b, n, 12);

    for (size_t i = 0; i < n; i++) ref[i] = a[i] + b[i];
    op_add(out, a, b, n);
    th_close("add", out, ref, n, 0, 0);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] * b[i];
    op_mul(out, a, b, n);
    th_close("mul", out, ref, n, 0, 0);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] * 0.37f;
    memcpy(out, a, n * sizeof(float));
    op_scale(out, out, 0.37f, n); /* in place */
    th_close("scale in place", out, ref, n, 0, 0);

    /* add_channel_bias: x (N, C, HW) += bias (N, C) */
    memcpy(out, a, (size_t)N * C * HW * sizeof(float));
    op_add_channel_bias(out, b, N, C, HW);
    for (int i = 0; i < N * C; i++)
        for (int j = 0; j < HW; j++) ref[(size_t)i * HW + j] = a[(size_t)i * HW + j] + b[i];
    th_close("add_channel_bias", out, ref, (size_t)N * C * HW, 0, 0);

    /* concat along channels: a (N, C, HW), b (N, Cb, HW) */
    op_concat_channels(out, a, b, N, C, Cb, HW);
    for (int s = 0; s < N; s++) {
        for (int i = 0; i < C * HW; i++) ref[(size_t)s * (C + Cb) * HW + i] = a[(size_t)s * C * HW + i];
        for (int i = 0; i < Cb * HW; i++)
            ref[(size_t)s * (C + Cb) * HW + C * HW + i] = b[(size_t)s * Cb * HW + i];
    }
    th_close("concat_channels", out, ref, (size_t)N * (C + Cb) * HW, 0, 0);

    /* layout changes, with sizes past the 32-wide transpose tiles */
    const int TC = 37, THW = 45;
    op_nchw_to_nhwc(out, a, N, TC, THW);
    for (int s = 0; s < N; s++)
        for (int c = 0; c < TC; c++)
            for (int i = 0; i < THW; i++)
                ref[((size_t)s * THW + i) * TC + c] = a[((size_t)s * TC + c) * THW + i];
    th_close("nchw_to_nhwc", out, ref, (size_t)N * TC * THW, 0, 0);
    op_nhwc_to_nchw(b, out, N, TC, THW);
    th_close("nhwc_to_nchw round trip", b, a, (size_t)N * TC * THW, 0, 0);
    free(a);
    free(b);
    free(out);
    free(ref);
}

/* ---- thread-count independence ----------------------------------------- */

static void test_threads(void) {
    /* Each kernel run with 1 then 2 threads must give the same bits. */
    const int B = 2, T = 300, Tk = 77, heads = 2, d = 40, hd = heads * d;
    const int N = 2, C = 64, HW = 1000, rows = 700, R = 130, Kf = 96;
    size_t big = (size_t)N * C * HW, ny = 400000;
    float *x = alloc_f(big), *y1 = alloc_f(ny), *y2 = alloc_f(ny), *g = alloc_f(C),
          *bb = alloc_f(C);
    float *q = alloc_f((size_t)B * T * hd), *k = alloc_f((size_t)B * T * hd),
          *v = alloc_f((size_t)B * T * hd);
    fill_rand(x, big, 21);
    fill_rand(g, C, 22);
    fill_rand(bb, C, 23);
    fill_rand(q, (size_t)B * T * hd, 24);
    fill_rand(k, (size_t)B * T * hd, 25);
    fill_rand(v, (size_t)B * T * hd, 26);
    for (size_t i = 0; i < (size_t)B * T * hd; i++) q[i] *= 3.0f; /* peaky softmax */
    uint8_t *mask = malloc((size_t)B * Tk);
    for (int i = 0; i < B * Tk; i++) mask[i] = (i * 7) % 5 != 0;

    size_t lin_off = 0;
    for (int run = 0; run < 2; run++) {
        float *y = run ? y2 : y1;
        oir_set_threads(run + 1);
        size_t off = 0;
        op_group_norm(y + off, x, g, bb, N, C, HW, 32, 1e-5f, 1);
        off += big; /* each kernel writes its own part of y */
        op_layer_norm(y + off, x, g, bb, rows, C, 1e-5f);
        off += (size_t)rows * C;
        op_silu(y + off, x, 40000);
        off += 40000;
        lin_off = off;
        op_linear(y + off, x, x + 50000, bb, R, Kf, C); /* weight (C, Kf) */
        off += (size_t)R * C;
        size_t s1 = op_attention_scratch(T, T, heads, d), s2 = op_attention_scratch(T, Tk, heads, d);
        float *scratch = alloc_f(s1 > s2 ? s1 : s2);
        op_attention(y + off, q, k, v, B, T, T, heads, d, 1.0f / sqrtf((float)d), NULL, 0, scratch);
        off += (size_t)B * T * hd;
        op_attention(y + off, q, k, v, B, T, T, heads, d, 0.2f, NULL, 1, scratch);
        off += (size_t)B * T * hd;
        op_attention(y + off, q, k, v, B, T, Tk, heads, d, 0.2f, mask, 0, scratch);
        off += (size_t)B * T * hd;
        free(scratch);
        CHECK(off <= ny, "thread test: buffer layout (%zu > %zu)", off, ny);
    }
    size_t lin_n = (size_t)R * C;
    CHECK(memcmp(y1, y2, lin_off * sizeof(float)) == 0 &&
              memcmp(y1 + lin_off + lin_n, y2 + lin_off + lin_n,
                     (ny - lin_off - lin_n) * sizeof(float)) == 0,
          "group_norm/layer_norm/silu/attention: 1 and 2 threads differ");
    check_blas_threads("linear", y1 + lin_off, y2 + lin_off, lin_n);
    free(x);
    free(y1);
    free(y2);
    free(g);
    free(bb);
    free(q);
    free(k);
    free(v);
    free(mask);
}

/* ---- arena, fp16/bf16 --------------------------------------------------- */

static void test_arena(void) {
    arena a;
    oir_error err = {0};
    CHECK(arena_init(&a, 1000, &err) == OIR_OK, "arena_init: %s", err.message);
    if (!a.base) return;
    size_t cap = a.cap;
    void *p1 = arena_alloc(&a, 10);
    CHECK(p1 && ((uintptr_t)p1 % 64) == 0, "arena: first allocation must be 64-byte aligned");
    size_t mark = arena_mark(&a);
    float *f = arena_floats(&a, 20);
    CHECK(f && ((uintptr_t)f % 64) == 0, "arena: allocations must be 64-byte aligned");
    CHECK(a.used >= mark + 80, "arena: used must grow by the allocation");
    arena_reset(&a, mark);
    CHECK(a.used == mark, "arena_reset must return to the mark");
    float *f2 = arena_floats(&a, 20);
    CHECK(f2 == f, "arena: after reset the same memory is handed out again");
    CHECK(arena_alloc(&a, cap) == NULL, "arena: exhaustion must return NULL");
    CHECK(arena_alloc(&a, (size_t)-1) == NULL, "arena: a huge request must return NULL");
    size_t used = a.used;
    CHECK(arena_alloc(&a, cap - used + 1) == NULL, "arena: one byte past the end must fail");
    CHECK(a.used == used, "arena: a failed allocation must not consume space");
    CHECK(a.peak >= mark + 80, "arena: peak must record the high-water mark");
    arena_free(&a);
}

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_half(void) {
    int bad16 = 0, badbf = 0, badnan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            badnan += !isnan(f16_to_f32(f32_to_f16(f)));
        } else {
            bad16 += f32_to_f16(f) != h;
        }
        float fb = bf16_to_f32((uint16_t)h);
        if (isnan(fb)) {
            badnan += !isnan(bf16_to_f32(f32_to_bf16(fb)));
        } else {
            badbf += f32_to_bf16(fb) != h;
            badbf += f2u(fb) != h << 16; /* bf16 is the top half of a float */
        }
    }
    CHECK(bad16 == 0, "fp16 -> f32 -> fp16 must round-trip every value (%d differ)", bad16);
    CHECK(badbf == 0, "bf16 -> f32 -> bf16 must round-trip every value (%d differ)", badbf);
    CHECK(badnan == 0, "NaN must stay NaN through fp16/bf16 (%d did not)", badnan);

    /* known fp16 values and round-to-nearest-even */
    CHECK(f32_to_f16(1.0f) == 0x3C00 && f16_to_f32(0x3C00) == 1.0f, "fp16: 1.0");
    CHECK(f32_to_f16(-2.0f) == 0xC000, "fp16: -2.0");
    CHECK(f32_to_f16(65504.0f) == 0x7BFF, "fp16: max finite 65504");
    CHECK(f32_to_f16(65520.0f) == 0x7C00, "fp16: 65520 rounds to +inf");
    CHECK(f32_to_f16(INFINITY) == 0x7C00 && f32_to_f16(-INFINITY) == 0xFC00, "fp16: inf");
    CHECK(f16_to_f32(0x0001) == ldexpf(1.0f, -24), "fp16: smallest subnormal is 2^-24");
    CHECK(f32_to_f16(ldexpf(1.0f, -24)) == 0x0001, "fp16: 2^-24 -> 0x0001");
    CHECK(f32_to_f16(ldexpf(1.0f, -25)) == 0x0000, "fp16: 2^-25 ties to even (0)");
    CHECK(f32_to_f16(ldexpf(3.0f, -26)) == 0x0001, "fp16: 0.75 * 2^-24 rounds to 2^-24");
    CHECK(f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00, "fp16: 1 + half ulp ties to even");
    CHECK(f32_to_f16(1.0f + ldexpf(3.0f, -11)) == 0x3C02, "fp16: 1 + 1.5 ulp ties to even (up)");
    CHECK(f32_to_f16(-0.0f) == 0x8000, "fp16: -0 keeps its sign");
    /* known bf16 values */
    CHECK(f32_to_bf16(1.0f) == 0x3F80, "bf16: 1.0");
    CHECK(f32_to_bf16(u2f(0x3F808000u)) == 0x3F80, "bf16: tie rounds to even (down)");
    CHECK(f32_to_bf16(u2f(0x3F818000u)) == 0x3F82, "bf16: tie rounds to even (up)");
    CHECK(f32_to_bf16(u2f(0x3F808001u)) == 0x3F81, "bf16: above the tie rounds up");
    CHECK(isnan(bf16_to_f32(f32_to_bf16(u2f(0x7FFFFFFFu)))), "bf16: NaN with all bits set");
    CHECK(f32_to_bf16(u2f(0x7F7FFFFFu)) == 0x7F80, "bf16: FLT_MAX rounds to +inf");

    /* convert_to_f32 over arrays */
    uint16_t h16[3] = {0x3C00, 0xC000, 0x3555}, hb[2] = {0x3F80, 0xC040};
    double d64[2] = {0.1, -3.5};
    float out[3];
    oir_error err = {0};
    CHECK(convert_to_f32(out, h16, DT_F16, 3, &err) == OIR_OK && out[0] == 1.0f &&
              out[1] == -2.0f && fabsf(out[2] - 0.33325195f) < 1e-7f,
          "convert_to_f32 F16");
    CHECK(convert_to_f32(out, hb, DT_BF16, 2, &err) == OIR_OK && out[0] == 1.0f && out[1] == -3.0f,
          "convert_to_f32 BF16");
    CHECK(convert_to_f32(out, d64, DT_F64, 2, &err) == OIR_OK && out[0] == 0.1f && out[1] == -3.5f,
          "convert_to_f32 F64");
}

int main(void) {
    test_checker();
    test_arena();
    test_half();
    test_elementwise();
    test_conv_banded();
    test_threads();
    test_matmul_blocks();
    test_attention_long();
    oir_set_threads(2);
    fx = th_open_fixture("kernels.safetensors");
    if (fx) {
        test_conv();
        test_norms();
        test_activations();
        test_attention();
        test_misc();
        st_close(fx);
    }
    return th_summary();
}
