/* The backend table's front: device specs, creation, and the be_* wrappers
 * that check every op's sizes, views and aliasing before the backend's
 * entry runs (so backends trust their arguments). See backend.h. */
#include "core/backend.h"
#include "core/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OIR_HAVE_VULKAN
#include "vulkan/vk_backend.h"
#endif

oir_backend *be_cpu_create(void); /* backend_cpu.c */

/* ---- devices ------------------------------------------------------------ */

int be_have_vulkan(void) {
#ifdef OIR_HAVE_VULKAN
    return 1;
#else
    return 0;
#endif
}

/* OIR_VULKAN_FP16_WEIGHTS=1: fp16 weight storage without changing the
 * device string (scripts, oir serve). */
static int env_fp16_weights(void) {
    const char *e = getenv("OIR_VULKAN_FP16_WEIGHTS");
    return e && !strcmp(e, "1");
}

int be_parse_device(const char *s, be_device_spec *out, oir_error *err) {
    if (!s) return oir_fail(err, OIR_E_ARG, "device: missing (expected cpu, vulkan or vulkan:N)");
    if (!strcmp(s, "cpu")) {
        *out = (be_device_spec){BE_CPU, 0, 0};
        return OIR_OK;
    }
    if (!strncmp(s, "vulkan", 6) && (s[6] == '\0' || s[6] == ':' || s[6] == ',')) {
        long idx = 0;
        const char *rest = s + 6;
        if (*rest == ':') {
            const char *p = rest + 1;
            char *end = NULL;
            if (*p < '0' || *p > '9') goto bad;
            idx = strtol(p, &end, 10);
            if (idx >= BE_MAX_DEVICES) goto bad;
            rest = end;
        }
        int fp16w = env_fp16_weights();
        if (!strcmp(rest, ",fp16-weights")) fp16w = 1;
        else if (*rest) goto bad;
        *out = (be_device_spec){BE_VULKAN, (int)idx, fp16w};
        return OIR_OK;
    }
bad:
    return oir_fail(err, OIR_E_ARG,
                    "device '%s': expected cpu, vulkan or vulkan:N (N = 0..%d), optionally followed by "
                    ",fp16-weights",
                    s, BE_MAX_DEVICES - 1);
}

int be_vulkan_devices(be_device_info *out, int max, int *n, oir_error *err) {
    *n = 0;
#ifdef OIR_HAVE_VULKAN
    return vk_list_devices(out, max, n, err);
#else
    (void)out, (void)max;
    return oir_fail(err, OIR_E_UNSUPPORTED,
                    "no Vulkan in this build (rebuild with libvulkan-dev and glslc installed: scripts/deps.sh)");
#endif
}

oir_backend *be_create_cpu(void) { return be_cpu_create(); }

int be_create(oir_backend **out, const be_device_spec *spec, oir_error *err) {
    *out = NULL;
    if (spec->kind == BE_CPU) {
        if (spec->fp16_weights)
            return oir_fail(err, OIR_E_ARG, "cpu: fp16 weight storage is a Vulkan option (the CPU keeps fp32)");
        *out = be_cpu_create();
        return *out ? OIR_OK : oir_fail(err, OIR_E_NOMEM, "cpu backend: out of memory");
    }
    if (spec->kind == BE_VULKAN) {
#ifdef OIR_HAVE_VULKAN
        return vk_backend_create(out, spec->index, spec->fp16_weights, err);
#else
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "vulkan:%d: no Vulkan in this build (rebuild with libvulkan-dev and glslc installed: "
                        "scripts/deps.sh)",
                        spec->index);
#endif
    }
    return oir_fail(err, OIR_E_ARG, "device kind %d is unknown", (int)spec->kind);
}

void be_destroy(oir_backend *be) {
    if (be) be->ops->destroy(be);
}

/* ---- errors ------------------------------------------------------------- */

int be_fail(oir_backend *be, int code, const char *fmt, ...) {
    if (be->status) return be->status; /* the first failure sticks */
    va_list ap;
    va_start(ap, fmt);
    be->status = code;
    be->error.code = code;
    vsnprintf(be->error.message, sizeof be->error.message, fmt, ap);
    va_end(ap);
    return code;
}

