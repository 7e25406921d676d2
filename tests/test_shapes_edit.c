/* OIR on the shipped tiny model (models/tiny-shapes + models/tiny-clip) and
 * the shipped demo scene (examples/shapes): what the search metric picks is
 * an edit; OIR edits both objects of the two-object scene and keeps the
 * background. Thresholds were measured on these models (T = 25) with margin.
 * The model's limits are in tools/train/README.md: it recolours objects
 * reliably but draws shapes loosely (41.8% of generated objects right), so
 * the new shapes are printed, not asserted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/image.h"
#include "models/clip_vision.h"
#include "models/loader.h"
#include "oir.h"
#include "shapes_eval.h"

#define SRC "a red circle on the left and a blue triangle on the right on a gray background"

static int load_rgb(const char *path, int size, unsigned char *rgb) {
    image img = {0};
    oir_error err = {0};
    if (!CHECK(image_load_square(&img, path, size, &err) == OIR_OK, "%s", err.message)) return 0;
    for (size_t i = 0; i < (size_t)size * size * 3; i++) rgb[i] = (unsigned char)(img.data[i] * 255 + 0.5f);
    image_free(&img);
    return 1;
}

static int load_mask(const char *path, int size, unsigned char *m) {
    image img = {0};
    oir_error err = {0};
    if (!CHECK(mask_load_square(&img, path, size, &err) == OIR_OK, "%s", err.message)) return 0;
    for (size_t i = 0; i < (size_t)size * size; i++) m[i] = img.data[i] > 0.5f;
    image_free(&img);
    return 1;
}

/* The shapes world's CLIP judge (bench/shapes/shapes_eval.h) on img through
 * n masks: colour words on the image, shape words on its greyscale, every
 * patch a mask touches. */
static int judge(se_judge *j, const unsigned char *img, const unsigned char *const *masks, int n, int size,
                 int *colour, int *shape) {
    const unsigned char *imgs[4] = {img, img, img, img};
    oir_error err = {0};
    return CHECK(se_judge_classify(j, imgs, masks, n, size, colour, shape, NULL, NULL, &err) == OIR_OK, "judge: %s",
                 err.message);
}

/* PSNR of a vs b over the pixels where keep != 0. */
static double psnr_where(const unsigned char *a, const unsigned char *b, const unsigned char *keep, int size) {
    double se = 0;
    long n = 0;
    for (int i = 0; i < size * size; i++)
        if (keep[i])
            for (int c = 0; c < 3; c++, n++) se += (double)(a[i * 3 + c] - b[i * 3 + c]) * (a[i * 3 + c] - b[i * 3 + c]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 * n / se);
}

