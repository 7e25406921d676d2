/* The backend table (src/core/backend.h) on every backend of this build,
 * as ggml's test-backend-ops does: every op on the CPU backend is checked
 * bit for bit against a direct op_* call, and on every other backend
 * (Vulkan: vulkan:0, lavapipe in CI) against the CPU backend by normalised
 * MSE, sum (got - cpu)^2 / sum cpu^2, with a per-op threshold:
 *   exact (0)  copy, add, mul, scale, add_channel_bias, concat, upsample,
 *              layout changes, timestep embedding (computed on the host),
 *              count_nonfinite (equal counts)
 *   1e-12      guidance, ddim_step (a fused multiply-add or a division
 *              rounded within 2.5 ulp moves an element by ~1e-7 relative)
 *   1e-10      matmul, linear, conv2d, norms, activations, GEGLU, softmax,
 *              attention (other summation orders and the device's exp/tanh:
 *              a relative error of ~1e-6 per element is 1e-12; one wrong
 *              element of these sizes is above 1e-5)
 * Inputs: the kernel fixtures (tests/fixtures/kernels.safetensors: their
 * torch outputs are checked too, NMSE 1e-9), the tiny model's shapes, and
 * odd ones (sizes off the 64 x 64 GEMM tiles and 64-query attention tiles,
 * batch 1 and 51, key masks, causal, rows that see no key). Every tensor
 * sits at an offset inside one shared buffer (not 256-byte aligned), and
 * outputs start as NaN so that an unwritten element fails.
 * Also: the table's argument checks and sticky errors, a chain of ops run
 * as one submission, splitting and refusal at maxStorageBufferRange
 * (OIR_VULKAN_MAX_RANGE lowers it), device parsing and listing.
 * A build with Vulkan but no device fails here (run scripts/deps.sh as root
 * for lavapipe), unless OIR_TEST_VULKAN=skip says to skip it;
 * OIR_TEST_VULKAN=N tests vulkan:N instead of vulkan:0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "core/ops_diffusion.h"
#include "diffusion/ddim.h"
#include "harness.h"

#define MAX_BK 3
#define ARENA_BYTES ((size_t)48 << 20)

typedef struct {
    oir_backend *be;
    be_buffer *buf;
    size_t used;
    char label[24]; /* "cpu", "vulkan:0" */
} bk;

static bk bks[MAX_BK];
static int nbk;
static st_file *fx;

static const double EXACT = 0.0, FINE = 1e-12, NUM = 1e-10, TORCH = 1e-9;
/* The GEMMs' (matmul, linear, conv2d) threshold: NUM, or with
 * OIR_VULKAN_COOPMAT=1 (the cooperative-matrix path on a GPU,
 * scripts/gpu_check.sh) COOPMAT_GEMM: A and B rounded to fp16 (2^-11
 * relative each) give an NMSE near 1e-7 on these inputs. */
static const double COOPMAT_GEMM = 1e-6;
static double gemm_thr = 1e-10; /* NUM */

/* ---- inputs ------------------------------------------------------------- */

static float *alloc_f(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* Deterministic floats in [lo, hi) (xorshift). */
static float *rnd(size_t n, uint32_t seed, float lo, float hi) {
    float *x = alloc_f(n);
    uint32_t s = seed * 2654435761u + 12345;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = lo + (hi - lo) * (float)((s >> 8) * (1.0 / 16777216.0));
    }
    return x;
}

static float *fix(const char *a, const char *b, size_t *n) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", a, b);
    return th_fixture_f32(fx, name, n, NULL);
}

/* ---- running on every backend ------------------------------------------- */

static bk *begin(int i) {
    bks[i].used = 0;
    return &bks[i];
}

/* Carves n bytes (+ 4: no two tensors share the same alignment). */
static be_view carve(bk *k, size_t bytes) {
    size_t off = (k->used + 3) / 4 * 4 + 4;
    if (off + bytes > ARENA_BYTES) {
        CHECK(0, "test arena too small for %zu bytes", bytes);
        off = 0;
    }
    k->used = off + bytes;
    return be_view_b(be_view_of(k->buf), off);
}

static be_view up(bk *k, const float *host, size_t n) {
    be_view v = carve(k, n * 4);
    be_upload(k->be, v, host, n * 4);
    return v;
}

static be_view up_bytes(bk *k, const uint8_t *host, size_t n) {
    be_view v = carve(k, n + 1);
    v = be_view_b(v, 1); /* a byte offset that is not a multiple of 4 */
    be_upload(k->be, v, host, n);
    return v;
}

/* An output filled with NaN (an element the op forgets stays NaN). */
static be_view out_nan(bk *k, size_t n) {
    float *nan_ = alloc_f(n);
    for (size_t i = 0; i < n; i++) nan_[i] = NAN;
    be_view v = up(k, nan_, n);
    free(nan_);
    return v;
}

/* Runs the queued ops and fetches v (malloc'd); a failure is a failed check. */
static float *fetch(bk *k, be_view v, size_t n, const char *what) {
    float *h = alloc_f(n);
    oir_error err = {0};
    if (be_download(k->be, h, v, n * 4, &err)) {
        CHECK(0, "%s on %s: %s", what, k->be->name, err.message);
        for (size_t i = 0; i < n; i++) h[i] = NAN;
    }
    return h;
}

static double nmse(const float *got, const float *ref, size_t n, int *nonfinite) {
    double num = 0, den = 0;
    *nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && isfinite(ref[i])) (*nonfinite)++;
        double d = (double)got[i] - (double)ref[i];
        if (isfinite(d)) num += d * d;
        if (isfinite(ref[i])) den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

static void check_nmse(const char *what, const char *who, const float *got, const float *ref, size_t n, double thr) {
    int bad;
    double e = nmse(got, ref, n, &bad);
    int ok = !bad && (thr == 0 ? memcmp(got, ref, n * sizeof(float)) == 0 : e <= thr);
    if (ok)
        printf("  ok   %-10s %-52s nmse %.2e (<= %.0e)\n", who, what, e, thr);
    else
        CHECK(0, "%s on %s: NMSE %.3e over %.0e (%d non-finite of %zu)", what, who, e, thr, bad, n);
    if (ok) th_passed++;
}

/* got[0] is the CPU backend: bit for bit the direct call; the others
 * within thr of it; with torch (fixture outputs), all within TORCH. */
static void compare(const char *what, double thr, const float *direct, float **got, size_t n, const float *torch) {
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(&got[0][i], &direct[i], sizeof(float))) first = i;
    if (CHECK(first == n, "%s: the CPU backend differs from the direct op_* call at [%zu]: %.9g vs %.9g", what, first,
              first < n ? (double)got[0][first] : 0.0, first < n ? (double)direct[first] : 0.0))
        printf("  ok   %-10s %-52s = op_* bit for bit\n", "cpu", what);
    for (int i = 1; i < nbk; i++) check_nmse(what, bks[i].label, got[i], got[0], n, thr);
    if (torch)
        for (int i = 0; i < nbk; i++) {
            char w[160];
            snprintf(w, sizeof w, "%s vs torch", what);
            check_nmse(w, bks[i].label, got[i], torch, n, thr > TORCH ? thr : TORCH);
        }
}

static void free_got(float **got) {
    for (int i = 0; i < nbk; i++) free(got[i]);
}

/* ---- GEMM, linear, conv ------------------------------------------------- */

static void t_matmul(const char *tag, int M, int N, int K, int bt, float alpha, float beta, int batch, int share_a,
                     const float *fa, const float *fb, const float *fc, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "matmul%s %dx%dx%d%s a%g b%g batch %d%s", tag, M, N, K, bt ? " b^T" : "",
             (double)alpha, (double)beta, batch, share_a ? " (shared a)" : "");
    size_t ma = (size_t)M * K, mb = (size_t)K * N, mo = (size_t)M * N;
    size_t sa = share_a ? 0 : ma, na = share_a ? ma : ma * batch;
    float *a = fa ? (float *)fa : rnd(na, 1 + M, -1, 1), *b = fb ? (float *)fb : rnd(mb * batch, 2 + N, -1, 1);
    float *c0 = fc ? (float *)fc : rnd(mo * batch, 3 + K, -1, 1);
    float *ref = alloc_f(mo * batch), *got[MAX_BK];
    memcpy(ref, c0, mo * batch * sizeof(float));
    for (int z = 0; z < batch; z++)
        op_matmul(ref + z * mo, a + z * sa, b + z * mb, M, N, K, bt, alpha, beta);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view va = up(k, a, na), vb = up(k, b, mb * batch), vo = beta != 0 ? up(k, c0, mo * batch) : out_nan(k, mo * batch);
        be_matmul(k->be, vo, va, vb, M, N, K, bt, alpha, beta, batch, sa, mb, mo);
        got[i] = fetch(k, vo, mo * batch, what);
    }
    compare(what, gemm_thr, ref, got, mo * batch, torch);
    free_got(got);
    if (!fa) free(a);
    if (!fb) free(b);
    if (!fc) free(c0);
    free(ref);
}

