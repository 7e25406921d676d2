/* The model-free parts of OIR: search metric arithmetic, the parallel
 * schedule, prompt substitution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/prompts.h"
#include "edit/schedule.h"
#include "edit/search_metric.h"
#include "edit/search_plan.h"
#include "edit/sheet.h"
#include "harness.h"

static void test_metric(void) {
    /* Known inputs: edit scores rise with k, background scores fall. */
    float edit[5] = {0.10f, 0.20f, 0.30f, 0.30f, 0.30f};
    float bg[5] = {-0.0f, -0.01f, -0.02f, -0.04f, -0.08f};
    float ne[5], nb[5], tot[5];
    search_choice c = search_metric_choose(edit, bg, 5, ne, nb, tot);
    float ref_ne[5] = {0, 0.5f, 1, 1, 1};
    float ref_nb[5] = {1, 0.875f, 0.75f, 0.5f, 0};
    th_close("normalised edit scores", ne, ref_ne, 5, 1e-6f, 0);
    th_close("normalised background scores", nb, ref_nb, 5, 1e-6f, 0);
    CHECK(c.best == 2, "best candidate index 2 (k=3), got %d", c.best);
    CHECK(fabsf(tot[2] - 1.75f) < 1e-6f, "total at best 1.75, got %g", tot[2]);
    CHECK(!c.edit_flat && !c.background_flat, "not flat");

    /* Flat edit score: only the background decides; no NaN anywhere. */
    float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f}, bg2[4] = {-3, -1, -2, -4};
    c = search_metric_choose(flat, bg2, 4, ne, nb, tot);
    CHECK(c.edit_flat && !c.background_flat, "edit flat flagged");
    CHECK(c.best == 1, "flat edit: best by background is index 1, got %d", c.best);
    for (int i = 0; i < 4; i++) CHECK(isfinite(tot[i]) && ne[i] == 0, "flat normalises to 0");

    /* Both flat: ties go to the first candidate. */
    c = search_metric_choose(flat, flat, 4, NULL, NULL, NULL);
    CHECK(c.best == 0 && c.edit_flat && c.background_flat, "all flat -> first candidate");

    /* Ties between different candidates go to the smallest k. */
    float e3[3] = {0, 1, 0}, b3[3] = {1, 0, 0};
    c = search_metric_choose(e3, b3, 3, NULL, NULL, NULL);
    CHECK(c.best == 0, "tie -> smallest index, got %d", c.best);

    /* Masked MSE: only kept pixels count, divided by all elements. */
    float a[2 * 2 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 0, 3, 0, 5, 0, 7, 1};
    unsigned char keep[4] = {1, 0, 1, 0};
    CHECK(negative_masked_mse(a, b, keep, 2, 2, 2) == 0.0f, "masked-out differences ignored");
    unsigned char keep2[4] = {0, 1, 0, 1};
    float want = -(4.0f + 16 + 36 + 49) / 8;
    CHECK(fabsf(negative_masked_mse(a, b, keep2, 2, 2, 2) - want) < 1e-6f, "masked mse value");
}

/* Checks a plan of `items`: every item runs exactly its k steps on
 * consecutive calls of one row, rows never run two items at once, and the
 * call count is the longest row. Returns the plan's calls (-1 on failure). */
static int check_plan(const char *what, const schedule_item *items, int n) {
    schedule_plan p;
    oir_error err = {0};
    if (!CHECK(schedule_plan_build(&p, items, n, &err) == OIR_OK, "%s: %s", what, err.message)) return -1;
    int ok = p.n_items == n, total = 0, longest = 0;
    for (int i = 0; i < n; i++) total += items[i].k, longest = items[i].k > longest ? items[i].k : longest;
    int *seen = calloc((size_t)n, sizeof(int)), busy = 0;
    for (int c = 0; c < p.calls; c++)
        for (int r = 0; r < p.rows; r++) {
            int i = p.at[(size_t)c * p.rows + r];
            if (i < 0) continue;
            busy++;
            /* the item's steps come in order on consecutive calls of its row */
            if (p.row[i] != r || c - p.start[i] != seen[i]) ok = 0;
            seen[i]++;
        }
    for (int i = 0; i < n; i++) ok &= seen[i] == p.items[i].k;
    /* the plan holds the same multiset of (pair, k) */
    for (int i = 0; i < n; i++) {
        int want = 0, got = 0;
        for (int j = 0; j < n; j++) {
            want += items[j].pair == items[i].pair && items[j].k == items[i].k;
            got += p.items[j].pair == items[i].pair && p.items[j].k == items[i].k;
        }
        ok &= want == got;
    }
    CHECK(ok, "%s: every candidate gets its k steps, in order, on one row", what);
    CHECK(busy == total, "%s: total work %d == sum of k = %d", what, busy, total);
    CHECK(n == 0 || p.rows == (total + longest - 1) / longest, "%s: rows = ceil(work / longest)", what);
    int calls = p.calls;
    free(seen);
    schedule_plan_free(&p);
    return calls;
}

