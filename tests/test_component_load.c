/* sd_component_load (models/loader.h): one model's folder as an sd_model
 * holding that model alone (what `oir eval` loads for a component folder):
 * the tiny pipeline's unet, vae and text_encoder folders and the
 * linear-projection UNet folder load, each with exactly its model; a folder
 * of another class, a pipeline folder, a missing path and a bad component
 * are refused with clear errors. The UNet loaded alone gives the pipeline's
 * UNet outputs bit for bit. Fixtures: tests/fixtures/sd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "harness.h"
#include "models/loader.h"

static float *unet_run(const sd_model *m) {
    oir_error err = {0};
    const int B = 1, C = m->unet->cfg.in_channels, H = 8, W = 8, T = 77;
    const int D = m->unet->cfg.cross_attention_dim;
    arena a;
    if (!CHECK(arena_init(&a, unet_arena_bytes(m->unet, B, H, W, T), &err) == OIR_OK, "arena")) return NULL;
    float *x = malloc(sizeof(float) * B * C * H * W), *ctx = malloc(sizeof(float) * B * T * D);
    float *out = malloc(sizeof(float) * B * m->unet->cfg.out_channels * H * W);
    for (int i = 0; i < B * C * H * W; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < B * T * D; i++) ctx[i] = (float)((i * 13) % 97) / 48.0f - 1.0f;
    float ts[1] = {501};
    int rc = unet_forward(m->unet, &a, x, ts, ctx, B, H, W, T, out, &err);
    CHECK(rc == OIR_OK, "unet_forward: %s", err.message);
    arena_free(&a);
    free(x), free(ctx);
    if (rc) free(out);
    return rc ? NULL : out;
}

static void expect_refused(const char *dir, int component, int code, const char *needle) {
    sd_model *m = NULL;
    oir_error err = {0};
    int rc = sd_component_load(&m, dir, component, NULL, &err);
    if (CHECK(rc == code && !m && strstr(err.message, needle), "%s as component %d: expected %d naming '%s', got %d '%s'",
              dir, component, code, needle, rc, err.message))
        printf("  ok   refused: %s\n", err.message);
    sd_model_free(m);
}

int main(void) {
    char pipe[1024], p[1200];
    snprintf(pipe, sizeof pipe, "%s", th_fixture_path("sd/tiny-pipe"));
    oir_error err = {0};
    sd_model *full = NULL, *m = NULL;
    sd_load_params lp = sd_load_default_params();
    lp.components = SD_UNET;
    CHECK(!sd_model_load(&full, pipe, &lp, &err), "pipeline: %s", err.message);

    snprintf(p, sizeof p, "%s/unet", pipe);
    if (CHECK(!sd_component_load(&m, p, SD_UNET, NULL, &err), "unet folder: %s", err.message)) {
        CHECK(m->unet && !m->vae && !m->text_encoder && !m->tokenizer && m->source == SD_SOURCE_COMPONENT,
              "unet folder: the UNet alone");
        CHECK(sd_model_unused_count(m) == 0, "unet folder: no unused tensors");
        float *a = full ? unet_run(full) : NULL, *b = unet_run(m);
        size_t n = (size_t)m->unet->cfg.out_channels * 64;
        CHECK(a && b && !memcmp(a, b, n * sizeof(float)), "the UNet alone = the pipeline's UNet, bit for bit");
        free(a), free(b);
    }
    sd_model_free(m);
    m = NULL;
    snprintf(p, sizeof p, "%s/vae", pipe);
    if (CHECK(!sd_component_load(&m, p, SD_VAE, NULL, &err), "vae folder: %s", err.message))
        CHECK(m->vae && !m->unet && !m->text_encoder, "vae folder: the VAE alone");
    sd_model_free(m);
    m = NULL;
    snprintf(p, sizeof p, "%s/text_encoder", pipe);
    if (CHECK(!sd_component_load(&m, p, SD_TEXT_ENCODER, NULL, &err), "text_encoder folder: %s", err.message))
        CHECK(m->text_encoder && !m->text_projection && !m->unet && !m->tokenizer,
              "text_encoder folder: a CLIPTextModel without projection");
    sd_model_free(m);
    m = NULL;
    if (CHECK(!sd_component_load(&m, th_fixture_path("sd/unet-linproj"), SD_UNET, NULL, &err), "unet-linproj: %s",
              err.message))
        CHECK(m->unet && m->unet->cfg.use_linear_projection, "unet-linproj: linear projections");
    sd_model_free(m);
    sd_model_free(full);

    snprintf(p, sizeof p, "%s/vae", pipe);
    expect_refused(p, SD_UNET, OIR_E_UNSUPPORTED, "AutoencoderKL folder, not a UNet2DConditionModel");
    expect_refused(pipe, SD_UNET, OIR_E_FORMAT, "not one model's folder");
    expect_refused("/nonexistent/unet", SD_UNET, OIR_E_IO, "no such folder");
    snprintf(p, sizeof p, "%s/unet", pipe);
    expect_refused(p, SD_TOKENIZER, OIR_E_ARG, "SD_UNET, SD_VAE or SD_TEXT_ENCODER");
    return th_summary();
}
