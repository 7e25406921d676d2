/* oir_params.forced_steps (the CLI's --pick) on the tiny random pipeline
 * (tests/fixtures/sd): a forced pair is not searched, only its candidate is
 * denoised (k sample-steps x 2 CFG rows on the T-step schedule), the
 * engine's counters show the saving, and forcing the steps a search chose
 * gives the searched result exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oir.h"

#define SIZE 16
#define T_STEPS 8

static unsigned char rgb[SIZE * SIZE * 3], left[SIZE * SIZE], right[SIZE * SIZE];
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
        }
}

static oir_params params(const int *forced, const char *search) {
    oir_params p = oir_default_params();
    p.steps = T_STEPS;
    p.reassembly_step = 2;
    p.reinversion_steps = 2;
    p.forced_steps = forced;
    p.search = search;
    return p;
}

/* Every UNet row of an edit, counted from the method: the inversion (T
 * steps, one row each: no guidance), the search's rows, each pair denoised
 * from its step to R and the target from R + J to 0 (2 CFG rows a step), the
 * re-inversion (J steps, one row). */
static long expected_rows_total(const oir_result *r, long search_rows) {
    long rows = r->steps + search_rows;
    int R = r->reassembly_step, J = r->reinversion_steps;
    for (int i = 0; i < r->n_pairs; i++) rows += 2L * (r->chosen_step[i] - R);
    return rows + J + 2L * (R + J);
}

static int count_evaluated(const oir_result *r, int pair, unsigned char how) {
    int n = 0;
    for (int k = 0; k < r->steps; k++) n += r->evaluated[pair * r->steps + k] == how;
    return n;
}

static int max_diff(const unsigned char *a, const unsigned char *b, size_t n) {
    int m = 0;
    for (size_t j = 0; j < n; j++) {
        int d = abs((int)a[j] - (int)b[j]);
        if (d > m) m = d;
    }
    return m;
}

static void test_edit(oir_context *ctx) {
    oir_pair pairs[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", right, NULL}};
    oir_error err = {0};
    oir_result *ex = NULL, *r = NULL;
    oir_params p = params(NULL, NULL);
    if (!CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &ex, &err) == OIR_OK, "searched edit: %s", err.message))
        return;
    size_t img = (size_t)SIZE * SIZE * 3;
    CHECK(ex->unet_rows_total == expected_rows_total(ex, ex->unet_rows), "searched run: %ld rows in all, expected %ld",
          ex->unet_rows_total, expected_rows_total(ex, ex->unet_rows));

    /* every pair forced to the searched steps: no search, the same edit */
    int both[2] = {ex->chosen_step[0], ex->chosen_step[1]};
    p = params(both, NULL);
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_OK, "forced edit: %s", err.message)) {
        CHECK(r->chosen_step[0] == both[0] && r->chosen_step[1] == both[1], "forced steps %d, %d taken (%d, %d)",
              both[0], both[1], r->chosen_step[0], r->chosen_step[1]);
        long want = 2L * (both[0] + both[1]); /* candidate k: k sample-steps x 2 CFG rows */
        CHECK(r->unet_rows == want, "all forced: search rows %ld = the forced candidates' 2 x (%d + %d) = %ld",
              r->unet_rows, both[0], both[1], want);
        CHECK(r->unet_rows_total == expected_rows_total(r, want), "all forced: %ld rows in all, expected %ld",
              r->unet_rows_total, expected_rows_total(r, want));
        CHECK(ex->unet_rows_total - r->unet_rows_total == ex->unet_rows - want,
              "the saving is exactly the search's rows less the forced candidates'");
        CHECK(r->decodes == 2 + 1, "all forced: one decode per forced candidate + the result (%d)", r->decodes);
        CHECK(!memcmp(r->edited, ex->edited, img), "forcing the searched steps gives the searched edit exactly");
        CHECK(r->reassembly_step == ex->reassembly_step && r->reinversion_steps == ex->reinversion_steps,
              "same reassembly");
        for (int i = 0; i < 2; i++) {
            int k = both[i];
            CHECK(count_evaluated(r, i, OIR_EVALUATED_FORCED) == 1 && count_evaluated(r, i, 0) == T_STEPS - 1 &&
                      r->evaluated[i * T_STEPS + k - 1] == OIR_EVALUATED_FORCED,
                  "pair %d: only step %d marked forced, the rest skipped", i + 1, k);
            CHECK(isnan(r->edit_score[i * T_STEPS + k - 1]) && isnan(r->total[i * T_STEPS + k - 1]),
                  "pair %d: a forced candidate is not scored", i + 1);
            /* the sheet's tile of the forced step: its candidate as rendered on T
             * (alone; the search batched it: equal within rounding) */
            int d = max_diff(r->candidates + ((size_t)i * T_STEPS + k - 1) * img,
                             ex->candidates + ((size_t)i * T_STEPS + k - 1) * img, img);
            CHECK(d <= 2, "pair %d: the forced candidate's tile is the searched one (max %d levels)", i + 1, d);
        }
        CHECK(!strcmp(r->search, "none"), "no search ran: search \"%s\"", r->search);
        oir_result_free(r);
        r = NULL;
    }
    /* nothing kept for a sheet: a multi-pair edit needs no candidate at all */
    p = params(both, NULL);
    p.keep_candidates = 0;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        CHECK(r->unet_rows == 0 && r->decodes == 1, "no sheet: no candidate rendered (%ld rows, %d decodes)",
              r->unet_rows, r->decodes);
        CHECK(!memcmp(r->edited, ex->edited, img), "no sheet: the same edit");
        oir_result_free(r);
        r = NULL;
    }
    /* one pair forced, the other searched: the forced pair costs its candidate only */
    int first[2] = {ex->chosen_step[0] == 1 ? 2 : 1, 0};
    static const char *strategies[] = {"exhaustive", "coarse:3", "adaptive:4", "short:4", "short-refine:4:1"};
    for (size_t s = 0; s < sizeof strategies / sizeof strategies[0]; s++) {
        p = params(first, strategies[s]);
        oir_params q = params(NULL, strategies[s]);
        oir_result *full = NULL;
        if (!CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_OK, "%s, pair 1 forced: %s",
                   strategies[s], err.message) ||
            !CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &full, &err) == OIR_OK, "%s: %s", strategies[s],
                   err.message)) {
            oir_result_free(r);
            r = NULL;
            continue;
        }
        CHECK(r->chosen_step[0] == first[0], "%s: pair 1 forced to %d (%d)", strategies[s], first[0], r->chosen_step[0]);
        CHECK(count_evaluated(r, 0, OIR_EVALUATED_FORCED) == 1 && count_evaluated(r, 0, 0) == T_STEPS - 1,
              "%s: pair 1 not searched", strategies[s]);
        CHECK(count_evaluated(r, 1, OIR_EVALUATED_FORCED) == 0 && count_evaluated(r, 1, 0) < T_STEPS,
              "%s: pair 2 searched", strategies[s]);
        CHECK(r->chosen_step[1] == full->chosen_step[1], "%s: pair 2 chooses as in the full search (%d vs %d)",
              strategies[s], r->chosen_step[1], full->chosen_step[1]);
        /* the full search's rows, split per pair: the same work for pair 2, the
         * forced candidate for pair 1 (short: its inversion is shared) */
        long pair1_full = 0;
        for (int k = 1; k <= T_STEPS; k++) pair1_full += full->evaluated[k - 1] == 1 ? 2L * k : 0;
        if (!strncmp(strategies[s], "short", 5)) pair1_full += 2L * 4 * 5 / 2; /* TS(TS+1)/2 on the short schedule */
        if (!strcmp(strategies[s], "short:4")) pair1_full += 2L * full->chosen_step[0]; /* its render */
        long want = full->unet_rows - pair1_full + 2L * first[0];
        CHECK(r->unet_rows == want, "%s, pair 1 forced to %d: %ld search rows, expected %ld", strategies[s], first[0],
              r->unet_rows, want);
        oir_result_free(full);
        oir_result_free(r);
        r = NULL;
    }
    /* bad values: clear errors, no result */
    int bad[][2] = {{T_STEPS + 1, 0}, {-1, 0}, {0, 1000}};
    for (int b = 0; b < 3; b++) {
        p = params(bad[b], NULL);
        err.message[0] = 0;
        int rc = oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err);
        CHECK(rc == OIR_E_ARG && r == NULL && strstr(err.message, "forced step"), "forced {%d, %d} refused: %s",
              bad[b][0], bad[b][1], err.message);
    }
    oir_result_free(ex);
}

