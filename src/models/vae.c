/* AutoencoderKL encoder (to the posterior mean) and decoder; see vae.h.
 * Read side by side with diffusers 0.16.1: models/autoencoder_kl.py
 * (encode, _decode), vae.py (Encoder, Decoder), unet_2d_blocks.py
 * (DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D), attention.py
 * (AttentionBlock) and resnet.py (in sd_blocks.c). */
#include "models/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "models/model_config.h"

#define VAE_EPS 1e-6f       /* resnet_eps, AttentionBlock eps, conv_norm_out eps */
#define VAE_CHUNK_ROWS 4096 /* token rows per attention chunk */

/* ---- config ------------------------------------------------------------- */

vae_config vae_config_sd1(void) {
    vae_config c;
    memset(&c, 0, sizeof c);
    c.in_channels = 3, c.out_channels = 3, c.latent_channels = 4, c.n_blocks = 4;
    int boc[4] = {128, 256, 512, 512};
    memcpy(c.block_out_channels, boc, sizeof boc);
    c.layers_per_block = 2, c.norm_num_groups = 32, c.scaling_factor = 0.18215f;
    return c;
}

int vae_downscale(const vae_config *c) { return 1 << (c->n_blocks - 1); }

static int check_types(const model_config *mc, const char *key, const char *want, int *n,
                       oir_error *err) {
    const char *types[VAE_MAX_BLOCKS];
    int rc = model_config_strs(mc, key, types, VAE_MAX_BLOCKS, n, err);
    if (rc) return rc;
    for (int i = 0; i < *n; i++)
        if (!types[i] || strcmp(types[i], want) != 0)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: %s[%d] = \"%s\" is not supported (only %s)", mc->where, key, i,
                            types[i] ? types[i] : "null", want);
    return OIR_OK;
}

int vae_config_from_json(vae_config *cfg, cJSON *root, const char *where, oir_error *err) {
    model_config mcv, *mc = &mcv;
    model_config_wrap(mc, root, where);
    if (!cJSON_IsObject(root)) return oir_fail(err, OIR_E_FORMAT, "%s: not a JSON object", where);
    /* diffusers 0.16.1 AutoencoderKL.__init__ defaults */
    vae_config c;
    memset(&c, 0, sizeof c);
    c.in_channels = 3, c.out_channels = 3, c.latent_channels = 4, c.n_blocks = 1;
    c.block_out_channels[0] = 64, c.layers_per_block = 1, c.norm_num_groups = 32;
    c.scaling_factor = 0.18215f;
    int rc, n_down = 1, n_up = 1, n_boc = 1;

    if ((rc = model_config_require_str(mc, "act_fn", "silu", err))) return rc;
    /* later diffusers switches that 0.16.1 would silently ignore */
    const char *trues[] = {"use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"};
    for (size_t i = 0; i < sizeof trues / sizeof *trues; i++) {
        int v;
        if ((rc = model_config_bool(mc, trues[i], 1, &v, err))) return rc;
        if (!v)
            return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %s = false is not supported (only true)",
                            where, trues[i]);
    }
    if (model_config_has(mc, "down_block_types") &&
        (rc = check_types(mc, "down_block_types", "DownEncoderBlock2D", &n_down, err)))
        return rc;
    if (model_config_has(mc, "up_block_types") &&
        (rc = check_types(mc, "up_block_types", "UpDecoderBlock2D", &n_up, err)))
        return rc;
    if (model_config_has(mc, "block_out_channels")) {
        int is_list;
        if ((rc = model_config_ints(mc, "block_out_channels", c.block_out_channels, VAE_MAX_BLOCKS,
                                    &n_boc, &is_list, err)))
            return rc;
        if (!is_list)
            return oir_fail(err, OIR_E_FORMAT, "%s: block_out_channels: expected a list", where);
    }
    if (n_down != n_boc || n_up != n_boc)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: block_out_channels has %d entries, down_block_types %d, "
                        "up_block_types %d (they must match)",
                        where, n_boc, n_down, n_up);
    c.n_blocks = n_boc;
    if ((rc = model_config_int(mc, "in_channels", c.in_channels, &c.in_channels, err)) ||
        (rc = model_config_int(mc, "out_channels", c.out_channels, &c.out_channels, err)) ||
        (rc =
             model_config_int(mc, "latent_channels", c.latent_channels, &c.latent_channels, err)) ||
        (rc = model_config_int(mc, "layers_per_block", c.layers_per_block, &c.layers_per_block,
                               err)) ||
        (rc =
             model_config_int(mc, "norm_num_groups", c.norm_num_groups, &c.norm_num_groups, err)) ||
        (rc = model_config_float(mc, "scaling_factor", c.scaling_factor, &c.scaling_factor, err)))
        return rc;
    if ((rc = vae_config_check(&c, where, err))) return rc;
    *cfg = c;
    return OIR_OK;
}

