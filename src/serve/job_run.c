/* One job of `oir serve`: parameters, the edit as `oir edit` runs it, re-picks,
 * the output files (see job_run.h). */
#include "serve/job_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_mask.h"
#include "cli/cli_report.h"
#include "core/clock.h"
#include "core/error.h"
#include "edit/sheet.h"
#include "io/image.h"
#include "io/json.h"
#include "io/outfile.h"

/* ------------------------------------------------------------ parameters */

static const char *const known_keys[] = {"prompt", "target", "pairs", "steps", "guidance", "reassembly_step",
                                         "reinversion_steps", "search", "low_pick", "guard", "seed", "pick",
                                         "mask_method", "mask_threshold", "mask_dilate"};

static int get_text(const cJSON *o, const char *key, const char *what, int required, char *dst, oir_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    dst[0] = '\0';
    if (!v || cJSON_IsNull(v)) {
        if (required) return oir_fail(err, OIR_E_ARG, "params: %s\"%s\" is missing", what, key);
        return OIR_OK;
    }
    if (!cJSON_IsString(v)) return oir_fail(err, OIR_E_ARG, "params: %s\"%s\": expected a string", what, key);
    size_t n = strlen(v->valuestring);
    if (n >= SERVE_MAX_TEXT)
        return oir_fail(err, OIR_E_ARG, "params: %s\"%s\": %zu bytes, at most %d", what, key, n, SERVE_MAX_TEXT - 1);
    if (required && n == 0) return oir_fail(err, OIR_E_ARG, "params: %s\"%s\" is empty", what, key);
    memcpy(dst, v->valuestring, n + 1);
    return OIR_OK;
}

/* An integer in [lo, hi]; absent or null leaves *dst. */
static int get_int(const cJSON *o, const char *key, const char *what, double lo, double hi, int *dst, oir_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return OIR_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return oir_fail(err, OIR_E_ARG, "params: %s\"%s\": expected an integer %.0f..%.0f", what, key, lo, hi);
    *dst = (int)v->valuedouble;
    return OIR_OK;
}

static int get_float(const cJSON *o, const char *key, double lo, double hi, float *dst, oir_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return OIR_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return oir_fail(err, OIR_E_ARG, "params: \"%s\": expected a number %g..%g", key, lo, hi);
    *dst = (float)v->valuedouble;
    return OIR_OK;
}

static int parse_pair(serve_request *rq, int i, const cJSON *e, const int has_upload[SERVE_MAX_PAIRS],
                      oir_error *err) {
    char what[32];
    snprintf(what, sizeof what, "pairs[%d].", i);
    if (!cJSON_IsObject(e))
        return oir_fail(err, OIR_E_ARG, "params: pairs[%d]: expected an object {\"from\", \"to\", \"mask\"}", i);
    for (const cJSON *k = e->child; k; k = k->next)
        if (strcmp(k->string, "from") && strcmp(k->string, "to") && strcmp(k->string, "mask") &&
            strcmp(k->string, "guided"))
            return oir_fail(err, OIR_E_ARG, "params: pairs[%d]: unknown key \"%s\" (from, to, mask, guided)", i,
                            k->string);
    int rc = get_text(e, "from", what, 1, rq->from[i], err);
    if (!rc) rc = get_text(e, "to", what, 1, rq->to[i], err);
    if (!rc) rc = get_text(e, "guided", what, 0, rq->guided[i], err);
    if (rc) return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "mask");
    if (!m || cJSON_IsNull(m)) {
        rq->mask_kind[i] = has_upload[i] ? SERVE_MASK_UPLOAD : SERVE_MASK_AUTO;
    } else if (cJSON_IsString(m) && !strcmp(m->valuestring, "auto")) {
        rq->mask_kind[i] = SERVE_MASK_AUTO;
    } else if (cJSON_IsString(m) && !strcmp(m->valuestring, "upload")) {
        rq->mask_kind[i] = SERVE_MASK_UPLOAD;
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 4) {
        rq->mask_kind[i] = SERVE_MASK_BOX;
        for (int j = 0; j < 4; j++) {
            const cJSON *c = cJSON_GetArrayItem(m, j);
            if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble) || fabs(c->valuedouble) > 1e6)
                return oir_fail(err, OIR_E_ARG, "params: pairs[%d].mask: a box is [x0, y0, x1, y1], integers", i);
            rq->box[i][j] = (int)c->valuedouble;
        }
    } else {
        return oir_fail(err, OIR_E_ARG,
                        "params: pairs[%d].mask: expected \"auto\", \"upload\" (part mask%d) or a box [x0, y0, x1, y1]",
                        i, i + 1);
    }
    if (rq->mask_kind[i] == SERVE_MASK_UPLOAD && !has_upload[i])
        return oir_fail(err, OIR_E_ARG, "params: pairs[%d].mask is \"upload\" but no part mask%d was sent", i, i + 1);
    if (rq->mask_kind[i] != SERVE_MASK_UPLOAD && has_upload[i])
        return oir_fail(err, OIR_E_ARG, "part mask%d was sent but pairs[%d].mask is %s", i + 1, i,
                        rq->mask_kind[i] == SERVE_MASK_AUTO ? "\"auto\"" : "a box");
    return OIR_OK;
}

