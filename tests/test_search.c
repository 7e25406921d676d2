/* Search strategies (src/edit/search_plan.h) on the shipped tiny model and
 * demo scene: each gives the exhaustive search's choice on the scene's two
 * pairs, for a fraction of the UNet rows (counted by the engine), marks what
 * it evaluated, and runs the same on the serial path; on a pair whose metric
 * has two local peaks adaptive:6:2 finds the step adaptive:6:1 misses; bad
 * specs are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oir.h"

#define SRC "a red circle on the left and a blue triangle on the right on a gray background"
#define T_STEPS 12 /* small: the whole file runs in seconds */

typedef struct {
    int chosen[2];
    long rows;
    int decodes;
    float total_at_choice[2]; /* exhaustive's normalised total at this choice */
} outcome;

static int run(oir_context *ctx, const unsigned char *rgb, int size, oir_pair *pairs, const char *search,
               int parallel, outcome *o, oir_result **keep) {
    oir_params p = oir_default_params();
    p.steps = T_STEPS;
    p.reassembly_step = 4;
    p.reinversion_steps = 4;
    p.search = search;
    p.parallel = parallel;
    oir_result *r = NULL;
    oir_error err = {0};
    if (!CHECK(oir_edit(ctx, rgb, size, size, SRC, pairs, 2, &p, &r, &err) == OIR_OK, "%s: %s", search, err.message))
        return 0;
    o->chosen[0] = r->chosen_step[0];
    o->chosen[1] = r->chosen_step[1];
    o->rows = r->unet_rows;
    o->decodes = r->decodes;
    printf("  %-22s %s: steps %d, %d; search rows %ld; decodes %d\n", search, parallel ? "parallel" : "serial",
           o->chosen[0], o->chosen[1], o->rows, o->decodes);
    if (keep) *keep = r;
    else oir_result_free(r);
    return 1;
}

