/* Plumbing of the shapes-world measurements (bench/shapes/): metric
 * arithmetic on known inputs, the committed scene-set manifests, the CLIP
 * judge against the library's scorer, and the issue-4 / issue-6
 * measurement functions run end to end on the random fixtures
 * (tests/fixtures/sd/tiny-pipe + clip-tiny, 16x16: the 64x64 scenes are
 * resized). The numbers of the random models mean nothing; the trained
 * models are measured by `make quality` and `make bench-quality`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diffusion/sampler.h"
#include "edit/scorer.h"
#include "harness.h"
#include "io/image.h"
#include "measure.h"
#include "models/loader.h"
#include "oir.h"
#include "shapes_eval.h"

#define HELDOUT_DIR "bench/scenes/heldout"
#define EDIT_DIR "bench/scenes/edit"

static void test_metrics(void) {
    unsigned char a[4 * 3], b[4 * 3], m[4] = {1, 0, 0, 1};
    for (int i = 0; i < 12; i++) a[i] = b[i] = (unsigned char)(i * 20);
    CHECK(isinf(se_psnr(a, b, 4)), "PSNR of identical images is infinite");
    CHECK(se_psnr_capped(se_psnr(a, b, 4)) == SE_PSNR_CAP, "capped at %g dB", SE_PSNR_CAP);
    for (int i = 0; i < 12; i++) b[i] = (unsigned char)(a[i] + 1);
    /* every channel off by 1: 10 log10(255^2) = 48.1308 dB */
    CHECK(fabs(se_psnr(a, b, 4) - 48.1308) < 1e-3, "PSNR off-by-one %.4f", se_psnr(a, b, 4));
    unsigned char z[12] = {0}, w[12];
    memset(w, 255, sizeof w);
    CHECK(fabs(se_psnr(z, w, 4)) < 1e-12, "black vs white: 0 dB, got %g", se_psnr(z, w, 4));
    /* pixels 0 and 3 inside: make only pixel 1 differ, by 255 in one channel */
    memcpy(b, a, 12);
    b[1 * 3 + 0] = (unsigned char)(a[3] + 255 > 255 ? 0 : 255);
    double d = (double)((int)a[3] - (int)b[3]) / 255.0;
    size_t cnt = 0;
    double mse_out = se_masked_mse(a, b, m, 4, 0, &cnt);
    CHECK(cnt == 2 && fabs(mse_out - d * d / 6.0) < 1e-12, "outside MSE %g over %zu (expected %g over 2)", mse_out,
          cnt, d * d / 6.0);
    double mse_in = se_masked_mse(a, b, m, 4, 1, &cnt);
    CHECK(cnt == 2 && mse_in == 0.0, "inside MSE %g over %zu", mse_in, cnt);
    unsigned char none[4] = {1, 1, 1, 1};
    CHECK(se_masked_mse(a, b, none, 4, 0, &cnt) == 0.0 && cnt == 0, "empty region: MSE 0, count 0");
    CHECK(fabs(se_psnr_of_mse(0.01) - 20.0) < 1e-9, "PSNR of MSE 0.01 is 20 dB");
    CHECK(isinf(se_psnr_of_mse(0.0)), "PSNR of MSE 0 is infinite");
    se_stat s = {0};
    CHECK(isnan(se_stat_mean(&s)) && isnan(se_stat_std(&s)), "empty stat is NaN");
    se_stat_add(&s, 1);
    se_stat_add(&s, 3);
    CHECK(se_stat_mean(&s) == 2.0 && fabs(se_stat_std(&s) - 1.0) < 1e-12, "mean 2, std 1");
    CHECK(se_bin(1, 50, 10) == 0 && se_bin(5, 50, 10) == 0 && se_bin(6, 50, 10) == 1 && se_bin(50, 50, 10) == 9,
          "bins of 5 over 1..50");
    CHECK(se_bin(20, 20, 10) == 9 && se_bin(0, 20, 10) == 0 && se_bin(99, 20, 10) == 9, "bins clamp");
    /* a perfect classifier: every row of a table of distinct unit vectors is
     * classified as itself; ties go to the first row */
    float table[5 * 4] = {0};
    for (int i = 0; i < 4; i++) table[i * 4 + i] = 1.0f;
    table[4 * 4 + 0] = 1.0f; /* row 4 duplicates row 0 */
    int right = 0;
    for (int i = 0; i < 4; i++) right += se_argmax_dot(table + i * 4, table, 5, 4) == i;
    CHECK(right == 4, "perfect classifier: %d/4 right", right);
    CHECK(se_argmax_dot(table + 16, table, 5, 4) == 0, "tie goes to the first row");
    /* summing case verdicts */
    se_edit_sum sum;
    memset(&sum, 0, sizeof sum);
    se_edit_eval e1 = {.obj_pairs = 2, .obj_right = 1, .colour_right = 2, .shape_right = 1, .all_right = 0,
                       .has_bg_region = 1, .bg_mse = 0.01, .bg_psnr = 20, .gt_psnr = 30, .clip_score = 0.5f};
    se_edit_eval e2 = {.obj_pairs = 1, .obj_right = 1, .colour_right = 1, .shape_right = 1, .all_right = 1,
                       .bg_pairs = 1, .bg_right = 1, .gt_psnr = 20, .clip_score = 0.25f};
    se_edit_sum_add(&sum, &e1);
    se_edit_sum_add(&sum, &e2);
    CHECK(sum.cases == 2 && sum.obj_pairs == 3 && sum.obj_right == 2 && sum.all_right == 1 && sum.bg_pairs == 1,
          "sums of counts");
    CHECK(sum.bg_psnr.n == 1 && se_stat_mean(&sum.bg_psnr) == 20 && se_stat_mean(&sum.gt_psnr) == 25 &&
              fabs(se_stat_mean(&sum.clip) - 0.375) < 1e-9,
          "background PSNR only over cases with a background region; means");
}

