/* The UNet's cross-attention capture (src/models/attn_capture.h) against diffusers 0.16.1:
 * tests/fixtures/sd/ref_attn.safetensors, made by tools/fixtures/make_attn_fixtures.py, holds
 * for the tiny-pipe UNet (8 heads, 8x8 latent, grids 8x8 and 4x4) and unet-linproj (heads 2/4/8,
 * Linear projections, a tall 12x8 latent: grids 12x8, 6x4, 3x2) the head- and token-mean
 * attention probabilities of every attn2 layer and the per-row sums of the bilinearly
 * upsampled layer maps for min_grid_divisor 1, 2 and 4.
 *
 * Checks: every layer map and every accumulated map, for row 0, row 1 and all rows; the noise
 * prediction is bit-identical with the capture on and off (and matches diffusers); a capture
 * with other tokens does not match (the comparison can fail); a batch split into attention
 * chunks (48x48 latents, one sample per chunk) records the row it was asked for; bad arguments
 * give clear errors.
 *
 * Tolerances: maps are probabilities of about 1/77 per token, so atol 1e-6 (about 1e-4 of a
 * map value) and rtol 1e-4; the measured error is below 1e-7. noise_pred as test_unet (atol
 * 1e-4, rtol 1e-3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/attn_capture.h"
#include "models/unet.h"
#include "models/weights.h"
#include "oir.h"

#define MAP_ATOL 1e-6f
#define MAP_RTOL 1e-4f
#define ATOL 1e-4f
#define RTOL 1e-3f

typedef struct {
    st_file *f;
    weights *w;
    unet_model *m;
} loaded;

static void unload(loaded *l) {
    unet_free(l->m);
    weights_free(l->w);
    st_close(l->f);
    memset(l, 0, sizeof *l);
}

static int load(loaded *l, const char *dir, const char *file) {
    oir_error err = {0};
    char wpath[512], cpath[4096];
    memset(l, 0, sizeof *l);
    snprintf(wpath, sizeof wpath, "%s/%s", dir, file);
    l->f = th_open_fixture(wpath);
    if (!l->f) return 0;
    snprintf(cpath, sizeof cpath, "%s/config.json", th_fixture_path(dir));
    if (!CHECK(weights_from_file(&l->w, l->f, "unet", "", NULL, &err) == OIR_OK, "%s: %s", wpath,
               err.message) ||
        !CHECK(unet_load(&l->m, cpath, l->w, &err) == OIR_OK, "unet_load %s: %s", wpath,
               err.message) ||
        !CHECK(weights_finish(l->w, &err) == OIR_OK, "weights_finish %s: %s", wpath, err.message)) {
        unload(l);
        return 0;
    }
    return 1;
}

/* ---- layer hook: compares each layer map with the fixture's ------------- */

typedef struct {
    st_file *ref;
    const char *prefix;
    int calls, compared;
} layer_check;

static void on_layer(void *user, const char *name, int row, int gh, int gw, const float *map) {
    layer_check *lc = user;
    lc->calls++;
    char tname[128];
    snprintf(tname, sizeof tname, "%s.layer.%s", lc->prefix, name);
    tensor t;
    size_t n;
    float *r = th_fixture_f32(lc->ref, tname, &n, &t);
    if (!r) return;
    if (CHECK(t.ndim == 3 && t.shape[1] == gh && t.shape[2] == gw,
              "%s: grid %dx%d, reference (%lld, %lld)", tname, gh, gw,
              (long long)(t.ndim == 3 ? t.shape[1] : -1),
              (long long)(t.ndim == 3 ? t.shape[2] : -1))) {
        char what[160];
        snprintf(what, sizeof what, "    %s row %d", name, row);
        th_close(what, map, r + (size_t)row * gh * gw, (size_t)gh * gw, MAP_ATOL, MAP_RTOL);
        lc->compared++;
    }
    free(r);
}

/* An int64 fixture tensor's first `n` values (a missing or short one fails a check). */
static int fixture_ints(st_file *f, const char *name, int *out, int n) {
    const tensor *t = st_find(f, name);
    if (!CHECK(t && t->type == DT_I64 && t->ndim == 1 && t->shape[0] >= n,
               "fixture %s: int64 with at least %d values", name, n))
        return 0;
    for (int i = 0; i < n; i++)
        out[i] = (int)((const int64_t *)t->data)[i];
    return 1;
}

