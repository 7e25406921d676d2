/* UNet2DConditionModel forward; see unet.h. Read side by side with diffusers
 * 0.16.1: models/unet_2d_condition.py (UNet2DConditionModel.forward),
 * unet_2d_blocks.py (CrossAttnDownBlock2D, DownBlock2D,
 * UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D, UpBlock2D), transformer_2d.py
 * (Transformer2DModel), attention.py (BasicTransformerBlock, GEGLU) and
 * resnet.py (in sd_blocks.c). */
#include "models/unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "models/attn_capture.h"
#include "models/model_config.h"
#include "models/unet_impl.h"

/* Token rows per attention / feed-forward chunk: bounds the q/k/v and GEGLU
 * buffers for large batches while keeping GEMMs big enough for BLAS. */
#define UNET_CHUNK_ROWS 4096
#define TRANSFORMER_GN_EPS 1e-6f /* Transformer2DModel.norm: GroupNorm(eps=1e-6) */
#define TRANSFORMER_LN_EPS 1e-5f /* nn.LayerNorm default */

/* ---- config ------------------------------------------------------------- */

/* diffusers 0.16.1 UNet2DConditionModel.__init__ defaults */
static unet_config config_defaults(void) {
    unet_config c;
    memset(&c, 0, sizeof c);
    c.in_channels = 4, c.out_channels = 4, c.n_blocks = 4;
    int boc[4] = {320, 640, 1280, 1280}, da[4] = {1, 1, 1, 0}, ua[4] = {0, 1, 1, 1};
    for (int i = 0; i < 4; i++) {
        c.block_out_channels[i] = boc[i], c.layers_per_block[i] = 2, c.heads[i] = 8;
        c.down_attn[i] = da[i], c.up_attn[i] = ua[i];
    }
    c.has_mid = 1;
    c.cross_attention_dim = 1280;
    c.norm_num_groups = 32, c.norm_eps = 1e-5f;
    c.use_linear_projection = 0, c.flip_sin_to_cos = 1, c.freq_shift = 0.0f;
    c.time_embed_dim = 4 * 320;
    c.conv_in_kernel = 3, c.conv_out_kernel = 3;
    c.mid_block_scale_factor = 1.0f;
    return c;
}

unet_config unet_config_sd1(void) {
    unet_config c = config_defaults();
    c.cross_attention_dim = 768;
    return c;
}

/* Block type names; diffusers strips a "UNetRes" prefix first. */
static const char *strip_res(const char *s) { return strncmp(s, "UNetRes", 7) == 0 ? s + 7 : s; }

static int parse_types(const model_config *mc, const char *key, const char *attn_name,
                       const char *plain_name, int *attn, int *n, oir_error *err) {
    const char *types[UNET_MAX_BLOCKS];
    int rc = model_config_strs(mc, key, types, UNET_MAX_BLOCKS, n, err);
    if (rc) return rc;
    for (int i = 0; i < *n; i++) {
        const char *t = types[i] ? strip_res(types[i]) : "null";
        if (strcmp(t, attn_name) == 0)
            attn[i] = 1;
        else if (strcmp(t, plain_name) == 0)
            attn[i] = 0;
        else
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: %s[%d] = \"%s\" is not supported (only %s, %s: Stable Diffusion "
                            "1.x/2.x UNets)",
                            mc->where, key, i, types[i] ? types[i] : "null", attn_name, plain_name);
    }
    return OIR_OK;
}

/* A per-block int field: an int (broadcast) or a list of n entries. */
static int per_block(const model_config *mc, const char *key, int *out, int n, oir_error *err) {
    int vals[UNET_MAX_BLOCKS + 2], cnt, is_list;
    int rc = model_config_ints(mc, key, vals, UNET_MAX_BLOCKS + 2, &cnt, &is_list, err);
    if (rc || cnt == 0) return rc;
    if (is_list && cnt != n)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: %s has %d entries but down_block_types has %d (they must match)",
                        mc->where, key, cnt, n);
    for (int i = 0; i < n; i++) out[i] = is_list ? vals[i] : vals[0];
    return OIR_OK;
}

