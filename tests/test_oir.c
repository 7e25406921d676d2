/* OIR mechanics on the tiny random pipeline (tests/fixtures/sd): parallel
 * and serial candidates agree, the metric picks the arg-max, and every
 * failure case of the authors' code has its defined behaviour. Edit quality
 * is tested on the trained shapes model in test_shapes_quality. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "edit/candidates.h"
#include "edit/schedule.h"
#include "harness.h"
#include "oir.h"

#define SIZE 16

static unsigned char rgb[SIZE * SIZE * 3], left[SIZE * SIZE], right[SIZE * SIZE], full[SIZE * SIZE],
    none[SIZE * SIZE];

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
            full[i] = 1;
            none[i] = 0;
        }
}

/* Calls and rows of the parallel plan for every candidate of n_pairs pairs. */
static int exhaustive_plan(int T, int n_pairs, int *rows) {
    schedule_item items[2 * 64];
    for (int p = 0; p < n_pairs; p++)
        for (int k = 1; k <= T; k++) items[p * T + k - 1] = (schedule_item){p, k};
    schedule_plan plan;
    oir_error err = {0};
    if (schedule_plan_build(&plan, items, n_pairs * T, &err)) return -1;
    int calls = plan.calls;
    *rows = plan.rows;
    schedule_plan_free(&plan);
    return calls;
}

static void test_parallel_equals_serial(oir_context *ctx, const sd_model *m, int T) {
    sampler s;
    oir_error err = {0};
    if (!CHECK(sampler_init(&s, m, SIZE, T, 0, &err) == OIR_OK, "%s", err.message)) return;
    size_t N = s.lat_n, ctx_n = (size_t)s.ctx_len * s.ctx_dim;
    float *src = malloc(ctx_n * 4), *g1 = malloc(ctx_n * 4), *g2 = malloc(ctx_n * 4);
    float *levels = malloc((T + 1) * N * 4), *ser = malloc(2 * T * N * 4), *par = malloc(2 * T * N * 4);
    sampler_encode_prompt(&s, "a photo of a red circle and a green square", src, &err);
    sampler_encode_prompt(&s, "a photo of a blue circle and a green square", g1, &err);
    sampler_encode_prompt(&s, "a photo of a red circle and a green star", g2, &err);
    for (size_t i = 0; i < N; i++) levels[i] = (float)((i * 37) % 19) / 19.0f - 0.5f;
    CHECK(sampler_invert(&s, levels, 0, T, src, levels, &err) == OIR_OK, "%s", err.message);
    const float *pc[2] = {g1, g2};
    candidate_job job = {levels, src, pc, 2, 7.5f, NULL, NULL};
    long c0 = s.unet_calls;
    CHECK(candidates_parallel(&s, &job, par, &err) == OIR_OK, "%s", err.message);
    long parallel_calls = s.unet_calls - c0;
    c0 = s.unet_calls;
    CHECK(candidates_serial(&s, &job, ser, &err) == OIR_OK, "%s", err.message);
    long serial_rows = s.unet_calls - c0; /* one row (x2 branches) per call here */
    char what[96];
    snprintf(what, sizeof what, "parallel == serial candidates (T=%d, 2 pairs)", T);
    /* Batched and single-row BLAS products round differently (~1e-6 relative);
     * CFG 7.5 amplifies a step's difference up to 16x and T steps add up. */
    th_close(what, par, ser, 2 * T * N, 5e-4f, 5e-3f);
    /* the plan's batched steps (T or T+1), each split in chunks of at most
     * max_unet_batch rows (x2 CFG branches) */
    int plan_rows, plan_calls = exhaustive_plan(T, 2, &plan_rows);
    int chunks = (2 * plan_rows + s.max_unet_batch - 1) / s.max_unet_batch;
    CHECK(plan_calls >= T && plan_calls <= T + 1, "T=%d: %d planned calls (T..T+1)", T, plan_calls);
    CHECK(parallel_calls == (long)plan_calls * chunks, "T=%d: %ld UNet calls, expected %d x %d", T,
          parallel_calls, plan_calls, chunks);
    CHECK(serial_rows == (long)2 * T * (T + 1) / 2 * (s.max_unet_batch >= 2 ? 1 : 2),
          "serial: %ld calls for 2 x T(T+1)/2 steps", serial_rows);
    free(src), free(g1), free(g2), free(levels), free(ser), free(par);
    sampler_free(&s);
    (void)ctx;
}