int serve_request_parse(serve_request *rq, const char *json, size_t len, const int has_upload[SERVE_MAX_PAIRS],
                        oir_error *err) {
    memset(rq, 0, sizeof *rq);
    rq->steps = rq->reassembly = rq->reinversion = -1;
    rq->guidance = -1;
    rq->low_pick = rq->guard = -1;
    rq->mask_threshold = -1;
    rq->mask_dilate = -1;
    cJSON *o = NULL;
    int rc = json_parse(&o, json, len, "params", err);
    if (rc) return rc;
    if (!cJSON_IsObject(o)) {
        rc = oir_fail(err, OIR_E_ARG, "params: expected a JSON object");
        goto done;
    }
    for (const cJSON *k = o->child; k; k = k->next) {
        size_t i = 0;
        while (i < sizeof known_keys / sizeof known_keys[0] && strcmp(known_keys[i], k->string)) i++;
        if (i == sizeof known_keys / sizeof known_keys[0]) {
            rc = oir_fail(err, OIR_E_ARG, "params: unknown key \"%s\"", k->string);
            goto done;
        }
    }
    if ((rc = get_text(o, "prompt", "", 1, rq->prompt, err)) || (rc = get_text(o, "target", "", 0, rq->target, err)))
        goto done;
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(o, "pairs");
    int n = cJSON_IsArray(pairs) ? cJSON_GetArraySize(pairs) : -1;
    if (n < 1 || n > SERVE_MAX_PAIRS) {
        rc = oir_fail(err, OIR_E_ARG, "params: \"pairs\": expected an array of 1..%d pairs", SERVE_MAX_PAIRS);
        goto done;
    }
    rq->n_pairs = n;
    for (int i = 0; i < n; i++)
        if ((rc = parse_pair(rq, i, cJSON_GetArrayItem(pairs, i), has_upload, err))) goto done;
    for (int i = n; i < SERVE_MAX_PAIRS; i++)
        if (has_upload[i]) {
            rc = oir_fail(err, OIR_E_ARG, "part mask%d was sent but there are %d pairs", i + 1, n);
            goto done;
        }
    if ((rc = get_int(o, "steps", "", 1, 1000, &rq->steps, err)) ||
        (rc = get_int(o, "reassembly_step", "", 0, 1000, &rq->reassembly, err)) ||
        (rc = get_int(o, "reinversion_steps", "", 0, 1000, &rq->reinversion, err)) ||
        (rc = get_float(o, "guidance", 0, 100, &rq->guidance, err)) ||
        (rc = get_int(o, "mask_dilate", "", 0, 64, &rq->mask_dilate, err)) ||
        (rc = get_float(o, "mask_threshold", 0, 1, &rq->mask_threshold, err)))
        goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "search");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof rq->search) {
            rc = oir_fail(err, OIR_E_ARG, "params: \"search\": expected a strategy such as \"adaptive\" or \"exhaustive\"");
            goto done;
        }
        snprintf(rq->search, sizeof rq->search, "%s", v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "mask_method");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || oir_mask_method_parse(v->valuestring) < 0) {
            rc = oir_fail(err, OIR_E_ARG, "params: \"mask_method\": expected noise, attention or combined");
            goto done;
        }
        snprintf(rq->mask_method, sizeof rq->mask_method, "%s", v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "low_pick");
    if (v && !cJSON_IsNull(v) && (!cJSON_IsString(v) || (rq->low_pick = oir_low_pick_parse(v->valuestring)) < 0)) {
        rc = oir_fail(err, OIR_E_ARG, "params: \"low_pick\": expected \"lower\" or \"reinvert\"");
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "guard");
    if (v && !cJSON_IsNull(v)) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "off")) rq->guard = 0;
        else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 10)
            rq->guard = 1, rq->guard_margin = (float)v->valuedouble;
        else {
            rc = oir_fail(err, OIR_E_ARG, "params: \"guard\": expected \"off\" or a margin 0..10");
            goto done;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
            v->valuedouble > 9007199254740992.0) {
            rc = oir_fail(err, OIR_E_ARG, "params: \"seed\": expected an integer 0..2^53");
            goto done;
        }
        rq->seed = (unsigned long long)v->valuedouble;
        rq->has_seed = 1;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "pick");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) {
            rc = oir_fail(err, OIR_E_ARG, "params: \"pick\": expected one step per pair (0: search it)");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            const cJSON *s = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(s) || s->valuedouble != floor(s->valuedouble) || s->valuedouble < 0 ||
                s->valuedouble > 1000) {
                rc = oir_fail(err, OIR_E_ARG, "params: \"pick\"[%d]: expected a step 1..steps, or 0", i);
                goto done;
            }
            rq->pick[i] = (int)s->valuedouble;
        }
    }
done:
    cJSON_Delete(o);
    return rc;
}

int serve_request_params(const serve_request *rq, oir_params *p, oir_error *err) {
    *p = oir_default_params();
    if (rq->steps > 0) p->steps = rq->steps;
    if (rq->guidance >= 0) p->guidance = rq->guidance;
    if (rq->reassembly >= 0) p->reassembly_step = rq->reassembly;
    if (rq->reinversion >= 0) p->reinversion_steps = rq->reinversion;
    if (rq->search[0]) p->search = rq->search;
    if (rq->low_pick >= 0) p->low_pick = rq->low_pick;
    if (rq->guard >= 0) p->guard = rq->guard, p->guard_margin = rq->guard ? rq->guard_margin : 0;
    p->parallel = 1;
    p->memory_budget = (unsigned long long)2048 << 20; /* oir edit's --budget-mb default */
    p->target_prompt = rq->target[0] ? rq->target : NULL;
    int n_picked = 0;
    for (int i = 0; i < rq->n_pairs; i++) n_picked += rq->pick[i] > 0;
    p->forced_steps = n_picked ? rq->pick : NULL;
    return cli_mask_params(&p->mask, "mask_method", rq->mask_method[0] ? rq->mask_method : NULL, "mask_threshold",
                           rq->mask_threshold, "mask_dilate", rq->mask_dilate, rq->seed, err);
}

