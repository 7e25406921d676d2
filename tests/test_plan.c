/* Planning a run (include/oir.h "Planning a run", src/edit/plan.c): on the
 * shipped tiny model and demo scene, for every search strategy, one and two
 * pairs, batched and serial candidates, a memory budget that splits batches,
 * guidance 1, without kept candidates, and with steps picked (--pick) for
 * one or every pair:
 *  - replaying the real run's scores through the planner gives exactly the
 *    run's counters (UNet rows, search rows and calls, decodes, choices);
 *  - oir_plan_run's bounds hold the real counts, and exact plans equal them;
 *  - the progress callback: every stage starts at done = 0, the VAE encode is
 *    a stage, decodes and scoring count in one run-wide stage whose last
 *    tick is the run's own total.
 * Also the calibration (measured, positive) and its interpolation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/plan.h"
#include "edit/search_metric.h"
#include "harness.h"
#include "oir.h"

#define SRC "a red circle on the left and a blue triangle on the right on a gray background"
#define T_STEPS 8

/* ---- the progress callback's record ---- */
typedef struct {
    char stage[64];
    int done, total;
} tick_rec;

typedef struct {
    tick_rec t[4096];
    int n, overflow;
} ticks;

static int record(void *user, const char *stage, int done, int total) {
    ticks *k = user;
    if (k->n == 4096) {
        k->overflow = 1;
        return 0;
    }
    snprintf(k->t[k->n].stage, sizeof k->t[0].stage, "%s", stage);
    k->t[k->n].done = done;
    k->t[k->n].total = total;
    k->n++;
    return 0;
}

/* ---- the replay chooser: the search metric over the real run's scores ---- */
typedef struct {
    const oir_result *r;
    int window;  /* short-refine: W */
    int unknown; /* the plan evaluated a candidate the run did not score */
} replay;

static int replay_choose(void *user, int pair, int T, const unsigned char *evaluated, unsigned char flag) {
    replay *rp = user;
    size_t o = (size_t)pair * T;
    const unsigned char *ran = rp->r->evaluated + o;
    unsigned char choosable[1000];
    for (int k = 0; k < T; k++) {
        if (evaluated[k] && (isnan(rp->r->edit_score[o + k]) || !ran[k])) rp->unknown = 1;
        choosable[k] = flag ? evaluated[k] == flag : evaluated[k] != 0;
    }
    if (rp->window > 0 && flag == 2) {
        /* short-refine: where the refinement re-scored a short level the run
         * kept only the T-step score, so the short stage's choice is taken
         * from what the run refined: the level whose window it is */
        for (int m = 1; m <= T; m++) {
            if (!choosable[m - 1]) continue;
            int match = 1;
            for (int k = 1; k <= T && match; k++) {
                int in = k >= m - rp->window && k <= m + rp->window;
                match = in == (ran[k - 1] == 1);
            }
            if (match) return m;
        }
        return 0;
    }
    search_choice c = rp->r->guard ? search_metric_choose_guarded(rp->r->edit_score + o, rp->r->background_score + o, T,
                                                                  evaluated, choosable, rp->r->source_edit_score[pair],
                                                                  rp->r->guard_margin, NULL, NULL, NULL, NULL)
                                   : search_metric_choose_among(rp->r->edit_score + o, rp->r->background_score + o, T,
                                                                evaluated, choosable, NULL, NULL, NULL);
    return c.best + 1;
}

/* adaptive:M:K's peaks: as the engine finds them, on the run's scores
 * normalised over what the plan has evaluated so far */
static int replay_peaks(void *user, int pair, int T, const unsigned char *evaluated, int K, int *peaks) {
    replay *rp = user;
    size_t o = (size_t)pair * T;
    float total[1000];
    search_metric_choose_among(rp->r->edit_score + o, rp->r->background_score + o, T, evaluated, NULL, NULL, NULL,
                               total);
    return search_peaks(T, total, evaluated, K, peaks);
}

typedef struct {
    const char *search;
    int n_pairs, parallel, keep, small_budget;
    float guidance;
    int forced[2]; /* oir_params.forced_steps (--pick); 0: searched */
} case_spec;

/* oir_params.low_pick and the no-edit guard of a case (guard > 0: on, with that margin) */
typedef struct {
    int low_pick;
    float guard;
} case_extra;

static unsigned long long small_budget;