/* ---- parity -------------------------------------------------------------- */

static void check_reference(const char *label, const char *dir, const char *prefix) {
    printf("%s\n", label);
    loaded l;
    if (!load(&l, dir, "diffusion_pytorch_model.safetensors")) return;
    st_file *ref = th_open_fixture("sd/ref_attn.safetensors");
    if (!ref) {
        unload(&l);
        return;
    }
    char name[96];
#define REF(var, suffix, tptr)                                                                     \
    (snprintf(name, sizeof name, "%s.%s", prefix, suffix),                                         \
     var = th_fixture_f32(ref, name, NULL, tptr))
    tensor ts, tc;
    float *sample, *timestep, *ctx, *want_eps;
    int tokens[3];
    int have_tokens = fixture_ints(ref, "tokens", tokens, 3);
    REF(sample, "sample", &ts);
    REF(timestep, "timestep", NULL);
    REF(ctx, "encoder_hidden_states", &tc);
    REF(want_eps, "noise_pred", NULL);
    float *eps_off = NULL, *eps_on = NULL, *want_map = NULL;
    arena a = {0};
    oir_error err = {0};
    attn_capture cap = {0};
    if (!sample || !timestep || !ctx || !want_eps || !have_tokens) goto cleanup;
    int B = (int)ts.shape[0], h = (int)ts.shape[2], w = (int)ts.shape[3], L = (int)tc.shape[1];
    size_t n_eps = (size_t)B * ts.shape[1] * h * w, hw = (size_t)h * w;
    eps_off = malloc(n_eps * sizeof(float));
    eps_on = malloc(n_eps * sizeof(float));
    if (!CHECK(arena_init(&a, unet_arena_bytes(l.m, B, h, w, L), &err) == OIR_OK, "arena: %s",
               err.message))
        goto cleanup;
    int rc = unet_forward(l.m, &a, sample, timestep, ctx, B, h, w, L, eps_off, &err);
    if (!CHECK(rc == OIR_OK, "unet_forward: %s", err.message)) goto cleanup;
    th_close("  noise_pred (no capture) vs diffusers", eps_off, want_eps, n_eps, ATOL, RTOL);

    int divisors[3] = {1, 2, 4}, rows[3] = {0, 1, ATTN_CAPTURE_ALL_ROWS};
    for (int di = 0; di < 3; di++) {
        int d = divisors[di];
        int n_layers;
        snprintf(name, sizeof name, "%s.map.div%d", prefix, d);
        want_map = th_fixture_f32(ref, name, NULL, NULL);
        snprintf(name, sizeof name, "%s.layers.div%d", prefix, d);
        if (!fixture_ints(ref, name, &n_layers, 1) || !want_map) goto cleanup;
        for (int ri = 0; ri < 3; ri++) {
            int row = rows[ri];
            if (!CHECK(attn_capture_init(&cap, h, w, L, tokens, 3, row, d, &err) == OIR_OK,
                       "attn_capture_init: %s", err.message))
                goto cleanup;
            layer_check lc = {ref, prefix, 0, 0};
            cap.layer_fn = on_layer, cap.layer_user = &lc;
            rc = unet_forward_capture(l.m, &a, sample, timestep, ctx, B, h, w, L, eps_on, NULL,
                                      &cap, &err);
            if (!CHECK(rc == OIR_OK, "unet_forward_capture: %s", err.message)) goto cleanup;
            CHECK(a.used == 0, "arena reset after the forward (used %zu)", a.used);
            CHECK(memcmp(eps_on, eps_off, n_eps * sizeof(float)) == 0,
                  "%s divisor %d row %d: noise_pred with the capture is bit-identical", prefix, d,
                  row);
            int per_row = row == ATTN_CAPTURE_ALL_ROWS ? B : 1;
            CHECK(cap.n_added == n_layers * per_row && lc.compared == lc.calls &&
                      lc.calls == n_layers * per_row,
                  "%s divisor %d row %d: %d maps added, %d compared (reference: %d layers x %d)",
                  prefix, d, row, cap.n_added, lc.compared, n_layers, per_row);
            /* the reference map of this row, or the sum over rows */
            float want[256];
            if (!CHECK(hw <= 256, "map fits")) goto cleanup;
            for (size_t i = 0; i < hw; i++) {
                want[i] = 0;
                for (int r = 0; r < B; r++)
                    if (row == ATTN_CAPTURE_ALL_ROWS || row == r) want[i] += want_map[r * hw + i];
            }
            char what[96];
            snprintf(what, sizeof what, "  %s map, min_grid_divisor %d, row %d (%d layers)", prefix,
                     d, row, n_layers);
            th_close(what, cap.map, want, hw, MAP_ATOL, MAP_RTOL);
            attn_capture_free(&cap);
        }
        free(want_map);
        want_map = NULL;
    }

    /* other tokens: the comparison must fail (it is not vacuous) */
    {
        int other[1] = {tokens[0]};
        snprintf(name, sizeof name, "%s.map.div1", prefix);
        want_map = th_fixture_f32(ref, name, NULL, NULL);
        if (want_map &&
            CHECK(attn_capture_init(&cap, h, w, L, other, 1, 0, 1, &err) == OIR_OK,
                  "attn_capture_init: %s", err.message) &&
            CHECK(unet_forward_capture(l.m, &a, sample, timestep, ctx, B, h, w, L, eps_on, NULL,
                                       &cap, &err) == OIR_OK,
                  "unet_forward_capture: %s", err.message))
            CHECK(!th_close_quiet(cap.map, want_map, hw, MAP_ATOL, MAP_RTOL),
                  "  %s: the map of token %d alone differs from tokens {%d, %d, %d}", prefix,
                  other[0], tokens[0], tokens[1], tokens[2]);
        attn_capture_free(&cap);
    }
cleanup:
#undef REF
    attn_capture_free(&cap);
    arena_free(&a);
    free(sample), free(timestep), free(ctx), free(want_eps);
    free(eps_off), free(eps_on), free(want_map);
    st_close(ref);
    unload(&l);
}

