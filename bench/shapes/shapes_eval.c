#include "shapes_eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "models/tokenizer.h"

/* ---- vocabulary ----------------------------------------------------------- */

static int find_word(const char (*words)[32], int n, const char *w) {
    if (!w) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(words[i], w)) return i;
    return -1;
}

int se_vocab_colour(const se_vocab *v, const char *w) { return find_word(v->colours, v->n_colours, w); }
int se_vocab_shape(const se_vocab *v, const char *w) { return find_word(v->shapes, v->n_shapes, w); }
int se_vocab_background(const se_vocab *v, const char *w) {
    return find_word(v->backgrounds, v->n_backgrounds, w);
}

int se_vocab_is_heldout(const se_vocab *v, int colour, int shape) {
    for (int i = 0; i < v->n_heldout; i++)
        if (v->heldout[i][0] == colour && v->heldout[i][1] == shape) return 1;
    return 0;
}

/* ---- JSON helpers --------------------------------------------------------- */

static int read_json(cJSON **out, const char *dir, oir_error *err) {
    char path[SE_PATH + 32];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return oir_fail(err, OIR_E_IO,
                        "%s: no such file (regenerate the scene sets: .venv-tools/bin/python "
                        "tools/shapes/make_eval_sets.py)",
                        path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) {
        free(buf);
        return oir_fail(err, OIR_E_IO, "%s: cannot read", path);
    }
    buf[n] = '\0';
    *out = cJSON_Parse(buf);
    free(buf);
    if (!*out) return oir_fail(err, OIR_E_FORMAT, "%s: not valid JSON", path);
    return OIR_OK;
}

static const char *jstr(const cJSON *o, const char *field) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int jint(const cJSON *o, const char *field, int dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsNumber(x) ? x->valueint : dflt;
}

static int jbool(const cJSON *o, const char *field) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, field));
}

/* Copies a string field; error naming the item when absent or too long. */
static int jcopy(char *dst, size_t cap, const cJSON *o, const char *field, const char *where,
                 oir_error *err) {
    const char *s = jstr(o, field);
    if (!s) return oir_fail(err, OIR_E_FORMAT, "%s: missing string field \"%s\"", where, field);
    if (strlen(s) >= cap) return oir_fail(err, OIR_E_FORMAT, "%s: field \"%s\" too long", where, field);
    memcpy(dst, s, strlen(s) + 1);
    return OIR_OK;
}

static int jpath(char *dst, const char *dir, const cJSON *o, const char *field, const char *where,
                 oir_error *err) {
    const char *s = jstr(o, field);
    if (!s) return oir_fail(err, OIR_E_FORMAT, "%s: missing string field \"%s\"", where, field);
    if (snprintf(dst, SE_PATH, "%s/%s", dir, s) >= SE_PATH)
        return oir_fail(err, OIR_E_FORMAT, "%s: path %s/%s too long", where, dir, s);
    return OIR_OK;
}

static int word_list(char (*dst)[32], int *n, const cJSON *root, const char *field, oir_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, field);
    *n = 0;
    if (!cJSON_IsArray(a)) return oir_fail(err, OIR_E_FORMAT, "manifest: missing list \"%s\"", field);
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsString(x) || strlen(x->valuestring) >= 32 || *n >= SE_MAX_WORDS)
            return oir_fail(err, OIR_E_FORMAT, "manifest: bad entry in \"%s\"", field);
        memcpy(dst[(*n)++], x->valuestring, strlen(x->valuestring) + 1);
    }
    if (*n == 0) return oir_fail(err, OIR_E_FORMAT, "manifest: \"%s\" is empty", field);
    return OIR_OK;
}

