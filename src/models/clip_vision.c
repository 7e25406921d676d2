/* CLIP vision transformer; reads side by side with transformers 4.26.1
 * models/clip/modeling_clip.py (CLIPVisionEmbeddings, CLIPVisionTransformer)
 * and image_processing_clip.py (CLIPImageProcessor). */
#include "models/clip_vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "models/model_config.h"

struct clip_vision_model {
    clip_vision_config cfg;
    const float *class_embedding;    /* (D) */
    sd_linear patch_embedding;       /* (D, C, p, p) = (D, C*p*p), no bias */
    const float *position_embedding; /* (1+G*G, D) */
    be_view class_bv, position_bv;   /* the two on the backend */
    sd_norm pre_ln;                  /* (D) pre_layrnorm */
    clip_layer *layers;              /* (L) */
    sd_norm post_ln;                 /* (D) post_layernorm */
    sd_linear visual_projection;     /* (P, D), no bias; w NULL when not loaded */
    sd_dev dev;                      /* the backend it runs on, its weights there (clip_vision_bind) */
};

/* ---- config ------------------------------------------------------------ */

clip_vision_config clip_vision_config_default(void) {
    clip_vision_config c;
    c.hidden_size = 768;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 12;
    c.intermediate_size = 3072;
    c.image_size = 224;
    c.patch_size = 32;
    c.num_channels = 3;
    c.projection_dim = 512;
    c.layer_norm_eps = 1e-5f;
    c.hidden_act = CLIP_ACT_QUICK_GELU;
    return c;
}

int clip_vision_config_check(const clip_vision_config *c, const char *where, oir_error *err) {
    const struct {
        const char *name;
        int v, max;
    } f[] = {{"hidden_size", c->hidden_size, CFG_MAX_WIDTH},
             {"num_hidden_layers", c->num_hidden_layers, CFG_MAX_LAYERS},
             {"num_attention_heads", c->num_attention_heads, CFG_MAX_HEADS},
             {"intermediate_size", c->intermediate_size, CFG_MAX_INTERMEDIATE},
             {"image_size", c->image_size, CFG_MAX_IMAGE_SIZE},
             {"patch_size", c->patch_size, CFG_MAX_IMAGE_SIZE},
             {"num_channels", c->num_channels, CFG_MAX_IMAGE_CHANNELS},
             {"projection_dim", c->projection_dim, CFG_MAX_WIDTH}};
    int rc;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if ((rc = model_config_check_size(where, f[i].name, f[i].v, f[i].max, err))) return rc;
    if (c->hidden_size % c->num_attention_heads != 0)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: field hidden_size: %d is not divisible by num_attention_heads %d",
                        where, c->hidden_size, c->num_attention_heads);
    if (c->image_size % c->patch_size != 0)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: field image_size: %d is not divisible by patch_size %d", where,
                        c->image_size, c->patch_size);
    /* tokens = grid^2 + 1, and attention is quadratic in them */
    if (c->image_size / c->patch_size > CFG_MAX_PATCH_GRID)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: image_size %d / patch_size %d = %d patches a side, expected at most %d",
                        where, c->image_size, c->patch_size, c->image_size / c->patch_size,
                        CFG_MAX_PATCH_GRID);
    return model_config_check_float(where, "layer_norm_eps", c->layer_norm_eps, 0, 0, 1, err);
}

int clip_vision_config_from_json(clip_vision_config *cfg, const cJSON *root, const char *where,
                                 oir_error *err) {
    clip_vision_config c = clip_vision_config_default();
    char sub[512];
    const cJSON *obj = NULL;
    int rc = clip_json_tower(root, "vision_config", where, &obj, sub, sizeof sub, &c.projection_dim, err);
    if (rc) return rc;
    if ((rc = clip_json_int(obj, "hidden_size", &c.hidden_size, sub, err)) ||
        (rc = clip_json_int(obj, "num_hidden_layers", &c.num_hidden_layers, sub, err)) ||
        (rc = clip_json_int(obj, "num_attention_heads", &c.num_attention_heads, sub, err)) ||
        (rc = clip_json_int(obj, "intermediate_size", &c.intermediate_size, sub, err)) ||
        (rc = clip_json_int(obj, "image_size", &c.image_size, sub, err)) ||
        (rc = clip_json_int(obj, "patch_size", &c.patch_size, sub, err)) ||
        (rc = clip_json_int(obj, "num_channels", &c.num_channels, sub, err)) ||
        (rc = clip_json_float(obj, "layer_norm_eps", &c.layer_norm_eps, sub, err)) ||
        (rc = clip_json_act(obj, &c.hidden_act, sub, err)) ||
        (rc = clip_vision_config_check(&c, sub, err)))
        return rc;
    *cfg = c;
    return OIR_OK;
}