static void test_schedule(int T) {
    schedule_item items[2 * 64];
    char what[64];
    for (int k = 1; k <= T; k++) items[k - 1] = (schedule_item){0, k};
    snprintf(what, sizeof what, "exhaustive T=%d", T);
    int calls = check_plan(what, items, T);
    /* all T candidates: no more calls than the paper's T+1 */
    CHECK(calls >= T && calls <= T + 1, "%s: %d calls (T..T+1)", what, calls);
    for (int k = 1; k <= T; k++) items[T + k - 1] = (schedule_item){1, k};
    snprintf(what, sizeof what, "two pairs T=%d", T);
    calls = check_plan(what, items, 2 * T);
    CHECK(calls >= T && calls <= T + 1, "%s: %d calls", what, calls);
}

static void test_schedule_subsets(void) {
    /* coarse sets and neighbourhoods of several pairs share calls */
    schedule_item items[] = {{0, 5}, {0, 10}, {0, 15}, {0, 20}, {1, 20}, {1, 7}, {2, 1}, {2, 2}, {2, 3}};
    int calls = check_plan("mixed subset of 3 pairs", items, (int)(sizeof items / sizeof items[0]));
    CHECK(calls >= 20 && calls <= 21, "mixed subset: %d calls for a longest candidate of 20", calls);
    check_plan("one candidate", items, 1);
    schedule_plan p;
    oir_error err = {0};
    CHECK(schedule_plan_build(&p, items, 0, &err) == OIR_OK && p.calls == 0, "empty plan: no calls");
    schedule_plan_free(&p);
    schedule_item bad = {0, 0};
    CHECK(schedule_plan_build(&p, &bad, 1, &err) != OIR_OK, "k = 0 refused");
}