int unet_config_from_json(unet_config *cfg, cJSON *root, const char *where, oir_error *err) {
    model_config mcv, *mc = &mcv;
    model_config_wrap(mc, root, where);
    unet_config c = config_defaults();
    int rc, n_down = 4, n_up = 4, n_boc = 4, v;
    const char *s;
    if (!cJSON_IsObject(root)) return oir_fail(err, OIR_E_FORMAT, "%s: not a JSON object", where);

    /* features outside the SD 1.x/2.x UNet */
    if ((rc = model_config_require_str(mc, "time_embedding_type", "positional", err))) return rc;
    if ((rc = model_config_require_str(mc, "resnet_time_scale_shift", "default", err))) return rc;
    const char *nulls[] = {
        "class_embed_type",   "num_class_embeds",      "addition_embed_type",
        "encoder_hid_dim",    "time_embedding_act_fn", "timestep_post_act",
        "time_cond_proj_dim", "cross_attention_norm",  "projection_class_embeddings_input_dim"};
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        if ((rc = model_config_require_null(mc, nulls[i], err))) return rc;
    const char *falses[] = {"center_input_sample",     "only_cross_attention",
                            "dual_cross_attention",    "resnet_skip_time_act",
                            "class_embeddings_concat", "mid_block_only_cross_attention"};
    for (size_t i = 0; i < sizeof falses / sizeof *falses; i++)
        if ((rc = model_config_require_false(mc, falses[i], err))) return rc;
    float f;
    if ((rc = model_config_float(mc, "resnet_out_scale_factor", 1.0f, &f, err))) return rc;
    if (f != 1.0f)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: resnet_out_scale_factor = %g is not supported (only 1)", where, f);
    if ((rc = model_config_int(mc, "downsample_padding", 1, &v, err))) return rc;
    if (v != 1)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: downsample_padding = %d is not supported (only 1)", where, v);
    /* SDXL-era key that 0.16.1 would silently ignore */
    int tl[UNET_MAX_BLOCKS], ntl, tl_list;
    if ((rc = model_config_ints(mc, "transformer_layers_per_block", tl, UNET_MAX_BLOCKS, &ntl,
                                &tl_list, err)))
        return rc;
    for (int i = 0; i < ntl; i++)
        if (tl[i] != 1)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: transformer_layers_per_block = %d is not supported (only 1)",
                            where, tl[i]);
    if ((rc = model_config_str(mc, "act_fn", "silu", &s, err))) return rc;
    if (strcmp(s, "silu") != 0)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: act_fn = \"%s\" is not supported (only \"silu\")", where, s);

    /* blocks */
    if (model_config_has(mc, "down_block_types")) {
        memset(c.down_attn, 0, sizeof c.down_attn);
        if ((rc = parse_types(mc, "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D",
                              c.down_attn, &n_down, err)))
            return rc;
    }
    if (model_config_has(mc, "up_block_types")) {
        memset(c.up_attn, 0, sizeof c.up_attn);
        if ((rc = parse_types(mc, "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D", c.up_attn,
                              &n_up, err)))
            return rc;
    }
    if (n_down < 1) return oir_fail(err, OIR_E_FORMAT, "%s: down_block_types is empty", where);
    if (n_up != n_down)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: up_block_types has %d entries but down_block_types has %d (they must "
                        "match)",
                        where, n_up, n_down);
    if (model_config_has(mc, "block_out_channels")) {
        int is_list;
        if ((rc = model_config_ints(mc, "block_out_channels", c.block_out_channels, UNET_MAX_BLOCKS,
                                    &n_boc, &is_list, err)))
            return rc;
        if (!is_list)
            return oir_fail(err, OIR_E_FORMAT, "%s: block_out_channels: expected a list", where);
    }
    if (n_boc != n_down)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: block_out_channels has %d entries but down_block_types has %d (they "
                        "must match)",
                        where, n_boc, n_down);
    c.n_blocks = n_down;
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) c.layers_per_block[i] = 2, c.heads[i] = 8;
    if ((rc = per_block(mc, "layers_per_block", c.layers_per_block, c.n_blocks, err))) return rc;
    if ((rc = per_block(mc, "attention_head_dim", c.heads, c.n_blocks, err))) return rc;
    int cad[UNET_MAX_BLOCKS];
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) cad[i] = c.cross_attention_dim;
    if ((rc = per_block(mc, "cross_attention_dim", cad, c.n_blocks, err))) return rc;
    for (int i = 1; i < c.n_blocks; i++)
        if (cad[i] != cad[0])
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: cross_attention_dim differs between blocks (%d vs %d); one value "
                            "is supported",
                            where, cad[0], cad[i]);
    c.cross_attention_dim = cad[0];

    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(root, "mid_block_type");
    if (mid && cJSON_IsNull(mid)) {
        c.has_mid = 0;
    } else if (mid) {
        if (!cJSON_IsString(mid))
            return oir_fail(err, OIR_E_FORMAT, "%s: mid_block_type: expected a string or null",
                            where);
        if (strcmp(mid->valuestring, "UNetMidBlock2DCrossAttn") != 0)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: mid_block_type = \"%s\" is not supported (only "
                            "UNetMidBlock2DCrossAttn or null)",
                            where, mid->valuestring);
    }

    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "norm_num_groups");
    if (g && cJSON_IsNull(g))
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: norm_num_groups = null (no output norm) is not supported", where);
    if ((rc = model_config_int(mc, "in_channels", c.in_channels, &c.in_channels, err)) ||
        (rc = model_config_int(mc, "out_channels", c.out_channels, &c.out_channels, err)) ||
        (rc =
             model_config_int(mc, "norm_num_groups", c.norm_num_groups, &c.norm_num_groups, err)) ||
        (rc = model_config_float(mc, "norm_eps", c.norm_eps, &c.norm_eps, err)) ||
        (rc = model_config_bool(mc, "use_linear_projection", 0, &c.use_linear_projection, err)) ||
        (rc = model_config_bool(mc, "flip_sin_to_cos", 1, &c.flip_sin_to_cos, err)) ||
        (rc = model_config_float(mc, "freq_shift", 0.0f, &c.freq_shift, err)) ||
        (rc = model_config_int(mc, "conv_in_kernel", 3, &c.conv_in_kernel, err)) ||
        (rc = model_config_int(mc, "conv_out_kernel", 3, &c.conv_out_kernel, err)) ||
        (rc = model_config_float(mc, "mid_block_scale_factor", 1.0f, &c.mid_block_scale_factor,
                                 err)))
        return rc;
    if ((rc = model_config_int(mc, "time_embedding_dim", 4 * c.block_out_channels[0],
                               &c.time_embed_dim, err)))
        return rc;
    if ((rc = unet_config_check(&c, where, err))) return rc;
    *cfg = c;
    return OIR_OK;
}

int unet_config_load(unet_config *cfg, const char *config_path, oir_error *err) {
    model_config mc;
    int rc = model_config_read(&mc, config_path, err);
    if (rc) return rc;
    rc = unet_config_from_json(cfg, mc.root, config_path, err);
    model_config_free(&mc);
    return rc;
}

int unet_config_check(const unet_config *c, const char *where, oir_error *err) {
    int n = c->n_blocks;
    if (n < 1 || n > UNET_MAX_BLOCKS)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %d blocks, 1 to %d supported", where, n,
                        UNET_MAX_BLOCKS);
    struct {
        const char *name;
        int v, max;
    } sizes[] = {
        {"in_channels", c->in_channels, CFG_MAX_IMAGE_CHANNELS},
        {"out_channels", c->out_channels, CFG_MAX_IMAGE_CHANNELS},
        {"norm_num_groups", c->norm_num_groups, CFG_MAX_WIDTH},
        {"cross_attention_dim", c->cross_attention_dim, CFG_MAX_WIDTH},
        {"time_embedding_dim", c->time_embed_dim, 4 * CFG_MAX_WIDTH}, /* default 4 x channels */
        {"conv_in_kernel", c->conv_in_kernel, CFG_MAX_KERNEL},
        {"conv_out_kernel", c->conv_out_kernel, CFG_MAX_KERNEL},
    };
    int rc;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if ((rc = model_config_check_size(where, sizes[i].name, sizes[i].v, sizes[i].max, err)))
            return rc;
    if ((rc = model_config_check_float(where, "norm_eps", c->norm_eps, 0, 0, 1, err)) ||
        (rc = model_config_check_float(where, "mid_block_scale_factor", c->mid_block_scale_factor, 0,
                                       0, CFG_MAX_FACTOR, err)) ||
        (rc = model_config_check_float(where, "freq_shift", c->freq_shift, -CFG_MAX_FACTOR, 1,
                                       CFG_MAX_FACTOR, err)))
        return rc;
    if (c->conv_in_kernel % 2 == 0 || c->conv_out_kernel % 2 == 0)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: conv_in_kernel = %d, conv_out_kernel = %d: odd sizes only", where,
                        c->conv_in_kernel, c->conv_out_kernel);
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        char field[64];
        snprintf(field, sizeof field, "block_out_channels[%d]", i);
        if ((rc = model_config_check_size(where, field, ch, CFG_MAX_WIDTH, err))) return rc;
        if (ch % c->norm_num_groups != 0)
            return oir_fail(
                err, OIR_E_FORMAT,
                "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups = %d", where,
                i, ch, c->norm_num_groups);
        if (c->layers_per_block[i] < 1 || c->layers_per_block[i] > UNET_MAX_LAYERS)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: layers_per_block[%d] = %d, 1 to %d supported", where, i,
                            c->layers_per_block[i], UNET_MAX_LAYERS);
        int attn = c->down_attn[i] || c->up_attn[n - 1 - i] || (c->has_mid && i == n - 1);
        snprintf(field, sizeof field, "attention_head_dim[%d]", i);
        if (attn && (rc = model_config_check_size(where, field, c->heads[i], CFG_MAX_HEADS, err)))
            return rc;
        if (attn && (c->heads[i] < 1 || ch % c->heads[i] != 0))
            return oir_fail(err, OIR_E_FORMAT,
                            "%s: attention_head_dim[%d] = %d (the number of heads) does not divide "
                            "block_out_channels[%d] = %d",
                            where, i, c->heads[i], i, ch);
    }
    /* The up blocks' resnet widths follow diffusers' formula; the skips they
     * concatenate come off the down path's stack: both must agree. */
    int stack_c[1 + UNET_MAX_BLOCKS * (UNET_MAX_LAYERS + 1)],
        stack_lv[1 + UNET_MAX_BLOCKS * (UNET_MAX_LAYERS + 1)];
    int sp = 0;
    stack_c[sp] = c->block_out_channels[0], stack_lv[sp++] = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < c->layers_per_block[i]; j++)
            stack_c[sp] = c->block_out_channels[i], stack_lv[sp++] = i;
        if (i < n - 1) stack_c[sp] = c->block_out_channels[i], stack_lv[sp++] = i + 1;
    }
    for (int i = 0; i < n; i++) {
        int b = n - 1 - i, lv = n - 1 - i;
        int out_c = c->block_out_channels[b];
        int in_c = c->block_out_channels[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        int layers = c->layers_per_block[b] + 1;
        for (int j = 0; j < layers; j++) {
            int want = j == layers - 1 ? in_c : out_c;
            if (sp == 0 || stack_c[sp - 1] != want || stack_lv[sp - 1] != lv)
                return oir_fail(err, OIR_E_FORMAT,
                                "%s: layers_per_block / block_out_channels: up block %d resnet %d "
                                "expects a %d-channel skip connection the down path does not make",
                                where, i, j, want);
            sp--;
        }
    }
    return OIR_OK;
}