/* The box of pair i in the photo, as oir edit checks --mask x0,y0,x1,y1. */
static int check_box(const serve_request *rq, int i, oir_error *err) {
    const int *b = rq->box[i];
    if (b[2] <= b[0] || b[3] <= b[1] || b[0] < 0 || b[1] < 0 || b[2] > rq->photo_w || b[3] > rq->photo_h)
        return oir_fail(err, OIR_E_ARG,
                        "pairs[%d].mask: box [%d, %d, %d, %d] is empty or reaches outside the %dx%d photo: boxes "
                        "are in the photo's pixels, 0 <= x0 < x1 <= %d, 0 <= y0 < y1 <= %d",
                        i, b[0], b[1], b[2], b[3], rq->photo_w, rq->photo_h, rq->photo_w, rq->photo_h);
    return OIR_OK;
}

int serve_request_check(const serve_request *rq, const oir_context *ctx, oir_error *err) {
    int ww, wh, rc;
    oir_params p;
    oir_plan plan;
    if ((rc = oir_working_size(ctx, rq->photo_w, rq->photo_h, 0, &ww, &wh, err))) return rc;
    if ((rc = serve_request_params(rq, &p, err))) return rc;
    for (int i = 0; i < rq->n_pairs; i++)
        if (rq->pick[i] > p.steps)
            return oir_fail(err, OIR_E_ARG, "params: \"pick\"[%d] = %d: steps are 1..%d", i, rq->pick[i], p.steps);
    for (int i = 0; i < rq->n_pairs; i++)
        if (rq->mask_kind[i] == SERVE_MASK_BOX && (rc = check_box(rq, i, err))) return rc;
    if ((rc = oir_plan_run(ctx, ww, wh, rq->n_pairs, &p, NULL, &plan, err))) oir_error_prefix(err, "params");
    return rc;
}

/* ------------------------------------------------------------ the edit */

