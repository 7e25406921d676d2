/* Backend benchmark: each op of the backend table on the CPU backend and on
 * a Vulkan device, side by side, on the tiny model's shapes (default) or
 * SD 1.5's (--shapes sd15: what scripts/gpu_check.sh runs on a real GPU).
 *
 *   make bench-backend                       # tiny shapes, vulkan:0 (lavapipe here)
 *   build/release/bench/bench_backend --shapes sd15 --device vulkan:0 [--threads N]
 *
 * Per op and backend: one warm-up run (pipelines are created there), then
 * `reps` runs queued back to back and one sync (reps so that the timed
 * batch takes about --seconds, 0.3 by default, at most 200): the time per
 * op is the stream's throughput, the submission cost shared by the batch.
 * The best of 3 such batches is reported. GEMM, convolution and attention
 * also as GFLOP/s (2 M N K; 2 N C_out H_o W_o C_in k^2; 4 B h Tq Tk d).
 * Prints one markdown table. Without Vulkan (or with --device cpu) only
 * the CPU column is filled. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/clock.h"
#include "oir.h"

typedef enum { K_LINEAR, K_GEMM, K_CONV, K_GN, K_LN, K_ATT, K_GEGLU, K_GELU, K_ADD, K_SOFTMAX } kind;

typedef struct {
    const char *label;
    kind k;
    int v[6]; /* the op's sizes, by kind (see case_sizes) */
} bcase;

/* tiny: one UNet call of the tiny model with classifier-free guidance
 * (2 rows, 16x16 latents, 64/128 channels, attention at 8x8 and 4x4 with
 * 4 heads of 32), its CLIP text encoder, and a square GEMM. */
static const bcase tiny[] = {
    {"linear to_q (2x64 tokens, 128 -> 128)", K_LINEAR, {128, 128, 128}},
    {"linear CLIP mlp (2x77 tokens, 128 -> 512)", K_LINEAR, {154, 128, 512}},
    {"GEMM 512^3", K_GEMM, {512, 512, 512}},
    {"conv 3x3 64 -> 64, 2x16x16", K_CONV, {2, 64, 16, 16, 64, 3}},
    {"conv 3x3 128 -> 128, 2x8x8", K_CONV, {2, 128, 8, 8, 128, 3}},
    {"group norm + SiLU 2x64x256, 32 groups", K_GN, {2, 64, 256, 32}},
    {"layer norm 154 x 128", K_LN, {154, 128}},
    {"attention self B2 T64 h4 d32", K_ATT, {2, 64, 64, 4, 32}},
    {"attention cross B2 Tq64 Tk77 h4 d32", K_ATT, {2, 64, 77, 4, 32}},
    {"attention self B2 T1024 h8 d40", K_ATT, {2, 1024, 1024, 8, 40}},
    {"GEGLU 128 x 512", K_GEGLU, {128, 512}},
    {"GELU 65536", K_GELU, {65536}},
    {"add 262144", K_ADD, {262144}},
    {"softmax 512 x 77", K_SOFTMAX, {512, 77}},
};

/* sd15: SD 1.5 at 512x512 (64x64 latents), batch 2 (one CFG step). */
static const bcase sd15[] = {
    {"linear 8192 x 320 -> 320 (to_q)", K_LINEAR, {8192, 320, 320}},
    {"linear 8192 x 320 -> 2560 (GEGLU proj)", K_LINEAR, {8192, 320, 2560}},
    {"linear 8192 x 1280 -> 320 (ff out)", K_LINEAR, {8192, 1280, 320}},
    {"GEMM 4096^3", K_GEMM, {4096, 4096, 4096}},
    {"conv 3x3 320 -> 320, 2x64x64", K_CONV, {2, 320, 64, 64, 320, 3}},
    {"conv 3x3 640 -> 640, 2x32x32", K_CONV, {2, 640, 32, 32, 640, 3}},
    {"conv 3x3 1280 -> 1280, 2x8x8", K_CONV, {2, 1280, 8, 8, 1280, 3}},
    {"conv 3x3 128 -> 128, 1x512x512 (VAE)", K_CONV, {1, 128, 512, 512, 128, 3}},
    {"group norm + SiLU 2x320x4096, 32 groups", K_GN, {2, 320, 4096, 32}},
    {"layer norm 8192 x 320", K_LN, {8192, 320}},
    {"attention self B2 T4096 h8 d40", K_ATT, {2, 4096, 4096, 8, 40}},
    {"attention cross B2 Tq4096 Tk77 h8 d40", K_ATT, {2, 4096, 77, 8, 40}},
    {"attention self B2 T1024 h8 d80", K_ATT, {2, 1024, 1024, 8, 80}},
    {"attention self B2 T256 h8 d160", K_ATT, {2, 256, 256, 8, 160}},
    {"GEGLU 8192 x 1280", K_GEGLU, {8192, 1280}},
    {"add 2x320x4096", K_ADD, {2 * 320 * 4096}},
};