static void check_progress(const char *name, const ticks *k, const oir_result *r, int scored, int exhaustive) {
    CHECK(!k->overflow, "%s: progress record fits", name);
    /* every stage's first tick (and every restart of a stage) is done = 0 */
    char prev[64] = "";
    int prev_done = -1, starts_ok = 1, encode_start = 0, encode_end = 0, dec_ok = 1, dec_last_done = 0,
        dec_last_total = 0, dec_first_total = -1, sc_last_done = 0, sc_last_total = 0, sc_ok = 1;
    for (int i = 0; i < k->n; i++) {
        const tick_rec *t = &k->t[i];
        int same = !strcmp(prev, t->stage);
        if (!strcmp(t->stage, "decode")) {
            if (dec_first_total < 0) dec_first_total = t->total;
            if (t->done < dec_last_done || t->done > t->total) dec_ok = 0; /* one bar: never restarts */
            if (t->done > dec_last_done && dec_last_done == dec_last_total && dec_last_total > 0)
                dec_ok = 0; /* nor goes on after it looked finished */
            dec_last_done = t->done, dec_last_total = t->total;
        } else if (!strcmp(t->stage, "scoring")) {
            if (t->done < sc_last_done || t->done > t->total) sc_ok = 0;
            if (t->done > sc_last_done && sc_last_done == sc_last_total && sc_last_total > 0) sc_ok = 0;
            sc_last_done = t->done, sc_last_total = t->total;
        } else if (!same || t->done < prev_done) {
            if (t->done != 0) starts_ok = 0;
        }
        if (!strcmp(t->stage, "encode")) encode_start |= t->done == 0 && t->total == 1, encode_end |= t->done == 1;
        snprintf(prev, sizeof prev, "%s", t->stage);
        prev_done = t->done;
    }
    CHECK(starts_ok, "%s: every stage starts with done = 0", name);
    CHECK(encode_start && encode_end, "%s: the VAE encode is a stage (0/1, 1/1)", name);
    if (exhaustive) /* the plan knows the decodes: the bar's total is right from its first tick */
        CHECK(dec_first_total == r->decodes, "%s: first decode tick's total %d == the run's %d", name, dec_first_total,
              r->decodes);
    CHECK(dec_ok && dec_last_done == r->decodes && dec_last_total == r->decodes,
          "%s: decodes in one bar, ending at %d/%d = the run's %d", name, dec_last_done, dec_last_total, r->decodes);
    CHECK(sc_ok && sc_last_done == sc_last_total && sc_last_done == scored,
          "%s: scoring in one bar ending at %d/%d (%d scored)", name, sc_last_done, sc_last_total, scored);
}