void serve_result_free(serve_result *res) {
    if (!res) return;
    oir_result_free(res->r);
    free(res->rgb);
    free(res->edited);
    free(res->eval);
    free(res->exact);
    free(res);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int save_image_at(const char *dir, const char *name, const image *img, oir_error *err) {
    char *path = join(dir, name);
    int rc = path ? image_save_png(img, path, err) : oir_fail(err, OIR_E_NOMEM, "out of memory");
    free(path);
    return rc;
}

static int save_rgb_at(const char *dir, const char *name, const unsigned char *rgb, int w, int h, oir_error *err) {
    char *path = join(dir, name);
    int rc = path ? oir_image_save_png(path, rgb, w, h, err) : oir_fail(err, OIR_E_NOMEM, "out of memory");
    free(path);
    return rc;
}

/* The photo and the pairs' masks from the job's folder, as oir edit reads
 * --image and --mask (io/image_fit.h): photo_masks at the photo's size,
 * work_masks at the working size (given masks only; auto ones stay empty).
 * notes: masks with pixels outside the region the working image shows. */
static int load_inputs(const serve_request *rq, const char *dir, int ww, int wh, image *orig, image_fit *fit,
                       image photo_masks[], image work_masks[], char notes[][300], int *n_notes, oir_error *err) {
    char *path = join(dir, "upload");
    int rc = path ? image_load(orig, path, err) : oir_fail(err, OIR_E_NOMEM, "out of memory");
    free(path);
    if (rc) return rc;
    image_fit_plan(fit, orig->width, orig->height, ww, wh);
    if (n_notes) *n_notes = 0;
    for (int i = 0; i < rq->n_pairs && !rc; i++) {
        image *pm = &photo_masks[i];
        if (rq->mask_kind[i] == SERVE_MASK_AUTO) continue;
        if (rq->mask_kind[i] == SERVE_MASK_BOX) {
            rc = check_box(rq, i, err);
            if (!rc) rc = mask_from_box(pm, orig->width, orig->height, rq->box[i], err);
        } else {
            char name[16];
            snprintf(name, sizeof name, "mask%d", i + 1);
            path = join(dir, name);
            rc = path ? mask_load(pm, path, err) : oir_fail(err, OIR_E_NOMEM, "out of memory");
            free(path);
            if (!rc && (pm->width != orig->width || pm->height != orig->height))
                rc = oir_fail(err, OIR_E_SHAPE, "mask%d is %dx%d but the photo is %dx%d: masks are at the photo's size",
                              i + 1, pm->width, pm->height, orig->width, orig->height);
        }
        if (!rc) rc = image_fit_mask(&work_masks[i], pm, fit, err);
        if (rc) break;
        size_t n_photo = 0, n_work = 0;
        for (size_t j = 0; j < (size_t)pm->width * pm->height; j++) n_photo += pm->data[j] > 0.5f;
        for (size_t j = 0; j < (size_t)ww * wh; j++) n_work += work_masks[i].data[j] > 0.5f;
        long outside = image_fit_mask_outside(pm, fit);
        if (n_photo > 0 && n_work == 0)
            rc = oir_fail(err, OIR_E_ARG,
                          "pair %d: none of its mask's %zu pixels is left at the %dx%d working size (%ld lie outside "
                          "the region x %d..%d, y %d..%d the working image shows)",
                          i + 1, n_photo, ww, wh, outside, fit->crop_x, fit->crop_x + fit->crop_w, fit->crop_y,
                          fit->crop_y + fit->crop_h);
        else if (outside && n_notes && *n_notes < SERVE_MAX_PAIRS)
            snprintf(notes[(*n_notes)++], 300,
                     "pair %d: %ld pixels of its mask lie outside the photo region the working image shows "
                     "(x %d..%d, y %d..%d): they are not edited",
                     i + 1, outside, fit->crop_x, fit->crop_x + fit->crop_w, fit->crop_y, fit->crop_y + fit->crop_h);
    }
    return rc;
}

static void free_masks(image a[], image b[]) {
    for (int i = 0; i < SERVE_MAX_PAIRS; i++) {
        image_free(&a[i]);
        image_free(&b[i]);
    }
}

/* edited.png: the current result composited into the photo inside the masks
 * (given ones at the photo's size, inferred ones from the working size), as
 * oir edit writes it; and edited_working.png. */
static int write_edited(const serve_request *rq, const char *dir, const serve_result *res, oir_error *err) {
    image orig = {0}, edited = {0}, composite = {0}, pm[SERVE_MAX_PAIRS] = {{0}}, wm[SERVE_MAX_PAIRS] = {{0}};
    image_fit fit;
    size_t hw = (size_t)res->ww * res->wh;
    int rc = load_inputs(rq, dir, res->ww, res->wh, &orig, &fit, pm, wm, NULL, NULL, err);
    for (int i = 0; i < rq->n_pairs && !rc; i++)
        if (res->r->mask_info[i].inferred) rc = cli_mask_to_photo(&pm[i], res->r->masks + (size_t)i * hw, &fit, err);
    if (!rc) rc = image_alloc(&edited, res->ww, res->wh, 3, err);
    for (size_t i = 0; !rc && i < hw * 3; i++) edited.data[i] = res->edited[i] / 255.0f;
    if (!rc) rc = image_fit_composite(&composite, &orig, &edited, pm, rq->n_pairs, &fit, image_fit_feather(&fit), err);
    if (!rc) rc = save_image_at(dir, "edited.png", &composite, err);
    if (!rc) rc = save_rgb_at(dir, "edited_working.png", res->edited, res->ww, res->wh, err);
    image_free(&orig);
    image_free(&edited);
    image_free(&composite);
    free_masks(pm, wm);
    return rc;
}

/* pair<i>_sheet.png as oir edit draws it (edit/sheet.h): every candidate,
 * the curves, the current choice framed; an inferred mask over the input. */
static int write_sheet(const serve_request *rq, const char *dir, const serve_result *res, int i, oir_error *err) {
    const oir_result *r = res->r;
    int T = r->steps, rc = OIR_OK;
    size_t hw = (size_t)res->ww * res->wh, img_n = hw * 3;
    image *cands = calloc((size_t)T, sizeof *cands), sheet = {0};
    if (!cands) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    for (int k = 0; k < T && !rc; k++) {
        rc = image_alloc(&cands[k], res->ww, res->wh, 3, err);
        for (size_t j = 0; !rc && j < img_n; j++) cands[k].data[j] = r->candidates[((size_t)i * T + k) * img_n + j] / 255.0f;
    }
    char title[2 * SERVE_MAX_TEXT + 32], name[64];
    snprintf(title, sizeof title, "pair %d: %s -> %s", i + 1, rq->from[i], rq->to[i]);
    size_t off = (size_t)i * T;
    if (!rc)
        rc = sheet_render_guarded(&sheet, cands, T, r->edit_norm + off, r->background_norm + off, r->total + off,
                                  res->chosen[i] - 1, res->eval + off, r->guard ? r->eligible + off : NULL, title, err);
    if (!rc && r->mask_info[i].inferred) {
        image with = {0}, in = {0};
        char caption[256];
        cli_mask_caption(caption, sizeof caption, &r->mask_info[i]);
        rc = image_alloc(&in, res->ww, res->wh, 3, err);
        for (size_t j = 0; !rc && j < img_n; j++) in.data[j] = res->rgb[j] / 255.0f;
        if (!rc) rc = sheet_add_mask(&with, &sheet, &in, r->masks + (size_t)i * hw, caption, err);
        image_free(&in);
        if (!rc) {
            image_free(&sheet);
            sheet = with;
        }
    }
    snprintf(name, sizeof name, "pair%d_sheet.png", i + 1);
    if (!rc) rc = save_image_at(dir, name, &sheet, err);
    image_free(&sheet);
    for (int k = 0; k < T; k++) image_free(&cands[k]);
    free(cands);
    return rc;
}

static int write_candidate(const char *dir, const serve_result *res, int i, int k, const unsigned char *img,
                           oir_error *err) {
    char name[64];
    snprintf(name, sizeof name, "pair%d_k%02d.png", i + 1, k);
    return save_rgb_at(dir, name, img, res->ww, res->wh, err);
}

static const char *mask_name(const serve_request *rq, int i, char *buf, size_t cap) {
    if (rq->mask_kind[i] == SERVE_MASK_AUTO) return "auto";
    if (rq->mask_kind[i] == SERVE_MASK_UPLOAD) return "upload";
    snprintf(buf, cap, "%d,%d,%d,%d", rq->box[i][0], rq->box[i][1], rq->box[i][2], rq->box[i][3]);
    return buf;
}

/* report.json: the keys of oir edit's report that a served job has, plus
 * the job, its revision and its re-picks. */
static int write_report(oir_context *ctx, const serve_request *rq, const char *dir, const char *job_id,
                        const serve_result *res, oir_error *err) {
    const oir_result *r = res->r;
    oir_params p;
    int rc = serve_request_params(rq, &p, err);
    if (rc) return rc;
    int T = r->steps;
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "command", "serve");
    cJSON_AddStringToObject(rep, "oir_version", oir_version());
    cJSON_AddStringToObject(rep, "job", job_id);
    cJSON_AddNumberToObject(rep, "revision", res->revision);
    cJSON_AddStringToObject(rep, "model", oir_context_describe(ctx));
    cJSON_AddStringToObject(rep, "image", "upload");
    cli_report_geometry(rep, res->photo_w, res->photo_h, res->ww, res->wh, &res->fit, image_fit_feather(&res->fit));
    cJSON_AddStringToObject(rep, "source_prompt", r->source_prompt);
    cJSON_AddStringToObject(rep, "target_prompt", r->target_prompt);
    cJSON_AddNumberToObject(rep, "steps", T);
    cJSON_AddNumberToObject(rep, "guidance", p.guidance);
    cJSON_AddNumberToObject(rep, "reassembly_step_requested", p.reassembly_step);
    cJSON_AddNumberToObject(rep, "reassembly_step", res->reassembly_step);
    cJSON_AddNumberToObject(rep, "reinversion_steps", res->reinversion_steps);
    cJSON_AddStringToObject(rep, "low_pick", oir_low_pick_name(r->low_pick));
    if (r->guard) cJSON_AddNumberToObject(rep, "guard", r->guard_margin);
    else cJSON_AddStringToObject(rep, "guard", "off");
    cJSON_AddStringToObject(rep, "search", r->search);
    cJSON_AddNumberToObject(rep, "candidate_unet_calls", (double)r->unet_calls);
    cJSON_AddNumberToObject(rep, "candidate_unet_rows", (double)r->unet_rows);
    cJSON_AddNumberToObject(rep, "unet_rows_total", (double)r->unet_rows_total);
    cJSON_AddNumberToObject(rep, "vae_decodes", r->decodes);
    cJSON_AddNumberToObject(rep, "mask_unet_rows", (double)r->mask_unet_rows);
    cJSON_AddNumberToObject(rep, "mask_overlap_cells", (double)r->mask_overlap_cells);
    cJSON_AddNumberToObject(rep, "seed", (double)rq->seed);
    cJSON_AddNumberToObject(rep, "threads", oir_get_threads());
    cJSON *jp = cJSON_AddArrayToObject(rep, "pairs");
    for (int i = 0; i < rq->n_pairs; i++) {
        char box[64], name[64];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "from", rq->from[i]);
        cJSON_AddStringToObject(e, "to", rq->to[i]);
        cJSON_AddStringToObject(e, "mask", mask_name(rq, i, box, sizeof box));
        if (r->mask_info[i].inferred) cJSON_AddItemToObject(e, "mask_inferred", cli_mask_info_json(&r->mask_info[i]));
        cJSON_AddStringToObject(e, "guided_prompt", r->guided_prompts[i]);
        cJSON_AddNumberToObject(e, "chosen_step", res->chosen[i]);
        cJSON_AddNumberToObject(e, "searched_step", res->searched[i]);
        cJSON_AddStringToObject(e, "step_from", res->chosen[i] == res->searched[i] ? "searched" : "picked");
        cli_report_pair_search(e, r, i, res->eval);
        snprintf(name, sizeof name, "pair%d_sheet.png", i + 1);
        cJSON_AddStringToObject(e, "sheet", name);
        cJSON_AddItemToArray(jp, e);
    }
    cJSON *picks = cJSON_AddArrayToObject(rep, "picks");
    for (int i = 0; i < res->n_picks; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "pair", res->picks[i].pair + 1);
        cJSON_AddNumberToObject(e, "step", res->picks[i].step);
        cJSON_AddBoolToObject(e, "recomputed", res->picks[i].recomputed);
        cJSON_AddNumberToObject(e, "unet_rows", (double)res->picks[i].unet_rows);
        cJSON_AddNumberToObject(e, "seconds", res->picks[i].seconds);
        cJSON_AddItemToArray(picks, e);
    }
    cJSON *w = cJSON_AddArrayToObject(rep, "warnings");
    for (int i = 0; i < res->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(res->warnings[i]));
    cli_report_seconds(rep, r);
    char *json = cJSON_Print(rep);
    char *path = join(dir, "report.json");
    if (!json || !path) rc = oir_fail(err, OIR_E_NOMEM, "report.json: out of memory");
    else rc = outfile_write(path, json, strlen(json), err);
    free(path);
    cJSON_free(json);
    cJSON_Delete(rep);
    return rc;
}