typedef struct {
    size_t in, w, out; /* floats of the input(s), weight/second input, output */
    double flops;
} sizes;

static sizes case_sizes(const bcase *c) {
    sizes s = {0, 0, 0, 0};
    switch (c->k) {
    case K_LINEAR:
        s.in = (size_t)c->v[0] * c->v[1], s.w = (size_t)c->v[2] * c->v[1], s.out = (size_t)c->v[0] * c->v[2];
        s.flops = 2.0 * c->v[0] * c->v[1] * c->v[2];
        break;
    case K_GEMM:
        s.in = (size_t)c->v[0] * c->v[2], s.w = (size_t)c->v[2] * c->v[1], s.out = (size_t)c->v[0] * c->v[1];
        s.flops = 2.0 * c->v[0] * c->v[1] * c->v[2];
        break;
    case K_CONV: /* N, C_in, H, W, C_out, k; stride 1, pad k/2 */
        s.in = (size_t)c->v[0] * c->v[1] * c->v[2] * c->v[3], s.w = (size_t)c->v[4] * c->v[1] * c->v[5] * c->v[5];
        s.out = (size_t)c->v[0] * c->v[4] * c->v[2] * c->v[3];
        s.flops = 2.0 * c->v[0] * c->v[4] * c->v[2] * c->v[3] * c->v[1] * c->v[5] * c->v[5];
        break;
    case K_GN: s.in = s.out = (size_t)c->v[0] * c->v[1] * c->v[2], s.w = (size_t)c->v[1]; break;
    case K_LN: s.in = s.out = (size_t)c->v[0] * c->v[1], s.w = (size_t)c->v[1]; break;
    case K_ATT: /* B, Tq, Tk, heads, d: q + k + v in `in` */
        s.out = (size_t)c->v[0] * c->v[1] * c->v[3] * c->v[4];
        s.in = s.out + 2 * (size_t)c->v[0] * c->v[2] * c->v[3] * c->v[4];
        s.flops = 4.0 * c->v[0] * c->v[3] * c->v[1] * c->v[2] * c->v[4];
        break;
    case K_GEGLU: s.in = (size_t)c->v[0] * c->v[1] * 2, s.out = (size_t)c->v[0] * c->v[1]; break;
    case K_GELU: s.in = s.out = (size_t)c->v[0]; break;
    case K_ADD: s.in = s.w = s.out = (size_t)c->v[0]; break;
    case K_SOFTMAX: s.in = s.out = (size_t)c->v[0] * c->v[1]; break;
    }
    return s;
}

static void run_op(oir_backend *be, const bcase *c, be_view in, be_view w, be_view out) {
    switch (c->k) {
    case K_LINEAR: be_linear(be, out, in, w, BE_NONE, c->v[0], c->v[1], c->v[2]); break;
    case K_GEMM: be_matmul(be, out, in, w, c->v[0], c->v[1], c->v[2], 0, 1, 0, 1, 0, 0, 0); break;
    case K_CONV: be_conv2d(be, out, in, w, BE_NONE, c->v[0], c->v[1], c->v[2], c->v[3], c->v[4], c->v[5], 1, c->v[5] / 2); break;
    case K_GN: be_group_norm(be, out, in, w, w, c->v[0], c->v[1], c->v[2], c->v[3], 1e-5f, 1); break;
    case K_LN: be_layer_norm(be, out, in, w, w, c->v[0], c->v[1], 1e-5f, 0); break;
    case K_ATT: {
        size_t nq = (size_t)c->v[0] * c->v[1] * c->v[3] * c->v[4], nk = (size_t)c->v[0] * c->v[2] * c->v[3] * c->v[4];
        be_attention(be, out, in, be_view_f(in, nq), be_view_f(in, nq + nk), c->v[0], c->v[1], c->v[2], c->v[3], c->v[4],
                     1.0f / sqrtf((float)c->v[4]), BE_NONE, 0);
        break;
    }
    case K_GEGLU: be_geglu(be, out, in, c->v[0], c->v[1]); break;
    case K_GELU: be_act(be, BE_ACT_GELU, out, in, (size_t)c->v[0]); break;
    case K_ADD: be_add(be, out, in, w, (size_t)c->v[0]); break;
    case K_SOFTMAX: be_softmax(be, out, in, c->v[0], c->v[1]); break;
    }
}