/* Moves the sticky status into err and clears it. */
static int take_status(oir_backend *be, oir_error *err) {
    int rc = be->status;
    if (rc && err) *err = be->error;
    be->status = OIR_OK;
    memset(&be->error, 0, sizeof be->error);
    return rc;
}

/* ---- argument checks ---------------------------------------------------- */

/* a * b * c * d into *out; 0 on overflow of size_t. */
static int mul4(size_t *out, size_t a, size_t b, size_t c, size_t d) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r) || __builtin_mul_overflow(r, d, &r))
        return 0;
    *out = r;
    return 1;
}

/* Bytes of n float32s; 0 on overflow. */
static int fbytes(size_t *out, size_t n) { return mul4(out, n, 4, 1, 1); }

static int dims_ok(oir_backend *be, const char *op, int n, const int *d, const char *const *names) {
    for (int i = 0; i < n; i++)
        if (d[i] < 0) return be_fail(be, OIR_E_ARG, "%s: %s = %d is negative", op, names[i], d[i]);
    return OIR_OK;
}

/* floats: VIEW_BYTES raw bytes, VIEW_F32 float32 data (offset a multiple
 * of 4), VIEW_WEIGHT float32 or, in an f16 buffer, fp16 (half the bytes,
 * offset a multiple of 2). */
enum { VIEW_BYTES = 0, VIEW_F32 = 1, VIEW_WEIGHT = 2 };

/* A view of `bytes` bytes (as float32; see VIEW_*). */
static int view_ok(oir_backend *be, const char *op, const char *name, be_view v, size_t bytes, int optional,
                   int floats) {
    if (!v.buf) {
        if (optional) return OIR_OK;
        return be_fail(be, OIR_E_ARG, "%s: operand %s is missing", op, name);
    }
    if (v.buf->owner != be)
        return be_fail(be, OIR_E_ARG, "%s: operand %s is a buffer of another backend (not %s)", op, name, be->name);
    if (v.buf->f16 && floats != VIEW_WEIGHT)
        return be_fail(be, OIR_E_ARG,
                       "%s: operand %s is an fp16 weight buffer (be_weights_from_host): only the weights of "
                       "linear, conv2d and matmul read fp16",
                       op, name);
    if (v.buf->f16) {
        bytes /= 2; /* counted as float32 by the caller */
        if (v.off % 2)
            return be_fail(be, OIR_E_ARG, "%s: operand %s: offset %zu bytes is not a multiple of 2 (fp16)", op,
                           name, v.off);
    } else if (floats && v.off % 4)
        return be_fail(be, OIR_E_ARG, "%s: operand %s: offset %zu bytes is not a multiple of 4", op, name, v.off);
    if (v.off > v.buf->size || bytes > v.buf->size - v.off)
        return be_fail(be, OIR_E_ARG, "%s: operand %s needs %zu bytes at offset %zu, its buffer holds %zu", op,
                       name, bytes, v.off, v.buf->size);
    return OIR_OK;
}

static int overlap(be_view a, size_t an, be_view b, size_t bn) {
    if (!a.buf || a.buf != b.buf || !an || !bn) return 0;
    return a.off < b.off + bn && b.off < a.off + an;
}

/* out must not overlap an input (ops without "in place allowed"). */
static int no_alias(oir_backend *be, const char *op, be_view out, size_t on, be_view in, size_t in_n,
                    const char *name) {
    if (overlap(out, on, in, in_n))
        return be_fail(be, OIR_E_ARG, "%s: out overlaps %s (this op does not run in place)", op, name);
    return OIR_OK;
}

/* In place allowed: out may be exactly the input, never partly overlap it. */
static int same_or_apart(oir_backend *be, const char *op, be_view out, size_t on, be_view in, size_t in_n,
                         const char *name) {
    if (overlap(out, on, in, in_n) && !(out.off == in.off && on == in_n))
        return be_fail(be, OIR_E_ARG, "%s: out partly overlaps %s (in place needs the same view)", op, name);
    return OIR_OK;
}

#define ENTER(be)                                 \
    do {                                          \
        if ((be)->status) return (be)->status;    \
    } while (0)
#define TRY(x)                  \
    do {                        \
        int rc_ = (x);          \
        if (rc_) return rc_;    \
    } while (0)
