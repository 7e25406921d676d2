/* The Vulkan backend's table: transfers and the ops, each recorded as one
 * or a few dispatches of the shaders in src/vulkan/shaders/ (fp32). The
 * be_* wrappers have checked every argument; here the views become bindings
 * (vk_bind_view refuses a window over maxStorageBufferRange; elementwise
 * ops split into windows instead). */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "vulkan/vk_internal.h"

#define VB(be) ((vk_backend *)(be))

static uint32_t u32(size_t x) { return (uint32_t)x; }

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Workgroups of a 1-D grid-stride shader over n items (at most 65535). */
static uint32_t groups_1d(size_t n) {
    size_t g = (n + VK_WG - 1) / VK_WG;
    return (uint32_t)(g < 1 ? 1 : g > 65535 ? 65535 : g);
}

/* ---- transfers ---------------------------------------------------------- */

static int vk_upload(oir_backend *be, be_view dst, const void *src, size_t bytes) {
    vk_backend *vb = VB(be);
    VkBuffer buf;
    VkDeviceSize off;
    vk_view_abs(vb, dst, &buf, &off);
    const unsigned char *s = src;
    while (bytes) {
        size_t chunk = bytes < vb->staging_size ? bytes : (size_t)vb->staging_size;
        void *host;
        vk_bind st;
        int rc = vk_staging_take(vb, chunk, &host, &st);
        if (rc) return rc;
        memcpy(host, s, chunk);
        if ((rc = vk_copy_raw(vb, st.buf, st.off, buf, off, chunk))) return rc;
        s += chunk, off += chunk, bytes -= chunk;
    }
    return OIR_OK;
}

static int vk_download(oir_backend *be, void *dst, be_view src, size_t bytes) {
    vk_backend *vb = VB(be);
    VkBuffer buf;
    VkDeviceSize off;
    vk_view_abs(vb, src, &buf, &off);
    unsigned char *d = dst;
    while (bytes) {
        size_t chunk = bytes < vb->staging_size ? bytes : (size_t)vb->staging_size;
        void *host;
        vk_bind st;
        int rc = vk_staging_take(vb, chunk, &host, &st);
        if (!rc) rc = vk_copy_raw(vb, buf, off, st.buf, st.off, chunk);
        if (!rc) rc = vk_flush(vb);
        if (rc) return rc;
        memcpy(d, host, chunk);
        d += chunk, off += chunk, bytes -= chunk;
    }
    return OIR_OK;
}

static int vk_sync(oir_backend *be) { return vk_flush(VB(be)); }

static int vk_copy(oir_backend *be, be_view dst, be_view src, size_t bytes) {
    vk_backend *vb = VB(be);
    VkBuffer sb, db;
    VkDeviceSize so, dof;
    vk_view_abs(vb, src, &sb, &so);
    vk_view_abs(vb, dst, &db, &dof);
    return vk_copy_raw(vb, sb, so, db, dof, bytes);
}

/* ---- GEMM and convolution ----------------------------------------------- */

typedef struct {
    uint32_t M, N, K, sa, sb, so, alpha, beta, flags, cin, H, W, ks, stride, pad, Wo;
} gemm_params;

#define GEMM_BIAS_COL 1u
#define GEMM_BIAS_ROW 2u
#define GEMM_BETA 4u

/* The GEMM shader for a plain shader (VK_SH_GEMM_NN / _NT / _CONV) and
 * operands a, b: its fp16 variant when a or b is an fp16 weight buffer
 * (be_weights_from_host); -1 for a pair no variant reads (fp16 images of
 * the implicit-GEMM convolution). */
static int gemm_shader(int plain, const be_view *a, const be_view *b) {
    int a16 = a->buf && a->buf->f16, b16 = b->buf && b->buf->f16;
    if (!a16 && !b16) return plain;
    int k = a16 && b16 ? 2 : b16 ? 1 : 0; /* a16, b16, ab16 */
    switch (plain) {
    case VK_SH_GEMM_NN: return VK_SH_GEMM_NN_A16 + k;
    case VK_SH_GEMM_NT: return VK_SH_GEMM_NT_A16 + k;
    case VK_SH_GEMM_CONV: return k == 0 ? VK_SH_GEMM_CONV_A16 : -1;
    default: return -1;
    }
}