int main(void) {
    oir_context *ctx = NULL;
    oir_error err = {0};
    oir_context_params cp = oir_context_default_params(); /* models/tiny-shapes, models/tiny-clip */
    if (!CHECK(oir_context_load(&ctx, &cp, &err) == OIR_OK, "shipped models: %s", err.message)) return th_summary();
    /* the judge: the shipped CLIP and the world's words (from the held-out scenes' manifest) */
    se_scene_set scenes = {0};
    se_judge j;
    memset(&j, 0, sizeof j);
    clip_model *clip = NULL;
    const se_vocab *vocab_p = NULL;
    if (CHECK(se_scene_set_load(&scenes, "bench/scenes/heldout", &err) == OIR_OK, "%s", err.message) &&
        CHECK(clip_model_load(&clip, "models/tiny-clip", &err) == OIR_OK, "%s", err.message) &&
        CHECK(se_judge_init(&j, clip, &scenes.vocab, &err) == OIR_OK, "%s", err.message)) {
        j.patch_mode = SE_PATCH_ANY;
        j.read_words = 1;
        vocab_p = &scenes.vocab;
    }
    const se_vocab vocab = vocab_p ? *vocab_p : (se_vocab){0};
    int size = oir_context_image_size(ctx);
    CHECK(size == 64, "tiny-shapes native size %d", size);
    unsigned char *rgb = malloc((size_t)size * size * 3), *m0 = malloc((size_t)size * size),
                  *m1 = malloc((size_t)size * size), *keep = malloc((size_t)size * size);
    if (!load_rgb("examples/shapes/demo.png", size, rgb) || !load_mask("examples/shapes/demo_mask0.png", size, m0) ||
        !load_mask("examples/shapes/demo_mask1.png", size, m1))
        goto done;
    oir_params p = oir_default_params();
    p.steps = 25;
    /* search: red circle -> green square. The chosen candidate is green where
     * the circle was (measured: mean G - R = +130) and keeps the rest (32.3 dB). */
    oir_pair pair = {"red circle", "green square", m0, NULL};
    oir_result *r = NULL;
    if (CHECK(oir_search(ctx, rgb, size, size, SRC, &pair, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        double g_minus_r = 0, g_minus_r_before = 0;
        long n = 0;
        for (int i = 0; i < size * size; i++) {
            keep[i] = !m0[i];
            if (!m0[i]) continue;
            g_minus_r += (double)r->edited[i * 3 + 1] - r->edited[i * 3];
            g_minus_r_before += (double)rgb[i * 3 + 1] - rgb[i * 3];
            n++;
        }
        g_minus_r /= n;
        g_minus_r_before /= n;
        double bg = psnr_where(r->edited, rgb, keep, size);
        printf("  search: chosen step %d of %d, mean G-R in the mask %.1f (before %.1f), background %.1f dB\n",
               r->chosen_step[0], p.steps, g_minus_r, g_minus_r_before, bg);
        CHECK(g_minus_r > 20 && g_minus_r_before < -20, "the chosen candidate turned the object green");
        CHECK(bg >= 28, "the chosen candidate keeps the background: %.1f dB >= 28", bg);
        CHECK(r->chosen_step[0] > 1 && r->chosen_step[0] < p.steps, "chosen step strictly inside 1..T");
        oir_result_free(r);
    }
    /* OIR, two pairs: the background outside both masks is kept (measured 26.6 dB at T = 25, R = J = 5;
     * the pairs chose steps 5 and 8, so R was lowered to 4). */
    oir_pair pairs[2] = {{"red circle", "green square", m0, NULL}, {"blue triangle", "yellow star", m1, NULL}};
    p.reassembly_step = 5;
    p.reinversion_steps = 5;
    if (CHECK(oir_edit(ctx, rgb, size, size, SRC, pairs, 2, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        for (int i = 0; i < size * size; i++) keep[i] = !m0[i] && !m1[i];
        double bg = psnr_where(r->edited, rgb, keep, size);
        printf("  OIR: chosen steps %d, %d; reassembly %d; background %.1f dB\n", r->chosen_step[0],
               r->chosen_step[1], r->reassembly_step, bg);
        CHECK(bg >= 25, "OIR keeps the background: %.1f dB >= 25", bg);
        /* both objects edited: the judge reads green and yellow where it read a red circle and a
         * blue triangle before (measured: green circle, yellow diamond) */
        const unsigned char *ms[2] = {m0, m1};
        int col0[2], shp0[2], col[2], shp[2];
        if (j.clip && judge(&j, rgb, ms, 2, size, col0, shp0) && judge(&j, r->edited, ms, 2, size, col, shp)) {
            const char *want_c[2] = {"green", "yellow"}, *want_s[2] = {"square", "star"};
            const char *was_c[2] = {"red", "blue"}, *was_s[2] = {"circle", "triangle"};
            for (int k = 0; k < 2; k++) {
                printf("  OIR pair %d: judge reads %s %s -> %s %s\n", k, vocab.colours[col0[k]], vocab.shapes[shp0[k]],
                       vocab.colours[col[k]], vocab.shapes[shp[k]]);
                CHECK(col0[k] == se_vocab_colour(&vocab, was_c[k]) && shp0[k] == se_vocab_shape(&vocab, was_s[k]),
                      "judge reads the source object %d right", k);
                CHECK(col[k] == se_vocab_colour(&vocab, want_c[k]), "OIR turned object %d %s", k, want_c[k]);
                if (shp[k] != se_vocab_shape(&vocab, want_s[k]))
                    printf("  (object %d: a %s was asked for; the tiny model draws shapes loosely)\n", k, want_s[k]);
            }
        }
        oir_result_free(r);
    }
done:
    se_judge_free(&j);
    clip_model_free(clip);
    se_scene_set_free(&scenes);
    free(rgb);
    free(m0);
    free(m1);
    free(keep);
    oir_context_free(ctx);
    return th_summary();
}