#define SIZE(be, op, dst, a, b, c, d)                                                        \
    do {                                                                                     \
        if (!mul4(&(dst), (size_t)(a), (size_t)(b), (size_t)(c), (size_t)(d)) ||             \
            !fbytes(&(dst), (dst)))                                                          \
            return be_fail(be, OIR_E_ARG, "%s: the sizes overflow", op);                     \
    } while (0)

/* ---- buffers, transfers, sync ------------------------------------------- */

int be_buffer_alloc(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err) {
    *out = NULL;
    if (!bytes) return oir_fail(err, OIR_E_ARG, "%s: a buffer of 0 bytes", be->name);
    return be->ops->buffer_alloc(be, bytes, out, err);
}

int be_buffer_from_host(oir_backend *be, const void *host, size_t bytes, be_buffer **out, oir_error *err) {
    *out = NULL;
    if (!bytes) return oir_fail(err, OIR_E_ARG, "%s: a buffer of 0 bytes", be->name);
    if (be->ops->buffer_wrap) return be->ops->buffer_wrap(be, (void *)host, bytes, out, err);
    int rc = be->ops->buffer_alloc(be, bytes, out, err);
    if (rc) return rc;
    be_upload(be, be_view_of(*out), host, bytes);
    if ((rc = be_sync(be, err))) {
        be->ops->buffer_free(be, *out);
        *out = NULL;
    }
    return rc;
}

int be_weights_from_host(oir_backend *be, const float *host, size_t n, be_buffer **out, oir_error *err) {
    *out = NULL;
    if (!be->fp16_weights) return be_buffer_from_host(be, host, n * sizeof(float), out, err);
    if (!n) return oir_fail(err, OIR_E_ARG, "%s: a buffer of 0 bytes", be->name);
    uint16_t *h = malloc(n * sizeof *h); /* once per weight tensor, at load */
    if (!h) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory converting %zu weights to fp16", be->name, n);
    for (size_t i = 0; i < n; i++) h[i] = f32_to_f16(host[i]);
    int rc = be->ops->buffer_alloc(be, n * sizeof *h, out, err);
    if (!rc) {
        be_upload(be, be_view_of(*out), h, n * sizeof *h);
        if ((rc = be_sync(be, err))) {
            be->ops->buffer_free(be, *out);
            *out = NULL;
        } else {
            (*out)->f16 = 1; /* after the upload, which reads it as bytes */
        }
    }
    free(h);
    return rc;
}

void be_buffer_free(oir_backend *be, be_buffer *b) {
    if (b) be->ops->buffer_free(be, b);
}

void *be_host_ptr(oir_backend *be, be_view v) {
    if (!v.buf) return NULL;
    unsigned char *p = be->ops->buffer_host(be, v.buf);
    return p ? p + v.off : NULL;
}

int be_upload(oir_backend *be, be_view dst, const void *src, size_t bytes) {
    ENTER(be);
    if (!bytes) return OIR_OK;
    TRY(view_ok(be, "upload", "dst", dst, bytes, 0, 0));
    be->bytes_uploaded += bytes;
    return be->ops->upload(be, dst, src, bytes);
}

int be_download(oir_backend *be, void *dst, be_view src, size_t bytes, oir_error *err) {
    be->syncs++;
    if (!be->status && bytes && !view_ok(be, "download", "src", src, bytes, 0, 0)) {
        be->bytes_downloaded += bytes;
        be->ops->download(be, dst, src, bytes);
    }
    else
        be->ops->sync(be); /* the ops queued before a failure still run */
    return take_status(be, err);
}

int be_sync(oir_backend *be, oir_error *err) {
    be->syncs++;
    be->ops->sync(be);
    return take_status(be, err);
}

/* ---- ops ---------------------------------------------------------------- */

int be_copy(oir_backend *be, be_view dst, be_view src, size_t bytes) {
    ENTER(be);
    if (!bytes) return OIR_OK;
    if (bytes % 4) return be_fail(be, OIR_E_ARG, "copy: %zu bytes is not a multiple of 4", bytes);
    TRY(view_ok(be, "copy", "dst", dst, bytes, 0, 1));
    TRY(view_ok(be, "copy", "src", src, bytes, 0, 1));
    if (dst.buf == src.buf && dst.off == src.off) return OIR_OK;
    TRY(no_alias(be, "copy", dst, bytes, src, bytes, "src"));
    be->ops_queued++;
    return be->ops->copy(be, dst, src, bytes);
}

