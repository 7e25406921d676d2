/* AutoencoderKL against diffusers 0.16.1 (fixtures in tests/fixtures/sd/, made by
 * tools/fixtures/make_sd_fixtures.py): the tiny-pipe VAE encodes a (2, 3, 16, 16) image to its
 * posterior mean and decodes a (2, 4, 8, 8) latent; every intermediate the fixture holds is
 * compared too. Also: the same weights under later diffusers' attention names (to_q, to_k,
 * to_v, to_out.0), rows alone vs in the batch (also at 128x128, where the mid-block
 * attention runs one sample at a time), bad configs, bad sizes, a short arena.
 *
 * Tolerances (fp32, tiny random-weight model, values of order 1):
 *   latent_mean, decoded, intermediates vs PyTorch   atol 1e-4, rtol 1e-3
 *   renamed attention weights, a row alone           atol 1e-5, rtol 1e-5 (same arithmetic;
 *       BLAS blocking may differ with the number of rows)                                    */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "models/vae.h"
#include "models/weights.h"

#define ATOL 1e-4f
#define RTOL 1e-3f
#define SAME_TOL 1e-5f

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static const char *config_path(void) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", th_fixture_path("sd/tiny-pipe/vae/config.json"));
    return buf;
}

typedef struct {
    st_file *f;
    weights *w;
    vae_model *m;
} loaded;

static void unload(loaded *l) {
    vae_free(l->m);
    weights_free(l->w);
    st_close(l->f);
    memset(l, 0, sizeof *l);
}

/* path: a fixture name, or an absolute path (a file this test wrote). */
static int load(loaded *l, const char *path) {
    oir_error err = {0};
    memset(l, 0, sizeof *l);
    if (path[0] == '/') {
        if (!CHECK(st_open(&l->f, path, &err) == OIR_OK, "%s: %s", path, err.message)) return 0;
    } else if (!(l->f = th_open_fixture(path))) {
        return 0;
    }
    if (!CHECK(weights_from_file(&l->w, l->f, "vae", "", NULL, &err) == OIR_OK, "%s: %s", path,
               err.message) ||
        !CHECK(vae_load(&l->m, config_path(), l->w, &err) == OIR_OK, "vae_load %s: %s", path,
               err.message) ||
        !CHECK(weights_finish(l->w, &err) == OIR_OK, "weights_finish %s: %s", path, err.message)) {
        unload(l);
        return 0;
    }
    int unused = weights_unused_count(l->w);
    CHECK(unused == 0, "%s: %d unused tensors (first: %s)", path, unused,
          unused ? weights_unused_at(l->w, 0) : "");
    return 1;
}

/* ---- tap ---------------------------------------------------------------- */

typedef struct {
    st_file *ref;
    int compared;
} tap_ctx;

static void compare_tap(void *user, const char *name, const float *data, size_t n) {
    tap_ctx *t = user;
    if (!st_find(t->ref, name)) return;
    size_t rn;
    float *r = th_fixture_f32(t->ref, name, &rn, NULL);
    if (!r) return;
    char what[64];
    snprintf(what, sizeof what, "  %s", name);
    if (CHECK(rn == n, "%s: %zu values, reference has %zu", name, n, rn))
        th_close(what, data, r, n, ATOL, RTOL);
    free(r);
    t->compared++;
}

/* ---- parity ------------------------------------------------------------- */

typedef struct {
    float *image, *want_mean, *latent, *want_dec;
    size_t n_image, n_mean, n_latent, n_dec;
    int B, H, W, h, w;
} vae_ref;

static int read_ref(vae_ref *r, st_file *ref) {
    tensor ti, tl;
    memset(r, 0, sizeof *r);
    r->image = th_fixture_f32(ref, "image", &r->n_image, &ti);
    r->want_mean = th_fixture_f32(ref, "latent_mean", &r->n_mean, NULL);
    r->latent = th_fixture_f32(ref, "latent", &r->n_latent, &tl);
    r->want_dec = th_fixture_f32(ref, "decoded", &r->n_dec, NULL);
    if (!r->image || !r->want_mean || !r->latent || !r->want_dec) return 0;
    r->B = (int)ti.shape[0], r->H = (int)ti.shape[2], r->W = (int)ti.shape[3];
    r->h = (int)tl.shape[2], r->w = (int)tl.shape[3];
    return 1;
}

static void free_ref(vae_ref *r) {
    free(r->image), free(r->want_mean), free(r->latent), free(r->want_dec);
}

