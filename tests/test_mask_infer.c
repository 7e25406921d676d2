/* Automatic masks (issue 13): the noise-contrast map against diffusers'
 * StableDiffusionDiffEditPipeline.generate_mask (tests/fixtures/sd/
 * ref_diffedit.safetensors, tools/fixtures/make_diffedit_fixtures.py), the
 * clean-up on synthetic maps, oir_mask_infer and masks inferred inside
 * oir_edit / oir_search / the plan, on the shipped tiny model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "edit/context.h"
#include "edit/mask_infer.h"
#include "harness.h"
#include "oir.h"

#define SIZE 64

static const char *SOURCE = "a red circle on the left and a blue triangle on the right on a gray background";

/* ---- parity with diffusers ------------------------------------------------ */

static const tensor *fixture_tensor(st_file *f, const char *name, dtype type) {
    const tensor *t = f ? st_find(f, name) : NULL;
    CHECK(t && t->type == type, "fixture tensor %s (%s) is missing", name, dtype_name(type));
    return t && t->type == type ? t : NULL;
}

static void test_parity_case(sampler *s, st_file *f, const float *latent, const char *name, const char *target) {
    char key[64];
    snprintf(key, sizeof key, "%s.params", name);
    float *params = th_fixture_f32(f, key, NULL, NULL);
    snprintf(key, sizeof key, "%s.noise", name);
    size_t n_noise = 0;
    float *noise = th_fixture_f32(f, key, &n_noise, NULL);
    snprintf(key, sizeof key, "%s.guidance_map", name);
    float *ref_map = th_fixture_f32(f, key, NULL, NULL);
    snprintf(key, sizeof key, "%s.mask", name);
    const tensor *ref_mask = fixture_tensor(f, key, DT_U8);
    snprintf(key, sizeof key, "%s.timestep", name);
    const tensor *ref_t = fixture_tensor(f, key, DT_I64);
    size_t hw = (size_t)s->lat_h * s->lat_w, ctx_n = (size_t)s->ctx_len * s->ctx_dim;
    float *src = malloc(ctx_n * sizeof(float)), *tgt = malloc(ctx_n * sizeof(float));
    float *map = malloc(hw * sizeof(float)), *norm = malloc(hw * sizeof(float)), *wrong = malloc(hw * sizeof(float));
    unsigned char *cells = malloc(hw);
    oir_error err = {0};
    if (!params || !noise || !ref_map || !ref_mask || !ref_t || !src || !tgt || !map || !norm || !wrong || !cells)
        goto done;
    oir_mask_params p = oir_mask_default_params();
    p.num_maps = (int)params[0];
    /* stored as float32 (0.7 -> 0.69999999); the script's value is a Python float */
    p.encode_strength = round((double)params[1] * 1000) / 1000;
    p.thresholding_ratio = params[2];
    p.noise_steps = (int)params[3];
    p.guidance = params[4];
    CHECK(n_noise == (size_t)p.num_maps * s->lat_n, "%s: noise has %zu values, expected %d x %zu", name, n_noise,
          p.num_maps, s->lat_n);
    int64_t t = -1;
    CHECK(mask_noise_timestep(&s->sched.cfg, p.noise_steps, p.encode_strength, &t, &err) == OIR_OK &&
              t == ((const int64_t *)ref_t->data)[0],
          "%s: noise timestep %lld, diffusers %lld", name, (long long)t, (long long)((const int64_t *)ref_t->data)[0]);
    if (!CHECK(sampler_encode_prompt(s, SOURCE, src, &err) == OIR_OK &&
                   sampler_encode_prompt(s, target, tgt, &err) == OIR_OK,
               "%s: prompts: %s", name, err.message))
        goto done;
    long rows = 0;
    if (!CHECK(mask_noise_map(s, latent, src, tgt, &p, noise, map, &rows, &err) == OIR_OK, "%s: map: %s", name,
               err.message))
        goto done;
    CHECK(rows == 2L * p.num_maps, "%s: %ld UNet rows, expected 2 x %d", name, rows, p.num_maps);
    char what[96];
    snprintf(what, sizeof what, "case %s: guidance map vs diffusers generate_mask", name);
    /* fp32 parity (measured: max |d| 3e-6) */
    th_close(what, map, ref_map, hw, 1e-4f, 1e-3f);
    /* the mask: exactly, except at ties (a normalised value within 1e-4 of 0.5) */
    int flat = !mask_normalise(map, hw, p.thresholding_ratio, norm);
    mask_threshold(norm, hw, 0.5f, cells);
    int diff = 0, ties = 0;
    const unsigned char *ref = ref_mask->data;
    for (size_t j = 0; j < hw; j++) {
        int tie = fabsf(norm[j] - 0.5f) < 1e-4f;
        ties += tie;
        diff += !tie && cells[j] != ref[j];
    }
    CHECK(!flat && diff == 0, "case %s: %d mask cells differ from diffusers' (%d ties skipped)", name, diff, ties);
    /* the checker has teeth: other noise gives another map */
    float *other = malloc(n_noise * sizeof(float));
    if (other) {
        mask_gaussian(other, n_noise, 12345);
        if (mask_noise_map(s, latent, src, tgt, &p, other, wrong, NULL, &err) == OIR_OK)
            CHECK(!th_close_quiet(wrong, ref_map, hw, 1e-4f, 1e-3f),
                  "case %s: other noise must not match the reference map", name);
        free(other);
    }
done:
    free(params);
    free(noise);
    free(ref_map);
    free(src);
    free(tgt);
    free(map);
    free(norm);
    free(wrong);
    free(cells);
}

