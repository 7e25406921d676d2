/* The search strategies on fixed metric curves (no model): the planner's
 * replay of the engine's rounds (src/edit/plan.c plan_simulate, which
 * tests/test_plan.c shows reproduces real runs exactly) driven by a known
 * curve through the real metric (edit/search_metric.h: min-max over the
 * evaluated candidates) and peak finder (edit/search_plan.h):
 *  - on single-peaked curves every strategy chooses the exhaustive choice;
 *  - on a curve with a broad peak and a higher narrow one, adaptive:10:1
 *    misses the narrow peak and adaptive:10:2 finds it;
 *  - adaptive:M:1 evaluates exactly what bisection around the best alone
 *    does, and adaptive:M:K what an independent implementation of "the K
 *    best local peaks" does, on random curves with ties;
 *  - the plan's bounds hold every such run, its expected rows lie within
 *    them and grow with K. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/plan.h"
#include "edit/search_metric.h"
#include "edit/search_plan.h"
#include "harness.h"

#define MAX_T 100

/* Fixed raw scores of each pair's candidates k = 1..T. */
typedef struct {
    int T;
    float edit[2][MAX_T], background[2][MAX_T];
    unsigned char last[2][MAX_T]; /* the evaluated flags the last call saw */
    int calls;
} curves;

static int curve_choose(void *user, int pair, int T, const unsigned char *evaluated, unsigned char flag) {
    curves *c = user;
    unsigned char choosable[MAX_T];
    for (int k = 0; k < T; k++) choosable[k] = flag ? evaluated[k] == flag : evaluated[k] != 0;
    memcpy(c->last[pair], evaluated, (size_t)T);
    search_choice ch = search_metric_choose_among(c->edit[pair], c->background[pair], T, evaluated, choosable, NULL,
                                                  NULL, NULL);
    return ch.best + 1;
}

static int curve_peaks(void *user, int pair, int T, const unsigned char *evaluated, int K, int *peaks) {
    curves *c = user;
    float total[MAX_T];
    c->calls++;
    search_metric_choose_among(c->edit[pair], c->background[pair], T, evaluated, NULL, NULL, NULL, total);
    return search_peaks(T, total, evaluated, K, peaks);
}

/* One run of `spec` over the curves (n_pairs 1 or 2); 0 on a failure. */
static int run(const char *spec, curves *c, int n_pairs, plan_counts *pc) {
    oir_params p = oir_default_params();
    p.steps = c->T;
    p.search = spec;
    plan_setup s;
    oir_error err = {0};
    if (!CHECK(plan_setup_init(&s, n_pairs, &p, 64, &err) == OIR_OK, "%s: %s", spec, err.message)) return 0;
    s.counts_only = 1;
    memset(c->last, 0, sizeof c->last);
    return CHECK(plan_simulate(&s, curve_choose, curve_peaks, c, NULL, pc, &err) == OIR_OK, "%s: %s", spec,
                 err.message);
}

/* A single-peaked curve: the edit score falls off with |log k - log peak|,
 * the background score is flat (it normalises to 0). */
static void single_peak(curves *c, int pair, int T, int peak) {
    c->T = T;
    for (int k = 1; k <= T; k++) {
        c->edit[pair][k - 1] = 1.0f - fabsf(logf((float)k) - logf((float)peak));
        c->background[pair][k - 1] = 0.5f;
    }
}

static void test_single_peaks(void) {
    static const char *specs[] = {"exhaustive", "coarse:5", "adaptive:10:1", "adaptive:10:2", "adaptive:6:3",
                                  "adaptive", "short-refine:10"};
    static const int peaks[] = {1, 2, 5, 8, 17, 33, 49, 50};
    curves *c = calloc(1, sizeof *c);
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++)
        for (size_t j = 0; j < sizeof specs / sizeof specs[0]; j++) {
            plan_counts pc;
            /* short-refine:10's windows (3 around 5, 10, ..) start at k = 2 */
            if (peaks[i] == 1 && !strncmp(specs[j], "short", 5)) continue;
            single_peak(c, 0, 50, peaks[i]);
            if (run(specs[j], c, 1, &pc))
                CHECK(pc.chosen[0] == peaks[i], "%s, single peak at %d: chose %d", specs[j], peaks[i], pc.chosen[0]);
        }
    /* short:10 renders only its mapped levels (5, 10, .., 50): peaks there */
    for (int peak = 5; peak <= 50; peak += 15) {
        plan_counts pc;
        single_peak(c, 0, 50, peak);
        if (run("short:10", c, 1, &pc)) CHECK(pc.chosen[0] == peak, "short:10, peak at %d: chose %d", peak, pc.chosen[0]);
    }
    free(c);
}

/* A broad peak at 21 (0.8) and a narrow, higher one at 8 (1.0) next to the
 * geometric level 9 of T = 50 (levels 1 2 3 4 6 9 14 21 32 50). */
