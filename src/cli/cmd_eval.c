/* oir eval COMPONENT: runs one model component on tensors read from a
 * .safetensors file and writes its outputs to another, so anyone can compare
 * the C engine with PyTorch tensor by tensor. Tensor names are the
 * diffusers / transformers argument and output names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_sd.h"
#include "core/arena.h"
#include "diffusion/ddim.h"
#include "io/safetensors.h"
#include "models/loader.h"

typedef struct {
    /* options */
    const char *comp_name;
    const char *model_path, *variant, *config_dir, *in_path, *out_path, *tok_mode_name;
    tokenizer_mode tok_mode;
    cli_strs prompts;
    int max_length;
    /* inputs and outputs */
    st_file *in;
    st_writer *w;
    /* models: loaded through the SD loader (a pipeline, checkpoint or one
     * component's folder), the CLIP loader or a tokenizer folder */
    sd_model *sd;
    clip_model *clip;
    tokenizer *part_tok;
    arena a;
    /* malloc'd buffers, freed at the end */
    void *bufs[32];
    int nbufs;
} eval_ctx;

typedef struct {
    const char *name;
    int (*run)(eval_ctx *c, oir_error *err);
    const char *help; /* model, inputs, outputs */
} eval_component;

/* ---- buffers, inputs, outputs --------------------------------------------- */

static void *ealloc(eval_ctx *c, size_t n, oir_error *err) {
    if (c->nbufs >= (int)(sizeof c->bufs / sizeof c->bufs[0])) {
        oir_fail(err, OIR_E_INTERNAL, "eval: too many buffers");
        return NULL;
    }
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        oir_fail(err, OIR_E_NOMEM, "eval: cannot allocate %zu bytes", n);
        return NULL;
    }
    c->bufs[c->nbufs++] = p;
    return p;
}

static const tensor *in_find(const eval_ctx *c, const char *name) {
    return c->in ? st_find(c->in, name) : NULL;
}

/* Every name in `need` must be in the input file; names all missing ones. */
static int in_require(const eval_ctx *c, const char *const *need, int n, oir_error *err) {
    char list[512] = "", missing[512] = "";
    int nmiss = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", need[i]);
        if (!in_find(c, need[i])) {
            l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s", nmiss++ ? ", " : "", need[i]);
        }
    }
    if (!c->in)
        return oir_fail(err, OIR_E_ARG, "eval %s needs --in FILE.safetensors with the tensors %s",
                        c->comp_name, list);
    if (nmiss)
        return oir_fail(err, OIR_E_MISSING, "%s: missing tensor%s %s (eval %s reads %s)",
                        c->in_path, nmiss > 1 ? "s" : "", missing, c->comp_name, list);
    return OIR_OK;
}

/* OIR_E_SHAPE: "IN: tensor NAME has shape [got], expected SPEC". */
static int shape_fail(const eval_ctx *c, const char *name, const tensor *t, const char *spec,
                      oir_error *err) {
    char got[128];
    return oir_fail(err, OIR_E_SHAPE, "%s: tensor %s has shape %s, expected %s", c->in_path, name,
                    tensor_shape_str(t, got, sizeof got), spec);
}

/* Checks t's shape against want (ndim dims, -1 = any, every dim >= 1). */
static int in_shape(const eval_ctx *c, const char *name, const tensor *t, int ndim,
                    const int64_t *want, const char *spec, oir_error *err) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = (want[i] < 0 || t->shape[i] == want[i]) && t->shape[i] > 0;
    return ok ? OIR_OK : shape_fail(c, name, t, spec, err);
}

static int is_float(dtype d) { return d == DT_F32 || d == DT_F16 || d == DT_BF16 || d == DT_F64; }
static int is_int(dtype d) {
    return d == DT_I64 || d == DT_I32 || d == DT_I16 || d == DT_I8 || d == DT_U8 || d == DT_BOOL;
}

/* Float input converted to float32 (a new buffer). */
static float *in_f32(eval_ctx *c, const char *name, const tensor *t, oir_error *err) {
    if (!is_float(t->type)) {
        oir_fail(err, OIR_E_FORMAT,
                 "%s: tensor %s is %s; expected a float tensor (F32, F16, BF16 or F64)", c->in_path,
                 name, dtype_name(t->type));
        return NULL;
    }
    size_t n = (size_t)tensor_numel(t);
    float *out = ealloc(c, n * sizeof *out, err);
    if (out && convert_to_f32(out, t->data, t->type, n, err)) return NULL;
    return out;
}

static int64_t int_at(const tensor *t, size_t i) {
    switch (t->type) {
    case DT_I64: {
        int64_t v;
        memcpy(&v, (const char *)t->data + i * 8, 8);
        return v;
    }
    case DT_I32: {
        int32_t v;
        memcpy(&v, (const char *)t->data + i * 4, 4);
        return v;
    }
    case DT_I16: {
        int16_t v;
        memcpy(&v, (const char *)t->data + i * 2, 2);
        return v;
    }
    case DT_I8: return ((const int8_t *)t->data)[i];
    default: return ((const uint8_t *)t->data)[i];
    }
}