static void t_linear(const char *tag, int rows, int in_f, int out_f, int bias, const float *fx_, const float *fw,
                     const float *fbias, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "linear%s %d x %d -> %d%s", tag, rows, in_f, out_f, bias ? " + bias" : "");
    size_t ni = (size_t)rows * in_f, nw = (size_t)out_f * in_f, no = (size_t)rows * out_f;
    float *x = fx_ ? (float *)fx_ : rnd(ni, 5 + rows, -1, 1), *w = fw ? (float *)fw : rnd(nw, 6 + in_f, -0.5f, 0.5f);
    float *b = fbias ? (float *)fbias : rnd(out_f, 7, -1, 1), *ref = alloc_f(no), *got[MAX_BK];
    op_linear(ref, x, w, bias ? b : NULL, rows, in_f, out_f);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, ni), vw = up(k, w, nw), vb = bias ? up(k, b, out_f) : BE_NONE, vo = out_nan(k, no);
        be_linear(k->be, vo, vx, vw, vb, rows, in_f, out_f);
        got[i] = fetch(k, vo, no, what);
    }
    compare(what, gemm_thr, ref, got, no, torch);
    free_got(got);
    if (!fx_) free(x);
    if (!fw) free(w);
    if (!fbias) free(b);
    free(ref);
}

static void t_conv(const char *tag, int N, int Cin, int H, int W, int Cout, int k, int s, int p, int bias,
                   const float *fin, const float *fw, const float *fb, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "conv2d%s N%d %dx%dx%d -> %d k%d s%d p%d%s", tag, N, Cin, H, W, Cout, k, s, p,
             bias ? "" : " no bias");
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    size_t ni = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * k * k, no = (size_t)N * Cout * Ho * Wo;
    float *x = fin ? (float *)fin : rnd(ni, 11 + H, -1, 1), *w = fw ? (float *)fw : rnd(nw, 12 + Cin, -0.3f, 0.3f);
    float *b = fb ? (float *)fb : rnd(Cout, 13, -1, 1), *ref = alloc_f(no), *got[MAX_BK];
    float *scratch = alloc_f(op_conv2d_scratch(Cin, H, W, k, s, p));
    op_conv2d(ref, x, w, bias ? b : NULL, N, Cin, H, W, Cout, k, s, p, scratch);
    free(scratch);
    for (int i = 0; i < nbk; i++) {
        bk *kk = begin(i);
        be_view vx = up(kk, x, ni), vw = up(kk, w, nw), vb = bias ? up(kk, b, Cout) : BE_NONE, vo = out_nan(kk, no);
        be_conv2d(kk->be, vo, vx, vw, vb, N, Cin, H, W, Cout, k, s, p);
        got[i] = fetch(kk, vo, no, what);
    }
    compare(what, gemm_thr, ref, got, no, torch);
    free_got(got);
    if (!fin) free(x);
    if (!fw) free(w);
    if (!fb) free(b);
    free(ref);
}

/* ---- norms, activations, softmax ---------------------------------------- */

static void t_group_norm(const char *tag, int N, int C, int HW, int groups, float eps, int silu, int affine,
                         int in_place, const float *fin, const float *fg, const float *fb, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "group_norm%s N%d C%d HW%d g%d%s%s%s", tag, N, C, HW, groups, silu ? " +silu" : "",
             affine ? "" : " no affine", in_place ? " in place" : "");
    size_t n = (size_t)N * C * HW;
    float *x = fin ? (float *)fin : rnd(n, 21 + C, -2, 3), *g = fg ? (float *)fg : rnd(C, 22, 0.5f, 1.5f);
    float *b = fb ? (float *)fb : rnd(C, 23, -0.5f, 0.5f), *ref = alloc_f(n), *got[MAX_BK];
    op_group_norm(ref, x, affine ? g : NULL, affine ? b : NULL, N, C, HW, groups, eps, silu);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vg = affine ? up(k, g, C) : BE_NONE, vb = affine ? up(k, b, C) : BE_NONE;
        be_view vo = in_place ? vx : out_nan(k, n);
        be_group_norm(k->be, vo, vx, vg, vb, N, C, HW, groups, eps, silu);
        got[i] = fetch(k, vo, n, what);
    }
    compare(what, NUM, ref, got, n, torch);
    free_got(got);
    if (!fin) free(x);
    if (!fg) free(g);
    if (!fb) free(b);
    free(ref);
}

static void t_layer_norm(const char *tag, int rows, int C, float eps, int silu, int affine, const float *fin,
                         const float *fg, const float *fb, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "layer_norm%s %d x %d%s%s", tag, rows, C, silu ? " +silu" : "", affine ? "" : " no affine");
    size_t n = (size_t)rows * C;
    float *x = fin ? (float *)fin : rnd(n, 31 + C, -3, 2), *g = fg ? (float *)fg : rnd(C, 32, 0.5f, 1.5f);
    float *b = fb ? (float *)fb : rnd(C, 33, -0.5f, 0.5f), *ref = alloc_f(n), *got[MAX_BK];
    op_layer_norm(ref, x, affine ? g : NULL, affine ? b : NULL, rows, C, eps);
    if (silu) op_silu(ref, ref, n);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vg = affine ? up(k, g, C) : BE_NONE, vb = affine ? up(k, b, C) : BE_NONE;
        be_view vo = out_nan(k, n);
        be_layer_norm(k->be, vo, vx, vg, vb, rows, C, eps, silu);
        got[i] = fetch(k, vo, n, what);
    }
    compare(what, NUM, ref, got, n, torch);
    free_got(got);
    if (!fin) free(x);
    if (!fg) free(g);
    if (!fb) free(b);
    free(ref);
}

static void t_act(be_act_kind kind, size_t n, const float *fin, float range, int in_place, const float *torch) {
    static const char *names[] = {"silu", "gelu", "gelu_tanh", "quick_gelu"};
    char what[128];
    snprintf(what, sizeof what, "%s n%zu%s%s", names[kind], n, fin ? " (fixture)" : "", in_place ? " in place" : "");
    float *x = fin ? (float *)fin : rnd(n, 41 + kind, -range, range), *ref = alloc_f(n), *got[MAX_BK];
    switch (kind) {
    case BE_ACT_SILU: op_silu(ref, x, n); break;
    case BE_ACT_GELU: op_gelu(ref, x, n); break;
    case BE_ACT_GELU_TANH: op_gelu_tanh(ref, x, n); break;
    default: op_quick_gelu(ref, x, n); break;
    }
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vo = in_place ? vx : out_nan(k, n);
        be_act(k->be, kind, vo, vx, n);
        got[i] = fetch(k, vo, n, what);
    }
    compare(what, NUM, ref, got, n, torch);
    free_got(got);
    if (!fin) free(x);
    free(ref);
}

static void t_geglu(int rows, int C, const float *fin, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "geglu %d x %d", rows, C);
    size_t ni = (size_t)rows * C * 2, no = (size_t)rows * C;
    float *x = fin ? (float *)fin : rnd(ni, 51 + C, -4, 4), *ref = alloc_f(no), *got[MAX_BK];
    op_geglu(ref, x, rows, C);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, ni), vo = out_nan(k, no);
        be_geglu(k->be, vo, vx, rows, C);
        got[i] = fetch(k, vo, no, what);
    }
    compare(what, NUM, ref, got, no, torch);
    free_got(got);
    if (!fin) free(x);
    free(ref);
}

static void t_softmax(int rows, int cols, int neg_inf_row, const float *fin, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "softmax %d x %d%s", rows, cols, neg_inf_row ? " (a row of -inf, -inf entries)" : "");
    size_t n = (size_t)rows * cols;
    float *x = fin ? (float *)fin : rnd(n, 61 + cols, -6, 6), *ref = alloc_f(n), *got[MAX_BK];
    if (neg_inf_row) {
        for (int c = 0; c < cols; c++) x[c] = -INFINITY;
        for (int r = 1; r < rows; r += 2) x[(size_t)r * cols + r % cols] = -INFINITY;
    }
    op_softmax(ref, x, rows, cols);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vo = out_nan(k, n);
        be_softmax(k->be, vo, vx, rows, cols);
        got[i] = fetch(k, vo, n, what);
    }
    compare(what, NUM, ref, got, n, torch);
    free_got(got);
    if (!fin) free(x);
    free(ref);
}

