/* fp16 weight storage end to end (docs/BACKENDS.md "fp16 weights"): the
 * tiny pipeline's UNet loaded with --device vulkan:N,fp16-weights stores
 * its linear / convolution weights as fp16 (be_weights_from_host through
 * the binder) and gives bit for bit the outputs of vulkan:N with fp32
 * weights: the fixture's weights are fp16-representable
 * (tools/fixtures/make_sd_fixtures.py), and the shaders widen each weight
 * exactly, then compute in fp32 in the same order. (That the weights really
 * are converted is test_backend_ops' fp16 cases: there they are not
 * fp16-representable.) A device without 16-bit storage fails the load.
 * Needs Vulkan (lavapipe here); OIR_TEST_VULKAN=skip skips it,
 * OIR_TEST_VULKAN=N picks vulkan:N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "harness.h"
#include "models/loader.h"

static float *unet_run(const sd_model *m, size_t *n_out) {
    oir_error err = {0};
    const int B = 2, C = m->unet->cfg.in_channels, H = 8, W = 8, T = 77;
    const int D = m->unet->cfg.cross_attention_dim;
    arena a;
    if (!CHECK(arena_init(&a, unet_arena_bytes(m->unet, B, H, W, T), &err) == OIR_OK, "arena: %s", err.message))
        return NULL;
    float *x = malloc(sizeof(float) * B * C * H * W), *ctx = malloc(sizeof(float) * B * T * D);
    *n_out = (size_t)B * m->unet->cfg.out_channels * H * W;
    float *out = malloc(sizeof(float) * *n_out);
    for (int i = 0; i < B * C * H * W; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < B * T * D; i++) ctx[i] = (float)((i * 13) % 97) / 48.0f - 1.0f;
    float ts[2] = {981, 1};
    int rc = unet_forward(m->unet, &a, x, ts, ctx, B, H, W, T, out, &err);
    CHECK(rc == OIR_OK, "unet_forward on %s: %s", sd_model_device(m, "unet"), err.message);
    arena_free(&a);
    free(x), free(ctx);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static sd_model *load(const char *device) {
    sd_load_params p = sd_load_default_params();
    p.components = SD_UNET;
    p.device = device;
    sd_model *m = NULL;
    oir_error err = {0};
    CHECK(sd_model_load(&m, th_fixture_path("sd/tiny-pipe"), &p, &err) == OIR_OK, "load on %s: %s", device,
          err.message);
    return m;
}

int main(void) {
    const char *sel = getenv("OIR_TEST_VULKAN");
    if (!be_have_vulkan() || (sel && !strcmp(sel, "skip"))) {
        printf("  %s\n", be_have_vulkan() ? "vulkan skipped (OIR_TEST_VULKAN=skip)" : "no Vulkan in this build");
        CHECK(1, "nothing to test without Vulkan");
        return th_summary();
    }
    char dev[48], dev16[64];
    snprintf(dev, sizeof dev, "vulkan:%d", sel && *sel ? atoi(sel) : 0);
    snprintf(dev16, sizeof dev16, "%s,fp16-weights", dev);
    sd_model *m32 = load(dev), *m16 = load(dev16);
    if (m32 && m16) {
        CHECK(m16->backend && m16->backend->fp16_weights && m32->backend && !m32->backend->fp16_weights,
              "%s stores fp16 weights, %s fp32", dev16, dev);
        size_t n32 = 0, n16 = 0;
        float *o32 = unet_run(m32, &n32), *o16 = unet_run(m16, &n16);
        if (o32 && o16 && CHECK(n32 == n16, "output sizes")) {
            size_t first = n32;
            for (size_t i = 0; i < n32 && first == n32; i++)
                if (memcmp(&o32[i], &o16[i], sizeof(float))) first = i;
            if (CHECK(first == n32, "fp16 weights differ from fp32 at [%zu]: %.9g vs %.9g", first,
                      first < n32 ? (double)o16[first] : 0.0, first < n32 ? (double)o32[first] : 0.0))
                printf("  ok   unet on %s = on %s bit for bit (%zu values)\n", dev16, dev, n32);
        }
        free(o32), free(o16);
    }
    sd_model_free(m32);
    sd_model_free(m16);
    /* a device without 16-bit storage: the load fails naming the feature */
    setenv("OIR_VULKAN_NO_STORAGE16", "1", 1);
    sd_load_params p = sd_load_default_params();
    p.components = SD_UNET;
    p.device = dev16;
    sd_model *m = NULL;
    oir_error err = {0};
    int rc = sd_model_load(&m, th_fixture_path("sd/tiny-pipe"), &p, &err);
    unsetenv("OIR_VULKAN_NO_STORAGE16");
    CHECK(rc == OIR_E_UNSUPPORTED && !m && strstr(err.message, "storageBuffer16BitAccess"),
          "fp16 weights on a device without 16-bit storage refused at load: %d '%s'", rc, err.message);
    sd_model_free(m);
    return th_summary();
}