static void test_parity(oir_context *ctx) {
    st_file *f = th_open_fixture("sd/ref_diffedit.safetensors");
    if (!f) return;
    sampler s;
    oir_error err = {0};
    if (!CHECK(sampler_init_hw(&s, oir_context_sd_model(ctx), SIZE, SIZE, 50, 0, &err) == OIR_OK, "%s", err.message)) {
        st_close(f);
        return;
    }
    const tensor *img = fixture_tensor(f, "image", DT_U8);
    float *ref_latent = th_fixture_f32(f, "latent", NULL, NULL);
    float *pixels = malloc(3 * SIZE * SIZE * sizeof(float)), *latent = malloc(s.lat_n * sizeof(float));
    if (img && ref_latent && pixels && latent) {
        const unsigned char *rgb = img->data;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < SIZE * SIZE; i++)
                pixels[c * SIZE * SIZE + i] = (float)rgb[i * 3 + c] / 255.0f * 255.0f / 127.5f - 1.0f;
        if (CHECK(sampler_encode_image(&s, pixels, latent, &err) == OIR_OK, "encode: %s", err.message)) {
            th_close("image latent (VAE mean x scaling factor) vs diffusers", latent, ref_latent, s.lat_n, 1e-4f, 1e-3f);
            test_parity_case(&s, f, latent, "a",
                             "a green square on the left and a blue triangle on the right on a gray background");
            test_parity_case(&s, f, latent, "b",
                             "a red circle on the left and a yellow star on the right on a gray background");
        }
    }
    free(ref_latent);
    free(pixels);
    free(latent);
    sampler_free(&s);
    st_close(f);
}

/* ---- clean-up on synthetic maps --------------------------------------------- */

static void grid_from(const char *rows[], int h, int w, unsigned char *m) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) m[y * w + x] = rows[y][x] == '#';
}

static int grid_equals(const unsigned char *m, const char *rows[], int h, int w) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[y * w + x] != (rows[y][x] == '#')) return 0;
    return 1;
}