static void test_manifests(se_scene_set *hs, se_case_set *es) {
    oir_error err = {0};
    if (!CHECK(se_scene_set_load(hs, HELDOUT_DIR, &err) == OIR_OK, "%s", err.message)) return;
    CHECK(hs->n >= 100 && hs->size == 64, "%d held-out scenes of %d px", hs->n, hs->size);
    CHECK(hs->vocab.n_colours >= 6 && hs->vocab.n_shapes >= 6 && hs->vocab.n_heldout >= 1, "vocabulary %d x %d",
          hs->vocab.n_colours, hs->vocab.n_shapes);
    int with_heldout = 0, ok_files = 1;
    for (int i = 0; i < hs->n; i++) {
        int h = 0;
        for (int o = 0; o < hs->scenes[i].n_objects; o++) {
            h |= hs->scenes[i].objects[o].heldout;
            ok_files &= access(hs->scenes[i].objects[o].mask, R_OK) == 0;
        }
        with_heldout += h;
        ok_files &= access(hs->scenes[i].image, R_OK) == 0;
    }
    CHECK(with_heldout == hs->n, "every held-out scene has a held-out combination (%d/%d)", with_heldout, hs->n);
    CHECK(ok_files, "every image and mask of the held-out set exists");
    if (!CHECK(se_case_set_load(es, EDIT_DIR, &err) == OIR_OK, "%s", err.message)) return;
    int single = 0, multi = 0, bad = 0, heldout = 0;
    for (int i = 0; i < es->n; i++) {
        const se_case *c = &es->cases[i];
        single += c->n_pairs == 1;
        multi += c->n_pairs >= 2 && c->n_pairs <= 3;
        int h = 0;
        for (int p = 0; p < c->n_pairs; p++) {
            h |= c->pairs[p].heldout;
            bad += access(c->pairs[p].mask, R_OK) != 0;
        }
        heldout += h;
        bad += access(c->image, R_OK) != 0 || access(c->ground_truth, R_OK) != 0;
    }
    CHECK(single >= 100 && multi >= 100 && single + multi == es->n, "%d single, %d multi of %d", single, multi,
          es->n);
    CHECK(bad == 0, "%d missing files in the edit set", bad);
    CHECK(heldout * 10 >= es->n * 9, "%d/%d cases edit into a held-out combination", heldout, es->n);
    /* bad inputs */
    se_scene_set x;
    CHECK(se_scene_set_load(&x, "/nonexistent/set", &err) == OIR_E_IO && strstr(err.message, "make_eval_sets"),
          "missing set names the generator: %s", err.message);
    char dir[] = "/tmp/oir_shapes_bench_XXXXXX";
    if (mkdtemp(dir)) {
        char path[256];
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        FILE *f = fopen(path, "w");
        fputs("{\"colours\": [\"red\"], \"shapes\": [\"circle\"], \"backgrounds\": [\"gray\"], \"scenes\": "
              "[{\"name\": \"0\", \"image\": \"0.png\", \"caption\": \"a red blob\", \"background\": \"gray\", "
              "\"objects\": [{\"colour\": \"red\", \"shape\": \"blob\", \"mask\": \"m.png\"}]}]}",
              f);
        fclose(f);
        CHECK(se_scene_set_load(&x, dir, &err) == OIR_E_FORMAT && strstr(err.message, "blob"),
              "unknown shape named: %s", err.message);
        f = fopen(path, "w");
        fputs("{\"colours\": [", f);
        fclose(f);
        CHECK(se_scene_set_load(&x, dir, &err) == OIR_E_FORMAT, "malformed JSON: %s", err.message);
        remove(path);
        rmdir(dir);
    }
}