int be_matmul(oir_backend *be, be_view out, be_view a, be_view b, int M, int N, int K, int b_trans,
              float alpha, float beta, int batch, size_t stride_a, size_t stride_b, size_t stride_out) {
    ENTER(be);
    const char *op = "matmul";
    const int d[4] = {M, N, K, batch};
    const char *const nm[4] = {"M", "N", "K", "batch"};
    TRY(dims_ok(be, op, 4, d, nm));
    if (!M || !N || !batch) return OIR_OK;
    if (!K) return be_fail(be, OIR_E_ARG, "matmul: K = 0");
    /* extents: the last matrix's end */
    size_t ea, eb, eo, ma, mb, mo;
    SIZE(be, op, ma, M, K, 1, 1);
    SIZE(be, op, mb, K, N, 1, 1);
    SIZE(be, op, mo, M, N, 1, 1);
    if (!mul4(&ea, stride_a, (size_t)(batch - 1), 4, 1) || !mul4(&eb, stride_b, (size_t)(batch - 1), 4, 1) ||
        !mul4(&eo, stride_out, (size_t)(batch - 1), 4, 1) || ea + ma < ea || eb + mb < eb || eo + mo < eo)
        return be_fail(be, OIR_E_ARG, "matmul: the strides overflow");
    ea += ma, eb += mb, eo += mo;
    if (batch > 1 && stride_out < (size_t)M * N)
        return be_fail(be, OIR_E_ARG, "matmul: stride_out %zu < M*N = %zu: the batch's outputs overlap",
                       stride_out, (size_t)M * N);
    TRY(view_ok(be, op, "out", out, eo, 0, 1));
    TRY(view_ok(be, op, "a", a, ea, 0, VIEW_WEIGHT));
    TRY(view_ok(be, op, "b", b, eb, 0, VIEW_WEIGHT));
    TRY(no_alias(be, op, out, eo, a, ea, "a"));
    TRY(no_alias(be, op, out, eo, b, eb, "b"));
    be->ops_queued++;
    return be->ops->matmul(be, out, a, b, M, N, K, !!b_trans, alpha, beta, batch, stride_a, stride_b, stride_out);
}

int be_linear(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int rows, int in_f,
              int out_f) {
    ENTER(be);
    const char *op = "linear";
    const int d[3] = {rows, in_f, out_f};
    const char *const nm[3] = {"rows", "in_f", "out_f"};
    TRY(dims_ok(be, op, 3, d, nm));
    if (!rows || !out_f) return OIR_OK;
    if (!in_f) return be_fail(be, OIR_E_ARG, "linear: in_f = 0");
    size_t no, ni, nw, nb;
    SIZE(be, op, no, rows, out_f, 1, 1);
    SIZE(be, op, ni, rows, in_f, 1, 1);
    SIZE(be, op, nw, out_f, in_f, 1, 1);
    SIZE(be, op, nb, out_f, 1, 1, 1);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    TRY(view_ok(be, op, "in", in, ni, 0, 1));
    TRY(view_ok(be, op, "weight", weight, nw, 0, VIEW_WEIGHT));
    TRY(view_ok(be, op, "bias", bias, nb, 1, 1));
    TRY(no_alias(be, op, out, no, in, ni, "in"));
    TRY(no_alias(be, op, out, no, weight, nw, "weight"));
    TRY(no_alias(be, op, out, no, bias, nb, "bias"));
    be->ops_queued++;
    return be->ops->linear(be, out, in, weight, bias, rows, in_f, out_f);
}