static void test_search_plan(void) {
    search_strategy s;
    oir_error err = {0};
    char buf[64];
    CHECK(search_strategy_parse(&s, NULL, 50, &err) == OIR_OK && s.kind == SEARCH_ADAPTIVE && s.levels == 10 &&
              s.peaks == 2,
          "default: adaptive:10:2");
    search_strategy_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "adaptive:10:2") == 0, "canonical default (%s)", buf);
    CHECK(search_strategy_parse(&s, "adaptive:12", 50, &err) == OIR_OK && s.levels == 12 && s.peaks == 2,
          "adaptive:12 refines 2 peaks");
    CHECK(search_strategy_parse(&s, "adaptive:8:1", 50, &err) == OIR_OK && s.levels == 8 && s.peaks == 1,
          "adaptive:8:1: the best alone");
    search_strategy_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "adaptive:8:1") == 0, "canonical adaptive:8:1 (%s)", buf);
    CHECK(search_strategy_parse(&s, "adaptive:10:3", 10, &err) == OIR_OK && s.kind == SEARCH_EXHAUSTIVE,
          "adaptive:10:3 at T = 10 (levels cover every step) is exhaustive");
    CHECK(search_strategy_parse(&s, "exhaustive", 50, &err) == OIR_OK && s.kind == SEARCH_EXHAUSTIVE, "exhaustive");
    /* 10 geometric levels over T = 10 are every step: the same candidates as exhaustive, one round */
    CHECK(search_strategy_parse(&s, NULL, 10, &err) == OIR_OK && s.kind == SEARCH_EXHAUSTIVE,
          "default at T = 10 is exhaustive");
    CHECK(search_strategy_parse(&s, "adaptive:10", 11, &err) == OIR_OK && s.kind == SEARCH_ADAPTIVE,
          "adaptive:10 at T = 11 skips a step: adaptive");
    CHECK(search_strategy_parse(&s, "adaptive:4", 4, &err) == OIR_OK && s.kind == SEARCH_EXHAUSTIVE,
          "adaptive:4 at T = 4 is exhaustive");
    CHECK(search_strategy_parse(&s, "coarse", 50, &err) == OIR_OK && s.kind == SEARCH_COARSE && s.stride == 5,
          "coarse default stride 5");
    search_strategy_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "coarse:5") == 0, "canonical coarse (%s)", buf);
    CHECK(search_strategy_parse(&s, "short-refine:10", 50, &err) == OIR_OK && s.short_steps == 10 && s.window == 3,
          "short-refine:10 window ceil(50/10/2) = 3 (got %d)", s.window);
    CHECK(search_strategy_parse(&s, "short-refine:8:2", 20, &err) == OIR_OK && s.window == 2, "explicit window");
    search_strategy_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "short-refine:8:2") == 0, "canonical short-refine (%s)", buf);
    static const char *bad[] = {"coarse:0", "coarse:51", "short:50", "short:60", "nope", "coarse:5:5",
                                "short:x", "short:", "exhaustive:3", "coarse:-2", "short-refine:10:50",
                                "coarse:5x", "adaptive:10:0", "adaptive:10:2:1", "adaptive:0:2",
                                "adaptive:10:x", "adaptive:10:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.message[0] = 0;
        int rc = search_strategy_parse(&s, bad[i], 50, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, bad[i]), "\"%s\" refused with a message naming it (%s)",
              bad[i], err.message);
    }
    unsigned char want[50], evaluated[50] = {0};
    search_coarse_set(12, 5, want);
    CHECK(want[0] && want[4] && want[9] && want[11] && !want[1] && !want[5] && !want[10],
          "coarse set of T=12, S=5: 1, 5, 10, 12");
    memcpy(evaluated, want, 12);
    int n = search_neighbours(12, 10, 4, evaluated, want);
    CHECK(n == 5 && want[5] && want[8] && want[10] && !want[9] && !want[11] && !want[4],
          "neighbours of 10 within 4, not re-evaluated (12 was): 6..9, 11 (%d)", n);
    unsigned char g[50];
    search_geometric_set(50, 10, g);
    int gk[50], ng = 0, gsum = 0;
    for (int k = 1; k <= 50; k++)
        if (g[k - 1]) gk[ng++] = k, gsum += k;
    /* 50^(j/9): 1, 1.5, 2.4, 3.7, 5.7, 8.8, 13.6, 20.9, 32.4, 50 -> each above the last */
    CHECK(ng == 10 && gk[0] == 1 && gk[1] == 2 && gk[2] == 3 && gk[3] == 4 && gk[4] == 6 && gk[5] == 9 &&
              gk[6] == 14 && gk[7] == 21 && gk[8] == 32 && gk[9] == 50,
          "geometric set of T=50, M=10: 1 2 3 4 6 9 14 21 32 50 (%d levels)", ng);
    /* bisection: best 21 between 14 and 32 -> 17 and 27 (midpoints, rounded away from the best) */
    int nb = search_bisect(50, 21, g, want);
    CHECK(nb == 2 && want[17 - 1] && want[27 - 1], "bisect around 21 in {14, 32}: 17 and 27");
    unsigned char adj[5] = {1, 1, 1, 0, 0};
    CHECK(search_bisect(5, 2, adj, want) == 0, "converged when both neighbours are adjacent");
    CHECK(search_bisect(5, 3, adj, want) == 1 && want[4 - 1] + want[5 - 1] == 1,
          "best at the last evaluated step: one midpoint towards T");
    CHECK(search_map_level(1, 10, 50) == 5 && search_map_level(10, 10, 50) == 50 && search_map_level(3, 8, 20) == 8,
          "short levels map to the matching level (3/8 of 20 = 7.5 -> 8)");
    int distinct = 1;
    for (int ks = 2; ks <= 19; ks++) distinct &= search_map_level(ks, 19, 20) > search_map_level(ks - 1, 19, 20);
    CHECK(distinct, "TS = 19 of T = 20: distinct levels");
}