static void test_pieces(void) {
    int scratch[2 * 64];
    /* threshold: DiffEdit's "value <= 0.5 is out" */
    const float v[4] = {0.5f, 0.5001f, 0.2f, 1.0f};
    unsigned char out[4];
    CHECK(mask_threshold(v, 4, 0.5f, out) == 2 && !out[0] && out[1] && !out[2] && out[3], "threshold: > 0.5 is in");
    /* normalisation: clamp at mean x ratio, divide */
    const float raw[4] = {0, 1, 2, 5};
    float nrm[4];
    CHECK(mask_normalise(raw, 4, 1.0f, nrm) == 1 && nrm[0] == 0 && nrm[1] == 0.5f && nrm[2] == 1 && nrm[3] == 1,
          "normalise: mean 2 x ratio 1: %g %g %g %g", nrm[0], nrm[1], nrm[2], nrm[3]);
    const float zero[4] = {0};
    CHECK(mask_normalise(zero, 4, 3.0f, nrm) == 0 && nrm[3] == 0, "normalise: a zero map is flat");
    /* holes: a ring is filled; a U open to the border is not */
    const char *ring[] = {"........", ".#####..", ".#...#..", ".#.#.#..", ".#...#..", ".#####..", "........",
                          "........"};
    const char *ring_filled[] = {"........", ".#####..", ".#####..", ".#####..", ".#####..", ".#####..", "........",
                                 "........"};
    unsigned char m[64];
    grid_from(ring, 8, 8, m);
    mask_fill_holes(m, 8, 8, scratch);
    CHECK(grid_equals(m, ring_filled, 8, 8), "fill holes: the ring's inside (with an island) is filled");
    const char *cup[] = {"........", ".#...#..", ".#...#..", ".#...#..", ".#####..", "........", "........",
                         "........"};
    grid_from(cup, 8, 8, m);
    mask_fill_holes(m, 8, 8, scratch);
    CHECK(grid_equals(m, cup, 8, 8), "fill holes: a cup open to the border stays open");
    const char *corner_hole[] = {".#......", "#.......", "........", "........", "........", "........",
                                 "........", "........"};
    grid_from(corner_hole, 8, 8, m);
    mask_fill_holes(m, 8, 8, scratch);
    CHECK(m[0] == 0, "fill holes: a border cell is never a hole");
    /* components: a strong blob keeps, a weak speck goes; diagonal cells are one component */
    const char *two[] = {"##......", "##......", "......#.", ".......#", "........", "........", "........",
                         "........"};
    float w8[64];
    grid_from(two, 8, 8, m);
    for (int i = 0; i < 64; i++) w8[i] = m[i] ? 1.0f : 0.0f;
    CHECK(mask_keep_components(m, w8, 8, 8, 0.5f, scratch) == 2 && m[6 + 2 * 8] && m[7 + 3 * 8],
          "components: 4 cells and a diagonal pair (weight 2 >= half of 4) are both kept");
    grid_from(two, 8, 8, m);
    w8[6 + 2 * 8] = w8[7 + 3 * 8] = 0.4f; /* the pair: weight 0.8 < 2 */
    CHECK(mask_keep_components(m, w8, 8, 8, 0.5f, scratch) == 1 && !m[6 + 2 * 8] && !m[7 + 3 * 8] && m[0] && m[9],
          "components: a weak speck is dropped, the strong blob kept");
    /* upsampling: nearest, each cell its factor-square */
    const unsigned char cells[4] = {1, 0, 0, 1};
    unsigned char up[64];
    mask_upsample_nearest(cells, 2, 2, up, 8, 8);
    int ok = 1;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) ok &= up[y * 8 + x] == ((y < 4) == (x < 4));
    CHECK(ok, "upsample: 2x2 -> 8x8 nearest");
    /* bilinear, as torch's interpolate(align_corners=False): edges clamp */
    const float ramp[4] = {0, 1, 0, 1};
    float fine[16];
    mask_upsample_bilinear(ramp, 2, 2, fine, 4, 4);
    CHECK(fine[0] == 0 && fine[1] == 0.25f && fine[2] == 0.75f && fine[3] == 1 && fine[12] == 0 && fine[15] == 1,
          "upsample: 2x2 -> 4x4 bilinear: %g %g %g %g", fine[0], fine[1], fine[2], fine[3]);
    /* dilation: one pixel -> a (2r+1) square, clipped at the border */
    unsigned char d[64] = {0}, tmp[64];
    d[3 * 8 + 3] = 1;
    d[0] = 1;
    mask_dilate(d, 8, 8, 2, tmp);
    int n_in = 0;
    for (int i = 0; i < 64; i++) n_in += d[i];
    CHECK(d[1 * 8 + 1] && d[5 * 8 + 5] && !d[6 * 8 + 6] && !d[3 * 8 + 6] && n_in == 25 + 9 - 4,
          "dilate r=2: a 5x5 square and a clipped 3x3 corner (%d pixels)", n_in);
    /* timesteps: diffusers' get_timesteps on the SD 1.x grid */
    ddim_config cfg = ddim_sd1_config();
    int64_t t = 0;
    oir_error err = {0};
    CHECK(mask_noise_timestep(&cfg, 50, 0.5, &t, &err) == OIR_OK && t == 481, "50 steps, strength 0.5: t %lld", (long long)t);
    CHECK(mask_noise_timestep(&cfg, 20, 0.7, &t, &err) == OIR_OK && t == 651, "20 steps, 0.7: t %lld", (long long)t);
    CHECK(mask_noise_timestep(&cfg, 50, 1.0, &t, &err) == OIR_OK && t == 981, "strength 1: t %lld", (long long)t);
    CHECK(mask_noise_timestep(&cfg, 50, 0.01, &t, &err) == OIR_E_ARG, "no level: %s", err.message);
}

/* A region (a background): high everywhere but on two objects. Its holes
 * stay out with MASK_CLEAN_REGION and are filled without it; broadness
 * tells it from an object's peaked map. */