/* Integer input as int64 (a new buffer); float inputs must hold integers. */
static int64_t *in_i64(eval_ctx *c, const char *name, const tensor *t, oir_error *err) {
    size_t n = (size_t)tensor_numel(t);
    int64_t *out = ealloc(c, n * sizeof *out, err);
    if (!out) return NULL;
    if (is_int(t->type)) {
        for (size_t i = 0; i < n; i++)
            out[i] = int_at(t, i);
        return out;
    }
    if (!is_float(t->type)) {
        oir_fail(err, OIR_E_FORMAT, "%s: tensor %s is %s; expected an integer tensor (I64 or I32)",
                 c->in_path, name, dtype_name(t->type));
        return NULL;
    }
    float *f = in_f32(c, name, t, err);
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != floorf(f[i]) || fabsf(f[i]) > 1e9f) {
            oir_fail(err, OIR_E_FORMAT, "%s: tensor %s[%zu] = %g is not an integer", c->in_path,
                     name, i, f[i]);
            return NULL;
        }
        out[i] = (int64_t)f[i];
    }
    return out;
}

/* A scalar: shape (), (1). */
static int is_scalar(const tensor *t) { return tensor_numel(t) == 1 && t->ndim <= 1; }

static int out_f32(eval_ctx *c, const char *name, const float *data, int ndim, int64_t d0,
                   int64_t d1, int64_t d2, int64_t d3, oir_error *err) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    return st_writer_add_f32(c->w, name, data, ndim, shape, err);
}

static int out_i64(eval_ctx *c, const char *name, int64_t *data, int ndim, const int64_t *shape,
                   oir_error *err) {
    tensor t = {.type = DT_I64, .ndim = ndim, .data = data};
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    return st_writer_add(c->w, name, &t, err);
}

/* ---- models ------------------------------------------------------------------ */

static int need_model(const eval_ctx *c, const char *what, oir_error *err) {
    if (!c->model_path)
        return oir_fail(err, OIR_E_ARG, "eval %s needs --model PATH (%s)", c->comp_name, what);
    return OIR_OK;
}

static int not_a_model(const eval_ctx *c, const char *what, oir_error *err) {
    struct stat sb;
    if (stat(c->model_path, &sb) != 0)
        return oir_fail(err, OIR_E_IO, "--model %s: no such file or folder", c->model_path);
    return oir_fail(err, OIR_E_FORMAT, "--model %s: not %s", c->model_path, what);
}

/* --model as the SD loader takes it: a pipeline or single-file checkpoint
 * (sd_model_load), or one component's folder (sd_component_load). */
static int load_sd(eval_ctx *c, int components, oir_error *err) {
    sd_load_params p = sd_load_default_params();
    p.variant = c->variant;
    p.components = components;
    p.config_dir = c->config_dir;
    p.tokenizer_mode = c->tok_mode;
    if (model_path_detect(c->model_path) == MODEL_PATH_COMPONENT)
        return sd_component_load(&c->sd, c->model_path, components, &p, err);
    return sd_model_load(&c->sd, c->model_path, &p, err);
}

static int get_unet(eval_ctx *c, const unet_model **out, oir_error *err) {
    int rc = need_model(c, "a diffusers folder, a single-file checkpoint or a unet folder", err);
    if (rc) return rc;
    switch (model_path_detect(c->model_path)) {
    case MODEL_PATH_DIFFUSERS:
    case MODEL_PATH_SINGLE_FILE:
    case MODEL_PATH_COMPONENT:
        if ((rc = load_sd(c, SD_UNET, err))) return rc;
        *out = c->sd->unet;
        return OIR_OK;
    case MODEL_PATH_PICKLE: return loader_refuse_pickle(c->model_path, err);
    default: return not_a_model(c, "a Stable Diffusion model or UNet folder", err);
    }
}

static int get_vae(eval_ctx *c, const vae_model **out, oir_error *err) {
    int rc = need_model(c, "a diffusers folder, a single-file checkpoint or a vae folder", err);
    if (rc) return rc;
    switch (model_path_detect(c->model_path)) {
    case MODEL_PATH_DIFFUSERS:
    case MODEL_PATH_SINGLE_FILE:
    case MODEL_PATH_COMPONENT:
        if ((rc = load_sd(c, SD_VAE, err))) return rc;
        *out = c->sd->vae;
        return OIR_OK;
    case MODEL_PATH_PICKLE: return loader_refuse_pickle(c->model_path, err);
    default: return not_a_model(c, "a Stable Diffusion model or VAE folder", err);
    }
}