/* ---- attention ---------------------------------------------------------- */

static void t_attention(const char *tag, int B, int Tq, int Tk, int heads, int d, int masked, int causal,
                        const float *fq, const float *fk, const float *fv, const float *fmask, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "attention%s B%d Tq%d Tk%d h%d d%d%s%s", tag, B, Tq, Tk, heads, d,
             masked ? " mask" : "", causal ? " causal" : "");
    size_t nq = (size_t)B * Tq * heads * d, nk = (size_t)B * Tk * heads * d, nm = (size_t)B * Tk;
    float *q = fq ? (float *)fq : rnd(nq, 71 + Tq, -2, 2), *k = fk ? (float *)fk : rnd(nk, 72 + Tk, -2, 2);
    float *v = fv ? (float *)fv : rnd(nk, 73 + d, -1, 1), *ref = alloc_f(nq), *got[MAX_BK];
    uint8_t *mask = NULL;
    if (masked) {
        mask = malloc(nm);
        for (size_t j = 0; j < nm; j++) mask[j] = fmask ? fmask[j] != 0.0f : (j * 7 + j / 3) % 5 != 0;
        if (!fmask && B > 1)
            for (int j = 0; j < Tk; j++) mask[(size_t)Tk + j] = 0; /* batch 1 sees no key: zeros */
    }
    float scale = 1.0f / sqrtf((float)d);
    float *scratch = alloc_f(op_attention_scratch(Tq, Tk, heads, d));
    op_attention(ref, q, k, v, B, Tq, Tk, heads, d, scale, mask, causal, scratch);
    free(scratch);
    for (int i = 0; i < nbk; i++) {
        bk *kk = begin(i);
        be_view vq = up(kk, q, nq), vk = up(kk, k, nk), vv = up(kk, v, nk), vo = out_nan(kk, nq);
        be_view vm = masked ? up_bytes(kk, mask, nm) : BE_NONE;
        be_attention(kk->be, vo, vq, vk, vv, B, Tq, Tk, heads, d, scale, vm, causal);
        got[i] = fetch(kk, vo, nq, what);
    }
    compare(what, NUM, ref, got, nq, torch);
    free_got(got);
    if (!fq) free(q);
    if (!fk) free(k);
    if (!fv) free(v);
    free(mask);
    free(ref);
}

/* ---- elementwise and data movement --------------------------------------- */

enum { E_ADD, E_MUL, E_SCALE, E_GUIDANCE, E_COPY };

static void t_eltwise(int op, size_t n, int in_place) {
    static const char *names[] = {"add", "mul", "scale", "guidance", "copy"};
    char what[128];
    snprintf(what, sizeof what, "%s n%zu%s", names[op], n, in_place ? " in place" : "");
    float *a = rnd(n, 81 + op, -3, 3), *b = rnd(n, 82 + op, -3, 3), *ref = alloc_f(n), *got[MAX_BK];
    float s = op == E_GUIDANCE ? 7.5f : 0.18215f;
    switch (op) {
    case E_ADD: op_add(ref, a, b, n); break;
    case E_MUL: op_mul(ref, a, b, n); break;
    case E_SCALE: op_scale(ref, a, s, n); break;
    case E_GUIDANCE: ddim_guidance(ref, a, b, s, n); break;
    default: memcpy(ref, a, n * sizeof(float)); break;
    }
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view va = up(k, a, n), vb = up(k, b, n), vo = in_place ? va : out_nan(k, n);
        switch (op) {
        case E_ADD: be_add(k->be, vo, va, vb, n); break;
        case E_MUL: be_mul(k->be, vo, va, vb, n); break;
        case E_SCALE: be_scale(k->be, vo, va, s, n); break;
        case E_GUIDANCE: be_guidance(k->be, vo, va, vb, s, n); break;
        default: be_copy(k->be, vo, va, n * 4); break;
        }
        got[i] = fetch(k, vo, n, what);
    }
    /* ddim_guidance is the table's reference for guidance (bit for bit) */
    compare(what, op == E_GUIDANCE ? FINE : EXACT, ref, got, n, NULL);
    free_got(got);
    free(a);
    free(b);
    free(ref);
}

static void t_shape(int N, int C, int H, int W) {
    size_t n = (size_t)N * C * H * W, HW = (size_t)H * W;
    float *x = rnd(n, 91 + C, -1, 1), *y = rnd(n / C * 3, 92, -1, 1), *bias = rnd((size_t)N * C, 93, -1, 1);
    float *ref = alloc_f(4 * n), *got[MAX_BK];
    char what[128];

    snprintf(what, sizeof what, "upsample_nearest2x N%d C%d %dx%d", N, C, H, W);
    op_upsample_nearest2x(ref, x, N, C, H, W);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vo = out_nan(k, 4 * n);
        be_upsample_nearest2x(k->be, vo, vx, N, C, H, W);
        got[i] = fetch(k, vo, 4 * n, what);
    }
    compare(what, EXACT, ref, got, 4 * n, NULL);
    free_got(got);

    snprintf(what, sizeof what, "concat_channels N%d %d+3 x %zu", N, C, HW);
    size_t nc = (size_t)N * (C + 3) * HW;
    op_concat_channels(ref, x, y, N, C, 3, (int)HW);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vy = up(k, y, (size_t)N * 3 * HW), vo = out_nan(k, nc);
        be_concat_channels(k->be, vo, vx, vy, N, C, 3, (int)HW);
        got[i] = fetch(k, vo, nc, what);
    }
    compare(what, EXACT, ref, got, nc, NULL);
    free_got(got);

    snprintf(what, sizeof what, "add_channel_bias N%d C%d HW%zu", N, C, HW);
    memcpy(ref, x, n * sizeof(float));
    op_add_channel_bias(ref, bias, N, C, (int)HW);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vb = up(k, bias, (size_t)N * C);
        be_add_channel_bias(k->be, vx, vb, N, C, (int)HW);
        got[i] = fetch(k, vx, n, what);
    }
    compare(what, EXACT, ref, got, n, NULL);
    free_got(got);

    for (int dir = 0; dir < 2; dir++) {
        snprintf(what, sizeof what, "%s N%d C%d HW%zu", dir ? "nhwc_to_nchw" : "nchw_to_nhwc", N, C, HW);
        if (dir)
            op_nhwc_to_nchw(ref, x, N, C, (int)HW);
        else
            op_nchw_to_nhwc(ref, x, N, C, (int)HW);
        for (int i = 0; i < nbk; i++) {
            bk *k = begin(i);
            be_view vx = up(k, x, n), vo = out_nan(k, n);
            if (dir)
                be_nhwc_to_nchw(k->be, vo, vx, N, C, (int)HW);
            else
                be_nchw_to_nhwc(k->be, vo, vx, N, C, (int)HW);
            got[i] = fetch(k, vo, n, what);
        }
        compare(what, EXACT, ref, got, n, NULL);
        free_got(got);
    }
    free(x);
    free(y);
    free(bias);
    free(ref);
}

/* ---- diffusion ---------------------------------------------------------- */

static void t_temb(int N, int dim, int flip, float shift, const float *ft, const float *torch) {
    char what[128];
    snprintf(what, sizeof what, "timestep_embedding N%d dim %d flip %d shift %g", N, dim, flip, (double)shift);
    float tt[8] = {999, 981, 501, 1, 0, 250.5f, 20, 777};
    const float *t = ft ? ft : tt;
    size_t n = (size_t)N * dim;
    float *ref = alloc_f(n), *got[MAX_BK];
    op_timestep_embedding(ref, t, N, dim, flip, shift, 10000.0f);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vo = out_nan(k, n);
        be_timestep_embedding(k->be, vo, t, N, dim, flip, shift, 10000.0f);
        got[i] = fetch(k, vo, n, what);
    }
    compare(what, EXACT, ref, got, n, torch);
    free_got(got);
    free(ref);
}

/* The table's DDIM step against ddim_step / ddim_invert_step themselves
 * (the CPU backend bit for bit). */