/* The cooperative-matrix variant of a GEMM shader (vk_shaders.h's order). */
static int coopmat_shader(int shader) {
    switch (shader) {
    case VK_SH_GEMM_NN: return VK_SH_GEMM_NN_CM;
    case VK_SH_GEMM_NT: return VK_SH_GEMM_NT_CM;
    case VK_SH_GEMM_CONV: return VK_SH_GEMM_CONV_CM;
    default: return VK_SH_GEMM_NN_A16_CM + (shader - VK_SH_GEMM_NN_A16); /* the fp16 ones, in order */
    }
}

/* names: the operands a and b as the op calls them; a and b in bytes as
 * float32 (halved for an fp16 operand). */
static int gemm_run(vk_backend *vb, const char *op, const char *const names[2], int shader, be_view out,
                    size_t out_bytes, be_view a, size_t a_bytes, be_view b, size_t b_bytes, be_view bias,
                    size_t bias_bytes, gemm_params *p, uint32_t batch) {
    vk_bind bd[4];
    int rc, a16 = a.buf->f16, b16 = b.buf->f16;
    if ((shader = gemm_shader(shader, &a, &b)) < 0)
        return be_fail(&vb->head, OIR_E_ARG, "%s: operand %s is fp16 weights, which this op reads as fp32 only",
                       op, names[1]);
    if ((rc = vk_bind_view(vb, op, "out", out, out_bytes, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, op, names[0], a, a16 ? a_bytes / 2 : a_bytes, a16 ? 2 : 4, &bd[1])) ||
        (rc = vk_bind_view(vb, op, names[1], b, b16 ? b_bytes / 2 : b_bytes, b16 ? 2 : 4, &bd[2])))
        return rc;
    if (bias.buf) {
        if ((rc = vk_bind_view(vb, op, "bias", bias, bias_bytes, 4, &bd[3]))) return rc;
    } else {
        bd[3] = bd[1]; /* unread */
    }
    uint32_t gx = (p->N + 63) / 64, gy = (p->M + 63) / 64;
    if (vb->gemm_path == VK_GEMM_COOPMAT) {
        const vk_coopmat_shape *cs = &vb->coopmat_shape;
        int spec[3] = {(int)cs->m, (int)cs->n, (int)cs->k};
        return vk_dispatch(vb, coopmat_shader(shader), spec, 3, bd, 4, p, sizeof *p, gx, gy, batch);
    }
    return vk_dispatch(vb, shader, NULL, 0, bd, 4, p, sizeof *p, gx, gy, batch);
}

static int vk_matmul(oir_backend *be, be_view out, be_view a, be_view b, int M, int N, int K, int b_trans,
                     float alpha, float beta, int batch, size_t sa, size_t sb, size_t so) {
    gemm_params p = {u32(M), u32(N), u32(K), u32(sa), u32(sb), u32(so), fbits(alpha), fbits(beta),
                     beta != 0.0f ? GEMM_BETA : 0u, 0, 0, 0, 0, 0, 0, 0};
    size_t nb = batch - 1;
    static const char *const names[2] = {"a", "b"};
    return gemm_run(VB(be), "matmul", names, b_trans ? VK_SH_GEMM_NT : VK_SH_GEMM_NN, out,
                    (nb * so + (size_t)M * N) * 4, a, (nb * sa + (size_t)M * K) * 4, b,
                    (nb * sb + (size_t)K * N) * 4, BE_NONE, 0, &p, u32(batch));
}

static int vk_linear(oir_backend *be, be_view out, be_view in, be_view w, be_view bias, int rows, int in_f,
                     int out_f) {
    gemm_params p = {u32(rows), u32(out_f), u32(in_f), 0, 0, 0, fbits(1.0f), 0, bias.buf ? GEMM_BIAS_COL : 0u,
                     0, 0, 0, 0, 0, 0, 0};
    static const char *const names[2] = {"in", "weight"};
    return gemm_run(VB(be), "linear", names, VK_SH_GEMM_NT, out, (size_t)rows * out_f * 4, in, (size_t)rows * in_f * 4, w,
                    (size_t)out_f * in_f * 4, bias, (size_t)out_f * 4, &p, 1);
}