/* The judge's masked embedding is the search metric's: its cosine with a
 * phrase equals the library scorer's edit score for the same image and mask. */
static void test_judge(const clip_model *clip, const se_scene_set *hs, se_judge *j) {
    oir_error err = {0};
    if (!CHECK(se_judge_init(j, clip, &hs->vocab, &err) == OIR_OK, "%s", err.message)) return;
    const int size = 16;
    unsigned char rgb[16 * 16 * 3], mask[16 * 16];
    const se_scene *sc = &hs->scenes[0];
    if (!CHECK(se_load_rgb(sc->image, size, rgb, &err) == OIR_OK &&
                   se_load_mask(sc->objects[0].mask, size, mask, &err) == OIR_OK,
               "%s", err.message))
        return;
    const unsigned char *imgs[2] = {rgb, rgb}, *ms[2] = {mask, NULL};
    int col[2], shp[2], bg[2];
    float *e = malloc(sizeof(float) * 2 * j->P), *text = malloc(sizeof(float) * j->P);
    if (CHECK(se_judge_classify(j, imgs, ms, 2, size, col, shp, bg, e, &err) == OIR_OK, "%s", err.message)) {
        CHECK(col[0] >= 0 && col[0] < hs->vocab.n_colours && shp[0] >= 0 && shp[0] < hs->vocab.n_shapes &&
                  bg[0] >= 0 && bg[0] < hs->vocab.n_backgrounds,
              "predictions in range");
        /* the arg-max really is the best phrase */
        int k = col[0] * hs->vocab.n_shapes + shp[0];
        double best = 0, dk = 0;
        for (int p = 0; p < j->P; p++) dk += (double)e[p] * j->pair_text[(size_t)k * j->P + p];
        best = dk;
        int beaten = 0;
        for (int q = 0; q < j->n_pairs; q++) {
            double d = 0;
            for (int p = 0; p < j->P; p++) d += (double)e[p] * j->pair_text[(size_t)q * j->P + p];
            beaten += d > best + 1e-12;
        }
        CHECK(beaten == 0, "arg-max phrase beaten by %d phrases", beaten);
        /* against the library scorer (masked CLIP score of the search metric) */
        scorer s;
        image orig = {0}, m = {0};
        image_alloc(&orig, size, size, 3, &err);
        image_alloc(&m, size, size, 1, &err);
        for (int i = 0; i < size * size * 3; i++) orig.data[i] = rgb[i] / 255.0f;
        for (int i = 0; i < size * size; i++) m.data[i] = mask[i];
        char phrase[80];
        snprintf(phrase, sizeof phrase, "%s %s", hs->vocab.colours[col[0]], hs->vocab.shapes[shp[0]]);
        float edit = 0, bgs = 0, cosine = 0;
        float *raw = malloc(sizeof(float) * j->P);
        if (CHECK(scorer_init(&s, clip, &orig, &err) == OIR_OK, "%s", err.message)) {
            CHECK(scorer_text(&s, phrase, raw, &err) == OIR_OK &&
                      scorer_score(&s, &orig, 1, &m, raw, &edit, &bgs, &err) == OIR_OK,
                  "%s", err.message);
            scorer_free(&s);
            CHECK(fabsf(edit - (float)dk) < 1e-5f, "judge cosine %.6f == scorer edit score %.6f (atol 1e-5)",
                  (float)dk, edit);
            CHECK(bgs == 0.0f, "scorer on the original: background score 0");
        }
        /* the whole-image CLIP score is the unmasked cosine */
        CHECK(se_judge_text(j, sc->caption, text, &err) == OIR_OK &&
                  se_judge_clip_score(j, rgb, size, text, &cosine, &err) == OIR_OK,
              "%s", err.message);
        double ref = 0;
        for (int p = 0; p < j->P; p++) ref += (double)e[j->P + p] * text[p];
        CHECK(fabs(cosine - ref) < 1e-5, "CLIP score %.6f == unmasked embedding . text %.6f", cosine, ref);
        /* a mask made of whole patch cells reaches the grid the same way with
         * both conventions (top-left pixel or centre pixel of each cell) */
        unsigned char cells[16 * 16];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) cells[y * size + x] = (y / 4 + x / 4) % 3 == 0;
        const unsigned char *ci[1] = {rgb}, *cm[1] = {cells};
        float *e1 = malloc(sizeof(float) * j->P), *e2 = malloc(sizeof(float) * j->P);
        int ok1 = se_judge_classify(j, ci, cm, 1, size, NULL, NULL, NULL, e1, &err) == OIR_OK;
        j->patch_mode = SE_PATCH_CENTRE;
        int ok2 = se_judge_classify(j, ci, cm, 1, size, NULL, NULL, NULL, e2, &err) == OIR_OK;
        if (CHECK(ok1 && ok2, "%s", err.message)) th_close("cell-aligned mask: centre == nearest", e2, e1, j->P, 0, 0);
        j->patch_mode = SE_PATCH_ANY;
        ok2 = se_judge_classify(j, ci, cm, 1, size, NULL, NULL, NULL, e2, &err) == OIR_OK;
        if (CHECK(ok2, "%s", err.message)) th_close("cell-aligned mask: any == nearest", e2, e1, j->P, 0, 0);
        j->patch_mode = SE_PATCH_NEAREST;
        free(e1);
        free(e2);
        free(raw);
        image_free(&orig);
        image_free(&m);
    }
    free(e);
    free(text);
}