/* The text model (and its tokenizer when want_tok); *proj: text_embeds available. */
static int get_text(eval_ctx *c, int want_tok, const clip_text_model **out, const tokenizer **tok,
                    int *proj, oir_error *err) {
    int rc = need_model(c,
                        "a diffusers folder, a single-file checkpoint, a CLIP folder or a "
                        "text_encoder folder",
                        err);
    if (rc) return rc;
    *tok = NULL;
    *proj = 0;
    switch (model_path_detect(c->model_path)) {
    case MODEL_PATH_COMPONENT:
        if ((rc = load_sd(c, SD_TEXT_ENCODER, err))) return rc;
        *out = c->sd->text_encoder;
        *proj = c->sd->text_projection;
        break;
    case MODEL_PATH_DIFFUSERS:
    case MODEL_PATH_SINGLE_FILE:
        if ((rc = load_sd(c, SD_TEXT_ENCODER | (want_tok ? SD_TOKENIZER : 0), err))) return rc;
        *out = c->sd->text_encoder;
        *tok = c->sd->tokenizer;
        break;
    case MODEL_PATH_CLIP:
        if ((rc = clip_model_load(&c->clip, c->model_path, err))) return rc;
        tokenizer_set_mode(c->clip->tokenizer, c->tok_mode);
        *out = c->clip->text;
        *tok = c->clip->tokenizer;
        *proj = 1;
        break;
    case MODEL_PATH_PICKLE: return loader_refuse_pickle(c->model_path, err);
    default:
        return not_a_model(c, "a Stable Diffusion model, CLIP folder or text encoder folder", err);
    }
    if (want_tok && !*tok)
        return oir_fail(err, OIR_E_MISSING,
                        "--model %s: no tokenizer to encode --prompt: give input_ids in --in, the "
                        "pipeline or CLIP folder, or (single-file checkpoints whose text encoder the "
                        "built-in CLIP vocabulary does not fit) OIR_TOKENIZER",
                        c->model_path);
    return OIR_OK;
}

static int get_tokenizer(eval_ctx *c, const tokenizer **out, oir_error *err) {
    int rc = need_model(c, "a diffusers folder, a CLIP folder or a tokenizer folder", err);
    if (rc) return rc;
    char p[1200];
    switch (model_path_detect(c->model_path)) {
    case MODEL_PATH_DIFFUSERS:
    case MODEL_PATH_SINGLE_FILE:
        if ((rc = load_sd(c, SD_TOKENIZER, err))) return rc;
        if (!c->sd->tokenizer)
            return oir_fail(err, OIR_E_MISSING,
                            "--model %s: no tokenizer (a single-file checkpoint has none: set "
                            "OIR_TOKENIZER to a tokenizer folder)",
                            c->model_path);
        *out = c->sd->tokenizer;
        return OIR_OK;
    case MODEL_PATH_PICKLE: return loader_refuse_pickle(c->model_path, err);
    default: break;
    }
    snprintf(p, sizeof p, "%s/vocab.json", c->model_path);
    struct stat sb;
    if (stat(p, &sb) != 0)
        return not_a_model(c, "a model or tokenizer folder (no vocab.json)", err);
    if ((rc = tokenizer_load(&c->part_tok, c->model_path, err))) return rc;
    tokenizer_set_mode(c->part_tok, c->tok_mode);
    *out = c->part_tok;
    return OIR_OK;
}

/* Prompts from --prompt (or, for tokenize, the uint8 tensor "text" of --in)
 * as ids (B, max_len). */
static int tokenize_rows(eval_ctx *c, const tokenizer *tok, int max_len, int64_t **ids_out,
                         int *B_out, oir_error *err) {
    const tensor *text = c->prompts.n ? NULL : in_find(c, "text");
    int B = c->prompts.n;
    int64_t len = 0;
    if (!B) {
        if (!text)
            return oir_fail(err, OIR_E_ARG, "eval %s needs --prompt TEXT (repeat for more rows)%s",
                            c->comp_name,
                            !strcmp(c->comp_name, "tokenize")
                                ? " or --in FILE with a uint8 tensor text (N) or (B, N) of UTF-8 "
                                  "bytes, zero-padded"
                                : " or input_ids in --in");
        if ((text->type != DT_U8 && text->type != DT_I8) || text->ndim < 1 || text->ndim > 2) {
            char got[128];
            return oir_fail(err, OIR_E_SHAPE, "%s: tensor text is %s %s, expected U8 (N) or (B, N)",
                            c->in_path, dtype_name(text->type),
                            tensor_shape_str(text, got, sizeof got));
        }
        B = text->ndim == 2 ? (int)text->shape[0] : 1;
        len = text->shape[text->ndim - 1];
    }
    int64_t *ids = ealloc(c, (size_t)B * max_len * sizeof *ids, err);
    int32_t *row = ealloc(c, (size_t)max_len * sizeof *row, err);
    char *buf = text ? ealloc(c, (size_t)len + 1, err) : NULL;
    if (!ids || !row || (text && !buf)) return OIR_E_NOMEM;
    for (int b = 0; b < B; b++) {
        const char *s = c->prompts.n ? c->prompts.v[b] : buf;
        if (text) {
            memcpy(buf, (const char *)text->data + (size_t)b * len, (size_t)len);
            buf[len] = 0;
        }
        int rc = tokenizer_encode(tok, s, max_len, row, NULL, NULL, err);
        if (rc) return oir_error_prefix(err, "prompt %d", b);
        for (int i = 0; i < max_len; i++)
            ids[(size_t)b * max_len + i] = row[i];
    }
    *ids_out = ids;
    *B_out = B;
    return OIR_OK;
}

/* ---- components -------------------------------------------------------------- */

static int run_tokenize(eval_ctx *c, oir_error *err) {
    const tokenizer *tok = NULL;
    int64_t *ids;
    int B, rc;
    if ((rc = get_tokenizer(c, &tok, err)) ||
        (rc = tokenize_rows(c, tok, c->max_length, &ids, &B, err)))
        return rc;
    const int64_t shape[2] = {B, c->max_length};
    return out_i64(c, "input_ids", ids, 2, shape, err);
}

