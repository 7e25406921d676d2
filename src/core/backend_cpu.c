/* The CPU backend: the table over today's op_* kernels (ops.h,
 * ops_diffusion.h), on the worker pool. A CPU buffer is host memory
 * (64-byte aligned, or wrapped without a copy, e.g. mmapped weights), so
 * upload and download are memcpy, sync has nothing to wait for, and every
 * op runs at once: results are bit-identical to calling op_* directly.
 * Scratch for conv2d (im2col bands) and attention (per-thread tiles) is one
 * grow-only block: allocated the first time a size is needed, then reused. */
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/ops.h"
#include "core/ops_diffusion.h"

typedef struct {
    be_buffer head;
    unsigned char *host;
    int owned; /* 0: wrapped */
} cpu_buffer;

typedef struct {
    oir_backend head;
    float *scratch;
    size_t scratch_cap; /* floats */
} cpu_backend;

static float *F(be_view v) { return (float *)(((cpu_buffer *)v.buf)->host + v.off); }
static float *F0(be_view v) { return v.buf ? F(v) : NULL; }

static float *scratch(cpu_backend *cb, size_t floats) {
    if (floats <= cb->scratch_cap) return cb->scratch;
    float *p = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        be_fail(&cb->head, OIR_E_NOMEM, "cpu backend: no memory for %zu bytes of scratch", floats * sizeof(float));
        return NULL;
    }
    free(cb->scratch);
    cb->scratch = p;
    cb->scratch_cap = floats;
    return p;
}

static void cpu_destroy(oir_backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    free(cb->scratch);
    free(cb);
}

static int cpu_alloc_common(oir_backend *be, void *host, size_t bytes, int owned, be_buffer **out, oir_error *err) {
    cpu_buffer *b = calloc(1, sizeof *b);
    if (!b) return oir_fail(err, OIR_E_NOMEM, "cpu backend: out of memory");
    b->head.size = bytes;
    b->head.owner = be;
    b->host = host;
    b->owned = owned;
    *out = &b->head;
    return OIR_OK;
}

static int cpu_buffer_alloc(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) return oir_fail(err, OIR_E_NOMEM, "cpu backend: no memory for a buffer of %zu bytes", bytes);
    int rc = cpu_alloc_common(be, p, bytes, 1, out, err);
    if (rc) free(p);
    return rc;
}

static int cpu_buffer_wrap(oir_backend *be, void *host, size_t bytes, be_buffer **out, oir_error *err) {
    return cpu_alloc_common(be, host, bytes, 0, out, err);
}

static void cpu_buffer_free(oir_backend *be, be_buffer *b) {
    cpu_buffer *cb = (cpu_buffer *)b;
    if (cb->owned) free(cb->host);
    free(cb);
}

static void *cpu_buffer_host(oir_backend *be, be_buffer *b) { return ((cpu_buffer *)b)->host; }

static int cpu_upload(oir_backend *be, be_view dst, const void *src, size_t bytes) {
    void *d = ((cpu_buffer *)dst.buf)->host + dst.off;
    if (d != src) memmove(d, src, bytes);
    return OIR_OK;
}

static int cpu_download(oir_backend *be, void *dst, be_view src, size_t bytes) {
    const void *s = ((cpu_buffer *)src.buf)->host + src.off;
    if (s != dst) memmove(dst, s, bytes);
    return OIR_OK;
}

static int cpu_sync(oir_backend *be) { return OIR_OK; }

static int cpu_copy(oir_backend *be, be_view dst, be_view src, size_t bytes) {
    memcpy(F(dst), F(src), bytes);
    return OIR_OK;
}

static int cpu_matmul(oir_backend *be, be_view out, be_view a, be_view b, int M, int N, int K, int b_trans,
                      float alpha, float beta, int batch, size_t sa, size_t sb, size_t so) {
    for (int i = 0; i < batch; i++)
        op_matmul(F(out) + i * so, F(a) + i * sa, F(b) + i * sb, M, N, K, b_trans, alpha, beta);
    return OIR_OK;
}

static int cpu_linear(oir_backend *be, be_view out, be_view in, be_view w, be_view bias, int rows, int in_f,
                      int out_f) {
    op_linear(F(out), F(in), F(w), F0(bias), rows, in_f, out_f);
    return OIR_OK;
}

static int cpu_conv2d(oir_backend *be, be_view out, be_view in, be_view w, be_view bias, int N, int C_in, int H,
                      int W, int C_out, int k, int stride, int pad) {
    size_t n = op_conv2d_scratch(C_in, H, W, k, stride, pad);
    float *s = scratch((cpu_backend *)be, n);
    if (n && !s) return be->status;
    op_conv2d(F(out), F(in), F(w), F0(bias), N, C_in, H, W, C_out, k, stride, pad, s);
    return OIR_OK;
}

static int cpu_group_norm(oir_backend *be, be_view out, be_view in, be_view g, be_view b, int N, int C, int HW,
                          int groups, float eps, int fuse_silu) {
    op_group_norm(F(out), F(in), F0(g), F0(b), N, C, HW, groups, eps, fuse_silu);
    return OIR_OK;
}