static void t_ddim(int B, size_t n, int invert, int clip, int with_x0, int in_place) {
    char what[128];
    snprintf(what, sizeof what, "ddim_%s B%d n%zu%s%s%s", invert ? "invert_step" : "step", B, n, clip ? " clip" : "",
             with_x0 ? " pred_x0" : "", in_place ? " in place" : "");
    ddim_config cfg = ddim_sd1_config();
    cfg.clip_sample = clip;
    ddim_scheduler s;
    oir_error err = {0};
    if (!CHECK(!ddim_init(&s, &cfg, &err) && !ddim_set_timesteps(&s, 50, &err), "%s", err.message)) return;
    int64_t t[64];
    float a[64], a2[64];
    for (int b = 0; b < B; b++) {
        t[b] = s.timesteps[(b * 7) % 50];
        a[b] = invert ? ddim_alphabar(&s, ddim_prev_timestep(&s, t[b])) : ddim_alphabar(&s, t[b]);
        a2[b] = invert ? ddim_alphabar(&s, t[b]) : ddim_alphabar(&s, ddim_prev_timestep(&s, t[b]));
    }
    size_t tot = (size_t)B * n;
    float *x = rnd(tot, 101, -3, 3), *e = rnd(tot, 102, -2, 2), *ref = alloc_f(tot), *ref0 = alloc_f(tot);
    float *got[MAX_BK], *got0[MAX_BK];
    if (invert)
        ddim_invert_step(&s, ref, e, t, x, B, n, &err);
    else
        ddim_step(&s, ref, e, t, x, B, n, with_x0 ? ref0 : NULL, &err);
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, tot), ve = up(k, e, tot), vo = in_place ? vx : out_nan(k, tot);
        be_view v0 = with_x0 ? out_nan(k, tot) : BE_NONE;
        be_ddim_step(k->be, vo, ve, vx, B, n, a, a2, clip, (float)cfg.clip_sample_range, v0);
        got[i] = fetch(k, vo, tot, what);
        got0[i] = with_x0 ? fetch(k, v0, tot, what) : NULL;
    }
    compare(what, FINE, ref, got, tot, NULL);
    if (with_x0) {
        char w0[160];
        snprintf(w0, sizeof w0, "%s (x0)", what);
        compare(w0, FINE, ref0, got0, tot, NULL);
        free_got(got0);
    }
    free_got(got);
    free(x);
    free(e);
    free(ref);
    free(ref0);
    ddim_free(&s);
}

static void t_nonfinite(size_t n) {
    float *x = rnd(n, 111, -1, 1);
    size_t want = 0;
    for (size_t i = 3; i < n; i += 997) {
        x[i] = (i / 997) % 3 == 0 ? NAN : (i / 997) % 3 == 1 ? INFINITY : -INFINITY;
        want++;
    }
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n);
        size_t got = 0;
        oir_error err = {0};
        int rc = be_count_nonfinite(k->be, vx, n, &got, &err);
        CHECK(!rc && got == want && got == op_count_nonfinite(x, n), "count_nonfinite n%zu on %s: %zu, expected %zu (%s)",
              n, k->be->name, got, want, err.message);
    }
    free(x);
}

/* ---- fixtures ----------------------------------------------------------- */

static void fixture_cases(void) {
    size_t n;
    /* matmul */
    float *a = fix("matmul", "a", NULL), *b = fix("matmul", "b", NULL), *bt = fix("matmul", "bt", NULL);
    float *c = fix("matmul", "c", NULL), *o = fix("matmul", "out", NULL), *ot = fix("matmul", "out_t", NULL);
    float *oab = fix("matmul", "out_ab", NULL);
    if (a && b && bt && c && o && ot && oab) {
        t_matmul(" (fixture)", 9, 11, 13, 0, 1, 0, 1, 0, a, b, c, o);
        t_matmul(" (fixture)", 9, 11, 13, 1, 1, 0, 1, 0, a, bt, c, ot);
    }
    free(a), free(b), free(bt), free(c), free(o), free(ot), free(oab);
    /* linear */
    float *li = fix("linear", "in", NULL), *lw = fix("linear", "weight", NULL), *lb = fix("linear", "bias", NULL);
    float *lo = fix("linear", "out", NULL), *lo0 = fix("linear", "out_nobias", NULL);
    if (li && lw && lb && lo && lo0) {
        t_linear(" (fixture)", 7, 33, 19, 1, li, lw, lb, lo);
        t_linear(" (fixture)", 7, 33, 19, 0, li, lw, lb, lo0);
    }
    free(li), free(lw), free(lb), free(lo), free(lo0);
    /* conv2d */
    static const struct {
        const char *name;
        int N, Cin, H, W, Cout, k, s, p, bias;
    } cv[] = {
        {"conv1x1_s1_p0", 2, 5, 7, 9, 6, 1, 1, 0, 1},  {"conv1x1_s1_p0_nobias", 1, 5, 4, 6, 3, 1, 1, 0, 0},
        {"conv1x1_s2_p0", 1, 4, 7, 7, 3, 1, 2, 0, 1},  {"conv3x3_s1_p1", 2, 4, 9, 7, 5, 3, 1, 1, 1},
        {"conv3x3_s2_p1", 1, 3, 9, 11, 4, 3, 2, 1, 1}, {"conv3x3_s1_p0", 1, 3, 8, 7, 2, 3, 1, 0, 1},
        {"conv3x3_s2_p0", 1, 2, 10, 9, 3, 3, 2, 0, 1}, {"conv5x5_s1_p2", 1, 2, 6, 5, 3, 5, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        float *x = fix(cv[i].name, "in", NULL), *w = fix(cv[i].name, "weight", NULL);
        float *bb = cv[i].bias ? fix(cv[i].name, "bias", NULL) : NULL, *r = fix(cv[i].name, "out", NULL);
        if (x && w && r && (bb || !cv[i].bias))
            t_conv(" (fixture)", cv[i].N, cv[i].Cin, cv[i].H, cv[i].W, cv[i].Cout, cv[i].k, cv[i].s, cv[i].p,
                   cv[i].bias, x, w, bb, r);
        free(x), free(w), free(bb), free(r);
    }
    /* norms */
    static const struct {
        int N, C, HW, groups;
        float eps;
    } gn[] = {{2, 8, 30, 4, 1e-5f}, {1, 64, 16, 32, 1e-6f}};
    for (int i = 0; i < 2; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "gn%d", i);
        float *x = fix(nm, "in", NULL), *g = fix(nm, "gamma", NULL), *bb = fix(nm, "beta", NULL);
        float *r = fix(nm, "out", NULL), *rs = fix(nm, "out_silu", NULL);
        if (x && g && bb && r && rs) {
            t_group_norm(" (fixture)", gn[i].N, gn[i].C, gn[i].HW, gn[i].groups, gn[i].eps, 0, 1, 0, x, g, bb, r);
            t_group_norm(" (fixture)", gn[i].N, gn[i].C, gn[i].HW, gn[i].groups, gn[i].eps, 1, 1, 1, x, g, bb, rs);
        }
        free(x), free(g), free(bb), free(r), free(rs);
    }
    static const struct {
        int rows, C;
    } ln[] = {{7, 40}, {3, 77}};
    for (int i = 0; i < 2; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "ln%d", i);
        float *x = fix(nm, "in", NULL), *g = fix(nm, "gamma", NULL), *bb = fix(nm, "beta", NULL), *r = fix(nm, "out", NULL);
        if (x && g && bb && r) t_layer_norm(" (fixture)", ln[i].rows, ln[i].C, 1e-5f, 0, 1, x, g, bb, r);
        free(x), free(g), free(bb), free(r);
    }
    /* activations, GEGLU, softmax */
    float *ain = fix("act", "in", &n);
    static const char *an[] = {"silu", "gelu", "gelu_tanh", "quick_gelu"};
    for (int kd = 0; kd < BE_ACT_COUNT && ain; kd++) {
        float *r = fix("act", an[kd], NULL);
        if (r) t_act((be_act_kind)kd, n, ain, 0, 0, r);
        free(r);
    }
    free(ain);
    float *gi = fix("geglu", "in", NULL), *gr = fix("geglu", "out", NULL);
    if (gi && gr) t_geglu(5, 24, gi, gr);
    free(gi), free(gr);
    float *si = fix("softmax", "in", NULL), *sr = fix("softmax", "out", NULL);
    if (si && sr) t_softmax(6, 37, 0, si, sr);
    free(si), free(sr);
    /* attention */
    static const struct {
        const char *name;
        int B, Tq, Tk, heads, d, mask, causal;
    } at[] = {
        {"att_self", 1, 140, 140, 2, 40, 0, 0},  {"att_cross", 2, 64, 77, 1, 40, 0, 0},
        {"att_cross80", 1, 20, 77, 1, 80, 0, 0}, {"att_causal", 1, 77, 77, 1, 64, 0, 1},
        {"att_mask", 2, 50, 50, 2, 32, 1, 0},    {"att_maskc", 1, 40, 40, 1, 16, 1, 1},
        {"att_empty", 2, 9, 12, 1, 8, 1, 0},     {"att_peaky", 1, 33, 150, 1, 24, 0, 0},
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        float *q = fix(at[i].name, "q", NULL), *k = fix(at[i].name, "k", NULL), *v = fix(at[i].name, "v", NULL);
        float *m = at[i].mask ? fix(at[i].name, "mask", NULL) : NULL, *r = fix(at[i].name, "out", NULL);
        if (q && k && v && r && (m || !at[i].mask))
            t_attention(" (fixture)", at[i].B, at[i].Tq, at[i].Tk, at[i].heads, at[i].d, at[i].mask, at[i].causal, q,
                        k, v, m, r);
        free(q), free(k), free(v), free(m), free(r);
    }
    /* timestep embedding, upsample */
    static const struct {
        int dim, flip;
        float shift;
    } te[] = {{320, 1, 0}, {33, 0, 1}, {64, 1, 1}, {7, 0, 0}};
    for (int i = 0; i < 4; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "temb%d", i);
        float *t = fix(nm, "t", &n), *r = fix(nm, "out", NULL);
        /* torch's exp differs from expf by an ulp of t * freq (test_ops.c): NMSE
         * against torch is the CPU's own, near 1e-9; the backends vs the CPU: exact */
        if (t && r) t_temb((int)n, te[i].dim, te[i].flip, te[i].shift, t, NULL);
        free(t), free(r);
    }
}