static void test_region(void) {
    enum { LH = 8, LW = 8, F = 4 };
    float map[LH * LW], peak[LH * LW];
    unsigned char mask[LH * F * LW * F];
    oir_mask_info info;
    oir_error err = {0};
    for (int i = 0; i < LH * LW; i++) map[i] = 0.8f, peak[i] = 0.05f;
    for (int y = 2; y <= 3; y++)
        for (int x = 2; x <= 3; x++) map[y * LW + x] = 0.05f, map[(y + 3) * LW + x + 3] = 0.05f, peak[y * LW + x] = 1;
    CHECK(mask_broadness(map, LH * LW) >= MASK_REGION_BROAD && mask_broadness(peak, LH * LW) < MASK_REGION_BROAD,
          "broadness: region %.3f, object %.3f (threshold %.2f)", (double)mask_broadness(map, LH * LW),
          (double)mask_broadness(peak, LH * LW), (double)MASK_REGION_BROAD);
    const float zero[4] = {0, 0, 0, 0};
    CHECK(mask_broadness(zero, 4) == 0, "broadness of a flat map: 0");
    memset(&info, 0, sizeof info);
    if (CHECK(mask_clean(map, MASK_CLEAN_REGION, LH, LW, LH * F, LW * F, 0.5f, 0, MASK_UPSAMPLE_NEAREST, mask, &info,
                         &err) == OIR_OK,
              "%s", err.message)) {
        int holes_out = !mask[(2 * F) * LW * F + 2 * F] && !mask[(5 * F) * LW * F + 5 * F];
        CHECK(holes_out && mask[0] && fabsf(info.area - 56.0f / 64.0f) < 1e-6f && info.warning == OIR_MASK_WARN_NONE,
              "region: the objects stay out (area %g, warning %d)", (double)info.area, info.warning);
    }
    if (CHECK(mask_clean(map, 0, LH, LW, LH * F, LW * F, 0.5f, 0, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_OK,
              "%s", err.message))
        CHECK(info.area == 1.0f && info.warning == OIR_MASK_WARN_WHOLE, "without the flag the holes are filled (area %g)",
              (double)info.area);
}

static void test_clean(void) {
    enum { LH = 8, LW = 8, F = 4 };
    float map[LH * LW];
    unsigned char mask[LH * F * LW * F];
    oir_mask_info info;
    oir_error err = {0};
    /* a blob (with a hole) at the top left and a weak speck: one component, hole filled, dilated 1 px */
    for (int i = 0; i < LH * LW; i++) map[i] = 0.1f;
    for (int y = 1; y <= 3; y++)
        for (int x = 1; x <= 3; x++) map[y * LW + x] = 0.9f;
    map[2 * LW + 2] = 0.2f; /* the hole */
    map[6 * LW + 6] = 0.7f; /* the speck */
    memset(&info, 0, sizeof info);
    if (CHECK(mask_clean(map, 0, LH, LW, LH * F, LW * F, 0.5f, 1, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_OK, "%s", err.message)) {
        int in = 0, ok = 1;
        for (int y = 0; y < LH * F; y++)
            for (int x = 0; x < LW * F; x++) {
                int want = y >= F - 1 && y < 4 * F + 1 && x >= F - 1 && x < 4 * F + 1;
                ok &= mask[y * LW * F + x] == want;
                in += mask[y * LW * F + x];
            }
        CHECK(ok && info.components == 1 && info.warning == OIR_MASK_WARN_NONE,
              "clean: the 3x3 blob, hole filled, speck dropped, dilated by 1 px (%d px, %d components)", in,
              info.components);
        CHECK(fabsf(info.area - (float)in / (LH * F * LW * F)) < 1e-6f && info.threshold == 0.5f && info.dilate_px == 1,
              "clean: info area %g threshold %g", (double)info.area, (double)info.threshold);
    }
    /* bilinear: the same blob, smoothed, cleaned at the image's resolution (the speck still dropped) */
    unsigned char near[LH * F * LW * F];
    memcpy(near, mask, sizeof near);
    if (CHECK(mask_clean(map, 0, LH, LW, LH * F, LW * F, 0.5f, 0, MASK_UPSAMPLE_BILINEAR, mask, &info, &err) == OIR_OK,
              "%s", err.message)) {
        int inside = 1, in = 0;
        for (int y = 0; y < LH * F; y++)
            for (int x = 0; x < LW * F; x++) {
                in += mask[y * LW * F + x];
                if (mask[y * LW * F + x] && !near[y * LW * F + x]) inside = 0;
            }
        CHECK(inside && in > 4 * 4 * F && info.components == 1 && !mask[(6 * F + 2) * LW * F + 6 * F + 2],
              "clean (bilinear): one smooth blob inside the nearest one dilated (%d px)", in);
    }
    /* nothing above an extreme threshold: lowered to half the peak, never empty */
    if (CHECK(mask_clean(map, 0, LH, LW, LH * F, LW * F, 0.95f, 0, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_OK, "%s", err.message)) {
        CHECK(info.warning == OIR_MASK_WARN_EMPTY && fabsf(info.threshold - 0.45f) < 1e-6f && info.area > 0 &&
                  strstr(info.message, "lowered"),
              "clean: empty -> threshold lowered to half the peak (warning %d, threshold %g, area %g: %s)",
              info.warning, (double)info.threshold, (double)info.area, info.message);
    }
    /* a flat map: the whole image */
    for (int i = 0; i < LH * LW; i++) map[i] = 0;
    if (CHECK(mask_clean(map, 1, LH, LW, LH * F, LW * F, 0.5f, 0, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_OK, "%s", err.message))
        CHECK(info.warning == OIR_MASK_WARN_FLAT && info.area == 1.0f && mask[0] && mask[LH * F * LW * F - 1],
              "clean: flat map -> whole image (%d, %g)", info.warning, (double)info.area);
    /* everything above: whole image, with a warning */
    for (int i = 0; i < LH * LW; i++) map[i] = 0.8f;
    if (CHECK(mask_clean(map, 0, LH, LW, LH * F, LW * F, 0.5f, 0, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_OK, "%s", err.message))
        CHECK(info.warning == OIR_MASK_WARN_WHOLE && info.area == 1.0f && strstr(info.message, "not localised"),
              "clean: whole-image mask warned (%d: %s)", info.warning, info.message);
    CHECK(mask_clean(map, 0, LH, LW, 30, 30, 0.5f, 0, MASK_UPSAMPLE_NEAREST, mask, &info, &err) == OIR_E_SHAPE, "clean: 30 is not a multiple of 8");
}

static void test_params(void) {
    oir_mask_params p = oir_mask_default_params();
    oir_error err = {0};
    CHECK(mask_params_check(&p, &err) == OIR_OK, "defaults: %s", err.message);
    CHECK(p.method == OIR_MASK_DEFAULT && p.threshold == -1 && p.dilate_px == -1 && p.num_maps == 10 &&
              p.encode_strength == 0.5 && p.thresholding_ratio == -1 && p.noise_steps == 50 && p.guidance == 7.5f,
          "defaults: DiffEdit's knobs, the method's threshold and dilation");
    for (int m = OIR_MASK_NOISE; m <= OIR_MASK_COMBINED; m++)
        CHECK(mask_method_threshold(m) > 0 && mask_method_threshold(m) < 1 && mask_method_dilate(m) >= 0,
              "method %d: default threshold %g, dilation %d", m, (double)mask_method_threshold(m), mask_method_dilate(m));
    CHECK(mask_method_resolve(OIR_MASK_DEFAULT) >= OIR_MASK_NOISE, "the default method is a method");
    CHECK(!strcmp(oir_mask_method_name(OIR_MASK_NOISE), "noise") && oir_mask_method_parse("noise") == OIR_MASK_NOISE &&
              oir_mask_method_parse("attention") == OIR_MASK_ATTENTION && oir_mask_method_parse("Noise") == -1 &&
              oir_mask_method_parse(NULL) == -1,
          "method names");
    oir_mask_params q = p;
    q.threshold = 1.0f;
    CHECK(mask_params_check(&q, &err) == OIR_OK, "threshold 1 (the fallback, forced): %s", err.message);
    q.threshold = 1.001f;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG && strstr(err.message, "threshold"), "threshold 1.001: %s",
          err.message);
    q = p, q.threshold = -0.1f;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "threshold -0.1: %s", err.message);
    q = p, q.threshold = NAN;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "threshold NaN: %s", err.message);
    q = p, q.dilate_px = -2;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG && strstr(err.message, "dilation"), "dilate -2: %s", err.message);
    q = p, q.dilate_px = MASK_MAX_DILATE + 1;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "dilate too large: %s", err.message);
    q = p, q.num_maps = 0;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "num_maps 0: %s", err.message);
    q = p, q.encode_strength = 0;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "strength 0: %s", err.message);
    q = p, q.thresholding_ratio = 0;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "ratio 0: %s", err.message);
    q = p, q.thresholding_ratio = -2;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG && strstr(err.message, "-1"), "ratio -2: %s", err.message);
    q = p, q.method = 7;
    CHECK(mask_params_check(&q, &err) == OIR_E_ARG, "method 7: %s", err.message);
}