static int cpu_layer_norm(oir_backend *be, be_view out, be_view in, be_view g, be_view b, int rows, int C,
                          float eps, int fuse_silu) {
    op_layer_norm(F(out), F(in), F0(g), F0(b), rows, C, eps);
    if (fuse_silu) op_silu(F(out), F(out), (size_t)rows * C);
    return OIR_OK;
}

static int cpu_act(oir_backend *be, be_act_kind kind, be_view out, be_view in, size_t n) {
    switch (kind) {
    case BE_ACT_SILU: op_silu(F(out), F(in), n); break;
    case BE_ACT_GELU: op_gelu(F(out), F(in), n); break;
    case BE_ACT_GELU_TANH: op_gelu_tanh(F(out), F(in), n); break;
    default: op_quick_gelu(F(out), F(in), n); break;
    }
    return OIR_OK;
}

static int cpu_geglu(oir_backend *be, be_view out, be_view in, int rows, int C) {
    op_geglu(F(out), F(in), rows, C);
    return OIR_OK;
}

static int cpu_softmax(oir_backend *be, be_view out, be_view in, int rows, int cols) {
    op_softmax(F(out), F(in), rows, cols);
    return OIR_OK;
}

static int cpu_attention(oir_backend *be, be_view out, be_view q, be_view k, be_view v, int B, int Tq, int Tk,
                         int heads, int d, float scale, be_view key_mask, int causal) {
    size_t n = op_attention_scratch(Tq, Tk, heads, d);
    float *s = scratch((cpu_backend *)be, n);
    if (n && !s) return be->status;
    const uint8_t *mask = key_mask.buf ? ((cpu_buffer *)key_mask.buf)->host + key_mask.off : NULL;
    op_attention(F(out), F(q), F(k), F(v), B, Tq, Tk, heads, d, scale, mask, causal, s);
    return OIR_OK;
}

static int cpu_add(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    op_add(F(out), F(a), F(b), n);
    return OIR_OK;
}

static int cpu_mul(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    op_mul(F(out), F(a), F(b), n);
    return OIR_OK;
}

static int cpu_scale(oir_backend *be, be_view out, be_view a, float s, size_t n) {
    op_scale(F(out), F(a), s, n);
    return OIR_OK;
}

static int cpu_add_channel_bias(oir_backend *be, be_view x, be_view bias, int N, int C, int HW) {
    op_add_channel_bias(F(x), F(bias), N, C, HW);
    return OIR_OK;
}

static int cpu_concat_channels(oir_backend *be, be_view out, be_view a, be_view b, int N, int Ca, int Cb,
                               int HW) {
    op_concat_channels(F(out), F(a), F(b), N, Ca, Cb, HW);
    return OIR_OK;
}

static int cpu_upsample(oir_backend *be, be_view out, be_view in, int N, int C, int H, int W) {
    op_upsample_nearest2x(F(out), F(in), N, C, H, W);
    return OIR_OK;
}

static int cpu_nchw_to_nhwc(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    op_nchw_to_nhwc(F(out), F(in), N, C, HW);
    return OIR_OK;
}

static int cpu_nhwc_to_nchw(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    op_nhwc_to_nchw(F(out), F(in), N, C, HW);
    return OIR_OK;
}

static int cpu_timestep_embedding(oir_backend *be, be_view out, const float *t, int N, int dim, int flip,
                                  float shift, float max_period) {
    op_timestep_embedding(F(out), t, N, dim, flip, shift, max_period);
    return OIR_OK;
}

static int cpu_ddim_step(oir_backend *be, be_view out, be_view eps, be_view sample, int B, size_t n,
                         const float *a, const float *a2, int clip, float clip_range, be_view x0) {
    op_ddim_transfer(F(out), F(eps), F(sample), B, n, a, a2, clip, clip_range, F0(x0));
    return OIR_OK;
}

static int cpu_guidance(oir_backend *be, be_view out, be_view u, be_view c, float g, size_t n) {
    op_guidance(F(out), F(u), F(c), g, n);
    return OIR_OK;
}

static int cpu_count_nonfinite(oir_backend *be, be_view x, size_t n, size_t *count) {
    *count = op_count_nonfinite(F(x), n);
    return OIR_OK;
}

static const be_ops cpu_ops = {
    .kind = "cpu",
    .destroy = cpu_destroy,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_wrap = cpu_buffer_wrap,
    .buffer_free = cpu_buffer_free,
    .buffer_host = cpu_buffer_host,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .copy = cpu_copy,
    .matmul = cpu_matmul,
    .linear = cpu_linear,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .act = cpu_act,
    .geglu = cpu_geglu,
    .softmax = cpu_softmax,
    .attention = cpu_attention,
    .add = cpu_add,
    .mul = cpu_mul,
    .scale = cpu_scale,
    .add_channel_bias = cpu_add_channel_bias,
    .concat_channels = cpu_concat_channels,
    .upsample_nearest2x = cpu_upsample,
    .nchw_to_nhwc = cpu_nchw_to_nhwc,
    .nhwc_to_nchw = cpu_nhwc_to_nchw,
    .timestep_embedding = cpu_timestep_embedding,
    .ddim_step = cpu_ddim_step,
    .guidance = cpu_guidance,
    .count_nonfinite = cpu_count_nonfinite,
};

oir_backend *be_cpu_create(void) {
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return NULL;
    cb->head.ops = &cpu_ops;
    strcpy(cb->head.name, "cpu");
    return &cb->head;
}
