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

    if ((rc = sd_params_check(&p, "vae", err))) {
        free(m);
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

void vae_free(vae_model *m) { free(m); }

/* ---- AttentionBlock ----------------------------------------------------- */

static int attn_group(int B, int T) { return sd_attention_group(B, T, VAE_CHUNK_ROWS); }

static size_t attention_arena_bytes(int B, int T, int C) {
    size_t G = (size_t)attn_group(B, T);
    return 2 * sd_floats_bytes((size_t)B * T * C) + 3 * sd_floats_bytes(G * T * C) +
           sd_floats_bytes(op_attention_scratch(T, T, 1, C));
}

/* diffusers 0.16.1 AttentionBlock, in place on x (B, C, H, W), T = H*W:
 *   h = group_norm(x) as tokens (B, T, C); q, k, v = query/key/value(h);
 *   x = proj_attn(softmax(q k^T / sqrt(C)) v) + x   (one head). */
static int attention_forward(const vae_attention *t, arena *a, float *x, int B, int T, int groups,
                             oir_error *err) {
    int C = t->c, G = attn_group(B, T);
    size_t mark = arena_mark(a);
    float *g = arena_floats(a, (size_t)B * T * C); /* (B, C, T), then (B, T, C) attention out */
    float *n = arena_floats(a, (size_t)B * T * C); /* (B, T, C) normed tokens */
    float *q = arena_floats(a, (size_t)G * T * C); /* (G, T, C) */
    float *k = arena_floats(a, (size_t)G * T * C);
    float *v = arena_floats(a, (size_t)G * T * C);
    float *scratch = arena_floats(a, op_attention_scratch(T, T, 1, C));
    if (!g || !n || !q || !k || !v || !scratch)
        return sd_arena_fail(err, "vae attention", a, mark, attention_arena_bytes(B, T, C));
    op_group_norm(g, x, t->group_norm.w, t->group_norm.b, B, C, T, groups, VAE_EPS, 0);
    op_nchw_to_nhwc(n, g, B, C, T);               /* .view(B, C, H*W).transpose(1, 2) */
    float scale = (float)(1.0 / sqrt((double)C)); /* 1 / sqrt(channels / num_heads) */
    for (int b0 = 0; b0 < B; b0 += G) {
        int gb = B - b0 < G ? B - b0 : G;
        const float *nb = n + (size_t)b0 * T * C;
        op_linear(q, nb, t->query.w, t->query.b, gb * T, C, C);
        op_linear(k, nb, t->key.w, t->key.b, gb * T, C, C);
        op_linear(v, nb, t->value.w, t->value.b, gb * T, C, C);
        op_attention(g + (size_t)b0 * T * C, q, k, v, gb, T, T, 1, C, scale, NULL, 0, scratch);
    }
    /* proj_attn, transpose back, + residual (rescale_output_factor 1) */
    sd_tokens_proj_add_nchw(x, g, &t->proj_attn, B, T);
    arena_reset(a, mark);
    return OIR_OK;
}

/* UNetMidBlock2D: resnet, attention, resnet. x (B, C, H, W) -> out; tmp is
 * a second buffer of the same size, distinct from x and out (out may be x). */
static size_t mid_arena_bytes(const vae_mid_block *mb, int B, int H, int W) {
    size_t r = sd_resnet_arena_bytes(&mb->resnets[0], B, H, W);
    size_t t = attention_arena_bytes(B, H * W, mb->attn.c);
    return r > t ? r : t;
}

static int mid_forward(const vae_mid_block *mb, arena *a, float *out, float *tmp, const float *x,
                       int B, int H, int W, int groups, oir_error *err) {
    int rc =
        sd_resnet_forward(&mb->resnets[0], a, tmp, x, NULL, B, H, W, groups, VAE_EPS, 1.0f, err);
    if (!rc) rc = attention_forward(&mb->attn, a, tmp, B, H * W, groups, err);
    if (!rc)
        rc = sd_resnet_forward(&mb->resnets[1], a, out, tmp, NULL, B, H, W, groups, VAE_EPS, 1.0f,
                               err);
    return rc;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

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

size_t vae_encode_arena_bytes(const vae_model *m, int B, int H, int W) {
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, f = vae_downscale(c);
    if (B < 1 || H < 1 || W < 1) return 0;
    size_t bytes = 2 * sd_floats_bytes((size_t)B * enc_pingpong_floats(m, H, W));
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
    tmp = max_sz(tmp, mid_arena_bytes(&m->enc_mid, B, hh, ww));
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

int vae_encode_mean_tap(const vae_model *m, arena *a, const float *image, int B, int H, int W,
                        float *mean_out, const vae_tap *tap, oir_error *err) {
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
    size_t mark = arena_mark(a), pp = (size_t)B * enc_pingpong_floats(m, H, W);
    int rc = OIR_OK, p = 0;
    float *pbuf[2] = {arena_floats(a, pp), arena_floats(a, pp)};
    if (!pbuf[0] || !pbuf[1]) {
        rc = sd_arena_fail(err, "vae encode", a, mark, vae_encode_arena_bytes(m, B, H, W));
        goto cleanup;
    }
    /* sample = conv_in(x) */
    if ((rc = sd_conv_forward(&m->enc_conv_in, a, pbuf[0], image, B, H, W, 1, 1, err)))
        goto cleanup;
    float *cur = pbuf[0];
    char name[32];
    sd_tap_out(tap, "encoder.conv_in", cur, (size_t)B * m->enc_conv_in.c_out * H * W);
    p = 1;
    int hh = H, ww = W;
    /* down_blocks: DownEncoderBlock2D */
    for (int i = 0; i < n; i++) {
        const vae_down_block *d = &m->enc_down[i];
        for (int j = 0; j < c->layers_per_block; j++) {
            if ((rc = sd_resnet_forward(&d->resnets[j], a, pbuf[p], cur, NULL, B, hh, ww, G,
                                        VAE_EPS, 1.0f, err)))
                goto cleanup;
            cur = pbuf[p], p ^= 1;
        }
        if (d->has_downsample) {
            if ((rc = sd_downsample_forward(&d->downsample, a, pbuf[p], cur, B, hh, ww, 0, err)))
                goto cleanup;
            cur = pbuf[p], p ^= 1;
            hh /= 2, ww /= 2;
        }
        snprintf(name, sizeof name, "encoder.down.%d", i);
        sd_tap_out(tap, name, cur, (size_t)B * d->c_out * hh * ww);
    }
    /* mid_block (x and out share cur: x is consumed by its first resnet) */
    if ((rc = mid_forward(&m->enc_mid, a, cur, pbuf[p], cur, B, hh, ww, G, err))) goto cleanup;
    sd_tap_out(tap, "encoder.mid", cur, (size_t)B * c->block_out_channels[n - 1] * hh * ww);
    /* conv_out(silu(conv_norm_out(sample))), then quant_conv: only its first
     * L output channels (the mean) are computed */
    {
        int cl = c->block_out_channels[n - 1];
        size_t hw = (size_t)hh * ww;
        float *t = arena_floats(a, (size_t)B * cl * hw);          /* (B, C_last, h, w) */
        float *moments = arena_floats(a, (size_t)B * 2 * L * hw); /* (B, 2L, h, w) */
        if (!t || !moments) {
            rc = sd_arena_fail(err, "vae encode", a, mark, vae_encode_arena_bytes(m, B, H, W));
            goto cleanup;
        }
        op_group_norm(t, cur, m->enc_norm_out.w, m->enc_norm_out.b, B, cl, (int)hw, G, VAE_EPS, 1);
        if ((rc = sd_conv_forward(&m->enc_conv_out, a, moments, t, B, hh, ww, 1, 1, err)))
            goto cleanup;
        sd_tap_out(tap, "encoder.conv_out", moments, (size_t)B * 2 * L * hw);
        sd_conv mean_conv = m->quant_conv; /* rows [0, L) of (2L, 2L, 1, 1) */
        mean_conv.c_out = L;
        if ((rc = sd_conv_forward(&mean_conv, a, mean_out, moments, B, hh, ww, 1, 0, err)))
            goto cleanup;
    }
cleanup:
    if (rc) oir_error_prefix(err, "vae_encode_mean");
    arena_reset(a, mark);
    return rc;
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
    int n = c->n_blocks, L = c->latent_channels, f = vae_downscale(c);
    if (B < 1 || h < 1 || w < 1) return 0;
    size_t bytes = 2 * sd_floats_bytes((size_t)B * dec_pingpong_floats(m, h, w)) +
                   sd_floats_bytes((size_t)B * L * h * w);
    size_t tmp = sd_conv_arena_bytes(&m->dec_conv_in, h, w, 1, 1);
    tmp = max_sz(tmp, mid_arena_bytes(&m->dec_mid, B, h, w));
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
    if (!m || !a || !latent || !image_out)
        return oir_fail(err, OIR_E_ARG, "vae_decode: NULL argument");
    const vae_config *c = &m->cfg;
    int n = c->n_blocks, L = c->latent_channels, G = c->norm_num_groups;
    if (B < 1 || h < 1 || w < 1)
        return oir_fail(err, OIR_E_ARG, "vae_decode: batch %d, latent %dx%d: all must be >= 1", B,
                        h, w);
    size_t mark = arena_mark(a), pp = (size_t)B * dec_pingpong_floats(m, h, w);
    int rc = OIR_OK, p;
    float *pbuf[2] = {arena_floats(a, pp), arena_floats(a, pp)};
    float *z = arena_floats(a, (size_t)B * L * h * w); /* (B, L, h, w) */
    if (!pbuf[0] || !pbuf[1] || !z) {
        rc = sd_arena_fail(err, "vae decode", a, mark, vae_decode_arena_bytes(m, B, h, w));
        goto cleanup;
    }
    /* z = post_quant_conv(z); sample = decoder.conv_in(z) */
    int cl = c->block_out_channels[n - 1];
    char name[32];
    if ((rc = sd_conv_forward(&m->post_quant_conv, a, z, latent, B, h, w, 1, 0, err))) goto cleanup;
    sd_tap_out(tap, "post_quant_conv", z, (size_t)B * L * h * w);
    if ((rc = sd_conv_forward(&m->dec_conv_in, a, pbuf[0], z, B, h, w, 1, 1, err))) goto cleanup;
    sd_tap_out(tap, "decoder.conv_in", pbuf[0], (size_t)B * cl * h * w);
    /* mid_block (x and out may share a buffer: x is consumed by its first resnet) */
    if ((rc = mid_forward(&m->dec_mid, a, pbuf[0], pbuf[1], pbuf[0], B, h, w, G, err)))
        goto cleanup;
    sd_tap_out(tap, "decoder.mid", pbuf[0], (size_t)B * cl * h * w);
    float *cur = pbuf[0];
    p = 1;
    int hh = h, ww = w;
    /* up_blocks: UpDecoderBlock2D */
    for (int i = 0; i < n; i++) {
        const vae_up_block *u = &m->dec_up[i];
        for (int j = 0; j < c->layers_per_block + 1; j++) {
            if ((rc = sd_resnet_forward(&u->resnets[j], a, pbuf[p], cur, NULL, B, hh, ww, G,
                                        VAE_EPS, 1.0f, err)))
                goto cleanup;
            cur = pbuf[p], p ^= 1;
        }
        if (u->has_upsample) {
            if ((rc = sd_upsample_forward(&u->upsample, a, pbuf[p], cur, B, hh, ww, err)))
                goto cleanup;
            cur = pbuf[p], p ^= 1;
            hh *= 2, ww *= 2;
        }
        snprintf(name, sizeof name, "decoder.up.%d", i);
        sd_tap_out(tap, name, cur, (size_t)B * u->c_out * hh * ww);
    }
    /* conv_out(silu(conv_norm_out(sample))) */
    {
        int c0 = c->block_out_channels[0];
        float *t = arena_floats(a, (size_t)B * c0 * hh * ww); /* (B, C0, H, W) */
        if (!t) {
            rc = sd_arena_fail(err, "vae decode", a, mark, vae_decode_arena_bytes(m, B, h, w));
            goto cleanup;
        }
        op_group_norm(t, cur, m->dec_norm_out.w, m->dec_norm_out.b, B, c0, hh * ww, G, VAE_EPS, 1);
        rc = sd_conv_forward(&m->dec_conv_out, a, image_out, t, B, hh, ww, 1, 1, err);
    }
cleanup:
    if (rc) oir_error_prefix(err, "vae_decode");
    arena_reset(a, mark);
    return rc;
}

size_t vae_arena_bytes(const vae_model *m, int B, int H, int W) {
    int f = vae_downscale(&m->cfg);
    return max_sz(vae_encode_arena_bytes(m, B, H, W), vae_decode_arena_bytes(m, B, H / f, W / f));
}
