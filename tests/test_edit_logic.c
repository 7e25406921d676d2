/* The model-free parts of OIR: search metric arithmetic, the parallel
 * schedule, prompt substitution. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "edit/prompts.h"
#include "edit/schedule.h"
#include "edit/search_metric.h"
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

static void test_schedule(int T) {
    int rows = schedule_rows(T), calls = schedule_calls(T);
    int steps_done[256] = {0}, busy = 0;
    int ok_order = 1;
    for (int c = 0; c < calls; c++)
        for (int r = 0; r < rows; r++) {
            schedule_slot s = schedule_slot_at(T, r, c);
            if (!s.active) continue;
            busy++;
            /* steps of one candidate come in order, on consecutive calls */
            if (s.step != steps_done[s.candidate]) ok_order = 0;
            if (s.sched_index != T - s.candidate + s.step) ok_order = 0;
            if (s.starts != (s.step == 0) || s.finishes != (s.step == s.candidate - 1)) ok_order = 0;
            steps_done[s.candidate]++;
        }
    int complete = 1;
    for (int k = 1; k <= T; k++) complete &= steps_done[k] == k;
    CHECK(ok_order, "T=%d: steps in order with matching scheduler indices", T);
    CHECK(complete, "T=%d: every candidate k gets exactly k steps", T);
    CHECK(busy == T * (T + 1) / 2, "T=%d: total work %d == T(T+1)/2 = %d", T, busy, T * (T + 1) / 2);
    if (T % 2 == 0 && T > 1)
        CHECK(busy == rows * calls, "T=%d: no idle slot (%d of %d busy)", T, busy, rows * calls);
    CHECK(T <= 1 || calls == T + 1, "T=%d: T+1 calls", T);
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
    CHECK(sheet_render(&out, c, T, e, b, t, 3, "test", &err) == OIR_OK, "sheet: %s", err.message);
    /* 10 columns of 96 px thumbnails (32 px upscaled) in 2 rows, plot beneath */
    CHECK(out.width >= 10 * 96 && out.height > 2 * 96 + 150, "sheet size %dx%d", out.width, out.height);
    /* the chosen candidate (index 3) is framed in red: pixel just left of its thumbnail */
    int x = 6 + 3 * (96 + 6) - 2, y = 22 + 10;
    const float *px = out.data + ((size_t)y * out.width + x) * 3;
    CHECK(px[0] > 0.8f && px[1] < 0.2f, "red frame around the chosen candidate");
    image_free(&out);
    CHECK(sheet_render(&out, c, T, e, b, t, T, "bad", &err) == OIR_E_ARG, "chosen index out of range refused");
    for (int k = 0; k < T; k++) image_free(&c[k]);
}

int main(void) {
    test_sheet();
    test_metric();
    for (int T = 1; T <= 52; T++) test_schedule(T);
    test_prompts();
    return th_summary();
}