/* Encodes and decodes the reference inputs; the outputs are returned (malloc'd). */
static int run(const vae_model *m, const vae_ref *r, int B, const float *image, const float *latent,
               float *mean, float *dec, const vae_tap *tap) {
    arena a = {0};
    oir_error err = {0};
    size_t plan_e = vae_encode_arena_bytes(m, B, r->H, r->W),
           plan_d = vae_decode_arena_bytes(m, B, r->h, r->w);
    size_t plan = vae_arena_bytes(m, B, r->H, r->W);
    CHECK(plan >= plan_e && plan >= plan_d, "vae_arena_bytes covers encode and decode");
    if (!CHECK(arena_init(&a, plan, &err) == OIR_OK, "arena: %s", err.message)) return 0;
    int ok = CHECK(vae_encode_mean_tap(m, &a, image, B, r->H, r->W, mean, tap, &err) == OIR_OK,
                   "encode: %s", err.message);
    size_t peak_e = a.peak;
    a.peak = 0;
    ok = ok && CHECK(vae_decode_tap(m, &a, latent, B, r->h, r->w, dec, tap, &err) == OIR_OK,
                     "decode: %s", err.message);
    CHECK(a.used == 0, "arena reset after each pass (used %zu)", a.used);
    if (tap)
        printf("  arena: encode plan %.2f MB peak %.2f MB, decode plan %.2f MB peak %.2f MB\n",
               plan_e / 1e6, peak_e / 1e6, plan_d / 1e6, a.peak / 1e6);
    arena_free(&a);
    return ok;
}

/* ref_name: sd/ref_vae.safetensors (16x16), or the non-square one (encode 12x20, decode
 * 10x6 latents; tools/fixtures/make_nonsquare_fixtures.py) */
static void check_reference(const char *label, const char *ref_name) {
    printf("%s\n", label);
    loaded l;
    if (!load(&l, "sd/tiny-pipe/vae/diffusion_pytorch_model.safetensors")) return;
    CHECK(l.m->cfg.scaling_factor == 0.18215f, "scaling_factor %g", l.m->cfg.scaling_factor);
    st_file *ref = th_open_fixture(ref_name);
    vae_ref r;
    float *mean = NULL, *dec = NULL, *mean1 = NULL, *dec1 = NULL, *mean2 = NULL, *dec2 = NULL;
    if (!ref || !read_ref(&r, ref)) goto cleanup;
    mean = calloc(r.n_mean, sizeof(float)), dec = calloc(r.n_dec, sizeof(float));
    tap_ctx tc = {ref, 0};
    vae_tap tap = {compare_tap, &tc};
    if (!run(l.m, &r, r.B, r.image, r.latent, mean, dec, &tap)) goto cleanup;
    th_close("latent_mean", mean, r.want_mean, r.n_mean, ATOL, RTOL);
    th_close("decoded", dec, r.want_dec, r.n_dec, ATOL, RTOL);
    CHECK(tc.compared >= 8, "compared %d intermediates", tc.compared);

    /* each row alone */
    size_t pm = r.n_mean / r.B, pd = r.n_dec / r.B, pi = r.n_image / r.B, pl = r.n_latent / r.B;
    mean1 = calloc(pm, sizeof(float)), dec1 = calloc(pd, sizeof(float));
    for (int b = 0; b < r.B; b++) {
        if (!run(l.m, &r, 1, r.image + b * pi, r.latent + b * pl, mean1, dec1, NULL)) break;
        char what[64];
        snprintf(what, sizeof what, "row %d alone: mean", b);
        th_close(what, mean1, mean + b * pm, pm, SAME_TOL, SAME_TOL);
        snprintf(what, sizeof what, "row %d alone: decoded", b);
        th_close(what, dec1, dec + b * pd, pd, SAME_TOL, SAME_TOL);
    }

    /* the same weights saved with later diffusers' attention names */
    const char *renamed = tmp_path("renamed.safetensors");
    st_writer *wr = st_writer_new();
    oir_error err = {0};
    int ok = 1, n_renamed = 0;
    const char *from[] = {".query.", ".key.", ".value.", ".proj_attn."};
    const char *to[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    for (int i = 0; i < st_count(l.f) && ok; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s", st_name_at(l.f, i));
        for (int k = 0; k < 4; k++) {
            char *p = strstr(name, from[k]);
            if (!p) continue;
            char tail[512];
            snprintf(tail, sizeof tail, "%s", p + strlen(from[k]));
            snprintf(p, sizeof name - (size_t)(p - name), "%s%s", to[k], tail);
            n_renamed++;
        }
        ok = st_writer_add(wr, name, st_tensor_at(l.f, i), &err) == OIR_OK;
    }
    ok = ok && st_writer_save(wr, renamed, &err) == OIR_OK;
    st_writer_free(wr);
    CHECK(ok && n_renamed == 16, "write %s (%d renamed): %s", renamed, n_renamed, err.message);
    loaded l2;
    if (ok && load(&l2, renamed)) {
        mean2 = calloc(r.n_mean, sizeof(float)), dec2 = calloc(r.n_dec, sizeof(float));
        if (run(l2.m, &r, r.B, r.image, r.latent, mean2, dec2, NULL)) {
            th_close("to_q/to_k/to_v/to_out.0 names: mean", mean2, mean, r.n_mean, SAME_TOL,
                     SAME_TOL);
            th_close("to_q/to_k/to_v/to_out.0 names: decoded", dec2, dec, r.n_dec, SAME_TOL,
                     SAME_TOL);
        }
        unload(&l2);
    }
    unlink(renamed);
    free_ref(&r);
cleanup:
    free(mean), free(dec), free(mean1), free(dec1), free(mean2), free(dec2);
    st_close(ref);
    unload(&l);
}

/* ---- large images: the mid-block attention one sample at a time --------- */

static void fill(float *x, size_t n, unsigned seed) {
    unsigned s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) * (2.0 / 16777216.0) - 1.0);
    }
}