int be_conv2d(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int N, int C_in, int H,
              int W, int C_out, int k, int stride, int pad) {
    ENTER(be);
    const char *op = "conv2d";
    const int d[8] = {N, C_in, H, W, C_out, k, stride, pad};
    const char *const nm[8] = {"N", "C_in", "H", "W", "C_out", "k", "stride", "pad"};
    TRY(dims_ok(be, op, 8, d, nm));
    if (k < 1 || stride < 1 || C_in < 1 || H < 1 || W < 1)
        return be_fail(be, OIR_E_ARG, "conv2d: k %d, stride %d, C_in %d, H %d, W %d must be positive", k, stride,
                       C_in, H, W);
    if (H + 2 * pad < k || W + 2 * pad < k)
        return be_fail(be, OIR_E_ARG, "conv2d: a %dx%d kernel over %dx%d with pad %d has no output", k, k, H, W,
                       pad);
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    if (!N || !C_out) return OIR_OK;
    size_t no, ni, nw, nb;
    SIZE(be, op, no, N, C_out, Ho, Wo);
    SIZE(be, op, ni, N, C_in, H, W);
    SIZE(be, op, nw, C_out, C_in, k, k);
    SIZE(be, op, nb, C_out, 1, 1, 1);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    TRY(view_ok(be, op, "in", in, ni, 0, 1));
    TRY(view_ok(be, op, "weight", weight, nw, 0, VIEW_WEIGHT));
    TRY(view_ok(be, op, "bias", bias, nb, 1, 1));
    TRY(no_alias(be, op, out, no, in, ni, "in"));
    TRY(no_alias(be, op, out, no, weight, nw, "weight"));
    TRY(no_alias(be, op, out, no, bias, nb, "bias"));
    be->ops_queued++;
    return be->ops->conv2d(be, out, in, weight, bias, N, C_in, H, W, C_out, k, stride, pad);
}

int be_group_norm(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int N, int C, int HW,
                  int groups, float eps, int fuse_silu) {
    ENTER(be);
    const char *op = "group_norm";
    const int d[4] = {N, C, HW, groups};
    const char *const nm[4] = {"N", "C", "HW", "groups"};
    TRY(dims_ok(be, op, 4, d, nm));
    if (groups < 1 || C % groups)
        return be_fail(be, OIR_E_ARG, "group_norm: %d channels in %d groups", C, groups);
    if (!N || !C || !HW) return OIR_OK;
    size_t nx, nc;
    SIZE(be, op, nx, N, C, HW, 1);
    SIZE(be, op, nc, C, 1, 1, 1);
    TRY(view_ok(be, op, "out", out, nx, 0, 1));
    TRY(view_ok(be, op, "in", in, nx, 0, 1));
    TRY(view_ok(be, op, "gamma", gamma, nc, 1, 1));
    TRY(view_ok(be, op, "beta", beta, nc, 1, 1));
    TRY(same_or_apart(be, op, out, nx, in, nx, "in"));
    TRY(no_alias(be, op, out, nx, gamma, nc, "gamma"));
    TRY(no_alias(be, op, out, nx, beta, nc, "beta"));
    be->ops_queued++;
    return be->ops->group_norm(be, out, in, gamma, beta, N, C, HW, groups, eps, !!fuse_silu);
}

int be_layer_norm(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int rows, int C,
                  float eps, int fuse_silu) {
    ENTER(be);
    const char *op = "layer_norm";
    const int d[2] = {rows, C};
    const char *const nm[2] = {"rows", "C"};
    TRY(dims_ok(be, op, 2, d, nm));
    if (!rows || !C) return OIR_OK;
    size_t nx, nc;
    SIZE(be, op, nx, rows, C, 1, 1);
    SIZE(be, op, nc, C, 1, 1, 1);
    TRY(view_ok(be, op, "out", out, nx, 0, 1));
    TRY(view_ok(be, op, "in", in, nx, 0, 1));
    TRY(view_ok(be, op, "gamma", gamma, nc, 1, 1));
    TRY(view_ok(be, op, "beta", beta, nc, 1, 1));
    TRY(same_or_apart(be, op, out, nx, in, nx, "in"));
    TRY(no_alias(be, op, out, nx, gamma, nc, "gamma"));
    TRY(no_alias(be, op, out, nx, beta, nc, "beta"));
    be->ops_queued++;
    return be->ops->layer_norm(be, out, in, gamma, beta, rows, C, eps, !!fuse_silu);
}

/* Unary / binary elementwise ops over n floats, in place allowed. */
static int ew_check(oir_backend *be, const char *op, be_view out, be_view a, be_view b, size_t n) {
    size_t nb;
    if (!fbytes(&nb, n)) return be_fail(be, OIR_E_ARG, "%s: %zu floats overflow", op, n);
    TRY(view_ok(be, op, "out", out, nb, 0, 1));
    TRY(view_ok(be, op, "a", a, nb, 0, 1));
    TRY(view_ok(be, op, "b", b, nb, 1, 1));
    TRY(same_or_apart(be, op, out, nb, a, nb, "a"));
    TRY(same_or_apart(be, op, out, nb, b, nb, "b"));
    be->ops_queued++;
    return OIR_OK;
}