int clip_vision_config_load(clip_vision_config *cfg, const char *config_path, oir_error *err) {
    cJSON *root = NULL;
    int rc = clip_json_read(&root, config_path, err);
    if (rc == OIR_OK) rc = clip_vision_config_from_json(cfg, root, config_path, err);
    cJSON_Delete(root);
    return rc;
}

int clip_vision_grid(const clip_vision_config *cfg) { return cfg->image_size / cfg->patch_size; }

/* ---- weights ----------------------------------------------------------- */

int clip_vision_load(clip_vision_model **out, const clip_vision_config *cfg, weights *w,
                     int with_projection, oir_error *err) {
    *out = NULL;
    int rc = clip_vision_config_check(cfg, "clip_vision config", err);
    if (rc) return rc;
    const int D = cfg->hidden_size, I = cfg->intermediate_size, L = cfg->num_hidden_layers;
    const int G = clip_vision_grid(cfg), p = cfg->patch_size;
    clip_vision_model *m = calloc(1, sizeof *m);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "clip_vision: cannot allocate the model");
    m->cfg = *cfg;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) {
        rc = oir_fail(err, OIR_E_NOMEM, "clip_vision: cannot allocate %d layers", L);
        goto cleanup;
    }
    int ok = 1;
    const int cpp = cfg->num_channels * p * p;
    m->class_embedding =
        clip_weight(w, "vision_model.embeddings.class_embedding", 1, D, 0, 0, 0);
    m->patch_embedding = (sd_linear){cpp, D, NULL, NULL, BE_NONE, BE_NONE};
    m->patch_embedding.w = clip_weight(w, "vision_model.embeddings.patch_embedding.weight", 4, D,
                                       cfg->num_channels, p, p);
    m->position_embedding = clip_weight(w, "vision_model.embeddings.position_embedding.weight",
                                        2, 1 + G * G, D, 0, 0);
    m->pre_ln = (sd_norm){D, clip_weight(w, "vision_model.pre_layrnorm.weight", 1, D, 0, 0, 0),
                          clip_weight(w, "vision_model.pre_layrnorm.bias", 1, D, 0, 0, 0), BE_NONE, BE_NONE};
    ok &= m->class_embedding && m->patch_embedding.w && m->position_embedding && m->pre_ln.w &&
          m->pre_ln.b;
    for (int l = 0; l < L; l++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "vision_model.encoder.layers.%d.", l);
        ok &= clip_layer_get(&m->layers[l], w, prefix, D, I);
    }
    m->post_ln = (sd_norm){D, clip_weight(w, "vision_model.post_layernorm.weight", 1, D, 0, 0, 0),
                           clip_weight(w, "vision_model.post_layernorm.bias", 1, D, 0, 0, 0), BE_NONE, BE_NONE};
    ok &= m->post_ln.w && m->post_ln.b;
    if (with_projection) {
        m->visual_projection = (sd_linear){D, cfg->projection_dim, NULL, NULL, BE_NONE, BE_NONE};
        m->visual_projection.w = clip_weight(w, "visual_projection.weight", 2, cfg->projection_dim, D, 0, 0);
        ok &= m->visual_projection.w != NULL;
    }
    if (!ok) {
        rc = weights_finish(w, err);
        if (rc == OIR_OK) rc = oir_fail(err, OIR_E_MISSING, "a tensor is missing or mis-shaped");
        oir_error_prefix(err, "clip_vision");
        goto cleanup;
    }
    if ((rc = clip_vision_bind(m, NULL, err))) goto cleanup;
    *out = m;
    return OIR_OK;
