#include "core/clock.h"
#include "measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_sd.h"
#include "edit/scorer.h"
#include "edit/search_metric.h"
#include "io/image.h"


/* ---- issue 4 -------------------------------------------------------------- */

/* Decodes a latent to an 8-bit image (rounded, as image_save_png writes). */
static int decode_rgb(sampler *s, const float *z, float *pixels, unsigned char *rgb, oir_error *err) {
    image tmp = {0};
    int rc = sampler_decode(s, z, 1, pixels, err);
    if (!rc) rc = cli_tensor_to_image(&tmp, pixels, s->image_w, err); /* square: h == w */
    if (!rc)
        for (size_t k = 0; k < (size_t)s->image_h * s->image_w * 3; k++)
            rgb[k] = (unsigned char)lrintf(tmp.data[k] * 255.0f);
    image_free(&tmp);
    return rc;
}

/* Every object of sc in image img, through masks; counts into the (a) or (c)
 * counters. */
static int judge_objects(se_judge *j, const se_scene *sc, const unsigned char *img, const unsigned char *masks,
                         int size, long *n, long *both, long *colour, long *shape, long *heldout,
                         long *heldout_both, int *all_right, oir_error *err) {
    const unsigned char *imgs[SE_MAX_OBJECTS], *ms[SE_MAX_OBJECTS];
    int col[SE_MAX_OBJECTS], shp[SE_MAX_OBJECTS];
    size_t hw = (size_t)size * size;
    for (int o = 0; o < sc->n_objects; o++) {
        imgs[o] = img;
        ms[o] = masks + o * hw;
    }
    int rc = se_judge_classify(j, imgs, ms, sc->n_objects, size, col, shp, NULL, NULL, err);
    if (rc) return rc;
    *all_right = 1;
    for (int o = 0; o < sc->n_objects; o++) {
        const se_object *ob = &sc->objects[o];
        int ok = col[o] == ob->colour && shp[o] == ob->shape;
        *n += 1;
        *both += ok;
        if (colour) *colour += col[o] == ob->colour;
        if (shape) *shape += shp[o] == ob->shape;
        if (heldout && ob->heldout) {
            *heldout += 1;
            *heldout_both += ok;
        }
        *all_right &= ok;
    }
    return OIR_OK;
}