static int read_vocab(se_vocab *v, const cJSON *root, oir_error *err) {
    memset(v, 0, sizeof *v);
    int rc;
    if ((rc = word_list(v->colours, &v->n_colours, root, "colours", err)) ||
        (rc = word_list(v->shapes, &v->n_shapes, root, "shapes", err)) ||
        (rc = word_list(v->backgrounds, &v->n_backgrounds, root, "backgrounds", err)))
        return rc;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "heldout"), *x;
    cJSON_ArrayForEach(x, h) {
        if (cJSON_GetArraySize(x) != 2 || v->n_heldout >= SE_MAX_WORDS * 2) continue;
        int c = se_vocab_colour(v, cJSON_GetArrayItem(x, 0)->valuestring);
        int s = se_vocab_shape(v, cJSON_GetArrayItem(x, 1)->valuestring);
        if (c < 0 || s < 0) return oir_fail(err, OIR_E_FORMAT, "manifest: unknown held-out combination");
        v->heldout[v->n_heldout][0] = c;
        v->heldout[v->n_heldout++][1] = s;
    }
    return OIR_OK;
}

static int word_index(int *out, int idx, const char *w, const char *kind, const char *where, oir_error *err) {
    if (idx < 0) return oir_fail(err, OIR_E_FORMAT, "%s: unknown %s '%s'", where, kind, w ? w : "(none)");
    *out = idx;
    return OIR_OK;
}

/* The manifest's "position" of an object: SE_POS_*, -1 when absent; an
 * unknown word is an error. */
static int read_position(int *out, const cJSON *o, const char *where, oir_error *err) {
    const char *p = jstr(o, "position");
    *out = p ? se_position(p) : -1;
    if (p && *out < 0) return oir_fail(err, OIR_E_FORMAT, "%s: unknown position '%s'", where, p);
    return OIR_OK;
}

/* ---- held-out scenes ------------------------------------------------------ */

void se_scene_set_free(se_scene_set *s) {
    if (!s) return;
    free(s->scenes);
    memset(s, 0, sizeof *s);
}

int se_scene_set_load(se_scene_set *out, const char *dir, oir_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    int rc = read_json(&root, dir, err);
    if (rc) return rc;
    const cJSON *scenes = cJSON_GetObjectItemCaseSensitive(root, "scenes");
    if ((rc = read_vocab(&out->vocab, root, err))) goto done;
    out->size = jint(root, "size", 0);
    if (!cJSON_IsArray(scenes) || cJSON_GetArraySize(scenes) == 0) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s/manifest.json: no \"scenes\" list", dir);
        goto done;
    }
    out->scenes = calloc((size_t)cJSON_GetArraySize(scenes), sizeof *out->scenes);
    if (!out->scenes) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    const cJSON *sc;
    cJSON_ArrayForEach(sc, scenes) {
        se_scene *s = &out->scenes[out->n];
        char where[96];
        snprintf(where, sizeof where, "%s/manifest.json: scene %d", dir, out->n);
        if ((rc = jcopy(s->name, sizeof s->name, sc, "name", where, err)) ||
            (rc = jpath(s->image, dir, sc, "image", where, err)) ||
            (rc = jcopy(s->caption, sizeof s->caption, sc, "caption", where, err)))
            goto done;
        const char *bg = jstr(sc, "background");
        if ((rc = word_index(&s->background, se_vocab_background(&out->vocab, bg), bg, "background", where, err)))
            goto done;
        const cJSON *objs = cJSON_GetObjectItemCaseSensitive(sc, "objects"), *o;
        cJSON_ArrayForEach(o, objs) {
            if (s->n_objects >= SE_MAX_OBJECTS) {
                rc = oir_fail(err, OIR_E_FORMAT, "%s: more than %d objects", where, SE_MAX_OBJECTS);
                goto done;
            }
            se_object *ob = &s->objects[s->n_objects++];
            const char *c = jstr(o, "colour"), *sh = jstr(o, "shape");
            if ((rc = word_index(&ob->colour, se_vocab_colour(&out->vocab, c), c, "colour", where, err)) ||
                (rc = word_index(&ob->shape, se_vocab_shape(&out->vocab, sh), sh, "shape", where, err)) ||
                (rc = jpath(ob->mask, dir, o, "mask", where, err)) || (rc = read_position(&ob->position, o, where, err)))
                goto done;
            ob->heldout = se_vocab_is_heldout(&out->vocab, ob->colour, ob->shape);
        }
        if (s->n_objects == 0) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: no objects", where);
            goto done;
        }
        out->n++;
    }
