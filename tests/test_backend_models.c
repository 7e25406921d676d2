/* The models on the backend table (issue 15, phase 2): the tiny model's
 * UNet on every built backend against the CPU backend, and the device
 * errors. Thresholds (normalised MSE, sum (got - ref)^2 / sum ref^2):
 *   UNet noise prediction on Vulkan vs CPU        <= 1e-8
 * (fp32 everywhere; the differences are summation order: tiled GEMM,
 * online softmax, the upsampler's nearest 2x + 3x3 conv against the CPU's
 * four 2x2 phase kernels). OIR_TEST_VULKAN=skip skips Vulkan;
 * OIR_TEST_VULKAN=N tests vulkan:N. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/backend.h"
#include "core/clock.h"
#include "core/noise.h"
#include "harness.h"
#include "models/loader.h"
#include "models/unet.h"

#define UNET_NMSE 1e-8

static double nmse(const float *got, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d, den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

typedef struct {
    int B, h, w, L;
    float *x, *t, *ctx;
    size_t out_n;
} unet_case;

static void case_init(unet_case *c, const unet_model *m, int B, int h, int w, int L) {
    c->B = B, c->h = h, c->w = w, c->L = L;
    size_t xn = (size_t)B * m->cfg.in_channels * h * w, cn = (size_t)L * m->cfg.cross_attention_dim;
    c->x = malloc(xn * sizeof(float));
    c->t = malloc((size_t)B * sizeof(float));
    c->ctx = malloc((size_t)B * cn * sizeof(float));
    noise_gaussian(c->x, xn, 11);
    for (int b = 0; b < B; b++) c->t[b] = (float)(999 - 97 * b);
    /* rows 0 and 2 share a context (the projected-once path), row 1 differs */
    for (int b = 0; b < B; b++) noise_gaussian(c->ctx + b * cn, cn, b == 2 ? 100 : 100 + b);
    c->out_n = (size_t)B * m->cfg.out_channels * h * w;
}

static void case_free(unet_case *c) { free(c->x), free(c->t), free(c->ctx); }

static int run(const unet_model *m, const unet_case *c, float *out, double *secs, oir_error *err) {
    arena a;
    int rc = arena_init(&a, unet_arena_bytes(m, c->B, c->h, c->w, c->L), err);
    if (rc) return rc;
    double t0 = clock_wall_s();
    rc = unet_forward(m, &a, c->x, c->t, c->ctx, c->B, c->h, c->w, c->L, out, err);
    *secs = clock_wall_s() - t0;
    arena_free(&a);
    return rc;
}

static void t_unet(sd_model *sd, oir_backend *vk) {
    unet_model *m = sd->unet;
    oir_error err = {0};
    unet_case c;
    case_init(&c, m, 3, 16, 16, 77);
    float *ref = calloc(c.out_n, sizeof(float)), *got = calloc(c.out_n, sizeof(float));
    double tc = 0, tv = 0;
    CHECK(!strcmp(unet_backend_name(m), "cpu"), "a loaded UNet runs on the CPU: %s", unet_backend_name(m));
    if (!CHECK(!run(m, &c, ref, &tc, &err), "unet on the CPU: %s", err.message)) goto done;
    if (vk) {
        if (!CHECK(!unet_bind(m, vk, &err), "unet onto %s: %s", vk->name, err.message)) goto done;
        CHECK(unet_backend(m) == vk, "the UNet is on %s", vk->name);
        if (CHECK(!run(m, &c, got, &tv, &err), "unet on %s: %s", vk->name, err.message)) {
            double e = nmse(got, ref, c.out_n);
            CHECK(e <= UNET_NMSE, "unet (B 3, 16x16 latent) on %s vs the CPU: NMSE %.3g (<= %g)", vk->name, e,
                  UNET_NMSE);
            printf("  unet B 3, 16x16: cpu %.3f s, %s %.3f s, NMSE %.3g\n", tc, vk->name, tv, e);
        }
        /* a second forward reuses the device arena and gives the same bits */
        float *again = calloc(c.out_n, sizeof(float));
        if (CHECK(!run(m, &c, again, &tv, &err), "unet again on %s: %s", vk->name, err.message) &&
            printf("  again (pipelines built): %s %.3f s\n", vk->name, tv) > 0)
            CHECK(!memcmp(again, got, c.out_n * sizeof(float)), "a second forward on %s repeats the first bit for bit",
                  vk->name);
        free(again);
    }
    /* back onto the CPU: bit-identical to the first CPU run */
    if (CHECK(!unet_bind(m, NULL, &err), "unet back onto the CPU: %s", err.message) &&
        CHECK(!run(m, &c, got, &tc, &err), "unet on the CPU again: %s", err.message))
        CHECK(!memcmp(got, ref, c.out_n * sizeof(float)), "rebound onto the CPU: bit-identical to the first run");
done:
    free(ref), free(got);
    case_free(&c);
}

static void t_device_errors(void) {
    oir_error err = {0};
    sd_load_params p = sd_load_default_params();
    sd_model *m = NULL;
    p.device = "gpu";
    int rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    CHECK(rc == OIR_E_ARG && !m && strstr(err.message, "expected cpu, vulkan or vulkan:N"),
          "device \"gpu\" is refused: %d '%s'", rc, err.message);
    p.device = "vulkan:15";
    rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    CHECK(rc == OIR_E_UNSUPPORTED && !m && strstr(err.message, "vulkan:15"),
          "a device that is not there is refused, naming it: %d '%s'", rc, err.message);
    p.device = "cpu";
    rc = sd_model_load(&m, "models/tiny-shapes", &p, &err);
    if (CHECK(!rc, "device cpu loads: %s", err.message))
        CHECK(!strcmp(sd_model_device(m, "unet"), "cpu") && !strcmp(sd_model_device(m, "vae"), "cpu"),
              "on the CPU: unet %s, vae %s", sd_model_device(m, "unet"), sd_model_device(m, "vae"));
    sd_model_free(m);
}

int main(void) {
    oir_error err = {0};
    oir_backend *vk = NULL;
    const char *sel = getenv("OIR_TEST_VULKAN");
    if (be_have_vulkan() && !(sel && !strcmp(sel, "skip"))) {
        be_device_spec spec = {BE_VULKAN, sel && *sel ? atoi(sel) : 0};
        CHECK(!be_create(&vk, &spec, &err), "this build has Vulkan, but vulkan:%d cannot be created: %s "
              "(scripts/deps.sh installs lavapipe; OIR_TEST_VULKAN=skip skips)", spec.index, err.message);
    } else {
        printf("  %s\n", be_have_vulkan() ? "vulkan skipped (OIR_TEST_VULKAN=skip)" : "no Vulkan in this build");
    }
    sd_model *sd = NULL;
    if (CHECK(!sd_model_load(&sd, "models/tiny-shapes", NULL, &err), "tiny model: %s", err.message)) t_unet(sd, vk);
    sd_model_free(sd); /* before the backend its UNet was last bound to... */
    t_device_errors();
    if (vk) be_destroy(vk);
    return th_summary();
}