static void test_quality(const sd_model *m, se_judge *j, const se_scene_set *hs) {
    oir_error err = {0};
    sampler s;
    const int size = 16, T = 4;
    if (!CHECK(sampler_init(&s, m, size, T, 0, &err) == OIR_OK, "%s", err.message)) return;
    float *uncond = malloc(sizeof(float) * s.ctx_len * s.ctx_dim);
    unsigned char rgb[16 * 16 * 3], masks[3 * 16 * 16], gen[16 * 16 * 3];
    se_quality q;
    memset(&q, 0, sizeof q);
    CHECK(sampler_encode_prompt(&s, "", uncond, &err) == OIR_OK, "%s", err.message);
    se_px_judge px;
    if (!CHECK(se_px_init(&px, &hs->vocab, size, &err) == OIR_OK, "%s", err.message)) return;
    se_quality_params p = {SE_Q_CLIP | SE_Q_VAE | SE_Q_GEN | SE_Q_INV, 7.5f, uncond, 0, &px};
    int objects = 0;
    for (int i = 0; i < 2; i++) {
        const se_scene *sc = &hs->scenes[i];
        objects += sc->n_objects;
        CHECK(se_load_rgb(sc->image, size, rgb, &err) == OIR_OK, "%s", err.message);
        for (int o = 0; o < sc->n_objects; o++) se_load_mask(sc->objects[o].mask, size, masks + o * 256, &err);
        p.seed = (uint64_t)i;
        CHECK(se_quality_scene(&s, j, sc, rgb, masks, &p, &q, gen, &err) == OIR_OK, "%s", err.message);
    }
    CHECK(q.clip_objects == objects && q.gen_objects == objects && q.gen_images == 2, "counts: %ld, %ld objects",
          q.clip_objects, q.gen_objects);
    CHECK(q.clip_both <= q.clip_colour && q.clip_both <= q.clip_shape && q.gen_all_right <= q.gen_images,
          "both-right never exceeds colour-right or shape-right");
    CHECK(q.gen_px_all_right <= q.gen_images && q.gen_px_objects_right <= q.gen_objects,
          "(c) by the pixel judge: %ld of %ld images, %ld of %ld objects", q.gen_px_all_right, q.gen_images,
          q.gen_px_objects_right, q.gen_objects);
    CHECK(q.vae_psnr.n == 2 && q.inv_psnr.n == 2 && isfinite(se_stat_mean(&q.vae_psnr)) &&
              se_stat_mean(&q.vae_psnr) > 0 && isfinite(se_stat_mean(&q.inv_psnr)),
          "PSNRs %.2f, %.2f dB", se_stat_mean(&q.vae_psnr), se_stat_mean(&q.inv_psnr));
    /* same seed, same image: generation is deterministic */
    unsigned char gen2[16 * 16 * 3];
    se_quality q2;
    memset(&q2, 0, sizeof q2);
    p.what = SE_Q_GEN;
    CHECK(se_quality_scene(&s, j, &hs->scenes[1], rgb, masks, &p, &q2, gen2, &err) == OIR_OK &&
              memcmp(gen, gen2, sizeof gen) == 0 && q2.clip_objects == 0 && q2.vae_psnr.n == 0,
          "generation repeats; only the asked bars are measured");
    free(uncond);
    se_px_free(&px);
    sampler_free(&s);
}