static void run_case(oir_context *ctx, const unsigned char *rgb, int size, const oir_pair *pairs, const case_spec *c,
                     case_extra x) {
    char name[128];
    char picked[48] = "";
    if (c->forced[0] || c->forced[1]) snprintf(picked, sizeof picked, ", picked %d,%d", c->forced[0], c->forced[1]);
    snprintf(name, sizeof name, "%s, %d pair%s, %s%s%s%s%s%s%s", c->search, c->n_pairs, c->n_pairs > 1 ? "s" : "",
             c->parallel ? "parallel" : "serial", c->keep ? "" : ", no kept candidates",
             c->small_budget ? ", split batches" : "", c->guidance == 1.0f ? ", guidance 1" : "", picked,
             x.low_pick == OIR_LOW_PICK_REINVERT ? ", reinvert" : "", x.guard > 0 ? ", guard" : "");
    oir_params p = oir_default_params();
    p.steps = T_STEPS;
    p.reassembly_step = 5; /* above some choices (R is lowered), and R + J > T (J is lowered) */
    p.reinversion_steps = 4;
    p.search = c->search;
    p.parallel = c->parallel;
    p.keep_candidates = c->keep;
    p.guidance = c->guidance;
    p.low_pick = x.low_pick;
    p.guard = x.guard > 0;
    p.guard_margin = x.guard;
    if (c->small_budget) p.memory_budget = small_budget;
    int forced[2] = {c->forced[0], c->forced[1]};
    if (forced[0] || forced[1]) p.forced_steps = forced;
    ticks *k = calloc(1, sizeof *k);
    p.progress = record;
    p.progress_user = k;
    oir_result *r = NULL;
    oir_error err = {0};
    int rc = c->n_pairs == 1 ? oir_search(ctx, rgb, size, size, SRC, pairs, &p, &r, &err)
                             : oir_edit(ctx, rgb, size, size, SRC, pairs, c->n_pairs, &p, &r, &err);
    if (!CHECK(rc == OIR_OK, "%s: run: %s", name, err.message)) {
        free(k);
        return;
    }
    /* the planner replaying the run's own choices gives its exact counters */
    plan_setup s;
    plan_counts pc;
    replay rp = {r, 0, 0};
    int scored = -1;
    if (CHECK(plan_setup_init(&s, c->n_pairs, &p, r->max_unet_batch, &err) == OIR_OK, "%s: setup: %s", name,
              err.message) &&
        (rp.window = s.strategy.kind == SEARCH_SHORT_REFINE ? s.strategy.window : 0, 1) &&
        CHECK(plan_simulate(&s, replay_choose, replay_peaks, &rp, NULL, &pc, &err) == OIR_OK, "%s: simulate: %s", name,
              err.message)) {
        scored = (int)pc.units[OIR_STAGE_SCORING];
        CHECK(!rp.unknown, "%s: the replay evaluates exactly the candidates the run scored", name);
        CHECK(pc.rows == r->unet_rows_total, "%s: replayed UNet rows %ld == run's %ld", name, pc.rows,
              r->unet_rows_total);
        CHECK(pc.rows_candidates == r->unet_rows, "%s: replayed search rows %ld == run's %ld", name,
              pc.rows_candidates, r->unet_rows);
        CHECK(pc.calls_candidates == r->unet_calls, "%s: replayed search UNet calls %ld == run's %ld", name,
              pc.calls_candidates, r->unet_calls);
        CHECK(pc.decodes == r->decodes, "%s: replayed decodes %d == run's %d", name, pc.decodes, r->decodes);
        int same = 1;
        for (int i = 0; i < c->n_pairs; i++) same &= pc.chosen[i] == r->chosen_step[i];
        CHECK(same, "%s: replayed choices == run's", name);
    }
    /* the public plan: bounds hold the run, exact plans equal it */
    oir_plan pl;
    if (CHECK(oir_plan_run(ctx, size, size, c->n_pairs, &p, NULL, &pl, &err) == OIR_OK, "%s: plan: %s", name,
              err.message)) {
        printf("  %-48s run: %5ld rows %3d decodes | plan: %5ld rows [%ld, %ld] %3d decodes [%d, %d]%s\n", name,
               r->unet_rows_total, r->decodes, pl.unet_rows_total, pl.unet_rows_min, pl.unet_rows_max, pl.decodes,
               pl.decodes_min, pl.decodes_max, pl.exact ? " exact" : "");
        CHECK(pl.unet_rows_min <= r->unet_rows_total && r->unet_rows_total <= pl.unet_rows_max,
              "%s: rows %ld within the plan's [%ld, %ld]", name, r->unet_rows_total, pl.unet_rows_min,
              pl.unet_rows_max);
        CHECK(pl.decodes_min <= r->decodes && r->decodes <= pl.decodes_max, "%s: decodes %d within [%d, %d]", name,
              r->decodes, pl.decodes_min, pl.decodes_max);
        CHECK(pl.unet_rows_min <= pl.unet_rows_total && pl.unet_rows_total <= pl.unet_rows_max,
              "%s: expected rows within the bounds", name);
        if (pl.exact)
            CHECK(pl.unet_rows_total == r->unet_rows_total && pl.decodes == r->decodes &&
                      pl.candidate_rows == r->unet_rows,
                  "%s: exact plan == run (rows %ld/%ld, decodes %d/%d)", name, pl.unet_rows_total,
                  r->unet_rows_total, pl.decodes, r->decodes);
        CHECK(pl.max_unet_batch == r->max_unet_batch, "%s: the plan's batch limit %d == run's %d", name,
              pl.max_unet_batch, r->max_unet_batch);
        CHECK(pl.seconds < 0 && pl.seconds_per_unet_row < 0, "%s: no calibration, no seconds", name);
        CHECK(!strcmp(pl.search, r->search), "%s: plan names the strategy %s", name, pl.search);
    }
    check_progress(name, k, r, scored, !strcmp(c->search, "exhaustive"));
    free(k);
    oir_result_free(r);
}