done:
    cJSON_Delete(root);
    if (rc) se_scene_set_free(out);
    return rc;
}

/* ---- edit cases ----------------------------------------------------------- */

void se_case_set_free(se_case_set *s) {
    if (!s) return;
    free(s->cases);
    memset(s, 0, sizeof *s);
}

static int read_case(se_case *c, const cJSON *cj, const char *dir, const se_vocab *v, const char *where,
                     oir_error *err) {
    int rc;
    if ((rc = jcopy(c->name, sizeof c->name, cj, "name", where, err)) ||
        (rc = jpath(c->image, dir, cj, "image", where, err)) ||
        (rc = jpath(c->ground_truth, dir, cj, "ground_truth", where, err)) ||
        (rc = jcopy(c->source, sizeof c->source, cj, "source_prompt", where, err)) ||
        (rc = jcopy(c->target, sizeof c->target, cj, "target_prompt", where, err)))
        return rc;
    const char *sb = jstr(cj, "source_background"), *tb = jstr(cj, "target_background");
    if ((rc = word_index(&c->source_background, se_vocab_background(v, sb), sb, "background", where, err)) ||
        (rc = word_index(&c->target_background, se_vocab_background(v, tb), tb, "background", where, err)))
        return rc;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(cj, "objects")) {
        if (c->n_objects >= SE_MAX_OBJECTS) return oir_fail(err, OIR_E_FORMAT, "%s: too many objects", where);
        se_case_object *ob = &c->objects[c->n_objects++];
        const char *w[4] = {jstr(o, "colour"), jstr(o, "shape"), jstr(o, "target_colour"), jstr(o, "target_shape")};
        if ((rc = word_index(&ob->colour, se_vocab_colour(v, w[0]), w[0], "colour", where, err)) ||
            (rc = word_index(&ob->shape, se_vocab_shape(v, w[1]), w[1], "shape", where, err)) ||
            (rc = word_index(&ob->target_colour, se_vocab_colour(v, w[2]), w[2], "colour", where, err)) ||
            (rc = word_index(&ob->target_shape, se_vocab_shape(v, w[3]), w[3], "shape", where, err)) ||
            (rc = jpath(ob->mask, dir, o, "mask", where, err)) || (rc = read_position(&ob->position, o, where, err)))
            return rc;
        ob->edited = jbool(o, "edited");
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(cj, "pairs")) {
        if (c->n_pairs >= SE_MAX_PAIRS) return oir_fail(err, OIR_E_FORMAT, "%s: too many pairs", where);
        se_pair *pr = &c->pairs[c->n_pairs++];
        if ((rc = jcopy(pr->from, sizeof pr->from, p, "from", where, err)) ||
            (rc = jcopy(pr->to, sizeof pr->to, p, "to", where, err)) ||
            (rc = jcopy(pr->guided, sizeof pr->guided, p, "guided_prompt", where, err)) ||
            (rc = jpath(pr->mask, dir, p, "mask", where, err)))
            return rc;
        const char *t = jstr(p, "target");
        if (t && !strcmp(t, "background")) {
            const char *b = jstr(p, "background");
            pr->is_background = 1;
            pr->object = -1;
            if ((rc = word_index(&pr->background, se_vocab_background(v, b), b, "background", where, err)))
                return rc;
        } else {
            const char *cw = jstr(p, "colour"), *sw = jstr(p, "shape");
            pr->object = jint(p, "object", -1);
            if (pr->object < 0 || pr->object >= c->n_objects)
                return oir_fail(err, OIR_E_FORMAT, "%s: pair %d targets object %d of %d", where, c->n_pairs,
                                pr->object, c->n_objects);
            if ((rc = word_index(&pr->colour, se_vocab_colour(v, cw), cw, "colour", where, err)) ||
                (rc = word_index(&pr->shape, se_vocab_shape(v, sw), sw, "shape", where, err)))
                return rc;
            pr->heldout = se_vocab_is_heldout(v, pr->colour, pr->shape);
        }
    }
    if (c->n_pairs == 0) return oir_fail(err, OIR_E_FORMAT, "%s: no pairs", where);
    return OIR_OK;
}

