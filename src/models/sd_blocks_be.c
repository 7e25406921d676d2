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

int sd_upsample_phase_conv(const sd_conv *c, float **mem, sd_conv *out) {
    *mem = NULL;
    *out = (sd_conv){0};
    if (c->k != 3) return OIR_OK;
    size_t nw = (size_t)16 * c->c_out * c->c_in, nb = (size_t)4 * c->c_out;
    if (!(*mem = malloc((nw + nb) * sizeof(float)))) return OIR_E_NOMEM;
    sd_upsample_phase_weights(c, *mem, *mem + nw);
    *out = (sd_conv){c->c_in, 4 * c->c_out, 2, *mem, *mem + nw, BE_NONE, BE_NONE};
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

int sd_downsample_pad0_forward_be(oir_backend *be, const sd_conv *c, sd_dev_arena *a, be_view out, be_view x,
                                  be_view zeros, int B, int H, int W, oir_error *err) {
    int C = c->c_in, Hp = H + 1, Wp = W + 1;
    size_t mark = a->used;
    be_view rows, xp;
    if (!sd_dalloc(a, (size_t)B * C * H * Wp, &rows) || !sd_dalloc(a, (size_t)B * C * Hp * Wp, &xp)) {
        a->used = mark;
        return sd_dev_arena_fail(err, "downsample", a);
    }
    /* F.pad(x, (0, 1, 0, 1)): each row (W) gets a zero after it, then each
     * plane (H rows of W + 1) a zero row: copies, the bits of the host pad */
    be_concat_channels(be, rows, x, zeros, B * C * H, W, 1, 1);
    be_concat_channels(be, xp, rows, zeros, B * C, H * Wp, Wp, 1);
    sd_conv_forward_be(be, c, out, xp, B, Hp, Wp, 2, 0);
    a->used = mark;
    return OIR_OK;
}

/* ---- a model on its backend --------------------------------------------- */

int sd_dev_arena_fail(oir_error *err, const char *who, const sd_dev_arena *a) {
    return oir_fail(err, OIR_E_NOMEM,
                    "%s: arena exhausted (%zu of %zu bytes in use); size the arena with the model's "
                    "*_arena_bytes plan",
                    who, a->used, a->cap);
}

int sd_dev_open(sd_dev *d, oir_backend *be, const char *who, oir_error *err) {
    memset(d, 0, sizeof *d);
    if (!be) {
        if (!(be = be_create_cpu())) return oir_fail(err, OIR_E_NOMEM, "%s: cannot create the CPU backend", who);
        d->own_be = 1;
    }
    d->be = be;
    d->host = be->ops->buffer_wrap != NULL;
    return OIR_OK;
}

int sd_binder_run(sd_binder *b, oir_backend *be, int wrap, void (*bind)(void *user, sd_binder *b), void *user,
                  oir_error *err) {
    b->be = be, b->wrap = wrap;
    if (!b->wrap) { /* size one buffer, then upload every tensor into it */
        b->counting = 1;
        bind(user, b);
        b->counting = 0;
        if (!b->status) b->status = be_buffer_alloc(be, b->total ? b->total : 256, &b->pool, &b->err);
    }
    if (!b->status) bind(user, b);
    int rc = b->status;
    if (rc && err) *err = b->err;
    else rc = be_sync(be, err);
    return rc;
}

int sd_dev_bind(sd_dev *d, void (*bind)(void *user, sd_binder *b), void *user, const char *who, oir_error *err) {
    int rc = sd_binder_run(&d->wb, d->be, d->host, bind, user, err);
    if (rc) oir_error_prefix(err, "%s: weights onto the backend", who);
    return rc;
}

void sd_dev_close(sd_dev *d) {
    if (!d->be) return;
    oir_backend *be = d->be;
    sd_binder_free(&d->wb);
    be_buffer_free(be, d->act);
    be_buffer_free(be, d->zeros);
    free(d->hbuf);
    if (d->own_be) be_destroy(be);
    memset(d, 0, sizeof *d);
}

int sd_act_arena(oir_backend *be, int host, be_buffer **act, size_t *act_cap, const unsigned char **act_host,
                 arena *a, size_t need, sd_dev_arena *da, oir_error *err) {
    if (host) {
        size_t start = (a->used + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN;
        if (start >= a->cap)
            return oir_fail(err, OIR_E_NOMEM, "arena exhausted (%zu of %zu bytes in use)", a->used, a->cap);
        const unsigned char *p = a->base + start;
        size_t avail = a->cap - start;
        if (!*act || *act_host != p || *act_cap != avail) {
            be_buffer_free(be, *act);
            *act = NULL, *act_cap = 0, *act_host = NULL;
            int rc = be_buffer_from_host(be, p, avail, act, err);
            if (rc) return rc;
            *act_host = p, *act_cap = avail;
        }
    } else if (*act_cap < need) {
        be_buffer_free(be, *act);
        *act = NULL, *act_cap = 0;
        int rc = be_buffer_alloc(be, need, act, err);
        if (rc) return rc;
        *act_cap = need;
    }
    da->base = be_view_of(*act), da->cap = *act_cap, da->used = 0;
    return OIR_OK;
}

int sd_dev_arena_for(sd_dev *d, arena *a, size_t need, sd_dev_arena *da, oir_error *err) {
    return sd_act_arena(d->be, d->host, &d->act, &d->act_cap, &d->act_host, a, need, da, err);
}

int sd_dev_zeros(sd_dev *d, size_t n, oir_error *err) {
    if (d->zeros_n >= n) return OIR_OK;
    be_buffer_free(d->be, d->zeros);
    d->zeros = NULL, d->zeros_n = 0;
    float *h = calloc(n, sizeof(float));
    if (!h) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    int rc = be_buffer_alloc(d->be, n * sizeof(float), &d->zeros, err);
    if (!rc) be_upload(d->be, be_view_of(d->zeros), h, n * sizeof(float));
    if (!rc) rc = be_sync(d->be, err);
    free(h);
    if (!rc) d->zeros_n = n;
    return rc;
}

const float *sd_dev_host(sd_dev *d, be_view v, size_t n, size_t at, oir_error *err) {
    const float *p = be_host_ptr(d->be, v);
    if (p) return p;
    if (!sd_dev_staging(d, at + n, err)) return NULL;
    if (be_download(d->be, d->hbuf + at, v, n * sizeof(float), err)) return NULL;
    return d->hbuf + at;
}

int sd_dev_tap(sd_dev *d, const sd_tap *tap, const char *name, be_view v, size_t n, oir_error *err) {
    if (!tap || !tap->fn) return OIR_OK;
    const float *p = sd_dev_host(d, v, n, 0, err);
    if (!p) return err ? err->code : OIR_E_INTERNAL;
    tap->fn(tap->user, name, p, n);
    return OIR_OK;
}

int sd_dev_rebind(sd_dev *d, oir_backend *be, void (*bind)(void *user, sd_binder *b), void *user, const char *who,
                  oir_error *err) {
    sd_dev_close(d); /* the views in the parameters are rewritten by the new binding */
    int rc = sd_dev_open(d, be, who, err);
    if (!rc) rc = sd_dev_bind(d, bind, user, who, err);
    if (rc) { /* back onto a CPU backend of its own, so the model stays usable */
        sd_dev_close(d);
        oir_error ignore;
        if (be && !sd_dev_open(d, NULL, who, &ignore) && sd_dev_bind(d, bind, user, who, &ignore)) sd_dev_close(d);
    }
    return rc;
}

float *sd_dev_staging(sd_dev *d, size_t n, oir_error *err) {
    if (d->hbuf_cap < n) {
        float *nh = realloc(d->hbuf, n * sizeof(float));
        if (!nh) {
            oir_fail(err, OIR_E_NOMEM, "out of memory for a host staging buffer");
            return NULL;
        }
        d->hbuf = nh, d->hbuf_cap = n;
    }
    return d->hbuf;
}