static int run_text(eval_ctx *c, oir_error *err) {
    const clip_text_model *m = NULL;
    const tokenizer *tok = NULL;
    int proj, rc;
    if ((rc = get_text(c, c->prompts.n > 0, &m, &tok, &proj, err))) return rc;
    const clip_text_config *cfg = clip_text_get_config(m);
    int64_t *ids = NULL;
    int B, T;
    if (c->prompts.n) {
        T = cfg->max_position_embeddings;
        if ((rc = tokenize_rows(c, tok, T, &ids, &B, err))) return rc;
    } else {
        const char *need[] = {"input_ids"};
        if ((rc = in_require(c, need, 1, err))) return rc;
        const tensor *t = in_find(c, "input_ids");
        char spec[96];
        snprintf(spec, sizeof spec, "(B, T) with T <= %d (max_position_embeddings)",
                 cfg->max_position_embeddings);
        const int64_t want[2] = {-1, -1};
        if ((rc = in_shape(c, "input_ids", t, 2, want, spec, err))) return rc;
        if (t->shape[1] > cfg->max_position_embeddings)
            return oir_fail(err, OIR_E_SHAPE,
                            "%s: tensor input_ids has %lld positions, expected at most %d",
                            c->in_path, (long long)t->shape[1], cfg->max_position_embeddings);
        if (!is_int(t->type))
            return oir_fail(err, OIR_E_FORMAT, "%s: tensor input_ids is %s; expected I64 or I32",
                            c->in_path, dtype_name(t->type));
        if (!(ids = in_i64(c, "input_ids", t, err))) return err->code;
        B = (int)t->shape[0];
        T = (int)t->shape[1];
    }
    size_t n = (size_t)B * T;
    int32_t *ids32 = ealloc(c, n * sizeof *ids32, err);
    if (!ids32) return err->code;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return oir_fail(err, OIR_E_ARG,
                            "input_ids[%zu][%zu] = %lld is outside the vocabulary 0..%d", i / T,
                            i % T, (long long)ids[i], cfg->vocab_size - 1);
        ids32[i] = (int32_t)ids[i];
    }
    int D = cfg->hidden_size, P = cfg->projection_dim;
    float *last = ealloc(c, n * D * sizeof(float), err);
    float *pooled = ealloc(c, (size_t)B * D * sizeof(float), err);
    float *embeds = proj ? ealloc(c, (size_t)B * P * sizeof(float), err) : NULL;
    if (!last || !pooled || (proj && !embeds)) return err->code;
    if ((rc = arena_init(&c->a, clip_text_arena_bytes(cfg, B, T), err)) ||
        (rc = clip_text_forward(m, &c->a, ids32, B, T, last, pooled, embeds, err)) ||
        (rc = out_f32(c, "last_hidden_state", last, 3, B, T, D, 0, err)) ||
        (rc = out_f32(c, "pooler_output", pooled, 2, B, D, 0, 0, err)))
        return rc;
    if (proj) return out_f32(c, "text_embeds", embeds, 2, B, P, 0, 0, err);
    return OIR_OK;
}

static int run_vision(eval_ctx *c, oir_error *err) {
    int rc = need_model(c, "a Hugging Face CLIP folder", err);
    if (rc) return rc;
    const char *need[] = {"pixel_values"};
    if ((rc = in_require(c, need, 1, err))) return rc;
    if (model_path_detect(c->model_path) == MODEL_PATH_UNKNOWN)
        return not_a_model(c, "a CLIP folder", err);
    if ((rc = clip_model_load(&c->clip, c->model_path, err))) return rc;
    const clip_vision_config *cfg = clip_vision_get_config(c->clip->vision);
    int S = cfg->image_size, G = clip_vision_grid(cfg), D = cfg->hidden_size,
        P = cfg->projection_dim;
    const tensor *px = in_find(c, "pixel_values");
    char spec[96];
    snprintf(spec, sizeof spec, "(B, %d, %d, %d)", cfg->num_channels, S, S);
    const int64_t want[4] = {-1, cfg->num_channels, S, S};
    if ((rc = in_shape(c, "pixel_values", px, 4, want, spec, err))) return rc;
    int B = (int)px->shape[0];
    float *pixels = in_f32(c, "pixel_values", px, err);
    if (!pixels) return err->code;
    uint8_t *mask = NULL;
    const tensor *pm = in_find(c, "patch_mask");
    if (pm) {
        const int64_t want2[2] = {B, (int64_t)G * G}, want3[3] = {B, G, G};
        snprintf(spec, sizeof spec, "(%d, %d) or (%d, %d, %d) (B, grid x grid)", B, G * G, B, G, G);
        if (pm->ndim == 3 ? (rc = in_shape(c, "patch_mask", pm, 3, want3, spec, err))
                          : (rc = in_shape(c, "patch_mask", pm, 2, want2, spec, err)))
            return rc;
        size_t n = (size_t)B * G * G;
        if (!(mask = ealloc(c, n, err))) return err->code;
        if (is_float(pm->type)) {
            float *f = in_f32(c, "patch_mask", pm, err);
            if (!f) return err->code;
            for (size_t i = 0; i < n; i++)
                mask[i] = f[i] > 0.5f;
        } else if (is_int(pm->type)) {
            for (size_t i = 0; i < n; i++)
                mask[i] = int_at(pm, i) != 0;
        } else {
            return oir_fail(
                err, OIR_E_FORMAT,
                "%s: tensor patch_mask is %s; expected U8, BOOL, an integer or a float type",
                c->in_path, dtype_name(pm->type));
        }
    }
    int T = 1 + G * G;
    float *last = ealloc(c, (size_t)B * T * D * sizeof(float), err);
    float *pooled = ealloc(c, (size_t)B * D * sizeof(float), err);
    float *embeds = ealloc(c, (size_t)B * P * sizeof(float), err);
    if (!last || !pooled || !embeds) return err->code;
    if ((rc = arena_init(&c->a, clip_vision_arena_bytes(cfg, B), err)) ||
        (rc = clip_vision_forward(c->clip->vision, &c->a, pixels, B, S, S, mask, last, pooled,
                                  embeds, err)) ||
        (rc = out_f32(c, "image_embeds", embeds, 2, B, P, 0, 0, err)) ||
        (rc = out_f32(c, "pooler_output", pooled, 2, B, D, 0, 0, err)))
        return rc;
    return out_f32(c, "last_hidden_state", last, 3, B, T, D, 0, err);
}