static int vk_conv2d(oir_backend *be, be_view out, be_view in, be_view w, be_view bias, int N, int C_in, int H,
                     int W, int C_out, int k, int stride, int pad) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    size_t HWo = (size_t)Ho * Wo, HW = (size_t)H * W, K = (size_t)C_in * k * k;
    int direct = k == 1 && stride == 1 && pad == 0;
    /* out_n (C_out, HWo) = weight (C_out, K) @ B_n (K, HWo) [+ bias per row],
     * B_n the image itself (1x1) or gathered from it (implicit GEMM) */
    gemm_params p = {u32(C_out), u32(HWo), u32(K), 0, u32((size_t)C_in * HW), u32((size_t)C_out * HWo),
                     fbits(1.0f), 0, bias.buf ? GEMM_BIAS_ROW : 0u, u32(C_in), u32(H), u32(W), u32(k),
                     u32(stride), u32(pad), u32(Wo)};
    static const char *const names[2] = {"weight", "in"};
    return gemm_run(VB(be), "conv2d", names, direct ? VK_SH_GEMM_NN : VK_SH_GEMM_CONV, out,
                    (size_t)N * C_out * HWo * 4, w, (size_t)C_out * K * 4, in, (size_t)N * C_in * HW * 4, bias,
                    (size_t)C_out * 4, &p, u32(N));
}

/* An optional operand's binding: the view when given, else a copy of
 * stand_in (the shader ignores it; a descriptor must still be bound). */
static int bind_optional(vk_backend *vb, const char *op, const char *name, be_view v, size_t bytes,
                         const vk_bind *stand_in, vk_bind *dst) {
    if (!v.buf) {
        *dst = *stand_in;
        return OIR_OK;
    }
    return vk_bind_view(vb, op, name, v, bytes, 4, dst);
}

/* ---- norms, softmax ----------------------------------------------------- */

static int norm_run(vk_backend *vb, const char *op, be_view out, be_view in, be_view g, be_view b,
                    size_t slices, size_t elems, uint32_t C, uint32_t HW, uint32_t groups, float eps,
                    uint32_t flags) {
    vk_bind bd[4];
    int rc;
    if ((rc = vk_bind_view(vb, op, "out", out, elems * 4, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, op, "in", in, elems * 4, 4, &bd[1])))
        return rc;
    if ((rc = bind_optional(vb, op, "gamma", g, (size_t)C * 4, &bd[1], &bd[2])) ||
        (rc = bind_optional(vb, op, "beta", b, (size_t)C * 4, &bd[1], &bd[3])))
        return rc;
    flags |= (g.buf ? 1u : 0u) | (b.buf ? 2u : 0u);
    uint32_t params[6] = {u32(slices), C, HW, groups, fbits(eps), flags};
    uint32_t gx, gy;
    vk_groups_2d(vb, slices, &gx, &gy);
    return vk_dispatch(vb, VK_SH_NORM, NULL, 0, bd, 4, params, sizeof params, gx, gy, 1);
}

static int vk_group_norm(oir_backend *be, be_view out, be_view in, be_view g, be_view b, int N, int C, int HW,
                         int groups, float eps, int fuse_silu) {
    return norm_run(VB(be), "group_norm", out, in, g, b, (size_t)N * groups, (size_t)N * C * HW, u32(C), u32(HW),
                    u32(groups), eps, fuse_silu ? 4u : 0u);
}

static int vk_layer_norm(oir_backend *be, be_view out, be_view in, be_view g, be_view b, int rows, int C,
                         float eps, int fuse_silu) {
    return norm_run(VB(be), "layer_norm", out, in, g, b, (size_t)rows, (size_t)rows * C, u32(C), 1, 1, eps,
                    8u | (fuse_silu ? 4u : 0u));
}

static int vk_softmax(oir_backend *be, be_view out, be_view in, int rows, int cols) {
    vk_backend *vb = VB(be);
    vk_bind bd[2];
    size_t bytes = (size_t)rows * cols * 4;
    int rc;
    if ((rc = vk_bind_view(vb, "softmax", "out", out, bytes, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, "softmax", "in", in, bytes, 4, &bd[1])))
        return rc;
    uint32_t params[2] = {u32(rows), u32(cols)}, gx, gy;
    vk_groups_2d(vb, (uint64_t)rows, &gx, &gy);
    return vk_dispatch(vb, VK_SH_SOFTMAX, NULL, 0, bd, 2, params, sizeof params, gx, gy, 1);
}

/* ---- elementwise -------------------------------------------------------- */

enum { EW_ADD = 0, EW_MUL, EW_SCALE, EW_SILU, EW_GELU, EW_GELU_TANH, EW_QUICK_GELU, EW_GUIDANCE, EW_GEGLU };