static void test_calibration(oir_context *ctx, int size) {
    oir_calibration cal;
    oir_error err = {0};
    oir_params p = oir_default_params();
    if (!CHECK(oir_calibrate(ctx, size, size, &p, &cal, &err) == OIR_OK, "calibrate: %s", err.message)) return;
    printf("  calibration %dx%d, %d threads: UNet %d rows %.4f s, %d rows %.4f s, %d rows %.4f s; decode %.4f s, "
           "encode %.4f s, prompt %.4f s, score %.5f s, clip text %.5f s\n",
           cal.width, cal.height, cal.threads, cal.unet_rows[0], cal.unet_seconds[0], cal.unet_rows[1],
           cal.unet_seconds[1], cal.unet_rows[2], cal.unet_seconds[2], cal.decode_seconds, cal.encode_seconds,
           cal.text_seconds, cal.score_seconds, cal.clip_text_seconds);
    CHECK(cal.width == size && cal.height == size && cal.threads == oir_get_threads(), "calibration records its setting");
    CHECK(cal.n_unet == 3 && cal.unet_rows[0] == 1 && cal.unet_rows[1] == 16 && cal.unet_rows[2] == 64,
          "tiny model: 1, 16 and 64 rows timed (%d points)", cal.n_unet);
    CHECK(cal.unet_seconds[0] > 0 && cal.unet_seconds[1] > 0 && cal.decode_seconds > 0 && cal.encode_seconds > 0 &&
              cal.text_seconds > 0 && cal.score_seconds > 0 && cal.clip_text_seconds > 0,
          "every measured time is positive");
    /* a plan with it has seconds that add up */
    oir_plan pl;
    p.steps = T_STEPS;
    if (CHECK(oir_plan_run(ctx, size, size, 2, &p, &cal, &pl, &err) == OIR_OK, "plan: %s", err.message)) {
        double sum = 0;
        for (int i = 0; i < OIR_STAGE_COUNT; i++) sum += pl.stage_seconds[i];
        CHECK(pl.seconds > 0 && fabs(sum - pl.seconds) < 1e-9 * (1 + sum), "plan seconds %.3f = its stages' %.3f",
              pl.seconds, sum);
        CHECK(fabs(pl.stage_seconds[OIR_STAGE_DECODE] - pl.decodes * cal.decode_seconds) < 1e-9,
              "decode seconds = decodes x the measured decode");
        CHECK(pl.seconds_per_unet_row > 0, "seconds per UNet row %.4f", pl.seconds_per_unet_row);
    }
    /* bad arguments */
    CHECK(oir_calibrate(ctx, size + 1, size + 1, &p, &cal, &err) != OIR_OK, "calibration at a size off the grid fails");
    p.search = "fast";
    CHECK(oir_plan_run(ctx, size, size, 2, &p, NULL, &pl, &err) == OIR_E_ARG && strstr(err.message, "fast"),
          "plan with an unknown strategy: %s", err.message);
    p.search = NULL;
    CHECK(oir_plan_run(ctx, size, size, 0, &p, NULL, &pl, &err) == OIR_E_ARG, "plan with 0 pairs: %s", err.message);
}

static void test_interpolation(void) {
    oir_calibration c;
    memset(&c, 0, sizeof c);
    c.n_unet = 2;
    c.unet_rows[0] = 1, c.unet_seconds[0] = 0.1;
    c.unet_rows[1] = 16, c.unet_seconds[1] = 1.0;
    CHECK(fabs(oir_calibration_unet_seconds(&c, 1) - 0.1) < 1e-12, "1 row: the measured call");
    CHECK(fabs(oir_calibration_unet_seconds(&c, 16) - 1.0) < 1e-12, "16 rows: the measured call");
    CHECK(fabs(oir_calibration_unet_seconds(&c, 6) - (0.1 + 0.9 * 5 / 15)) < 1e-12, "6 rows: between the points");
    CHECK(fabs(oir_calibration_unet_seconds(&c, 31) - 1.9) < 1e-12, "31 rows: the last slope beyond the last point");
    c.unet_rows[1] = 2, c.unet_seconds[1] = 0.19; /* a narrow segment (a large model): per row beyond */
    CHECK(fabs(oir_calibration_unet_seconds(&c, 6) - 0.57) < 1e-12, "6 rows past 1 and 2: the cost per row of 2");
    c.unet_rows[1] = 16, c.unet_seconds[1] = 0.05; /* noise: a batch cheaper than one row */
    CHECK(fabs(oir_calibration_unet_seconds(&c, 32) - 0.1) < 1e-12, "a falling last segment: proportional beyond");
    c.n_unet = 1;
    CHECK(fabs(oir_calibration_unet_seconds(&c, 3) - 0.3) < 1e-12, "one point: proportional");
    c.n_unet = 0;
    CHECK(oir_calibration_unet_seconds(&c, 4) == 0, "no points: 0");
    CHECK(oir_stage_kind("candidates (parallel)") == OIR_STAGE_CANDIDATES && oir_stage_kind("decode") == OIR_STAGE_DECODE &&
              oir_stage_kind("render chosen") == OIR_STAGE_CANDIDATES && oir_stage_kind("encode") == OIR_STAGE_ENCODE &&
              oir_stage_kind("denoise") == OIR_STAGE_DENOISE && oir_stage_kind("nonsense") == -1,
          "stage names map to their kinds");
}

