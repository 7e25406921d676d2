/* The sampler end to end on the tiny random pipeline, against diffusers:
 * prompt encoding, VAE encode, 10-step DDIM inversion keeping every level,
 * 10-step CFG denoising whose negative branch is the source prompt, decode.
 * Also: batching with per-row timesteps and memory-budget splits give the
 * same noise predictions as one row at a time. */
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "harness.h"

#define PIPE "sd/tiny-pipe"

static void test_pipeline(const sd_model *m) {
    sampler s;
    oir_error err = {0};
    if (!CHECK(sampler_init(&s, m, 16, 10, 0, &err) == OIR_OK, "sampler_init: %s", err.message)) return;
    st_file *f = th_open_fixture("sd/ref_pipeline.safetensors");
    float *pixels = th_fixture_f32(f, "image", NULL, NULL);
    float *latent0 = th_fixture_f32(f, "latent0", NULL, NULL);
    float *src_ref = th_fixture_f32(f, "source_embeds", NULL, NULL);
    float *tgt_ref = th_fixture_f32(f, "target_embeds", NULL, NULL);
    float *inv_ref = th_fixture_f32(f, "inv_latents", NULL, NULL);
    float *den_ref = th_fixture_f32(f, "denoised_latents", NULL, NULL);
    float *dec_ref = th_fixture_f32(f, "decoded", NULL, NULL);
    if (!pixels || !latent0 || !src_ref || !tgt_ref || !inv_ref || !den_ref || !dec_ref) goto cleanup;
    size_t ctx_n = (size_t)s.ctx_len * s.ctx_dim, n = s.lat_n;
    float *src = malloc(ctx_n * 4), *tgt = malloc(ctx_n * 4), *z = malloc(n * 4);
    float *levels = malloc(11 * n * 4), *dec = malloc(3 * 16 * 16 * 4);
    CHECK(sampler_encode_prompt(&s, "a photo of a red circle", src, &err) == OIR_OK, "%s", err.message);
    CHECK(sampler_encode_prompt(&s, "a photo of a blue square", tgt, &err) == OIR_OK, "%s", err.message);
    th_close("source prompt embedding", src, src_ref, ctx_n, 1e-4f, 1e-3f);
    th_close("target prompt embedding", tgt, tgt_ref, ctx_n, 1e-4f, 1e-3f);
    CHECK(sampler_encode_image(&s, pixels, z, &err) == OIR_OK, "%s", err.message);
    th_close("latent0 (VAE mean x scale)", z, latent0, n, 1e-4f, 1e-3f);
    /* From the reference latents and embeddings, so each stage is judged alone. */
    memcpy(z, latent0, n * 4);
    CHECK(sampler_invert(&s, z, 0, 10, src_ref, levels, &err) == OIR_OK, "%s", err.message);
    th_close("inversion levels 0..10", levels, inv_ref, 11 * n, 2e-4f, 2e-3f);
    memcpy(z, inv_ref + 10 * n, n * 4);
    CHECK(sampler_denoise(&s, z, 10, 0, tgt_ref, src_ref, 7.5f, &err) == OIR_OK, "%s", err.message);
    th_close("CFG 7.5 denoise, negative = source", z, den_ref + 10 * n, n, 5e-4f, 5e-3f);
    CHECK(sampler_decode(&s, den_ref + 10 * n, 1, dec, &err) == OIR_OK, "%s", err.message);
    th_close("decode", dec, dec_ref, 3 * 16 * 16, 1e-4f, 1e-3f);
    CHECK(sampler_invert(&s, z, 5, 6, src_ref, NULL, &err) == OIR_E_ARG, "inverting past level T refused");
    CHECK(sampler_encode_prompt(&s,
              "one two three four five six seven eight nine ten one two three four five six seven eight "
              "nine ten one two three four five six seven eight nine ten one two three four five six "
              "seven eight nine ten one two three four five six seven eight nine ten one two three four "
              "five six seven eight nine ten", src, &err) == OIR_E_ARG && strstr(err.message, "tokens"),
          "prompt longer than 77 tokens refused: %s", err.message);
    free(src);
    free(tgt);
    free(z);
    free(levels);
    free(dec);
cleanup:
    free(pixels);
    free(latent0);
    free(src_ref);
    free(tgt_ref);
    free(inv_ref);
    free(den_ref);
    free(dec_ref);
    st_close(f);
    sampler_free(&s);
}

/* Rows at different timesteps in one batch == each row alone; a budget that
 * forces one UNet row per call gives the same numbers. */
static void test_batching(const sd_model *m) {
    sampler big, small;
    oir_error err = {0};
    if (!CHECK(sampler_init(&big, m, 16, 10, 0, &err) == OIR_OK, "%s", err.message)) return;
    if (!CHECK(sampler_init(&small, m, 16, 10, 1, &err) == OIR_OK, "%s", err.message)) {
        sampler_free(&big);
        return;
    }
    CHECK(small.max_unet_batch == 1 && big.max_unet_batch >= 8, "budgets give batches %d and %d",
          small.max_unet_batch, big.max_unet_batch);
    enum { B = 5 };
    size_t n = big.lat_n, ctx_n = (size_t)big.ctx_len * big.ctx_dim;
    float *x = malloc(B * n * 4), *ctx = malloc(2 * ctx_n * 4), *e_batch = malloc(B * n * 4),
          *e_split = malloc(B * n * 4), *e_one = malloc(B * n * 4);
    srand(7);
    for (size_t i = 0; i < B * n; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (size_t i = 0; i < 2 * ctx_n; i++) ctx[i] = (float)rand() / RAND_MAX - 0.5f;
    int64_t t[B] = {901, 1, 501, 101, 301};
    const float *cond[B], *uncond[B];
    for (int b = 0; b < B; b++) {
        cond[b] = ctx + (b % 2) * ctx_n;
        uncond[b] = ctx + ((b + 1) % 2) * ctx_n;
    }
    CHECK(sampler_eps(&big, x, t, cond, uncond, 7.5f, B, e_batch, &err) == OIR_OK, "%s", err.message);
    CHECK(sampler_eps(&small, x, t, cond, uncond, 7.5f, B, e_split, &err) == OIR_OK, "%s", err.message);
    for (int b = 0; b < B; b++)
        CHECK(sampler_eps(&big, x + b * n, t + b, cond + b, uncond + b, 7.5f, 1, e_one + b * n, &err) == OIR_OK,
              "%s", err.message);
    /* BLAS may block products differently for other row counts: float rounding only */
    th_close("batch of mixed timesteps == rows alone", e_batch, e_one, B * n, 1e-4f, 1e-3f);
    th_close("budget split (1 row per call) == one batch", e_split, e_batch, B * n, 1e-4f, 1e-3f);
    CHECK(small.unet_calls == 2 * B, "split run made %ld UNet calls, expected %d", small.unet_calls, 2 * B);
    free(x);
    free(ctx);
    free(e_batch);
    free(e_split);
    free(e_one);
    sampler_free(&big);
    sampler_free(&small);
}

int main(void) {
    sd_model *m = NULL;
    oir_error err = {0};
    if (!CHECK(sd_model_load(&m, th_fixture_path(PIPE), NULL, &err) == OIR_OK, "load %s: %s", PIPE, err.message))
        return th_summary();
    test_pipeline(m);
    test_batching(m);
    sampler err_s;
    CHECK(sampler_init(&err_s, m, 10, 10, 0, &err) == OIR_E_ARG, "image size not a multiple of 4 refused: %s",
          err.message);
    sd_model_free(m);
    return th_summary();
}