static int run_unet(eval_ctx *c, oir_error *err) {
    const char *need[] = {"sample", "timestep", "encoder_hidden_states"};
    const unet_model *m = NULL;
    int rc;
    if ((rc = in_require(c, need, 3, err)) || (rc = get_unet(c, &m, err))) return rc;
    const unet_config *cfg = &m->cfg;
    const tensor *ts = in_find(c, "sample"), *tt = in_find(c, "timestep"),
                 *te = in_find(c, "encoder_hidden_states");
    char spec[128];
    int f = 1 << (cfg->n_blocks - 1);
    snprintf(spec, sizeof spec, "(B, %d, h, w) with h, w multiples of %d", cfg->in_channels, f);
    const int64_t want_s[4] = {-1, cfg->in_channels, -1, -1};
    if ((rc = in_shape(c, "sample", ts, 4, want_s, spec, err))) return rc;
    int B = (int)ts->shape[0], h = (int)ts->shape[2], w = (int)ts->shape[3];
    if (h % f || w % f) return shape_fail(c, "sample", ts, spec, err);
    snprintf(spec, sizeof spec, "(%d, T, %d) (B, T, cross_attention_dim)", B,
             cfg->cross_attention_dim);
    const int64_t want_e[3] = {B, -1, cfg->cross_attention_dim};
    if ((rc = in_shape(c, "encoder_hidden_states", te, 3, want_e, spec, err))) return rc;
    int T = (int)te->shape[1];
    if (!is_scalar(tt)) {
        snprintf(spec, sizeof spec, "() or (%d) (one per row)", B);
        const int64_t want_t[1] = {B};
        if ((rc = in_shape(c, "timestep", tt, 1, want_t, spec, err))) return rc;
    }
    float *sample = in_f32(c, "sample", ts, err),
          *ctx = sample ? in_f32(c, "encoder_hidden_states", te, err) : NULL;
    float *t = ealloc(c, (size_t)B * sizeof *t, err);
    if (!sample || !ctx || !t) return err->code;
    if (is_float(tt->type)) {
        float *tv = in_f32(c, "timestep", tt, err);
        if (!tv) return err->code;
        for (int b = 0; b < B; b++)
            t[b] = tv[is_scalar(tt) ? 0 : b];
    } else {
        int64_t *tv = in_i64(c, "timestep", tt, err);
        if (!tv) return err->code;
        for (int b = 0; b < B; b++)
            t[b] = (float)tv[is_scalar(tt) ? 0 : b];
    }
    size_t n = (size_t)B * cfg->out_channels * h * w;
    float *eps = ealloc(c, n * sizeof *eps, err);
    if (!eps) return err->code;
    if ((rc = arena_init(&c->a, unet_arena_bytes(m, B, h, w, T), err)) ||
        (rc = unet_forward(m, &c->a, sample, t, ctx, B, h, w, T, eps, err)))
        return rc;
    return out_f32(c, "noise_pred", eps, 4, B, cfg->out_channels, h, w, err);
}

static int run_vae(eval_ctx *c, int encode, oir_error *err) {
    const char *name = encode ? "image" : "latent";
    const vae_model *m = NULL;
    int rc;
    if ((rc = in_require(c, &name, 1, err)) || (rc = get_vae(c, &m, err))) return rc;
    const vae_config *cfg = &m->cfg;
    int f = vae_downscale(cfg), C = encode ? cfg->in_channels : cfg->latent_channels;
    const tensor *t = in_find(c, name);
    char spec[128];
    if (encode)
        snprintf(spec, sizeof spec, "(B, %d, H, W) with H, W multiples of %d", C, f);
    else
        snprintf(spec, sizeof spec, "(B, %d, h, w) (latent_channels; unscaled)", C);
    const int64_t want[4] = {-1, C, -1, -1};
    if ((rc = in_shape(c, name, t, 4, want, spec, err))) return rc;
    int B = (int)t->shape[0], H = (int)t->shape[2], W = (int)t->shape[3];
    if (encode && (H % f || W % f)) return shape_fail(c, name, t, spec, err);
    float *x = in_f32(c, name, t, err);
    if (!x) return err->code;
    if (encode) {
        float *mean =
            ealloc(c, (size_t)B * cfg->latent_channels * (H / f) * (W / f) * sizeof(float), err);
        if (!mean) return err->code;
        if ((rc = arena_init(&c->a, vae_encode_arena_bytes(m, B, H, W), err)) ||
            (rc = vae_encode_mean(m, &c->a, x, B, H, W, mean, err)))
            return rc;
        return out_f32(c, "latent_mean", mean, 4, B, cfg->latent_channels, H / f, W / f, err);
    }
    float *img = ealloc(c, (size_t)B * cfg->out_channels * (H * f) * (W * f) * sizeof(float), err);
    if (!img) return err->code;
    if ((rc = arena_init(&c->a, vae_decode_arena_bytes(m, B, H, W), err)) ||
        (rc = vae_decode(m, &c->a, x, B, H, W, img, err)))
        return rc;
    return out_f32(c, "image", img, 4, B, cfg->out_channels, H * f, W * f, err);
}