int main(void) {
    oir_error err = {0};
    oir_context *ctx = NULL;
    oir_context_params cp = oir_context_default_params();
    if (!CHECK(oir_context_load(&ctx, &cp, &err) == OIR_OK, "%s", err.message)) return th_summary();
    int size = oir_context_image_size(ctx);
    unsigned char *rgb = NULL, *m0 = NULL, *m1 = NULL;
    if (!CHECK(oir_image_load("examples/shapes/demo.png", size, size, &rgb, NULL, NULL, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(oir_mask_load("examples/shapes/demo_mask0.png", size, size, &m0, NULL, NULL, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(oir_mask_load("examples/shapes/demo_mask1.png", size, size, &m1, NULL, NULL, &err) == OIR_OK, "%s", err.message))
        goto done;
    oir_pair pairs[2] = {{"red circle", "green square", m0, NULL}, {"blue triangle", "yellow star", m1, NULL}};

    oir_result *ex = NULL;
    outcome full;
    if (!run(ctx, rgb, size, pairs, "exhaustive", 1, &full, &ex)) goto done;
    CHECK(full.rows == 2L * 2 * T_STEPS * (T_STEPS + 1) / 2, "exhaustive rows = pairs x T(T+1)/2 x 2 branches");
    CHECK(full.decodes == 2 * T_STEPS + 1, "exhaustive: every candidate decoded once, plus the result (%d)",
          full.decodes);
    for (int k = 0; k < 2 * T_STEPS; k++) CHECK(ex->evaluated[k] == 1, "exhaustive evaluates every candidate");
    if (th_failed) goto done_ex;

    /* strategies expected to keep the exhaustive choice on this scene, and
     * the most rows each may use (measured, with margin) */
    static const struct {
        const char *spec;
        double max_fraction;
    } strategies[] = {{"coarse:3", 0.75}, {"adaptive:6:1", 0.75}, {"adaptive:6:2", 0.75}};
    for (size_t s = 0; s < sizeof strategies / sizeof strategies[0]; s++) {
        outcome o;
        oir_result *r = NULL;
        if (!run(ctx, rgb, size, pairs, strategies[s].spec, 1, &o, &r)) continue;
        for (int i = 0; i < 2; i++) {
            int k = o.chosen[i];
            float best = ex->total[i * T_STEPS + full.chosen[i] - 1], here = ex->total[i * T_STEPS + k - 1];
            /* the same step, or one whose exhaustive total is within 0.01 of the best */
            CHECK(k == full.chosen[i] || best - here <= 0.01f,
                  "%s pair %d: step %d agrees with exhaustive's %d (totals %.3f vs %.3f)", strategies[s].spec,
                  i + 1, k, full.chosen[i], here, best);
            CHECK(r->evaluated[i * T_STEPS + k - 1] == 1, "%s pair %d: the choice was scored on the T-step schedule",
                  strategies[s].spec, i + 1);
        }
        CHECK(o.rows <= strategies[s].max_fraction * full.rows, "%s: %ld rows <= %.2f x %ld", strategies[s].spec,
              o.rows, strategies[s].max_fraction, full.rows);
        int skipped = 0;
        for (int k = 0; k < 2 * T_STEPS; k++) {
            skipped += r->evaluated[k] == 0;
            if (r->evaluated[k] == 0)
                CHECK(isnan(r->edit_score[k]) && isnan(r->total[k]), "skipped candidates have NaN scores");
        }
        CHECK(skipped > 0, "%s skips candidates", strategies[s].spec);
        CHECK(!strcmp(r->search, strategies[s].spec), "result names the strategy (%s)", r->search);
        oir_result_free(r);
    }
    /* short: the choice comes from the short schedule, rendered on T */
    outcome o;
    oir_result *r = NULL;
    if (run(ctx, rgb, size, pairs, "short:5", 1, &o, &r)) {
        int on_short = 0;
        for (int k = 0; k < 2 * T_STEPS; k++) on_short += r->evaluated[k] == 2;
        CHECK(on_short == 2 * 5, "short:5 scores 5 candidates a pair on its schedule (%d)", on_short);
        for (int i = 0; i < 2; i++) /* ks of 5 at round(12 ks / 5): 2, 5, 7, 10, 12 */
            CHECK(strchr("\x02\x05\x07\x0a\x0c", r->chosen_step[i]) != NULL, "short:5 of 12 chooses a mapped level (%d)",
                  r->chosen_step[i]);
        CHECK(o.rows < full.rows / 2, "short:5: %ld rows < 1/2 of %ld", o.rows, full.rows);
        oir_result_free(r);
    }
    /* the serial path makes the same choices with the same work */
    outcome ser, par;
    if (run(ctx, rgb, size, pairs, "adaptive:6:2", 0, &ser, NULL) &&
        run(ctx, rgb, size, pairs, "adaptive:6:2", 1, &par, NULL))
        CHECK(ser.chosen[0] == par.chosen[0] && ser.chosen[1] == par.chosen[1] && ser.rows == par.rows,
              "adaptive:6:2 serial == parallel (steps and rows)");
    /* a curve with two local peaks: at T = 30 the second pair's metric over
     * adaptive:6's levels (1 2 4 8 15 30 and the midpoints) has two;
     * refining around the best alone (K = 1) settles on the lower one,
     * refining the two best (K = 2) reaches exhaustive's step */
    {
        int chosen[3] = {0, 0, 0};
        long rows[3] = {0, 0, 0};
        static const char *specs[3] = {"exhaustive", "adaptive:6:1", "adaptive:6:2"};
        for (int s = 0; s < 3; s++) {
            oir_params p = oir_default_params();
            p.steps = 30;
            p.search = specs[s];
            p.keep_candidates = 0;
            oir_result *rs = NULL;
            if (!CHECK(oir_search(ctx, rgb, size, size, SRC, pairs + 1, &p, &rs, &err) == OIR_OK, "T = 30 %s: %s",
                       specs[s], err.message))
                break;
            chosen[s] = rs->chosen_step[0];
            rows[s] = rs->unet_rows;
            printf("  T = 30, pair 2 alone, %-13s step %d, search rows %ld\n", specs[s], chosen[s], rows[s]);
            oir_result_free(rs);
        }
        CHECK(chosen[1] != chosen[0], "T = 30: adaptive:6:1 misses exhaustive's step %d (chose %d)", chosen[0],
              chosen[1]);
        CHECK(chosen[2] == chosen[0], "T = 30: adaptive:6:2 finds exhaustive's step %d (chose %d)", chosen[0],
              chosen[2]);
        CHECK(rows[1] < rows[2] && rows[2] < rows[0] / 2, "T = 30: rows K = 1 %ld < K = 2 %ld < exhaustive %ld / 2",
              rows[1], rows[2], rows[0]);
    }
    /* a source prompt past 77 tokens is cut with a warning, as diffusers does */
    {
        char longp[1200];
        snprintf(longp, sizeof longp, "%s", SRC);
        for (int w = 0; w < 80; w++) strcat(longp, " and more");
        oir_params p = oir_default_params();
        p.steps = 3;
        p.reassembly_step = 1;
        p.reinversion_steps = 1;
        oir_result *rl = NULL;
        int rc = oir_edit(ctx, rgb, size, size, longp, pairs, 2, &p, &rl, &err);
        int warned = 0;
        for (int w = 0; rl && w < rl->n_warnings; w++) warned |= strstr(rl->warnings[w], "too long") != NULL;
        CHECK(rc == OIR_OK && warned, "a 180-token prompt runs, cut with a warning (%s)", rc ? err.message : "");
        oir_result_free(rl);
    }
    /* bad strategies: clear errors */
    static const char *bad[] = {"coarse:0", "short:12", "short:30", "fast", "coarse:13", "adaptive:1",
                                "adaptive:6:0", "adaptive:6:2:2"};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        oir_params p = oir_default_params();
        p.steps = T_STEPS;
        p.search = bad[b];
        oir_result *rb = NULL;
        err.message[0] = 0;
        int rc = oir_edit(ctx, rgb, size, size, SRC, pairs, 2, &p, &rb, &err);
        CHECK(rc == OIR_E_ARG && rb == NULL && strstr(err.message, bad[b]), "--search %s refused: %s", bad[b],
              err.message);
    }
done_ex:
    oir_result_free(ex);
done:
    oir_free(rgb);
    oir_free(m0);
    oir_free(m1);
    oir_context_free(ctx);
    return th_summary();
}