cleanup:
    clip_vision_free(m);
    return rc;
}

static void bind_all(void *user, sd_binder *b) {
    clip_vision_model *m = user;
    const clip_vision_config *c = &m->cfg;
    int G = clip_vision_grid(c);
    sd_bind_tensor(b, m->class_embedding, (size_t)c->hidden_size, &m->class_bv);
    sd_bind_linear(b, &m->patch_embedding);
    sd_bind_tensor(b, m->position_embedding, (size_t)(1 + G * G) * c->hidden_size, &m->position_bv);
    sd_bind_norm(b, &m->pre_ln);
    for (int l = 0; l < c->num_hidden_layers; l++) clip_layer_bind(b, &m->layers[l]);
    sd_bind_norm(b, &m->post_ln);
    sd_bind_linear(b, &m->visual_projection);
}

int clip_vision_bind(clip_vision_model *m, oir_backend *be, oir_error *err) {
    if (!m) return oir_fail(err, OIR_E_ARG, "clip_vision_bind: NULL model");
    return sd_dev_rebind(&m->dev, be, bind_all, m, "clip_vision", err);
}

const char *clip_vision_backend_name(const clip_vision_model *m) {
    return m && m->dev.be ? m->dev.be->name : "none";
}
oir_backend *clip_vision_backend(const clip_vision_model *m) { return m ? m->dev.be : NULL; }

void clip_vision_free(clip_vision_model *m) {
    if (!m) return;
    sd_dev_close(&m->dev);
    free(m->layers);
    free(m);
}

const clip_vision_config *clip_vision_get_config(const clip_vision_model *m) { return &m->cfg; }

/* ---- forward ----------------------------------------------------------- */

#define ALIGN_F(n) (((n) + 15) / 16 * 16) /* floats, to 64 bytes */

/* Floats of a chunk of b images on the backend: residual stream (b, N, D),
 * patches (b*G*G, C*p*p), layer scratch, pooled rows (b, D), key mask
 * (b, N) bytes, image embeddings (b, P). */
static size_t chunk_floats(const clip_vision_config *c, int b) {
    const int G = clip_vision_grid(c), N = 1 + G * G, D = c->hidden_size;
    const size_t cpp = (size_t)c->num_channels * c->patch_size * c->patch_size;
    return ALIGN_F((size_t)b * N * D) + ALIGN_F((size_t)b * G * G * cpp) +
           clip_layer_scratch(b, N, D, c->intermediate_size, c->num_attention_heads) +
           ALIGN_F((size_t)b * D) + ALIGN_F(((size_t)b * N + 3) / 4) + ALIGN_F((size_t)b * c->projection_dim);
}

size_t clip_vision_arena_bytes(const clip_vision_config *cfg, int B) {
    if (B < 1) B = 1;
    return chunk_floats(cfg, B) * sizeof(float) + 64;
}