/* ---- loading ------------------------------------------------------------ */

static void load_transformer(sd_params *p, unet_transformer *t, int c, int heads, int ctx_dim,
                             int linear, const char *prefix) {
    t->c = c, t->heads = heads, t->d_head = c / heads, t->ctx_dim = ctx_dim;
    sd_norm_load(p, &t->norm, c, "%s.norm", prefix);
    sd_linear_load(p, &t->proj_in, c, c, 1, !linear, "%s.proj_in", prefix);
    char tb[256];
    snprintf(tb, sizeof tb, "%s.transformer_blocks.0", prefix);
    sd_norm_load(p, &t->norm1, c, "%s.norm1", tb);
    sd_linear_load(p, &t->attn1_q, c, c, 0, 0, "%s.attn1.to_q", tb);
    sd_linear_load(p, &t->attn1_k, c, c, 0, 0, "%s.attn1.to_k", tb);
    sd_linear_load(p, &t->attn1_v, c, c, 0, 0, "%s.attn1.to_v", tb);
    sd_linear_load(p, &t->attn1_out, c, c, 1, 0, "%s.attn1.to_out.0", tb);
    sd_norm_load(p, &t->norm2, c, "%s.norm2", tb);
    sd_linear_load(p, &t->attn2_q, c, c, 0, 0, "%s.attn2.to_q", tb);
    sd_linear_load(p, &t->attn2_k, ctx_dim, c, 0, 0, "%s.attn2.to_k", tb);
    sd_linear_load(p, &t->attn2_v, ctx_dim, c, 0, 0, "%s.attn2.to_v", tb);
    sd_linear_load(p, &t->attn2_out, c, c, 1, 0, "%s.attn2.to_out.0", tb);
    sd_norm_load(p, &t->norm3, c, "%s.norm3", tb);
    sd_linear_load(p, &t->ff_in, c, 8 * c, 1, 0, "%s.ff.net.0.proj", tb);
    sd_linear_load(p, &t->ff_out, 4 * c, c, 1, 0, "%s.ff.net.2", tb);
    sd_linear_load(p, &t->proj_out, c, c, 1, !linear, "%s.proj_out", prefix);
}