/* ---- on the shipped model ------------------------------------------------------ */

static int load_mask(const char *path, unsigned char *m) {
    unsigned char *buf = NULL;
    oir_error err = {0};
    if (!CHECK(oir_mask_load(path, SIZE, SIZE, &buf, NULL, NULL, &err) == OIR_OK, "%s: %s", path, err.message)) return 0;
    memcpy(m, buf, SIZE * SIZE);
    oir_free(buf);
    return 1;
}

static double iou(const unsigned char *a, const unsigned char *b, size_t n) {
    size_t i = 0, u = 0;
    for (size_t j = 0; j < n; j++) i += a[j] && b[j], u += a[j] || b[j];
    return u ? (double)i / u : 1.0;
}

static void test_infer(oir_context *ctx, const unsigned char *rgb) {
    oir_error err = {0};
    oir_mask_params p = oir_mask_default_params();
    unsigned char *mask = NULL, gt[SIZE * SIZE];
    oir_mask_info info;
    char path[512];
    snprintf(path, sizeof path, "%s/../examples/shapes/demo_mask0.png", oir_models_dir());
    if (!load_mask(path, gt)) return;
    if (!CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &p, &mask, &info, &err) ==
                   OIR_OK,
               "oir_mask_infer: %s", err.message))
        return;
    double j = iou(mask, gt, SIZE * SIZE);
    CHECK(j >= 0.5, "demo pair 1: IoU %.3f with the benchmark's mask (>= 0.5)", j);
    int method = mask_method_resolve(OIR_MASK_DEFAULT);
    CHECK(info.threshold == mask_method_threshold(method) && info.dilate_px == mask_method_dilate(method),
          "the method's default threshold %g and dilation %d", (double)info.threshold, info.dilate_px);
    CHECK(info.inferred && info.method == method && info.unet_rows == mask_rows_per_pair(&p) &&
              info.warning == OIR_MASK_WARN_NONE &&
              info.area > 0.02f && info.area < 0.3f && info.components >= 1,
          "info: method %d rows %ld warning %d area %g components %d", info.method, info.unet_rows, info.warning,
          (double)info.area, info.components);
    /* deterministic; the seed matters; given noise = the seed's draws */
    unsigned char *again = NULL;
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &p, &again, NULL, &err) == OIR_OK &&
              !memcmp(again, mask, SIZE * SIZE),
          "same seed, same mask");
    oir_free(again);
    /* thresholding_ratio -1 is the method's clamp; DiffEdit's 3 draws another mask */
    oir_mask_params r = p;
    r.thresholding_ratio = mask_method_ratio(method);
    again = NULL;
    CHECK(mask_method_ratio(method) * mask_method_threshold(method) > 3.0f,
          "the default threshold (%g x ratio %g) lies above DiffEdit's clamp at 3 x the mean",
          (double)mask_method_threshold(method), (double)mask_method_ratio(method));
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &r, &again, NULL, &err) == OIR_OK &&
              !memcmp(again, mask, SIZE * SIZE),
          "ratio -1 = the method's ratio %g", (double)r.thresholding_ratio);
    oir_free(again);
    r.thresholding_ratio = 3.0f;
    again = NULL;
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &r, &again, NULL, &err) == OIR_OK &&
              memcmp(again, mask, SIZE * SIZE),
          "ratio 3 (DiffEdit's clamp) gives another mask");
    oir_free(again);
    float *noise = malloc((size_t)p.num_maps * 4 * 16 * 16 * sizeof(float));
    if (noise) {
        mask_gaussian(noise, (size_t)p.num_maps * 4 * 16 * 16, p.seed);
        oir_mask_params q = p;
        q.noise = noise;
        again = NULL;
        CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &q, &again, NULL, &err) ==
                      OIR_OK &&
                  !memcmp(again, mask, SIZE * SIZE),
              "noise given = the seed's draws: same mask");
        oir_free(again);
        free(noise);
    }
    /* the other pair */
    snprintf(path, sizeof path, "%s/../examples/shapes/demo_mask1.png", oir_models_dir());
    unsigned char *m2 = NULL;
    if (load_mask(path, gt) &&
        CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "blue triangle", "yellow star", &p, &m2, &info, &err) == OIR_OK,
              "%s", err.message))
        CHECK(iou(m2, gt, SIZE * SIZE) >= 0.5, "demo pair 2: IoU %.3f (>= 0.5)", iou(m2, gt, SIZE * SIZE));
    oir_free(m2);
    /* dilation grows the mask by the stated margin */
    oir_mask_params q = p;
    q.dilate_px = info.dilate_px + 2;
    unsigned char *wide = NULL;
    if (CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &q, &wide, NULL, &err) == OIR_OK,
              "%s", err.message)) {
        unsigned char ref[SIZE * SIZE], tmp[SIZE * SIZE];
        memcpy(ref, mask, sizeof ref);
        mask_dilate(ref, SIZE, SIZE, 2, tmp);
        CHECK(!memcmp(ref, wide, sizeof ref), "dilate_px + 2 = the mask dilated by 2 more pixels");
    }
    oir_free(wide);
    /* an extreme threshold: the stated fallback, with a warning */
    q = p;
    q.threshold = 1.0f;
    unsigned char *fb = NULL;
    if (CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &q, &fb, &info, &err) == OIR_OK,
              "%s", err.message))
        CHECK(info.warning == OIR_MASK_WARN_EMPTY && info.area > 0 && info.threshold < 1.0f,
              "threshold 1: warning %d, area %g, threshold %g", info.warning, (double)info.area,
              (double)info.threshold);
    oir_free(fb);
    /* errors */
    unsigned char *none = NULL;
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "green dog", "cat", &p, &none, NULL, &err) == OIR_E_ARG &&
              strstr(err.message, "green dog") && none == NULL,
          "phrase not in the prompt: %s", err.message);
    CHECK(oir_mask_infer(ctx, rgb, 60, 60, SOURCE, "red circle", "cat", &p, &none, NULL, &err) == OIR_E_SHAPE,
          "60x60: %s", err.message);
    q = p, q.threshold = 2;
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "cat", &q, &none, NULL, &err) == OIR_E_ARG,
          "threshold 2: %s", err.message);
    /* the other methods: their rows, their default clean-up, a mask on the object */
    for (int m = OIR_MASK_ATTENTION; m <= OIR_MASK_COMBINED; m++) {
        q = p, q.method = m;
        unsigned char *am = NULL;
        snprintf(path, sizeof path, "%s/../examples/shapes/demo_mask0.png", oir_models_dir());
        if (load_mask(path, gt) &&
            CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &q, &am, &info, &err) ==
                      OIR_OK,
                  "%s: %s", oir_mask_method_name(m), err.message)) {
            CHECK(info.method == m && info.unet_rows == mask_rows_per_pair(&q) &&
                      info.unet_rows == (m == OIR_MASK_ATTENTION ? 4 : 24) && info.threshold == mask_method_threshold(m),
                  "%s: %ld rows, threshold %g", oir_mask_method_name(m), info.unet_rows, (double)info.threshold);
            CHECK(iou(am, gt, SIZE * SIZE) >= 0.3, "%s: IoU %.3f on demo pair 1 (>= 0.3)", oir_mask_method_name(m),
                  iou(am, gt, SIZE * SIZE));
        }
        oir_free(am);
    }
    /* the attention method needs the phrase in the source prompt (a guided prompt cannot stand in) */
    q = p, q.method = OIR_MASK_ATTENTION;
    CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "green dog", "cat", &q, &none, NULL, &err) == OIR_E_ARG,
          "attention, phrase not in the prompt: %s", err.message);
    oir_free(none);
    oir_free(mask);
}