static int run_vae_encode(eval_ctx *c, oir_error *err) { return run_vae(c, 1, err); }
static int run_vae_decode(eval_ctx *c, oir_error *err) { return run_vae(c, 0, err); }

/* Scheduler config: --model's scheduler (a diffusers folder, a scheduler
 * folder or a scheduler_config.json), SD 1.x's for a single-file checkpoint
 * or no --model. */
static int get_ddim_config(eval_ctx *c, ddim_config *cfg, oir_error *err) {
    *cfg = ddim_sd1_config();
    if (!c->model_path) return OIR_OK;
    struct stat sb;
    if (stat(c->model_path, &sb) != 0)
        return oir_fail(err, OIR_E_IO, "--model %s: no such file or folder", c->model_path);
    if (!S_ISDIR(sb.st_mode)) {
        size_t n = strlen(c->model_path);
        if (n >= 5 && !strcmp(c->model_path + n - 5, ".json"))
            return ddim_config_load(cfg, c->model_path, err);
        model_path_kind k = model_path_detect(c->model_path);
        if (k == MODEL_PATH_SINGLE_FILE) return OIR_OK;
        if (k == MODEL_PATH_PICKLE) return loader_refuse_pickle(c->model_path, err);
        return not_a_model(c, "a model, a scheduler folder or a scheduler_config.json", err);
    }
    char p[1200];
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", c->model_path);
    if (stat(p, &sb) == 0) return ddim_config_load(cfg, p, err);
    snprintf(p, sizeof p, "%s/scheduler_config.json", c->model_path);
    if (stat(p, &sb) == 0) return ddim_config_load(cfg, p, err);
    snprintf(p, sizeof p, "%s/model_index.json", c->model_path);
    if (stat(p, &sb) == 0)
        return OIR_OK; /* a pipeline without a scheduler: SD 1.x, as the loader */
    return not_a_model(
        c, "a model folder with scheduler/scheduler_config.json or a scheduler folder", err);
}

static int run_ddim(eval_ctx *c, int invert, oir_error *err) {
    const char *need[] = {"sample", "model_output", "timestep", "num_inference_steps"};
    int rc;
    ddim_config cfg;
    ddim_scheduler s = {0};
    if ((rc = in_require(c, need, 4, err)) || (rc = get_ddim_config(c, &cfg, err))) return rc;
    const tensor *ts = in_find(c, "sample"), *te = in_find(c, "model_output"),
                 *tt = in_find(c, "timestep"), *tn = in_find(c, "num_inference_steps");
    if (ts->ndim < 1 || ts->shape[0] < 1) return shape_fail(c, "sample", ts, "(B, ...)", err);
    char spec[160], got[128];
    if (te->ndim != ts->ndim ||
        memcmp(te->shape, ts->shape, (size_t)ts->ndim * sizeof ts->shape[0])) {
        snprintf(spec, sizeof spec, "%s (the shape of sample)",
                 tensor_shape_str(ts, got, sizeof got));
        return shape_fail(c, "model_output", te, spec, err);
    }
    int B = (int)ts->shape[0];
    size_t n = (size_t)(tensor_numel(ts) / B);
    if (!is_scalar(tt)) {
        snprintf(spec, sizeof spec, "() or (%d) (one per row)", B);
        const int64_t want_t[1] = {B};
        if ((rc = in_shape(c, "timestep", tt, 1, want_t, spec, err))) return rc;
    }
    if (!is_scalar(tn)) return shape_fail(c, "num_inference_steps", tn, "() or (1)", err);
    float *x = in_f32(c, "sample", ts, err), *eps = x ? in_f32(c, "model_output", te, err) : NULL;
    int64_t *tv = eps ? in_i64(c, "timestep", tt, err) : NULL;
    int64_t *nv = tv ? in_i64(c, "num_inference_steps", tn, err) : NULL;
    int64_t *t = nv ? ealloc(c, (size_t)B * sizeof *t, err) : NULL;
    float *out = t ? ealloc(c, (size_t)B * n * sizeof *out, err) : NULL;
    float *x0 = out ? ealloc(c, (size_t)B * n * sizeof *x0, err) : NULL;
    if (!x0) return err->code;
    for (int b = 0; b < B; b++)
        t[b] = tv[is_scalar(tt) ? 0 : b];
    if (nv[0] < 1 || nv[0] > cfg.num_train_timesteps)
        return oir_fail(err, OIR_E_ARG, "%s: num_inference_steps = %lld, expected 1..%d",
                        c->in_path, (long long)nv[0], cfg.num_train_timesteps);
    if ((rc = ddim_init(&s, &cfg, err)) || (rc = ddim_set_timesteps(&s, (int)nv[0], err)))
        goto cleanup;
    for (int b = 0; b < B; b++)
        if (t[b] < 0 || t[b] >= cfg.num_train_timesteps) {
            rc = oir_fail(err, OIR_E_ARG, "%s: timestep[%d] = %lld, expected 0..%d", c->in_path, b,
                          (long long)t[b], cfg.num_train_timesteps - 1);
            goto cleanup;
        }
    int64_t shape[TENSOR_MAX_DIMS];
    memcpy(shape, ts->shape, sizeof shape);
    tensor o = {.type = DT_F32, .ndim = ts->ndim, .data = out};
    memcpy(o.shape, shape, sizeof shape);
    if (invert) {
        if ((rc = ddim_invert_step(&s, out, eps, t, x, B, n, err)) ||
            (rc = st_writer_add(c->w, "next_sample", &o, err)))
            goto cleanup;
    } else {
        tensor o0 = o;
        o0.data = x0;
        if ((rc = ddim_step(&s, out, eps, t, x, B, n, x0, err)) ||
            (rc = st_writer_add(c->w, "prev_sample", &o, err)) ||
            (rc = st_writer_add(c->w, "pred_original_sample", &o0, err)))
            goto cleanup;
    }
cleanup:
    ddim_free(&s);
    return rc;
}