/* dst (cap bytes) = text, cut to fit */
static void copy_text(char *dst, size_t cap, const char *text) {
    size_t n = strnlen(text, cap - 1);
    memcpy(dst, text, n);
    dst[n] = '\0';
}

static void add_warning(serve_result *res, const char *text) {
    if (res->n_warnings < (int)(sizeof res->warnings / sizeof res->warnings[0]))
        copy_text(res->warnings[res->n_warnings++], sizeof res->warnings[0], text);
}

int serve_job_edit(oir_context *ctx, const serve_request *rq, const char *dir, const char *job_id,
                   oir_progress_fn progress, void *user, serve_result **out, oir_error *err) {
    *out = NULL;
    image orig = {0}, work = {0}, pm[SERVE_MAX_PAIRS] = {{0}}, wm[SERVE_MAX_PAIRS] = {{0}};
    unsigned char *mask8[SERVE_MAX_PAIRS] = {0};
    char notes[SERVE_MAX_PAIRS][300];
    int n_notes = 0, rc, ww, wh;
    image_fit fit;
    serve_result *res = calloc(1, sizeof *res);
    if (!res) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    /* the working size and image, as oir edit: the model's native size as the longer side */
    if ((rc = oir_working_size(ctx, rq->photo_w, rq->photo_h, 0, &ww, &wh, err))) goto done;
    if ((rc = load_inputs(rq, dir, ww, wh, &orig, &fit, pm, wm, notes, &n_notes, err))) goto done;
    if ((rc = image_fit_image(&work, &orig, &fit, err))) goto done;
    size_t hw = (size_t)ww * wh;
    res->photo_w = orig.width, res->photo_h = orig.height, res->ww = ww, res->wh = wh, res->fit = fit;
    if (!(res->rgb = malloc(hw * 3)) || !(res->edited = malloc(hw * 3))) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < hw * 3; i++) res->rgb[i] = (unsigned char)(work.data[i] * 255.0f + 0.5f);
    oir_pair pairs[SERVE_MAX_PAIRS];
    for (int i = 0; i < rq->n_pairs; i++) {
        const char *guided = rq->guided[i][0] ? rq->guided[i] : NULL;
        if (rq->mask_kind[i] != SERVE_MASK_AUTO) {
            if (!(mask8[i] = malloc(hw))) {
                rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
                goto done;
            }
            for (size_t j = 0; j < hw; j++) mask8[i][j] = wm[i].data[j] > 0.5f;
        }
        pairs[i] = (oir_pair){rq->from[i], rq->to[i], mask8[i], guided};
    }
    oir_params p;
    if ((rc = serve_request_params(rq, &p, err))) goto done;
    p.progress = progress;
    p.progress_user = user;
    if ((rc = oir_edit(ctx, res->rgb, ww, wh, rq->prompt, pairs, rq->n_pairs, &p, &res->r, err))) goto done;
    const oir_result *r = res->r;
    int T = r->steps, n = rq->n_pairs;
    memcpy(res->edited, r->edited, hw * 3);
    res->eval = malloc((size_t)n * T);
    res->exact = calloc((size_t)n * T, 1);
    if (!res->eval || !res->exact || !r->candidates) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    memcpy(res->eval, r->evaluated, (size_t)n * T);
    for (size_t j = 0; j < (size_t)n * T; j++) res->exact[j] = r->evaluated[j] == 1 || r->evaluated[j] == OIR_EVALUATED_FORCED;
    for (int i = 0; i < n; i++) {
        res->chosen[i] = r->chosen_step[i];
        res->searched[i] = rq->pick[i] ? 0 : r->chosen_step[i];
    }
    res->reassembly_step = r->reassembly_step;
    res->reinversion_steps = r->reinversion_steps;
    for (int i = 0; i < r->n_warnings; i++)
        if (strstr(r->warnings[i], "inferred mask")) add_warning(res, r->warnings[i]);
    for (int i = 0; i < n_notes; i++) add_warning(res, notes[i]);
    res->n_kept = res->n_warnings;
    for (int i = 0; i < r->n_warnings; i++)
        if (!strstr(r->warnings[i], "inferred mask")) add_warning(res, r->warnings[i]);
    res->revision = 1;
    /* the files, as oir edit writes them (and every candidate with an image) */
    if (progress) progress(user, "outputs", 0, 1);
    if ((rc = write_edited(rq, dir, res, err)) || (rc = save_rgb_at(dir, "input.png", res->rgb, ww, wh, err)))
        goto done;
    for (int i = 0; i < n && !rc; i++) {
        char name[64];
        snprintf(name, sizeof name, "pair%d_mask.png", i + 1);
        image m = {0};
        rc = image_alloc(&m, ww, wh, 1, err);
        for (size_t j = 0; !rc && j < hw; j++) m.data[j] = r->masks[(size_t)i * hw + j] ? 1.0f : 0.0f;
        if (!rc) rc = save_image_at(dir, name, &m, err);
        image_free(&m);
        if (!rc) rc = write_sheet(rq, dir, res, i, err);
        for (int k = 1; k <= T && !rc; k++)
            if (r->evaluated[(size_t)i * T + k - 1])
                rc = write_candidate(dir, res, i, k, r->candidates + ((size_t)i * T + k - 1) * hw * 3, err);
    }
    if (!rc) rc = write_report(ctx, rq, dir, job_id, res, err);
    if (!rc && progress) progress(user, "outputs", 1, 1);