static int cancel_after(void *user, const char *stage, int done, int total) {
    int *count = user;
    (void)stage, (void)done, (void)total;
    return ++*count > 3;
}

static void test_edit_cases(oir_context *ctx) {
    oir_error err = {0};
    oir_params p = oir_default_params();
    p.steps = 8;
    p.reassembly_step = 2;
    p.reinversion_steps = 2;
    const char *src = "a photo of a red circle and a green square";
    oir_pair pairs[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", right, NULL}};
    oir_result *r = NULL;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r, &err) == OIR_OK, "two-pair edit: %s", err.message)) {
        CHECK(!strcmp(r->target_prompt, "a photo of a blue circle and a green star"), "target: %s", r->target_prompt);
        CHECK(!strcmp(r->guided_prompts[0], "a photo of a blue circle and a green square"), "guided 1");
        CHECK(!strcmp(r->guided_prompts[1], "a photo of a red circle and a green star"), "guided 2");
        for (int i = 0; i < 2; i++) {
            int best = 0;
            for (int k = 0; k < p.steps; k++)
                if (r->total[i * p.steps + k] > r->total[i * p.steps + best]) best = k;
            CHECK(r->chosen_step[i] == best + 1, "pair %d: chosen step %d is the arg-max %d", i, r->chosen_step[i], best + 1);
            for (int k = 0; k < p.steps; k++) {
                float e = r->edit_norm[i * p.steps + k], b = r->background_norm[i * p.steps + k];
                CHECK(e >= 0 && e <= 1 && b >= 0 && b <= 1 &&
                          r->total[i * p.steps + k] == e + b, "normalised scores in [0,1], total = sum");
            }
        }
        CHECK(r->reassembly_step >= 0 && r->reassembly_step <= 2, "reassembly step used %d", r->reassembly_step);
        CHECK(r->candidates != NULL, "candidates kept");
        /* default budget: all rows x 2 branches fit one call; the plan's calls */
        int plan_rows, plan_calls = exhaustive_plan(p.steps, 2, &plan_rows);
        CHECK(r->unet_calls == plan_calls, "parallel: %ld calls for T=%d (plan: %d)", r->unet_calls, p.steps,
              plan_calls);
        CHECK(r->unet_rows == 2L * 2 * p.steps * (p.steps + 1) / 2,
              "search rows: 2 pairs x T(T+1)/2 steps x 2 branches (%ld)", r->unet_rows);
        oir_result_free(r);
    }
    /* the budget forcing one UNet row per call changes nothing but the call count */
    oir_params tight = p;
    tight.memory_budget = 1;
    oir_result *r1 = NULL, *r2 = NULL;
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &p, &r1, &err) == OIR_OK, "%s", err.message) &&
        CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &tight, &r2, &err) == OIR_OK, "%s", err.message)) {
        CHECK(r2->max_unet_batch == 1 && r2->unet_calls == 2 * 2 * 4 * (p.steps + 1), "tight budget: %ld calls",
              r2->unet_calls);
        th_close("scores under a tight memory budget", r2->total, r1->total, 2 * p.steps, 1e-4f, 1e-3f);
        CHECK(r1->chosen_step[0] == r2->chosen_step[0] && r1->chosen_step[1] == r2->chosen_step[1],
              "same choices under a tight budget");
    }
    oir_result_free(r1);
    oir_result_free(r2);

    /* single pair: OIR is the search; the result is the chosen candidate */
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 1, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        size_t img = SIZE * SIZE * 3;
        CHECK(r->reassembly_step == -1, "single pair: no reassembly");
        CHECK(!memcmp(r->edited, r->candidates + (r->chosen_step[0] - 1) * img, img),
              "single pair: edited image is the chosen candidate");
        oir_result_free(r);
    }
    /* optimal step at or below R: R is lowered, with a warning */
    oir_params high_r = p;
    high_r.reassembly_step = p.steps; /* every k <= R */
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &high_r, &r, &err) == OIR_OK, "%s", err.message)) {
        int kmin = r->chosen_step[0] < r->chosen_step[1] ? r->chosen_step[0] : r->chosen_step[1];
        CHECK(r->reassembly_step == kmin - 1, "R lowered to kmin-1 = %d, got %d", kmin - 1, r->reassembly_step);
        CHECK(r->n_warnings > 0 && strstr(r->warnings[0], "lowered"), "warning says R was lowered");
        oir_result_free(r);
    }
    /* overlapping masks: defined (first pair wins) and reported */
    oir_pair overl[2] = {{"red circle", "blue circle", left, NULL}, {"green square", "green star", left, NULL}};
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, overl, 2, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        int seen = 0;
        for (int i = 0; i < r->n_warnings; i++) seen |= strstr(r->warnings[i], "overlap") != NULL;
        CHECK(seen, "overlap reported");
        oir_result_free(r);
    }
    /* a mask covering the whole image: flat background score, reported */
    oir_pair whole = {"red circle", "blue circle", full, NULL};
    if (CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &whole, &p, &r, &err) == OIR_OK, "%s", err.message)) {
        CHECK(r->background_flat[0] && r->n_warnings >= 1, "whole-image mask: background flat + warning");
        oir_result_free(r);
    }
    /* errors */
    oir_pair empty = {"red circle", "blue circle", none, NULL};
    CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &empty, &p, &r, &err) == OIR_E_ARG && strstr(err.message, "empty"),
          "empty mask refused: %s", err.message);
    oir_pair absent = {"horse", "zebra", left, NULL};
    CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &absent, &p, &r, &err) == OIR_E_ARG && strstr(err.message, "horse"),
          "phrase not in the source prompt refused: %s", err.message);
    oir_params given = p;
    given.target_prompt = "a photo of a zebra";
    CHECK(oir_search(ctx, rgb, SIZE, SIZE, src, &absent, &given, &r, &err) == OIR_OK, "missing phrase + explicit target ok: %s",
          err.message);
    oir_result_free(r);
    /* sides must be multiples of 4 here (VAE 2 x UNet 2) */
    CHECK(oir_search(ctx, rgb, 6, 8, src, &pairs[0], &p, &r, &err) == OIR_E_SHAPE && strstr(err.message, "6x8") &&
              strstr(err.message, "multiples of 4"),
          "wrong image size refused: %s", err.message);
    CHECK(oir_search(ctx, rgb, 0, SIZE, src, &pairs[0], &p, &r, &err) == OIR_E_SHAPE, "zero width refused");
    int count = 0;
    oir_params cancel = p;
    cancel.progress = cancel_after;
    cancel.progress_user = &count;
    CHECK(oir_edit(ctx, rgb, SIZE, SIZE, src, pairs, 2, &cancel, &r, &err) == OIR_E_CANCELLED && r == NULL,
          "progress callback cancels: %s", err.message);
}

