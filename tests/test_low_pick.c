/* oir_params.low_pick (the CLI's --low-pick) on the tiny random pipeline
 * (tests/fixtures/sd): a pair whose step k is at or below the reassembly step
 * R either lowers R for the image (OIR_LOW_PICK_LOWER, the authors' code) or
 * keeps R and re-inverts the pair's chosen candidate up to it
 * (OIR_LOW_PICK_REINVERT):
 *  - lower: R becomes min(k) - 1 and the edit is, bit for bit, the edit with
 *    R = min(k) - 1 requested (nothing else changes);
 *  - reinvert: R is kept, the low pair is marked, its extra UNet rows are R
 *    (the search's candidate re-inverted) or 2k + R (a forced candidate the
 *    run did not render: denoised first), counted in the result and planned
 *    exactly; the cached and the recomputed candidate give the same edit;
 *  - when every k > R the two modes are the same computation (the paper's);
 *  - overlapping masks still run; a bad mode is OIR_E_ARG (run and plan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oir.h"

#define SIZE 16
#define T_STEPS 8

static unsigned char rgb[SIZE * SIZE * 3], left[SIZE * SIZE], right[SIZE * SIZE], wide[SIZE * SIZE];
static const char *src = "a photo of a red circle and a green square";

static void make_inputs(void) {
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++) {
            int i = y * SIZE + x;
            int in_left = x >= 2 && x < 7 && y >= 5 && y < 11, in_right = x >= 9 && x < 14 && y >= 5 && y < 11;
            rgb[i * 3 + 0] = in_left ? 220 : 128;
            rgb[i * 3 + 1] = in_right ? 200 : 128;
            rgb[i * 3 + 2] = 128;
            left[i] = (unsigned char)in_left;
            right[i] = (unsigned char)in_right;
            wide[i] = (unsigned char)(x >= 4 && x < 12 && y >= 4 && y < 12); /* overlaps both */
        }
}

static oir_params params(const int *forced, int R, int J, int mode) {
    oir_params p = oir_default_params();
    p.steps = T_STEPS;
    p.reassembly_step = R;
    p.reinversion_steps = J;
    p.forced_steps = forced;
    p.low_pick = mode;
    p.parallel = 0; /* serial: a search's candidate is computed exactly as the reassembly would */
    return p;
}

static int has_warning(const oir_result *r, const char *needle) {
    for (int i = 0; i < r->n_warnings; i++)
        if (strstr(r->warnings[i], needle)) return 1;
    return 0;
}

static int max_diff(const unsigned char *a, const unsigned char *b, size_t n) {
    int m = 0;
    for (size_t j = 0; j < n; j++) {
        int d = abs((int)a[j] - (int)b[j]);
        if (d > m) m = d;
    }
    return m;
}

/* The plan of these parameters with every pair forced is exact: it must be
 * the run's counters. */
static void check_plan(oir_context *ctx, const oir_params *p, const oir_result *r, const char *what) {
    oir_plan pl;
    oir_error err = {0};
    if (!CHECK(oir_plan_run(ctx, SIZE, SIZE, r->n_pairs, p, NULL, &pl, &err) == OIR_OK, "%s: plan: %s", what,
               err.message))
        return;
    CHECK(pl.exact && pl.unet_rows_total == r->unet_rows_total && pl.decodes == r->decodes,
          "%s: the exact plan (%ld rows, %d decodes) is the run (%ld, %d)", what, pl.unet_rows_total, pl.decodes,
          r->unet_rows_total, r->decodes);
}