int se_quality_scene(sampler *s, se_judge *j, const se_scene *sc, const unsigned char *rgb,
                     const unsigned char *masks, const se_quality_params *p, se_quality *q,
                     unsigned char *gen_out, oir_error *err) {
    int size = s->image_w, T = s->T, rc = OIR_OK, all;
    size_t hw = (size_t)size * size, ctx_n = (size_t)s->ctx_len * s->ctx_dim;
    float *pixels = malloc(sizeof(float) * hw * 3), *z = malloc(sizeof(float) * s->lat_n);
    float *lat0 = malloc(sizeof(float) * s->lat_n), *cond = malloc(sizeof(float) * ctx_n);
    unsigned char *vae_rec = malloc(hw * 3), *rec = malloc(hw * 3);
    if (!pixels || !z || !lat0 || !cond || !vae_rec || !rec) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    double t0 = clock_wall_s();
    if (p->what & SE_Q_CLIP) { /* (a): the phrases here, the words (a') below, whatever the judge's default */
        int read_words = j->read_words;
        j->read_words = 0;
        rc = judge_objects(j, sc, rgb, masks, size, &q->clip_objects, &q->clip_both, &q->clip_colour,
                           &q->clip_shape, &q->clip_heldout, &q->clip_heldout_both, &all, err);
        j->read_words = read_words;
        if (rc) goto done;
        const unsigned char *imgs[SE_MAX_OBJECTS], *ms[SE_MAX_OBJECTS];
        int col[SE_MAX_OBJECTS], shp[SE_MAX_OBJECTS];
        for (int o = 0; o < sc->n_objects; o++) {
            imgs[o] = rgb;
            ms[o] = masks + o * hw;
        }
        if ((rc = se_judge_classify_attrs(j, imgs, ms, sc->n_objects, size, col, shp, err))) goto done;
        for (int o = 0; o < sc->n_objects; o++) {
            int c_ok = col[o] == sc->objects[o].colour, s_ok = shp[o] == sc->objects[o].shape;
            q->attr_colour += c_ok;
            q->attr_shape += s_ok;
            q->attr_both += c_ok && s_ok;
            q->attr_heldout_both += c_ok && s_ok && sc->objects[o].heldout;
        }
    }
    double t1 = clock_wall_s();
    q->seconds[0] += t1 - t0;
    if (p->what & (SE_Q_VAE | SE_Q_INV)) { /* (b) encode (posterior mean) -> decode */
        for (size_t k = 0; k < hw * 3; k++) pixels[(k % 3) * hw + k / 3] = rgb[k] / 127.5f - 1.0f;
        if ((rc = sampler_encode_image(s, pixels, lat0, err)) || (rc = decode_rgb(s, lat0, pixels, vae_rec, err)))
            goto done;
        if (p->what & SE_Q_VAE) se_stat_add(&q->vae_psnr, se_psnr_capped(se_psnr(vae_rec, rgb, hw)));
    }
    double t2 = clock_wall_s();
    q->seconds[1] += t2 - t1;
    if (p->what & SE_Q_INV) { /* (d) invert T steps and denoise T steps, source caption, guidance 1 */
        memcpy(z, lat0, sizeof(float) * s->lat_n);
        if ((rc = sampler_encode_prompt(s, sc->caption, cond, err)) ||
            (rc = sampler_invert(s, z, 0, T, cond, NULL, err)) ||
            (rc = sampler_denoise(s, z, T, 0, cond, NULL, 1.0f, err)) || (rc = decode_rgb(s, z, pixels, rec, err)))
            goto done;
        se_stat_add(&q->inv_psnr, se_psnr_capped(se_psnr(rec, rgb, hw)));
        se_stat_add(&q->inv_vs_vae_psnr, se_psnr_capped(se_psnr(rec, vae_rec, hw)));
    }
    double t3 = clock_wall_s();
    q->seconds[3] += t3 - t2;
    if (p->what & SE_Q_GEN) { /* (c) caption -> image, every object judged through its mask */
        int guided = p->guidance != 1.0f && p->uncond;
        cli_gaussian_noise(z, s->lat_n, p->seed); /* DDIM's init_noise_sigma is 1 */
        if ((rc = sampler_encode_prompt(s, sc->caption, cond, err)) ||
            (rc = sampler_denoise(s, z, T, 0, cond, guided ? p->uncond : NULL, guided ? p->guidance : 1.0f, err)) ||
            (rc = decode_rgb(s, z, pixels, rec, err)))
            goto done;
        long dummy = 0;
        rc = judge_objects(j, sc, rec, masks, size, &q->gen_objects, &q->gen_objects_right, NULL, NULL, NULL,
                           &dummy, &all, err);
        if (rc) goto done;
        q->gen_images++;
        q->gen_all_right += all;
        if (p->px) { /* the pixel judge: each object at its position, on the scene's background */
            int px_all = 1;
            for (int o = 0; o < sc->n_objects; o++) {
                const se_object *ob = &sc->objects[o];
                se_px_object r;
                se_px_read_object(p->px, rec, ob->position, ob->shape, sc->background, &r);
                int ok = r.colour == ob->colour && r.shape == ob->shape;
                q->gen_px_objects_right += ok;
                px_all &= ok;
            }
            q->gen_px_all_right += px_all;
        }
        if (gen_out) memcpy(gen_out, rec, hw * 3);
        q->seconds[2] += clock_wall_s() - t3;
    }
done:
    free(pixels);
    free(z);
    free(lat0);
    free(cond);
    free(vae_rec);
    free(rec);
    return rc;
}

/* ---- issue 6 -------------------------------------------------------------- */