/* Seconds per op on `be` (best of 3 batches); -1 on failure (message printed). */
static double time_op(oir_backend *be, const bcase *c, double seconds) {
    sizes s = case_sizes(c);
    size_t total = s.in + s.w + s.out + 64;
    be_buffer *buf = NULL;
    oir_error err = {0};
    if (be_buffer_alloc(be, total * sizeof(float), &buf, &err)) {
        fprintf(stderr, "%s: %s: %s\n", be->name, c->label, err.message);
        return -1;
    }
    be_view in = be_view_of(buf), w = be_view_f(in, s.in), out = be_view_f(w, s.w);
    float *h = malloc((s.in + s.w) * sizeof(float));
    uint32_t r = 12345;
    for (size_t i = 0; h && i < s.in + s.w; i++) {
        r = r * 1664525u + 1013904223u;
        h[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    }
    if (h) be_upload(be, in, h, (s.in + s.w) * sizeof(float));
    free(h);
    double best = -1;
    run_op(be, c, in, w, out); /* warm-up: pipelines, caches */
    if (!be_sync(be, &err)) {
        double t0 = clock_wall_s();
        run_op(be, c, in, w, out);
        be_sync(be, &err);
        double one = clock_wall_s() - t0;
        int reps = one > 0 ? (int)(seconds / one) : 200;
        reps = reps < 1 ? 1 : reps > 200 ? 200 : reps;
        for (int b = 0; b < 3 && !err.code; b++) {
            t0 = clock_wall_s();
            for (int i = 0; i < reps; i++) run_op(be, c, in, w, out);
            if (be_sync(be, &err)) break;
            double t = (clock_wall_s() - t0) / reps;
            if (best < 0 || t < best) best = t;
        }
    }
    if (err.code) {
        fprintf(stderr, "%s: %s: %s\n", be->name, c->label, err.message);
        best = -1;
    }
    be_buffer_free(be, buf);
    return best;
}

static void cell_ms(double t) {
    if (t < 0)
        printf(" - |");
    else
        printf(" %.3f |", t * 1e3);
}

static void cell_gflops(double flops, double t) {
    if (t <= 0 || flops <= 0)
        printf(" |");
    else
        printf(" %.1f |", flops / t * 1e-9);
}

int main(int argc, char **argv) {
    const char *device = "vulkan:0", *shapes = "tiny";
    double seconds = 0.3;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc)
            shapes = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_backend [--device cpu|vulkan[:N]] [--shapes tiny|sd15] [--threads N] "
                            "[--seconds S]\n");
            return 2;
        }
    }
    const bcase *cs = tiny;
    size_t ncs = sizeof tiny / sizeof tiny[0];
    if (!strcmp(shapes, "sd15")) {
        cs = sd15;
        ncs = sizeof sd15 / sizeof sd15[0];
    } else if (strcmp(shapes, "tiny")) {
        fprintf(stderr, "bench_backend: --shapes tiny or sd15\n");
        return 2;
    }
    if (threads > 0) oir_set_threads(threads);
    oir_error err = {0};
    be_device_spec spec;
    if (be_parse_device(device, &spec, &err)) {
        fprintf(stderr, "bench_backend: %s\n", err.message);
        return 2;
    }
    oir_backend *cpu = be_create_cpu(), *dev = NULL;
    if (spec.kind == BE_VULKAN && be_create(&dev, &spec, &err))
        fprintf(stderr, "bench_backend: %s: %s (CPU column only)\n", device, err.message);
    printf("backends: cpu (%d threads)%s%s\n\n", oir_get_threads(), dev ? " vs " : "", dev ? dev->name : "");
    printf("| op (%s shapes) | cpu ms | %s ms | cpu GFLOP/s | %s GFLOP/s | %s / cpu time |\n|---|---|---|---|---|---|\n",
           shapes, dev ? device : "-", dev ? device : "-", dev ? device : "-");
    int bad = 0;
    for (size_t i = 0; i < ncs; i++) {
        double tc = time_op(cpu, &cs[i], seconds), tv = dev ? time_op(dev, &cs[i], seconds) : -1;
        bad |= tc < 0 || (dev && tv < 0);
        double fl = case_sizes(&cs[i]).flops;
        printf("| %s |", cs[i].label);
        cell_ms(tc);
        cell_ms(tv);
        cell_gflops(fl, tc);
        cell_gflops(fl, tv);
        if (tc > 0 && tv > 0)
            printf(" %.2f |\n", tv / tc);
        else
            printf(" |\n");
        fflush(stdout);
    }
    be_destroy(dev);
    be_destroy(cpu);
    return bad;
}