int vae_config_load(vae_config *cfg, const char *config_path, oir_error *err) {
    model_config mc;
    int rc = model_config_read(&mc, config_path, err);
    if (rc) return rc;
    rc = vae_config_from_json(cfg, mc.root, config_path, err);
    model_config_free(&mc);
    return rc;
}

int vae_config_check(const vae_config *c, const char *where, oir_error *err) {
    if (c->n_blocks < 1 || c->n_blocks > VAE_MAX_BLOCKS)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %d blocks, 1 to %d supported", where,
                        c->n_blocks, VAE_MAX_BLOCKS);
    struct {
        const char *name;
        int v, max;
    } sizes[] = {
        {"in_channels", c->in_channels, CFG_MAX_IMAGE_CHANNELS},
        {"out_channels", c->out_channels, CFG_MAX_IMAGE_CHANNELS},
        {"latent_channels", c->latent_channels, CFG_MAX_IMAGE_CHANNELS},
        {"norm_num_groups", c->norm_num_groups, CFG_MAX_WIDTH},
    };
    int rc;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if ((rc = model_config_check_size(where, sizes[i].name, sizes[i].v, sizes[i].max, err)))
            return rc;
    if (c->layers_per_block < 1 || c->layers_per_block > VAE_MAX_LAYERS)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: layers_per_block = %d, 1 to %d supported",
                        where, c->layers_per_block, VAE_MAX_LAYERS);
    if ((rc = model_config_check_float(where, "scaling_factor", c->scaling_factor, 0, 0,
                                       CFG_MAX_FACTOR, err)))
        return rc;
    for (int i = 0; i < c->n_blocks; i++) {
        int ch = c->block_out_channels[i];
        char field[64];
        snprintf(field, sizeof field, "block_out_channels[%d]", i);
        if ((rc = model_config_check_size(where, field, ch, CFG_MAX_WIDTH, err))) return rc;
        if (ch % c->norm_num_groups != 0)
            return oir_fail(
                err, OIR_E_FORMAT,
                "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups = %d", where,
                i, ch, c->norm_num_groups);
    }
    return OIR_OK;
}

/* ---- loading ------------------------------------------------------------ */

static void load_attention(sd_params *p, vae_attention *t, int c, const char *prefix) {
    t->c = c;
    char probe[320];
    snprintf(probe, sizeof probe, "%s.to_q.weight", prefix);
    int new_names = !weights_has(p->w, probe) ? 0 : 1; /* diffusers >= 0.18 files */
    sd_norm_load(p, &t->group_norm, c, "%s.group_norm", prefix);
    sd_linear_load(p, &t->query, c, c, 1, 0, "%s.%s", prefix, new_names ? "to_q" : "query");
    sd_linear_load(p, &t->key, c, c, 1, 0, "%s.%s", prefix, new_names ? "to_k" : "key");
    sd_linear_load(p, &t->value, c, c, 1, 0, "%s.%s", prefix, new_names ? "to_v" : "value");
    sd_linear_load(p, &t->proj_attn, c, c, 1, 0, "%s.%s", prefix,
                   new_names ? "to_out.0" : "proj_attn");
}

static void load_mid(sd_params *p, vae_mid_block *mb, int c, const char *prefix) {
    char name[256];
    snprintf(name, sizeof name, "%s.resnets.0", prefix);
    sd_resnet_load(p, &mb->resnets[0], c, c, 0, name);
    snprintf(name, sizeof name, "%s.attentions.0", prefix);
    load_attention(p, &mb->attn, c, name);
    snprintf(name, sizeof name, "%s.resnets.1", prefix);
    sd_resnet_load(p, &mb->resnets[1], c, c, 0, name);
}