static void test_edit(oir_context *ctx, const clip_model *clip, se_judge *j, const se_case_set *es) {
    oir_error err = {0};
    const int size = 16, T = 6;
    size_t hw = (size_t)size * size;
    /* a single-pair case and a multi-pair case */
    const se_case *cs[2] = {NULL, NULL};
    for (int i = 0; i < es->n; i++) {
        int k = es->cases[i].n_pairs > 1;
        int has_bg = 0;
        for (int p = 0; p < es->cases[i].n_pairs; p++) has_bg |= es->cases[i].pairs[p].is_background;
        if (!cs[k] && !has_bg) cs[k] = &es->cases[i];
    }
    if (!CHECK(cs[0] && cs[1], "a single- and a multi-pair case without background pairs")) return;
    unsigned char *buf = calloc(hw, 3 * 3 + 1 + SE_MAX_PAIRS + SE_MAX_OBJECTS);
    unsigned char *rgb = buf, *gt = rgb + hw * 3, *other = gt + hw * 3, *uni = other + hw * 3, *pm = uni + hw,
                  *om = pm + hw * SE_MAX_PAIRS;
    float *text = malloc(sizeof(float) * j->P);
    for (int k = 0; k < 2; k++) {
        const se_case *c = cs[k];
        int rc = se_load_rgb(c->image, size, rgb, &err) || se_load_rgb(c->ground_truth, size, gt, &err);
        memset(uni, 0, hw);
        for (int p = 0; p < c->n_pairs; p++) {
            rc = rc || se_load_mask(c->pairs[p].mask, size, pm + p * hw, &err);
            for (size_t i = 0; i < hw; i++) uni[i] |= pm[p * hw + i];
        }
        for (int o = 0; o < c->n_objects; o++) rc = rc || se_load_mask(c->objects[o].mask, size, om + o * hw, &err);
        rc = rc || se_judge_text(j, c->target, text, &err);
        if (!CHECK(rc == OIR_OK, "%s: %s", c->name, err.message)) continue;
        se_edit_eval ev;
        /* the ground truth itself: GT PSNR capped; the source: background untouched */
        CHECK(se_edit_evaluate(j, c, gt, rgb, gt, pm, om, uni, size, text, &ev, &err) == OIR_OK, "%s", err.message);
        CHECK(ev.gt_psnr == SE_PSNR_CAP && ev.edit_psnr == SE_PSNR_CAP, "%s: GT vs GT %.1f dB, edit region %.1f dB",
              c->name, ev.gt_psnr, ev.edit_psnr);
        CHECK(ev.obj_pairs + ev.bg_pairs == c->n_pairs && ev.obj_right <= ev.obj_pairs, "%s: pair counts",
              c->name);
        int unedited = 0;
        for (int o = 0; o < c->n_objects; o++) unedited += !c->objects[o].edited;
        CHECK(ev.kept_n == unedited, "%s: %d unedited objects judged, expected %d", c->name, ev.kept_n, unedited);
        CHECK(se_edit_evaluate(j, c, rgb, rgb, gt, pm, om, uni, size, text, &ev, &err) == OIR_OK, "%s",
              err.message);
        CHECK(ev.has_bg_region && ev.bg_mse == 0.0 && ev.bg_psnr == SE_PSNR_CAP, "%s: source vs source background",
              c->name);
        /* the search over the whole-target-prompt candidates of oir_search;
         * with one pair it is exactly oir_search's own choice */
        oir_params p = oir_default_params();
        p.steps = T;
        p.target_prompt = c->target;
        oir_pair pu = {c->pairs[0].from, k ? c->target : c->pairs[0].to, uni, c->target};
        oir_result *r = NULL;
        if (!CHECK(oir_search(ctx, rgb, size, size, c->source, &pu, &p, &r, &err) == OIR_OK, "%s", err.message)) continue;
        int chosen = 0;
        CHECK(se_search_mean_of_pairs(clip, c, rgb, r->candidates, T, pm, uni, size, &chosen, &err) == OIR_OK,
              "%s", err.message);
        CHECK(chosen >= 1 && chosen <= T, "%s: step %d in 1..%d", c->name, chosen, T);
        if (!k) CHECK(chosen == r->chosen_step[0], "single pair: mean-of-pairs search %d == oir_search's %d", chosen,
                      r->chosen_step[0]);
        oir_result_free(r);
    }
    free(text);
    free(buf);
}