/* One dispatch of eltwise.comp over n outputs. */
static int ew_dispatch(vk_backend *vb, const char *op, int code, be_view out, size_t out_n, be_view a, size_t a_n,
                       be_view b, size_t C, float s) {
    vk_bind bd[3];
    int rc;
    if ((rc = vk_bind_view(vb, op, "out", out, out_n * 4, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, op, "a", a, a_n * 4, 4, &bd[1])))
        return rc;
    if ((rc = bind_optional(vb, op, "b", b, out_n * 4, &bd[1], &bd[2]))) return rc;
    uint32_t params[4] = {u32(out_n), (uint32_t)code, u32(C), fbits(s)};
    return vk_dispatch(vb, VK_SH_ELTWISE, NULL, 0, bd, 3, params, sizeof params, groups_1d(out_n), 1, 1);
}

/* An elementwise op over n floats, in windows that each bind within
 * maxStorageBufferRange. */
static int ew_run(vk_backend *vb, const char *op, int code, be_view out, be_view a, be_view b, size_t n, float s) {
    size_t win = (size_t)((vb->max_range - vb->off_align) / 4) / VK_WG * VK_WG;
    for (size_t i = 0; i < n; i += win) {
        size_t m = n - i < win ? n - i : win;
        be_view bi = b.buf ? be_view_f(b, i) : BE_NONE;
        int rc = ew_dispatch(vb, op, code, be_view_f(out, i), m, be_view_f(a, i), m, bi, 0, s);
        if (rc) return rc;
    }
    return OIR_OK;
}

static int vk_act(oir_backend *be, be_act_kind kind, be_view out, be_view in, size_t n) {
    static const int code[BE_ACT_COUNT] = {EW_SILU, EW_GELU, EW_GELU_TANH, EW_QUICK_GELU};
    return ew_run(VB(be), "act", code[kind], out, in, BE_NONE, n, 0.0f);
}

static int vk_geglu(oir_backend *be, be_view out, be_view in, int rows, int C) {
    return ew_dispatch(VB(be), "geglu", EW_GEGLU, out, (size_t)rows * C, in, (size_t)rows * C * 2, BE_NONE,
                       (size_t)C, 0.0f);
}

static int vk_add(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    return ew_run(VB(be), "add", EW_ADD, out, a, b, n, 0.0f);
}

static int vk_mul(oir_backend *be, be_view out, be_view a, be_view b, size_t n) {
    return ew_run(VB(be), "mul", EW_MUL, out, a, b, n, 0.0f);
}

static int vk_scale(oir_backend *be, be_view out, be_view a, float s, size_t n) {
    return ew_run(VB(be), "scale", EW_SCALE, out, a, BE_NONE, n, s);
}

static int vk_guidance(oir_backend *be, be_view out, be_view u, be_view c, float g, size_t n) {
    return ew_run(VB(be), "guidance", EW_GUIDANCE, out, u, c, n, g);
}

/* ---- data movement ------------------------------------------------------ */

enum { SH_UPSAMPLE = 0, SH_CONCAT, SH_CHANNEL_BIAS, SH_TRANSPOSE };

static int shape_run(vk_backend *vb, const char *op, int code, be_view out, size_t out_n, be_view a, size_t a_n,
                     be_view b, size_t b_n, uint32_t d0, uint32_t d1) {
    vk_bind bd[3];
    int rc;
    if ((rc = vk_bind_view(vb, op, "out", out, out_n * 4, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, op, "a", a, a_n * 4, 4, &bd[1])))
        return rc;
    if ((rc = bind_optional(vb, op, "b", b, b_n * 4, &bd[1], &bd[2]))) return rc;
    uint32_t params[4] = {u32(out_n), (uint32_t)code, d0, d1};
    return vk_dispatch(vb, VK_SH_SHAPE, NULL, 0, bd, 3, params, sizeof params, groups_1d(out_n), 1, 1);
}

static int vk_add_channel_bias(oir_backend *be, be_view x, be_view bias, int N, int C, int HW) {
    return shape_run(VB(be), "add_channel_bias", SH_CHANNEL_BIAS, x, (size_t)N * C * HW, bias, (size_t)N * C,
                     BE_NONE, 0, u32(HW), 0);
}

