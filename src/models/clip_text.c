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
    const float *token_embedding;    /* (V, D) */
    const float *position_embedding; /* (Tmax, D) */
    clip_layer *layers;              /* (L) */
    const float *final_ln_w;         /* (D) */
    const float *final_ln_b;         /* (D) */
    const float *text_projection;    /* (P, D), or NULL */
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

int clip_layer_get(clip_layer *l, weights *w, const char *prefix, int D, int I) {
    char n[256];
#define GET(field, suffix, nd, a, b)                                   \
    (snprintf(n, sizeof n, "%s%s", prefix, suffix),                    \
     l->field = clip_weight(w, n, nd, a, b, 0, 0))
    GET(ln1_w, "layer_norm1.weight", 1, D, 0);
    GET(ln1_b, "layer_norm1.bias", 1, D, 0);
    GET(q_w, "self_attn.q_proj.weight", 2, D, D);
    GET(q_b, "self_attn.q_proj.bias", 1, D, 0);
    GET(k_w, "self_attn.k_proj.weight", 2, D, D);
    GET(k_b, "self_attn.k_proj.bias", 1, D, 0);
    GET(v_w, "self_attn.v_proj.weight", 2, D, D);
    GET(v_b, "self_attn.v_proj.bias", 1, D, 0);
    GET(o_w, "self_attn.out_proj.weight", 2, D, D);
    GET(o_b, "self_attn.out_proj.bias", 1, D, 0);
    GET(ln2_w, "layer_norm2.weight", 1, D, 0);
    GET(ln2_b, "layer_norm2.bias", 1, D, 0);
    GET(fc1_w, "mlp.fc1.weight", 2, I, D);
    GET(fc1_b, "mlp.fc1.bias", 1, I, 0);
    GET(fc2_w, "mlp.fc2.weight", 2, D, I);
    GET(fc2_b, "mlp.fc2.bias", 1, D, 0);
#undef GET
    return l->ln1_w && l->ln1_b && l->q_w && l->q_b && l->k_w && l->k_b && l->v_w && l->v_b &&
           l->o_w && l->o_b && l->ln2_w && l->ln2_b && l->fc1_w && l->fc1_b && l->fc2_w &&
           l->fc2_b;
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
    m->final_ln_w = clip_weight(w, "text_model.final_layer_norm.weight", 1, D, 0, 0, 0);
    m->final_ln_b = clip_weight(w, "text_model.final_layer_norm.bias", 1, D, 0, 0, 0);
    ok &= m->final_ln_w && m->final_ln_b;
    if (with_projection) {
        m->text_projection =
            clip_weight(w, "text_projection.weight", 2, cfg->projection_dim, D, 0, 0);
        ok &= m->text_projection != NULL;
    }
    if (!ok) {
        rc = load_failed(w, "clip_text", err);
        goto cleanup;
    }
    *out = m;
    return OIR_OK;
cleanup:
    clip_text_free(m);
    return rc;
}