int se_case_set_load(se_case_set *out, const char *dir, oir_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    int rc = read_json(&root, dir, err);
    if (rc) return rc;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *cj;
    if ((rc = read_vocab(&out->vocab, root, err))) goto done;
    out->size = jint(root, "size", 0);
    if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s/manifest.json: no \"cases\" list", dir);
        goto done;
    }
    out->cases = calloc((size_t)cJSON_GetArraySize(cases), sizeof *out->cases);
    if (!out->cases) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    cJSON_ArrayForEach(cj, cases) {
        char where[96];
        snprintf(where, sizeof where, "%s/manifest.json: case %d", dir, out->n);
        if ((rc = read_case(&out->cases[out->n], cj, dir, &out->vocab, where, err))) goto done;
        out->n++;
    }
done:
    cJSON_Delete(root);
    if (rc) se_case_set_free(out);
    return rc;
}

/* ---- images --------------------------------------------------------------- */

int se_load_rgb(const char *path, int size, unsigned char *rgb, oir_error *err) {
    image img = {0}, rs = {0};
    int rc = image_load(&img, path, err);
    const image *use = &img;
    if (!rc && (img.width != size || img.height != size)) {
        rc = image_resize(&rs, &img, size, size, err);
        use = &rs;
    }
    if (!rc)
        for (size_t i = 0; i < (size_t)size * size * 3; i++) rgb[i] = (unsigned char)lrintf(use->data[i] * 255.0f);
    image_free(&img);
    image_free(&rs);
    return rc;
}

int se_load_mask(const char *path, int size, unsigned char *mask, oir_error *err) {
    image m = {0}, rs = {0};
    int rc = mask_load(&m, path, err);
    const image *use = &m;
    if (!rc && (m.width != size || m.height != size)) {
        rc = mask_resize_nearest(&rs, &m, size, size, err);
        use = &rs;
    }
    if (!rc)
        for (size_t i = 0; i < (size_t)size * size; i++) mask[i] = use->data[i] > 0.5f;
    image_free(&m);
    image_free(&rs);
    return rc;
}

double se_psnr(const unsigned char *a, const unsigned char *b, size_t n_pixels) {
    double se = 0;
    for (size_t i = 0; i < n_pixels * 3; i++) {
        double d = (double)a[i] - b[i];
        se += d * d;
    }
    if (se == 0) return INFINITY;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)(n_pixels * 3)));
}

double se_masked_mse(const unsigned char *a, const unsigned char *b, const unsigned char *mask,
                     size_t n_pixels, int inside, size_t *count) {
    double se = 0;
    size_t n = 0;
    for (size_t i = 0; i < n_pixels; i++) {
        if ((mask[i] != 0) != (inside != 0)) continue;
        n++;
        for (int c = 0; c < 3; c++) {
            double d = ((double)a[i * 3 + c] - b[i * 3 + c]) / 255.0;
            se += d * d;
        }
    }
    if (count) *count = n;
    return n ? se / (double)(3 * n) : 0.0;
}

double se_psnr_of_mse(double mse) { return mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY; }

double se_psnr_capped(double psnr) { return psnr < SE_PSNR_CAP ? psnr : SE_PSNR_CAP; }

/* ---- judge ---------------------------------------------------------------- */

#define SE_JUDGE_BATCH 16

void se_judge_free(se_judge *j) {
    if (!j) return;
    arena_free(&j->arena);
    free(j->pair_text);
    free(j->bg_text);
    free(j->colour_text);
    free(j->shape_text);
    free(j->pixels);
    free(j->patch_masks);
    free(j->embeds);
    free(j->ids);
    memset(j, 0, sizeof *j);
}