/* ---- chunked attention: rows past the first chunk ------------------------ */

/* 48x48 latents put 2304 tokens in the 48x48 layers, so the attention runs one
 * sample per chunk: row 1 of a 2-row batch must give the map row 0 gives when
 * that sample runs alone. */
static void check_chunked(void) {
    printf("chunked attention (48x48 latents, 2 rows)\n");
    loaded l;
    if (!load(&l, "sd/tiny-pipe/unet", "diffusion_pytorch_model.safetensors")) return;
    int B = 2, h = 48, w = 48, L = 77, C = 4, D = 32;
    size_t per = (size_t)C * h * w, hw = (size_t)h * w;
    float *x = malloc(B * per * sizeof(float)), *ctx = malloc((size_t)B * L * D * sizeof(float));
    float *eps = malloc(B * per * sizeof(float)), *alone = malloc(hw * sizeof(float));
    float t[2] = {601.0f, 201.0f};
    uint32_t s = 12345;
    for (size_t i = 0; i < B * per; i++)
        x[i] = ((s = s * 1664525u + 1013904223u) >> 8) * 0x1p-23f - 1;
    for (size_t i = 0; i < (size_t)B * L * D; i++)
        ctx[i] = ((s = s * 1664525u + 1013904223u) >> 8) * 0x1p-23f - 1;
    arena a = {0};
    oir_error err = {0};
    attn_capture cap = {0};
    int tokens[2] = {1, 4};
    if (!CHECK(arena_init(&a, unet_arena_bytes(l.m, B, h, w, L), &err) == OIR_OK, "arena: %s",
               err.message))
        goto cleanup;
    if (!CHECK(attn_capture_init(&cap, h, w, L, tokens, 2, 0, 1, &err) == OIR_OK, "init: %s",
               err.message) ||
        !CHECK(unet_forward_capture(l.m, &a, x + per, t + 1, ctx + (size_t)L * D, 1, h, w, L, eps,
                                    NULL, &cap, &err) == OIR_OK,
               "row alone: %s", err.message))
        goto cleanup;
    memcpy(alone, cap.map, hw * sizeof(float));
    attn_capture_free(&cap);
    if (!CHECK(attn_capture_init(&cap, h, w, L, tokens, 2, 1, 1, &err) == OIR_OK, "init: %s",
               err.message) ||
        !CHECK(unet_forward_capture(l.m, &a, x, t, ctx, B, h, w, L, eps, NULL, &cap, &err) ==
                   OIR_OK,
               "batch: %s", err.message))
        goto cleanup;
    CHECK(cap.n_added == 4, "4 cross-attention layers recorded once each (got %d)", cap.n_added);
    th_close("  row 1 of the batch vs that sample alone", cap.map, alone, hw, 1e-5f, 1e-4f);
cleanup:
    attn_capture_free(&cap);
    arena_free(&a);
    free(x), free(ctx), free(eps), free(alone);
    unload(&l);
}

