/* The no-edit guard of the search metric (oir_params.guard, the CLI's
 * --guard): on fixed score curves the guarded choice changes exactly when
 * the plain arg-max does not beat the source image's own masked score by the
 * margin (and falls back to the plain arg-max, flagged, when nothing does);
 * on the tiny random pipeline the run decodes the source latent once (no
 * UNet) and scores it once per pair, marks the eligible candidates, chooses
 * among them, warns on a fallback; bad margins are OIR_E_ARG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/search_metric.h"
#include "harness.h"
#include "oir.h"

#define N 5

/* Plain metric on these curves: normalised edit {0, .25, 1, .75, .5},
 * background {1, .99, .2, .1, 0}: totals {1, 1.24, 1.2, .85, .5}, so the
 * plain choice is index 1, whose edit score (0.101) barely moves off the
 * source's (0.1005). */
static const float edit[N] = {0.100f, 0.101f, 0.104f, 0.103f, 0.102f};
static const float bg[N] = {0.0f, -0.001f, -0.08f, -0.09f, -0.1f};
static const float source = 0.1005f;

static void test_metric(void) {
    float ne[N], nb[N], t[N], ne0[N], nb0[N], t0[N];
    unsigned char el[N];
    search_choice plain = search_metric_choose_among(edit, bg, N, NULL, NULL, ne0, nb0, t0);
    CHECK(plain.best == 1 && !plain.guard_fallback, "plain metric picks index 1 (got %d)", plain.best);
    /* margin 0: index 1 beats the source: the pick does not change */
    search_choice c = search_metric_choose_guarded(edit, bg, N, NULL, NULL, source, 0.0f, el, ne, nb, t);
    CHECK(c.best == 1 && !c.guard_fallback, "margin 0: same pick 1 (got %d)", c.best);
    CHECK(!el[0] && el[1] && el[2] && el[3] && el[4], "margin 0: all but the source-like index 0 eligible");
    CHECK(!memcmp(ne, ne0, sizeof ne) && !memcmp(nb, nb0, sizeof nb) && !memcmp(t, t0, sizeof t),
          "the guard leaves the normalised scores and totals unchanged");
    /* margin 0.001: index 1 (0.101 <= 0.1015) is out; the best eligible total is index 2 */
    c = search_metric_choose_guarded(edit, bg, N, NULL, NULL, source, 0.001f, el, NULL, NULL, NULL);
    CHECK(c.best == 2 && !c.guard_fallback && !el[0] && !el[1] && el[2] && el[3] && el[4],
          "margin 0.001: pick moves to 2 (got %d)", c.best);
    /* margin 0.0028: only index 2 (0.104 > 0.1033) */
    c = search_metric_choose_guarded(edit, bg, N, NULL, NULL, source, 0.0028f, el, NULL, NULL, NULL);
    CHECK(c.best == 2 && el[2] && !el[3] && !el[4], "margin 0.0028: only 2 eligible, picked (got %d)", c.best);
    /* choosable restricts as well: without index 2 the best eligible is 3 */
    unsigned char choosable[N] = {1, 1, 0, 1, 1};
    c = search_metric_choose_guarded(edit, bg, N, NULL, choosable, source, 0.001f, el, NULL, NULL, NULL);
    CHECK(c.best == 3 && !c.guard_fallback, "eligible and choosable: 3 (got %d)", c.best);
    /* nothing eligible: the plain arg-max, flagged */
    c = search_metric_choose_guarded(edit, bg, N, NULL, NULL, source, 0.01f, el, NULL, NULL, NULL);
    CHECK(c.best == 1 && c.guard_fallback, "margin 0.01: nothing eligible: plain pick 1, fallback (got %d, %d)",
          c.best, c.guard_fallback);
    int none = 1;
    for (int i = 0; i < N; i++) none &= !el[i];
    CHECK(none, "margin 0.01: no candidate marked eligible");
    c = search_metric_choose_guarded(edit, bg, N, NULL, NULL, NAN, 0.0f, el, NULL, NULL, NULL);
    CHECK(c.best == 1 && c.guard_fallback, "a NaN source score: nothing eligible, the plain pick");
    /* evaluated subsets: unevaluated candidates are never eligible */
    unsigned char ev[N] = {1, 1, 0, 1, 1};
    c = search_metric_choose_guarded(edit, bg, N, ev, NULL, source, 0.001f, el, NULL, NULL, NULL);
    CHECK(!el[2] && el[3] && c.best == 3, "evaluated subset: 2 skipped, 3 picked (got %d)", c.best);
    /* margins */
    oir_error err = {0};
    CHECK(search_guard_check(0.0f, &err) == OIR_OK && search_guard_check(0.05f, &err) == OIR_OK, "valid margins");
    float bad[] = {-0.01f, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        err.message[0] = 0;
        CHECK(search_guard_check(bad[i], &err) == OIR_E_ARG && strstr(err.message, "guard margin"),
              "margin %g refused: %s", (double)bad[i], err.message);
    }
}

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

static int has_warning(const oir_result *r, const char *needle) {
    for (int i = 0; i < r->n_warnings; i++)
        if (strstr(r->warnings[i], needle)) return 1;
    return 0;
}

/* The run's guarded choice is the arg-max of its own totals among the
 * candidates whose edit score beats its source score by the margin. */