int be_act(oir_backend *be, be_act_kind kind, be_view out, be_view in, size_t n) {
    ENTER(be);
    if ((unsigned)kind >= BE_ACT_COUNT) return be_fail(be, OIR_E_ARG, "act: unknown activation %d", (int)kind);
    if (!n) return OIR_OK;
    TRY(ew_check(be, "act", out, in, BE_NONE, n));
    return be->ops->act(be, kind, out, in, n);
}

int be_geglu(oir_backend *be, be_view out, be_view in, int rows, int C) {
    ENTER(be);
    const char *op = "geglu";
    const int d[2] = {rows, C};
    const char *const nm[2] = {"rows", "C"};
    TRY(dims_ok(be, op, 2, d, nm));
    if (!rows || !C) return OIR_OK;
    size_t no, ni;
    SIZE(be, op, no, rows, C, 1, 1);
    SIZE(be, op, ni, rows, C, 2, 1);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    TRY(view_ok(be, op, "in", in, ni, 0, 1));
    TRY(no_alias(be, op, out, no, in, ni, "in"));
    be->ops_queued++;
    return be->ops->geglu(be, out, in, rows, C);
}

int be_softmax(oir_backend *be, be_view out, be_view in, int rows, int cols) {
    ENTER(be);
    const char *op = "softmax";
    const int d[2] = {rows, cols};
    const char *const nm[2] = {"rows", "cols"};
    TRY(dims_ok(be, op, 2, d, nm));
    if (!rows || !cols) return OIR_OK;
    size_t nx;
    SIZE(be, op, nx, rows, cols, 1, 1);
    TRY(view_ok(be, op, "out", out, nx, 0, 1));
    TRY(view_ok(be, op, "in", in, nx, 0, 1));
    TRY(same_or_apart(be, op, out, nx, in, nx, "in"));
    be->ops_queued++;
    return be->ops->softmax(be, out, in, rows, cols);
}

int be_attention(oir_backend *be, be_view out, be_view q, be_view k, be_view v, int B, int Tq, int Tk,
                 int heads, int d, float scale, be_view key_mask, int causal) {
    ENTER(be);
    const char *op = "attention";
    const int dd[5] = {B, Tq, Tk, heads, d};
    const char *const nm[5] = {"B", "Tq", "Tk", "heads", "d"};
    TRY(dims_ok(be, op, 5, dd, nm));
    if (!B || !Tq || !heads || !d) return OIR_OK;
    if (!Tk) return be_fail(be, OIR_E_ARG, "attention: Tk = 0 (no keys)");
    if (causal && Tq != Tk) return be_fail(be, OIR_E_ARG, "attention: causal needs Tq == Tk, got %d and %d", Tq, Tk);
    size_t nq, nk, nm_;
    SIZE(be, op, nq, B, Tq, heads, d);
    SIZE(be, op, nk, B, Tk, heads, d);
    if (!mul4(&nm_, (size_t)B, (size_t)Tk, 1, 1)) return be_fail(be, OIR_E_ARG, "attention: the sizes overflow");
    TRY(view_ok(be, op, "out", out, nq, 0, 1));
    TRY(view_ok(be, op, "q", q, nq, 0, 1));
    TRY(view_ok(be, op, "k", k, nk, 0, 1));
    TRY(view_ok(be, op, "v", v, nk, 0, 1));
    TRY(view_ok(be, op, "key_mask", key_mask, nm_, 1, 0));
    TRY(no_alias(be, op, out, nq, q, nq, "q"));
    TRY(no_alias(be, op, out, nq, k, nk, "k"));
    TRY(no_alias(be, op, out, nq, v, nk, "v"));
    TRY(no_alias(be, op, out, nq, key_mask, nm_, "key_mask"));
    be->ops_queued++;
    return be->ops->attention(be, out, q, k, v, B, Tq, Tk, heads, d, scale, key_mask, !!causal);
}

int be_add(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    ENTER(be);
    if (!n) return OIR_OK;
    if (!b.buf) return be_fail(be, OIR_E_ARG, "add: operand b is missing");
    TRY(ew_check(be, "add", out, a, b, n));
    return be->ops->add(be, out, a, b, n);
}

