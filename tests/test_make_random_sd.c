/* tools/make_random_sd.c: the random SD 1.x folder without Python.
 *
 * - --count: the SD 1.5 configuration's parameter counts are diffusers' own
 *   (UNet 859,520,964, VAE 83,653,863, CLIP text 123,060,480), so every SD 1.5
 *   tensor is there with its shape (the small config shares the code);
 * - the --small folder loads with the normal loader (every tensor read, none
 *   unused, the folder's tokenizer), the text encoder, a UNet step (B 2, 8x8)
 *   and a VAE decode run on the CPU with finite, non-constant outputs; the
 *   weights follow the init rule (fan-in std, 0.02 embeddings, norm scales 1,
 *   biases 0) and are a function of the seed;
 * - an existing folder is refused (and kept), --force replaces it, bad
 *   arguments exit 2, a missing tokenizer exits 1; no temp folder is left. */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "cli_runner.h"
#include "core/arena.h"
#include "models/loader.h"

static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* Hidden entries (the tool's temp folders) in the scratch folder. */
static int hidden_entries(void) {
    DIR *d = opendir(cr_tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".stdout") &&
            strcmp(e->d_name, ".stderr"))
            n++;
    if (d) closedir(d);
    return n;
}

static int file_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Mean and std of a stored F16 tensor of the model. */
static int f16_stats(const sd_model *m, const char *comp, const char *name, double *mean, double *sd) {
    const tensor *t = weights_find(sd_model_weights(m, comp), name);
    if (!t || t->type != DT_F16) return 0;
    int64_t n = tensor_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = f16_to_f32(((const uint16_t *)t->data)[i]);
        s += v, s2 += v * v;
    }
    *mean = s / n, *sd = sqrt(s2 / n - *mean * *mean);
    return 1;
}

static int finite_varied(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] != x[0]) return 1;
    return 0;
}

static void check_counts(void) {
    int rc = cr_run("--count", NULL);
    CHECK(rc == 0 && strstr(cr_out, "unet 859520964, vae 83653863, text_encoder 123060480, total 1066235307"),
          "--count: SD 1.5 parameter counts: rc %d, \"%s\"", rc, cr_out);
}

static void check_small_folder(const char *dir) {
    sd_model *m = NULL;
    oir_error err = {0};
    int rc = sd_model_load(&m, dir, NULL, &err);
    CHECK(rc == OIR_OK, "the small folder loads: %s", err.message);
    if (rc) return;
    CHECK(sd_model_unused_count(m) == 0, "no unused tensors (first: %s)",
          sd_model_unused_count(m) ? sd_model_unused_at(m, 0) : "");
    CHECK(m->tokenizer && strstr(tokenizer_source(m->tokenizer), "tokenizer"), "the folder's tokenizer: %s",
          m->tokenizer ? tokenizer_source(m->tokenizer) : "(none)");
    CHECK(m->unet->cfg.block_out_channels[0] == 32 && m->unet->cfg.n_blocks == 4 && m->unet->cfg.cross_attention_dim == 32,
          "the small UNet config");
    double mean = 0, sd = 0;
    CHECK(f16_stats(m, "unet", "conv_in.weight", &mean, &sd) && fabs(sd - 1 / 6.0) < 0.02 && fabs(mean) < 0.03,
          "conv_in.weight ~ N(0, 1/36): mean %g std %g", mean, sd);
    CHECK(f16_stats(m, "text_encoder", "text_model.embeddings.token_embedding.weight", &mean, &sd) &&
              fabs(sd - 0.02) < 0.0005 && fabs(mean) < 0.0005,
          "token embedding ~ N(0, 0.02): mean %g std %g", mean, sd);
    CHECK(f16_stats(m, "unet", "conv_norm_out.weight", &mean, &sd) && mean == 1 && sd == 0, "norm scales 1");
    CHECK(f16_stats(m, "vae", "decoder.conv_out.bias", &mean, &sd) && mean == 0 && sd == 0, "biases 0");

    /* a prompt, a UNet step at batch 2 (8x8 latents), a decode: finite, not constant */
    const int B = 2, lat = 8, L = 77, D = 32;
    int32_t ids[2 * 77];
    float ctx[2 * 77 * 32], x[2 * 4 * 8 * 8], eps[2 * 4 * 8 * 8], ts[2] = {981, 1}, img[3 * 64 * 64];
    rc = tokenizer_encode(m->tokenizer, "a red circle", L, ids, NULL, NULL, &err);
    if (!rc) rc = tokenizer_encode(m->tokenizer, "", L, ids + L, NULL, NULL, &err);
    arena a = {0};
    size_t need = clip_text_arena_bytes(clip_text_get_config(m->text_encoder), B, L);
    size_t nu = unet_arena_bytes(m->unet, B, lat, lat, L), nv = vae_decode_arena_bytes(m->vae, 1, lat, lat);
    need = need > nu ? need : nu;
    need = need > nv ? need : nv;
    if (!rc) rc = arena_init(&a, need, &err);
    if (!rc) rc = clip_text_forward(m->text_encoder, &a, ids, B, L, ctx, NULL, NULL, &err);
    CHECK(rc == OIR_OK && finite_varied(ctx, (size_t)B * L * D), "text encoder: %s", err.message);
    for (int i = 0; i < B * 4 * lat * lat; i++) x[i] = sinf(0.37f * i);
    if (!rc) rc = unet_forward(m->unet, &a, x, ts, ctx, B, lat, lat, L, eps, &err);
    CHECK(rc == OIR_OK && finite_varied(eps, sizeof eps / sizeof eps[0]), "UNet step: %s", err.message);
    if (!rc) rc = vae_decode(m->vae, &a, x, 1, lat, lat, img, &err);
    CHECK(rc == OIR_OK && finite_varied(img, sizeof img / sizeof img[0]), "VAE decode: %s", err.message);
    arena_free(&a);
    sd_model_free(m);
}