/* A 128x128 image has a 64x64 = 4096-token mid block in the tiny VAE: a batch of 2 runs that
 * attention one sample at a time. Each row of the batch must equal that row alone. */
static void check_chunked(void) {
    printf("128x128 images (chunked mid-block attention)\n");
    loaded l;
    if (!load(&l, "sd/tiny-pipe/vae/diffusion_pytorch_model.safetensors")) return;
    int B = 2, H = 128, f = vae_downscale(&l.m->cfg), h = H / f, L = l.m->cfg.latent_channels;
    size_t ni = (size_t)3 * H * H, nl = (size_t)L * h * h;
    float *img = malloc(B * ni * sizeof(float)), *mean = malloc(B * nl * sizeof(float));
    float *dec = malloc(B * ni * sizeof(float)), *mean1 = malloc(nl * sizeof(float));
    float *dec1 = malloc(ni * sizeof(float));
    fill(img, B * ni, 5);
    arena a = {0};
    oir_error err = {0};
    if (!CHECK(arena_init(&a, vae_arena_bytes(l.m, B, H, H), &err) == OIR_OK, "%s", err.message))
        goto cleanup;
    if (!CHECK(vae_encode_mean(l.m, &a, img, B, H, H, mean, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(vae_decode(l.m, &a, mean, B, h, h, dec, &err) == OIR_OK, "%s", err.message))
        goto cleanup;
    for (int b = 0; b < B; b++) {
        if (!CHECK(vae_encode_mean(l.m, &a, img + b * ni, 1, H, H, mean1, &err) == OIR_OK, "%s",
                   err.message) ||
            !CHECK(vae_decode(l.m, &a, mean + b * nl, 1, h, h, dec1, &err) == OIR_OK, "%s",
                   err.message))
            break;
        char what[64];
        snprintf(what, sizeof what, "128x128 row %d alone: mean", b);
        th_close(what, mean1, mean + b * nl, nl, SAME_TOL, SAME_TOL);
        snprintf(what, sizeof what, "128x128 row %d alone: decoded", b);
        th_close(what, dec1, dec + b * ni, ni, SAME_TOL, SAME_TOL);
    }
cleanup:
    arena_free(&a);
    free(img), free(mean), free(dec), free(mean1), free(dec1);
    unload(&l);
}

/* ---- bad input ---------------------------------------------------------- */

static void check_bad_configs(void) {
    printf("bad configs\n");
    FILE *fp = fopen(config_path(), "rb");
    if (!CHECK(fp != NULL, "open %s", config_path())) return;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    cJSON *base = cJSON_Parse(buf);
    if (!CHECK(base != NULL, "parse %s", config_path())) return;
    struct {
        const char *key, *value;
        int code;
        const char *needle1, *needle2;
    } cases[] = {
        {"down_block_types", "[\"DownEncoderBlock2D\", \"AttnDownEncoderBlock2D\"]",
         OIR_E_UNSUPPORTED, "down_block_types[1]", "AttnDownEncoderBlock2D"},
        {"up_block_types", "[\"UpDecoderBlock2D\", \"UpBlock2D\"]", OIR_E_UNSUPPORTED,
         "up_block_types[1]", "UpBlock2D"},
        {"block_out_channels", "[16, 32, 64]", OIR_E_FORMAT, "block_out_channels has 3",
         "down_block_types 2"},
        {"block_out_channels", "[16, 20]", OIR_E_FORMAT, "block_out_channels[1] = 20",
         "norm_num_groups = 8"},
        {"latent_channels", "-4", OIR_E_FORMAT, "latent_channels", "-4"},
        {"act_fn", "\"relu\"", OIR_E_UNSUPPORTED, "act_fn", "relu"},
        {"scaling_factor", "\"big\"", OIR_E_FORMAT, "scaling_factor", "big"},
        {"use_quant_conv", "false", OIR_E_UNSUPPORTED, "use_quant_conv", "false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j = cJSON_Duplicate(base, 1);
        cJSON *v = cJSON_Parse(cases[i].value);
        if (cJSON_GetObjectItemCaseSensitive(j, cases[i].key))
            cJSON_ReplaceItemInObjectCaseSensitive(j, cases[i].key, v);
        else
            cJSON_AddItemToObject(j, cases[i].key, v);
        char *s = cJSON_Print(j);
        const char *path = tmp_path("config.json");
        fp = fopen(path, "wb");
        if (fp) fputs(s, fp), fclose(fp);
        free(s);
        cJSON_Delete(j);
        vae_model *m = NULL;
        oir_error err = {0};
        int rc = vae_load(&m, path, NULL, &err);
        CHECK(rc == cases[i].code && !m && strstr(err.message, cases[i].needle1) &&
                  strstr(err.message, cases[i].needle2) && strstr(err.message, "config.json"),
              "%s = %s: code %d (want %d), \"%s\"", cases[i].key, cases[i].value, rc, cases[i].code,
              err.message);
        printf("  %s = %s -> %s\n", cases[i].key, cases[i].value, err.message);
    }
    unlink(tmp_path("config.json"));
    cJSON_Delete(base);
}

static void check_bad_sizes(void) {
    printf("bad sizes\n");
    loaded l;
    if (!load(&l, "sd/tiny-pipe/vae/diffusion_pytorch_model.safetensors")) return;
    arena a = {0};
    oir_error err = {0};
    float *img = calloc(3 * 64 * 64, sizeof(float)), *out = calloc(3 * 64 * 64, sizeof(float));
    if (CHECK(arena_init(&a, vae_arena_bytes(l.m, 1, 16, 16), &err) == OIR_OK, "%s", err.message)) {
        int rc = vae_encode_mean(l.m, &a, img, 1, 15, 16, out, &err);
        CHECK(rc == OIR_E_SHAPE && strstr(err.message, "15x16"), "15x16 image: %d %s", rc,
              err.message);
        printf("  image 15x16 -> %s\n", err.message);
        /* 64x64: the convolutions' scratch is the backend's, so a plan holds
         * a little more than its size, never 16 times its pixels */
        rc = vae_encode_mean(l.m, &a, img, 1, 64, 64, out, &err);
        CHECK(rc == OIR_E_NOMEM && strstr(err.message, "arena") && a.used == 0,
              "64x64 in a 16x16 arena: %d %s", rc, err.message);
        printf("  64x64 image in an arena planned for 16x16 -> %s\n", err.message);
        rc = vae_decode(l.m, &a, img, 1, 16, 16, out, &err);
        CHECK(rc == OIR_E_NOMEM && a.used == 0, "16x16 latent in a 16x16-image arena: %d %s", rc,
              err.message);
    }
    arena_free(&a);
    free(img), free(out);
    unload(&l);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/oir_test_vae_%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    if (!CHECK(mkdir(tmpdir, 0700) == 0, "mkdir %s", tmpdir)) return th_summary();
    vae_config sd1 = vae_config_sd1();
    oir_error err = {0};
    CHECK(vae_config_check(&sd1, "sd1", &err) == OIR_OK && vae_downscale(&sd1) == 8,
          "sd1 config: %s", err.message);
    check_reference("tiny-pipe vae", "sd/ref_vae.safetensors");
    check_reference("tiny-pipe vae, 12x20 image / 10x6 latent (non-square)",
                    "sd/ref_vae_nonsquare.safetensors");
    check_chunked();
    check_bad_configs();
    check_bad_sizes();
    rmdir(tmpdir);
    return th_summary();
}