static void normalize(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

int se_judge_text(se_judge *j, const char *text, float *embed, oir_error *err) {
    int truncated = 0;
    int rc = tokenizer_encode(j->clip->tokenizer, text, j->ctx_len, j->ids, NULL, &truncated, err);
    if (!rc && truncated) rc = oir_fail(err, OIR_E_ARG, "\"%s\" is longer than %d tokens", text, j->ctx_len);
    if (rc) return rc;
    size_t mark = arena_mark(&j->arena);
    rc = clip_text_forward(j->clip->text, &j->arena, j->ids, 1, j->ctx_len, NULL, NULL, embed, err);
    arena_reset(&j->arena, mark);
    if (!rc) normalize(embed, j->P);
    return rc;
}

int se_judge_init(se_judge *j, const clip_model *clip, const se_vocab *v, oir_error *err) {
    memset(j, 0, sizeof *j);
    if (!clip || !clip->vision || !clip->text || !clip->tokenizer)
        return oir_fail(err, OIR_E_ARG, "judge: the CLIP model needs a tokenizer, text and vision towers");
    const clip_vision_config *vc = clip_vision_get_config(clip->vision);
    const clip_text_config *tc = clip_text_get_config(clip->text);
    j->clip = clip;
    j->vocab = v;
    j->S = vc->image_size;
    j->grid = clip_vision_grid(vc);
    j->P = vc->projection_dim;
    j->batch = SE_JUDGE_BATCH;
    j->ctx_len = tc->max_position_embeddings;
    j->n_pairs = v->n_colours * v->n_shapes;
    size_t need = clip_vision_arena_bytes(vc, j->batch), need_t = clip_text_arena_bytes(tc, 1, j->ctx_len);
    j->pair_text = malloc(sizeof(float) * (size_t)j->n_pairs * j->P);
    j->bg_text = malloc(sizeof(float) * (size_t)v->n_backgrounds * j->P);
    j->colour_text = malloc(sizeof(float) * (size_t)v->n_colours * j->P);
    j->shape_text = malloc(sizeof(float) * (size_t)v->n_shapes * j->P);
    j->pixels = malloc(sizeof(float) * (size_t)j->batch * 3 * j->S * j->S);
    j->patch_masks = malloc((size_t)j->batch * j->grid * j->grid);
    j->embeds = malloc(sizeof(float) * (size_t)j->batch * j->P);
    j->ids = malloc(sizeof(int32_t) * (size_t)j->ctx_len);
    int rc = OIR_OK;
    if (!j->pair_text || !j->bg_text || !j->colour_text || !j->shape_text || !j->pixels || !j->patch_masks || !j->embeds || !j->ids)
        rc = oir_fail(err, OIR_E_NOMEM, "judge: out of memory");
    if (!rc) rc = arena_init(&j->arena, need > need_t ? need : need_t, err);
    char text[96];
    for (int c = 0; !rc && c < v->n_colours; c++)
        for (int s = 0; !rc && s < v->n_shapes; s++) {
            snprintf(text, sizeof text, "%s %s", v->colours[c], v->shapes[s]);
            rc = se_judge_text(j, text, j->pair_text + (size_t)(c * v->n_shapes + s) * j->P, err);
        }
    for (int c = 0; !rc && c < v->n_colours; c++)
        rc = se_judge_text(j, v->colours[c], j->colour_text + (size_t)c * j->P, err);
    for (int c = 0; !rc && c < v->n_shapes; c++)
        rc = se_judge_text(j, v->shapes[c], j->shape_text + (size_t)c * j->P, err);
    for (int b = 0; !rc && b < v->n_backgrounds; b++) {
        snprintf(text, sizeof text, "%s background", v->backgrounds[b]);
        rc = se_judge_text(j, text, j->bg_text + (size_t)b * j->P, err);
    }
    if (rc) se_judge_free(j);
    return rc;
}

int se_argmax_dot(const float *e, const float *table, int n, int P) {
    int best = 0;
    double best_v = -INFINITY;
    for (int i = 0; i < n; i++) {
        double d = 0;
        for (int k = 0; k < P; k++) d += (double)e[k] * table[(size_t)i * P + k];
        if (d > best_v) {
            best_v = d;
            best = i;
        }
    }
    return best;
}

/* One (size, size, 3) byte image -> preprocessed CLIP pixels (3, S, S). */
static int preprocess_rgb(se_judge *j, const unsigned char *rgb, int size, float *pixels, oir_error *err) {
    image img = {0};
    int rc = image_alloc(&img, size, size, 3, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)size * size * 3; i++) img.data[i] = rgb[i] / 255.0f;
    int oh, ow;
    clip_preprocess_size(&j->clip->preprocess, size, size, &oh, &ow);
    if (oh != j->S || ow != j->S)
        rc = oir_fail(err, OIR_E_SHAPE, "judge: a %dx%d image preprocesses to %dx%d, CLIP takes %dx%d", size, size,
                      ow, oh, j->S, j->S);
    if (!rc) rc = clip_preprocess(&j->clip->preprocess, &img, pixels, err);
    image_free(&img);
    return rc;
}