int se_edit_evaluate(se_judge *j, const se_case *c, const unsigned char *E, const unsigned char *orig,
                     const unsigned char *gt, const unsigned char *pair_masks, const unsigned char *obj_masks,
                     const unsigned char *uni, int size, const float *target_text, se_edit_eval *me,
                     oir_error *err) {
    size_t hw = (size_t)size * size;
    memset(me, 0, sizeof *me);
    enum { N = SE_MAX_PAIRS + SE_MAX_OBJECTS };
    const unsigned char *imgs[N], *ms[N];
    int col[N], shp[N], bg[N], n = 0, kept_idx[SE_MAX_OBJECTS], nk = 0;
    for (int p = 0; p < c->n_pairs; p++) {
        imgs[n] = E;
        ms[n++] = pair_masks + p * hw;
    }
    for (int o = 0; o < c->n_objects; o++)
        if (!c->objects[o].edited) {
            kept_idx[nk++] = o;
            imgs[n] = E;
            ms[n++] = obj_masks + o * hw;
        }
    int rc = se_judge_classify(j, imgs, ms, n, size, col, shp, bg, NULL, err);
    if (rc) return rc;
    int all = 1;
    for (int p = 0; p < c->n_pairs; p++) {
        const se_pair *pr = &c->pairs[p];
        int ok;
        if (pr->is_background) {
            ok = bg[p] == pr->background;
            me->bg_pairs++;
            me->bg_right += ok;
        } else {
            ok = col[p] == pr->colour && shp[p] == pr->shape;
            me->obj_pairs++;
            me->obj_right += ok;
            me->colour_right += col[p] == pr->colour;
            me->shape_right += shp[p] == pr->shape;
            if (pr->heldout) {
                me->heldout_pairs++;
                me->heldout_right += ok;
            }
        }
        all &= ok;
    }
    me->all_right = all;
    for (int k = 0; k < nk; k++) {
        const se_case_object *o = &c->objects[kept_idx[k]];
        int i = c->n_pairs + k;
        me->kept_n++;
        me->kept_right += col[i] == o->colour && shp[i] == o->shape;
    }
    if (!me->bg_pairs) {
        size_t cnt = 0;
        me->bg_mse = se_masked_mse(E, orig, uni, hw, 0, &cnt);
        if (cnt) {
            me->has_bg_region = 1;
            me->bg_psnr = se_psnr_capped(se_psnr_of_mse(me->bg_mse));
        }
    }
    me->gt_psnr = se_psnr_capped(se_psnr(E, gt, hw));
    size_t n_in = 0;
    double mse_in = se_masked_mse(E, gt, uni, hw, 1, &n_in);
    me->edit_psnr = se_psnr_capped(se_psnr_of_mse(mse_in));
    return se_judge_clip_score(j, E, size, target_text, &me->clip_score, err);
}

void se_edit_sum_add(se_edit_sum *s, const se_edit_eval *e) {
    s->cases++;
    s->obj_pairs += e->obj_pairs;
    s->obj_right += e->obj_right;
    s->colour_right += e->colour_right;
    s->shape_right += e->shape_right;
    s->heldout_pairs += e->heldout_pairs;
    s->heldout_right += e->heldout_right;
    s->bg_pairs += e->bg_pairs;
    s->bg_right += e->bg_right;
    s->all_right += e->all_right;
    s->kept_n += e->kept_n;
    s->kept_right += e->kept_right;
    if (e->has_bg_region) {
        se_stat_add(&s->bg_mse, e->bg_mse);
        se_stat_add(&s->bg_psnr, e->bg_psnr);
    }
    se_stat_add(&s->gt_psnr, e->gt_psnr);
    se_stat_add(&s->edit_psnr, e->edit_psnr);
    se_stat_add(&s->clip, e->clip_score);
    if (e->px_judged) {
        s->px_cases++;
        s->px_obj_pairs += e->obj_pairs;
        s->px_obj_right += e->px_obj_right;
        s->px_colour_right += e->px_colour_right;
        s->px_shape_right += e->px_shape_right;
        s->px_bg_pairs += e->bg_pairs;
        s->px_bg_right += e->px_bg_right;
        s->px_all_right += e->px_all_right;
        s->px_kept_n += e->kept_n;
        s->px_kept_right += e->px_kept_right;
    }
}

int se_pair_right_pixels(const se_px_judge *px, const se_case *c, int p, const unsigned char *E,
                         const unsigned char *pair_masks) {
    const se_pair *pr = &c->pairs[p];
    size_t hw = (size_t)px->size * px->size;
    if (pr->is_background) return se_px_read_background(px, E, pair_masks + p * hw) == pr->background;
    se_px_object ob;
    se_px_read_object(px, E, c->objects[pr->object].position, pr->shape, c->target_background, &ob);
    return ob.colour == pr->colour && ob.shape == pr->shape;
}

