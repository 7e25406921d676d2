/* The DDIM transfer and the guidance combine (ops_diffusion.h): the
 * arithmetic of diffusion/ddim.c, element for element, on the worker pool
 * (elementwise, so the bits do not depend on the chunks). */
#include "core/ops_diffusion.h"

#include <math.h>

#include "core/pool.h"

#define DF_CHUNK 16384

typedef struct {
    float *out, *x0;
    const float *eps, *x, *a, *a2;
    size_t n;
    int clip;
    float clip_range;
} ddim_job;

/* x0 = (x - sqrt(1-a) eps) / sqrt(a);  out = sqrt(a2) x0 + sqrt(1-a2) eps,
 * in torch's float32 order (ddim.c's ddim_transfer). */
static void ddim_chunk(void *ctx, long i0, long i1, int worker) {
    const ddim_job *j = ctx;
    size_t i = (size_t)i0;
    while (i < (size_t)i1) {
        size_t b = i / j->n, end = (b + 1) * j->n < (size_t)i1 ? (b + 1) * j->n : (size_t)i1;
        float a = j->a[b], a2 = j->a2[b];
        float sqrt_beta = sqrtf(1.0f - a), sqrt_a = sqrtf(a);
        float sqrt_a2 = sqrtf(a2), dir = sqrtf(1.0f - a2);
        float cr = j->clip_range;
        for (; i < end; i++) {
            float e = j->eps[i];
            float x0 = (j->x[i] - sqrt_beta * e) / sqrt_a;
            if (j->clip) x0 = x0 < -cr ? -cr : x0 > cr ? cr : x0;
            if (j->x0) j->x0[i] = x0;
            j->out[i] = sqrt_a2 * x0 + dir * e;
        }
    }
}

void op_ddim_transfer(float *out, const float *eps, const float *x, int B, size_t n, const float *alphabar,
                      const float *alphabar_next, int clip, float clip_range, float *x0_out) {
    ddim_job j = {out, x0_out, eps, x, alphabar, alphabar_next, n, clip, clip_range};
    pool_for((long)((size_t)B * n), DF_CHUNK, ddim_chunk, &j);
}

typedef struct {
    float *out;
    const float *u, *c;
    float g;
} cfg_job;

static void cfg_chunk(void *ctx, long i0, long i1, int worker) {
    const cfg_job *j = ctx;
    for (long i = i0; i < i1; i++) {
        float u = j->u[i];
        j->out[i] = u + j->g * (j->c[i] - u);
    }
}

void op_guidance(float *out, const float *uncond, const float *cond, float g, size_t n) {
    cfg_job j = {out, uncond, cond, g};
    pool_for((long)n, DF_CHUNK, cfg_chunk, &j);
}