static void test_modes(oir_context *ctx) {
    oir_pair pairs[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", right, NULL}};
    oir_error err = {0};
    size_t img = (size_t)SIZE * SIZE * 3;
    const int R = 4, J = 2;
    int forced[2] = {2, 6}; /* pair 1 at or below R, pair 2 above */
    oir_result *low = NULL, *same = NULL, *re = NULL, *re0 = NULL;

    /* lower: today's behaviour, R = min(k) - 1 */
    oir_params p = params(forced, R, J, OIR_LOW_PICK_LOWER);
    if (!CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &low, &err) == OIR_OK, "lower: %s", err.message))
        return;
    CHECK(low->reassembly_step == 1 && has_warning(low, "lowered from 4 to 1"),
          "lower: R lowered to 1 (got %d), with a warning", low->reassembly_step);
    CHECK(low->low_pick == OIR_LOW_PICK_LOWER && !low->reinverted[0] && !low->reinverted[1] &&
              low->low_pick_unet_rows == 0,
          "lower: nothing re-inverted");
    check_plan(ctx, &p, low, "lower");
    oir_params q = params(forced, 1, J, OIR_LOW_PICK_LOWER); /* what lowering means: R = 1 asked for */
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &same, &err) == OIR_OK, "R = 1: %s", err.message)) {
        CHECK(!memcmp(low->edited, same->edited, img) && low->unet_rows_total == same->unet_rows_total,
              "lower: bit for bit the edit with R = 1 requested (%ld vs %ld rows)", low->unet_rows_total,
              same->unet_rows_total);
        CHECK(same->n_warnings == 0, "R = 1 requested: no warning");
    }

    /* reinvert: R kept; pair 1's candidate (rendered for its sheet) re-inverted up to R */
    p = params(forced, R, J, OIR_LOW_PICK_REINVERT);
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &re, &err) == OIR_OK, "reinvert: %s", err.message)) {
        CHECK(re->reassembly_step == R && re->reinversion_steps == J, "reinvert: R = %d kept (got %d, J %d)", R,
              re->reassembly_step, re->reinversion_steps);
        CHECK(re->low_pick == OIR_LOW_PICK_REINVERT && re->reinverted[0] == 1 && re->reinverted[1] == 0,
              "reinvert: pair 1 (step 2) re-inverted, pair 2 (step 6) not");
        CHECK(has_warning(re, "kept") && has_warning(re, "1 (step 2)"), "reinvert: a warning names the pair: %s",
              re->n_warnings ? re->warnings[0] : "(none)");
        CHECK(re->low_pick_unet_rows == R, "reinvert: the cached candidate costs R = %d inversion rows (got %ld)", R,
              re->low_pick_unet_rows);
        /* inversion T, the two forced candidates (2k each), pair 2 from 6 to R,
         * the re-inversion J, the target from R + J to 0 */
        long want = T_STEPS + 2L * (2 + 6) + R + 2L * (6 - R) + J + 2L * (R + J);
        CHECK(re->unet_rows_total == want, "reinvert: %ld UNet rows in all, expected %ld", re->unet_rows_total, want);
        CHECK(max_diff(re->edited, low->edited, img) > 0, "reinvert and lower give different edits");
        check_plan(ctx, &p, re, "reinvert");
    }
    /* a forced candidate not rendered (no sheets): denoised, then re-inverted: the same edit */
    p.keep_candidates = 0;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &re0, &err) == OIR_OK, "reinvert, no sheets: %s",
              err.message)) {
        CHECK(re0->low_pick_unet_rows == 2L * 2 + R, "no sheets: pair 1 costs 2k + R = %d rows (got %ld)", 2 * 2 + R,
              re0->low_pick_unet_rows);
        if (re) {
            CHECK(!memcmp(re0->edited, re->edited, img), "no sheets: the same edit as from the rendered candidate");
            /* no forced candidate rendered for a sheet (2 x (2 + 6) rows), pair 1's denoised here (2 x 2) */
            CHECK(re->unet_rows_total - re0->unet_rows_total == 2L * (2 + 6) - 2L * 2,
                  "no sheets: %ld rows in all against %ld with the sheets", re0->unet_rows_total, re->unet_rows_total);
        }
        check_plan(ctx, &p, re0, "reinvert, no sheets");
    }
    oir_result_free(same);
    same = NULL;

    /* every k > R: both modes are the paper's computation */
    int high[2] = {5, 7};
    oir_result *a = NULL, *b = NULL;
    p = params(high, R, J, OIR_LOW_PICK_LOWER);
    q = params(high, R, J, OIR_LOW_PICK_REINVERT);
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &a, &err) == OIR_OK, "%s", err.message) &&
        CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &b, &err) == OIR_OK, "%s", err.message))
        CHECK(!memcmp(a->edited, b->edited, img) && a->unet_rows_total == b->unet_rows_total &&
                  b->low_pick_unet_rows == 0 && b->n_warnings == 0 && b->reassembly_step == R,
              "every k > R: reinvert is the paper's path, bit for bit");
    oir_result_free(a);
    oir_result_free(b);

    /* searched pairs: their choices are cached candidates; the counters add up */
    p = params(NULL, T_STEPS - 1, 1, OIR_LOW_PICK_REINVERT); /* R = 7: most choices are at or below it */
    p.parallel = 1;
    oir_result *s = NULL;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &s, &err) == OIR_OK, "searched: %s", err.message)) {
        long low_rows = 0, rows = T_STEPS + s->unet_rows + 1 + 2L * (T_STEPS - 1 + 1);
        for (int i = 0; i < 2; i++) {
            int k = s->chosen_step[i], is_low = k <= T_STEPS - 1;
            CHECK(s->reinverted[i] == is_low, "searched pair %d (step %d): re-inverted %d", i + 1, k, s->reinverted[i]);
            low_rows += is_low ? T_STEPS - 1 : 0;
            rows += is_low ? T_STEPS - 1 : 2L * (k - (T_STEPS - 1));
        }
        CHECK(s->reassembly_step == T_STEPS - 1 && s->low_pick_unet_rows == low_rows && s->unet_rows_total == rows,
              "searched: R kept, %ld re-inversion rows (expected %ld), %ld in all (expected %ld)",
              s->low_pick_unet_rows, low_rows, s->unet_rows_total, rows);
        oir_plan pl;
        if (CHECK(oir_plan_run(ctx, SIZE, SIZE, 2, &p, NULL, &pl, &err) == OIR_OK, "%s", err.message))
            CHECK(pl.unet_rows_min <= s->unet_rows_total && s->unet_rows_total <= pl.unet_rows_max,
                  "searched: %ld rows within the plan's [%ld, %ld]", s->unet_rows_total, pl.unet_rows_min,
                  pl.unet_rows_max);
    }
    oir_result_free(s);
    oir_result_free(low);
    oir_result_free(re);
    oir_result_free(re0);
}