/* ---- bad arguments ------------------------------------------------------- */

static void expect_init_error(const char *what, int lh, int lw, int L, const int *tokens, int n,
                              int row, int div, const char *needle) {
    attn_capture cap;
    oir_error err = {0};
    int rc = attn_capture_init(&cap, lh, lw, L, tokens, n, row, div, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, needle) && cap.map == NULL,
          "%s: OIR_E_ARG naming '%s' (got %d: %s)", what, needle, rc, err.message);
    attn_capture_free(&cap);
}

static void check_bad_args(void) {
    printf("bad arguments\n");
    int ok[2] = {1, 2}, past[2] = {3, 77}, neg[1] = {-1};
    expect_init_error("no tokens", 8, 8, 77, ok, 0, 0, 1, "no token");
    expect_init_error("NULL tokens", 8, 8, 77, NULL, 2, 0, 1, "no token");
    expect_init_error("token 77 of 77", 8, 8, 77, past, 2, 0, 1, "token position 77");
    expect_init_error("token -1", 8, 8, 77, neg, 1, 0, 1, "token position -1");
    expect_init_error("17 tokens", 8, 8, 77, ok, ATTN_CAPTURE_MAX_TOKENS + 1, 0, 1, "at most");
    expect_init_error("row -2", 8, 8, 77, ok, 2, -2, 1, "row -2");
    expect_init_error("divisor 0", 8, 8, 77, ok, 2, 0, 0, "min_grid_divisor 0");
    expect_init_error("empty latent", 0, 8, 77, ok, 2, 0, 1, ">= 1");

    loaded l;
    if (!load(&l, "sd/tiny-pipe/unet", "diffusion_pytorch_model.safetensors")) return;
    int h = 8, w = 8, L = 77;
    size_t per = (size_t)4 * h * w;
    float *x = calloc(per, sizeof(float)), *ctx = calloc((size_t)L * 32, sizeof(float));
    float *eps = malloc(per * sizeof(float)), t = 500;
    arena a = {0};
    oir_error err = {0};
    attn_capture cap = {0};
    if (!CHECK(arena_init(&a, unet_arena_bytes(l.m, 1, h, w, L), &err) == OIR_OK, "arena: %s",
               err.message))
        goto cleanup;
    /* a capture for another latent size */
    if (CHECK(attn_capture_init(&cap, 16, 16, L, ok, 2, 0, 1, &err) == OIR_OK, "init: %s",
              err.message)) {
        int rc = unet_forward_capture(l.m, &a, x, &t, ctx, 1, h, w, L, eps, NULL, &cap, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, "16x16") && a.used == 0,
              "capture for 16x16 on an 8x8 forward: OIR_E_ARG naming both (got %d: %s)", rc,
              err.message);
    }
    attn_capture_free(&cap);
    /* row 1 of a 1-row batch */
    if (CHECK(attn_capture_init(&cap, h, w, L, ok, 2, 1, 1, &err) == OIR_OK, "init: %s",
              err.message)) {
        int rc = unet_forward_capture(l.m, &a, x, &t, ctx, 1, h, w, L, eps, NULL, &cap, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, "row 1") && cap.n_added == 0,
              "row 1 of 1 row: OIR_E_ARG (got %d: %s)", rc, err.message);
    }
cleanup:
    attn_capture_free(&cap);
    arena_free(&a);
    free(x), free(ctx), free(eps);
    unload(&l);
}

int main(void) {
    check_reference("tiny-pipe unet (8 heads; grids 8x8, 4x4)", "sd/tiny-pipe/unet", "pipe");
    check_reference("unet-linproj (heads 2/4/8; 12x8 latents: grids 12x8, 6x4, 3x2)",
                    "sd/unet-linproj", "linproj");
    check_chunked();
    check_bad_args();
    return th_summary();
}