int be_mul(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    ENTER(be);
    if (!n) return OIR_OK;
    if (!b.buf) return be_fail(be, OIR_E_ARG, "mul: operand b is missing");
    TRY(ew_check(be, "mul", out, a, b, n));
    return be->ops->mul(be, out, a, b, n);
}

int be_scale(oir_backend *be, be_view out, be_view a, float s, size_t n) {
    ENTER(be);
    if (!n) return OIR_OK;
    TRY(ew_check(be, "scale", out, a, BE_NONE, n));
    return be->ops->scale(be, out, a, s, n);
}

int be_add_channel_bias(oir_backend *be, be_view x, be_view bias, int N, int C, int HW) {
    ENTER(be);
    const char *op = "add_channel_bias";
    const int d[3] = {N, C, HW};
    const char *const nm[3] = {"N", "C", "HW"};
    TRY(dims_ok(be, op, 3, d, nm));
    if (!N || !C || !HW) return OIR_OK;
    size_t nx, nb;
    SIZE(be, op, nx, N, C, HW, 1);
    SIZE(be, op, nb, N, C, 1, 1);
    TRY(view_ok(be, op, "x", x, nx, 0, 1));
    TRY(view_ok(be, op, "bias", bias, nb, 0, 1));
    TRY(no_alias(be, op, x, nx, bias, nb, "bias"));
    be->ops_queued++;
    return be->ops->add_channel_bias(be, x, bias, N, C, HW);
}

int be_concat_channels(oir_backend *be, be_view out, be_view a, be_view b, int N, int Ca, int Cb, int HW) {
    ENTER(be);
    const char *op = "concat_channels";
    const int d[4] = {N, Ca, Cb, HW};
    const char *const nm[4] = {"N", "Ca", "Cb", "HW"};
    TRY(dims_ok(be, op, 4, d, nm));
    if (!N || !HW) return OIR_OK;
    if (!Ca || !Cb) return be_fail(be, OIR_E_ARG, "concat_channels: Ca %d and Cb %d must be positive", Ca, Cb);
    size_t no, na, nb;
    SIZE(be, op, no, N, (size_t)Ca + (size_t)Cb, HW, 1);
    SIZE(be, op, na, N, Ca, HW, 1);
    SIZE(be, op, nb, N, Cb, HW, 1);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    TRY(view_ok(be, op, "a", a, na, 0, 1));
    TRY(view_ok(be, op, "b", b, nb, 0, 1));
    TRY(no_alias(be, op, out, no, a, na, "a"));
    TRY(no_alias(be, op, out, no, b, nb, "b"));
    be->ops_queued++;
    return be->ops->concat_channels(be, out, a, b, N, Ca, Cb, HW);
}

int be_upsample_nearest2x(oir_backend *be, be_view out, be_view in, int N, int C, int H, int W) {
    ENTER(be);
    const char *op = "upsample_nearest2x";
    const int d[4] = {N, C, H, W};
    const char *const nm[4] = {"N", "C", "H", "W"};
    TRY(dims_ok(be, op, 4, d, nm));
    if (!N || !C || !H || !W) return OIR_OK;
    size_t no, ni;
    SIZE(be, op, ni, N, C, H, W);
    SIZE(be, op, no, N, C, H, (size_t)W * 4);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    TRY(view_ok(be, op, "in", in, ni, 0, 1));
    TRY(no_alias(be, op, out, no, in, ni, "in"));
    be->ops_queued++;
    return be->ops->upsample_nearest2x(be, out, in, N, C, H, W);
}

/* OIR_OK and *skip = 1 when there is nothing to do. */
static int layout_check(oir_backend *be, const char *op, be_view out, be_view in, int N, int C, int HW,
                        int *skip) {
    const int d[3] = {N, C, HW};
    const char *const nm[3] = {"N", "C", "HW"};
    *skip = 1;
    TRY(dims_ok(be, op, 3, d, nm));
    if (!N || !C || !HW) return OIR_OK;
    size_t nx;
    SIZE(be, op, nx, N, C, HW, 1);
    TRY(view_ok(be, op, "out", out, nx, 0, 1));
    TRY(view_ok(be, op, "in", in, nx, 0, 1));
    TRY(no_alias(be, op, out, nx, in, nx, "in"));
    *skip = 0;
    be->ops_queued++;
    return OIR_OK;
}