int se_patch_mode(const char *name) {
    if (!strcmp(name, "nearest")) return SE_PATCH_NEAREST;
    if (!strcmp(name, "centre")) return SE_PATCH_CENTRE;
    if (!strcmp(name, "any")) return SE_PATCH_ANY;
    return -1;
}

/* Shape words on the greyscale (luma, as training's grey views) copies of the
 * n images, through the same masks. */
static int shapes_on_grey(se_judge *j, const unsigned char *const *images, const unsigned char *const *masks, int n,
                          int size, int *shape, oir_error *err) {
    size_t hw3 = (size_t)size * size * 3, nn = (size_t)(n > 0 ? n : 1);
    float *eg = malloc(sizeof(float) * nn * j->P);
    unsigned char *grey = malloc(nn * hw3);
    const unsigned char **gp = calloc(nn, sizeof(*gp));
    int rc = eg && grey && gp ? OIR_OK : oir_fail(err, OIR_E_NOMEM, "judge: out of memory");
    for (int i = 0; !rc && i < n; i++) {
        unsigned char *g = grey + (size_t)i * hw3;
        for (size_t k = 0; k < hw3; k += 3) {
            const unsigned char *px = images[i] + k;
            float y = 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
            g[k] = g[k + 1] = g[k + 2] = (unsigned char)(y + 0.5f);
        }
        gp[i] = g;
    }
    if (!rc) rc = se_judge_classify(j, gp, masks, n, size, NULL, NULL, NULL, eg, err);
    for (int i = 0; !rc && i < n; i++)
        shape[i] = se_argmax_dot(eg + (size_t)i * j->P, j->shape_text, j->vocab->n_shapes, j->P);
    free(eg), free(grey), free(gp);
    return rc;
}

int se_read_words(const char *name) {
    if (!strcmp(name, "words")) return 1;
    if (!strcmp(name, "phrase")) return 0;
    return -1;
}

