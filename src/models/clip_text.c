/* CLIP text transformer; reads side by side with transformers 4.26.1
 * models/clip/modeling_clip.py (CLIPTextTransformer, CLIPEncoderLayer). */
#include "models/clip_text.h"
#include "models/model_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"

struct clip_text_model {
    clip_text_config cfg;
    /* the embeddings are gathered on the host (the ids are host data) and
     * uploaded: the (V, D) table is never bound */
    const float *token_embedding;    /* (V, D) */
    const float *position_embedding; /* (Tmax, D) */
    clip_layer *layers;              /* (L) */
    sd_norm final_ln;                /* (D) final_layer_norm */
    sd_linear text_projection;       /* (P, D), no bias; w NULL when not loaded */
    sd_dev dev;                      /* the backend it runs on, its weights there (clip_text_bind) */
};

/* ---- config ------------------------------------------------------------ */

clip_text_config clip_text_config_default(void) {
    clip_text_config c;
    c.vocab_size = 49408;
    c.hidden_size = 512;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 8;
    c.intermediate_size = 2048;
    c.max_position_embeddings = 77;
    c.projection_dim = 512;
    c.layer_norm_eps = 1e-5f;
    c.hidden_act = CLIP_ACT_QUICK_GELU;
    return c;
}

clip_text_config clip_text_config_sd1(void) {
    clip_text_config c = clip_text_config_default();
    c.hidden_size = 768;
    c.num_attention_heads = 12;
    c.intermediate_size = 3072;
    c.projection_dim = 768;
    return c;
}

int clip_json_read(cJSON **out, const char *path, oir_error *err) {
    model_config c;
    *out = NULL;
    int rc = model_config_read(&c, path, err);
    if (rc) return rc;
    *out = c.root; /* ownership moves to the caller */
    return OIR_OK;
}

int clip_json_int(const cJSON *obj, const char *field, int *v, const char *where,
                  oir_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!it || cJSON_IsNull(it)) return OIR_OK;
    double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
    if (!cJSON_IsNumber(it) || d != floor(d) || d < 1 || d > 1e9)
        return oir_fail(err, OIR_E_FORMAT, "%s: field %s: expected a positive integer", where,
                        field);
    *v = (int)d;
    return OIR_OK;
}

int clip_json_float(const cJSON *obj, const char *field, float *v, const char *where,
                    oir_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!it || cJSON_IsNull(it)) return OIR_OK;
    if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !isfinite((float)it->valuedouble))
        return oir_fail(err, OIR_E_FORMAT, "%s: field %s: expected a positive number", where,
                        field);
    *v = (float)it->valuedouble;
    return OIR_OK;
}

int clip_json_act(const cJSON *obj, clip_act *act, const char *where, oir_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
    if (!it || cJSON_IsNull(it)) return OIR_OK;
    if (!cJSON_IsString(it))
        return oir_fail(err, OIR_E_FORMAT, "%s: field hidden_act: expected a string", where);
    if (strcmp(it->valuestring, "quick_gelu") == 0) {
        *act = CLIP_ACT_QUICK_GELU;
    } else if (strcmp(it->valuestring, "gelu") == 0) {
        *act = CLIP_ACT_GELU;
    } else {
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: field hidden_act: \"%s\" is not supported, expected \"quick_gelu\" "
                        "or \"gelu\"",
                        where, it->valuestring);
    }
    return OIR_OK;
}