int clip_vision_forward(const clip_vision_model *m, arena *a, const float *pixel_values, int B,
                        int H, int W, const uint8_t *patch_mask, float *last_hidden,
                        float *pooled, float *image_embeds, oir_error *err) {
    const clip_vision_config *c = &m->cfg;
    const int D = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers;
    const int heads = c->num_attention_heads, C = c->num_channels, p = c->patch_size;
    const int S = c->image_size, G = clip_vision_grid(c), N = 1 + G * G, P = c->projection_dim;
    const int cpp = C * p * p;
    if (B < 1)
        return oir_fail(err, OIR_E_SHAPE, "clip_vision: batch of %d images, expected >= 1", B);
    if (H != S || W != S)
        return oir_fail(err, OIR_E_SHAPE,
                        "clip_vision: pixel_values is (%d, %d, %d, %d), expected (%d, %d, %d, %d) "
                        "(image_size %d)",
                        B, C, H, W, B, C, S, S, S);
    if (image_embeds && !m->visual_projection.w)
        return oir_fail(err, OIR_E_ARG,
                        "clip_vision: image_embeds asked for, but the model was loaded without "
                        "visual_projection");
    if (!m->dev.be) return oir_fail(err, OIR_E_ARG, "clip_vision: the model is on no backend (clip_vision_bind)");

    const size_t mark = arena_mark(a);
    size_t avail = a->cap > mark + 64 ? (a->cap - mark - 64) / sizeof(float) : 0;
    int chunk = B;
    while (chunk > 1 && chunk_floats(c, chunk) > avail) chunk = chunk > 2 ? chunk / 2 : 1;
    if (chunk_floats(c, chunk) > avail)
        return oir_fail(err, OIR_E_NOMEM,
                        "clip_vision: arena has %zu bytes free, one image needs %zu",
                        avail * sizeof(float), clip_vision_arena_bytes(c, 1));
    sd_dev *d = (sd_dev *)&m->dev; /* its buffers change, not the model */
    oir_backend *be = d->be;
    sd_dev_arena da;
    int rc = sd_dev_arena_for(d, a, chunk_floats(c, chunk) * sizeof(float), &da, err);
    if (rc) return oir_error_prefix(err, "clip_vision"), rc;
    be_view x, patches, scratch, pool, key_mask = BE_NONE, ie;
    size_t km_floats = ((size_t)chunk * N + 3) / 4;
    if (!sd_dalloc(&da, (size_t)chunk * N * D, &x) ||                              /* (b, N, D) */
        !sd_dalloc(&da, (size_t)chunk * G * G * cpp, &patches) ||                  /* (b*G*G, C*p*p) */
        !sd_dalloc(&da, clip_layer_scratch(chunk, N, D, I, heads), &scratch) ||    /* layer */
        !sd_dalloc(&da, (size_t)chunk * D, &pool) ||                               /* (b, D) */
        (patch_mask && !sd_dalloc(&da, km_floats, &key_mask)) ||                   /* (b, N) bytes */
        !sd_dalloc(&da, (size_t)chunk * P, &ie))                                   /* (b, P) */
        return oir_fail(err, OIR_E_INTERNAL, "clip_vision: arena plan mismatch");

    for (int r0 = 0; r0 < B && !rc; r0 += chunk) {
        const int b = B - r0 < chunk ? B - r0 : chunk;
        /* patch_embedding: Conv2d(C, D, kernel=stride=p, no bias) as a matrix
         * product over patches flattened in the weight's (C, p, p) order; the
         * patches are gathered on the host (in place on the CPU backend) and
         * uploaded, with the key mask */
        float *ph = be_host_ptr(be, patches);
        size_t stage_n = ph ? 0 : (size_t)b * G * G * cpp;
        float *stage = sd_dev_staging(d, stage_n + (patch_mask ? km_floats : 0) + 1, err);
        if (!stage) {
            rc = err ? err->code : OIR_E_NOMEM;
            break;
        }
        float *pv0 = ph ? ph : stage;
        for (int r = 0; r < b; r++) {
            const float *img = pixel_values + (size_t)(r0 + r) * C * S * S;
            for (int gy = 0; gy < G; gy++)
                for (int gx = 0; gx < G; gx++) {
                    float *pv = pv0 + (((size_t)r * G + gy) * G + gx) * cpp;
                    for (int ch = 0; ch < C; ch++)
                        for (int ky = 0; ky < p; ky++)
                            memcpy(pv + ((size_t)ch * p + ky) * p,
                                   img + ((size_t)ch * S + gy * p + ky) * S + gx * p,
                                   sizeof(float) * p);
                }
        }
        if (!ph) be_upload(be, patches, stage, stage_n * sizeof(float));
        /* embeddings = cat([class_embedding, patch_embeds]) + position_embedding */
        for (int r = 0; r < b; r++) {
            be_view xr = be_view_f(x, (size_t)r * N * D);
            be_linear(be, be_view_f(xr, D), be_view_f(patches, (size_t)r * G * G * cpp), m->patch_embedding.bw,
                      BE_NONE, G * G, cpp, D);
            be_copy(be, xr, m->class_bv, sizeof(float) * D);
            be_add(be, xr, xr, m->position_bv, (size_t)N * D);
        }
        /* pre_layrnorm */
        be_layer_norm(be, x, x, m->pre_ln.bw, m->pre_ln.bb, b * N, D, CLIP_LN_EPS, 0);
        /* key mask: the class token and the patches inside the object */
        if (patch_mask) {
            uint8_t *kh = (uint8_t *)(stage + stage_n);
            for (int r = 0; r < b; r++) {
                uint8_t *km = kh + (size_t)r * N;
                const uint8_t *pm = patch_mask + (size_t)(r0 + r) * G * G;
                km[0] = 1;
                for (int i = 0; i < G * G; i++) km[1 + i] = pm[i] != 0;
            }
            be_upload(be, key_mask, kh, (size_t)b * N);
        }
        for (int l = 0; l < L; l++)
            clip_layer_forward(be, &m->layers[l], x, b, N, D, I, heads, c->hidden_act, key_mask, 0, scratch);
        /* pooled = post_layernorm(last_hidden[:, 0]) */
        for (int r = 0; r < b; r++)
            be_layer_norm(be, be_view_f(pool, (size_t)r * D), be_view_f(x, (size_t)r * N * D), m->post_ln.bw,
                          m->post_ln.bb, 1, D, CLIP_LN_EPS, 0);
        if (image_embeds) be_linear(be, ie, pool, m->visual_projection.bw, BE_NONE, b, D, P);
        /* the downloads run what is queued and report its first failure */
        if (!rc && last_hidden)
            rc = be_download(be, last_hidden + (size_t)r0 * N * D, x, sizeof(float) * b * N * D, err);
        if (!rc && pooled) rc = be_download(be, pooled + (size_t)r0 * D, pool, sizeof(float) * b * D, err);
        if (!rc && image_embeds)
            rc = be_download(be, image_embeds + (size_t)r0 * P, ie, sizeof(float) * b * P, err);
        if (!rc && !last_hidden && !pooled && !image_embeds) rc = be_sync(be, err);
    }
    if (rc) {
        oir_error ignore;
        be_sync(be, &ignore); /* clears the sticky status of a failed forward */
        oir_error_prefix(err, "clip_vision");
    }
    return rc;
}