/* The sign test: exact two-sided binomial p values. */
static void test_sign_test(void) {
    CHECK(se_sign_test_p(0, 0) == 1.0, "no untied case: p = 1");
    CHECK(fabs(se_sign_test_p(5, 0) - 2.0 / 32) < 1e-12 && fabs(se_sign_test_p(0, 5) - 2.0 / 32) < 1e-12,
          "5 wins, 0 losses: p = 2/32 (%g)", se_sign_test_p(5, 0));
    CHECK(fabs(se_sign_test_p(10, 0) - 2.0 / 1024) < 1e-12, "10-0: 2/1024");
    /* 6-4 of 10: 2 (1 + 10 + 45 + 120 + 210) / 1024 */
    CHECK(fabs(se_sign_test_p(6, 4) - 772.0 / 1024) < 1e-12, "6-4: %g", se_sign_test_p(6, 4));
    CHECK(se_sign_test_p(3, 3) == 1.0, "3-3: capped at 1");
    /* 60-40 of 100: p = 0.0569 (scipy.stats.binomtest(60, 100).pvalue = 0.056887933640980) */
    CHECK(fabs(se_sign_test_p(60, 40) - 0.056887933640980) < 1e-9, "60-40: %.12f", se_sign_test_p(60, 40));
    CHECK(se_sign_test_p(120, 80) < 0.05 && se_sign_test_p(30, 20) > 0.05, "more cases, same ratio: smaller p");
}