int se_edit_evaluate_pixels(const se_px_judge *px, const se_case *c, const unsigned char *E,
                            const unsigned char *pair_masks, se_edit_eval *out, oir_error *err) {
    for (int o = 0; o < c->n_objects; o++)
        if (c->objects[o].position < 0)
            return oir_fail(err, OIR_E_FORMAT, "case %s: object %d has no position in the manifest (the pixel judge "
                            "needs it: regenerate with tools/shapes/make_eval_sets.py)", c->name, o);
    size_t hw = (size_t)px->size * px->size;
    int all = 1;
    out->px_obj_right = out->px_colour_right = out->px_shape_right = out->px_bg_right = out->px_kept_right = 0;
    for (int p = 0; p < c->n_pairs; p++) {
        const se_pair *pr = &c->pairs[p];
        int ok;
        if (pr->is_background) {
            ok = se_px_read_background(px, E, pair_masks + p * hw) == pr->background;
            out->px_bg_right += ok;
        } else {
            se_px_object ob;
            se_px_read_object(px, E, c->objects[pr->object].position, pr->shape, c->target_background, &ob);
            ok = ob.colour == pr->colour && ob.shape == pr->shape;
            out->px_obj_right += ok;
            out->px_colour_right += ob.colour == pr->colour;
            out->px_shape_right += ob.shape == pr->shape;
        }
        all &= ok;
    }
    for (int o = 0; o < c->n_objects; o++) {
        const se_case_object *ob = &c->objects[o];
        if (ob->edited) continue;
        se_px_object r;
        se_px_read_object(px, E, ob->position, ob->shape, c->target_background, &r);
        out->px_kept_right += r.colour == ob->colour && r.shape == ob->shape;
    }
    out->px_all_right = all;
    out->px_judged = 1;
    return OIR_OK;
}

int se_search_mean_of_pairs(const clip_model *clip, const se_case *c, const unsigned char *rgb,
                            const unsigned char *cands, int T, const unsigned char *pair_masks,
                            const unsigned char *uni, int size, int *chosen, oir_error *err) {
    int rc, have_sc = 0;
    size_t hw = (size_t)size * size;
    scorer sc;
    image orig = {0}, mask = {0}, *ci = calloc((size_t)T, sizeof(image));
    float *edit = calloc((size_t)T, sizeof(float)), *tmp = calloc((size_t)T, sizeof(float));
    float *bgs = calloc((size_t)T, sizeof(float)), *text = NULL;
    if (!ci || !edit || !tmp || !bgs) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = image_alloc(&orig, size, size, 3, err)) || (rc = image_alloc(&mask, size, size, 1, err))) goto done;
    for (size_t i = 0; i < hw * 3; i++) orig.data[i] = rgb[i] / 255.0f; /* as oir.c's rgb8_to_image */
    for (int k = 0; k < T; k++) {
        if ((rc = image_alloc(&ci[k], size, size, 3, err))) goto done;
        for (size_t i = 0; i < hw * 3; i++) ci[k].data[i] = cands[(size_t)k * hw * 3 + i] / 255.0f;
    }
    if ((rc = scorer_init(&sc, clip, &orig, err))) goto done;
    have_sc = 1;
    if (!(text = malloc(sizeof(float) * (size_t)sc.P))) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    for (int p = 0; p < c->n_pairs; p++) {
        for (size_t i = 0; i < hw; i++) mask.data[i] = pair_masks[p * hw + i] ? 1.0f : 0.0f;
        if ((rc = scorer_text(&sc, c->pairs[p].to, text, err)) ||
            (rc = scorer_score(&sc, ci, T, &mask, text, tmp, bgs, err)))
            goto done;
        for (int k = 0; k < T; k++) edit[k] += tmp[k] / (float)c->n_pairs;
    }
    for (size_t i = 0; i < hw; i++) mask.data[i] = uni[i] ? 1.0f : 0.0f;
    if ((rc = scorer_score(&sc, ci, T, &mask, text, tmp, bgs, err))) goto done;
    search_choice ch = search_metric_choose(edit, bgs, T, NULL, NULL, NULL);
    *chosen = ch.best + 1;
done:
    if (have_sc) scorer_free(&sc);
    image_free(&orig);
    image_free(&mask);
    for (int k = 0; ci && k < T; k++) image_free(&ci[k]);
    free(ci);
    free(edit);
    free(tmp);
    free(bgs);
    free(text);
    return rc;
}

int se_edit_case_load(const se_case *c, int size, unsigned char *rgb, unsigned char *gt,
                      unsigned char *pair_masks, unsigned char *uni, unsigned char *obj_masks,
                      oir_error *err) {
    size_t hw = (size_t)size * size;
    int rc;
    if ((rc = se_load_rgb(c->image, size, rgb, err)) || (rc = se_load_rgb(c->ground_truth, size, gt, err)))
        return rc;
    memset(uni, 0, hw);
    for (int p = 0; p < c->n_pairs; p++) {
        if ((rc = se_load_mask(c->pairs[p].mask, size, pair_masks + p * hw, err))) return rc;
        for (size_t i = 0; i < hw; i++) uni[i] |= pair_masks[p * hw + i];
    }
    for (int q = 0; q < c->n_objects; q++)
        if ((rc = se_load_mask(c->objects[q].mask, size, obj_masks + q * hw, err))) return rc;
    return OIR_OK;
}

void se_json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}