int vae_load_config(vae_model **out, const vae_config *cfg, weights *w, oir_error *err) {
    *out = NULL;
    int rc = vae_config_check(cfg, "vae config", err);
    if (rc) return rc;
    if (!w) return oir_fail(err, OIR_E_ARG, "vae_load: no weights");
    vae_model *m = calloc(1, sizeof *m);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "vae: cannot allocate the model");
    m->cfg = *cfg;
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, lpb = c->layers_per_block;
    int c0 = c->block_out_channels[0], cl = c->block_out_channels[n - 1];
    sd_params p = {w, 0};
    char name[256];

    /* encoder */
    sd_conv_load(&p, &m->enc_conv_in, c->in_channels, c0, 3, 1, "encoder.conv_in");
    int out_c = c0;
    for (int i = 0; i < n; i++) {
        vae_down_block *d = &m->enc_down[i];
        d->c_in = out_c, d->c_out = out_c = c->block_out_channels[i];
        d->has_downsample = i < n - 1;
        for (int j = 0; j < lpb; j++) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", i, j);
            sd_resnet_load(&p, &d->resnets[j], j == 0 ? d->c_in : d->c_out, d->c_out, 0, name);
        }
        if (d->has_downsample)
            sd_conv_load(&p, &d->downsample, d->c_out, d->c_out, 3, 1,
                         "encoder.down_blocks.%d.downsamplers.0.conv", i);
    }
    load_mid(&p, &m->enc_mid, cl, "encoder.mid_block");
    sd_norm_load(&p, &m->enc_norm_out, cl, "encoder.conv_norm_out");
    sd_conv_load(&p, &m->enc_conv_out, cl, 2 * L, 3, 1, "encoder.conv_out");
    sd_conv_load(&p, &m->quant_conv, 2 * L, 2 * L, 1, 1, "quant_conv");

    /* decoder */
    sd_conv_load(&p, &m->post_quant_conv, L, L, 1, 1, "post_quant_conv");
    sd_conv_load(&p, &m->dec_conv_in, L, cl, 3, 1, "decoder.conv_in");
    load_mid(&p, &m->dec_mid, cl, "decoder.mid_block");
    out_c = cl;
    for (int i = 0; i < n; i++) {
        vae_up_block *u = &m->dec_up[i];
        u->c_in = out_c, u->c_out = out_c = c->block_out_channels[n - 1 - i];
        u->has_upsample = i < n - 1;
        for (int j = 0; j < lpb + 1; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            sd_resnet_load(&p, &u->resnets[j], j == 0 ? u->c_in : u->c_out, u->c_out, 0, name);
        }
        if (u->has_upsample)
            sd_conv_load(&p, &u->upsample, u->c_out, u->c_out, 3, 1,
                         "decoder.up_blocks.%d.upsamplers.0.conv", i);
    }
    sd_norm_load(&p, &m->dec_norm_out, c0, "decoder.conv_norm_out");
    sd_conv_load(&p, &m->dec_conv_out, c0, c->out_channels, 3, 1, "decoder.conv_out");

    if ((rc = sd_params_check(&p, "vae", err)) || (rc = vae_bind(m, NULL, err))) {
        vae_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int vae_load(vae_model **out, const char *config_path, weights *w, oir_error *err) {
    vae_config cfg;
    *out = NULL;
    int rc = vae_config_load(&cfg, config_path, err);
    if (rc) return rc;
    return vae_load_config(out, &cfg, w, err);
}

/* ---- the backend (vae_bind) ----------------------------------------------- */

/* What a VAE holds on its backend: the weights and buffers (sd_dev) and,
 * on a host-memory backend, the decoder upsamplers' phase kernels. */
struct vae_dev {
    sd_dev d;
    sd_conv phase[VAE_MAX_BLOCKS]; /* dec_up[i].upsample's (4 C_out, C_in, 2, 2) (host only) */
    float *phase_host[VAE_MAX_BLOCKS];
};

typedef struct {
    vae_model *m;
    struct vae_dev *dv;
} bind_ctx;

static void bind_attention(sd_binder *b, vae_attention *t) {
    sd_bind_norm(b, &t->group_norm);
    sd_bind_linear(b, &t->query), sd_bind_linear(b, &t->key), sd_bind_linear(b, &t->value);
    sd_bind_linear(b, &t->proj_attn);
}

static void bind_mid(sd_binder *b, vae_mid_block *mb) {
    sd_bind_resnet(b, &mb->resnets[0]);
    bind_attention(b, &mb->attn);
    sd_bind_resnet(b, &mb->resnets[1]);
}

static void bind_all(void *user, sd_binder *b) {
    bind_ctx *bc = user;
    vae_model *m = bc->m;
    const vae_config *c = &m->cfg;
    sd_bind_conv(b, &m->enc_conv_in);
    for (int i = 0; i < c->n_blocks; i++) {
        vae_down_block *d = &m->enc_down[i];
        for (int j = 0; j < c->layers_per_block; j++) sd_bind_resnet(b, &d->resnets[j]);
        if (d->has_downsample) sd_bind_conv(b, &d->downsample);
    }
    bind_mid(b, &m->enc_mid);
    sd_bind_norm(b, &m->enc_norm_out);
    sd_bind_conv(b, &m->enc_conv_out);
    sd_bind_conv(b, &m->quant_conv);
    sd_bind_conv(b, &m->post_quant_conv);
    sd_bind_conv(b, &m->dec_conv_in);
    bind_mid(b, &m->dec_mid);
    for (int i = 0; i < c->n_blocks; i++) {
        vae_up_block *u = &m->dec_up[i];
        for (int j = 0; j < c->layers_per_block + 1; j++) sd_bind_resnet(b, &u->resnets[j]);
        if (u->has_upsample) sd_bind_conv(b, &u->upsample);
        if (bc->dv->phase[i].w) sd_bind_conv(b, &bc->dv->phase[i]);
    }
    sd_bind_norm(b, &m->dec_norm_out);
    sd_bind_conv(b, &m->dec_conv_out);
}

static void dev_free(struct vae_dev *dv) {
    if (!dv) return;
    sd_dev_close(&dv->d);
    for (int i = 0; i < VAE_MAX_BLOCKS; i++) free(dv->phase_host[i]);
    free(dv);
}

static int dev_new(vae_model *m, oir_backend *be, struct vae_dev **out, oir_error *err) {
    *out = NULL;
    struct vae_dev *dv = calloc(1, sizeof *dv);
    if (!dv) return oir_fail(err, OIR_E_NOMEM, "vae: out of memory");
    int rc = sd_dev_open(&dv->d, be, "vae", err);
    for (int i = 0; !rc && dv->d.host && i < m->cfg.n_blocks; i++) {
        if (m->dec_up[i].has_upsample &&
            sd_upsample_phase_conv(&m->dec_up[i].upsample, &dv->phase_host[i], &dv->phase[i]))
            rc = oir_fail(err, OIR_E_NOMEM, "vae: out of memory for the upsamplers' phase kernels");
    }
    bind_ctx bc = {m, dv};
    if (!rc) rc = sd_dev_bind(&dv->d, bind_all, &bc, "vae", err);
    if (rc) {
        dev_free(dv);
        return rc;
    }
    *out = dv;
    return OIR_OK;
}

int vae_bind(vae_model *m, oir_backend *be, oir_error *err) {
    if (!m) return oir_fail(err, OIR_E_ARG, "vae_bind: NULL model");
    dev_free(m->dev); /* the views in the parameters are rewritten by the new binding */
    m->dev = NULL;
    struct vae_dev *dv;
    int rc = dev_new(m, be, &dv, err);
    if (rc) { /* back onto a CPU backend of its own, so the model stays usable */
        oir_error ignore;
        if (be && !dev_new(m, NULL, &dv, &ignore)) m->dev = dv;
        return rc;
    }
    m->dev = dv;
    return OIR_OK;
}

const char *vae_backend_name(const vae_model *m) { return m && m->dev ? m->dev->d.be->name : "none"; }
oir_backend *vae_backend(const vae_model *m) { return m && m->dev ? m->dev->d.be : NULL; }

void vae_free(vae_model *m) {
    if (!m) return;
    dev_free(m->dev);
    free(m);
}

/* ---- AttentionBlock ----------------------------------------------------- */

/* On a device the attention is q k^T, softmax, @ v in blocks of query rows
 * whose score block stays under ATT_SCORE_FLOATS: the VAE's one head spans
 * all C channels (512 in SD 1.x), more than a fused attention kernel takes
 * (Vulkan's: 256). On the host backend it is be_attention (op_attention,
 * the bits of the host forward; no T x T matrix). */
#define ATT_SCORE_FLOATS ((size_t)1 << 23) /* 32 MiB */

static int attn_group(int B, int T) { return sd_attention_group(B, T, VAE_CHUNK_ROWS); }
static int score_rows(int T) {
    size_t r = ATT_SCORE_FLOATS / (size_t)T;
    return r < 1 ? 1 : r > (size_t)T ? T : (int)r;
}

static size_t attention_arena_bytes(int B, int T, int C, int host) {
    size_t G = (size_t)attn_group(B, T);
    return 2 * sd_floats_bytes((size_t)B * T * C) + 3 * sd_floats_bytes(G * T * C) +
           (host ? sd_floats_bytes(op_attention_scratch(T, T, 1, C))
                 : sd_floats_bytes((size_t)score_rows(T) * T));
}

/* One forward's state on the backend. */
typedef struct {
    struct vae_dev *dv;
    oir_backend *be;
    sd_dev_arena *a;
} fwd;

/* diffusers 0.16.1 AttentionBlock, in place on x (B, C, H, W), T = H*W:
 *   h = group_norm(x) as tokens (B, T, C); q, k, v = query/key/value(h);
 *   x = proj_attn(softmax(q k^T / sqrt(C)) v) + x   (one head). */
static int attention_forward(fwd *F, const vae_attention *t, be_view x, int B, int T, int groups,
                             oir_error *err) {
    int C = t->c, G = attn_group(B, T), host = F->dv->d.host;
    oir_backend *be = F->be;
    size_t mark = F->a->used;
    be_view g, n, q, k, v, s = BE_NONE;
    if (!sd_dalloc(F->a, (size_t)B * T * C, &g) ||   /* (B, C, T), then (B, T, C) attention out */
        !sd_dalloc(F->a, (size_t)B * T * C, &n) ||   /* (B, T, C) normed tokens */
        !sd_dalloc(F->a, (size_t)G * T * C, &q) ||   /* (G, T, C) */
        !sd_dalloc(F->a, (size_t)G * T * C, &k) || !sd_dalloc(F->a, (size_t)G * T * C, &v) ||
        (!host && !sd_dalloc(F->a, (size_t)score_rows(T) * T, &s))) {
        F->a->used = mark;
        return sd_dev_arena_fail(err, "vae attention", F->a);
    }
    be_group_norm(be, g, x, t->group_norm.bw, t->group_norm.bb, B, C, T, groups, VAE_EPS, 0);
    be_nchw_to_nhwc(be, n, g, B, C, T);           /* .view(B, C, H*W).transpose(1, 2) */
    float scale = (float)(1.0 / sqrt((double)C)); /* 1 / sqrt(channels / num_heads) */
    for (int b0 = 0; b0 < B; b0 += G) {
        int gb = B - b0 < G ? B - b0 : G;
        be_view nb = be_view_f(n, (size_t)b0 * T * C), ob = be_view_f(g, (size_t)b0 * T * C);
        be_linear(be, q, nb, t->query.bw, t->query.bb, gb * T, C, C);
        be_linear(be, k, nb, t->key.bw, t->key.bb, gb * T, C, C);
        be_linear(be, v, nb, t->value.bw, t->value.bb, gb * T, C, C);
        if (host) {
            be_attention(be, ob, q, k, v, gb, T, T, 1, C, scale, BE_NONE, 0);
            continue;
        }
        int R = score_rows(T);
        for (int i = 0; i < gb; i++)
            for (int r0 = 0; r0 < T; r0 += R) {
                int r = T - r0 < R ? T - r0 : R;
                size_t qo = ((size_t)i * T + r0) * C;
                /* s (r, T) = scale q_rows k^T; softmax; out_rows = s v */
                be_matmul(be, s, be_view_f(q, qo), be_view_f(k, (size_t)i * T * C), r, T, C, 1, scale, 0.0f, 1, 0,
                          0, 0);
                be_softmax(be, s, s, r, T);
                be_matmul(be, be_view_f(ob, qo), s, be_view_f(v, (size_t)i * T * C), r, C, T, 0, 1.0f, 0.0f, 1, 0,
                          0, 0);
            }
    }
    /* proj_attn, transpose back, + residual (rescale_output_factor 1) */
    sd_tokens_proj_add_nchw_be(be, x, g, &t->proj_attn, B, T);
    F->a->used = mark;
    return OIR_OK;
}

/* UNetMidBlock2D: resnet, attention, resnet. x (B, C, H, W) -> out; tmp is
 * a second buffer of the same size, distinct from x and out (out may be x). */
static size_t mid_arena_bytes(const vae_mid_block *mb, int B, int H, int W, int host) {
    size_t r = sd_resnet_arena_bytes(&mb->resnets[0], B, H, W);
    size_t t = attention_arena_bytes(B, H * W, mb->attn.c, host);
    return r > t ? r : t;
}

static int mid_forward(fwd *F, const vae_mid_block *mb, be_view out, be_view tmp, be_view x, int B, int H,
                       int W, int groups, oir_error *err) {
    int rc = sd_resnet_forward_be(F->be, &mb->resnets[0], F->a, tmp, x, BE_NONE, B, H, W, groups, VAE_EPS, 1.0f,
                                  err);
    if (!rc) rc = attention_forward(F, &mb->attn, tmp, B, H * W, groups, err);
    if (!rc)
        rc = sd_resnet_forward_be(F->be, &mb->resnets[1], F->a, out, tmp, BE_NONE, B, H, W, groups, VAE_EPS,
                                  1.0f, err);
    return rc;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* The model's backend state and the activations' buffer of one forward. */
static int fwd_open(const vae_model *m, arena *a, size_t need, sd_dev_arena *da, fwd *F, oir_error *err) {
    if (!m->dev) return oir_fail(err, OIR_E_ARG, "the model is on no backend (vae_bind)");
    F->dv = m->dev, F->be = m->dev->d.be, F->a = da;
    return sd_dev_arena_for(&m->dev->d, a, need, da, err);
}

/* After a failed forward: clears the backend's sticky status. */
static int fwd_fail(fwd *F, int rc, oir_error *err, const char *who) {
    oir_error ignore;
    if (F->be) be_sync(F->be, &ignore);
    oir_error_prefix(err, "%s", who);
    return rc;
}

/* ---- encoder ------------------------------------------------------------ */

/* Largest (B=1) hidden state of the encoder: the two ping-pong buffers. */
static size_t enc_pingpong_floats(const vae_model *m, int H, int W) {
    size_t mx = 0;
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        mx = max_sz(mx, (size_t)m->enc_down[i].c_in * H * W);
        mx = max_sz(mx, (size_t)m->enc_down[i].c_out * H * W);
        if (m->enc_down[i].has_downsample) H /= 2, W /= 2;
    }
    return mx;
}

static int host_backend(const vae_model *m) { return !m->dev || m->dev->d.host; }

size_t vae_encode_arena_bytes(const vae_model *m, int B, int H, int W) {
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, f = vae_downscale(c), host = host_backend(m);
    if (B < 1 || H < 1 || W < 1) return 0;
    /* persistent: the image and the mean on the backend, two ping-pong buffers */
    size_t bytes = sd_floats_bytes((size_t)B * c->in_channels * H * W) +
                   sd_floats_bytes((size_t)B * L * (H / f) * (W / f)) +
                   2 * sd_floats_bytes((size_t)B * enc_pingpong_floats(m, H, W));
    size_t tmp = sd_conv_arena_bytes(&m->enc_conv_in, H, W, 1, 1);
    int hh = H, ww = W;
    for (int i = 0; i < n; i++) {
        const vae_down_block *d = &m->enc_down[i];
        for (int j = 0; j < c->layers_per_block; j++)
            tmp = max_sz(tmp, sd_resnet_arena_bytes(&d->resnets[j], B, hh, ww));
        if (d->has_downsample) {
            tmp = max_sz(tmp, sd_downsample_arena_bytes(&d->downsample, B, hh, ww, 0));
            hh /= 2, ww /= 2;
        }
    }
    tmp = max_sz(tmp, mid_arena_bytes(&m->enc_mid, B, hh, ww, host));
    size_t hw = (size_t)(H / f) * (W / f);
    tmp = max_sz(tmp, sd_floats_bytes((size_t)B * c->block_out_channels[n - 1] * hw) +
                          sd_floats_bytes((size_t)B * 2 * L * hw) +
                          sd_conv_arena_bytes(&m->enc_conv_out, H / f, W / f, 1, 1));
    return bytes + tmp + 4096;
}

int vae_encode_mean(const vae_model *m, arena *a, const float *image, int B, int H, int W,
                    float *mean_out, oir_error *err) {
    return vae_encode_mean_tap(m, a, image, B, H, W, mean_out, NULL, err);
}

#define ALLOC(v, count)                                                                            \
    do {                                                                                           \
        if (!sd_dalloc(&da, (count), &(v))) {                                                      \
            rc = sd_dev_arena_fail(err, who, &da);                                                 \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((rc = (call)) != OIR_OK) goto cleanup;                                                 \
    } while (0)

int vae_encode_mean_tap(const vae_model *m, arena *a, const float *image, int B, int H, int W,
                        float *mean_out, const vae_tap *tap, oir_error *err) {
    const char *who = "vae encode";
    if (!m || !a || !image || !mean_out)
        return oir_fail(err, OIR_E_ARG, "vae_encode_mean: NULL argument");
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, G = c->norm_num_groups, f = vae_downscale(c);
    if (B < 1 || H < 1 || W < 1)
        return oir_fail(err, OIR_E_ARG, "vae_encode_mean: batch %d, image %dx%d: all must be >= 1",
                        B, H, W);
    if (H % f || W % f)
        return oir_fail(err, OIR_E_SHAPE, "vae_encode_mean: image %dx%d is not a multiple of %d", H,
                        W, f);
    sd_dev_arena da;
    fwd F = {0};
    int rc, cl = c->block_out_channels[n - 1];
    /* the zeros of the downsamplers' padding: B C max(H, W + 1) at the first (largest) one */
    size_t zn = 0;
    for (int i = 0, hh = H, ww = W; i < n; i++)
        if (m->enc_down[i].has_downsample) {
            zn = max_sz(zn, (size_t)B * m->enc_down[i].c_out * (size_t)max_sz(hh, ww + 1));
            hh /= 2, ww /= 2;
        }
    if ((rc = fwd_open(m, a, vae_encode_arena_bytes(m, B, H, W), &da, &F, err)) ||
        (zn && (rc = sd_dev_zeros(&m->dev->d, zn, err))))
        return fwd_fail(&F, rc, err, "vae_encode_mean");
    oir_backend *be = F.be;
    sd_dev *d = &m->dev->d;
    size_t in_n = (size_t)B * c->in_channels * H * W, pp = (size_t)B * enc_pingpong_floats(m, H, W);
    size_t hw = (size_t)(H / f) * (W / f);
    be_view x_in, mean, pbuf[2];
    ALLOC(x_in, in_n);
    ALLOC(mean, (size_t)B * L * hw);
    ALLOC(pbuf[0], pp);
    ALLOC(pbuf[1], pp);
    be_upload(be, x_in, image, in_n * sizeof(float));
    /* sample = conv_in(x) */
    sd_conv_forward_be(be, &m->enc_conv_in, pbuf[0], x_in, B, H, W, 1, 1);
    be_view cur = pbuf[0];
    char name[32];
    TRY(sd_dev_tap(d, tap, "encoder.conv_in", cur, (size_t)B * m->enc_conv_in.c_out * H * W, err));
    int p = 1, hh = H, ww = W;
    /* down_blocks: DownEncoderBlock2D */
    for (int i = 0; i < n; i++) {
        const vae_down_block *dn = &m->enc_down[i];
        for (int j = 0; j < c->layers_per_block; j++) {
            TRY(sd_resnet_forward_be(be, &dn->resnets[j], &da, pbuf[p], cur, BE_NONE, B, hh, ww, G, VAE_EPS, 1.0f,
                                     err));
            cur = pbuf[p], p ^= 1;
        }
        if (dn->has_downsample) {
            TRY(sd_downsample_pad0_forward_be(be, &dn->downsample, &da, pbuf[p], cur, be_view_of(d->zeros), B, hh,
                                              ww, err));
            cur = pbuf[p], p ^= 1;
            hh /= 2, ww /= 2;
        }
        snprintf(name, sizeof name, "encoder.down.%d", i);
        TRY(sd_dev_tap(d, tap, name, cur, (size_t)B * dn->c_out * hh * ww, err));
    }
    /* mid_block (x and out share cur: x is consumed by its first resnet) */
    TRY(mid_forward(&F, &m->enc_mid, cur, pbuf[p], cur, B, hh, ww, G, err));
    TRY(sd_dev_tap(d, tap, "encoder.mid", cur, (size_t)B * cl * hh * ww, err));
    /* conv_out(silu(conv_norm_out(sample))), then quant_conv: only its first
     * L output channels (the mean) are computed */
    {
        be_view t, moments;
        ALLOC(t, (size_t)B * cl * hw);           /* (B, C_last, h, w) */
        ALLOC(moments, (size_t)B * 2 * L * hw); /* (B, 2L, h, w) */
        be_group_norm(be, t, cur, m->enc_norm_out.bw, m->enc_norm_out.bb, B, cl, (int)hw, G, VAE_EPS, 1);
        sd_conv_forward_be(be, &m->enc_conv_out, moments, t, B, hh, ww, 1, 1);
        TRY(sd_dev_tap(d, tap, "encoder.conv_out", moments, (size_t)B * 2 * L * hw, err));
        sd_conv mean_conv = m->quant_conv; /* rows [0, L) of (2L, 2L, 1, 1): the views' first rows */
        mean_conv.c_out = L;
        sd_conv_forward_be(be, &mean_conv, mean, moments, B, hh, ww, 1, 0);
    }
    /* runs what is queued; reports the first failure of any op */
    TRY(be_download(be, mean_out, mean, (size_t)B * L * hw * sizeof(float), err));
cleanup:
    return rc ? fwd_fail(&F, rc, err, "vae_encode_mean") : OIR_OK;
}

/* ---- decoder ------------------------------------------------------------ */

static size_t dec_pingpong_floats(const vae_model *m, int h, int w) {
    size_t mx = (size_t)m->cfg.block_out_channels[m->cfg.n_blocks - 1] * h * w;
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        const vae_up_block *u = &m->dec_up[i];
        mx = max_sz(mx, (size_t)u->c_out * h * w);
        if (u->has_upsample) {
            h *= 2, w *= 2;
            mx = max_sz(mx, (size_t)u->c_out * h * w);
        }
    }
    return mx;
}

size_t vae_decode_arena_bytes(const vae_model *m, int B, int h, int w) {
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, f = vae_downscale(c), host = host_backend(m);
    if (B < 1 || h < 1 || w < 1) return 0;
    /* persistent: the latent and the image on the backend, two ping-pong
     * buffers, post_quant_conv's output */
    size_t bytes = sd_floats_bytes((size_t)B * L * h * w) +
                   sd_floats_bytes((size_t)B * c->out_channels * h * f * w * f) +
                   2 * sd_floats_bytes((size_t)B * dec_pingpong_floats(m, h, w)) +
                   sd_floats_bytes((size_t)B * L * h * w);
    size_t tmp = sd_conv_arena_bytes(&m->dec_conv_in, h, w, 1, 1);
    tmp = max_sz(tmp, mid_arena_bytes(&m->dec_mid, B, h, w, host));
    int hh = h, ww = w;
    for (int i = 0; i < n; i++) {
        const vae_up_block *u = &m->dec_up[i];
        for (int j = 0; j < c->layers_per_block + 1; j++)
            tmp = max_sz(tmp, sd_resnet_arena_bytes(&u->resnets[j], B, hh, ww));
        if (u->has_upsample) {
            tmp = max_sz(tmp, sd_upsample_arena_bytes(&u->upsample, B, hh, ww));
            hh *= 2, ww *= 2;
        }
    }
    tmp = max_sz(tmp, sd_floats_bytes((size_t)B * c->block_out_channels[0] * h * f * w * f) +
                          sd_conv_arena_bytes(&m->dec_conv_out, h * f, w * f, 1, 1));
    return bytes + tmp + 4096;
}

int vae_decode(const vae_model *m, arena *a, const float *latent, int B, int h, int w,
               float *image_out, oir_error *err) {
    return vae_decode_tap(m, a, latent, B, h, w, image_out, NULL, err);
}

int vae_decode_tap(const vae_model *m, arena *a, const float *latent, int B, int h, int w,
                   float *image_out, const vae_tap *tap, oir_error *err) {
    const char *who = "vae decode";
    if (!m || !a || !latent || !image_out)
        return oir_fail(err, OIR_E_ARG, "vae_decode: NULL argument");
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, G = c->norm_num_groups, f = vae_downscale(c);
    if (B < 1 || h < 1 || w < 1)
        return oir_fail(err, OIR_E_ARG, "vae_decode: batch %d, latent %dx%d: all must be >= 1", B,
                        h, w);
    sd_dev_arena da;
    fwd F = {0};
    int rc;
    if ((rc = fwd_open(m, a, vae_decode_arena_bytes(m, B, h, w), &da, &F, err)))
        return fwd_fail(&F, rc, err, "vae_decode");
    oir_backend *be = F.be;
    sd_dev *d = &m->dev->d;
    size_t lat_n = (size_t)B * L * h * w, img_n = (size_t)B * c->out_channels * h * f * w * f;
    size_t pp = (size_t)B * dec_pingpong_floats(m, h, w);
    be_view x_in, img, pbuf[2], z;
    ALLOC(x_in, lat_n);
    ALLOC(img, img_n);
    ALLOC(pbuf[0], pp);
    ALLOC(pbuf[1], pp);
    ALLOC(z, lat_n); /* (B, L, h, w) */
    be_upload(be, x_in, latent, lat_n * sizeof(float));
    /* z = post_quant_conv(z); sample = decoder.conv_in(z) */
    int cl = c->block_out_channels[n - 1];
    char name[32];
    sd_conv_forward_be(be, &m->post_quant_conv, z, x_in, B, h, w, 1, 0);
    TRY(sd_dev_tap(d, tap, "post_quant_conv", z, lat_n, err));
    sd_conv_forward_be(be, &m->dec_conv_in, pbuf[0], z, B, h, w, 1, 1);
    TRY(sd_dev_tap(d, tap, "decoder.conv_in", pbuf[0], (size_t)B * cl * h * w, err));
    /* mid_block (x and out may share a buffer: x is consumed by its first resnet) */
    TRY(mid_forward(&F, &m->dec_mid, pbuf[0], pbuf[1], pbuf[0], B, h, w, G, err));
    TRY(sd_dev_tap(d, tap, "decoder.mid", pbuf[0], (size_t)B * cl * h * w, err));
    be_view cur = pbuf[0];
    int p = 1, hh = h, ww = w;
    /* up_blocks: UpDecoderBlock2D */
    for (int i = 0; i < n; i++) {
        const vae_up_block *u = &m->dec_up[i];
        for (int j = 0; j < c->layers_per_block + 1; j++) {
            TRY(sd_resnet_forward_be(be, &u->resnets[j], &da, pbuf[p], cur, BE_NONE, B, hh, ww, G, VAE_EPS, 1.0f,
                                     err));
            cur = pbuf[p], p ^= 1;
        }
        if (u->has_upsample) {
            const sd_conv *ph = F.dv->phase[i].w ? &F.dv->phase[i] : NULL;
            TRY(sd_upsample_forward_be(be, &u->upsample, ph, &da, pbuf[p], cur, B, hh, ww, err));
            cur = pbuf[p], p ^= 1;
            hh *= 2, ww *= 2;
        }
        snprintf(name, sizeof name, "decoder.up.%d", i);
        TRY(sd_dev_tap(d, tap, name, cur, (size_t)B * u->c_out * hh * ww, err));
    }
    /* conv_out(silu(conv_norm_out(sample))) */
    {
        int c0 = c->block_out_channels[0];
        be_view t;
        ALLOC(t, (size_t)B * c0 * hh * ww); /* (B, C0, H, W) */
        be_group_norm(be, t, cur, m->dec_norm_out.bw, m->dec_norm_out.bb, B, c0, hh * ww, G, VAE_EPS, 1);
        sd_conv_forward_be(be, &m->dec_conv_out, img, t, B, hh, ww, 1, 1);
    }
    TRY(be_download(be, image_out, img, img_n * sizeof(float), err));
cleanup:
    return rc ? fwd_fail(&F, rc, err, "vae_decode") : OIR_OK;
}
#undef ALLOC
#undef TRY

size_t vae_arena_bytes(const vae_model *m, int B, int H, int W) {
    int f = vae_downscale(&m->cfg);
    return max_sz(vae_encode_arena_bytes(m, B, H, W), vae_decode_arena_bytes(m, B, H / f, W / f));
}