/* The bounds of the data-dependent strategies are tight where they can be:
 * coarse's refinement around its largest step, adaptive's geometric levels. */
static void test_bounds(void) {
    oir_params p = oir_default_params();
    plan_setup s;
    oir_plan pl;
    oir_error err = {0};
    p.steps = 50;
    p.search = "exhaustive";
    if (!plan_setup_init(&s, 1, &p, 256, &err) && !plan_expected(&s, NULL, &pl, &err))
        CHECK(pl.exact && pl.unet_rows_total == 50 + 2 * 1275 && pl.decodes == 50,
              "T = 50 exhaustive, one pair: 50 + 2 x 1275 rows, 50 decodes, exact (%ld, %d)", pl.unet_rows_total,
              pl.decodes);
    p.search = "adaptive:10";
    if (!plan_setup_init(&s, 1, &p, 256, &err) && !plan_expected(&s, NULL, &pl, &err)) {
        /* levels 1 2 3 4 6 9 14 21 32 50: 142 sample-steps (README) */
        CHECK(!pl.exact && pl.unet_rows_min == 50 + 2 * 142 && pl.unet_rows_max == 50 + 2 * 1275,
              "adaptive:10 at T = 50: from its levels (%ld) to every step (%ld)", pl.unet_rows_min, pl.unet_rows_max);
        CHECK(pl.unet_rows_total > pl.unet_rows_min && pl.unet_rows_total < pl.unet_rows_max / 3,
              "adaptive:10: expected %ld rows, a fraction of exhaustive", pl.unet_rows_total);
    }
    p.guidance = 1.0f;
    p.search = "exhaustive";
    if (!plan_setup_init(&s, 1, &p, 256, &err) && !plan_expected(&s, NULL, &pl, &err))
        CHECK(pl.unet_rows_total == 50 + 1275, "guidance 1: one UNet row a step (%ld)", pl.unet_rows_total);
}