static int run_ddim_step(eval_ctx *c, oir_error *err) { return run_ddim(c, 0, err); }
static int run_ddim_invert(eval_ctx *c, oir_error *err) { return run_ddim(c, 1, err); }

static const eval_component components[] = {
    {"tokenize", run_tokenize,
     "model: diffusers folder, CLIP folder or tokenizer folder (vocab.json + merges.txt);\n"
     "       a single-file checkpoint with $OIR_TOKENIZER\n"
     "   in: --prompt TEXT (repeat for more rows), or --in with text U8 (N) or (B, N):\n"
     "       UTF-8 bytes, zero-padded\n"
     "  out: input_ids I64 (B, L): SD padding with the end token, truncated to\n"
     "       L = --max-length (default 77)"},
    {"text", run_text,
     "model: diffusers folder, single-file checkpoint, CLIP folder, or a text_encoder folder\n"
     "   in: input_ids I64/I32 (B, T), T <= max_position_embeddings; or --prompt TEXT\n"
     "  out: last_hidden_state (B, T, D), pooler_output (B, D); with a CLIP folder (or a\n"
     "       CLIPTextModelWithProjection) also text_embeds (B, P), not normalised"},
    {"vision", run_vision,
     "model: Hugging Face CLIP folder\n"
     "   in: pixel_values (B, 3, S, S), already preprocessed (S = image_size);\n"
     "       optional patch_mask (B, G*G) or (B, G, G), G = S / patch_size: non-zero (floats:\n"
     "       > 0.5) = inside; the class token and inside patches attend only to each other\n"
     "       (docs/DESIGN.md 2.4)\n"
     "  out: image_embeds (B, P) (not normalised), pooler_output (B, D),\n"
     "       last_hidden_state (B, 1 + G*G, D)"},
    {"unet", run_unet,
     "model: diffusers folder, single-file checkpoint, or a unet folder\n"
     "   in: sample (B, 4, h, w), timestep () or (B) (int or float; one per row),\n"
     "       encoder_hidden_states (B, T, cross_attention_dim)\n"
     "  out: noise_pred (B, 4, h, w) (diffusers' UNet2DConditionOutput.sample)"},
    {"vae-encode", run_vae_encode,
     "model: diffusers folder, single-file checkpoint, or a vae folder\n"
     "   in: image (B, 3, H, W) in [-1, 1], H, W multiples of the VAE factor\n"
     "  out: latent_mean (B, 4, H/f, W/f): latent_dist.mean, NOT multiplied by the\n"
     "       scaling factor"},
    {"vae-decode", run_vae_decode,
     "model: as vae-encode\n"
     "   in: latent (B, 4, h, w), unscaled (divide UNet latents by the scaling factor first)\n"
     "  out: image (B, 3, h*f, w*f), about [-1, 1] (decode(latent).sample)"},
    {"ddim-step", run_ddim_step,
     "model: optional: scheduler config of a diffusers folder, a scheduler folder or a\n"
     "       scheduler_config.json (default and single-file checkpoints: SD 1.x's)\n"
     "   in: sample (B, ...), model_output (same shape), timestep () or (B) integers,\n"
     "       num_inference_steps () or (1) integer\n"
     "  out: prev_sample, pred_original_sample (the shape of sample): DDIMScheduler.step,\n"
     "       eta 0, each row at its own timestep"},
    {"ddim-invert-step", run_ddim_invert,
     "model: as ddim-step\n"
     "   in: as ddim-step; timestep is the target t (increasing order: 1, 21, ..., 981)\n"
     "  out: next_sample: the inversion step of docs/DESIGN.md 2.1 from t - 1000/T to t"},
};
#define N_COMPONENTS (int)(sizeof components / sizeof components[0])

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir eval COMPONENT --model PATH --in IN.safetensors --out OUT.safetensors\n"
            "                [--prompt TEXT]... [--max-length 77] [--variant fp16] [--config DIR]\n"
            "                [--tokenizer-mode M]\n"
            "                [--threads N]\n"
            "\n"
            "Runs one component on tensors read from IN and writes its outputs to OUT (written\n"
            "atomically; never IN), so results can be compared with PyTorch tensor by tensor.\n"
            "Tensor names are the diffusers / transformers argument and output names. Float\n"
            "inputs may be F32, F16, BF16 or F64 (computed in float32); ids and timesteps I64\n"
            "or I32. Outputs are F32 (ids I64). Extra tensors in IN are ignored, so a fixture\n"
            "holding inputs and references can be passed as it is.\n"
            "\n"
            "components:\n");
    for (int i = 0; i < N_COMPONENTS; i++) {
        fprintf(to, "  %s\n", components[i].name);
        for (const char *l = components[i].help; *l;) {
            size_t n = strcspn(l, "\n");
            fprintf(to, "    %.*s\n", (int)n, l);
            l += n + (l[n] == '\n');
        }
    }
    fprintf(to,
            "\n"
            "  --model PATH      the model (see each component)\n"
            "  --in FILE         input tensors (.safetensors)\n"
            "  --out FILE        output tensors (.safetensors), written atomically; never --in\n"
            "                    or --model, and an existing file only when oir wrote it\n"
            "  --variant fp16    prefer *.fp16.safetensors weights in a diffusers folder\n"
            "  --config DIR      single-file checkpoints: a diffusers folder whose configs (and\n"
            "                    tokenizer) describe it (default: SD 1.x configs sized to the\n"
            "                    checkpoint's shapes; tokenizer from $OIR_TOKENIZER, else\n"
            "                    the built-in CLIP vocabulary)\n"
            CLI_TOKENIZER_MODE_HELP
            "  --prompt TEXT     tokenize / text: a prompt row instead of --in (repeatable)\n"
            "  --max-length N    tokenize: ids per row, 3..1024 (default 77)\n"
            "  --threads N       CPU threads (default: $OIR_THREADS, else all cores)\n");
}

