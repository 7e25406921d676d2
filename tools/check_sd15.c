/* Full-size shape check (issue 3): loads a random-weight model with the exact
 * SD 1.5 configuration as a diffusers folder and as a single-file LDM
 * checkpoint (configs inferred from its shapes), requires no missing and no
 * unused tensors in either, runs the text encoder, one UNet evaluation on an
 * 8x8 latent (batch 2, timesteps 981 and 1) and a VAE decode of it, and
 * requires both loads to give bit-identical outputs.
 *
 *     scripts/check_sd15.sh            (makes the model with tools/make_random_sd.py)
 *     build/release/check_sd15 FOLDER SINGLE.safetensors
 *
 * Built by scripts/check_sd15.sh against build/release/liboir.a. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "models/loader.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    float *context; /* (2, 77, 768) */
    float *eps;     /* (2, 4, 8, 8) */
    float *image;   /* (2, 3, 64, 64) */
    size_t n_ctx, n_eps, n_img;
} outputs;

static int fail(const char *what, const oir_error *err) {
    fprintf(stderr, "check_sd15: %s: %s\n", what, err->message);
    return 1;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int run(const char *path, const sd_load_params *p, outputs *o) {
    oir_error err = {0};
    sd_model *m = NULL;
    double t0 = now();
    if (sd_model_load(&m, path, p, &err)) return fail(path, &err);
    printf("%s: loaded in %.1f s\n", path, now() - t0);
    for (int i = 0; i < m->n_notes; i++) printf("  %s\n", m->notes[i]);
    int bad = 0;
    if (!m->tokenizer || !m->text_encoder || !m->unet || !m->vae) {
        fprintf(stderr, "check_sd15: %s: a component is missing\n", path);
        bad = 1;
    }
    printf("  unused tensors: %d, tensors outside the models: %d\n", sd_model_unused_count(m),
           sd_model_other_count(m));
    for (int i = 0; i < sd_model_unused_count(m) && i < 10; i++)
        printf("    unused %s\n", sd_model_unused_at(m, i));
    if (sd_model_unused_count(m)) bad = 1;
    const unet_config *uc = &m->unet->cfg;
    printf("  unet: %d blocks [%d %d %d %d], layers %d, heads %d, context %d, groups %d\n",
           uc->n_blocks, uc->block_out_channels[0], uc->block_out_channels[1],
           uc->block_out_channels[2], uc->block_out_channels[3], uc->layers_per_block[0],
           uc->heads[0], uc->cross_attention_dim, uc->norm_num_groups);
    if (bad) {
        sd_model_free(m);
        return 1;
    }

    const int B = 2, T = 77, D = uc->cross_attention_dim, C = uc->in_channels, h = 8, w = 8;
    int32_t ids[2 * 77];
    if (tokenizer_encode(m->tokenizer, "a photo of a cat", T, ids, NULL, NULL, &err) ||
        tokenizer_encode(m->tokenizer, "", T, ids + T, NULL, NULL, &err))
        return fail("tokenize", &err);
    o->n_ctx = (size_t)B * T * D;
    o->n_eps = (size_t)B * uc->out_channels * h * w;
    int f = 1 << (m->vae->cfg.n_blocks - 1);
    o->n_img = (size_t)B * m->vae->cfg.out_channels * h * f * w * f;
    o->context = malloc(o->n_ctx * sizeof(float));
    o->eps = malloc(o->n_eps * sizeof(float));
    o->image = malloc(o->n_img * sizeof(float));
    float *x = malloc(sizeof(float) * B * C * h * w);
    for (int i = 0; i < B * C * h * w; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    size_t bytes = clip_text_arena_bytes(clip_text_get_config(m->text_encoder), B, T);
    size_t ub = unet_arena_bytes(m->unet, B, h, w, T), vb = vae_decode_arena_bytes(m->vae, B, h, w);
    if (ub > bytes) bytes = ub;
    if (vb > bytes) bytes = vb;
    arena a;
    int rc = 1;
    if (arena_init(&a, bytes, &err)) {
        fail("arena", &err);
        goto cleanup;
    }
    t0 = now();
    if (clip_text_forward(m->text_encoder, &a, ids, B, T, o->context, NULL, NULL, &err)) {
        fail("text encoder", &err);
        goto cleanup_arena;
    }
    double t1 = now();
    float ts[2] = {981, 1};
    if (unet_forward(m->unet, &a, x, ts, o->context, B, h, w, T, o->eps, &err)) {
        fail("unet", &err);
        goto cleanup_arena;
    }
    double t2 = now();
    if (vae_decode(m->vae, &a, o->eps, B, h, w, o->image, &err)) {
        fail("vae", &err);
        goto cleanup_arena;
    }
    double t3 = now();
    printf("  text encoder %.2f s, unet (2, 4, 8, 8) %.2f s, vae decode -> (2, 3, %d, %d) %.2f s\n",
           t1 - t0, t2 - t1, h * f, w * f, t3 - t2);
    if (!all_finite(o->context, o->n_ctx) || !all_finite(o->eps, o->n_eps) ||
        !all_finite(o->image, o->n_img)) {
        fprintf(stderr, "check_sd15: %s: non-finite outputs\n", path);
        goto cleanup_arena;
    }
    double s = 0;
    for (size_t i = 0; i < o->n_eps; i++) s += fabs(o->eps[i]);
    printf("  unet output mean |eps| = %.4f\n", s / (double)o->n_eps);
    rc = 0;
cleanup_arena:
    arena_free(&a);
cleanup:
    free(x);
    sd_model_free(m);
    return rc;
}

static int same(const char *what, const float *a, const float *b, size_t n) {
    size_t diff = 0;
    double max = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            diff++;
            if (fabs(a[i] - b[i]) > max) max = fabs(a[i] - b[i]);
        }
    printf("  %-12s folder vs single file: %zu of %zu values differ (max %.3g)\n", what, diff, n, max);
    return diff == 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: check_sd15 SD15_FOLDER SD15_SINGLE.safetensors\n");
        return 2;
    }
    outputs a = {0}, b = {0};
    sd_load_params p = sd_load_default_params();
    int rc = run(argv[1], &p, &a);
    char tok[2048];
    snprintf(tok, sizeof tok, "%s/tokenizer", argv[1]);
    p.tokenizer_dir = tok; /* a single file has no tokenizer; its configs are inferred */
    if (!rc) rc = run(argv[2], &p, &b);
    if (!rc) {
        int ok = same("context", a.context, b.context, a.n_ctx) &
                 same("unet eps", a.eps, b.eps, a.n_eps) & same("vae image", a.image, b.image, a.n_img);
        rc = !ok;
    }
    printf("check_sd15: %s\n", rc ? "FAILED" : "PASSED");
    free(a.context), free(a.eps), free(a.image), free(b.context), free(b.eps), free(b.image);
    return rc;
}
