/* UNet (and VAE decode) speed and memory at Stable Diffusion 1.5 size.
 *
 *     .venv-tools/bin/python tools/make_random_sd.py /tmp/sd15     # once: random SD 1.5 weights
 *     build/release/bench/bench_unet /tmp/sd15 [--what unet|vae|text|all] [--threads 2] [--iters 3]
 *                                    [--batch 2] [--latent 64] [--ctx 77]
 *     .venv-tools/bin/python tools/bench/torch_unet.py /tmp/sd15    # the same in PyTorch
 *
 * (or OIR_BENCH_SD=/tmp/sd15). Runs the UNet forward on a (B, 4, 64, 64) latent with a 77 x 768
 * context, fp32, one timestep per row, and the VAE decode of one 64x64 latent to a 512x512
 * image; prints seconds per pass (best and mean of --iters after one warm-up), the process's
 * CPU seconds per pass (all threads; on a loaded machine --threads 1 CPU time is the figure
 * that load does not distort) and the peak resident memory next to the weights' size and the
 * arena plan. Run --what unet and
 * --what vae separately for separate peak-memory figures. Without a model folder it prints how
 * to make one and exits 0 (benchmarks are not tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/arena.h"
#include "io/safetensors.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"
#include "models/weights.h"
#include "oir.h"





/* Deterministic N(0, 1)-ish numbers (sum of uniforms), no RNG state shared with anything. */
static void fill(float *x, size_t n, unsigned seed) {
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        float acc = 0;
        for (int k = 0; k < 4; k++) {
            s = s * 1664525u + 1013904223u;
            acc += (s >> 8) * (1.0f / 16777216.0f);
        }
        x[i] = (acc - 2.0f) * 1.7320508f;
    }
}

typedef struct {
    st_file *f;
    weights *w;
} wfile;

static int open_component(wfile *wf, const char *dir, const char *comp, oir_error *err) {
    char path[4096];
    /* diffusers components use diffusion_pytorch_model.safetensors, transformers ones model.safetensors */
    snprintf(path, sizeof path, "%s/%s/%s", dir, comp,
             strcmp(comp, "text_encoder") ? "diffusion_pytorch_model.safetensors" : "model.safetensors");
    memset(wf, 0, sizeof *wf);
    int rc = st_open(&wf->f, path, err);
    if (!rc) rc = weights_from_file(&wf->w, wf->f, comp, "", NULL, err);
    return rc;
}

static void close_component(wfile *wf) {
    weights_free(wf->w);
    st_close(wf->f);
}

/* Wall seconds t and process CPU seconds cpu (all threads, spinning included) per run. */
static void report(const char *what, const double *t, const double *cpu, int iters) {
    double best = t[0], sum = 0, cbest = cpu[0];
    for (int i = 0; i < iters; i++) {
        if (t[i] < best) best = t[i];
        if (cpu[i] < cbest) cbest = cpu[i];
        sum += t[i];
    }
    printf("%s: best %.3f s, mean %.3f s over %d runs (", what, best, sum / iters, iters);
    for (int i = 0; i < iters; i++) printf("%s%.3f", i ? " " : "", t[i]);
    printf("); CPU time best %.3f s\n", cbest);
}

