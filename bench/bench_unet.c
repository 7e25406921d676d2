/* UNet (and VAE decode) speed and memory at Stable Diffusion 1.5 size, on the
 * CPU or a Vulkan device.
 *
 *     build/release/tools/make_random_sd /tmp/sd15        # once: random SD 1.5 weights (fp16)
 *     build/release/bench/bench_unet /tmp/sd15 [--what unet|vae|text|all] [--threads 2] [--iters 3]
 *                                    [--warmup 1] [--batch 2] [--latent 64] [--ctx 77]
 *                                    [--device cpu|vulkan[:N]]
 *     .venv-tools/bin/python tools/bench/torch_unet.py /tmp/sd15    # the same in PyTorch
 *
 * (or OIR_BENCH_SD=/tmp/sd15; tools/make_random_sd.py writes the same folder
 * with torch). The model is loaded with the loader onto --device
 * (sd_load_params.device: the UNet, VAE and text encoder on that backend).
 * Runs the UNet forward on a (B, 4, 64, 64) latent with a 77 x 768 context,
 * fp32, one timestep per row, and the VAE decode of one 64x64 latent to a
 * 512x512 image; prints seconds per pass (best and mean of --iters after
 * --warmup passes), the process's CPU seconds per pass (all threads; on a
 * loaded machine --threads 1 CPU time is the figure that load does not
 * distort) and the peak resident memory next to the weights' size and the
 * arena plan. Run --what unet and --what vae separately for separate
 * peak-memory figures.
 *
 * On a Vulkan device one view may span at most maxStorageBufferRange bytes
 * (docs/BACKENDS.md) and the UNet forward does not split its batch: a batch
 * is run in calls of the most rows whose largest view fits that range
 * (unet_max_rows_for_range, as the sampler splits), so no operand can exceed
 * it; the pass's time is the sum of its calls (the line says how it was
 * split).
 * Without a model folder it prints how to make one and exits 0 (benchmarks
 * are not tests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/arena.h"
#include "models/loader.h"
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
    const char *device; /* "cpu", "vulkan:0" */
    int warmup, iters;
} run_opts;

/* One component of the folder, on opts->device. */
static int load(sd_model **m, const char *dir, int component, const run_opts *o, oir_error *err) {
    sd_load_params p = sd_load_default_params();
    p.components = component;
    p.device = o->device;
    double t0 = clock_wall_s();
    int rc = sd_model_load(m, dir, &p, err);
    if (!rc) printf("%s: loaded onto %s in %.2f s\n", component == SD_UNET ? "unet" : component == SD_VAE ? "vae" : "text",
                    (*m)->device, clock_wall_s() - t0);
    return rc;
}

/* The host arena a forward takes: its activations on the CPU; on a device
 * they live in device memory, and the host arena is not used. */
