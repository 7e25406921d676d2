/* OIR candidate generation: serial vs parallel (DESIGN.md §2.3, issue 5 "Demo and speed").
 *
 *     build/release/bench/bench_oir --model PATH [--size N] [--steps T] [--threads 2]
 *                                   [--budget-gb G] [--reps R] [--pairs P] [--guidance 7.5]
 *                                   [--warmup 0|1] [--label NAME]
 *
 * (or OIR_BENCH_MODEL=PATH). Builds the inversion levels of a deterministic synthetic image
 * (VAE encode + T DDIM inversion steps with a source prompt), then times candidates_serial and
 * candidates_parallel for the same job — all T candidates of P editing pairs (default 1) —
 * interleaved S P S P ... so both sides see the same machine load. Per run it prints wall time,
 * process CPU time, UNet calls and rows; at the end a markdown table line with the medians, the
 * ratio serial / parallel (median of the per-repetition ratios, and their range), median CPU
 * seconds of each side, the largest |serial - parallel| over all candidate latents (the
 * correctness check, in the same run), peak RSS and the load average.
 *
 * On a shared machine wall time depends on the load; with --threads 1 the CPU seconds do not
 * (much), so the CPU ratio is the steadier figure. With 2 threads CPU seconds include OpenMP
 * spin-waiting. --only serial|parallel runs one side (for profiling; no comparison).
 *
 * --size defaults to the model's native size (sd_model_native_size).
 * --budget-gb bounds the activation memory and so the rows per UNet call (0: 2 GiB default).
 * Without a model it prints usage and exits 0 (benchmarks are not tests). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "diffusion/sampler.h"
#include "edit/candidates.h"
#include "models/loader.h"
#include "oir.h"

#define MAX_REPS 32




static double load_average(void) {
    double l = -1;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &l) != 1) l = -1;
        fclose(fp);
    }
    return l;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[MAX_REPS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* Deterministic test image (3, H, W) in [-1, 1]: a soft gradient background, a disc and a box. */