/* ---- preprocessing ----------------------------------------------------- */

clip_preprocess_config clip_preprocess_config_default(void) {
    clip_preprocess_config pc = {
        .do_resize = 1,
        .shortest_edge = 224,
        .do_center_crop = 1,
        .crop_height = 224,
        .crop_width = 224,
        .do_rescale = 1,
        .rescale_factor = 1.0 / 255.0,
        .do_normalize = 1,
        .image_mean = {0.48145466f, 0.4578275f, 0.40821073f},
        .image_std = {0.26862954f, 0.26130258f, 0.27577711f},
    };
    return pc;
}

static int json_bool(const cJSON *root, const char *field, int *v, const char *where,
                     oir_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) return OIR_OK;
    if (!cJSON_IsBool(it))
        return oir_fail(err, OIR_E_FORMAT, "%s: field %s: expected true or false", where, field);
    *v = cJSON_IsTrue(it);
    return OIR_OK;
}

static int json_triple(const cJSON *root, const char *field, float v[3], int positive,
                       const char *where, oir_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) return OIR_OK;
    if (cJSON_IsNumber(it)) { /* a single value for every channel */
        v[0] = v[1] = v[2] = (float)it->valuedouble;
    } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(it, i);
            if (!cJSON_IsNumber(e))
                return oir_fail(err, OIR_E_FORMAT, "%s: field %s[%d]: expected a number", where,
                                field, i);
            v[i] = (float)e->valuedouble;
        }
    } else {
        return oir_fail(err, OIR_E_FORMAT, "%s: field %s: expected a list of 3 numbers", where,
                        field);
    }
    for (int i = 0; i < 3; i++)
        if (!isfinite(v[i]) || (positive && !(v[i] > 0)))
            return oir_fail(err, OIR_E_FORMAT, "%s: field %s[%d]: expected a %snumber", where,
                            field, i, positive ? "positive " : "finite ");
    return OIR_OK;
}