int main(int argc, char **argv) {
    (void)cr_expect_error; /* the tool prints "make_random_sd: ...", not "oir CMD: ..." */
    if (cr_init(argv[0])) {
        CHECK(0, "scratch folder");
        return th_summary();
    }
    char *slash = strrchr(cr_bin, '/');
    snprintf(slash, sizeof cr_bin - (size_t)(slash - cr_bin), "/tools/make_random_sd"); /* build/<cfg>/tests/../tools/ */
    check_counts();

    const char *dir = cr_path("sd"), *again = cr_path("sd-again"), *seed1 = cr_path("sd-seed1");
    int rc = cr_run(dir, "--small", NULL);
    CHECK(rc == 0 && strstr(cr_out, "small config, fp16"), "--small writes: rc %d, %s%s", rc, cr_out, cr_err);
    check_small_folder(dir);

    /* the seed decides the values, nothing else */
    rc = cr_run(again, "--small", NULL) | cr_run(seed1, "--small", "--seed", "1", NULL);
    char f0[600], f1[600], f2[600];
    snprintf(f0, sizeof f0, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    snprintf(f1, sizeof f1, "%s/unet/diffusion_pytorch_model.safetensors", again);
    snprintf(f2, sizeof f2, "%s/unet/diffusion_pytorch_model.safetensors", seed1);
    CHECK(rc == 0 && file_equal(f0, f1) && !file_equal(f0, f2), "same seed, same bytes; another seed, others");

    /* an existing folder: refused and kept; --force replaces it */
    char marker[600];
    snprintf(marker, sizeof marker, "%s/marker", dir);
    FILE *fp = fopen(marker, "w");
    if (fp) fclose(fp);
    rc = cr_run(dir, "--small", NULL);
    CHECK(rc == 1 && strstr(cr_err, "already exists") && strstr(cr_err, "--force") && exists(marker),
          "an existing folder is refused and kept: rc %d, \"%s\"", rc, cr_err);
    rc = cr_run(dir, "--small", "--force", NULL);
    CHECK(rc == 0 && !exists(marker) && exists(f0), "--force replaces it: rc %d, %s", rc, cr_err);

    /* bad arguments: exit 2 with the usage; a missing tokenizer: exit 1, nothing left */
    const char *bad[][4] = {{"--seed", "x", NULL}, {"--seed", NULL}, {"--bogus", NULL}, {"--small", NULL},
                            {"a", "b", NULL}};
    const char *why[] = {"--seed needs a number", "need a value", "unknown option --bogus", "no OUT_DIR",
                         "one OUT_DIR only"};
    for (int i = 0; i < 5; i++) {
        rc = cr_run(bad[i][0], bad[i][1], bad[i][2], NULL);
        CHECK(rc == 2 && strstr(cr_err, why[i]) && strstr(cr_err, "usage:"), "bad arguments %d: rc %d, \"%s\"", i,
              rc, cr_err);
    }
    const char *notok = cr_path("sd-notok");
    rc = cr_run(notok, "--small", "--tokenizer", cr_path("no-such-folder"), NULL);
    CHECK(rc == 1 && strstr(cr_err, "vocab.json") && !exists(notok), "missing tokenizer: rc %d, \"%s\"", rc, cr_err);
    CHECK(hidden_entries() == 0, "no temp folder left behind");

    /* --fp32 stores F32 */
    const char *f32 = cr_path("sd-f32");
    rc = cr_run(f32, "--small", "--fp32", NULL);
    sd_model *m = NULL;
    oir_error err = {0};
    if (!rc) rc = sd_model_load(&m, f32, NULL, &err);
    const tensor *t = m ? weights_find(sd_model_weights(m, "unet"), "conv_in.weight") : NULL;
    CHECK(rc == 0 && t && t->type == DT_F32, "--fp32: F32 weights (%s)", err.message);
    sd_model_free(m);

    cr_cleanup();
    return th_summary();
}