static void bimodal(curves *c, int pair) {
    c->T = 50;
    for (int k = 1; k <= 50; k++) {
        float broad = 0.8f - 0.05f * fabsf((float)(k - 21)), narrow = 1.0f - 0.25f * fabsf((float)(k - 8));
        float f = broad > narrow ? broad : narrow;
        c->edit[pair][k - 1] = f > 0 ? f : 0;
        c->background[pair][k - 1] = -1.0f; /* flat */
    }
}

static int count_evaluated(const unsigned char *ev, int T) {
    int n = 0;
    for (int k = 0; k < T; k++) n += ev[k] != 0;
    return n;
}

static void test_bimodal(void) {
    curves *c = calloc(1, sizeof *c);
    plan_counts ex, k1, k2;
    bimodal(c, 0);
    bimodal(c, 1);
    if (run("exhaustive", c, 1, &ex) && run("adaptive:10:1", c, 1, &k1)) {
        int n1 = count_evaluated(c->last[0], 50);
        CHECK(ex.chosen[0] == 8, "exhaustive chooses the narrow peak 8 (%d)", ex.chosen[0]);
        CHECK(k1.chosen[0] == 21 && !c->last[0][8 - 1], "adaptive:10:1 refines around 21 only and misses 8 (chose %d)",
              k1.chosen[0]);
        if (run("adaptive:10:2", c, 1, &k2)) {
            CHECK(k2.chosen[0] == 8, "adaptive:10:2 refines around 9 too and finds 8 (chose %d)", k2.chosen[0]);
            CHECK(k2.rows_candidates > k1.rows_candidates && count_evaluated(c->last[0], 50) > n1,
                  "K = 2 costs more: %ld rows vs %ld", k2.rows_candidates, k1.rows_candidates);
            CHECK(k2.rows_candidates < ex.rows_candidates / 2, "and well under exhaustive: %ld vs %ld rows",
                  k2.rows_candidates, ex.rows_candidates);
        }
    }
    /* two pairs: each pair's own peaks (the second single-peaked at 33) */
    single_peak(c, 1, 50, 33);
    plan_counts two;
    if (run("adaptive:10:2", c, 2, &two))
        CHECK(two.chosen[0] == 8 && two.chosen[1] == 33, "two pairs: 8 and 33 (%d, %d)", two.chosen[0],
              two.chosen[1]);
    free(c);
}

/* ---- independent references of the rounds ---- */

/* Today's adaptive:M before K: bisection around the metric's choice alone. */
static int ref_bisect_best(const curves *c, int T, int M, unsigned char *ev) {
    unsigned char want[MAX_T];
    search_geometric_set(T, M, ev);
    for (;;) {
        search_choice ch =
            search_metric_choose_among(c->edit[0], c->background[0], T, ev, NULL, NULL, NULL, NULL);
        if (!search_bisect(T, ch.best + 1, ev, want)) return ch.best + 1;
        for (int k = 0; k < T; k++) ev[k] |= want[k];
    }
}

/* The K best local peaks by sorting every evaluated level by (total desc, k
 * asc) and keeping those >= both evaluated neighbours. */
static int ref_bisect_peaks(const curves *c, int T, int M, int K, unsigned char *ev) {
    unsigned char want[MAX_T], mid[MAX_T];
    search_geometric_set(T, M, ev);
    for (;;) {
        float t[MAX_T];
        search_choice ch = search_metric_choose_among(c->edit[0], c->background[0], T, ev, NULL, NULL, NULL, t);
        int lv[MAX_T], n = 0;
        for (int k = 1; k <= T; k++)
            if (ev[k - 1]) lv[n++] = k;
        int order[MAX_T];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 1; i < n; i++) /* insertion sort: total desc, then k asc */
            for (int j = i; j > 0; j--) {
                float a = t[lv[order[j - 1]] - 1], b = t[lv[order[j]] - 1];
                if (b > a || (b == a && order[j] < order[j - 1])) {
                    int x = order[j];
                    order[j] = order[j - 1], order[j - 1] = x;
                } else break;
            }
        memset(want, 0, sizeof want);
        int taken = 0, more = 0;
        for (int i = 0; i < n && taken < K; i++) {
            int q = order[i], k = lv[q];
            if (q > 0 && t[lv[q - 1] - 1] > t[k - 1]) continue;
            if (q + 1 < n && t[lv[q + 1] - 1] > t[k - 1]) continue;
            taken++;
            more += search_bisect(T, k, ev, mid) > 0;
            for (int j = 0; j < T; j++) want[j] |= mid[j];
        }
        if (!more) return ch.best + 1;
        for (int k = 0; k < T; k++) ev[k] |= want[k];
    }
}

/* Random curves on a coarse grid of values (ties and plateaus happen), with
 * a non-flat background score so the renormalisation matters. */