/* One pair (oir_search): the forced candidate, rendered alone, is the
 * result. A serial search renders each candidate alone too: the same bytes;
 * a parallel search batches them, and batched BLAS products round
 * differently (a level in a few pixels). */
static void test_search(oir_context *ctx) {
    oir_pair pair = {"red circle", "blue circle", left, NULL};
    oir_error err = {0};
    oir_result *ser = NULL, *par = NULL, *r = NULL;
    oir_params p = params(NULL, NULL);
    if (!CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &pair, &p, &par, &err) == OIR_OK, "search: %s", err.message)) return;
    p.parallel = 0;
    if (!CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &pair, &p, &ser, &err) == OIR_OK, "serial search: %s", err.message)) {
        oir_result_free(par);
        return;
    }
    size_t img = (size_t)SIZE * SIZE * 3;
    for (int parallel = 0; parallel < 2; parallel++)
        for (int k = 1; k <= T_STEPS; k++) {
            int forced[1] = {k};
            p = params(forced, NULL);
            p.parallel = parallel;
            if (!CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &pair, &p, &r, &err) == OIR_OK, "forced %d: %s", k,
                       err.message))
                continue;
            CHECK(r->chosen_step[0] == k && r->unet_rows == 2L * k && r->decodes == 1,
                  "search forced to %d: step %d, %ld rows (expected %d), %d decode(s)", k, r->chosen_step[0],
                  r->unet_rows, 2 * k, r->decodes);
            CHECK(!memcmp(r->edited, ser->candidates + (size_t)(k - 1) * img, img),
                  "forced to %d: the serial search's candidate %d exactly", k, k);
            int d = max_diff(r->edited, par->candidates + (size_t)(k - 1) * img, img);
            CHECK(d <= 2, "forced to %d: the parallel search's candidate %d within rounding (max %d levels)", k, k, d);
            if (k == ser->chosen_step[0])
                CHECK(!memcmp(r->edited, ser->edited, img), "forced to the chosen step: the serial search's result");
            oir_result_free(r);
            r = NULL;
        }
    /* without candidates kept the result is still the forced candidate */
    int forced[1] = {ser->chosen_step[0]};
    p = params(forced, NULL);
    p.keep_candidates = 0;
    if (CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &pair, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        CHECK(r->candidates == NULL && r->decodes == 1 && !memcmp(r->edited, ser->edited, img),
              "no candidates kept: one decode, the same result");
        oir_result_free(r);
    }
    oir_result_free(ser);
    oir_result_free(par);
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
    test_edit(ctx);
    test_search(ctx);
    oir_context_free(ctx);
    return th_summary();
}