/* Overlapping masks with a pair at or below R: each cell to the first pair, R kept. */
static void test_overlap(oir_context *ctx) {
    oir_pair pairs[2] = {{"red circle", "blue circle", wide, NULL}, {"green square", "green star", right, NULL}};
    oir_error err = {0};
    int forced[2] = {1, 3};
    oir_params p = params(forced, 3, 2, OIR_LOW_PICK_REINVERT);
    oir_result *r = NULL;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_OK, "overlap: %s", err.message)) {
        CHECK(r->reassembly_step == 3 && r->reinverted[0] && r->reinverted[1], "overlap: R = 3 kept, both re-inverted");
        CHECK(has_warning(r, "overlap"), "overlap reported");
        check_plan(ctx, &p, r, "overlap");
    }
    oir_result_free(r);
}

static void test_bad(oir_context *ctx) {
    oir_pair pairs[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", right, NULL}};
    oir_error err = {0};
    oir_result *r = NULL;
    oir_plan pl;
    int modes[] = {-1, 2, 99};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        oir_params p = params(NULL, 2, 2, modes[i]);
        err.message[0] = 0;
        CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_E_ARG && !r &&
                  strstr(err.message, "low_pick"),
              "low_pick %d refused: %s", modes[i], err.message);
        CHECK(oir_plan_run(ctx, SIZE, SIZE, 2, &p, NULL, &pl, &err) == OIR_E_ARG, "plan: low_pick %d refused", modes[i]);
    }
    CHECK(oir_low_pick_parse("lower") == OIR_LOW_PICK_LOWER && oir_low_pick_parse("reinvert") == OIR_LOW_PICK_REINVERT &&
              oir_low_pick_parse("Lower") < 0 && oir_low_pick_parse("") < 0 && oir_low_pick_parse(NULL) < 0,
          "mode names");
    CHECK(!strcmp(oir_low_pick_name(OIR_LOW_PICK_REINVERT), "reinvert") && !strcmp(oir_low_pick_name(5), "?"),
          "mode names back");
}

int main(void) {
    make_inputs();
    oir_context *ctx = NULL;
    oir_error err = {0};
    char mp[512], cp[512];
    snprintf(mp, sizeof mp, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(cp, sizeof cp, "%s", th_fixture_path("sd/clip-tiny"));
    oir_context_params p = oir_context_default_params();
    p.model_path = mp;
    p.clip_path = cp;
    p.threads = 1;
    if (!CHECK(oir_context_load(&ctx, &p, &err) == OIR_OK, "context: %s", err.message)) return th_summary();
    test_modes(ctx);
    test_overlap(ctx);
    test_bad(ctx);
    oir_context_free(ctx);
    return th_summary();
}