void clip_text_free(clip_text_model *m) {
    if (!m) return;
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

void clip_layer_forward(const clip_layer *l, float *x, int B, int T, int D, int I, int heads,
                        clip_act act, const uint8_t *key_mask, int causal, float *scratch) {
    const int n = B * T, d = D / heads;
    float *h = scratch;                              /* (B, T, D) */
    float *q = h + ALIGN_F((size_t)n * D);           /* (B, T, D) */
    float *k = q + ALIGN_F((size_t)n * D);           /* (B, T, D) */
    float *v = k + ALIGN_F((size_t)n * D);           /* (B, T, D) */
    float *f = v + ALIGN_F((size_t)n * D);           /* (B, T, I) */
    float *att_scratch = f + ALIGN_F((size_t)n * I); /* op_attention_scratch */

    /* residual = x; x = layer_norm1(x); x = self_attn(x); x = residual + x */
    op_layer_norm(h, x, l->ln1_w, l->ln1_b, n, D, CLIP_LN_EPS);
    op_linear(q, h, l->q_w, l->q_b, n, D, D);
    op_linear(k, h, l->k_w, l->k_b, n, D, D);
    op_linear(v, h, l->v_w, l->v_b, n, D, D);
    op_attention(h, q, k, v, B, T, T, heads, d, 1.0f / sqrtf((float)d), key_mask, causal,
                 att_scratch);
    op_linear(q, h, l->o_w, l->o_b, n, D, D);
    op_add(x, x, q, (size_t)n * D);

    /* residual = x; x = layer_norm2(x); x = fc2(act(fc1(x))); x = residual + x */
    op_layer_norm(h, x, l->ln2_w, l->ln2_b, n, D, CLIP_LN_EPS);
    op_linear(f, h, l->fc1_w, l->fc1_b, n, D, I);
    if (act == CLIP_ACT_GELU)
        op_gelu(f, f, (size_t)n * I);
    else
        op_quick_gelu(f, f, (size_t)n * I);
    op_linear(q, f, l->fc2_w, l->fc2_b, n, I, D);
    op_add(x, x, q, (size_t)n * D);
}

/* ---- forward ----------------------------------------------------------- */

/* Floats of one chunk of b rows: the residual stream, the layer scratch and
 * the pooled rows. */
static size_t chunk_floats(const clip_text_config *c, int b, int T) {
    return ALIGN_F((size_t)b * T * c->hidden_size) +
           clip_layer_scratch(b, T, c->hidden_size, c->intermediate_size,
                              c->num_attention_heads) +
           ALIGN_F((size_t)b * c->hidden_size);
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
    const int heads = c->num_attention_heads;
    if (B < 1 || T < 1)
        return oir_fail(err, OIR_E_SHAPE, "clip_text: input_ids is (%d, %d), expected B >= 1, "
                                          "T >= 1", B, T);
    if (T > c->max_position_embeddings)
        return oir_fail(err, OIR_E_SHAPE,
                        "clip_text: input_ids has %d tokens, more than max_position_embeddings %d",
                        T, c->max_position_embeddings);
    if (text_embeds && !m->text_projection)
        return oir_fail(err, OIR_E_ARG,
                        "clip_text: text_embeds asked for, but the model was loaded without "
                        "text_projection");
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return oir_fail(err, OIR_E_ARG,
                            "clip_text: input_ids[%d][%d] = %d is out of range, expected 0 <= "
                            "id < vocab_size %d",
                            i / T, i % T, (int)ids[i], c->vocab_size);

    /* Rows per chunk: as many as the arena holds. */
    const size_t mark = arena_mark(a);
    size_t avail = a->cap > mark + 64 ? (a->cap - mark - 64) / sizeof(float) : 0;
    int chunk = B;
    while (chunk > 1 && chunk_floats(c, chunk, T) > avail) chunk = chunk > 2 ? chunk / 2 : 1;
    if (chunk_floats(c, chunk, T) > avail)
        return oir_fail(err, OIR_E_NOMEM,
                        "clip_text: arena has %zu bytes free, one row of %d tokens needs %zu",
                        avail * sizeof(float), T, clip_text_arena_bytes(c, 1, T));
    float *x = arena_floats(a, (size_t)chunk * T * D);                            /* (b, T, D) */
    float *scratch = arena_floats(a, clip_layer_scratch(chunk, T, D, I, heads)); /* layer */
    float *pool = arena_floats(a, (size_t)chunk * D);                             /* (b, D) */
    if (!x || !scratch || !pool) {
        arena_reset(a, mark);
        return oir_fail(err, OIR_E_INTERNAL, "clip_text: arena plan mismatch");
    }

    for (int r0 = 0; r0 < B; r0 += chunk) {
        const int b = B - r0 < chunk ? B - r0 : chunk;
        const int32_t *cid = ids + (size_t)r0 * T;
        /* embeddings: token_embedding(ids) + position_embedding(arange(T)) */
        for (int r = 0; r < b; r++)
            for (int t = 0; t < T; t++) {
                const float *te = m->token_embedding + (size_t)cid[r * T + t] * D;
                const float *pe = m->position_embedding + (size_t)t * D;
                float *o = x + ((size_t)r * T + t) * D;
                for (int i = 0; i < D; i++) o[i] = te[i] + pe[i];
            }
        for (int l = 0; l < L; l++) {
            if (hidden_states)
                for (int r = 0; r < b; r++)
                    memcpy(hidden_states + (((size_t)l * B + r0 + r) * T) * D,
                           x + (size_t)r * T * D, sizeof(float) * T * D);
            clip_layer_forward(&m->layers[l], x, b, T, D, I, heads, c->hidden_act, NULL, 1,
                               scratch);
        }
        if (hidden_states)
            for (int r = 0; r < b; r++)
                memcpy(hidden_states + (((size_t)L * B + r0 + r) * T) * D,
                       x + (size_t)r * T * D, sizeof(float) * T * D);

        /* final_layer_norm; pooled = row's hidden state at argmax(ids) */
        if (last_hidden)
            op_layer_norm(last_hidden + (size_t)r0 * T * D, x, m->final_ln_w, m->final_ln_b,
                          b * T, D, CLIP_LN_EPS);
        if (!pooled && !text_embeds) continue;
        for (int r = 0; r < b; r++) {
            int at = 0;
            for (int t = 1; t < T; t++)
                if (cid[r * T + t] > cid[r * T + at]) at = t;
            if (last_hidden)
                memcpy(pool + (size_t)r * D, last_hidden + ((size_t)(r0 + r) * T + at) * D,
                       sizeof(float) * D);
            else
                op_layer_norm(pool + (size_t)r * D, x + ((size_t)r * T + at) * D, m->final_ln_w,
                              m->final_ln_b, 1, D, CLIP_LN_EPS);
        }
        if (pooled) memcpy(pooled + (size_t)r0 * D, pool, sizeof(float) * b * D);
        if (text_embeds)
            op_linear(text_embeds + (size_t)r0 * c->projection_dim, pool, m->text_projection,
                      NULL, b, D, c->projection_dim);
    }
    arena_reset(a, mark);
    return OIR_OK;
}