static void check_run(const oir_result *r, const oir_result *plain, float margin, const char *what) {
    int T = r->steps;
    for (int i = 0; i < r->n_pairs; i++) {
        const float *e = r->edit_score + (size_t)i * T, *t = r->total + (size_t)i * T;
        float s = r->source_edit_score[i];
        int elig_ok = isfinite(s), best = -1;
        for (int k = 0; k < T; k++) {
            int want = r->evaluated[i * T + k] && e[k] > s + margin;
            elig_ok &= r->eligible[i * T + k] == want;
            if (want && (best < 0 || t[k] > t[best])) best = k;
        }
        CHECK(elig_ok, "%s, pair %d: the source is scored (%.4f) and eligibility is edit > source + %.3f", what, i + 1,
              (double)s, (double)margin);
        if (best >= 0)
            CHECK(!r->guard_fallback[i] && r->chosen_step[i] == best + 1, "%s, pair %d: step %d, the best eligible %d",
                  what, i + 1, r->chosen_step[i], best + 1);
        else
            CHECK(r->guard_fallback[i] && r->chosen_step[i] == plain->chosen_step[i] && has_warning(r, "no-edit guard"),
                  "%s, pair %d: nothing eligible: the plain step %d (got %d), flagged and warned", what, i + 1,
                  plain->chosen_step[i], r->chosen_step[i]);
        CHECK(!memcmp(r->total + (size_t)i * T, plain->total + (size_t)i * T, sizeof(float) * (size_t)T) ||
                  strcmp(r->search, "exhaustive"),
              "%s, pair %d: exhaustive totals unchanged by the guard", what, i + 1);
    }
    CHECK(r->unet_rows == plain->unet_rows && r->decodes == plain->decodes + 1,
          "%s: the guard costs no UNet row in the search (%ld vs %ld rows), one decode (%d vs %d)", what,
          r->unet_rows, plain->unet_rows, r->decodes, plain->decodes);
}

static void test_runs(oir_context *ctx) {
    oir_pair pairs[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", right, NULL}};
    oir_error err = {0};
    oir_params p = oir_default_params();
    p.steps = T_STEPS;
    p.reassembly_step = 2;
    p.reinversion_steps = 2;
    oir_result *plain = NULL, *r = NULL;
    if (!CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &plain, &err) == OIR_OK, "plain: %s", err.message))
        return;
    CHECK(!plain->guard && isnan(plain->source_edit_score[0]) && plain->eligible[0] == plain->evaluated[0],
          "guard off: no source score, every evaluated candidate eligible");
    /* margins from "everything passes" to "nothing does" on this model's scores */
    float margins[] = {0.0f, 0.002f, 0.01f, 1000.0f};
    for (size_t m = 0; m < sizeof margins / sizeof margins[0]; m++) {
        oir_params q = p;
        q.guard = 1;
        q.guard_margin = margins[m];
        char what[64];
        snprintf(what, sizeof what, "margin %g", (double)margins[m]);
        if (!CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &r, &err) == OIR_OK, "%s: %s", what, err.message))
            continue;
        CHECK(r->guard == 1 && r->guard_margin == margins[m], "%s: recorded in the result", what);
        check_run(r, plain, margins[m], what);
        if (margins[m] > 100)
            CHECK(r->guard_fallback[0] && r->guard_fallback[1], "%s: every pair falls back", what);
        oir_result_free(r);
        r = NULL;
    }
    /* a strategy that scores a subset (adaptive) and one pair forced: only the searched pair is guarded */
    int forced[2] = {3, 0};
    oir_params q = p;
    q.guard = 1;
    q.guard_margin = 0.0f;
    q.search = "adaptive:4";
    q.forced_steps = forced;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &r, &err) == OIR_OK, "adaptive: %s", err.message)) {
        CHECK(isnan(r->source_edit_score[0]) && isfinite(r->source_edit_score[1]) && r->chosen_step[0] == 3,
              "a forced pair is not scored; the searched one is");
        int ok = 1;
        for (int k = 0; k < T_STEPS; k++)
            ok &= r->eligible[T_STEPS + k] == (r->evaluated[T_STEPS + k] &&
                                               r->edit_score[T_STEPS + k] > r->source_edit_score[1]);
        CHECK(ok && r->eligible[r->chosen_step[1] - 1 + T_STEPS] != r->guard_fallback[1],
              "adaptive: eligibility over the evaluated subset, the choice eligible unless it fell back");
        oir_result_free(r);
        r = NULL;
    }
    /* bad margins: refused before anything runs, by the run and by the plan */
    float bad[] = {-0.5f, NAN, INFINITY};
    for (int b = 0; b < 3; b++) {
        q = p;
        q.guard = 1;
        q.guard_margin = bad[b];
        err.message[0] = 0;
        CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &r, &err) == OIR_E_ARG && !r &&
                  strstr(err.message, "guard margin"),
              "margin %g refused: %s", (double)bad[b], err.message);
        oir_plan pl;
        CHECK(oir_plan_run(ctx, SIZE, SIZE, 2, &q, NULL, &pl, &err) == OIR_E_ARG, "plan: margin %g refused",
              (double)bad[b]);
    }
    q = p;
    q.guard = 0;
    q.guard_margin = NAN; /* off: the margin is not read */
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &q, &r, &err) == OIR_OK, "guard off, NaN margin: %s",
              err.message))
        CHECK(!memcmp(r->edited, plain->edited, (size_t)SIZE * SIZE * 3), "guard off: the paper's metric");
    oir_result_free(r);
    oir_result_free(plain);
}

int main(void) {
    test_metric();
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
    test_runs(ctx);
    oir_context_free(ctx);
    return th_summary();
}