/* ---- the model's shapes and odd ones ------------------------------------ */

static void shape_cases(void) {
    /* GEMM: the tiny UNet's projections, tiles off 64, batches */
    t_matmul("", 1, 1, 1, 0, 1, 0, 1, 0, NULL, NULL, NULL, NULL);
    t_matmul("", 65, 67, 33, 0, 1, 0, 1, 0, NULL, NULL, NULL, NULL);
    t_matmul("", 65, 67, 33, 1, 0.5f, 1, 1, 0, NULL, NULL, NULL, NULL);
    t_matmul("", 130, 70, 257, 1, 1, 0, 3, 0, NULL, NULL, NULL, NULL);
    t_matmul(" (tokens_proj_add)", 64, 64, 64, 1, 1, 1, 2, 1, NULL, NULL, NULL, NULL);
    t_matmul(" (conv_shortcut)", 128, 64, 64, 0, 1, 1, 51, 1, NULL, NULL, NULL, NULL);
    t_linear("", 1, 5, 3, 1, NULL, NULL, NULL, NULL);
    t_linear(" (clip mlp)", 154, 128, 512, 1, NULL, NULL, NULL, NULL);
    t_linear(" (unet to_q)", 512, 128, 128, 0, NULL, NULL, NULL, NULL);
    t_linear("", 51, 130, 65, 1, NULL, NULL, NULL, NULL);
    /* convolutions of the tiny UNet and VAE, and odd ones */
    t_conv(" (conv_in)", 2, 4, 16, 16, 64, 3, 1, 1, 1, NULL, NULL, NULL, NULL);
    t_conv(" (resnet)", 2, 64, 16, 16, 64, 3, 1, 1, 1, NULL, NULL, NULL, NULL);
    t_conv(" (downsample)", 2, 64, 16, 16, 64, 3, 2, 1, 1, NULL, NULL, NULL, NULL);
    t_conv(" (shortcut 1x1)", 2, 64, 8, 8, 128, 1, 1, 0, 1, NULL, NULL, NULL, NULL);
    t_conv("", 51, 3, 5, 7, 5, 3, 1, 1, 1, NULL, NULL, NULL, NULL);
    t_conv("", 3, 5, 13, 11, 7, 3, 2, 0, 0, NULL, NULL, NULL, NULL);
    t_conv("", 1, 2, 9, 9, 70, 5, 1, 2, 1, NULL, NULL, NULL, NULL);
    /* norms */
    t_group_norm(" (unet)", 2, 64, 256, 32, 1e-5f, 1, 1, 0, NULL, NULL, NULL, NULL);
    t_group_norm("", 51, 12, 63, 3, 1e-6f, 0, 0, 0, NULL, NULL, NULL, NULL);
    t_group_norm("", 1, 128, 1000, 32, 1e-6f, 1, 1, 1, NULL, NULL, NULL, NULL);
    t_layer_norm(" (clip)", 154, 128, 1e-5f, 0, 1, NULL, NULL, NULL, NULL);
    t_layer_norm("", 51, 300, 1e-5f, 1, 0, NULL, NULL, NULL, NULL);
    t_layer_norm("", 1, 1, 1e-5f, 0, 1, NULL, NULL, NULL, NULL);
    /* activations, GEGLU, softmax */
    for (int kd = 0; kd < BE_ACT_COUNT; kd++) t_act((be_act_kind)kd, 70001, NULL, 12, kd == 1, NULL);
    t_geglu(128, 512, NULL, NULL);
    t_geglu(3, 7, NULL, NULL);
    t_softmax(51, 300, 0, NULL, NULL);
    t_softmax(9, 77, 1, NULL, NULL);
    /* attention: the tiny UNet's self and cross attention, CLIP's causal
     * self-attention, SD 1.5's head sizes, odd tiles, batch 51, masks */
    t_attention(" (unet self)", 2, 256, 256, 4, 16, 0, 0, NULL, NULL, NULL, NULL, NULL);
    t_attention(" (unet cross)", 2, 64, 77, 4, 32, 0, 0, NULL, NULL, NULL, NULL, NULL);
    t_attention(" (clip text)", 2, 77, 77, 4, 32, 0, 1, NULL, NULL, NULL, NULL, NULL);
    t_attention(" (sd d160)", 1, 70, 77, 1, 160, 0, 0, NULL, NULL, NULL, NULL, NULL);
    t_attention("", 51, 3, 5, 1, 8, 1, 0, NULL, NULL, NULL, NULL, NULL);
    t_attention("", 2, 65, 130, 2, 40, 1, 0, NULL, NULL, NULL, NULL, NULL);
    t_attention("", 1, 129, 129, 3, 24, 1, 1, NULL, NULL, NULL, NULL, NULL);
    t_attention("", 1, 1, 1, 1, 1, 0, 0, NULL, NULL, NULL, NULL, NULL);
    /* elementwise, data movement */
    for (int op = E_ADD; op <= E_COPY; op++) {
        t_eltwise(op, 100003, 0);
        if (op != E_COPY) t_eltwise(op, 1, 1);
    }
    t_shape(2, 64, 8, 8);
    t_shape(51, 3, 5, 7);
    /* diffusion */
    t_temb(4, 320, 1, 0, NULL, NULL);
    t_temb(8, 33, 0, 1, NULL, NULL);
    t_ddim(2, 4 * 16 * 16, 0, 0, 1, 0);
    t_ddim(51, 37, 0, 1, 1, 1);
    t_ddim(3, 1000, 1, 0, 0, 1);
    t_nonfinite(100003);
}

/* ---- the table's contract ------------------------------------------------- */

/* Several ops queued and run by one download: a transformer-ish chain. */
static void t_chain(void) {
    const int B = 2, T = 64, C = 128, heads = 4, d = 32;
    size_t n = (size_t)B * T * C;
    float *x = rnd(n, 121, -1, 1), *g = rnd(C, 122, 0.5f, 1.5f), *bb = rnd(C, 123, -0.2f, 0.2f);
    float *w = rnd((size_t)3 * C * C, 124, -0.1f, 0.1f), *got[MAX_BK];
    for (int i = 0; i < nbk; i++) {
        bk *k = begin(i);
        be_view vx = up(k, x, n), vg = up(k, g, C), vb = up(k, bb, C), vw = up(k, w, (size_t)3 * C * C);
        be_view h = carve(k, n * 4), q = carve(k, n * 4), kk = carve(k, n * 4), v = carve(k, n * 4), o = carve(k, n * 4);
        be_sync(k->be, NULL);
        long syncs = k->be->syncs;
        be_layer_norm(k->be, h, vx, vg, vb, B * T, C, 1e-5f, 0);
        be_linear(k->be, q, h, vw, BE_NONE, B * T, C, C);
        be_linear(k->be, kk, h, be_view_f(vw, (size_t)C * C), BE_NONE, B * T, C, C);
        be_linear(k->be, v, h, be_view_f(vw, (size_t)2 * C * C), BE_NONE, B * T, C, C);
        be_attention(k->be, o, q, kk, v, B, T, T, heads, d, 1.0f / sqrtf((float)d), BE_NONE, 1);
        be_add(k->be, o, o, vx, n);
        be_act(k->be, BE_ACT_GELU, o, o, n);
        got[i] = fetch(k, o, n, "chain");
        CHECK(k->be->syncs == syncs + 1, "chain on %s: %ld submissions, expected 1", k->be->name, k->be->syncs - syncs);
    }
    for (int i = 1; i < nbk; i++) check_nmse("chain ln/linear/attention/add/gelu, 1 submission", bks[i].label, got[i], got[0], n, gemm_thr);
    free_got(got);
    free(x), free(g), free(bb), free(w);
}