static int vk_concat_channels(oir_backend *be, be_view out, be_view a, be_view b, int N, int Ca, int Cb, int HW) {
    size_t sa = (size_t)Ca * HW, sb = (size_t)Cb * HW;
    return shape_run(VB(be), "concat_channels", SH_CONCAT, out, (size_t)N * (sa + sb), a, (size_t)N * sa, b,
                     (size_t)N * sb, u32(sa), u32(sb));
}

static int vk_upsample(oir_backend *be, be_view out, be_view in, int N, int C, int H, int W) {
    size_t n = (size_t)N * C * H * W;
    return shape_run(VB(be), "upsample_nearest2x", SH_UPSAMPLE, out, 4 * n, in, n, BE_NONE, 0, u32(H), u32(W));
}

static int vk_nchw_to_nhwc(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    size_t n = (size_t)N * C * HW;
    return shape_run(VB(be), "nchw_to_nhwc", SH_TRANSPOSE, out, n, in, n, BE_NONE, 0, u32(C), u32(HW));
}

static int vk_nhwc_to_nchw(oir_backend *be, be_view out, be_view in, int N, int C, int HW) {
    size_t n = (size_t)N * C * HW;
    return shape_run(VB(be), "nhwc_to_nchw", SH_TRANSPOSE, out, n, in, n, BE_NONE, 0, u32(HW), u32(C));
}

/* ---- attention ---------------------------------------------------------- */

#define ATT_MAX_D 256
#define ATT_MAX_SHARED 16384 /* bytes of K and V tiles (keeps several workgroups per core) */

static int vk_attention(oir_backend *be, be_view out, be_view q, be_view k, be_view v, int B, int Tq, int Tk,
                        int heads, int d, float scale, be_view key_mask, int causal) {
    vk_backend *vb = VB(be);
    const char *op = "attention";
    if (d > ATT_MAX_D)
        return be_fail(be, OIR_E_UNSUPPORTED, "%s: attention: head dim %d > %d is not supported", be->name, d,
                       ATT_MAX_D);
    size_t shared = vb->limits.maxComputeSharedMemorySize < ATT_MAX_SHARED ? vb->limits.maxComputeSharedMemorySize
                                                                           : ATT_MAX_SHARED;
    int bkeys = (int)(shared / (2 * 4 * (size_t)d));
    if (bkeys > 32) bkeys = 32;
    if (bkeys < 1)
        return be_fail(be, OIR_E_UNSUPPORTED, "%s: attention: head dim %d needs more shared memory than %zu bytes",
                       be->name, d, shared);
    size_t nq = (size_t)B * Tq * heads * d * 4, nk = (size_t)B * Tk * heads * d * 4;
    vk_bind bd[5];
    int rc;
    if ((rc = vk_bind_view(vb, op, "out", out, nq, 4, &bd[0])) || (rc = vk_bind_view(vb, op, "q", q, nq, 4, &bd[1])) ||
        (rc = vk_bind_view(vb, op, "k", k, nk, 4, &bd[2])) || (rc = vk_bind_view(vb, op, "v", v, nk, 4, &bd[3])))
        return rc;
    uint32_t flags = causal ? 2u : 0u;
    if (key_mask.buf) {
        flags |= 1u;
        if ((rc = vk_bind_view(vb, op, "key_mask", key_mask, (size_t)B * Tk, 1, &bd[4]))) return rc;
    } else {
        bd[4] = bd[1];
    }
    uint32_t params[5] = {u32(Tq), u32(Tk), u32(heads), fbits(scale), flags};
    int spec[2] = {d, bkeys};
    return vk_dispatch(vb, VK_SH_ATTENTION, spec, 2, bd, 5, params, sizeof params, u32((Tq + 63) / 64), u32(heads),
                       u32(B));
}

/* ---- diffusion ---------------------------------------------------------- */

static int vk_timestep_embedding(oir_backend *be, be_view out, const float *t, int N, int dim, int flip,
                                 float shift, float max_period) {
    /* Computed on the host (op_timestep_embedding, bit for bit the CPU's)
     * into the staging buffer and copied: sin/cos of t * freq need float32
     * argument reduction up to t = 999 rad, which GPU sin/cos do not
     * promise, and it is N x dim floats once per UNet call. */
    vk_backend *vb = VB(be);
    size_t bytes = (size_t)N * dim * 4;
    void *host;
    vk_bind st;
    int rc = vk_staging_take(vb, bytes, &host, &st);
    if (rc) return rc;
    op_timestep_embedding(host, t, N, dim, flip, shift, max_period);
    VkBuffer buf;
    VkDeviceSize off;
    vk_view_abs(vb, out, &buf, &off);
    return vk_copy_raw(vb, st.buf, st.off, buf, off, bytes);
}