/* search_peaks on fixed curves: T levels, evaluated where ev[k-1]. */
static int peaks_of(int T, const float *total, const unsigned char *ev, int K, int *peaks) {
    for (int j = 0; j < 16; j++) peaks[j] = -1;
    return search_peaks(T, total, ev, K, peaks);
}

static void test_search_peaks(void) {
    int pk[16];
    /* two peaks (3 and 7) among every level; 3 is higher */
    float c1[9] = {0.1f, 0.2f, 0.9f, 0.3f, 0.2f, 0.4f, 0.6f, 0.5f, 0.0f};
    unsigned char all[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int n = peaks_of(9, c1, all, 2, pk);
    CHECK(n == 2 && pk[0] == 3 && pk[1] == 7, "two peaks, best first: 3 then 7 (%d: %d %d)", n, pk[0], pk[1]);
    n = peaks_of(9, c1, all, 1, pk);
    CHECK(n == 1 && pk[0] == 3 && pk[1] == -1, "K = 1: the best alone, nothing more written (%d: %d)", n, pk[0]);
    n = peaks_of(9, c1, all, 5, pk);
    CHECK(n == 2 && pk[2] == -1, "K larger than the number of peaks: every peak (%d)", n);
    /* only the evaluated levels count: unevaluated totals (NaN, or any value) are skipped */
    float c2[9] = {0.1f, 5.0f, 0.9f, NAN, 0.2f, 7.0f, 0.6f, NAN, 0.0f};
    unsigned char ev2[9] = {1, 0, 1, 0, 1, 0, 1, 0, 1};
    n = peaks_of(9, c2, ev2, 3, pk);
    CHECK(n == 2 && pk[0] == 3 && pk[1] == 7, "neighbours are the nearest evaluated levels (%d: %d %d)", n, pk[0],
          pk[1]);
    /* the ends compare with their one neighbour: peaks at k = 1 and k = T */
    float c3[6] = {0.8f, 0.5f, 0.1f, 0.2f, 0.4f, 0.9f};
    unsigned char ev3[6] = {1, 1, 1, 1, 1, 1};
    n = peaks_of(6, c3, ev3, 2, pk);
    CHECK(n == 2 && pk[0] == 6 && pk[1] == 1, "peaks at both ends: T then 1 (%d: %d %d)", n, pk[0], pk[1]);
    /* a monotone curve: one peak, at its top end */
    float c4[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    n = peaks_of(5, c4, all, 3, pk);
    CHECK(n == 1 && pk[0] == 5, "rising curve: one peak at T (%d: %d)", n, pk[0]);
    float c4d[5] = {0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
    n = peaks_of(5, c4d, all, 3, pk);
    CHECK(n == 1 && pk[0] == 1, "falling curve: one peak at k = 1 (%d: %d)", n, pk[0]);
    /* ties between peaks: the smaller step first (the metric's choice) */
    float c5[7] = {0.2f, 0.7f, 0.1f, 0.7f, 0.3f, 0.7f, 0.0f};
    n = peaks_of(7, c5, all, 2, pk);
    CHECK(n == 2 && pk[0] == 2 && pk[1] == 4, "equal peaks: 2 then 4 (%d: %d %d)", n, pk[0], pk[1]);
    n = peaks_of(7, c5, all, 3, pk);
    CHECK(n == 3 && pk[2] == 6, "then 6 (%d)", pk[2]);
    /* a plateau: every level of it is a peak (>= both neighbours); the
     * lower plateau's levels rank after the higher one's */
    float c6[8] = {0.1f, 0.6f, 0.6f, 0.6f, 0.2f, 0.4f, 0.4f, 0.3f};
    n = peaks_of(8, c6, all, 8, pk);
    CHECK(n == 5 && pk[0] == 2 && pk[1] == 3 && pk[2] == 4 && pk[3] == 6 && pk[4] == 7,
          "plateaus: 2 3 4, then 6 7 (%d: %d %d %d %d %d)", n, pk[0], pk[1], pk[2], pk[3], pk[4]);
    /* a flat curve (both scores flat normalise to 0): every level, from k = 1 */
    float c7[4] = {0, 0, 0, 0};
    n = peaks_of(4, c7, all, 2, pk);
    CHECK(n == 2 && pk[0] == 1 && pk[1] == 2, "flat: 1 and 2 (%d: %d %d)", n, pk[0], pk[1]);
    /* a single evaluated level is a peak; none evaluated: none; K = 0: none */
    unsigned char one[5] = {0, 0, 1, 0, 0}, none[5] = {0};
    n = peaks_of(5, c4, one, 2, pk);
    CHECK(n == 1 && pk[0] == 3, "one evaluated level: it (%d: %d)", n, pk[0]);
    CHECK(peaks_of(5, c4, none, 2, pk) == 0 && peaks_of(5, c4, all, 0, pk) == 0, "nothing evaluated or K = 0: none");
    /* peaks[0] is the search metric's choice on every curve above */
    const float *curves[] = {c1, c3, c4, c4d, c5, c6, c7};
    const int lens[] = {9, 6, 5, 5, 7, 8, 4};
    for (int i = 0; i < 7; i++) {
        float zero[9] = {0};
        search_choice c = search_metric_choose(curves[i], zero, lens[i], NULL, NULL, NULL);
        peaks_of(lens[i], curves[i], all, 1, pk);
        CHECK(pk[0] == c.best + 1, "curve %d: the best peak %d is the metric's choice %d", i, pk[0], c.best + 1);
    }

    /* bisection around several peaks: the union of each one's midpoints */
    unsigned char g[50], want[50], one_want[50];
    search_geometric_set(50, 10, g); /* 1 2 3 4 6 9 14 21 32 50 */
    int two[2] = {21, 9};
    int nb = search_bisect_peaks(50, two, 2, g, want);
    int count = 0;
    for (int k = 0; k < 50; k++) count += want[k];
    CHECK(nb == 4 && count == 4 && want[17 - 1] && want[27 - 1] && want[7 - 1] && want[12 - 1],
          "peaks 21 and 9: 17, 27 (around 21) and 7, 12 (around 9) (%d)", nb);
    search_bisect(50, 21, g, one_want);
    nb = search_bisect_peaks(50, two, 1, g, want);
    CHECK(nb == 2 && memcmp(want, one_want, 50) == 0, "one peak: search_bisect's midpoints");
    /* adjacent peaks share a midpoint: counted once */
    unsigned char ev8[8] = {1, 0, 0, 0, 1, 0, 0, 1};
    int adjp[2] = {1, 5};
    nb = search_bisect_peaks(8, adjp, 2, ev8, want);
    count = 0;
    for (int k = 0; k < 8; k++) count += want[k];
    CHECK(nb == 2 && count == 2 && want[3 - 1] && want[7 - 1],
          "peaks 1 and 5 of {1, 5, 8}: 3 (from both, once) and 7 (%d)", nb);
    unsigned char full[5] = {1, 1, 1, 1, 1};
    int ends[2] = {1, 5};
    CHECK(search_bisect_peaks(5, ends, 2, full, want) == 0, "converged: no peak has an unevaluated midpoint");
}

static void test_metric_among(void) {
    /* normalised over the evaluated subset only; skipped entries are NaN */
    float e[5] = {0.1f, NAN, 0.3f, NAN, 0.2f}, b[5] = {-1, NAN, -3, NAN, -1.5f};
    unsigned char ev[5] = {1, 0, 1, 0, 1}, choose_only[5] = {0, 0, 0, 0, 1};
    float ne[5], nb[5], t[5];
    search_choice c = search_metric_choose_among(e, b, 5, ev, NULL, ne, nb, t);
    CHECK(c.best == 0 || c.best == 4, "subset choice among evaluated (got %d)", c.best);
    CHECK(fabsf(ne[2] - 1) < 1e-6f && fabsf(ne[0]) < 1e-6f && fabsf(nb[0] - 1) < 1e-6f && isnan(ne[1]) && isnan(t[3]),
          "subset normalisation: min-max over evaluated, NaN elsewhere");
    c = search_metric_choose_among(e, b, 5, ev, choose_only, NULL, NULL, NULL);
    CHECK(c.best == 4, "choice restricted to choosable (got %d)", c.best);
    unsigned char none[5] = {0};
    c = search_metric_choose_among(e, b, 5, ev, none, NULL, NULL, NULL);
    CHECK(c.best == -1, "nothing choosable: -1");
}

static void test_prompts(void) {
    const char *src = "a dog sitting next to a gift";
    const char *from[2] = {"dog", "gift"}, *to[2] = {"cat", "cake"};
    char out[256];
    oir_error err = {0};
    int use0[2] = {1, 0}, use1[2] = {0, 1};
    CHECK(prompt_substitute(src, 2, from, to, use0, out, sizeof out, &err) == 0 &&
              !strcmp(out, "a cat sitting next to a gift"), "guided prompt 1: %s", out);
    CHECK(prompt_substitute(src, 2, from, to, use1, out, sizeof out, &err) == 0 &&
              !strcmp(out, "a dog sitting next to a cake"), "guided prompt 2: %s", out);
    CHECK(prompt_substitute(src, 2, from, to, NULL, out, sizeof out, &err) == 0 &&
              !strcmp(out, "a cat sitting next to a cake"), "target prompt: %s", out);
    /* whole words only: "cat" must not match inside "catalog" */
    CHECK(prompt_find_phrase("a catalog and a cat", "cat") == 16, "whole-word match");
    CHECK(prompt_find_phrase("A Red Circle", "red circle") == 2, "case-insensitive phrase");
    const char *bad[1] = {"horse"}, *badto[1] = {"zebra"};
    CHECK(prompt_substitute(src, 1, bad, badto, NULL, out, sizeof out, &err) == OIR_E_ARG &&
              strstr(err.message, "horse"), "missing word named: %s", err.message);
    const char *ov[2] = {"red circle", "circle"}, *ovto[2] = {"blue square", "star"};
    CHECK(prompt_substitute("a red circle", 2, ov, ovto, NULL, out, sizeof out, &err) == OIR_E_ARG &&
              strstr(err.message, "overlap"), "overlapping pairs refused: %s", err.message);
    char tiny[8];
    CHECK(prompt_substitute(src, 2, from, to, NULL, tiny, sizeof tiny, &err) == OIR_E_ARG,
          "output buffer too small refused");
    /* a phrase occurring twice is ambiguous (it used to replace the first silently) */
    CHECK(prompt_count_phrase("a cat, a Cat and a catalog", "cat") == 2, "two whole-word cats");
    const char *twice[1] = {"cat"}, *twice_to[1] = {"dog"};
    CHECK(prompt_substitute("a cat next to a cat", 1, twice, twice_to, NULL, out, sizeof out, &err) == OIR_E_ARG &&
              strstr(err.message, "occurs 2 times"),
          "repeated phrase refused: %s", err.message);
}

static void test_sheet(void) {
    enum { T = 12 };
    image c[T];
    oir_error err = {0};
    float e[T], b[T], t[T];
    for (int k = 0; k < T; k++) {
        image_alloc(&c[k], 32, 32, 3, &err);
        e[k] = (float)k / (T - 1);
        b[k] = 1 - e[k];
        t[k] = 1;
    }
    image out = {0};
    CHECK(sheet_render(&out, c, T, e, b, t, 3, NULL, "test", &err) == OIR_OK, "sheet: %s", err.message);
    /* 10 columns of 96 px thumbnails (32 px upscaled) in 2 rows, plot beneath */
    CHECK(out.width >= 10 * 96 && out.height > 2 * 96 + 150, "sheet size %dx%d", out.width, out.height);
    /* the chosen candidate (index 3) is framed in red: pixel just left of its thumbnail */
    int x = 6 + 3 * (96 + 6) - 2, y = 22 + 10;
    const float *px = out.data + ((size_t)y * out.width + x) * 3;
    CHECK(px[0] > 0.8f && px[1] < 0.2f, "red frame around the chosen candidate");
    image_free(&out);
    CHECK(sheet_render(&out, c, T, e, b, t, T, NULL, "bad", &err) == OIR_E_ARG, "chosen index out of range refused");
    for (int k = 0; k < T; k++) image_free(&c[k]);
}

int main(void) {
    test_sheet();
    test_metric();
    for (int T = 1; T <= 52; T++) test_schedule(T);
    test_schedule_subsets();
    test_search_plan();
    test_search_peaks();
    test_metric_among();
    test_prompts();
    return th_summary();
}