done:
    image_free(&orig);
    image_free(&work);
    free_masks(pm, wm);
    for (int i = 0; i < SERVE_MAX_PAIRS; i++) free(mask8[i]);
    if (rc) serve_result_free(res);
    else *out = res;
    return rc;
}

/* ------------------------------------------------------------ re-picks */

void serve_pick_free(serve_pick *pk) {
    free(pk->edited);
    for (int i = 0; i < pk->n_new; i++) free(pk->new_img[i]);
    memset(pk, 0, sizeof *pk);
}

int serve_job_pick(oir_context *ctx, const serve_request *rq, const char *dir, const serve_result *res, int pair,
                   int step, oir_progress_fn progress, void *user, serve_pick *pk, oir_error *err) {
    memset(pk, 0, sizeof *pk);
    const oir_result *r = res->r;
    int T = r->steps, n = rq->n_pairs, rc = OIR_OK;
    size_t hw = (size_t)res->ww * res->wh, img_n = hw * 3;
    if (pair < 0 || pair >= n || step < 1 || step > T)
        return oir_fail(err, OIR_E_ARG, "pick: pair %d step %d: pairs are 1..%d, steps 1..%d", pair + 1, step, n, T);
    double t0 = clock_wall_s();
    pk->pair = pair, pk->step = step;
    memcpy(pk->chosen, res->chosen, sizeof pk->chosen);
    pk->chosen[pair] = step;
    pk->reassembly_step = res->reassembly_step;
    pk->reinversion_steps = res->reinversion_steps;
    if (!(pk->edited = malloc(img_n))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    if (n == 1 && res->exact[step - 1]) { /* the candidate is the result: nothing to compute */
        memcpy(pk->edited, r->candidates + (size_t)(step - 1) * img_n, img_n);
        pk->seconds = clock_wall_s() - t0;
        return OIR_OK;
    }
    /* every pair's step forced: the inversion, those candidates, the reassembly */
    oir_params p;
    oir_result *r2 = NULL;
    if ((rc = serve_request_params(rq, &p, err))) goto fail;
    p.forced_steps = pk->chosen;
    p.progress = progress;
    p.progress_user = user;
    oir_pair pairs[SERVE_MAX_PAIRS];
    for (int i = 0; i < n; i++)
        pairs[i] = (oir_pair){rq->from[i], rq->to[i], r->masks + (size_t)i * hw, rq->guided[i][0] ? rq->guided[i] : NULL};
    if ((rc = oir_edit(ctx, res->rgb, res->ww, res->wh, rq->prompt, pairs, n, &p, &r2, err))) goto fail;
    memcpy(pk->edited, r2->edited, img_n);
    pk->recomputed = 1;
    pk->reassembly_step = r2->reassembly_step;
    pk->reinversion_steps = r2->reinversion_steps;
    pk->unet_rows = r2->unet_rows_total;
    for (int i = 0; i < r2->n_warnings && i < 8; i++) copy_text(pk->warnings[pk->n_warnings++], 256, r2->warnings[i]);
    for (int i = 0; i < n && !rc; i++) { /* candidates seen for the first time on the T-step schedule */
        int k = pk->chosen[i];
        if (res->exact[(size_t)i * T + k - 1]) continue;
        unsigned char *img = malloc(img_n);
        if (!img) {
            rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            break;
        }
        memcpy(img, r2->candidates + ((size_t)i * T + k - 1) * img_n, img_n);
        pk->new_pair[pk->n_new] = i, pk->new_step[pk->n_new] = k, pk->new_img[pk->n_new++] = img;
        rc = write_candidate(dir, res, i, k, img, err);
    }
    oir_result_free(r2);
    if (rc) goto fail;
    pk->seconds = clock_wall_s() - t0;
    return OIR_OK;
fail:
    serve_pick_free(pk);
    return rc;
}

void serve_pick_apply(serve_result *res, serve_pick *pk) {
    oir_result *r = res->r;
    int T = r->steps;
    size_t img_n = (size_t)res->ww * res->wh * 3;
    memcpy(res->chosen, pk->chosen, sizeof res->chosen);
    free(res->edited);
    res->edited = pk->edited;
    pk->edited = NULL;
    for (int j = 0; j < pk->n_new; j++) {
        size_t at = (size_t)pk->new_pair[j] * T + pk->new_step[j] - 1;
        memcpy(r->candidates + at * img_n, pk->new_img[j], img_n);
        res->exact[at] = 1;
        if (!res->eval[at]) res->eval[at] = OIR_EVALUATED_FORCED;
        free(pk->new_img[j]);
    }
    pk->n_new = 0;
    res->reassembly_step = pk->reassembly_step;
    res->reinversion_steps = pk->reinversion_steps;
    if (pk->recomputed) { /* the run's warnings are the re-pick's now (a reassembly step lowered, ...) */
        res->n_warnings = res->n_kept;
        for (int i = 0; i < pk->n_warnings; i++) add_warning(res, pk->warnings[i]);
    }
    if (res->n_picks == SERVE_MAX_PICKS) {
        memmove(res->picks, res->picks + 1, sizeof res->picks[0] * (SERVE_MAX_PICKS - 1));
        res->n_picks--;
    }
    res->picks[res->n_picks].pair = pk->pair;
    res->picks[res->n_picks].step = pk->step;
    res->picks[res->n_picks].recomputed = pk->recomputed;
    res->picks[res->n_picks].unet_rows = pk->unet_rows;
    res->picks[res->n_picks++].seconds = pk->seconds;
    res->revision++;
}

int serve_job_write_pick(oir_context *ctx, const serve_request *rq, const char *dir, const char *job_id,
                         const serve_result *res, oir_error *err) {
    int rc = write_edited(rq, dir, res, err);
    /* every sheet: the run may have rendered other pairs' candidates */
    for (int i = 0; i < rq->n_pairs && !rc; i++) rc = write_sheet(rq, dir, res, i, err);
    if (!rc) rc = write_report(ctx, rq, dir, job_id, res, err);
    return rc;
}

/* ------------------------------------------------------------ files, JSON */

int serve_result_has_file(const serve_result *res, const char *name) {
    static const char *const fixed[] = {"edited.png", "edited_working.png", "input.png", "report.json"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i])) return 1;
    if (!res) return 0;
    int i = 0, k = 0, T = res->r->steps, len = 0;
    char back[64];
    if (sscanf(name, "pair%d_sheet.png%n", &i, &len) == 1 && len > 0 && i >= 1 && i <= res->r->n_pairs) {
        snprintf(back, sizeof back, "pair%d_sheet.png", i);
        return !strcmp(back, name);
    }
    if (sscanf(name, "pair%d_mask.png%n", &i, &len) == 1 && len > 0 && i >= 1 && i <= res->r->n_pairs) {
        snprintf(back, sizeof back, "pair%d_mask.png", i);
        return !strcmp(back, name);
    }
    if (sscanf(name, "pair%d_k%d.png%n", &i, &k, &len) == 2 && len > 0 && i >= 1 && i <= res->r->n_pairs && k >= 1 &&
        k <= T) {
        snprintf(back, sizeof back, "pair%d_k%02d.png", i, k);
        return !strcmp(back, name) && (res->eval[(size_t)(i - 1) * T + k - 1] || res->exact[(size_t)(i - 1) * T + k - 1]);
    }
    return 0;
}