static void make_image(float *px, int H) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < H; x++) {
            float u = (x + 0.5f) / H, v = (y + 0.5f) / H;
            float r = 0.1f + 0.3f * v, g = 0.5f + 0.2f * u, b = 0.6f - 0.3f * u * v;
            float dx = u - 0.3f, dy = v - 0.5f;
            if (dx * dx + dy * dy < 0.04f) r = 0.9f, g = 0.15f, b = 0.1f;
            if (u > 0.58f && u < 0.86f && v > 0.36f && v < 0.64f) r = 0.1f, g = 0.8f, b = 0.2f;
            size_t i = (size_t)y * H + x, n = (size_t)H * H;
            px[i] = 2 * r - 1, px[n + i] = 2 * g - 1, px[2 * n + i] = 2 * b - 1;
        }
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_oir --model PATH [--size N] [--steps T] [--threads N] [--budget-gb G]\n"
            "                 [--reps R] [--pairs P] [--guidance G] [--warmup 0|1] [--label NAME]\n"
            "                 [--only serial|parallel]   (profiling: one side only, no comparison)\n");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines show up in logs as they happen */
    const char *model = getenv("OIR_BENCH_MODEL"), *label = NULL;
    int size = 0, T = 50, threads = 2, reps = 2, pairs = 1, warmup = 1, only = 0; /* only: 0 both, 1 S, 2 P */
    double budget_gb = 0, guidance = 7.5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_oir: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--size")) size = atoi(v);
        else if (!strcmp(a, "--steps")) T = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--budget-gb")) budget_gb = atof(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--pairs")) pairs = atoi(v);
        else if (!strcmp(a, "--guidance")) guidance = atof(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--only")) only = !strcmp(v, "serial") ? 1 : !strcmp(v, "parallel") ? 2 : -1;
        else if (!strcmp(a, "--label")) label = v;
        else {
            fprintf(stderr, "bench_oir: unknown option %s\n", a);
            usage();
            return 2;
        }
        i++;
    }
    if (!model) {
        printf("bench_oir: no model (--model PATH or OIR_BENCH_MODEL); e.g.\n"
               "  build/release/bench/bench_oir --model tests/fixtures/sd/tiny-pipe --steps 50\n");
        return 0;
    }
    if (only < 0) {
        fprintf(stderr, "bench_oir: --only takes serial or parallel\n");
        return 2;
    }
    if (reps < 1 || reps > MAX_REPS || pairs < 1 || pairs > 2 || T < 1 || threads < 1) {
        fprintf(stderr, "bench_oir: need 1 <= reps <= %d, pairs 1 or 2, steps >= 1, threads >= 1\n", MAX_REPS);
        return 2;
    }
    oir_set_threads(threads);

    oir_error err = {0};
    sd_model *m = NULL;
    sampler s;
    int sampler_ok = 0, rc = 0;
    float *px = NULL, *ctx = NULL, *levels = NULL, *ser = NULL, *par = NULL;
    double t0 = clock_wall_s();
    if ((rc = sd_model_load(&m, model, NULL, &err))) goto fail;
    double load_s = clock_wall_s() - t0;
    if (!size && (rc = sd_model_native_size(m, NULL, &size, &err))) goto fail;
    if ((rc = sampler_init(&s, m, size, T, (size_t)(budget_gb * (1 << 30)), &err))) goto fail;
    sampler_ok = 1;
    size_t N = s.lat_n, ctx_n = (size_t)s.ctx_len * s.ctx_dim, img_n = (size_t)3 * size * size;
    size_t cand_n = (size_t)pairs * T * N;
    px = malloc(img_n * sizeof(float));
    ctx = malloc(3 * ctx_n * sizeof(float));
    levels = malloc((size_t)(T + 1) * N * sizeof(float));
    ser = malloc(cand_n * sizeof(float));
    par = malloc(cand_n * sizeof(float));
    if (!px || !ctx || !levels || !ser || !par) {
        fprintf(stderr, "bench_oir: out of memory\n");
        rc = 1;
        goto cleanup;
    }
    printf("bench_oir: %s loaded in %.1f s; image %dx%d, latent (%d, %d, %d), T = %d, %d pair(s), "
           "guidance %.1f, %d threads (OMP_WAIT_POLICY=%s), max %d rows per UNet call, load average %.2f\n",
           model, load_s, size, size, s.lat_c, s.lat_h, s.lat_w, T, pairs, guidance, threads,
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset", s.max_unet_batch,
           load_average());

    /* Inversion levels of the synthetic image with the source prompt. */
    const float *src = ctx, *guided[2] = {ctx + ctx_n, ctx + 2 * ctx_n};
    t0 = clock_wall_s();
    make_image(px, size);
    if ((rc = sampler_encode_prompt(&s, "a photo of a red circle and a green square", ctx, &err)) ||
        (rc = sampler_encode_prompt(&s, "a photo of a blue circle and a green square", ctx + ctx_n, &err)) ||
        (rc = sampler_encode_prompt(&s, "a photo of a red circle and a green star", ctx + 2 * ctx_n, &err)) ||
        (rc = sampler_encode_image(&s, px, levels, &err)) ||
        (rc = sampler_invert(&s, levels, 0, T, src, levels, &err)))
        goto fail;
    printf("setup (3 prompts, VAE encode, %d inversion steps): %.2f s\n", T, clock_wall_s() - t0);

    candidate_job job = {levels, src, guided, pairs, (float)guidance, NULL, NULL};
    double ts[MAX_REPS], tp[MAX_REPS], ratio[MAX_REPS], cs[MAX_REPS], cp[MAX_REPS];
    long calls_s = 0, rows_s = 0, calls_p = 0, rows_p = 0;
    float maxdiff = 0, maxabs = 0;
    if (warmup) { /* first touch of the arena and staging at both batch sizes */
        t0 = clock_wall_s();
        int B = pairs * ((T + 1) / 2);
        float *x = malloc((size_t)B * N * sizeof(float)), *eps = malloc((size_t)B * N * sizeof(float));
        int64_t *tt = malloc(sizeof(int64_t) * (size_t)B);
        const float **cc = malloc(sizeof(float *) * (size_t)B), **uc = malloc(sizeof(float *) * (size_t)B);
        if (!x || !eps || !tt || !cc || !uc) rc = oir_fail(&err, OIR_E_NOMEM, "warm-up: out of memory");
        for (int b = 0; b < B && !rc; b++) {
            memcpy(x + (size_t)b * N, levels + (size_t)(b % (T + 1)) * N, N * sizeof(float));
            tt[b] = s.sched.timesteps[b % T], cc[b] = guided[b % pairs], uc[b] = src;
        }
        if (!rc) rc = sampler_eps(&s, x, tt, cc, uc, (float)guidance, B, eps, &err);
        if (!rc) rc = sampler_eps(&s, x, tt, cc, uc, (float)guidance, 1, eps, &err);
        free(x), free(eps), free(tt), free(cc), free(uc);
        if (rc) goto fail;
        printf("warm-up (one UNet step of %d and of 1 guided rows): %.2f s\n", B, clock_wall_s() - t0);
    }
    for (int r = 0; r < reps; r++) {
        long c0 = s.unet_calls, r0 = s.unet_rows;
        double a = clock_wall_s(), ac = clock_cpu_s();
        if (only != 2 && (rc = candidates_serial(&s, &job, ser, &err))) goto fail;
        ts[r] = clock_wall_s() - a, cs[r] = clock_cpu_s() - ac;
        calls_s = s.unet_calls - c0, rows_s = s.unet_rows - r0;
        c0 = s.unet_calls, r0 = s.unet_rows;
        a = clock_wall_s(), ac = clock_cpu_s();
        if (only != 1 && (rc = candidates_parallel(&s, &job, par, &err))) goto fail;
        tp[r] = clock_wall_s() - a, cp[r] = clock_cpu_s() - ac;
        calls_p = s.unet_calls - c0, rows_p = s.unet_rows - r0;
        ratio[r] = only ? 0 : ts[r] / tp[r];
        for (size_t i = 0; i < cand_n && !only; i++) {
            float d = fabsf(ser[i] - par[i]);
            if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates */
            if (fabsf(ser[i]) > maxabs) maxabs = fabsf(ser[i]);
        }
        printf("rep %d: serial %.3f s (CPU %.3f s; %ld UNet calls, %ld rows), parallel %.3f s (CPU %.3f s; %ld "
               "calls, %ld rows), ratio %.2f (CPU %.2f), load %.2f\n",
               r + 1, ts[r], cs[r], calls_s, rows_s, tp[r], cp[r], calls_p, rows_p, ratio[r], only ? 0 : cs[r] / cp[r],
               load_average());
        fflush(stdout);
    }
    double ms = median(ts, reps), mp = median(tp, reps), mr = median(ratio, reps);
    double mcs = median(cs, reps), mcp = median(cp, reps);
    double rmin = ratio[0], rmax = ratio[0];
    for (int r = 1; r < reps; r++) rmin = fmin(rmin, ratio[r]), rmax = fmax(rmax, ratio[r]);
    printf("max |serial - parallel| = %.3g (max |candidate| %.3g); peak RSS %.2f GiB\n", maxdiff, maxabs,
           clock_peak_rss_gib());
    printf("| model | image | latent | T | pairs | threads | serial: calls x rows | parallel: calls x rows "
           "(max/call) | serial s | parallel s | serial/parallel | per-rep ratio range | CPU s serial / parallel | "
           "max abs diff | peak RSS GiB | load |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| %s | %d | %dx%dx%d | %d | %d | %d | %ld x %.0f | %ld x %.1f (%d) | %.3f | %.3f | **%.2f** | "
           "%.2f-%.2f | %.2f / %.2f | %.2g | %.2f | %.2f |\n",
           label ? label : model, size, s.lat_c, s.lat_h, s.lat_w, T, pairs, threads, calls_s,
           (double)rows_s / calls_s, calls_p, (double)rows_p / calls_p, s.max_unet_batch, ms, mp, mr, rmin, rmax,
           mcs, mcp, maxdiff, clock_peak_rss_gib(), load_average());
    goto cleanup;
fail:
    fprintf(stderr, "bench_oir: %s\n", err.message);
cleanup:
    free(px), free(ctx), free(levels), free(ser), free(par);
    if (sampler_ok) sampler_free(&s);
    sd_model_free(m);
    return rc ? 1 : 0;
}