/* Argument checks, sticky errors and recovery, on one backend. */
static void t_contract(bk *k, oir_backend *other) {
    oir_backend *be = k->be;
    const char *nm = be->name;
    oir_error err = {0};
    begin((int)(k - bks));
    be_view a = carve(k, 4096), b = carve(k, 4096);
    be_view end = be_view_b(be_view_of(k->buf), ARENA_BYTES - 64);
    CHECK(be_add(be, a, a, end, 64) == OIR_E_ARG, "%s: a view past its buffer must be refused", nm);
    CHECK(be_add(be, a, a, b, 16) == OIR_E_ARG, "%s: after a failure every op is skipped (sticky)", nm);
    int rc = be_sync(be, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "add: operand b needs 256 bytes"),
          "%s: sync reports the first failure, got %d '%s'", nm, rc, err.message);
    CHECK(be_sync(be, &err) == OIR_OK, "%s: the sticky status is cleared after it is reported", nm);
    CHECK(be_add(be, a, a, be_view_b(b, 2), 4) == OIR_E_ARG, "%s: a float view at an odd offset is refused", nm);
    be_sync(be, &err);
    CHECK(strstr(err.message, "not a multiple of 4") != NULL, "%s: message '%s'", nm, err.message);
    CHECK(be_linear(be, be_view_f(a, 2), a, b, BE_NONE, 2, 4, 4) == OIR_E_ARG, "%s: linear out overlapping in is refused", nm);
    be_sync(be, &err);
    CHECK(strstr(err.message, "overlaps in") != NULL, "%s: message '%s'", nm, err.message);
    CHECK(be_group_norm(be, a, a, BE_NONE, BE_NONE, 1, 6, 4, 4, 1e-5f, 0) == OIR_E_ARG, "%s: 6 channels in 4 groups", nm);
    be_sync(be, &err);
    CHECK(be_attention(be, b, a, a, a, 1, 3, 4, 1, 4, 1, BE_NONE, 1) == OIR_E_ARG, "%s: causal with Tq != Tk", nm);
    be_sync(be, &err);
    CHECK(be_matmul(be, a, a, b, -1, 2, 2, 0, 1, 0, 1, 0, 0, 0) == OIR_E_ARG, "%s: a negative size", nm);
    be_sync(be, &err);
    if (other) {
        be_buffer *ob = NULL;
        if (!be_buffer_alloc(other, 256, &ob, &err)) {
            CHECK(be_scale(be, a, be_view_of(ob), 2, 4) == OIR_E_ARG, "%s: a buffer of another backend is refused", nm);
            be_sync(be, &err);
            CHECK(strstr(err.message, "another backend") != NULL, "%s: message '%s'", nm, err.message);
            be_buffer_free(other, ob);
        }
    }
    /* after all that, ops work again */
    float h[4] = {1, 2, 3, 4}, r[4] = {0};
    be_upload(be, a, h, sizeof h);
    be_scale(be, b, a, 2.0f, 4);
    CHECK(be_download(be, r, b, sizeof r, &err) == OIR_OK && r[0] == 2 && r[3] == 8,
          "%s: ops run after errors were reported (%s)", nm, err.message);
    /* a buffer from host memory */
    be_buffer *hb = NULL;
    float src[3] = {5, 6, 7}, back[3] = {0};
    if (CHECK(!be_buffer_from_host(be, src, sizeof src, &hb, &err), "%s: be_buffer_from_host: %s", nm, err.message)) {
        CHECK(!be_download(be, back, be_view_of(hb), sizeof back, &err) && back[2] == 7.0f,
              "%s: be_buffer_from_host holds the host data", nm);
        CHECK((be_host_ptr(be, be_view_of(hb)) == src) == (be->ops->buffer_wrap != NULL),
              "%s: host buffers are wrapped (zero-copy) exactly where the backend shares host memory", nm);
        be_buffer_free(be, hb);
    }
}

/* maxStorageBufferRange: a Vulkan backend whose range is lowered to 64 KiB
 * splits elementwise ops into windows and refuses one operand above it. */
static void t_max_range(int index) {
    setenv("OIR_VULKAN_MAX_RANGE", "65536", 1);
    be_device_spec spec = {BE_VULKAN, index, 0};
    oir_backend *be = NULL;
    oir_error err = {0};
    int rc = be_create(&be, &spec, &err);
    unsetenv("OIR_VULKAN_MAX_RANGE");
    if (!CHECK(rc == OIR_OK, "vulkan with a 64 KiB range: %s", err.message)) return;
    size_t n = 100000; /* 400 KB: 7 windows, and uploads through a 16 KiB staging buffer */
    be_buffer *buf = NULL;
    if (!CHECK(!be_buffer_alloc(be, 3 * n * 4 + 64, &buf, &err), "%s", err.message)) {
        be_destroy(be);
        return;
    }
    float *a = rnd(n, 131, -1, 1), *b = rnd(n, 132, -1, 1), *r = alloc_f(n), *ref = alloc_f(n);
    op_add(ref, a, b, n);
    be_view va = be_view_b(be_view_of(buf), 4), vb = be_view_f(va, n), vo = be_view_f(vb, n);
    be_upload(be, va, a, n * 4);
    be_upload(be, vb, b, n * 4);
    be_add(be, vo, va, vb, n);
    rc = be_download(be, r, vo, n * 4, &err);
    CHECK(!rc && !memcmp(r, ref, n * 4), "64 KiB range: add over 400 KB split into windows (%s)", err.message);
    size_t nf = 0;
    a[n - 1] = NAN;
    be_upload(be, va, a, n * 4);
    CHECK(!be_count_nonfinite(be, va, n, &nf, &err) && nf == 1, "64 KiB range: count_nonfinite over windows: %zu", nf);
    rc = be_linear(be, vo, va, vb, BE_NONE, 2, 20000, 2);
    if (rc == OIR_OK) rc = be_sync(be, &err);
    else be_sync(be, &err);
    CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "maxStorageBufferRange"),
          "64 KiB range: a weight of 160 KB is refused with a clear error: %d '%s'", rc, err.message);
    printf("  refused as expected: %s\n", err.message);
    free(a), free(b), free(r), free(ref);
    be_buffer_free(be, buf);
    be_destroy(be);
}