/* The pixel judge against the renderer's own ground truth: its outlines are
 * the committed object masks; every ground-truth edit reads right, and the
 * unedited source reads wrong for every pair that changes a colour or a
 * shape. */
static void test_pixel_judge(const se_case_set *es) {
    oir_error err = {0};
    se_px_judge px;
    const int size = 64;
    if (!CHECK(se_px_init(&px, &es->vocab, size, &err) == OIR_OK, "%s", err.message)) return;
    CHECK(se_position("left") == SE_POS_LEFT && se_position("right") == SE_POS_RIGHT && se_position("middle") < 0,
          "position names");
    size_t hw = (size_t)size * size;
    unsigned char *buf = malloc(hw * (3 * 2 + 1 + SE_MAX_PAIRS + SE_MAX_OBJECTS));
    unsigned char *rgb = buf, *gt = rgb + hw * 3, *uni = gt + hw * 3, *pm = uni + hw, *om = pm + hw * SE_MAX_PAIRS;
    long objects = 0, good_outline = 0, gt_pairs = 0, gt_right = 0, gt_kept_n = 0, gt_kept = 0, src_changed = 0,
         src_wrong = 0, src_kept = 0, src_kept_n = 0, shape_only = 0, shape_only_wrong = 0, gt_alone = 0;
    double iou_sum = 0, iou_min = 1;
    for (int i = 0; i < es->n; i++) {
        const se_case *c = &es->cases[i];
        if (!CHECK(se_edit_case_load(c, size, rgb, gt, pm, uni, om, &err) == OIR_OK, "%s", err.message)) break;
        /* the outline of each source object against its committed exact mask */
        for (int o = 0; o < c->n_objects; o++) {
            const unsigned char *t = se_px_template(&px, c->objects[o].position, c->objects[o].shape);
            long in = 0, un = 0;
            for (size_t k = 0; k < hw; k++) in += t[k] && om[o * hw + k], un += t[k] || om[o * hw + k];
            double iou = un ? (double)in / un : 0;
            iou_sum += iou, objects++;
            iou_min = iou < iou_min ? iou : iou_min;
            good_outline += iou >= 0.9;
        }
        se_edit_eval ev;
        memset(&ev, 0, sizeof ev);
        if (!CHECK(se_edit_evaluate_pixels(&px, c, gt, pm, &ev, &err) == OIR_OK, "%s", err.message)) break;
        gt_pairs += c->n_pairs;
        gt_right += ev.px_obj_right + ev.px_bg_right;
        for (int o = 0; o < c->n_objects; o++) gt_kept_n += !c->objects[o].edited;
        gt_kept += ev.px_kept_right;
        CHECK(ev.px_judged, "judged");
        for (int o = 0; o < c->n_objects; o++) { /* every object of the source, on its own background */
            se_px_object r;
            se_px_read_object(&px, rgb, c->objects[o].position, c->objects[o].shape, c->source_background, &r);
            src_kept += r.colour == c->objects[o].colour && r.shape == c->objects[o].shape;
            src_kept_n++;
        }
        for (int p = 0; p < c->n_pairs; p++) {
            src_changed++;
            int right = se_pair_right_pixels(&px, c, p, rgb, pm);
            src_wrong += !right;
            const se_pair *pr = &c->pairs[p];
            if (!pr->is_background && c->objects[pr->object].colour == pr->colour) { /* the shape alone changes */
                shape_only++;
                shape_only_wrong += !right;
            }
            gt_alone += se_pair_right_pixels(&px, c, p, gt, pm);
        }
    }
    printf("  pixel judge: outlines vs committed masks IoU mean %.3f min %.3f (%ld objects); ground truth right "
           "%ld/%ld pairs, kept %ld/%ld; source wrong %ld/%ld pairs (shape-only %ld/%ld), unedited objects of the "
           "source read as themselves %ld/%ld\n",
           objects ? iou_sum / objects : 0, iou_min, objects, gt_right, gt_pairs, gt_kept, gt_kept_n, src_wrong,
           src_changed, shape_only_wrong, shape_only, src_kept, src_kept_n);
    CHECK(objects >= 400 && good_outline == objects, "every outline matches its object's mask (IoU >= 0.9: %ld/%ld)",
          good_outline, objects);
    CHECK(gt_pairs >= 300 && gt_right * 100 >= gt_pairs * 99, "ground truth right on >= 99%% of pairs (%ld/%ld)",
          gt_right, gt_pairs);
    CHECK(gt_alone == gt_right, "pair by pair (se_pair_right_pixels) as in the case's verdicts (%ld/%ld)", gt_alone,
          gt_right);
    CHECK(gt_kept == gt_kept_n, "ground truth keeps every unedited object (%ld/%ld)", gt_kept, gt_kept_n);
    CHECK(src_wrong * 100 >= src_changed * 98, "the unedited source wrong on >= 98%% of pairs (%ld/%ld)", src_wrong,
          src_changed);
    CHECK(shape_only > 20 && shape_only_wrong * 100 >= shape_only * 95,
          "shape-only pairs: the source's shape tells them apart (%ld/%ld)", shape_only_wrong, shape_only);
    CHECK(src_kept == src_kept_n, "every source object reads as itself (%ld/%ld)", src_kept, src_kept_n);
    /* a grey image reads as nothing; a bad vocabulary word is refused */
    memset(rgb, 128, hw * 3);
    se_px_object ob;
    se_px_read_object(&px, rgb, SE_POS_CENTER, 0, se_vocab_background(&es->vocab, "gray"), &ob);
    CHECK(ob.colour == -1 && ob.shape == -1, "a plain gray image: no object (colour %d, shape %d)", ob.colour, ob.shape);
    se_vocab v = es->vocab;
    snprintf(v.colours[0], sizeof v.colours[0], "teal");
    se_px_judge bad;
    CHECK(se_px_init(&bad, &v, size, &err) == OIR_E_FORMAT && strstr(err.message, "teal"), "unknown colour: %s",
          err.message);
    se_px_free(&bad);
    /* at the test fixture's 16 px the outlines still exist and nothing crashes */
    se_px_judge small;
    if (CHECK(se_px_init(&small, &es->vocab, 16, &err) == OIR_OK, "%s", err.message)) {
        long area = 0;
        for (int k = 0; k < 256; k++) area += se_px_template(&small, SE_POS_CENTER, 1)[k];
        CHECK(area >= 9 && area <= 25, "a 16 px square at 16 px: %ld pixels", area);
        se_px_free(&small);
    }
    free(buf);
    se_px_free(&px);
}