int se_judge_classify(se_judge *j, const unsigned char *const *images, const unsigned char *const *masks,
                      int n, int size, int *colour, int *shape, int *bg, float *embeds_out, oir_error *err) {
    size_t px = (size_t)3 * j->S * j->S, G2 = (size_t)j->grid * j->grid, hw = (size_t)size * size;
    float *mf = malloc(hw * sizeof(float));
    if (!mf) return oir_fail(err, OIR_E_NOMEM, "judge: out of memory");
    int rc = OIR_OK, any_mask = 0;
    for (int i = 0; i < n; i++) any_mask |= masks && masks[i];
    for (int start = 0; !rc && start < n; start += j->batch) {
        int B = n - start < j->batch ? n - start : j->batch;
        for (int b = 0; !rc && b < B; b++) {
            int i = start + b;
            rc = preprocess_rgb(j, images[i], size, j->pixels + b * px, err);
            const unsigned char *m = masks ? masks[i] : NULL;
            if (!rc && m && j->patch_mode == SE_PATCH_CENTRE) {
                for (int gy = 0; gy < j->grid; gy++)
                    for (int gx = 0; gx < j->grid; gx++) {
                        int y = (int)((gy + 0.5) * size / j->grid), x = (int)((gx + 0.5) * size / j->grid);
                        j->patch_masks[b * G2 + (size_t)gy * j->grid + gx] = m[(size_t)y * size + x] != 0;
                    }
            } else if (!rc && m && j->patch_mode == SE_PATCH_ANY) {
                memset(j->patch_masks + b * G2, 0, G2);
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                        if (m[(size_t)y * size + x])
                            j->patch_masks[b * G2 + (size_t)(y * j->grid / size) * j->grid + x * j->grid / size] = 1;
            } else if (!rc && m) {
                for (size_t k = 0; k < hw; k++) mf[k] = m[k] ? 1.0f : 0.0f;
                rc = clip_patch_mask(j->patch_masks + b * G2, mf, size, size, &j->clip->preprocess, j->grid, err);
            } else if (!rc) {
                memset(j->patch_masks + b * G2, 1, G2); /* everything inside: plain attention */
            }
        }
        if (rc) break;
        size_t mark = arena_mark(&j->arena);
        rc = clip_vision_forward(j->clip->vision, &j->arena, j->pixels, B, j->S, j->S,
                                 any_mask ? j->patch_masks : NULL, NULL, NULL, j->embeds, err);
        arena_reset(&j->arena, mark);
        for (int b = 0; !rc && b < B; b++) {
            int i = start + b;
            float *e = j->embeds + (size_t)b * j->P;
            normalize(e, j->P);
            if (j->read_words) {
                if (colour) colour[i] = se_argmax_dot(e, j->colour_text, j->vocab->n_colours, j->P);
            } else if (colour || shape) {
                int k = se_argmax_dot(e, j->pair_text, j->n_pairs, j->P);
                if (colour) colour[i] = k / j->vocab->n_shapes;
                if (shape) shape[i] = k % j->vocab->n_shapes;
            }
            if (bg) bg[i] = se_argmax_dot(e, j->bg_text, j->vocab->n_backgrounds, j->P);
            if (embeds_out) memcpy(embeds_out + (size_t)i * j->P, e, sizeof(float) * (size_t)j->P);
        }
    }
    free(mf);
    if (!rc && shape && j->read_words) rc = shapes_on_grey(j, images, masks, n, size, shape, err);
    return rc;
}

int se_judge_classify_attrs(se_judge *j, const unsigned char *const *images, const unsigned char *const *masks,
                            int n, int size, int *colour, int *shape, oir_error *err) {
    int read_words = j->read_words;
    j->read_words = 1;
    int rc = se_judge_classify(j, images, masks, n, size, colour, shape, NULL, NULL, err);
    j->read_words = read_words;
    return rc;
}

int se_judge_clip_score(se_judge *j, const unsigned char *rgb, int size, const float *text, float *score,
                        oir_error *err) {
    float *e = malloc(sizeof(float) * (size_t)j->P);
    if (!e) return oir_fail(err, OIR_E_NOMEM, "judge: out of memory");
    const unsigned char *imgs[1] = {rgb};
    int rc = se_judge_classify(j, imgs, NULL, 1, size, NULL, NULL, NULL, e, err);
    if (!rc) *score = clip_cosine(e, text, j->P);
    free(e);
    return rc;
}

/* ---- summaries ------------------------------------------------------------ */

void se_stat_add(se_stat *s, double x) {
    s->sum += x;
    s->sum2 += x * x;
    s->n++;
}

double se_stat_mean(const se_stat *s) { return s->n ? s->sum / (double)s->n : NAN; }

double se_stat_std(const se_stat *s) {
    if (!s->n) return NAN;
    double m = s->sum / (double)s->n, v = s->sum2 / (double)s->n - m * m;
    return v > 0 ? sqrt(v) : 0.0;
}

double se_sign_test_p(long wins, long losses) {
    long n = wins + losses, m = wins < losses ? wins : losses;
    if (n <= 0) return 1.0;
    double sum = 0;
    for (long i = 0; i <= m; i++) /* C(n, i) / 2^n, in logs: n may be in the hundreds */
        sum += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - (double)n * log(2.0));
    double p = 2 * sum;
    return p < 1 ? p : 1.0;
}

int se_bin(int v, int T, int nbins) {
    if (v < 1) v = 1;
    if (v > T) v = T;
    int b = (int)((long)(v - 1) * nbins / T);
    return b < nbins ? b : nbins - 1;
}