int be_nchw_to_nhwc(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    ENTER(be);
    int skip;
    TRY(layout_check(be, "nchw_to_nhwc", out, in, N, C, HW, &skip));
    return skip ? OIR_OK : be->ops->nchw_to_nhwc(be, out, in, N, C, HW);
}

int be_nhwc_to_nchw(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    ENTER(be);
    int skip;
    TRY(layout_check(be, "nhwc_to_nchw", out, in, N, C, HW, &skip));
    return skip ? OIR_OK : be->ops->nhwc_to_nchw(be, out, in, N, C, HW);
}

int be_timestep_embedding(oir_backend *be, be_view out, const float *timesteps, int N, int dim,
                          int flip_sin_to_cos, float downscale_freq_shift, float max_period) {
    ENTER(be);
    const char *op = "timestep_embedding";
    const int d[2] = {N, dim};
    const char *const nm[2] = {"N", "dim"};
    TRY(dims_ok(be, op, 2, d, nm));
    if (!N || !dim) return OIR_OK;
    size_t no;
    SIZE(be, op, no, N, dim, 1, 1);
    TRY(view_ok(be, op, "out", out, no, 0, 1));
    be->ops_queued++;
    return be->ops->timestep_embedding(be, out, timesteps, N, dim, flip_sin_to_cos, downscale_freq_shift,
                                       max_period);
}

int be_ddim_step(oir_backend *be, be_view out, be_view eps, be_view sample, int B, size_t n,
                 const float *alphabar, const float *alphabar_next, int clip, float clip_range,
                 be_view pred_x0) {
    ENTER(be);
    const char *op = "ddim_step";
    if (B < 0) return be_fail(be, OIR_E_ARG, "ddim_step: B = %d is negative", B);
    if (!B || !n) return OIR_OK;
    size_t nx;
    SIZE(be, op, nx, B, n, 1, 1);
    TRY(view_ok(be, op, "out", out, nx, 0, 1));
    TRY(view_ok(be, op, "eps", eps, nx, 0, 1));
    TRY(view_ok(be, op, "sample", sample, nx, 0, 1));
    TRY(view_ok(be, op, "pred_x0", pred_x0, nx, 1, 1));
    TRY(same_or_apart(be, op, out, nx, eps, nx, "eps"));
    TRY(same_or_apart(be, op, out, nx, sample, nx, "sample"));
    TRY(no_alias(be, op, pred_x0, nx, out, nx, "out"));
    TRY(no_alias(be, op, pred_x0, nx, eps, nx, "eps"));
    TRY(no_alias(be, op, pred_x0, nx, sample, nx, "sample"));
    for (int b = 0; b < B; b++)
        if (!(alphabar[b] > 0.0f && alphabar[b] <= 1.0f && alphabar_next[b] >= 0.0f && alphabar_next[b] <= 1.0f))
            return be_fail(be, OIR_E_ARG, "ddim_step: row %d: alphabar %g / next %g outside (0, 1]", b,
                           (double)alphabar[b], (double)alphabar_next[b]);
    be->ops_queued++;
    return be->ops->ddim_step(be, out, eps, sample, B, n, alphabar, alphabar_next, !!clip, clip_range, pred_x0);
}

int be_guidance(oir_backend *be, be_view out, be_view uncond, be_view cond, float g, size_t n) {
    ENTER(be);
    if (!n) return OIR_OK;
    if (!cond.buf) return be_fail(be, OIR_E_ARG, "guidance: operand cond is missing");
    TRY(ew_check(be, "guidance", out, uncond, cond, n));
    return be->ops->guidance(be, out, uncond, cond, g, n);
}

int be_count_nonfinite(oir_backend *be, be_view x, size_t n, size_t *count, oir_error *err) {
    *count = 0;
    be->syncs++;
    size_t nb = 0;
    if (!be->status && n && !fbytes(&nb, n)) be_fail(be, OIR_E_ARG, "count_nonfinite: %zu floats overflow", n);
    if (!be->status && n && !view_ok(be, "count_nonfinite", "x", x, nb, 0, 1)) {
        be->ops_queued++;
        be->ops->count_nonfinite(be, x, n, count);
    } else {
        be->ops->sync(be); /* the ops queued before a failure still run */
    }
    return take_status(be, err);
}
