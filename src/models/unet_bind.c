/* A UNet on its backend: binding the weights (unet_bind) and the buffers a
 * forward keeps there between calls; see models/unet.h and docs/BACKENDS.md. */
#include <stdlib.h>
#include <string.h>

#include "models/unet_impl.h"

static void bind_transformer(sd_binder *b, unet_transformer *t) {
    sd_bind_norm(b, &t->norm);
    sd_bind_linear(b, &t->proj_in);
    sd_bind_norm(b, &t->norm1);
    sd_bind_linear(b, &t->attn1_q), sd_bind_linear(b, &t->attn1_k), sd_bind_linear(b, &t->attn1_v);
    sd_bind_linear(b, &t->attn1_out);
    sd_bind_norm(b, &t->norm2);
    sd_bind_linear(b, &t->attn2_q), sd_bind_linear(b, &t->attn2_k), sd_bind_linear(b, &t->attn2_v);
    sd_bind_linear(b, &t->attn2_out);
    sd_bind_norm(b, &t->norm3);
    sd_bind_linear(b, &t->ff_in), sd_bind_linear(b, &t->ff_out);
    sd_bind_linear(b, &t->proj_out);
}

typedef struct {
    unet_model *m;
    unet_dev *d;
} bind_ctx;

static void bind_all(void *user, sd_binder *b) {
    unet_model *m = ((bind_ctx *)user)->m;
    unet_dev *d = ((bind_ctx *)user)->d;
    const unet_config *c = &m->cfg;
    sd_bind_conv(b, &m->conv_in);
    sd_bind_linear(b, &m->time_linear_1), sd_bind_linear(b, &m->time_linear_2);
    for (int i = 0; i < c->n_blocks; i++) {
        unet_down_block *dn = &m->down[i];
        for (int j = 0; j < dn->n_layers; j++) {
            sd_bind_resnet(b, &dn->resnets[j]);
            if (dn->has_attn) bind_transformer(b, &dn->attentions[j]);
        }
        if (dn->has_downsample) sd_bind_conv(b, &dn->downsample);
    }
    if (c->has_mid) {
        sd_bind_resnet(b, &m->mid_resnets[0]);
        bind_transformer(b, &m->mid_attn);
        sd_bind_resnet(b, &m->mid_resnets[1]);
    }
    for (int i = 0; i < c->n_blocks; i++) {
        unet_up_block *u = &m->up[i];
        for (int j = 0; j < u->n_layers; j++) {
            sd_bind_resnet(b, &u->resnets[j]);
            if (u->has_attn) bind_transformer(b, &u->attentions[j]);
        }
        if (u->has_upsample) sd_bind_conv(b, &u->upsample);
        if (d->phase[i].w) sd_bind_conv(b, &d->phase[i]);
    }
    sd_bind_norm(b, &m->conv_norm_out);
    sd_bind_conv(b, &m->conv_out);
}

static void dev_free(unet_dev *d) {
    if (!d) return;
    oir_backend *be = d->be;
    sd_binder_free(&d->wb);
    be_buffer_free(be, d->act);
    be_buffer_free(be, d->ones);
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) free(d->phase_host[i]);
    free(d->hbuf);
    free(d->cls);
    if (d->own_be) be_destroy(be);
    free(d);
}

static int dev_new(unet_model *m, oir_backend *be, unet_dev **out, oir_error *err) {
    *out = NULL;
    unet_dev *d = calloc(1, sizeof *d);
    if (!d) return oir_fail(err, OIR_E_NOMEM, "unet: out of memory");
    if (!be) {
        if (!(be = be_create_cpu())) {
            free(d);
            return oir_fail(err, OIR_E_NOMEM, "unet: cannot create the CPU backend");
        }
        d->own_be = 1;
    }
    d->be = be;
    d->host = be->ops->buffer_wrap != NULL;
    for (int i = 0; d->host && i < m->cfg.n_blocks; i++) {
        if (m->up[i].has_upsample && sd_upsample_phase_conv(&m->up[i].upsample, &d->phase_host[i], &d->phase[i])) {
            dev_free(d);
            return oir_fail(err, OIR_E_NOMEM, "unet: out of memory for the upsamplers' phase kernels");
        }
    }
    bind_ctx bc = {m, d};
    int rc = sd_binder_run(&d->wb, be, d->host, bind_all, &bc, err);
    if (rc) {
        dev_free(d);
        oir_error_prefix(err, "unet: weights onto the backend");
        return rc;
    }
    *out = d;
    return OIR_OK;
}

int unet_bind(unet_model *m, oir_backend *be, oir_error *err) {
    if (!m) return oir_fail(err, OIR_E_ARG, "unet_bind: NULL model");
    unet_dev *old = m->dev;
    m->dev = NULL;
    dev_free(old); /* the views in the parameters are rewritten by the new binding */
    unet_dev *d;
    int rc = dev_new(m, be, &d, err);
    if (rc) { /* back onto a CPU backend of its own, so the model stays usable */
        oir_error ignore;
        if (be && !dev_new(m, NULL, &d, &ignore)) m->dev = d;
        return rc;
    }
    m->dev = d;
    return OIR_OK;
}

const char *unet_backend_name(const unet_model *m) { return m && m->dev ? m->dev->be->name : "none"; }
oir_backend *unet_backend(const unet_model *m) { return m && m->dev ? m->dev->be : NULL; }

void unet_free(unet_model *m) {
    if (!m) return;
    dev_free(m->dev);
    free(m);
}

/* The activations' buffer for one forward (sd_act_arena). */
int unet_dev_arena(unet_dev *d, arena *a, size_t need, sd_dev_arena *da, oir_error *err) {
    int rc = sd_act_arena(d->be, d->host, &d->act, &d->act_cap, &d->act_host, a, need, da, err);
    if (rc) oir_error_prefix(err, "unet");
    return rc;
}

/* At least n floats of 1.0 in d->ones (grow-only). */
int unet_dev_ones(unet_dev *d, size_t n, oir_error *err) {
    if (d->ones_n >= n) return OIR_OK;
    be_buffer_free(d->be, d->ones);
    d->ones = NULL, d->ones_n = 0;
    float *h = malloc(n * sizeof(float));
    if (!h) return oir_fail(err, OIR_E_NOMEM, "unet: out of memory");
    for (size_t i = 0; i < n; i++) h[i] = 1.0f;
    int rc = be_buffer_alloc(d->be, n * sizeof(float), &d->ones, err);
    if (!rc) be_upload(d->be, be_view_of(d->ones), h, n * sizeof(float));
    if (!rc) rc = be_sync(d->be, err);
    free(h);
    if (!rc) d->ones_n = n;
    return rc;
}

/* cls[b]: the first row whose context is byte-identical to row b's. */
int unet_dev_classes(unet_dev *d, const float *context, int B, size_t ctx_n, oir_error *err) {
    if (d->cls_cap < B) {
        int *nc = realloc(d->cls, (size_t)B * sizeof *nc);
        if (!nc) return oir_fail(err, OIR_E_NOMEM, "unet: out of memory");
        d->cls = nc, d->cls_cap = B;
    }
    for (int b = 0; b < B; b++) {
        d->cls[b] = b;
        for (int j = 0; j < b; j++)
            if (d->cls[j] == j && !memcmp(context + b * ctx_n, context + j * ctx_n, ctx_n * sizeof(float))) {
                d->cls[b] = j;
                break;
            }
    }
    return OIR_OK;
}