static void random_curve(curves *c, int T, unsigned *seed) {
    c->T = T;
    for (int k = 0; k < T; k++) {
        *seed = *seed * 1103515245u + 12345u;
        c->edit[0][k] = (float)((*seed >> 16) % 7);
        *seed = *seed * 1103515245u + 12345u;
        c->background[0][k] = -(float)((*seed >> 16) % 5);
    }
}

static void test_against_references(void) {
    curves *c = calloc(1, sizeof *c);
    unsigned seed = 12345;
    int same1 = 1, sameK = 1, bounds = 1, tried = 0;
    static const int Ts[] = {12, 20, 37, 50, 100};
    static const int Ms[] = {3, 6, 10};
    for (int trial = 0; trial < 40; trial++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                int T = Ts[ti], M = Ms[mi];
                random_curve(c, T, &seed);
                for (int K = 1; K <= 3; K++) {
                    char spec[32];
                    snprintf(spec, sizeof spec, "adaptive:%d:%d", M, K);
                    search_strategy st;
                    oir_error err = {0};
                    if (search_strategy_parse(&st, spec, T, &err) || st.kind != SEARCH_ADAPTIVE) continue;
                    plan_counts pc;
                    if (!run(spec, c, 1, &pc)) return;
                    tried++;
                    unsigned char ev[MAX_T];
                    int k = K == 1 ? ref_bisect_best(c, T, M, ev) : ref_bisect_peaks(c, T, M, K, ev);
                    int agree = k == pc.chosen[0] && memcmp(ev, c->last[0], (size_t)T) == 0;
                    if (K == 1 && !agree && same1)
                        CHECK(0, "%s, T = %d, trial %d: K = 1 differs from bisection around the best", spec, T,
                              trial);
                    if (K > 1 && !agree && sameK)
                        CHECK(0, "%s, T = %d, trial %d: differs from the reference peaks", spec, T, trial);
                    if (K == 1) same1 &= agree;
                    else sameK &= agree;
                    /* the plan's bounds hold the run */
                    oir_params p = oir_default_params();
                    p.steps = T;
                    p.search = spec;
                    plan_setup s;
                    oir_plan pl;
                    if (plan_setup_init(&s, 1, &p, 64, &err) || plan_expected(&s, NULL, &pl, &err)) {
                        CHECK(0, "%s: plan: %s", spec, err.message);
                        continue;
                    }
                    if (!(pl.unet_rows_min <= pc.rows && pc.rows <= pl.unet_rows_max && pl.decodes_min <= pc.decodes &&
                          pc.decodes <= pl.decodes_max) &&
                        bounds) {
                        CHECK(0, "%s, T = %d: run %ld rows %d decodes outside [%ld, %ld] [%d, %d]", spec, T, pc.rows,
                              pc.decodes, pl.unet_rows_min, pl.unet_rows_max, pl.decodes_min, pl.decodes_max);
                        bounds = 0;
                    }
                }
            }
    CHECK(tried > 500, "%d runs compared", tried);
    CHECK(same1, "adaptive:M:1 evaluates and chooses exactly as bisection around the best alone");
    CHECK(sameK, "adaptive:M:K (K = 2, 3) evaluates and chooses as the reference K best local peaks");
    CHECK(bounds, "the plan's bounds hold every run");
    free(c);
}

static void test_expected(void) {
    static const int Ts[] = {20, 50, 200};
    oir_error err = {0};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
        for (int n_pairs = 1; n_pairs <= 2; n_pairs++) {
            long rows[4] = {0};
            for (int K = 1; K <= 3; K++) {
                char spec[32];
                snprintf(spec, sizeof spec, "adaptive:8:%d", K);
                oir_params p = oir_default_params();
                p.steps = Ts[ti];
                p.search = spec;
                plan_setup s;
                oir_plan pl;
                if (!CHECK(plan_setup_init(&s, n_pairs, &p, 64, &err) == OIR_OK &&
                               plan_expected(&s, NULL, &pl, &err) == OIR_OK,
                           "%s: %s", spec, err.message))
                    continue;
                rows[K] = pl.unet_rows_total;
                CHECK(pl.unet_rows_min <= pl.unet_rows_total && pl.unet_rows_total <= pl.unet_rows_max &&
                          pl.decodes_min <= pl.decodes && pl.decodes <= pl.decodes_max,
                      "%s, T = %d, %d pair(s): expected %ld rows, %d decodes within [%ld, %ld], [%d, %d]", spec,
                      Ts[ti], n_pairs, pl.unet_rows_total, pl.decodes, pl.unet_rows_min, pl.unet_rows_max,
                      pl.decodes_min, pl.decodes_max);
            }
            CHECK(rows[2] > rows[1] && rows[3] >= rows[2],
                  "T = %d, %d pair(s): a second peak refined costs more (K = 1, 2, 3: %ld, %ld, %ld rows)", Ts[ti],
                  n_pairs, rows[1], rows[2], rows[3]);
        }
}

int main(void) {
    test_single_peaks();
    test_bimodal();
    test_against_references();
    test_expected();
    return th_summary();
}