int clip_preprocess_config_load(clip_preprocess_config *out, const char *path, oir_error *err) {
    clip_preprocess_config pc = clip_preprocess_config_default();
    cJSON *root = NULL;
    int rc = clip_json_read(&root, path, err);
    if (rc) return rc;
    /* size: {"shortest_edge": n} (4.26) or a bare n (older files) */
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    if (size && cJSON_IsObject(size)) {
        if (!cJSON_GetObjectItemCaseSensitive(size, "shortest_edge")) {
            rc = oir_fail(err, OIR_E_UNSUPPORTED,
                          "%s: field size: only {\"shortest_edge\": n} is supported", path);
            goto cleanup;
        }
        if ((rc = clip_json_int(size, "shortest_edge", &pc.shortest_edge, path, err)))
            goto cleanup;
    } else if ((rc = clip_json_int(root, "size", &pc.shortest_edge, path, err))) {
        goto cleanup;
    }
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    if (crop && cJSON_IsObject(crop)) {
        if ((rc = clip_json_int(crop, "height", &pc.crop_height, path, err)) ||
            (rc = clip_json_int(crop, "width", &pc.crop_width, path, err)))
            goto cleanup;
    } else if (crop && !cJSON_IsNull(crop)) {
        if ((rc = clip_json_int(root, "crop_size", &pc.crop_height, path, err))) goto cleanup;
        pc.crop_width = pc.crop_height;
    }
    if ((rc = json_bool(root, "do_resize", &pc.do_resize, path, err)) ||
        (rc = json_bool(root, "do_center_crop", &pc.do_center_crop, path, err)) ||
        (rc = json_bool(root, "do_rescale", &pc.do_rescale, path, err)) ||
        (rc = json_bool(root, "do_normalize", &pc.do_normalize, path, err)) ||
        (rc = json_triple(root, "image_mean", pc.image_mean, 0, path, err)) ||
        (rc = json_triple(root, "image_std", pc.image_std, 1, path, err)))
        goto cleanup;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    if (rf && !cJSON_IsNull(rf)) {
        if (!cJSON_IsNumber(rf)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: field rescale_factor: expected a positive "
                                             "number", path);
            goto cleanup;
        }
        if ((rc = model_config_check_float(path, "rescale_factor", rf->valuedouble, 0, 0, 1, err)))
            goto cleanup;
        pc.rescale_factor = rf->valuedouble;
    }
    if ((rc = model_config_check_size(path, "size.shortest_edge", pc.shortest_edge,
                                      CFG_MAX_IMAGE_SIZE, err)) ||
        (rc = model_config_check_size(path, "crop_size.height", pc.crop_height, CFG_MAX_IMAGE_SIZE,
                                      err)) ||
        (rc = model_config_check_size(path, "crop_size.width", pc.crop_width, CFG_MAX_IMAGE_SIZE,
                                      err)))
        goto cleanup;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (rs && !cJSON_IsNull(rs) && !(cJSON_IsNumber(rs) && rs->valuedouble == 3)) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                      "%s: field resample: only 3 (bicubic, CLIP's) is supported", path);
        goto cleanup;
    }
    *out = pc;
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* Size after the shortest-side resize (transformers'
 * get_resize_output_image_size with default_to_square=False). */
static void resized_size(const clip_preprocess_config *pc, int H, int W, int *rh, int *rw) {
    *rh = H;
    *rw = W;
    if (!pc->do_resize) return;
    const int s = pc->shortest_edge;
    if (W <= H) { /* width is the short side */
        *rw = s;
        *rh = (int)((double)((long long)s * H) / W);
    } else {
        *rh = s;
        *rw = (int)((double)((long long)s * W) / H);
    }
}

void clip_preprocess_size(const clip_preprocess_config *pc, int H, int W, int *out_h,
                          int *out_w) {
    resized_size(pc, H, W, out_h, out_w);
    if (pc->do_center_crop) {
        *out_h = pc->crop_height;
        *out_w = pc->crop_width;
    }
}