int main(void) {
    test_metrics();
    test_sign_test();
    se_scene_set hs = {0};
    se_case_set es = {0};
    test_manifests(&hs, &es);
    if (hs.n < 2 || es.n < 2) return th_summary();
    test_pixel_judge(&es);
    oir_error err = {0};
    char mp[512], cp[512];
    snprintf(mp, sizeof mp, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(cp, sizeof cp, "%s", th_fixture_path("sd/clip-tiny"));
    clip_model *clip = NULL;
    sd_model *m = NULL;
    oir_context *ctx = NULL;
    se_judge j;
    memset(&j, 0, sizeof j);
    oir_context_params op = oir_context_default_params();
    op.model_path = mp;
    op.clip_path = cp;
    if (CHECK(clip_model_load(&clip, cp, &err) == OIR_OK, "%s", err.message) &&
        CHECK(sd_model_load(&m, mp, NULL, &err) == OIR_OK, "%s", err.message) &&
        CHECK(oir_context_load(&ctx, &op, &err) == OIR_OK, "%s", err.message)) {
        test_judge(clip, &hs, &j);
        if (j.clip) {
            test_quality(m, &j, &hs);
            test_edit(ctx, clip, &j, &es);
        }
    }
    se_judge_free(&j);
    oir_context_free(ctx);
    sd_model_free(m);
    clip_model_free(clip);
    se_scene_set_free(&hs);
    se_case_set_free(&es);
    return th_summary();
}