static int bench_unet(const char *dir, int B, int lat, int ctx_len, int iters) {
    oir_error err = {0};
    wfile wf;
    unet_model *m = NULL;
    arena a = {0};
    float *x = NULL, *ctx = NULL, *out = NULL, *ts = NULL;
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/unet/config.json", dir);
    double t0 = clock_wall_s();
    int rc = open_component(&wf, dir, "unet", &err);
    if (!rc) rc = unet_load(&m, cpath, wf.w, &err);
    if (!rc) rc = weights_finish(wf.w, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    double wgb = weights_numel(wf.w) * 4.0 / (1 << 30);
    printf("unet: %lld parameters (%.2f GiB fp32), loaded in %.2f s\n",
           (long long)weights_numel(wf.w), wgb, clock_wall_s() - t0);
    const unet_config *c = &m->cfg;
    size_t nx = (size_t)B * c->in_channels * lat * lat,
           nc = (size_t)B * ctx_len * c->cross_attention_dim;
    x = malloc(nx * sizeof(float)), ctx = malloc(nc * sizeof(float));
    out = malloc((size_t)B * c->out_channels * lat * lat * sizeof(float)),
    ts = malloc(B * sizeof(float));
    fill(x, nx, 1), fill(ctx, nc, 2);
    for (int b = 0; b < B; b++) ts[b] = (float)(981 - 480 * b % 1000); /* one timestep per row */
    size_t plan = unet_arena_bytes(m, B, lat, lat, ctx_len);
    if ((rc = arena_init(&a, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("unet: batch %d, latent %dx%d, context %dx%d, arena plan %.3f GiB\n", B, lat, lat,
           ctx_len, c->cross_attention_dim, plan / (double)(1 << 30));
    double t[64], cpu[64];
    for (int i = -1; i < iters; i++) { /* i = -1: warm-up (touches the weights' pages) */
        double s = clock_wall_s(), cs = clock_cpu_s();
        if ((rc = unet_forward(m, &a, x, ts, ctx, B, lat, lat, ctx_len, out, &err))) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0)
            t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
        else
            printf("unet: warm-up %.3f s\n", clock_wall_s() - s);
    }
    double sum = 0;
    for (size_t i = 0; i < (size_t)B * c->out_channels * lat * lat; i++) sum += out[i];
    report("unet forward", t, cpu, iters);
    printf("unet: arena peak %.3f GiB; process peak RSS %.2f GiB, now %.2f GiB (weights %.2f GiB + "
           "%.2f GiB); checksum %.6g\n",
           a.peak / (double)(1 << 30), clock_peak_rss_gib(), clock_rss_gib(), wgb, clock_peak_rss_gib() - wgb,
           sum);
cleanup:
    arena_free(&a);
    free(x), free(ctx), free(out), free(ts);
    unet_free(m);
    close_component(&wf);
    return rc;
}

static int bench_vae(const char *dir, int lat, int iters) {
    oir_error err = {0};
    wfile wf;
    vae_model *m = NULL;
    arena a = {0};
    float *z = NULL, *img = NULL;
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/vae/config.json", dir);
    int rc = open_component(&wf, dir, "vae", &err);
    if (!rc) rc = vae_load(&m, cpath, wf.w, &err);
    if (!rc) rc = weights_finish(wf.w, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    int f = vae_downscale(&m->cfg), L = m->cfg.latent_channels;
    size_t nz = (size_t)L * lat * lat, ni = (size_t)m->cfg.out_channels * lat * f * lat * f;
    z = malloc(nz * sizeof(float)), img = malloc(ni * sizeof(float));
    fill(z, nz, 3);
    size_t plan = vae_decode_arena_bytes(m, 1, lat, lat);
    if ((rc = arena_init(&a, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("vae: decode %dx%d latent -> %dx%d image, arena plan %.3f GiB\n", lat, lat, lat * f,
           lat * f, plan / (double)(1 << 30));
    double t[64], cpu[64];
    for (int i = -1; i < iters; i++) {
        double s = clock_wall_s(), cs = clock_cpu_s();
        if ((rc = vae_decode(m, &a, z, 1, lat, lat, img, &err))) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0)
            t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
        else
            printf("vae: warm-up %.3f s\n", clock_wall_s() - s);
    }
    report("vae decode", t, cpu, iters);
    printf("vae: arena peak %.3f GiB; process peak RSS %.2f GiB\n", a.peak / (double)(1 << 30),
           clock_peak_rss_gib());
cleanup:
    arena_free(&a);
    free(z), free(img);
    vae_free(m);
    close_component(&wf);
    return rc;
}

static int bench_text(const char *dir, int B, int ctx_len, int iters) {
    oir_error err = {0};
    wfile wf;
    clip_text_model *m = NULL;
    clip_text_config cfg;
    arena a = {0};
    int32_t *ids = NULL;
    float *out = NULL;
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/text_encoder/config.json", dir);
    int rc = open_component(&wf, dir, "text_encoder", &err);
    if (!rc) rc = clip_text_config_load(&cfg, cpath, &err);
    if (!rc) rc = clip_text_load(&m, &cfg, wf.w, 0, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    ids = malloc(sizeof(int32_t) * (size_t)B * ctx_len);
    out = malloc(sizeof(float) * (size_t)B * ctx_len * cfg.hidden_size);
    for (int i = 0; i < B * ctx_len; i++) ids[i] = (int32_t)((i * 7919) % (cfg.vocab_size - 1));
    size_t plan = clip_text_arena_bytes(&cfg, B, ctx_len);
    if ((rc = arena_init(&a, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("text: batch %d x %d tokens, hidden %d, %d layers\n", B, ctx_len, cfg.hidden_size, cfg.num_hidden_layers);
    double t[64], cpu[64];
    for (int i = -1; i < iters; i++) {
        double s = clock_wall_s(), cs = clock_cpu_s();
        if ((rc = clip_text_forward(m, &a, ids, B, ctx_len, out, NULL, NULL, &err))) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0) t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
    }
    report("text encoder forward", t, cpu, iters);
cleanup:
    arena_free(&a);
    free(ids), free(out);
    clip_text_free(m);
    close_component(&wf);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = getenv("OIR_BENCH_SD"), *what = "all";
    int threads = 2, iters = 3, B = 2, lat = 64, ctx = 77;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--what") && v)
            what = v, i++;
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(v), i++;
        else if (!strcmp(a, "--iters") && v)
            iters = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v)
            B = atoi(v), i++;
        else if (!strcmp(a, "--latent") && v)
            lat = atoi(v), i++;
        else if (!strcmp(a, "--ctx") && v)
            ctx = atoi(v), i++;
        else if (a[0] != '-')
            dir = a;
        else {
            fprintf(stderr,
                    "usage: %s [DIR] [--what unet|vae|text|all] [--threads N] [--iters N] [--batch N] "
                    "[--latent N] [--ctx N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (iters < 1) iters = 1;
    if (iters > 64) iters = 64;
    if (!dir) {
        printf("bench_unet: SKIPPED, no model folder. Make one with\n"
               "  .venv-tools/bin/python tools/make_random_sd.py /tmp/sd15\n"
               "then run  bench_unet /tmp/sd15  (or set OIR_BENCH_SD=/tmp/sd15).\n");
        return 0;
    }
    oir_set_threads(threads);
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("bench_unet: %s, %d threads, fp32, OMP_WAIT_POLICY=%s\n", dir, threads,
           wp ? wp : "(unset)");
    int rc = 0;
    if (!strcmp(what, "unet") || !strcmp(what, "all")) rc |= bench_unet(dir, B, lat, ctx, iters);
    if (!strcmp(what, "text") || !strcmp(what, "all")) rc |= bench_text(dir, B, ctx, iters);
    if (!strcmp(what, "vae") || !strcmp(what, "all")) rc |= bench_vae(dir, lat, iters);
    return rc ? 1 : 0;
}