/* Inferred inside oir_search / oir_edit: the same mask as oir_mask_infer, in
 * the result, counted by the run and its plan. */
static void test_in_edit(oir_context *ctx, const unsigned char *rgb) {
    oir_error err = {0};
    oir_params p = oir_default_params();
    p.steps = 4;
    p.reassembly_step = 1;
    p.reinversion_steps = 1;
    unsigned char *m1 = NULL, *m2 = NULL, given[SIZE * SIZE];
    char path[512];
    snprintf(path, sizeof path, "%s/../examples/shapes/demo_mask1.png", oir_models_dir());
    if (!load_mask(path, given)) return;
    if (!CHECK(oir_mask_infer(ctx, rgb, SIZE, SIZE, SOURCE, "red circle", "green square", &p.mask, &m1, NULL, &err) ==
                   OIR_OK,
               "%s", err.message))
        return;
    /* one pair, inferred */
    oir_pair one = {"red circle", "green square", NULL, NULL};
    oir_result *r = NULL;
    oir_plan plan;
    CHECK(oir_plan_edit(ctx, SIZE, SIZE, &one, 1, &p, NULL, &plan, &err) == OIR_OK, "plan: %s", err.message);
    if (CHECK(oir_search(ctx, rgb, SIZE, SIZE, SOURCE, &one, &p, &r, &err) == OIR_OK, "search: %s", err.message)) {
        CHECK(!memcmp(r->masks, m1, SIZE * SIZE), "search: the inferred mask is oir_mask_infer's");
        CHECK(r->mask_info[0].inferred && r->mask_info[0].method == OIR_MASK_NOISE && r->mask_unet_rows == 20 &&
                  r->mask_info[0].unet_rows == 20,
              "search: mask info (rows %ld)", r->mask_unet_rows);
        CHECK(plan.exact && plan.unet_rows_total == r->unet_rows_total && plan.mask_rows == r->mask_unet_rows &&
                  plan.stage_units[OIR_STAGE_MASK] == 1,
              "plan counts the mask: planned %ld rows (mask %ld), ran %ld", plan.unet_rows_total, plan.mask_rows,
              r->unet_rows_total);
        oir_result_free(r);
        r = NULL;
    }
    oir_plan plain;
    CHECK(oir_plan_run(ctx, SIZE, SIZE, 1, &p, NULL, &plain, &err) == OIR_OK &&
              plain.unet_rows_total == plan.unet_rows_total - 20 && plain.mask_rows == 0,
          "oir_plan_run: no mask rows (%ld vs %ld)", plain.unet_rows_total, plan.unet_rows_total);
    /* two pairs: one inferred, one given; the overlap is reported */
    oir_pair two[2] = {{"red circle", "green square", NULL, NULL}, {"blue triangle", "yellow star", given, NULL}};
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, SOURCE, two, 2, &p, &r, &err) == OIR_OK, "edit: %s", err.message)) {
        CHECK(!memcmp(r->masks, m1, SIZE * SIZE) && !memcmp(r->masks + SIZE * SIZE, given, SIZE * SIZE),
              "edit: inferred mask of pair 1, pair 2's as given");
        CHECK(r->mask_info[0].inferred && !r->mask_info[1].inferred && r->mask_unet_rows == 20,
              "edit: which masks were inferred");
        CHECK(r->mask_overlap_cells == 0, "edit: the demo's objects do not overlap (%ld cells)", r->mask_overlap_cells);
        oir_result_free(r);
        r = NULL;
    }
    /* both given the same inferred region: the overlap is counted, as for given masks */
    oir_pair same[2] = {{"red circle", "green square", NULL, NULL}, {"blue triangle", "yellow star", m1, NULL}};
    if (CHECK(oir_edit(ctx, rgb, SIZE, SIZE, SOURCE, same, 2, &p, &r, &err) == OIR_OK, "edit: %s", err.message)) {
        int warned = 0;
        for (int i = 0; i < r->n_warnings; i++) warned |= strstr(r->warnings[i], "overlap") != NULL;
        CHECK(r->mask_overlap_cells > 0 && warned, "edit: overlapping masks reported (%ld cells)", r->mask_overlap_cells);
        oir_result_free(r);
        r = NULL;
    }
    /* the combined method inside a run: the plan counts both of its calls */
    oir_params pc = p;
    pc.mask.method = OIR_MASK_COMBINED;
    if (CHECK(oir_plan_edit(ctx, SIZE, SIZE, &one, 1, &pc, NULL, &plan, &err) == OIR_OK, "plan: %s", err.message) &&
        CHECK(oir_search(ctx, rgb, SIZE, SIZE, SOURCE, &one, &pc, &r, &err) == OIR_OK, "search: %s", err.message)) {
        CHECK(r->mask_unet_rows == 24 && plan.mask_rows == 24 && plan.unet_rows_total == r->unet_rows_total,
              "combined: planned %ld rows (mask %ld), ran %ld (mask %ld)", plan.unet_rows_total, plan.mask_rows,
              r->unet_rows_total, r->mask_unet_rows);
        oir_result_free(r);
        r = NULL;
    }
    /* the empty-mask fallback inside a run: a warning, never an empty edit */
    oir_params q = p;
    q.mask.threshold = 1.0f;
    if (CHECK(oir_search(ctx, rgb, SIZE, SIZE, SOURCE, &one, &q, &r, &err) == OIR_OK, "search: %s", err.message)) {
        int warned = 0;
        for (int i = 0; i < r->n_warnings; i++) warned |= strstr(r->warnings[i], "inferred mask") != NULL;
        size_t in = 0;
        for (int j = 0; j < SIZE * SIZE; j++) in += r->masks[j];
        CHECK(warned && in > 0 && r->mask_info[0].warning == OIR_MASK_WARN_EMPTY, "fallback warned, %zu pixels", in);
        oir_result_free(r);
        r = NULL;
    }
    /* bad mask parameters fail before anything runs (only when a mask is inferred) */
    q = p;
    q.mask.dilate_px = -3;
    CHECK(oir_search(ctx, rgb, SIZE, SIZE, SOURCE, &one, &q, &r, &err) == OIR_E_ARG && strstr(err.message, "dilation") &&
              !r,
          "bad dilation: %s", err.message);
    oir_pair given_one = {"red circle", "green square", m1, NULL};
    CHECK(oir_plan_edit(ctx, SIZE, SIZE, &given_one, 1, &q, NULL, &plan, &err) == OIR_OK,
          "bad mask params do not matter when every mask is given: %s", err.message);
    oir_pair missing = {"green dog", "cat", NULL, NULL};
    CHECK(oir_search(ctx, rgb, SIZE, SIZE, SOURCE, &missing, &p, &r, &err) == OIR_E_ARG && strstr(err.message, "green dog"),
          "phrase not in the prompt: %s", err.message);
    oir_free(m1);
    oir_free(m2);
}

int main(void) {
    oir_set_threads(1);
    test_pieces();
    test_clean();
    test_region();
    test_params();
    oir_context *ctx = NULL;
    oir_error err = {0};
    oir_context_params cp = oir_context_default_params();
    if (!CHECK(oir_context_load(&ctx, &cp, &err) == OIR_OK, "shipped models: %s", err.message)) return th_summary();
    test_parity(ctx);
    char path[512];
    snprintf(path, sizeof path, "%s/../examples/shapes/demo.png", oir_models_dir());
    unsigned char *rgb = NULL;
    if (CHECK(oir_image_load(path, SIZE, SIZE, &rgb, NULL, NULL, &err) == OIR_OK, "%s: %s", path, err.message)) {
        test_infer(ctx, rgb);
        test_in_edit(ctx, rgb);
    }
    oir_free(rgb);
    oir_context_free(ctx);
    return th_summary();
}