int unet_load_config(unet_model **out, const unet_config *cfg, weights *w, oir_error *err) {
    *out = NULL;
    int rc = unet_config_check(cfg, "unet config", err);
    if (rc) return rc;
    if (!w) return oir_fail(err, OIR_E_ARG, "unet_load: no weights");
    unet_model *m = calloc(1, sizeof *m);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "unet: cannot allocate the model");
    m->cfg = *cfg;
    const unet_config *c = &m->cfg;
    int n = c->n_blocks, ted = c->time_embed_dim, ctx = c->cross_attention_dim;
    int lin = c->use_linear_projection, c0 = c->block_out_channels[0];
    sd_params p = {w, 0};
    char name[256];

    sd_conv_load(&p, &m->conv_in, c->in_channels, c0, c->conv_in_kernel, 1, "conv_in");
    sd_linear_load(&p, &m->time_linear_1, c0, ted, 1, 0, "time_embedding.linear_1");
    sd_linear_load(&p, &m->time_linear_2, ted, ted, 1, 0, "time_embedding.linear_2");

    /* down: CrossAttnDownBlock2D / DownBlock2D */
    int out_c = c0;
    for (int i = 0; i < n; i++) {
        unet_down_block *d = &m->down[i];
        d->c_in = out_c, d->c_out = out_c = c->block_out_channels[i];
        d->n_layers = c->layers_per_block[i], d->has_attn = c->down_attn[i];
        d->has_downsample = i < n - 1;
        for (int j = 0; j < d->n_layers; j++) {
            snprintf(name, sizeof name, "down_blocks.%d.resnets.%d", i, j);
            sd_resnet_load(&p, &d->resnets[j], j == 0 ? d->c_in : d->c_out, d->c_out, ted, name);
            if (d->has_attn) {
                snprintf(name, sizeof name, "down_blocks.%d.attentions.%d", i, j);
                load_transformer(&p, &d->attentions[j], d->c_out, c->heads[i], ctx, lin, name);
            }
        }
        if (d->has_downsample)
            sd_conv_load(&p, &d->downsample, d->c_out, d->c_out, 3, 1,
                         "down_blocks.%d.downsamplers.0.conv", i);
    }

    /* mid: UNetMidBlock2DCrossAttn */
    int cl = c->block_out_channels[n - 1];
    if (c->has_mid) {
        sd_resnet_load(&p, &m->mid_resnets[0], cl, cl, ted, "mid_block.resnets.0");
        load_transformer(&p, &m->mid_attn, cl, c->heads[n - 1], ctx, lin, "mid_block.attentions.0");
        sd_resnet_load(&p, &m->mid_resnets[1], cl, cl, ted, "mid_block.resnets.1");
    }

    /* up: UpBlock2D / CrossAttnUpBlock2D, channels as diffusers computes them */
    out_c = c->block_out_channels[n - 1];
    for (int i = 0; i < n; i++) {
        unet_up_block *u = &m->up[i];
        int b = n - 1 - i;
        u->c_prev = out_c;
        u->c_out = out_c = c->block_out_channels[b];
        int in_c = c->block_out_channels[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        u->n_layers = c->layers_per_block[b] + 1, u->has_attn = c->up_attn[i];
        u->has_upsample = i < n - 1;
        for (int j = 0; j < u->n_layers; j++) {
            u->skip_c[j] = j == u->n_layers - 1 ? in_c : u->c_out;
            int rin = (j == 0 ? u->c_prev : u->c_out) + u->skip_c[j];
            snprintf(name, sizeof name, "up_blocks.%d.resnets.%d", i, j);
            sd_resnet_load(&p, &u->resnets[j], rin, u->c_out, ted, name);
            if (u->has_attn) {
                snprintf(name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
                load_transformer(&p, &u->attentions[j], u->c_out, c->heads[b], ctx, lin, name);
            }
        }
        if (u->has_upsample)
            sd_conv_load(&p, &u->upsample, u->c_out, u->c_out, 3, 1,
                         "up_blocks.%d.upsamplers.0.conv", i);
    }

    sd_norm_load(&p, &m->conv_norm_out, c0, "conv_norm_out");
    sd_conv_load(&p, &m->conv_out, c0, c->out_channels, c->conv_out_kernel, 1, "conv_out");

    if ((rc = sd_params_check(&p, "unet", err)) || (rc = unet_bind(m, NULL, err))) {
        unet_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int unet_load(unet_model **out, const char *config_path, weights *w, oir_error *err) {
    unet_config cfg;
    *out = NULL;
    int rc = unet_config_load(&cfg, config_path, err);
    if (rc) return rc;
    return unet_load_config(out, &cfg, w, err);
}

/* ---- Transformer2DModel ------------------------------------------------- */

/* Batch rows per attention chunk: whole samples (self-attention needs all of
 * a sample's keys), about UNET_CHUNK_ROWS token rows. */
static int attn_group(int B, int T) { return sd_attention_group(B, T, UNET_CHUNK_ROWS); }

static size_t attention_arena_bytes(int B, int T, int Tk, int C, int heads) {
    size_t G = (size_t)attn_group(B, T);
    return sd_floats_bytes(G * T * C) + 2 * sd_floats_bytes(G * Tk * C) +
           sd_floats_bytes(op_attention_scratch(T, Tk, heads, C / heads));
}

/* One forward's state on the backend. */
typedef struct {
    unet_dev *d;
    oir_backend *be;
    sd_dev_arena *a;
    be_view ones;
    const int *cls; /* (B) context classes: the first row with the same context */
} fwd;

/* Host copy of a view: its own address on a host-memory backend, else a
 * download into the model's host scratch (taps and the capture only). */
static const float *host_of(fwd *F, be_view v, size_t n, size_t at, oir_error *err) {
    const float *p = be_host_ptr(F->be, v);
    if (p) return p;
    unet_dev *d = F->d;
    if (d->hbuf_cap < at + n) {
        float *nh = realloc(d->hbuf, (at + n) * sizeof(float));
        if (!nh) {
            oir_fail(err, OIR_E_NOMEM, "unet: out of memory for a download");
            return NULL;
        }
        d->hbuf = nh, d->hbuf_cap = at + n;
    }
    if (be_download(F->be, d->hbuf + at, v, n * sizeof(float), err)) return NULL;
    return d->hbuf + at;
}

static int tap_dev(fwd *F, const sd_tap *tap, const char *name, be_view v, size_t n, oir_error *err) {
    if (!tap || !tap->fn) return OIR_OK;
    const float *p = host_of(F, v, n, 0, err);
    if (!p) return err ? err->code : OIR_E_INTERNAL;
    tap->fn(tap->user, name, p, n);
    return OIR_OK;
}

/* Cross-attention keys and values of g rows of text context (g, Tk, C_kv).
 * The rows of a batch mostly repeat a few contexts (CFG: the negative and
 * the positive prompt for every candidate), so each distinct context is
 * projected once and copied to the rows that repeat it; with 77 context
 * tokens against 16-64 image tokens at the tiny model's attention levels,
 * the projections would otherwise be most of the attention's work. cls: the
 * rows' context classes (computed once per forward on the host input). */
static void context_kv(fwd *F, be_view k, be_view v, be_view ctx, const sd_linear *to_k, const sd_linear *to_v,
                       int g, int Tk, const int *cls) {
    int Ckv = to_k->in, C = to_k->out;
    size_t ctx_n = (size_t)Tk * Ckv, kv_n = (size_t)Tk * C;
    for (int i = 0; i < g;) {
        int same = -1;
        for (int j = 0; j < i && same < 0; j++)
            if (cls[i] == cls[j]) same = j;
        if (same >= 0) {
            be_copy(F->be, be_view_f(k, i * kv_n), be_view_f(k, same * kv_n), kv_n * sizeof(float));
            be_copy(F->be, be_view_f(v, i * kv_n), be_view_f(v, same * kv_n), kv_n * sizeof(float));
            i++;
            continue;
        }
        /* a run of rows whose contexts are new: projected together */
        int e = i + 1;
        for (; e < g; e++) {
            int seen = 0;
            for (int j = 0; j < e && !seen; j++) seen = cls[e] == cls[j];
            if (seen) break;
        }
        be_linear(F->be, be_view_f(k, i * kv_n), be_view_f(ctx, i * ctx_n), to_k->bw, to_k->bb, (e - i) * Tk,
                  Ckv, C);
        be_linear(F->be, be_view_f(v, i * kv_n), be_view_f(ctx, i * ctx_n), to_v->bw, to_v->bb, (e - i) * Tk,
                  Ckv, C);
        i = e;
    }
}

/* Where a cross-attention layer reports to an attention capture: the
 * capture, the layer's diffusers name and its token grid (gh, gw). NULL
 * everywhere else (self-attention, unselected layers, no capture). */
typedef struct {
    attn_capture *cap;
    char name[48];
    int gh, gw;
} xattn_site;

/* Attention (diffusers AttnProcessor), added onto the residual stream:
 *   h (B, T, C) += to_out(softmax(q k^T / sqrt(d)) v),
 *   q = to_q(n), k = to_k(src), v = to_v(src).
 * n (B, T, C) holds the normed hidden states and is overwritten; src
 * (B, Tk, C_kv) is n itself for self-attention (self) or the text context.
 * site (or NULL): the capture that records this layer's probabilities. */
static int attention_add(fwd *F, const sd_linear *to_q, const sd_linear *to_k, const sd_linear *to_v,
                         const sd_linear *to_out, int heads, be_view h, be_view n, be_view src, int self,
                         int B, int T, int Tk, const xattn_site *site, oir_error *err) {
    int C = to_q->out, Ckv = to_k->in, d = C / heads, G = attn_group(B, T);
    oir_backend *be = F->be;
    size_t mark = F->a->used;
    be_view q, k, v;
    if (!sd_dalloc(F->a, (size_t)G * T * C, &q) || !sd_dalloc(F->a, (size_t)G * Tk * C, &k) ||
        !sd_dalloc(F->a, (size_t)G * Tk * C, &v)) {
        int rc = sd_dev_arena_fail(err, "unet attention", F->a);
        F->a->used = mark;
        return rc;
    }
    float scale = (float)(1.0 / sqrt((double)d)); /* dim_head ** -0.5 */
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        be_view nb = be_view_f(n, (size_t)b0 * T * C);
        be_view sb = be_view_f(src, (size_t)b0 * Tk * Ckv);
        be_linear(be, q, nb, to_q->bw, to_q->bb, g * T, C, C);
        if (self) {
            be_linear(be, k, sb, to_k->bw, to_k->bb, g * Tk, Ckv, C);
            be_linear(be, v, sb, to_v->bw, to_v->bb, g * Tk, Ckv, C);
        } else {
            context_kv(F, k, v, sb, to_k, to_v, g, Tk, F->cls + b0);
        }
        /* q, k, v are computed: nb is free to take the attention output */
        be_attention(be, nb, q, k, v, g, T, Tk, heads, d, scale, BE_NONE, 0);
        for (int r = 0; site && r < g; r++) /* q and k are still intact */
            if (site->cap->row == ATTN_CAPTURE_ALL_ROWS || site->cap->row == b0 + r) {
                size_t qn = (size_t)T * C, kn = (size_t)Tk * C;
                const float *qh = host_of(F, be_view_f(q, r * qn), qn, 0, err);
                const float *kh = qh ? host_of(F, be_view_f(k, r * kn), kn, qn, err) : NULL;
                if (!kh) {
                    F->a->used = mark;
                    return err ? err->code : OIR_E_INTERNAL;
                }
                attn_capture_layer(site->cap, site->name, b0 + r, qh, kh, site->gh, site->gw, Tk, heads, d);
            }
        sd_linear_add_be(be, be_view_f(h, (size_t)b0 * T * C), nb, to_out, g * T, F->ones);
    }
    F->a->used = mark;
    return OIR_OK;
}

static int ff_chunk(int rows) { return rows < UNET_CHUNK_ROWS ? rows : UNET_CHUNK_ROWS; }

static size_t ff_arena_bytes(int rows, int C) {
    size_t R = (size_t)ff_chunk(rows);
    return sd_floats_bytes(R * 8 * C) + sd_floats_bytes(R * 4 * C);
}

/* FeedForward(GEGLU): h (rows, C) += net.2(geglu(net.0.proj(n))), in row chunks. */
static int feed_forward_add(fwd *F, const unet_transformer *t, be_view h, be_view n, int rows, oir_error *err) {
    int C = t->c, R = ff_chunk(rows);
    size_t mark = F->a->used;
    be_view f, g;
    if (!sd_dalloc(F->a, (size_t)R * 8 * C, &f) || !sd_dalloc(F->a, (size_t)R * 4 * C, &g)) {
        int rc = sd_dev_arena_fail(err, "unet feed-forward", F->a);
        F->a->used = mark;
        return rc;
    }
    for (int r0 = 0; r0 < rows; r0 += R) {
        int r = rows - r0 < R ? rows - r0 : R;
        be_linear(F->be, f, be_view_f(n, (size_t)r0 * C), t->ff_in.bw, t->ff_in.bb, r, C, 8 * C);
        be_geglu(F->be, g, f, r, 4 * C);
        sd_linear_add_be(F->be, be_view_f(h, (size_t)r0 * C), g, &t->ff_out, r, F->ones);
    }
    F->a->used = mark;
    return OIR_OK;
}

static size_t transformer_arena_bytes(const unet_transformer *t, int B, int T, int L) {
    size_t BTC = (size_t)B * T * t->c;
    size_t s1 = attention_arena_bytes(B, T, T, t->c, t->heads);
    size_t s2 = attention_arena_bytes(B, T, L, t->c, t->heads);
    size_t s3 = ff_arena_bytes(B * T, t->c);
    size_t s = s1 > s2 ? s1 : s2;
    return 2 * sd_floats_bytes(BTC) + (s > s3 ? s : s3);
}

/* Transformer2DModel (continuous input, one BasicTransformerBlock), in place:
 * x (B, C, H, W) <- proj_out(block(proj_in(norm(x)))) + x, T = H*W tokens,
 * ctx (B, L, ctx_dim). site: attn2's capture, or NULL. */
static int transformer_forward(fwd *F, const unet_transformer *t, be_view x, be_view ctx, int B, int T, int L,
                               int groups, const xattn_site *site, oir_error *err) {
    int C = t->c, rc;
    oir_backend *be = F->be;
    size_t mark = F->a->used;
    be_view h, n;
    if (!sd_dalloc(F->a, (size_t)B * T * C, &h) || !sd_dalloc(F->a, (size_t)B * T * C, &n)) {
        rc = sd_dev_arena_fail(err, "unet transformer", F->a);
        F->a->used = mark;
        return rc;
    }
    /* hidden_states = self.norm(hidden_states) -- into h as NCHW scratch */
    be_group_norm(be, h, x, t->norm.bw, t->norm.bb, B, C, T, groups, TRANSFORMER_GN_EPS, 0);
    /* permute(0, 2, 3, 1) then proj_in: for a 1x1 conv or a Linear, the same product */
    be_nchw_to_nhwc(be, n, h, B, C, T);
    be_linear(be, h, n, t->proj_in.bw, t->proj_in.bb, B * T, C, C);

    /* BasicTransformerBlock: 1. self-attention */
    be_layer_norm(be, n, h, t->norm1.bw, t->norm1.bb, B * T, C, TRANSFORMER_LN_EPS, 0);
    if ((rc = attention_add(F, &t->attn1_q, &t->attn1_k, &t->attn1_v, &t->attn1_out, t->heads, h, n, n, 1, B,
                            T, T, NULL, err)))
        goto cleanup;
    /* 2. cross-attention on the text context */
    be_layer_norm(be, n, h, t->norm2.bw, t->norm2.bb, B * T, C, TRANSFORMER_LN_EPS, 0);
    if ((rc = attention_add(F, &t->attn2_q, &t->attn2_k, &t->attn2_v, &t->attn2_out, t->heads, h, n, ctx, 0,
                            B, T, L, site, err)))
        goto cleanup;
    /* 3. feed-forward */
    be_layer_norm(be, n, h, t->norm3.bw, t->norm3.bb, B * T, C, TRANSFORMER_LN_EPS, 0);
    if ((rc = feed_forward_add(F, t, h, n, B * T, err))) goto cleanup;

    /* proj_out, back to NCHW, + residual: x (C, T) += W_out @ h^T + b per row */
    sd_tokens_proj_add_nchw_be(be, x, h, &t->proj_out, B, T);
    rc = OIR_OK;
cleanup:
    F->a->used = mark;
    return rc;
}

/* ---- the pass ----------------------------------------------------------- */

#define MAX_SKIPS (1 + UNET_MAX_BLOCKS * (UNET_MAX_LAYERS + 1))

typedef struct {
    int n;
    int c[MAX_SKIPS], hh[MAX_SKIPS], ww[MAX_SKIPS];
} skip_plan;

/* The down path's outputs, in order: conv_in, then each resnet(+attention)
 * and each downsampler. Every one is kept for the up path. */
static void plan_skips(const unet_model *m, int h, int w, skip_plan *s) {
    const unet_config *c = &m->cfg;
    s->n = 0;
    s->c[s->n] = c->block_out_channels[0], s->hh[s->n] = h, s->ww[s->n++] = w;
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_down_block *d = &m->down[i];
        for (int j = 0; j < d->n_layers; j++)
            s->c[s->n] = d->c_out, s->hh[s->n] = h, s->ww[s->n++] = w;
        if (d->has_downsample) {
            h /= 2, w /= 2;
            s->c[s->n] = d->c_out, s->hh[s->n] = h, s->ww[s->n++] = w;
        }
    }
}

/* Largest (B=1) hidden state of the mid and up paths: the ping-pong buffers. */
static size_t pingpong_floats(const unet_model *m, int h, int w) {
    const unet_config *c = &m->cfg;
    int f = 1 << (c->n_blocks - 1);
    int hh = h / f, ww = w / f;
    size_t mx = (size_t)c->block_out_channels[c->n_blocks - 1] * hh * ww;
    for (int i = 0; i < c->n_blocks; i++) {
        const unet_up_block *u = &m->up[i];
        size_t s = (size_t)u->c_out * hh * ww;
        if (s > mx) mx = s;
        if (u->has_upsample) {
            hh *= 2, ww *= 2;
            s = (size_t)u->c_out * hh * ww;
            if (s > mx) mx = s;
        }
    }
    return mx;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

size_t unet_arena_bytes(const unet_model *m, int B, int h, int w, int ctx_len) {
    const unet_config *c = &m->cfg;
    int n = c->n_blocks, c0 = c->block_out_channels[0], ted = c->time_embed_dim;
    if (B < 1 || h < 1 || w < 1 || ctx_len < 1) return 0;
    /* persistent: the inputs and the output on the backend, time embedding,
     * skips, two ping-pong buffers */
    size_t bytes = sd_floats_bytes((size_t)B * c->in_channels * h * w) +
                   sd_floats_bytes((size_t)B * ctx_len * c->cross_attention_dim) +
                   sd_floats_bytes((size_t)B * c->out_channels * h * w);
    bytes += sd_floats_bytes((size_t)B * c0) + 3 * sd_floats_bytes((size_t)B * ted);
    skip_plan sp;
    plan_skips(m, h, w, &sp);
    for (int i = 0; i < sp.n; i++)
        bytes += sd_floats_bytes((size_t)B * sp.c[i] * sp.hh[i] * sp.ww[i]);
    bytes += 2 * sd_floats_bytes((size_t)B * pingpong_floats(m, h, w));

    /* temporaries: the largest of any one stage */
    size_t tmp = sd_conv_arena_bytes(&m->conv_in, h, w, 1, (c->conv_in_kernel - 1) / 2);
    int hh = h, ww = w;
    for (int i = 0; i < n; i++) {
        const unet_down_block *d = &m->down[i];
        for (int j = 0; j < d->n_layers; j++) {
            tmp = max_sz(tmp, sd_resnet_arena_bytes(&d->resnets[j], B, hh, ww));
            if (d->has_attn)
                tmp = max_sz(tmp, transformer_arena_bytes(&d->attentions[j], B, hh * ww, ctx_len));
        }
        if (d->has_downsample) {
            tmp = max_sz(tmp, sd_downsample_arena_bytes(&d->downsample, B, hh, ww, 1));
            hh /= 2, ww /= 2;
        }
    }
    if (c->has_mid) {
        tmp = max_sz(tmp, sd_resnet_arena_bytes(&m->mid_resnets[0], B, hh, ww));
        tmp = max_sz(tmp, transformer_arena_bytes(&m->mid_attn, B, hh * ww, ctx_len));
    }
    int cur_c = c->block_out_channels[n - 1];
    for (int i = 0; i < n; i++) {
        const unet_up_block *u = &m->up[i];
        for (int j = 0; j < u->n_layers; j++) {
            size_t cat = sd_floats_bytes((size_t)B * (cur_c + u->skip_c[j]) * hh * ww);
            tmp = max_sz(tmp, cat + sd_resnet_arena_bytes(&u->resnets[j], B, hh, ww));
            cur_c = u->c_out;
            if (u->has_attn)
                tmp = max_sz(tmp, transformer_arena_bytes(&u->attentions[j], B, hh * ww, ctx_len));
        }
        if (u->has_upsample) {
            tmp = max_sz(tmp, sd_upsample_arena_bytes(&u->upsample, B, hh, ww));
            hh *= 2, ww *= 2;
        }
    }
    tmp = max_sz(tmp, sd_floats_bytes((size_t)B * c0 * h * w) +
                          sd_conv_arena_bytes(&m->conv_out, h, w, 1, (c->conv_out_kernel - 1) / 2));
    return bytes + tmp + 4096;
}

/* Floats of the largest views of a transformer_forward on T tokens: h and n
 * (B, T, C), attention_add's q, k, v per group of samples, and
 * feed_forward_add's chunk (R, 8 C). */
static size_t transformer_view_floats(const unet_transformer *t, int B, int T, int L) {
    size_t C = (size_t)t->c, G = (size_t)attn_group(B, T);
    size_t v = max_sz((size_t)B * T * C, G * (size_t)(T > L ? T : L) * C);
    return max_sz(v, (size_t)ff_chunk(B * T) * 8 * C);
}

/* The largest view of a resnet (sd_resnet_forward_be): t1 (B, C_in, HW),
 * t2 and its output (B, C_out, HW). */
static size_t resnet_view_floats(const sd_resnet *r, int B, int hh, int ww) {
    return (size_t)B * (r->c_in > r->c_out ? r->c_in : r->c_out) * hh * ww;
}

/* Every operand of a forward lies inside one allocation of forward_views or
 * of the blocks it calls, so the largest allocation bounds the largest view:
 * this walks them as forward_views does (inputs, output, time embedding,
 * skips, ping-pong, each resnet's and transformer's temporaries, the
 * concatenations of the up path, the nearest-neighbour upsample of a
 * device, conv_out's input). */
size_t unet_max_view_bytes(const unet_model *m, int B, int h, int w, int ctx_len) {
    const unet_config *c = &m->cfg;
    int n = c->n_blocks, c0 = c->block_out_channels[0];
    if (B < 1 || h < 1 || w < 1 || ctx_len < 1) return 0;
    size_t v = (size_t)B * c->in_channels * h * w;
    v = max_sz(v, (size_t)B * ctx_len * c->cross_attention_dim);
    v = max_sz(v, (size_t)B * c->out_channels * h * w);
    v = max_sz(v, (size_t)B * (c0 > c->time_embed_dim ? c0 : c->time_embed_dim));
    skip_plan sp;
    plan_skips(m, h, w, &sp);
    for (int i = 0; i < sp.n; i++) v = max_sz(v, (size_t)B * sp.c[i] * sp.hh[i] * sp.ww[i]);
    v = max_sz(v, (size_t)B * pingpong_floats(m, h, w));
    int hh = h, ww = w;
    for (int i = 0; i < n; i++) {
        const unet_down_block *d = &m->down[i];
        for (int j = 0; j < d->n_layers; j++) {
            v = max_sz(v, resnet_view_floats(&d->resnets[j], B, hh, ww));
            if (d->has_attn) v = max_sz(v, transformer_view_floats(&d->attentions[j], B, hh * ww, ctx_len));
        }
        if (d->has_downsample) hh /= 2, ww /= 2;
    }
    if (c->has_mid) {
        for (int j = 0; j < 2; j++) v = max_sz(v, resnet_view_floats(&m->mid_resnets[j], B, hh, ww));
        v = max_sz(v, transformer_view_floats(&m->mid_attn, B, hh * ww, ctx_len));
    }
    int cur_c = c->block_out_channels[n - 1];
    for (int i = 0; i < n; i++) {
        const unet_up_block *u = &m->up[i];
        for (int j = 0; j < u->n_layers; j++) {
            v = max_sz(v, (size_t)B * (cur_c + u->skip_c[j]) * hh * ww);
            v = max_sz(v, resnet_view_floats(&u->resnets[j], B, hh, ww));
            cur_c = u->c_out;
            if (u->has_attn) v = max_sz(v, transformer_view_floats(&u->attentions[j], B, hh * ww, ctx_len));
        }
        if (u->has_upsample) {
            v = max_sz(v, (size_t)B * u->upsample.c_in * 4 * hh * ww);
            hh *= 2, ww *= 2;
        }
    }
    v = max_sz(v, (size_t)B * c0 * h * w);
    return v * sizeof(float);
}

int unet_max_rows_for_range(const unet_model *m, int h, int w, int ctx_len, size_t range) {
    const int most = 1 << 16;
    if (!range) return most;
    /* a view binds the aligned window that holds it: up to 256 bytes more */
    size_t fit = range > 256 ? range - 256 : 0;
    int lo = 1, hi = most; /* the answer is in [lo, hi] */
    if (unet_max_view_bytes(m, 1, h, w, ctx_len) > fit) return 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (unet_max_view_bytes(m, mid, h, w, ctx_len) <= fit)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

int unet_forward(const unet_model *m, arena *a, const float *sample, const float *timesteps,
                 const float *context, int B, int h, int w, int ctx_len, float *noise_pred_out,
                 oir_error *err) {
    return unet_forward_tap(m, a, sample, timesteps, context, B, h, w, ctx_len, noise_pred_out,
                            NULL, err);
}

int unet_forward_tap(const unet_model *m, arena *a, const float *sample, const float *timesteps,
                     const float *context, int B, int h, int w, int ctx_len, float *noise_pred_out,
                     const unet_tap *tap, oir_error *err) {
    return unet_forward_capture(m, a, sample, timesteps, context, B, h, w, ctx_len, noise_pred_out,
                                tap, NULL, err);
}

/* The capture site of cross-attention layer <name> (printf-formatted) on an
 * hh x ww token grid: s, or NULL when cap is NULL or does not select it. */
static const xattn_site *site_at(xattn_site *s, attn_capture *cap, int hh, int ww,
                                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static const xattn_site *site_at(xattn_site *s, attn_capture *cap, int hh, int ww,
                                 const char *fmt, ...) {
    if (!cap || !attn_capture_wants(cap, hh, ww)) return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->cap = cap, s->gh = hh, s->gw = ww;
    return s;
}

/* What both entries share: the checks, the activations' buffer, the ones,
 * and the slots of the inputs and the output, carved first in both (the
 * host entry uploads into them, the view entry leaves them unused) so that
 * the activations sit where they always did. */
typedef struct {
    sd_dev_arena da;
    be_view x_slot, ctx_slot, out_slot;
} fwd_setup;

static int forward_setup(const unet_model *m, arena *a, int B, int h, int w, int ctx_len,
                         attn_capture *capture, fwd_setup *S, oir_error *err) {
    const unet_config *c = &m->cfg;
    int n = c->n_blocks, f = 1 << (n - 1);
    if (B < 1 || ctx_len < 1 || h < 1 || w < 1)
        return oir_fail(err, OIR_E_ARG,
                        "unet_forward: batch %d, latent %dx%d, context length %d: all must be >= 1",
                        B, h, w, ctx_len);
    if (h % f || w % f)
        return oir_fail(err, OIR_E_SHAPE,
                        "unet_forward: latent %dx%d is not a multiple of %d (2^%d downsamplings)",
                        h, w, f, n - 1);
    if (!m->dev) return oir_fail(err, OIR_E_ARG, "unet_forward: the model is on no backend (unet_bind)");
    int rc = capture ? attn_capture_check(capture, B, h, w, ctx_len, err) : OIR_OK;
    if (rc) return oir_error_prefix(err, "unet_forward");
    unet_dev *d = m->dev;
    size_t ctx_n = (size_t)B * ctx_len * c->cross_attention_dim;
    size_t in_n = (size_t)B * c->in_channels * h * w, out_n = (size_t)B * c->out_channels * h * w;
    size_t ones_n = (size_t)h * w > UNET_CHUNK_ROWS ? (size_t)h * w : UNET_CHUNK_ROWS;
    if ((rc = unet_dev_arena(d, a, unet_arena_bytes(m, B, h, w, ctx_len), &S->da, err)) ||
        (rc = unet_dev_ones(d, ones_n, err)))
        return oir_error_prefix(err, "unet_forward"), rc;
    if (!sd_dalloc(&S->da, in_n, &S->x_slot) || !sd_dalloc(&S->da, ctx_n, &S->ctx_slot) ||
        !sd_dalloc(&S->da, out_n, &S->out_slot))
        return sd_dev_arena_fail(err, "unet", &S->da), oir_error_prefix(err, "unet_forward");
    return OIR_OK;
}

static int forward_views(const unet_model *m, sd_dev_arena *da, be_view x_in, const float *timesteps,
                         be_view ctx, int B, int h, int w, int ctx_len, be_view out, const unet_tap *tap,
                         attn_capture *capture, oir_error *err);

int unet_forward_capture(const unet_model *m, arena *a, const float *sample,
                         const float *timesteps, const float *context, int B, int h, int w,
                         int ctx_len, float *noise_pred_out, const unet_tap *tap,
                         attn_capture *capture, oir_error *err) {
    if (!m || !a || !sample || !timesteps || !context || !noise_pred_out)
        return oir_fail(err, OIR_E_ARG, "unet_forward: NULL argument");
    fwd_setup S;
    int rc = forward_setup(m, a, B, h, w, ctx_len, capture, &S, err);
    if (rc) return rc;
    const unet_config *c = &m->cfg;
    oir_backend *be = m->dev->be;
    size_t ctx_n = (size_t)ctx_len * c->cross_attention_dim;
    size_t in_n = (size_t)B * c->in_channels * h * w, out_n = (size_t)B * c->out_channels * h * w;
    if ((rc = unet_dev_classes(m->dev, context, B, ctx_n, err))) return oir_error_prefix(err, "unet_forward"), rc;
    be_upload(be, S.x_slot, sample, in_n * sizeof(float));
    be_upload(be, S.ctx_slot, context, (size_t)B * ctx_n * sizeof(float));
    rc = forward_views(m, &S.da, S.x_slot, timesteps, S.ctx_slot, B, h, w, ctx_len, S.out_slot, tap, capture,
                       err);
    /* runs what is queued; reports the first failure of any op */
    if (!rc && (rc = be_download(be, noise_pred_out, S.out_slot, out_n * sizeof(float), err)))
        oir_error_prefix(err, "unet_forward");
    return rc;
}

int unet_forward_dev(const unet_model *m, arena *a, be_view sample, const float *timesteps, be_view context,
                     const float *context_host, int B, int h, int w, int ctx_len, be_view noise_pred,
                     const unet_tap *tap, attn_capture *capture, oir_error *err) {
    if (!m || !a || !sample.buf || !timesteps || !context.buf || !noise_pred.buf)
        return oir_fail(err, OIR_E_ARG, "unet_forward: NULL argument");
    fwd_setup S;
    int rc = forward_setup(m, a, B, h, w, ctx_len, capture, &S, err);
    if (rc) return rc;
    unet_dev *d = m->dev;
    oir_backend *be = d->be;
    size_t ctx_n = (size_t)ctx_len * m->cfg.cross_attention_dim;
    if (!context_host) { /* the context's own address on the CPU, else a download */
        fwd F = {d, be, &S.da, BE_NONE, NULL};
        if (!(context_host = host_of(&F, context, (size_t)B * ctx_n, 0, err)))
            return oir_error_prefix(err, "unet_forward: the context classes"), err ? err->code : OIR_E_INTERNAL;
    }
    if ((rc = unet_dev_classes(d, context_host, B, ctx_n, err))) return oir_error_prefix(err, "unet_forward"), rc;
    rc = forward_views(m, &S.da, sample, timesteps, context, B, h, w, ctx_len, noise_pred, tap, capture, err);
    if (!rc && be->status) { /* an op refused its operands (a view out of its buffer, another backend's) */
        rc = be_sync(be, err);
        oir_error_prefix(err, "unet_forward");
    }
    return rc;
}

/* The forward proper, queued on the model's backend: noise prediction
 * `out` of x_in, timesteps and ctx (views on the backend, apart from the
 * free part of da). */
static int forward_views(const unet_model *m, sd_dev_arena *da, be_view x_in, const float *timesteps,
                         be_view ctx, int B, int h, int w, int ctx_len, be_view out, const unet_tap *tap,
                         attn_capture *capture, oir_error *err) {
    const unet_config *c = &m->cfg;
    int n = c->n_blocks, G = c->norm_num_groups;
    int c0 = c->block_out_channels[0], ted = c->time_embed_dim;
    float eps = c->norm_eps;
    unet_dev *d = m->dev;
    oir_backend *be = d->be;
    size_t out_n = (size_t)B * c->out_channels * h * w;
    int rc = OIR_OK;
    fwd F = {d, be, da, be_view_of(d->ones), d->cls};
    xattn_site site;
#define ALLOC(v, count)                                                                            \
    do {                                                                                           \
        if (!sd_dalloc(da, (count), &(v))) {                                                       \
            rc = sd_dev_arena_fail(err, "unet", da);                                               \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((rc = (call)) != OIR_OK) goto cleanup;                                                 \
    } while (0)

    /* 1. time: t_emb = time_proj(timesteps); emb = time_embedding(t_emb) */
    be_view t_emb, t_hid, emb, emb_act;
    ALLOC(t_emb, (size_t)B * c0);    /* (B, C0) */
    ALLOC(t_hid, (size_t)B * ted);   /* (B, T_emb) */
    ALLOC(emb, (size_t)B * ted);     /* (B, T_emb) */
    ALLOC(emb_act, (size_t)B * ted); /* (B, T_emb) silu(emb), what every resnet projects */
    be_timestep_embedding(be, t_emb, timesteps, B, c0, c->flip_sin_to_cos, c->freq_shift, 10000.0f);
    TRY(tap_dev(&F, tap, "time_proj", t_emb, (size_t)B * c0, err));
    be_linear(be, t_hid, t_emb, m->time_linear_1.bw, m->time_linear_1.bb, B, c0, ted);
    be_act(be, BE_ACT_SILU, t_hid, t_hid, (size_t)B * ted);
    be_linear(be, emb, t_hid, m->time_linear_2.bw, m->time_linear_2.bb, B, ted, ted);
    be_act(be, BE_ACT_SILU, emb_act, emb, (size_t)B * ted);
    TRY(tap_dev(&F, tap, "time_emb", emb, (size_t)B * ted, err));

    /* the skip connections (every down-path output) and two ping-pong buffers */
    skip_plan sp;
    plan_skips(m, h, w, &sp);
    be_view skip[MAX_SKIPS];
    for (int i = 0; i < sp.n; i++) ALLOC(skip[i], (size_t)B * sp.c[i] * sp.hh[i] * sp.ww[i]);
    size_t pp = (size_t)B * pingpong_floats(m, h, w);
    be_view pbuf[2];
    ALLOC(pbuf[0], pp);
    ALLOC(pbuf[1], pp);

    /* 2. pre-process: sample = conv_in(sample) */
    sd_conv_forward_be(be, &m->conv_in, skip[0], x_in, B, h, w, 1, (c->conv_in_kernel - 1) / 2);
    TRY(tap_dev(&F, tap, "conv_in", skip[0], (size_t)B * c0 * h * w, err));

    /* 3. down */
    char name[32];
    int s = 1, hh = h, ww = w;
    be_view cur = skip[0];
    for (int i = 0; i < n; i++) {
        const unet_down_block *dn = &m->down[i];
        for (int j = 0; j < dn->n_layers; j++) {
            TRY(sd_resnet_forward_be(be, &dn->resnets[j], da, skip[s], cur, emb_act, B, hh, ww, G, eps, 1.0f,
                                     err));
            if (dn->has_attn)
                TRY(transformer_forward(&F, &dn->attentions[j], skip[s], ctx, B, hh * ww, ctx_len, G,
                                        site_at(&site, capture, hh, ww, "down_blocks.%d.attentions.%d", i, j),
                                        err));
            cur = skip[s++];
        }
        if (dn->has_downsample) {
            sd_conv_forward_be(be, &dn->downsample, skip[s], cur, B, hh, ww, 2, 1);
            hh /= 2, ww /= 2;
            cur = skip[s++];
        }
        snprintf(name, sizeof name, "down.%d", i);
        TRY(tap_dev(&F, tap, name, cur, (size_t)B * dn->c_out * hh * ww, err));
    }

    /* 4. mid: resnet, transformer, resnet */
    int cur_c = c->block_out_channels[n - 1];
    int p = 0; /* next ping-pong buffer to write */
    if (c->has_mid) {
        float msf = c->mid_block_scale_factor;
        TRY(sd_resnet_forward_be(be, &m->mid_resnets[0], da, pbuf[0], cur, emb_act, B, hh, ww, G, eps, msf,
                                 err));
        TRY(transformer_forward(&F, &m->mid_attn, pbuf[0], ctx, B, hh * ww, ctx_len, G,
                                site_at(&site, capture, hh, ww, "mid_block.attentions.0"), err));
        TRY(sd_resnet_forward_be(be, &m->mid_resnets[1], da, pbuf[1], pbuf[0], emb_act, B, hh, ww, G, eps,
                                 msf, err));
        cur = pbuf[1];
        p = 0;
        TRY(tap_dev(&F, tap, "mid", cur, (size_t)B * cur_c * hh * ww, err));
    }

    /* 5. up: each resnet takes cat([hidden, skip], dim=1), skips popped last-first */
    for (int i = 0; i < n; i++) {
        const unet_up_block *u = &m->up[i];
        for (int j = 0; j < u->n_layers; j++) {
            be_view sk = skip[--s];
            int sc = u->skip_c[j];
            size_t tm = da->used;
            be_view cat;
            ALLOC(cat, (size_t)B * (cur_c + sc) * hh * ww); /* (B, C_cur + C_skip, H, W) */
            be_concat_channels(be, cat, cur, sk, B, cur_c, sc, hh * ww);
            rc = sd_resnet_forward_be(be, &u->resnets[j], da, pbuf[p], cat, emb_act, B, hh, ww, G, eps, 1.0f,
                                      err);
            da->used = tm;
            if (rc) goto cleanup;
            cur = pbuf[p], p ^= 1, cur_c = u->c_out;
            if (u->has_attn)
                TRY(transformer_forward(&F, &u->attentions[j], cur, ctx, B, hh * ww, ctx_len, G,
                                        site_at(&site, capture, hh, ww, "up_blocks.%d.attentions.%d", i, j),
                                        err));
        }
        if (u->has_upsample) {
            TRY(sd_upsample_forward_be(be, &u->upsample, d->phase[i].w ? &d->phase[i] : NULL, da, pbuf[p], cur,
                                       B, hh, ww, err));
            hh *= 2, ww *= 2;
            cur = pbuf[p], p ^= 1;
        }
        snprintf(name, sizeof name, "up.%d", i);
        TRY(tap_dev(&F, tap, name, cur, (size_t)B * cur_c * hh * ww, err));
    }

    /* 6. post-process: conv_out(silu(conv_norm_out(sample))) */
    {
        be_view t;
        ALLOC(t, (size_t)B * c0 * h * w);
        be_group_norm(be, t, cur, m->conv_norm_out.bw, m->conv_norm_out.bb, B, c0, h * w, G, eps, 1);
        TRY(tap_dev(&F, tap, "conv_act", t, (size_t)B * c0 * h * w, err));
        sd_conv_forward_be(be, &m->conv_out, out, t, B, h, w, 1, (c->conv_out_kernel - 1) / 2);
    }
    TRY(tap_dev(&F, tap, "noise_pred", out, out_n, err));
#undef ALLOC
#undef TRY
cleanup:
    if (rc) {
        oir_error ignore;
        be_sync(be, &ignore); /* clears the sticky status of a failed forward */
        oir_error_prefix(err, "unet_forward");
    }
    return rc;
}