/* Non-square images (W x H = 16 x 8, one pair; 8 x 12, two pairs with
 * reassembly) through the library: the result and the candidates have the
 * image's size; and the working-size helpers. (The UNet and VAE themselves
 * are checked on non-square inputs against diffusers in test_unet/test_vae.) */
static void test_non_square(oir_context *ctx) {
    enum { W = 16, H = 8 };
    static unsigned char img[W * H * 3], m[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int in = x >= 10 && x < 15 && y >= 2 && y < 7, i = y * W + x;
            img[i * 3 + 0] = in ? 220 : 128, img[i * 3 + 1] = 128, img[i * 3 + 2] = (unsigned char)(100 + 8 * y);
            m[i] = (unsigned char)in;
        }
    oir_error err = {0};
    oir_params p = oir_default_params();
    p.steps = 4;
    oir_pair pair = {"red circle", "blue circle", m, NULL};
    oir_result *r = NULL;
    if (CHECK(oir_search(ctx, img, W, H, "a photo of a red circle", &pair, &p, &r, &err) == OIR_OK, "16x8 search: %s",
              err.message)) {
        CHECK(r->width == W && r->height == H, "result %dx%d", r->width, r->height);
        size_t n = (size_t)W * H * 3;
        CHECK(!memcmp(r->edited, r->candidates + (size_t)(r->chosen_step[0] - 1) * n, n),
              "16x8: edited is the chosen candidate");
        int differs = 0;
        for (int k = 0; k < p.steps; k++) differs |= memcmp(r->candidates + k * n, img, n) != 0;
        CHECK(differs, "16x8: the candidates are images of the edit, not the input");
        oir_result_free(r);
    }
    /* tall, two pairs with reassembly */
    enum { W2 = 8, H2 = 12 };
    static unsigned char tall[W2 * H2 * 3], top[W2 * H2], bottom[W2 * H2];
    for (int i = 0; i < W2 * H2; i++) {
        int y = i / W2;
        tall[i * 3] = y < 6 ? 220 : 128, tall[i * 3 + 1] = y >= 6 ? 200 : 128, tall[i * 3 + 2] = 128;
        top[i] = y >= 1 && y < 5, bottom[i] = y >= 7 && y < 11;
    }
    oir_pair pairs[2] = {{"red circle", "blue circle", top, NULL}, {"green square", "green star", bottom, NULL}};
    p.reassembly_step = 1, p.reinversion_steps = 1;
    if (CHECK(oir_edit(ctx, tall, W2, H2, "a photo of a red circle and a green square", pairs, 2, &p, &r, &err) ==
                  OIR_OK,
              "8x12 edit: %s", err.message)) {
        CHECK(r->width == W2 && r->height == H2 && r->reassembly_step >= 0, "8x12 result, reassembled");
        oir_result_free(r);
    }
    /* the working size for a photo */
    int w = 0, h = 0;
    CHECK(oir_context_size_multiple(ctx) == 4, "size multiple %d", oir_context_size_multiple(ctx));
    CHECK(oir_working_size(ctx, 96, 64, 0, &w, &h, &err) == OIR_OK && w == 16 && h == 12,
          "96x64 photo, native 16: %dx%d (16 x round(10.7 / 4) * 4)", w, h);
    CHECK(oir_working_size(ctx, 64, 96, 32, &w, &h, &err) == OIR_OK && w == 20 && h == 32,
          "64x96 photo at 32: %dx%d", w, h);
    CHECK(oir_working_size(ctx, 300, 10, 16, &w, &h, &err) == OIR_OK && w == 16 && h == 4,
          "very wide photo: the short side is at least one multiple (%dx%d)", w, h);
    CHECK(oir_working_size(ctx, 96, 64, 18, &w, &h, &err) == OIR_E_ARG && strstr(err.message, "multiple of 4"),
          "size 18 refused: %s", err.message);
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
    if (!CHECK(oir_context_load(&ctx, &p, &err) == OIR_OK, "context: %s", err.message)) return th_summary();
    CHECK(oir_context_image_size(ctx) == SIZE, "native size %d", oir_context_image_size(ctx));
    sd_model *m = NULL;
    if (CHECK(sd_model_load(&m, mp, NULL, &err) == OIR_OK, "%s", err.message)) {
        test_parallel_equals_serial(ctx, m, 10);
        test_parallel_equals_serial(ctx, m, 7);
        sd_model_free(m);
    }
    test_edit_cases(ctx);
    test_non_square(ctx);
    oir_context_free(ctx);
    p.clip_path = "/nonexistent/clip";
    CHECK(oir_context_load(&ctx, &p, &err) != OIR_OK && ctx == NULL, "missing CLIP folder: %s", err.message);
    return th_summary();
}
