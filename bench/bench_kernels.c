/* Kernel benchmark: GFLOP/s and memory of the SD 1.5 hot shapes, with 2
 * threads, next to the machine's own sgemm rate measured in the same run.
 *
 *   make -j2 build/release/bench/bench_kernels && build/release/bench/bench_kernels [threads]
 *
 * (threads defaults to 2, the setting.)
 * Each kernel runs once to warm up, then REPS times; the best wall time is
 * reported (the least disturbed by other processes), with the median beside
 * it. Memory: the kernel's scratch (what the caller must provide beyond
 * inputs and outputs) and the growth of the process's peak RSS (getrusage
 * ru_maxrss) while the kernel ran. Takes a few seconds. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/ops.h"
#include "oir.h"

#define REPS 5

void openblas_set_num_threads(int num_threads); /* from OpenBLAS */


static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) v = atol(line + kl);
    if (f) fclose(f);
    return v;
}

/* Resets the kernel's peak-RSS counter (Linux: "5" > /proc/self/clear_refs)
 * so that each kernel's peak is its own; returns the current RSS in KiB.
 * Where that is not possible, falls back to getrusage's lifetime peak. */
static int hwm_reset_ok = -1;
static long rss_mark(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok = f && fputs("5", f) >= 0;
    if (f) ok = (fclose(f) == 0) && ok;
    if (hwm_reset_ok < 0) hwm_reset_ok = ok;
    long now_kb = status_kb("VmRSS:");
    if (!ok || now_kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
    }
    return now_kb;
}

/* Peak RSS growth (KiB) since rss_mark() returned `mark`. */
static long rss_growth(long mark) {
    long hwm = hwm_reset_ok ? status_kb("VmHWM:") : -1;
    if (hwm < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        hwm = ru.ru_maxrss;
    }
    return hwm > mark ? hwm - mark : 0;
}

/* Allocates n floats filled with small deterministic values (touching every
 * page, so the RSS counts them before the kernel runs). */
static float *buf(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory (%zu floats)\n", n);
        exit(1);
    }
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 9) * (1.0f / 4194304.0f) - 1.0f;
    }
    return p;
}

typedef struct {
    double best, median;
} timing;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TIME_IT(res, stmt)                                 \
    do {                                                   \
        double t_[REPS];                                   \
        stmt; /* warm-up */                                \
        for (int r_ = 0; r_ < REPS; r_++) {                \
            double t0_ = clock_wall_s();                            \
            stmt;                                          \
            t_[r_] = clock_wall_s() - t0_;                          \
        }                                                  \
        qsort(t_, REPS, sizeof t_[0], cmp_d);              \
        (res).best = t_[0];                                \
        (res).median = t_[REPS / 2];                       \
    } while (0)

static double ref_gflops;