static int vk_ddim_step(oir_backend *be, be_view out, be_view eps, be_view sample, int B, size_t n,
                        const float *a, const float *a2, int clip, float clip_range, be_view x0) {
    vk_backend *vb = VB(be);
    const char *op = "ddim_step";
    size_t total = (size_t)B * n, bytes = total * 4;
    vk_bind bd[5];
    float *cf;
    int rc = vk_staging_take(vb, (size_t)B * 4 * sizeof(float), (void **)&cf, &bd[3]);
    if (rc) return rc;
    /* the coefficients as ddim.c computes them */
    for (int b = 0; b < B; b++) {
        cf[4 * b] = sqrtf(1.0f - a[b]);
        cf[4 * b + 1] = sqrtf(a[b]);
        cf[4 * b + 2] = sqrtf(a2[b]);
        cf[4 * b + 3] = sqrtf(1.0f - a2[b]);
    }
    if ((rc = vk_bind_view(vb, op, "out", out, bytes, 4, &bd[0])) ||
        (rc = vk_bind_view(vb, op, "eps", eps, bytes, 4, &bd[1])) ||
        (rc = vk_bind_view(vb, op, "sample", sample, bytes, 4, &bd[2])))
        return rc;
    if (x0.buf) {
        if ((rc = vk_bind_view(vb, op, "pred_x0", x0, bytes, 4, &bd[4]))) return rc;
    } else {
        bd[4] = bd[0];
    }
    uint32_t params[4] = {u32(n), u32(total), (clip ? 1u : 0u) | (x0.buf ? 2u : 0u), fbits(clip_range)};
    return vk_dispatch(vb, VK_SH_DDIM, NULL, 0, bd, 5, params, sizeof params, groups_1d(total), 1, 1);
}

static int vk_count_nonfinite(oir_backend *be, be_view x, size_t n, size_t *count) {
    vk_backend *vb = VB(be);
    size_t win = (size_t)((vb->max_range - vb->off_align) / 4) / VK_WG * VK_WG;
    *count = 0;
    for (size_t i = 0; i < n; i += win) {
        size_t m = n - i < win ? n - i : win;
        uint32_t *host;
        vk_bind bd[2];
        int rc = vk_staging_take(vb, 4, (void **)&host, &bd[0]);
        if (!rc) rc = vk_bind_view(vb, "count_nonfinite", "x", be_view_f(x, i), m * 4, 4, &bd[1]);
        if (rc) return rc;
        *host = 0;
        uint32_t params[1] = {u32(m)};
        if ((rc = vk_dispatch(vb, VK_SH_NONFINITE, NULL, 0, bd, 2, params, sizeof params, groups_1d(m), 1, 1)) ||
            (rc = vk_flush(vb)))
            return rc;
        *count += *host;
    }
    return OIR_OK;
}

const be_ops vk_ops = {
    .kind = "vulkan",
    .destroy = vk_destroy,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_wrap = NULL,
    .buffer_free = vk_buffer_free,
    .buffer_host = vk_buffer_host,
    .upload = vk_upload,
    .download = vk_download,
    .sync = vk_sync,
    .copy = vk_copy,
    .matmul = vk_matmul,
    .linear = vk_linear,
    .conv2d = vk_conv2d,
    .group_norm = vk_group_norm,
    .layer_norm = vk_layer_norm,
    .act = vk_act,
    .geglu = vk_geglu,
    .softmax = vk_softmax,
    .attention = vk_attention,
    .add = vk_add,
    .mul = vk_mul,
    .scale = vk_scale,
    .add_channel_bias = vk_add_channel_bias,
    .concat_channels = vk_concat_channels,
    .upsample_nearest2x = vk_upsample,
    .nchw_to_nhwc = vk_nchw_to_nhwc,
    .nhwc_to_nchw = vk_nhwc_to_nchw,
    .timestep_embedding = vk_timestep_embedding,
    .ddim_step = vk_ddim_step,
    .guidance = vk_guidance,
    .count_nonfinite = vk_count_nonfinite,
};