int clip_text_config_check(const clip_text_config *c, const char *where, oir_error *err) {
    const struct {
        const char *name;
        int v, max;
    } f[] = {{"vocab_size", c->vocab_size, CFG_MAX_VOCAB},
             {"hidden_size", c->hidden_size, CFG_MAX_WIDTH},
             {"num_hidden_layers", c->num_hidden_layers, CFG_MAX_LAYERS},
             {"num_attention_heads", c->num_attention_heads, CFG_MAX_HEADS},
             {"intermediate_size", c->intermediate_size, CFG_MAX_INTERMEDIATE},
             {"max_position_embeddings", c->max_position_embeddings, CFG_MAX_POSITIONS},
             {"projection_dim", c->projection_dim, CFG_MAX_WIDTH}};
    int rc;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if ((rc = model_config_check_size(where, f[i].name, f[i].v, f[i].max, err))) return rc;
    if (c->hidden_size % c->num_attention_heads != 0)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: field hidden_size: %d is not divisible by num_attention_heads %d",
                        where, c->hidden_size, c->num_attention_heads);
    return model_config_check_float(where, "layer_norm_eps", c->layer_norm_eps, 0, 0, 1, err);
}

/* The fields of one CLIP tower: the object under `key` ("text_config") of a
 * CLIPConfig, whose projection_dim is at the top level, or root itself for a
 * CLIPTextConfig / CLIPVisionConfig. sub receives the name for messages. */
int clip_json_tower(const cJSON *root, const char *key, const char *where, const cJSON **obj,
                    char *sub, size_t cap, int *projection_dim, oir_error *err) {
    if (!cJSON_IsObject(root)) return oir_fail(err, OIR_E_FORMAT, "%s: not a JSON object", where);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, key);
    *obj = root;
    snprintf(sub, cap, "%s", where);
    if (tc && !cJSON_IsNull(tc)) {
        if (!cJSON_IsObject(tc))
            return oir_fail(err, OIR_E_FORMAT, "%s: field %s: expected an object", where, key);
        *obj = tc;
        snprintf(sub, cap, "%s: %s", where, key);
    }
    return clip_json_int(root, "projection_dim", projection_dim, where, err);
}

int clip_text_config_from_json(clip_text_config *cfg, const cJSON *root, const char *where,
                               oir_error *err) {
    clip_text_config c = clip_text_config_default();
    char sub[512];
    const cJSON *obj = NULL;
    int rc = clip_json_tower(root, "text_config", where, &obj, sub, sizeof sub, &c.projection_dim, err);
    if (rc) return rc;
    if ((rc = clip_json_int(obj, "vocab_size", &c.vocab_size, sub, err)) ||
        (rc = clip_json_int(obj, "hidden_size", &c.hidden_size, sub, err)) ||
        (rc = clip_json_int(obj, "num_hidden_layers", &c.num_hidden_layers, sub, err)) ||
        (rc = clip_json_int(obj, "num_attention_heads", &c.num_attention_heads, sub, err)) ||
        (rc = clip_json_int(obj, "intermediate_size", &c.intermediate_size, sub, err)) ||
        (rc = clip_json_int(obj, "max_position_embeddings", &c.max_position_embeddings, sub,
                            err)) ||
        (rc = clip_json_float(obj, "layer_norm_eps", &c.layer_norm_eps, sub, err)) ||
        (rc = clip_json_act(obj, &c.hidden_act, sub, err)) ||
        (rc = clip_text_config_check(&c, sub, err)))
        return rc;
    *cfg = c;
    return OIR_OK;
}

int clip_text_config_load(clip_text_config *cfg, const char *config_path, oir_error *err) {
    cJSON *root = NULL;
    int rc = clip_json_read(&root, config_path, err);
    if (rc == OIR_OK) rc = clip_text_config_from_json(cfg, root, config_path, err);
    cJSON_Delete(root);
    return rc;
}

/* ---- weights ----------------------------------------------------------- */

const float *clip_weight(weights *w, const char *name, int ndim, int d0, int d1, int d2,
                         int d3) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    return weights_get(w, name, ndim, shape);
}

static void linear_get(sd_linear *l, weights *w, const char *prefix, const char *name, int in, int out) {
    char n[256];
    snprintf(n, sizeof n, "%s%s.weight", prefix, name);
    l->in = in, l->out = out;
    l->w = clip_weight(w, n, 2, out, in, 0, 0);
    snprintf(n, sizeof n, "%s%s.bias", prefix, name);
    l->b = clip_weight(w, n, 1, out, 0, 0, 0);
}