static const eval_component *find_component(const char *name) {
    for (int i = 0; i < N_COMPONENTS; i++)
        if (!strcmp(components[i].name, name)) return &components[i];
    return NULL;
}

static void ctx_free(eval_ctx *c) {
    st_writer_free(c->w);
    st_close(c->in);
    sd_model_free(c->sd);
    clip_model_free(c->clip);
    tokenizer_free(c->part_tok);
    arena_free(&c->a);
    for (int i = 0; i < c->nbufs; i++)
        free(c->bufs[i]);
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    eval_ctx c;
    memset(&c, 0, sizeof c);
    c.max_length = 77;
    int threads = 0, rc, exit_code = 0;
    const cli_opt opts[] = {
        {"--model", CLI_STR, &c.model_path, 0, 0},
        {"--variant", CLI_STR, &c.variant, 0, 0},
        {"--config", CLI_STR, &c.config_dir, 0, 0},
        {"--tokenizer-mode", CLI_STR, &c.tok_mode_name, 0, 0},
        {"--in", CLI_STR, &c.in_path, 0, 0},
        {"--out", CLI_STR, &c.out_path, 0, 0},
        {"--prompt", CLI_STRS, &c.prompts, 0, 0},
        {"--max-length", CLI_INT, &c.max_length, 3, 1024},
        {"--threads", CLI_INT, &threads, 1, 1024},
    };
    oir_error err = {0};
    const char *pos[1];
    int npos = 0;
    const eval_component *comp = NULL;
    if ((rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos, &err)) ||
        (rc = cli_tokenizer_mode(c.tok_mode_name, &c.tok_mode, &err)))
        goto fail;
    if (!npos) {
        rc = oir_fail(&err, OIR_E_ARG, "which component? (oir eval --help lists them)");
        goto fail;
    }
    c.comp_name = pos[0];
    if (!(comp = find_component(pos[0]))) {
        char names[256] = "";
        for (int i = 0; i < N_COMPONENTS; i++) {
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", components[i].name);
        }
        rc = oir_fail(&err, OIR_E_ARG, "unknown component '%s' (components: %s)", pos[0], names);
        goto fail;
    }
    if (!c.out_path) {
        rc = oir_fail(&err, OIR_E_ARG, "--out OUT.safetensors is required");
        goto fail;
    }
    const output_input inputs[] = {{c.in_path, "--in"},
                                   {c.model_path, "--model"},
                                   {c.config_dir, "--config"},
                                   {getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"}};
    if ((rc = cli_check_out_file(c.out_path, inputs, 4, &err))) goto fail;
    if (c.in_path && ((rc = cli_check_input_file("--in", c.in_path, &err)) ||
                      (rc = st_open(&c.in, c.in_path, &err))))
        goto fail;
    if (!(c.w = st_writer_new())) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    cli_set_threads(threads);
    if ((rc = comp->run(&c, &err)) || (rc = st_writer_save(c.w, c.out_path, &err))) goto fail;
    goto cleanup;
fail:
    exit_code = cli_report("eval", &err);
cleanup:
    ctx_free(&c);
    return exit_code;
}