static int host_arena(arena *a, const sd_model *m, size_t plan, oir_error *err) {
    return arena_init(a, m->backend ? 64 : plan, err);
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

static int bench_unet(const char *dir, int B, int lat, int ctx_len, const run_opts *o) {
    oir_error err = {0};
    sd_model *m = NULL;
    arena a = {0};
    float *x = NULL, *ctx = NULL, *out = NULL, *ts = NULL;
    int rc = load(&m, dir, SD_UNET, o, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        return rc;
    }
    const weights *w = sd_model_weights(m, "unet");
    double wgb = weights_numel(w) * 4.0 / (1 << 30);
    printf("unet: %lld parameters (%.2f GiB fp32)\n", (long long)weights_numel(w), wgb);
    const unet_config *c = &m->unet->cfg;
    size_t in_row = (size_t)c->in_channels * lat * lat, ctx_row = (size_t)ctx_len * c->cross_attention_dim,
           out_row = (size_t)c->out_channels * lat * lat;
    x = malloc(B * in_row * sizeof(float)), ctx = malloc(B * ctx_row * sizeof(float));
    out = malloc(B * out_row * sizeof(float)), ts = malloc(B * sizeof(float));
    if (!x || !ctx || !out || !ts) {
        fprintf(stderr, "bench_unet: out of memory\n");
        rc = OIR_E_NOMEM;
        goto cleanup;
    }
    fill(x, B * in_row, 1), fill(ctx, B * ctx_row, 2);
    for (int b = 0; b < B; b++) ts[b] = (float)(981 - 480 * b % 1000); /* one timestep per row */
    /* rows per call: the batch, or on a device the most rows whose largest view fits the device's range */
    size_t range = unet_backend(m->unet)->max_view_bytes;
    int fit = unet_max_rows_for_range(m->unet, lat, lat, ctx_len, range);
    int rows = B < fit ? B : fit;
    size_t plan = unet_arena_bytes(m->unet, rows, lat, lat, ctx_len);
    if ((rc = host_arena(&a, m, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("unet: batch %d, latent %dx%d, context %dx%d, arena plan %.3f GiB", B, lat, lat, ctx_len,
           c->cross_attention_dim, plan / (double)(1 << 30));
    if (rows < B)
        printf(" per call of %d rows (%d calls: a view of more rows would exceed the device's %.0f MiB view "
               "range)", rows, (B + rows - 1) / rows, range / 1048576.0);
    printf("\n");
    double t[64], cpu[64];
    for (int i = -o->warmup; i < o->iters; i++) { /* i < 0: warm-up (touches the weights' pages) */
        double s = clock_wall_s(), cs = clock_cpu_s();
        for (int b0 = 0; b0 < B && !rc; b0 += rows) {
            int r = B - b0 < rows ? B - b0 : rows;
            rc = unet_forward(m->unet, &a, x + b0 * in_row, ts + b0, ctx + b0 * ctx_row, r, lat, lat, ctx_len,
                              out + b0 * out_row, &err);
        }
        if (rc) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0)
            t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
        else
            printf("unet: warm-up %.3f s\n", clock_wall_s() - s);
    }
    double sum = 0;
    size_t nonfinite = 0;
    for (size_t i = 0; i < B * out_row; i++) {
        sum += out[i];
        nonfinite += !(out[i] - out[i] == 0);
    }
    report("unet forward", t, cpu, o->iters);
    printf("unet: arena peak %.3f GiB; process peak RSS %.2f GiB, now %.2f GiB (weights %.2f GiB + "
           "%.2f GiB); checksum %.6g, %zu non-finite\n",
           a.peak / (double)(1 << 30), clock_peak_rss_gib(), clock_rss_gib(), wgb, clock_peak_rss_gib() - wgb,
           sum, nonfinite);
    if (nonfinite) {
        fprintf(stderr, "bench_unet: the noise prediction holds %zu non-finite values\n", nonfinite);
        rc = OIR_E_INTERNAL;
    }
cleanup:
    arena_free(&a);
    free(x), free(ctx), free(out), free(ts);
    sd_model_free(m);
    return rc;
}

static int bench_vae(const char *dir, int lat, const run_opts *o) {
    oir_error err = {0};
    sd_model *m = NULL;
    arena a = {0};
    float *z = NULL, *img = NULL;
    int rc = load(&m, dir, SD_VAE, o, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        return rc;
    }
    const vae_model *v = m->vae;
    int f = vae_downscale(&v->cfg), L = v->cfg.latent_channels;
    size_t nz = (size_t)L * lat * lat, ni = (size_t)v->cfg.out_channels * lat * f * lat * f;
    z = malloc(nz * sizeof(float)), img = malloc(ni * sizeof(float));
    if (!z || !img) {
        fprintf(stderr, "bench_unet: out of memory\n");
        rc = OIR_E_NOMEM;
        goto cleanup;
    }
    fill(z, nz, 3);
    size_t plan = vae_decode_arena_bytes(v, 1, lat, lat);
    if ((rc = host_arena(&a, m, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("vae: decode %dx%d latent -> %dx%d image, arena plan %.3f GiB\n", lat, lat, lat * f,
           lat * f, plan / (double)(1 << 30));
    double t[64], cpu[64];
    for (int i = -o->warmup; i < o->iters; i++) {
        double s = clock_wall_s(), cs = clock_cpu_s();
        if ((rc = vae_decode(v, &a, z, 1, lat, lat, img, &err))) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0)
            t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
        else
            printf("vae: warm-up %.3f s\n", clock_wall_s() - s);
    }
    size_t nonfinite = 0;
    for (size_t i = 0; i < ni; i++) nonfinite += !(img[i] - img[i] == 0);
    report("vae decode", t, cpu, o->iters);
    printf("vae: arena peak %.3f GiB; process peak RSS %.2f GiB; %zu non-finite\n", a.peak / (double)(1 << 30),
           clock_peak_rss_gib(), nonfinite);
    if (nonfinite) {
        fprintf(stderr, "bench_unet: the decoded image holds %zu non-finite values\n", nonfinite);
        rc = OIR_E_INTERNAL;
    }
cleanup:
    arena_free(&a);
    free(z), free(img);
    sd_model_free(m);
    return rc;
}

static int bench_text(const char *dir, int B, int ctx_len, const run_opts *o) {
    oir_error err = {0};
    sd_model *m = NULL;
    arena a = {0};
    int32_t *ids = NULL;
    float *out = NULL;
    int rc = load(&m, dir, SD_TEXT_ENCODER, o, &err);
    if (rc) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        return rc;
    }
    const clip_text_config *cfg = clip_text_get_config(m->text_encoder);
    ids = malloc(sizeof(int32_t) * (size_t)B * ctx_len);
    out = malloc(sizeof(float) * (size_t)B * ctx_len * cfg->hidden_size);
    if (!ids || !out) {
        fprintf(stderr, "bench_unet: out of memory\n");
        rc = OIR_E_NOMEM;
        goto cleanup;
    }
    for (int i = 0; i < B * ctx_len; i++) ids[i] = (int32_t)((i * 7919) % (cfg->vocab_size - 1));
    size_t plan = clip_text_arena_bytes(cfg, B, ctx_len);
    if ((rc = host_arena(&a, m, plan, &err))) {
        fprintf(stderr, "bench_unet: %s\n", err.message);
        goto cleanup;
    }
    printf("text: batch %d x %d tokens, hidden %d, %d layers\n", B, ctx_len, cfg->hidden_size,
           cfg->num_hidden_layers);
    double t[64], cpu[64];
    for (int i = -o->warmup; i < o->iters; i++) {
        double s = clock_wall_s(), cs = clock_cpu_s();
        if ((rc = clip_text_forward(m->text_encoder, &a, ids, B, ctx_len, out, NULL, NULL, &err))) {
            fprintf(stderr, "bench_unet: %s\n", err.message);
            goto cleanup;
        }
        if (i >= 0) t[i] = clock_wall_s() - s, cpu[i] = clock_cpu_s() - cs;
    }
    report("text encoder forward", t, cpu, o->iters);
cleanup:
    arena_free(&a);
    free(ids), free(out);
    sd_model_free(m);
    return rc;
}

static int positive(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = getenv("OIR_BENCH_SD"), *what = "all";
    int threads = 2, B = 2, lat = 64, ctx = 77;
    run_opts o = {"cpu", 1, 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--what") && v)
            what = v, i++;
        else if (!strcmp(a, "--device") && v)
            o.device = v, i++;
        else if (!strcmp(a, "--threads") && v)
            ok = positive(v, 1, 1024, &threads), i++;
        else if (!strcmp(a, "--iters") && v)
            ok = positive(v, 1, 64, &o.iters), i++;
        else if (!strcmp(a, "--warmup") && v)
            ok = positive(v, 0, 64, &o.warmup), i++;
        else if (!strcmp(a, "--batch") && v)
            ok = positive(v, 1, 4096, &B), i++;
        else if (!strcmp(a, "--latent") && v)
            ok = positive(v, 1, 4096, &lat), i++;
        else if (!strcmp(a, "--ctx") && v)
            ok = positive(v, 1, 4096, &ctx), i++;
        else if (a[0] != '-')
            dir = a;
        else
            ok = 0;
        if (!ok || (strcmp(what, "unet") && strcmp(what, "vae") && strcmp(what, "text") && strcmp(what, "all"))) {
            fprintf(stderr,
                    "usage: %s [DIR] [--what unet|vae|text|all] [--device cpu|vulkan[:N]] [--threads N] "
                    "[--iters 1..64] [--warmup 0..64] [--batch N] [--latent N] [--ctx N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!dir) {
        printf("bench_unet: SKIPPED, no model folder. Make one with\n"
               "  build/release/tools/make_random_sd /tmp/sd15\n"
               "then run  bench_unet /tmp/sd15  (or set OIR_BENCH_SD=/tmp/sd15).\n");
        return 0;
    }
    oir_set_threads(threads);
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("bench_unet: %s, device %s, %d threads, fp32, OMP_WAIT_POLICY=%s\n", dir, o.device, threads,
           wp ? wp : "(unset)");
    int rc = 0;
    if (!strcmp(what, "unet") || !strcmp(what, "all")) rc |= bench_unet(dir, B, lat, ctx, &o);
    if (!strcmp(what, "text") || !strcmp(what, "all")) rc |= bench_text(dir, B, ctx, &o);
    if (!strcmp(what, "vae") || !strcmp(what, "all")) rc |= bench_vae(dir, lat, &o);
    return rc ? 1 : 0;
}