int main(void) {
    oir_error err = {0};
    oir_context *ctx = NULL;
    oir_context_params cp = oir_context_default_params();
    test_interpolation();
    test_bounds();
    if (!CHECK(oir_context_load(&ctx, &cp, &err) == OIR_OK, "%s", err.message)) return th_summary();
    /* half the native side: a quarter of the UNet work, the same code paths */
    int size = oir_context_image_size(ctx) / 2;
    unsigned char *rgb = NULL, *m0 = NULL, *m1 = NULL;
    if (!CHECK(oir_image_load("examples/shapes/demo.png", size, size, &rgb, NULL, NULL, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(oir_mask_load("examples/shapes/demo_mask0.png", size, size, &m0, NULL, NULL, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(oir_mask_load("examples/shapes/demo_mask1.png", size, size, &m1, NULL, NULL, &err) == OIR_OK, "%s", err.message))
        goto done;
    oir_pair pairs[2] = {{"red circle", "green square", m0, NULL}, {"blue triangle", "yellow star", m1, NULL}};
    /* a budget that splits the CFG batches into calls of 2-5 rows */
    for (unsigned long long mb = 1; mb <= 64 && !small_budget; mb++) {
        oir_plan pl;
        oir_params p = oir_default_params();
        p.steps = T_STEPS;
        p.memory_budget = mb << 20;
        if (!oir_plan_run(ctx, size, size, 2, &p, NULL, &pl, &err) && pl.max_unet_batch >= 2 && pl.max_unet_batch <= 5)
            small_budget = p.memory_budget;
    }
    CHECK(small_budget > 0, "a memory budget with 2-5 rows a call exists (%llu MiB)", small_budget >> 20);
    static const case_spec cases[] = {
        {"exhaustive", 1, 1, 1, 0, 7.5f, {0, 0}},   {"exhaustive", 2, 1, 1, 0, 7.5f, {0, 0}},  {"exhaustive", 2, 0, 1, 0, 7.5f, {0, 0}},
        {"exhaustive", 2, 1, 1, 1, 7.5f, {0, 0}},   {"exhaustive", 1, 1, 0, 0, 7.5f, {0, 0}},  {"coarse:3", 2, 1, 1, 0, 7.5f, {0, 0}},
        {"coarse:3", 1, 0, 1, 0, 7.5f, {0, 0}},     {"coarse:3", 2, 1, 1, 0, 1.0f, {0, 0}},    {"short:4", 2, 1, 1, 0, 7.5f, {0, 0}},
        {"short:4", 1, 1, 1, 1, 7.5f, {0, 0}},      {"short-refine:4:1", 2, 1, 1, 0, 7.5f, {0, 0}},
        {"adaptive:4", 2, 1, 1, 0, 7.5f, {0, 0}},   {"adaptive:4", 1, 0, 1, 0, 7.5f, {0, 0}},  {"adaptive:4", 2, 1, 1, 1, 7.5f, {0, 0}},
        {"adaptive:3:1", 2, 1, 1, 0, 7.5f, {0, 0}}, {"adaptive:3:2", 2, 1, 1, 0, 7.5f, {0, 0}}, {"adaptive:3:3", 1, 0, 1, 0, 7.5f, {0, 0}},
        /* --pick: one pair picked, both, without kept candidates, one pair */
        {"exhaustive", 2, 1, 1, 0, 7.5f, {3, 0}}, {"adaptive:4", 2, 1, 1, 0, 7.5f, {0, 6}},
        {"short:4", 2, 1, 1, 0, 7.5f, {2, 0}},    {"short-refine:4:1", 2, 0, 1, 0, 7.5f, {0, 5}},
        {"coarse:3", 2, 1, 1, 0, 7.5f, {4, 7}},   {"coarse:3", 2, 1, 0, 0, 7.5f, {4, 7}},
        {"exhaustive", 1, 1, 1, 0, 7.5f, {5, 0}}, {"exhaustive", 1, 1, 0, 0, 7.5f, {5, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(ctx, rgb, size, pairs, &cases[i], (case_extra){OIR_LOW_PICK_LOWER, 0});
    static const struct {
        case_spec c;
        case_extra x;
    } extra[] = {
        /* low_pick reinvert (R = 5 is above most choices): searched, picked with and without kept
         * candidates (a picked candidate not rendered is denoised by the reassembly) */
        {{"exhaustive", 2, 1, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_REINVERT, 0}},
        {{"adaptive:4", 2, 0, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_REINVERT, 0}},
        {{"short:4", 2, 1, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_REINVERT, 0}},
        {{"coarse:3", 2, 1, 0, 0, 7.5f, {2, 0}}, {OIR_LOW_PICK_REINVERT, 0}},
        {{"exhaustive", 2, 1, 0, 0, 7.5f, {2, 7}}, {OIR_LOW_PICK_REINVERT, 0}},
        {{"exhaustive", 2, 1, 1, 1, 7.5f, {4, 3}}, {OIR_LOW_PICK_REINVERT, 0}},
        /* the no-edit guard: the replay chooses with it too */
        {{"exhaustive", 2, 1, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_LOWER, 0.05f}},
        {{"adaptive:4", 1, 1, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_LOWER, 0.05f}},
        {{"short-refine:4:1", 2, 1, 1, 0, 7.5f, {0, 0}}, {OIR_LOW_PICK_REINVERT, 0.05f}},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) run_case(ctx, rgb, size, pairs, &extra[i].c, extra[i].x);
    test_calibration(ctx, size);
done:
    oir_free(rgb);
    oir_free(m0);
    oir_free(m1);
    oir_context_free(ctx);
    return th_summary();
}