static void norm_get(sd_norm *nm, weights *w, const char *prefix, const char *name, int c) {
    char n[256];
    nm->c = c;
    snprintf(n, sizeof n, "%s%s.weight", prefix, name);
    nm->w = clip_weight(w, n, 1, c, 0, 0, 0);
    snprintf(n, sizeof n, "%s%s.bias", prefix, name);
    nm->b = clip_weight(w, n, 1, c, 0, 0, 0);
}

int clip_layer_get(clip_layer *l, weights *w, const char *prefix, int D, int I) {
    memset(l, 0, sizeof *l);
    norm_get(&l->ln1, w, prefix, "layer_norm1", D);
    linear_get(&l->q, w, prefix, "self_attn.q_proj", D, D);
    linear_get(&l->k, w, prefix, "self_attn.k_proj", D, D);
    linear_get(&l->v, w, prefix, "self_attn.v_proj", D, D);
    linear_get(&l->o, w, prefix, "self_attn.out_proj", D, D);
    norm_get(&l->ln2, w, prefix, "layer_norm2", D);
    linear_get(&l->fc1, w, prefix, "mlp.fc1", D, I);
    linear_get(&l->fc2, w, prefix, "mlp.fc2", I, D);
    const sd_linear *ls[] = {&l->q, &l->k, &l->v, &l->o, &l->fc1, &l->fc2};
    int ok = l->ln1.w && l->ln1.b && l->ln2.w && l->ln2.b;
    for (int i = 0; i < 6; i++) ok &= ls[i]->w && ls[i]->b;
    return ok;
}

void clip_layer_bind(sd_binder *b, clip_layer *l) {
    sd_bind_norm(b, &l->ln1);
    sd_bind_linear(b, &l->q), sd_bind_linear(b, &l->k), sd_bind_linear(b, &l->v), sd_bind_linear(b, &l->o);
    sd_bind_norm(b, &l->ln2);
    sd_bind_linear(b, &l->fc1), sd_bind_linear(b, &l->fc2);
}

/* weights_finish names the problems; on success of that call we still
 * report OIR_E_MISSING (a tensor we asked for came back NULL). */
static int load_failed(weights *w, const char *what, oir_error *err) {
    int rc = weights_finish(w, err);
    if (rc == OIR_OK) rc = oir_fail(err, OIR_E_MISSING, "a tensor is missing or mis-shaped");
    oir_error_prefix(err, "%s", what);
    return rc;
}

int clip_text_load(clip_text_model **out, const clip_text_config *cfg, weights *w,
                   int with_projection, oir_error *err) {
    *out = NULL;
    int rc = clip_text_config_check(cfg, "clip_text config", err);
    if (rc) return rc;
    const int D = cfg->hidden_size, I = cfg->intermediate_size, L = cfg->num_hidden_layers;
    clip_text_model *m = calloc(1, sizeof *m);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "clip_text: cannot allocate the model");
    m->cfg = *cfg;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) {
        rc = oir_fail(err, OIR_E_NOMEM, "clip_text: cannot allocate %d layers", L);
        goto cleanup;
    }
    int ok = 1;
    m->token_embedding = clip_weight(w, "text_model.embeddings.token_embedding.weight", 2,
                                     cfg->vocab_size, D, 0, 0);
    m->position_embedding = clip_weight(w, "text_model.embeddings.position_embedding.weight", 2,
                                        cfg->max_position_embeddings, D, 0, 0);
    ok &= m->token_embedding && m->position_embedding;
    for (int l = 0; l < L; l++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "text_model.encoder.layers.%d.", l);
        ok &= clip_layer_get(&m->layers[l], w, prefix, D, I);
    }
    norm_get(&m->final_ln, w, "text_model.", "final_layer_norm", D);
    ok &= m->final_ln.w && m->final_ln.b;
    if (with_projection) {
        m->text_projection = (sd_linear){D, cfg->projection_dim, NULL, NULL, BE_NONE, BE_NONE};
        m->text_projection.w = clip_weight(w, "text_projection.weight", 2, cfg->projection_dim, D, 0, 0);
        ok &= m->text_projection.w != NULL;
    }
    if (!ok) {
        rc = load_failed(w, "clip_text", err);
        goto cleanup;
    }
    if ((rc = clip_text_bind(m, NULL, err))) goto cleanup;
    *out = m;
    return OIR_OK;