/* Resize + crop geometry: resized (rh, rw), crop offset (top, left), output (oh, ow). */
static int geometry(const clip_preprocess_config *pc, int H, int W, int *rh, int *rw, int *top,
                    int *left, int *oh, int *ow, oir_error *err) {
    if (H < 1 || W < 1)
        return oir_fail(err, OIR_E_SHAPE, "clip_preprocess: image is %dx%d, expected a non-empty "
                                          "image", W, H);
    resized_size(pc, H, W, rh, rw);
    *top = *left = 0;
    *oh = *rh;
    *ow = *rw;
    if (pc->do_center_crop) {
        if (pc->crop_height > *rh || pc->crop_width > *rw)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "clip_preprocess: crop %dx%d is larger than the resized image %dx%d",
                            pc->crop_width, pc->crop_height, *rw, *rh);
        *top = (*rh - pc->crop_height) / 2;
        *left = (*rw - pc->crop_width) / 2;
        *oh = pc->crop_height;
        *ow = pc->crop_width;
    }
    return OIR_OK;
}

int clip_preprocess(const clip_preprocess_config *pc, const image *img, float *pixel_values,
                    oir_error *err) {
    if (!img || !img->data || img->channels != 3)
        return oir_fail(err, OIR_E_SHAPE, "clip_preprocess: expected an RGB image (3 channels), "
                                          "got %d channels", img && img->data ? img->channels : 0);
    int rh, rw, top, left, oh, ow;
    int rc = geometry(pc, img->height, img->width, &rh, &rw, &top, &left, &oh, &ow, err);
    if (rc) return rc;
    image resized = {0};
    const image *src = img;
    if (rh != img->height || rw != img->width) {
        if ((rc = image_resize(&resized, img, rw, rh, err))) {
            oir_error_prefix(err, "clip_preprocess");
            return rc;
        }
        src = &resized;
    }
    /* rescale: float32(u8 * factor) (numpy float64 product, cast to float32);
     * normalize: (x - mean) / std in float32 */
    const float scale_id = 1.0f;
    for (int c = 0; c < 3; c++) {
        const float mean = pc->do_normalize ? pc->image_mean[c] : 0.0f;
        const float std = pc->do_normalize ? pc->image_std[c] : scale_id;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                float v = src->data[((size_t)(y + top) * src->width + x + left) * 3 + c];
                int u = !(v > 0.0f) ? 0 : v >= 1.0f ? 255 : (int)nearbyintf(v * 255.0f);
                float f = pc->do_rescale ? (float)((double)u * pc->rescale_factor) : (float)u;
                if (pc->do_normalize) f = (f - mean) / std;
                pixel_values[((size_t)c * oh + y) * ow + x] = f;
            }
    }
    image_free(&resized);
    return OIR_OK;
}

int clip_patch_mask(uint8_t *patch_mask, const float *mask, int H, int W,
                    const clip_preprocess_config *pc, int grid, oir_error *err) {
    if (grid < 1)
        return oir_fail(err, OIR_E_ARG, "clip_patch_mask: grid %d, expected >= 1", grid);
    int rh, rw, top, left, oh, ow;
    int rc = geometry(pc, H, W, &rh, &rw, &top, &left, &oh, &ow, err);
    if (rc) return rc;
    /* crop window in the original image's pixels */
    const double sy = (double)H / rh, sx = (double)W / rw;
    const double y0 = top * sy, x0 = left * sx, h_win = oh * sy, w_win = ow * sx;
    const float fy = (float)(h_win / grid), fx = (float)(w_win / grid);
    for (int i = 0; i < grid; i++) {
        int yi = (int)floorf((float)y0 + (float)i * fy);
        if (yi > H - 1) yi = H - 1;
        for (int j = 0; j < grid; j++) {
            int xj = (int)floorf((float)x0 + (float)j * fx);
            if (xj > W - 1) xj = W - 1;
            patch_mask[(size_t)i * grid + j] = mask[(size_t)yi * W + xj] > 0.5f;
        }
    }
    return OIR_OK;
}

/* ---- scorer ------------------------------------------------------------ */

float clip_cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return 0.0f;
    return (float)(ab / (sqrt(aa) * sqrt(bb)));
}