static void report(const char *what, double flop, timing t, size_t scratch_bytes, long rss_kb) {
    double g = flop / t.best * 1e-9;
    printf("%-44s %8.2f ms (median %8.2f) %7.1f GFLOP/s", what, t.best * 1e3, t.median * 1e3, g);
    if (ref_gflops > 0) printf("  %4.2fx sgemm time", ref_gflops / g);
    printf("  scratch %9.1f KiB  rss +%ld KiB\n", scratch_bytes / 1024.0, rss_kb);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    oir_set_threads(threads > 0 ? threads : 2);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("bench_kernels: %d threads, OPENBLAS_CORETYPE=%s, best of %d runs\n", oir_get_threads(),
           ct ? ct : "(unset)", REPS);

    /* Reference: OpenBLAS's own threaded sgemm, 2048 x 2048 x 2048 (oir
     * calls it single-threaded inside its pool's blocks: op_matmul below). */
    {
        const int n = 2048;
        float *a = buf((size_t)n * n, 1), *b = buf((size_t)n * n, 2), *c = buf((size_t)n * n, 3);
        timing t;
        long r0 = rss_mark();
        openblas_set_num_threads(oir_get_threads());
        TIME_IT(t, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b,
                               n, 0.0f, c, n));
        openblas_set_num_threads(1);
        report("sgemm 2048x2048x2048 (reference)", 2.0 * n * n * n, t, 0, rss_growth(r0));
        ref_gflops = 2.0 * n * n * n / t.best * 1e-9;
        struct timespec settle = {0, 300 * 1000 * 1000}; /* OpenBLAS's threads spin a while, then sleep */
        nanosleep(&settle, NULL);
        r0 = rss_mark();
        TIME_IT(t, op_matmul(c, a, b, n, n, n, 0, 1.0f, 0.0f));
        report("op_matmul 2048x2048x2048 (pool blocks)", 2.0 * n * n * n, t, 0, rss_growth(r0));
        free(a);
        free(b);
        free(c);
    }

    /* Self-attention: 4096 tokens x 8 heads x 40 dims (SD 1.5, 64x64 latent). */
    {
        const int B = 1, T = 4096, H = 8, d = 40;
        size_t n = (size_t)B * T * H * d;
        float *q = buf(n, 4), *k = buf(n, 5), *v = buf(n, 6), *o = buf(n, 7);
        size_t ns = op_attention_scratch(T, T, H, d);
        float *scratch = buf(ns, 8);
        timing t;
        long r0 = rss_mark();
        TIME_IT(t, op_attention(o, q, k, v, B, T, T, H, d, 1.0f / sqrtf((float)d), NULL, 0,
                                scratch));
        long grew = rss_growth(r0);
        report("attention self 4096x4096 h8 d40", 4.0 * B * H * (double)T * T * d, t,
               ns * sizeof(float), grew);
        printf("  attention extra memory: scratch %zu bytes (%.1f KiB) for %d threads; "
               "inputs+output %.1f MiB; a full score matrix would be %.0f MiB\n",
               ns * sizeof(float), ns * sizeof(float) / 1024.0, oir_get_threads(),
               4.0 * n * sizeof(float) / 1048576.0, (double)B * H * T * T * 4 / 1048576.0);

        /* Cross-attention: 4096 queries x 77 keys (text context). */
        size_t ns2 = op_attention_scratch(T, 77, H, d);
        float *scratch2 = buf(ns2, 9);
        r0 = rss_mark();
        TIME_IT(t, op_attention(o, q, k, v, B, T, 77, H, d, 1.0f / sqrtf((float)d), NULL, 0,
                                scratch2));
        report("attention cross 4096x77 h8 d40", 4.0 * B * H * (double)T * 77 * d, t,
               ns2 * sizeof(float), rss_growth(r0));
        free(q);
        free(k);
        free(v);
        free(o);
        free(scratch);
        free(scratch2);
    }

    /* conv3x3 320 -> 320 on 64x64, batch 1, stride 1, pad 1. */
    {
        const int C = 320, H = 64, W = 64;
        float *x = buf((size_t)C * H * W, 10), *w = buf((size_t)C * C * 9, 11),
              *bias = buf(C, 12), *y = buf((size_t)C * H * W, 13);
        size_t ns = op_conv2d_scratch(C, H, W, 3, 1, 1);
        float *scratch = buf(ns, 14);
        timing t;
        long r0 = rss_mark();
        TIME_IT(t, op_conv2d(y, x, w, bias, 1, C, H, W, C, 3, 1, 1, scratch));
        report("conv3x3 320->320 64x64", 2.0 * C * C * 9 * H * W, t, ns * sizeof(float),
               rss_growth(r0));
        /* 1x1 conv 320 -> 320 (direct sgemm, no scratch) */
        r0 = rss_mark();
        TIME_IT(t, op_conv2d(y, x, w, bias, 1, C, H, W, C, 1, 1, 0, NULL));
        report("conv1x1 320->320 64x64", 2.0 * C * C * H * W, t, 0, rss_growth(r0));
        /* GroupNorm(32) + SiLU on the same map */
        r0 = rss_mark();
        TIME_IT(t, op_group_norm(y, x, w, bias, 1, C, H * W, 32, 1e-5f, 1));
        long gn_rss = rss_growth(r0);
        /* memory bound: report bandwidth (3 reads + 1 write of the map) */
        printf("%-44s %8.2f ms (median %8.2f) %7.1f GB/s (3 reads + 1 write of 5.2 MB)  rss +%ld "
               "KiB\n", "group_norm(32)+silu 320x64x64", t.best * 1e3, t.median * 1e3,
               4.0 * C * H * W * sizeof(float) / t.best * 1e-9, gn_rss);
        free(x);
        free(w);
        free(bias);
        free(y);
        free(scratch);
    }

    /* linear 4096 x 320 -> 1280 (the transformer's feed-forward input size). */
    {
        const int R = 4096, IN = 320, OUT = 1280; /* (I is complex.h's, via cblas.h) */
        float *x = buf((size_t)R * IN, 15), *w = buf((size_t)OUT * IN, 16), *b = buf(OUT, 17),
              *y = buf((size_t)R * OUT, 18);
        timing t;
        long r0 = rss_mark();
        TIME_IT(t, op_linear(y, x, w, b, R, IN, OUT));
        report("linear 4096x320 -> 1280", 2.0 * R * IN * OUT, t, 0, rss_growth(r0));
        free(x);
        free(w);
        free(b);
        free(y);
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS of the whole run: %.1f MiB (rss +: growth of the peak RSS while the kernel "
           "ran, %s)\n", ru.ru_maxrss / 1024.0,
           hwm_reset_ok ? "peak reset per kernel via /proc/self/clear_refs"
                        : "from getrusage's lifetime peak, so 0 can hide growth below it");
    return 0;
}