cleanup:
    clip_text_free(m);
    return rc;
}

static void bind_all(void *user, sd_binder *b) {
    clip_text_model *m = user;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) clip_layer_bind(b, &m->layers[l]);
    sd_bind_norm(b, &m->final_ln);
    sd_bind_linear(b, &m->text_projection);
}

int clip_text_bind(clip_text_model *m, oir_backend *be, oir_error *err) {
    if (!m) return oir_fail(err, OIR_E_ARG, "clip_text_bind: NULL model");
    return sd_dev_rebind(&m->dev, be, bind_all, m, "clip_text", err);
}

const char *clip_text_backend_name(const clip_text_model *m) { return m && m->dev.be ? m->dev.be->name : "none"; }
oir_backend *clip_text_backend(const clip_text_model *m) { return m ? m->dev.be : NULL; }

void clip_text_free(clip_text_model *m) {
    if (!m) return;
    sd_dev_close(&m->dev);
    free(m->layers);
    free(m);
}

const clip_text_config *clip_text_get_config(const clip_text_model *m) { return &m->cfg; }

/* ---- encoder layer ----------------------------------------------------- */

#define ALIGN_F(n) (((n) + 15) / 16 * 16) /* floats, to 64 bytes */

size_t clip_layer_scratch(int B, int T, int D, int I, int heads) {
    size_t n = (size_t)B * T;
    return 4 * ALIGN_F(n * D) + ALIGN_F(n * I) +
           ALIGN_F(op_attention_scratch(T, T, heads, D / heads));
}

void clip_layer_forward(oir_backend *be, const clip_layer *l, be_view x, int B, int T, int D, int I, int heads,
                        clip_act act, be_view key_mask, int causal, be_view scratch) {
    const int n = B * T, d = D / heads;
    be_view h = scratch;                          /* (B, T, D) */
    be_view q = be_view_f(h, ALIGN_F((size_t)n * D)); /* (B, T, D) */
    be_view k = be_view_f(q, ALIGN_F((size_t)n * D)); /* (B, T, D) */
    be_view v = be_view_f(k, ALIGN_F((size_t)n * D)); /* (B, T, D) */
    be_view f = be_view_f(v, ALIGN_F((size_t)n * D)); /* (B, T, I) */

    /* residual = x; x = layer_norm1(x); x = self_attn(x); x = residual + x */
    be_layer_norm(be, h, x, l->ln1.bw, l->ln1.bb, n, D, CLIP_LN_EPS, 0);
    be_linear(be, q, h, l->q.bw, l->q.bb, n, D, D);
    be_linear(be, k, h, l->k.bw, l->k.bb, n, D, D);
    be_linear(be, v, h, l->v.bw, l->v.bb, n, D, D);
    be_attention(be, h, q, k, v, B, T, T, heads, d, 1.0f / sqrtf((float)d), key_mask, causal);
    be_linear(be, q, h, l->o.bw, l->o.bb, n, D, D);
    be_add(be, x, x, q, (size_t)n * D);

    /* residual = x; x = layer_norm2(x); x = fc2(act(fc1(x))); x = residual + x */
    be_layer_norm(be, h, x, l->ln2.bw, l->ln2.bb, n, D, CLIP_LN_EPS, 0);
    be_linear(be, f, h, l->fc1.bw, l->fc1.bb, n, D, I);
    be_act(be, act == CLIP_ACT_GELU ? BE_ACT_GELU : BE_ACT_QUICK_GELU, f, f, (size_t)n * I);
    be_linear(be, q, f, l->fc2.bw, l->fc2.bb, n, I, D);
    be_add(be, x, x, q, (size_t)n * D);
}