cJSON *serve_result_json(const serve_result *res, const serve_request *rq) {
    const oir_result *r = res->r;
    int T = r->steps;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "revision", res->revision);
    cJSON *g = cJSON_AddObjectToObject(o, "photo");
    cJSON_AddNumberToObject(g, "width", res->photo_w);
    cJSON_AddNumberToObject(g, "height", res->photo_h);
    g = cJSON_AddObjectToObject(o, "working");
    cJSON_AddNumberToObject(g, "width", res->ww);
    cJSON_AddNumberToObject(g, "height", res->wh);
    g = cJSON_AddObjectToObject(o, "crop");
    cJSON_AddNumberToObject(g, "x", res->fit.crop_x);
    cJSON_AddNumberToObject(g, "y", res->fit.crop_y);
    cJSON_AddNumberToObject(g, "width", res->fit.crop_w);
    cJSON_AddNumberToObject(g, "height", res->fit.crop_h);
    cJSON_AddNumberToObject(o, "steps", T);
    cJSON_AddStringToObject(o, "search", r->search);
    cJSON_AddStringToObject(o, "source_prompt", r->source_prompt);
    cJSON_AddStringToObject(o, "target_prompt", r->target_prompt);
    cJSON_AddNumberToObject(o, "reassembly_step", res->reassembly_step);
    cJSON_AddNumberToObject(o, "reinversion_steps", res->reinversion_steps);
    cJSON_AddNumberToObject(o, "seconds", r->seconds_total);
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; i < res->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(res->warnings[i]));
    if (res->n_picks) {
        cJSON *lp = cJSON_AddObjectToObject(o, "last_pick");
        const serve_pick_log *pk = &res->picks[res->n_picks - 1];
        cJSON_AddNumberToObject(lp, "pair", pk->pair + 1);
        cJSON_AddNumberToObject(lp, "step", pk->step);
        cJSON_AddBoolToObject(lp, "recomputed", pk->recomputed);
        cJSON_AddNumberToObject(lp, "seconds", pk->seconds);
    }
    cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
    for (int i = 0; i < rq->n_pairs; i++) {
        size_t off = (size_t)i * T;
        char box[64], name[64];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "from", rq->from[i]);
        cJSON_AddStringToObject(e, "to", rq->to[i]);
        cJSON_AddStringToObject(e, "mask", mask_name(rq, i, box, sizeof box));
        cJSON_AddBoolToObject(e, "mask_inferred", r->mask_info[i].inferred);
        cJSON_AddNumberToObject(e, "chosen_step", res->chosen[i]);
        cJSON_AddNumberToObject(e, "searched_step", res->searched[i]);
        cJSON_AddItemToObject(e, "evaluated", cli_report_bytes(res->eval + off, T));
        cJSON *im = cJSON_AddArrayToObject(e, "images"); /* 1: pair<i>_k<NN>.png exists */
        for (int k = 0; k < T; k++) cJSON_AddItemToArray(im, cJSON_CreateNumber(res->eval[off + k] || res->exact[off + k]));
        cJSON_AddItemToObject(e, "edit", cli_report_floats(r->edit_norm + off, T));
        cJSON_AddItemToObject(e, "background", cli_report_floats(r->background_norm + off, T));
        cJSON_AddItemToObject(e, "total", cli_report_floats(r->total + off, T));
        snprintf(name, sizeof name, "pair%d_sheet.png", i + 1);
        cJSON_AddStringToObject(e, "sheet", name);
        snprintf(name, sizeof name, "pair%d_mask.png", i + 1);
        cJSON_AddStringToObject(e, "mask_file", name);
        cJSON_AddItemToArray(pairs, e);
    }
    return o;
}
