/* The SD blocks on the backend table; see sd_blocks.h ("the blocks on the
 * backend table"). Op for op the host forwards of sd_blocks.c, so the CPU
 * backend (which runs the same op_* kernels) gives the same bits. */
#include <stdlib.h>
#include <string.h>

#include "models/sd_blocks.h"

#define DEV_ALIGN 64
#define POOL_ALIGN 256 /* weight tensors in the one buffer of a non-host backend */

int sd_dalloc(sd_dev_arena *a, size_t n, be_view *out) {
    size_t start = (a->used + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN, bytes = n * sizeof(float);
    if (start > a->cap || bytes > a->cap - start) return 0;
    a->used = start + bytes;
    *out = be_view_b(a->base, start);
    return 1;
}

/* ---- weights ------------------------------------------------------------ */

/* Room for one more buffer in b->bufs; else the status. */
static int binder_room(sd_binder *b) {
    if (b->n < b->cap) return OIR_OK;
    int cap = b->cap ? 2 * b->cap : 256;
    be_buffer **nb = realloc(b->bufs, (size_t)cap * sizeof *nb);
    if (!nb) return b->status = oir_fail(&b->err, OIR_E_NOMEM, "binding weights: out of memory");
    b->bufs = nb, b->cap = cap;
    return OIR_OK;
}

void sd_bind_tensor(sd_binder *b, const float *p, size_t n, be_view *out) {
    *out = BE_NONE;
    if (!p || !n || b->status) return;
    size_t bytes = n * sizeof(float);
    if (b->counting) {
        b->total += (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
        return;
    }
    if (!b->wrap) {
        *out = be_view_b(be_view_of(b->pool), b->off);
        b->off += (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
        if (be_upload(b->be, *out, p, bytes))
            b->status = oir_fail(&b->err, b->be->status, "%s: uploading weights: %s", b->be->name,
                                 b->be->error.message);
        return;
    }
    be_buffer *buf;
    if (binder_room(b) || (b->status = be_buffer_from_host(b->be, p, bytes, &buf, &b->err))) return;
    b->bufs[b->n++] = buf;
    *out = be_view_of(buf);
}

/* A linear / convolution weight: on a backend with fp16 weights, fp16 in a
 * buffer of its own (be_weights_from_host; outside the pool, so the
 * counting pass skips it); elsewhere as any tensor. */
static void bind_weight(sd_binder *b, const float *p, size_t n, be_view *out) {
    if (!b->be->fp16_weights) {
        sd_bind_tensor(b, p, n, out);
        return;
    }
    *out = BE_NONE;
    if (!p || !n || b->status || b->counting) return;
    be_buffer *buf;
    if (binder_room(b) || (b->status = be_weights_from_host(b->be, p, n, &buf, &b->err))) return;
    b->bufs[b->n++] = buf;
    *out = be_view_of(buf);
}

void sd_bind_conv(sd_binder *b, sd_conv *c) {
    if (!c->w) return;
    bind_weight(b, c->w, (size_t)c->c_out * c->c_in * c->k * c->k, &c->bw);
    sd_bind_tensor(b, c->b, (size_t)c->c_out, &c->bb);
}

void sd_bind_linear(sd_binder *b, sd_linear *l) {
    if (!l->w) return;
    bind_weight(b, l->w, (size_t)l->out * l->in, &l->bw);
    sd_bind_tensor(b, l->b, (size_t)l->out, &l->bb);
}

void sd_bind_norm(sd_binder *b, sd_norm *n) {
    sd_bind_tensor(b, n->w, (size_t)n->c, &n->bw);
    sd_bind_tensor(b, n->b, (size_t)n->c, &n->bb);
}

void sd_bind_resnet(sd_binder *b, sd_resnet *r) {
    sd_bind_norm(b, &r->norm1);
    sd_bind_conv(b, &r->conv1);
    sd_bind_linear(b, &r->time_emb_proj);
    sd_bind_norm(b, &r->norm2);
    sd_bind_conv(b, &r->conv2);
    sd_bind_conv(b, &r->conv_shortcut);
}

void sd_binder_free(sd_binder *b) {
    for (int i = 0; i < b->n; i++) be_buffer_free(b->be, b->bufs[i]);
    free(b->bufs);
    if (b->pool) be_buffer_free(b->be, b->pool);
    b->bufs = NULL, b->pool = NULL, b->n = b->cap = 0;
}

/* ---- blocks ------------------------------------------------------------- */

int sd_conv_forward_be(oir_backend *be, const sd_conv *c, be_view out, be_view in, int B, int H, int W,
                       int stride, int pad) {
    return be_conv2d(be, out, in, c->bw, c->bb, B, c->c_in, H, W, c->c_out, c->k, stride, pad);
}

void sd_tokens_proj_add_nchw_be(oir_backend *be, be_view x, be_view t, const sd_linear *l, int B, int HW) {
    int C = l->out, K = l->in;
    if (l->bb.buf)
        for (int b = 0; b < B; b++) be_add_channel_bias(be, be_view_f(x, (size_t)b * C * HW), l->bb, 1, C, HW);
    /* x_b (C, HW) += W (C, K) @ t_b^T (K, HW) */
    be_matmul(be, x, l->bw, t, C, HW, K, 1, 1.0f, 1.0f, B, 0, (size_t)HW * K, (size_t)C * HW);
}

void sd_linear_add_be(oir_backend *be, be_view out, be_view in, const sd_linear *l, int rows, be_view ones) {
    int n = l->out;
    if (l->bb.buf) be_matmul(be, out, ones, l->bb, rows, n, 1, 0, 1.0f, 1.0f, 1, 0, 0, 0);
    be_matmul(be, out, in, l->bw, rows, n, l->in, 1, 1.0f, 1.0f, 1, 0, 0, 0);
}

int sd_resnet_forward_be(oir_backend *be, const sd_resnet *r, sd_dev_arena *a, be_view out, be_view x,
                         be_view temb_act, int B, int H, int W, int groups, float eps, float output_scale,
                         oir_error *err) {
    int Ci = r->c_in, Co = r->c_out, HW = H * W;
    size_t mark = a->used;
    be_view t1, t2, proj;
    if (!sd_dalloc(a, (size_t)B * Ci * HW, &t1) || !sd_dalloc(a, (size_t)B * Co * HW, &t2) ||
        !sd_dalloc(a, (size_t)B * Co, &proj)) {
        a->used = mark;
        return oir_fail(err, OIR_E_NOMEM, "resnet: device arena exhausted (%zu of %zu bytes in use)", a->used,
                        a->cap);
    }
    /* hidden_states = conv1(nonlinearity(norm1(input_tensor))) */
    be_group_norm(be, t1, x, r->norm1.bw, r->norm1.bb, B, Ci, HW, groups, eps, 1);
    sd_conv_forward_be(be, &r->conv1, t2, t1, B, H, W, 1, 1);
    /* + time_emb_proj(nonlinearity(temb))[:, :, None, None] */
    if (r->temb_dim > 0 && temb_act.buf) {
        be_linear(be, proj, temb_act, r->time_emb_proj.bw, r->time_emb_proj.bb, B, r->temb_dim, Co);
        be_add_channel_bias(be, t2, proj, B, Co, HW);
    }
    /* conv2(dropout(nonlinearity(norm2(h)))) */
    be_group_norm(be, t2, t2, r->norm2.bw, r->norm2.bb, B, Co, HW, groups, eps, 1);
    sd_conv_forward_be(be, &r->conv2, out, t2, B, H, W, 1, 1);
    /* output = (conv_shortcut(input_tensor) + hidden_states) / output_scale_factor;
     * the 1x1 shortcut accumulates straight onto out (beta = 1). */
    if (r->conv_shortcut.bw.buf) {
        if (r->conv_shortcut.bb.buf)
            for (int b = 0; b < B; b++)
                be_add_channel_bias(be, be_view_f(out, (size_t)b * Co * HW), r->conv_shortcut.bb, 1, Co, HW);
        be_matmul(be, out, r->conv_shortcut.bw, x, Co, HW, Ci, 0, 1.0f, 1.0f, B, 0, (size_t)Ci * HW,
                  (size_t)Co * HW);
    } else {
        be_add(be, out, out, x, (size_t)B * Co * HW);
    }
    if (output_scale != 1.0f) be_scale(be, out, out, 1.0f / output_scale, (size_t)B * Co * HW);
    a->used = mark;
    return OIR_OK;
}

int sd_upsample_forward_be(oir_backend *be, const sd_conv *c, const sd_conv *phase, sd_dev_arena *a,
                           be_view out, be_view x, int B, int H, int W, oir_error *err) {
    size_t mark = a->used;
    int Ci = c->c_in, Co = c->c_out;
    if (!phase || c->k != 3) { /* F.interpolate(scale_factor=2.0, mode="nearest"), then conv */
        be_view up;
        if (!sd_dalloc(a, (size_t)B * Ci * 4 * H * W, &up))
            return oir_fail(err, OIR_E_NOMEM, "upsample: device arena exhausted (%zu of %zu bytes in use)",
                            a->used, a->cap);
        be_upsample_nearest2x(be, up, x, B, Ci, H, W);
        sd_conv_forward_be(be, c, out, up, B, 2 * H, 2 * W, 1, c->k / 2);
        a->used = mark;
        return OIR_OK;
    }
    /* the four phases as one (4 C_out, C_in, 2, 2) conv (sd_blocks.c); the
     * interleave is a host kernel: only on a backend that shares the host's
     * memory (phase is NULL elsewhere) */
    be_view y;
    if (!sd_dalloc(a, (size_t)4 * Co * (H + 1) * (W + 1), &y))
        return oir_fail(err, OIR_E_NOMEM, "upsample: device arena exhausted (%zu of %zu bytes in use)", a->used,
                        a->cap);
    for (int b = 0; b < B; b++) {
        sd_conv_forward_be(be, phase, y, be_view_f(x, (size_t)b * Ci * H * W), 1, H, W, 1, 1);
        float *ob = be_host_ptr(be, be_view_f(out, (size_t)b * Co * 4 * H * W));
        const float *yh = be_host_ptr(be, y);
        if (!ob || !yh || be->status) break; /* the sticky status reports it */
        sd_upsample_interleave(ob, yh, Co, H, W);
    }
    a->used = mark;
    return OIR_OK;
}