/* ---- forward ----------------------------------------------------------- */

/* Floats of one chunk of b rows on the backend: the residual stream, the
 * layer scratch, the pooled rows, the final-layer-normed rows and the text
 * embeddings. */
static size_t chunk_floats(const clip_text_config *c, int b, int T) {
    return ALIGN_F((size_t)b * T * c->hidden_size) +
           clip_layer_scratch(b, T, c->hidden_size, c->intermediate_size,
                              c->num_attention_heads) +
           ALIGN_F((size_t)b * c->hidden_size) + ALIGN_F((size_t)b * T * c->hidden_size) +
           ALIGN_F((size_t)b * c->projection_dim);
}

size_t clip_text_arena_bytes(const clip_text_config *cfg, int B, int T) {
    if (B < 1) B = 1;
    if (T < 1) T = 1;
    return chunk_floats(cfg, B, T) * sizeof(float) + 64;
}

int clip_text_forward(const clip_text_model *m, arena *a, const int32_t *ids, int B, int T,
                      float *last_hidden, float *pooled, float *text_embeds, oir_error *err) {
    return clip_text_forward_hidden(m, a, ids, B, T, last_hidden, pooled, text_embeds, NULL,
                                    err);
}

int clip_text_forward_hidden(const clip_text_model *m, arena *a, const int32_t *ids, int B,
                             int T, float *last_hidden, float *pooled, float *text_embeds,
                             float *hidden_states, oir_error *err) {
    const clip_text_config *c = &m->cfg;
    const int D = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers;
    const int heads = c->num_attention_heads, P = c->projection_dim;
    if (B < 1 || T < 1)
        return oir_fail(err, OIR_E_SHAPE, "clip_text: input_ids is (%d, %d), expected B >= 1, "
                                          "T >= 1", B, T);
    if (T > c->max_position_embeddings)
        return oir_fail(err, OIR_E_SHAPE,
                        "clip_text: input_ids has %d tokens, more than max_position_embeddings %d",
                        T, c->max_position_embeddings);
    if (text_embeds && !m->text_projection.w)
        return oir_fail(err, OIR_E_ARG,
                        "clip_text: text_embeds asked for, but the model was loaded without "
                        "text_projection");
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return oir_fail(err, OIR_E_ARG,
                            "clip_text: input_ids[%d][%d] = %d is out of range, expected 0 <= "
                            "id < vocab_size %d",
                            i / T, i % T, (int)ids[i], c->vocab_size);
    if (!m->dev.be) return oir_fail(err, OIR_E_ARG, "clip_text: the model is on no backend (clip_text_bind)");

    /* Rows per chunk: as many as the arena holds. */
    const size_t mark = arena_mark(a);
    size_t avail = a->cap > mark + 64 ? (a->cap - mark - 64) / sizeof(float) : 0;
    int chunk = B;
    while (chunk > 1 && chunk_floats(c, chunk, T) > avail) chunk = chunk > 2 ? chunk / 2 : 1;
    if (chunk_floats(c, chunk, T) > avail)
        return oir_fail(err, OIR_E_NOMEM,
                        "clip_text: arena has %zu bytes free, one row of %d tokens needs %zu",
                        avail * sizeof(float), T, clip_text_arena_bytes(c, 1, T));
    sd_dev *d = (sd_dev *)&m->dev; /* its buffers change, not the model */
    oir_backend *be = d->be;
    sd_dev_arena da;
    int rc = sd_dev_arena_for(d, a, chunk_floats(c, chunk, T) * sizeof(float), &da, err);
    if (rc) return oir_error_prefix(err, "clip_text"), rc;
    be_view x, scratch, pool, lh, te;
    if (!sd_dalloc(&da, (size_t)chunk * T * D, &x) ||                            /* (b, T, D) */
        !sd_dalloc(&da, clip_layer_scratch(chunk, T, D, I, heads), &scratch) || /* layer */
        !sd_dalloc(&da, (size_t)chunk * D, &pool) ||                             /* (b, D) */
        !sd_dalloc(&da, (size_t)chunk * T * D, &lh) ||                           /* (b, T, D) final LN */
        !sd_dalloc(&da, (size_t)chunk * P, &te))                                 /* (b, P) */
        return oir_fail(err, OIR_E_INTERNAL, "clip_text: arena plan mismatch");

    for (int r0 = 0; r0 < B && !rc; r0 += chunk) {
        const int b = B - r0 < chunk ? B - r0 : chunk;
        const int32_t *cid = ids + (size_t)r0 * T;
        /* embeddings: token_embedding(ids) + position_embedding(arange(T)),
         * on the host (in place on the CPU backend), then uploaded */
        float *xh = be_host_ptr(be, x);
        float *emb = xh ? xh : sd_dev_staging(d, (size_t)b * T * D, err);
        if (!emb) {
            rc = err ? err->code : OIR_E_NOMEM;
            break;
        }
        for (int r = 0; r < b; r++)
            for (int t = 0; t < T; t++) {
                const float *tk = m->token_embedding + (size_t)cid[r * T + t] * D;
                const float *pe = m->position_embedding + (size_t)t * D;
                float *o = emb + ((size_t)r * T + t) * D;
                for (int i = 0; i < D; i++) o[i] = tk[i] + pe[i];
            }
        if (!xh) be_upload(be, x, emb, (size_t)b * T * D * sizeof(float));
        for (int l = 0; l < L && !rc; l++) {
            if (hidden_states) /* rows r0.. of layer l: contiguous */
                rc = be_download(be, hidden_states + (((size_t)l * B + r0) * T) * D, x,
                                 sizeof(float) * b * T * D, err);
            clip_layer_forward(be, &m->layers[l], x, b, T, D, I, heads, c->hidden_act, BE_NONE, 1, scratch);
        }
        if (hidden_states && !rc)
            rc = be_download(be, hidden_states + (((size_t)L * B + r0) * T) * D, x, sizeof(float) * b * T * D,
                             err);

        /* final_layer_norm; pooled = row's hidden state at argmax(ids) */
        if (last_hidden) be_layer_norm(be, lh, x, m->final_ln.bw, m->final_ln.bb, b * T, D, CLIP_LN_EPS, 0);
        if (pooled || text_embeds) {
            for (int r = 0; r < b; r++) {
                int at = 0;
                for (int t = 1; t < T; t++)
                    if (cid[r * T + t] > cid[r * T + at]) at = t;
                if (last_hidden)
                    be_copy(be, be_view_f(pool, (size_t)r * D), be_view_f(lh, ((size_t)r * T + at) * D),
                            sizeof(float) * D);
                else
                    be_layer_norm(be, be_view_f(pool, (size_t)r * D), be_view_f(x, ((size_t)r * T + at) * D),
                                  m->final_ln.bw, m->final_ln.bb, 1, D, CLIP_LN_EPS, 0);
            }
            if (text_embeds) be_linear(be, te, pool, m->text_projection.bw, BE_NONE, b, D, P);
        }
        /* the downloads run what is queued and report its first failure */
        if (!rc && last_hidden)
            rc = be_download(be, last_hidden + (size_t)r0 * T * D, lh, sizeof(float) * b * T * D, err);
        if (!rc && pooled) rc = be_download(be, pooled + (size_t)r0 * D, pool, sizeof(float) * b * D, err);
        if (!rc && text_embeds) rc = be_download(be, text_embeds + (size_t)r0 * P, te, sizeof(float) * b * P, err);
        if (!rc && !last_hidden && !pooled && !text_embeds) rc = be_sync(be, err);
    }
    if (rc) {
        oir_error ignore;
        be_sync(be, &ignore); /* clears the sticky status of a failed forward */
        oir_error_prefix(err, "clip_text");
    }
    return rc;
}