static void t_devices(void) {
    be_device_spec s;
    oir_error err = {0};
    CHECK(!be_parse_device("cpu", &s, &err) && s.kind == BE_CPU, "parse cpu");
    CHECK(!be_parse_device("vulkan", &s, &err) && s.kind == BE_VULKAN && s.index == 0, "parse vulkan");
    CHECK(!be_parse_device("vulkan:3", &s, &err) && s.kind == BE_VULKAN && s.index == 3, "parse vulkan:3");
    const char *bad[] = {"gpu", "vulkan:", "vulkan:x", "vulkan:-1", "vulkan:99", "vulkan2", "", "CPU"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(be_parse_device(bad[i], &s, &err) == OIR_E_ARG && strstr(err.message, "expected cpu, vulkan"),
              "device '%s' must be refused", bad[i]);
    be_device_info info[BE_MAX_DEVICES];
    int n = 0;
    int rc = be_vulkan_devices(info, BE_MAX_DEVICES, &n, &err);
    if (!be_have_vulkan()) {
        CHECK(rc == OIR_E_UNSUPPORTED && strstr(err.message, "no Vulkan in this build"),
              "a build without Vulkan says so: '%s'", err.message);
        s = (be_device_spec){BE_VULKAN, 0, 0};
        oir_backend *be = NULL;
        CHECK(be_create(&be, &s, &err) == OIR_E_UNSUPPORTED && !be && strstr(err.message, "no Vulkan in this build"),
              "vulkan:0 in a build without Vulkan: '%s'", err.message);
        return;
    }
    if (rc) return; /* reported by main */
    for (int i = 0; i < n; i++) {
        printf("  vulkan:%d %s (%s), %u.%u, %llu MiB, subgroup %d, fp16 %d, coopmat %d, max range %llu\n", i,
               info[i].name, info[i].type, info[i].api_major, info[i].api_minor, info[i].memory >> 20,
               info[i].subgroup_size, info[i].fp16, info[i].coopmat, info[i].max_storage_range);
        CHECK(info[i].name[0] && info[i].max_storage_range >= 4096, "device %d: name and limits", i);
    }
    s = (be_device_spec){BE_VULKAN, n, 0};
    oir_backend *be = NULL;
    rc = be_create(&be, &s, &err);
    CHECK(rc == OIR_E_UNSUPPORTED && !be && strstr(err.message, "no such device"),
          "vulkan:%d (past the last device) is refused: '%s'", n, err.message);
}

/* ---- fp16 weight storage (be_weights_from_host) -------------------------- */

static const double F16_VS_F32 = 1e-6;

/* Weights rounded to fp16 and back: what the device computes with. */
static float *round_f16(const float *w, size_t n) {
    float *r = alloc_f(n);
    for (size_t i = 0; i < n; i++) r[i] = f16_to_f32(f32_to_f16(w[i]));
    return r;
}

/* got (n) against the CPU with fp16-rounded weights (ref16, tight) and with
 * the fp32 weights (ref32, loose but clearly non-zero). */
static void check_f16(const char *what, const char *who, const float *got, const float *ref16, const float *ref32,
                      size_t n) {
    char w[160];
    snprintf(w, sizeof w, "%s, fp16 weights vs rounded", what);
    check_nmse(w, who, got, ref16, n, gemm_thr);
    int bad;
    double e = nmse(got, ref32, n, &bad);
    if (CHECK(!bad && e <= F16_VS_F32 && e > NUM,
              "%s on %s: NMSE vs the fp32 weights %.3e, expected in (%.0e, %.0e]: fp16 storage %s", what, who, e,
              NUM, F16_VS_F32, e <= NUM ? "not in effect" : "too far off"))
        printf("  ok   %-10s %-52s nmse vs fp32 %.2e (<= %.0e, > %.0e)\n", who, what, e, F16_VS_F32, NUM);
}

/* x (fp32, uploaded) and w (fp16 via be_weights_from_host) on be. */
static int f16_operands(oir_backend *be, const float *x, size_t nx, const float *w, size_t nw, size_t nout,
                        be_buffer **xb, be_buffer **wb, be_buffer **ob) {
    oir_error err = {0};
    *xb = *wb = *ob = NULL;
    int rc = be_buffer_alloc(be, nx * 4, xb, &err);
    if (!rc) rc = be_weights_from_host(be, w, nw, wb, &err);
    if (!rc) rc = be_buffer_alloc(be, nout * 4, ob, &err);
    if (!CHECK(rc == OIR_OK, "fp16 weights: buffers on %s: %s", be->name, err.message)) return rc;
    CHECK((*wb)->f16 == 1 && (*wb)->size == nw * 2, "fp16 weights: %zu weights stored in %zu bytes (f16 %d)", nw,
          (*wb)->size, (*wb)->f16);
    be_upload(be, be_view_of(*xb), x, nx * 4);
    return OIR_OK;
}

static float *f16_fetch(oir_backend *be, be_buffer *ob, size_t n, const char *what) {
    float *h = alloc_f(n);
    oir_error err = {0};
    if (!CHECK(!be_download(be, h, be_view_of(ob), n * 4, &err), "%s on %s: %s", what, be->name, err.message))
        for (size_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

static void f16_free(oir_backend *be, be_buffer *a, be_buffer *b, be_buffer *c) {
    be_buffer_free(be, a), be_buffer_free(be, b), be_buffer_free(be, c);
}

static void t_f16_linear(oir_backend *be, int rows, int in_f, int out_f) {
    char what[96];
    snprintf(what, sizeof what, "linear %d x %d -> %d + bias", rows, in_f, out_f);
    size_t ni = (size_t)rows * in_f, nw = (size_t)out_f * in_f, no = (size_t)rows * out_f;
    float *x = rnd(ni, 301, -1, 1), *w = rnd(nw, 302, -0.5f, 0.5f), *b = rnd(out_f, 303, -1, 1);
    float *w16 = round_f16(w, nw), *r16 = alloc_f(no), *r32 = alloc_f(no);
    op_linear(r16, x, w16, b, rows, in_f, out_f);
    op_linear(r32, x, w, b, rows, in_f, out_f);
    be_buffer *xb, *wb, *ob, *bb = NULL;
    oir_error err = {0};
    if (!f16_operands(be, x, ni, w, nw, no, &xb, &wb, &ob) && !be_buffer_from_host(be, b, out_f * 4, &bb, &err)) {
        be_linear(be, be_view_of(ob), be_view_of(xb), be_view_of(wb), be_view_of(bb), rows, in_f, out_f);
        float *got = f16_fetch(be, ob, no, what);
        check_f16(what, "vulkan", got, r16, r32, no);
        free(got);
    }
    be_buffer_free(be, bb);
    f16_free(be, xb, wb, ob);
    free(x), free(w), free(b), free(w16), free(r16), free(r32);
}

static void t_f16_conv(oir_backend *be, int N, int Cin, int H, int W, int Cout, int k, int s, int p) {
    char what[96];
    snprintf(what, sizeof what, "conv2d N%d %dx%dx%d -> %d k%d s%d p%d", N, Cin, H, W, Cout, k, s, p);
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    size_t ni = (size_t)N * Cin * H * W, nw = (size_t)Cout * Cin * k * k, no = (size_t)N * Cout * Ho * Wo;
    float *x = rnd(ni, 311, -1, 1), *w = rnd(nw, 312, -0.3f, 0.3f), *w16 = round_f16(w, nw);
    float *r16 = alloc_f(no), *r32 = alloc_f(no), *scratch = alloc_f(op_conv2d_scratch(Cin, H, W, k, s, p));
    op_conv2d(r16, x, w16, NULL, N, Cin, H, W, Cout, k, s, p, scratch);
    op_conv2d(r32, x, w, NULL, N, Cin, H, W, Cout, k, s, p, scratch);
    be_buffer *xb, *wb, *ob;
    if (!f16_operands(be, x, ni, w, nw, no, &xb, &wb, &ob)) {
        be_conv2d(be, be_view_of(ob), be_view_of(xb), be_view_of(wb), BE_NONE, N, Cin, H, W, Cout, k, s, p);
        float *got = f16_fetch(be, ob, no, what);
        check_f16(what, "vulkan", got, r16, r32, no);
        free(got);
    }
    f16_free(be, xb, wb, ob);
    free(x), free(w), free(w16), free(r16), free(r32), free(scratch);
}

/* which: 1 a in fp16, 2 b in fp16, 3 both; b (or a) a batch of `batch`
 * matrices at a stride (views count fp16 elements). */
static void t_f16_matmul(oir_backend *be, int M, int N, int K, int bt, int batch, int which) {
    char what[96];
    snprintf(what, sizeof what, "matmul %dx%dx%d%s batch %d, fp16 %s", M, N, K, bt ? " b^T" : "", batch,
             which == 1 ? "a" : which == 2 ? "b" : "a and b");
    size_t ma = (size_t)M * K, mb = (size_t)K * N, mo = (size_t)M * N;
    float *a = rnd(ma * batch, 321, -1, 1), *b = rnd(mb * batch, 322, -1, 1);
    float *a16 = which & 1 ? round_f16(a, ma * batch) : a, *b16 = which & 2 ? round_f16(b, mb * batch) : b;
    float *r16 = alloc_f(mo * batch), *r32 = alloc_f(mo * batch);
    for (int z = 0; z < batch; z++) {
        op_matmul(r16 + z * mo, a16 + z * ma, b16 + z * mb, M, N, K, bt, 1.0f, 0.0f);
        op_matmul(r32 + z * mo, a + z * ma, b + z * mb, M, N, K, bt, 1.0f, 0.0f);
    }
    be_buffer *ab = NULL, *bb = NULL, *ob = NULL;
    oir_error err = {0};
    int rc = which & 1 ? be_weights_from_host(be, a, ma * batch, &ab, &err)
                       : be_buffer_from_host(be, a, ma * batch * 4, &ab, &err);
    if (!rc) rc = which & 2 ? be_weights_from_host(be, b, mb * batch, &bb, &err)
                            : be_buffer_from_host(be, b, mb * batch * 4, &bb, &err);
    if (!rc) rc = be_buffer_alloc(be, mo * batch * 4, &ob, &err);
    if (CHECK(rc == OIR_OK, "%s: buffers: %s", what, err.message)) {
        be_matmul(be, be_view_of(ob), be_view_of(ab), be_view_of(bb), M, N, K, bt, 1.0f, 0.0f, batch, ma, mb, mo);
        float *got = f16_fetch(be, ob, mo * batch, what);
        check_f16(what, "vulkan", got, r16, r32, mo * batch);
        free(got);
    }
    f16_free(be, ab, bb, ob);
    if (a16 != a) free(a16);
    if (b16 != b) free(b16);
    free(a), free(b), free(r16), free(r32);
}

static void t_fp16_weights(int index) {
    oir_error err = {0};
    be_device_spec spec;
    char dev[48];
    snprintf(dev, sizeof dev, "vulkan:%d,fp16-weights", index);
    if (!CHECK(!be_parse_device(dev, &spec, &err) && spec.fp16_weights, "parse %s: %s", dev, err.message)) return;
    /* a device without 16-bit storage: refused, naming the feature */
    setenv("OIR_VULKAN_NO_STORAGE16", "1", 1);
    oir_backend *be = NULL;
    int rc = be_create(&be, &spec, &err);
    unsetenv("OIR_VULKAN_NO_STORAGE16");
    if (CHECK(rc == OIR_E_UNSUPPORTED && !be && strstr(err.message, "storageBuffer16BitAccess"),
              "fp16 weights without 16-bit storage refused: %d '%s'", rc, err.message))
        printf("  refused as expected: %s\n", err.message);
    be_destroy(be);
    be = NULL;
    if (!CHECK(!be_create(&be, &spec, &err) && be->fp16_weights, "%s (lavapipe has 16-bit storage): %s", dev,
               err.message))
        return;
    t_f16_linear(be, 37, 70, 65);
    t_f16_linear(be, 130, 96, 200); /* several 64 x 64 tiles, K over the 16-step */
    t_f16_conv(be, 2, 5, 9, 11, 7, 3, 1, 1);
    t_f16_conv(be, 1, 6, 10, 9, 5, 3, 2, 1);
    t_f16_conv(be, 2, 8, 7, 7, 70, 1, 1, 0); /* 1x1: the direct GEMM */
    t_f16_matmul(be, 33, 45, 29, 1, 3, 2);  /* a batch of fp16 b^T at a stride */
    t_f16_matmul(be, 40, 31, 27, 0, 2, 2);
    t_f16_matmul(be, 40, 31, 27, 0, 1, 1);
    t_f16_matmul(be, 21, 66, 17, 1, 1, 1);
    t_f16_matmul(be, 21, 66, 17, 1, 2, 3);
    /* an fp16 buffer anywhere but a weight operand is refused */
    float h[64];
    for (int i = 0; i < 64; i++) h[i] = (float)i;
    be_buffer *wb = NULL, *ob = NULL;
    if (CHECK(!be_weights_from_host(be, h, 64, &wb, &err) && !be_buffer_alloc(be, 256, &ob, &err), "%s",
              err.message)) {
        be_add(be, be_view_of(ob), be_view_of(wb), be_view_of(wb), 64);
        rc = be_sync(be, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, "fp16 weight buffer"),
              "add reading an fp16 weight buffer is refused: %d '%s'", rc, err.message);
        be_linear(be, be_view_of(ob), be_view_of(wb), be_view_of(wb), BE_NONE, 8, 8, 8);
        rc = be_sync(be, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, "operand in is an fp16 weight buffer"),
              "linear with fp16 activations is refused: %d '%s'", rc, err.message);
        float back[64];
        rc = be_download(be, back, be_view_of(wb), 64, &err);
        CHECK(rc == OIR_E_ARG, "downloading an fp16 weight buffer is refused: %d '%s'", rc, err.message);
    }
    be_buffer_free(be, wb);
    be_buffer_free(be, ob);
    be_destroy(be);
}

static void t_fp16_parse(void) {
    be_device_spec s;
    oir_error err = {0};
    CHECK(!be_parse_device("vulkan,fp16-weights", &s, &err) && s.kind == BE_VULKAN && s.index == 0 && s.fp16_weights,
          "parse vulkan,fp16-weights");
    CHECK(!be_parse_device("vulkan:2", &s, &err) && !s.fp16_weights, "fp16 weights off by default");
    const char *bad[] = {"cpu,fp16-weights", "vulkan:0,fp16", "vulkan:0,", "vulkan,fp16-weights,x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(be_parse_device(bad[i], &s, &err) == OIR_E_ARG, "device '%s' must be refused", bad[i]);
    setenv("OIR_VULKAN_FP16_WEIGHTS", "1", 1);
    CHECK(!be_parse_device("vulkan:1", &s, &err) && s.index == 1 && s.fp16_weights,
          "OIR_VULKAN_FP16_WEIGHTS=1 turns fp16 weights on");
    CHECK(!be_parse_device("cpu", &s, &err) && !s.fp16_weights, "OIR_VULKAN_FP16_WEIGHTS leaves the CPU alone");
    unsetenv("OIR_VULKAN_FP16_WEIGHTS");
    s = (be_device_spec){BE_CPU, 0, 1};
    oir_backend *be = NULL;
    CHECK(be_create(&be, &s, &err) == OIR_E_ARG && !be, "fp16 weights on the CPU refused: '%s'", err.message);
    /* on the CPU be_weights_from_host is plain fp32 (wrapped host memory) */
    be = be_create_cpu();
    float h[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    be_buffer *b = NULL;
    CHECK(!be_weights_from_host(be, h, 8, &b, &err) && !b->f16 && b->size == 32,
          "cpu: be_weights_from_host keeps fp32");
    be_buffer_free(be, b);
    be_destroy(be);
}

int main(void) {
    oir_error err = {0};
    fx = th_open_fixture("kernels.safetensors");
    const char *coopmat = getenv("OIR_VULKAN_COOPMAT");
    if (coopmat && !strcmp(coopmat, "1")) {
        gemm_thr = COOPMAT_GEMM;
        printf("  OIR_VULKAN_COOPMAT=1: GEMMs within %.0e (fp16 inputs)\n", COOPMAT_GEMM);
    }
    t_devices();
    t_fp16_parse();
    snprintf(bks[nbk].label, sizeof bks[nbk].label, "cpu");
    bks[nbk++].be = be_create_cpu();
    const char *sel = getenv("OIR_TEST_VULKAN"); /* "skip", or the device index (default 0) */
    int vk_index = -1;
    if (be_have_vulkan() && !(sel && !strcmp(sel, "skip"))) {
        be_device_spec spec = {BE_VULKAN, sel && *sel ? atoi(sel) : 0, 0};
        oir_backend *vb = NULL;
        if (CHECK(!be_create(&vb, &spec, &err), "this build has Vulkan, but vulkan:%d cannot be created: %s "
                  "(install a driver: scripts/deps.sh installs lavapipe; OIR_TEST_VULKAN=skip skips)", spec.index,
                  err.message)) {
            snprintf(bks[nbk].label, sizeof bks[nbk].label, "vulkan:%d", spec.index);
            bks[nbk++].be = vb;
            vk_index = spec.index;
        }
    } else {
        printf("  %s\n", be_have_vulkan() ? "vulkan skipped (OIR_TEST_VULKAN=skip)" : "no Vulkan in this build: the CPU backend alone");
    }
    for (int i = 0; i < nbk; i++) {
        if (!CHECK(!be_buffer_alloc(bks[i].be, ARENA_BYTES, &bks[i].buf, &err), "%s: %s", bks[i].be->name, err.message))
            return th_summary();
        printf("backend %d: %s\n", i, bks[i].be->name);
    }
    if (fx) fixture_cases();
    shape_cases();
    t_chain();
    for (int i = 0; i < nbk; i++) t_contract(&bks[i], bks[(i + 1) % nbk].be != bks[i].be ? bks[(i + 1) % nbk].be : NULL);
    if (vk_index >= 0) t_max_range(vk_index);
    if (vk_index >= 0) t_fp16_weights(vk_index);
    for (int i = 0; i < nbk; i++) {
        be_buffer_free(bks[i].be, bks[i].buf);
        be_destroy(bks[i].be);
    }
    st_close(fx);
    return th_summary();
}
