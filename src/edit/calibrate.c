/* oir_calibrate and oir_plan_run (include/oir.h "Planning a run"): the
 * measured costs of one UNet call, VAE decode and encode, prompt and scoring
 * on this machine, and the plan of a run (edit/plan.h) with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "diffusion/sampler.h"
#include "edit/context.h"
#include "edit/mask_infer.h"
#include "edit/plan.h"
#include "edit/scorer.h"

#define LIGHT_SECONDS 0.25 /* calls cheaper than this are timed 3 times (median) */
/* Batches timed after one row: a small model's batched calls (16 and 64 rows:
 * the cost per row still changes past 16 rows), a large model's CFG pair. */
static const int light_batches[] = {16, 64};
/* A heavy model (an SD 1.5 row) is timed at 1, 2 and 8 rows: its cost per
 * row grows with the batch as the activations leave the caches (256x256, 2
 * threads: 1.37 s a row at 1-2 rows, 2.1 s in the search's 22-row calls). */
static const int heavy_batches[] = {2, 8};

static double median3(double a, double b, double c) {
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

/* Seconds of one pass; passes cheaper than LIGHT_SECONDS run 3 times and
 * give the median (the first also warms caches and the arena's pages). */
typedef int (*pass_fn)(void *user, oir_error *err);
static int time_pass(pass_fn f, void *user, double *out, oir_error *err) {
    double t0 = clock_wall_s();
    int rc = f(user, err);
    double a = clock_wall_s() - t0;
    if (rc) return rc;
    if (a >= LIGHT_SECONDS) {
        *out = a;
        return OIR_OK;
    }
    double t[2];
    for (int i = 0; i < 2; i++) {
        t0 = clock_wall_s();
        if ((rc = f(user, err))) return rc;
        t[i] = clock_wall_s() - t0;
    }
    *out = median3(a, t[0], t[1]);
    return OIR_OK;
}

typedef struct {
    sampler s;
    scorer sc;
    int have_scorer;
    float *ctx, *x, *eps, *pixels, *latent;
    int64_t *t;
    const float **cond;
    image img, mask, cands[8];
    float *embed;
    int B;
} cal_state;

static int pass_prompt(void *u, oir_error *err) {
    cal_state *c = u;
    return sampler_encode_prompt(&c->s, "a photo of a cat sitting on a wooden desk", c->ctx, err);
}
static int pass_encode(void *u, oir_error *err) {
    cal_state *c = u;
    return sampler_encode_image(&c->s, c->pixels, c->latent, err);
}
static int pass_decode(void *u, oir_error *err) {
    cal_state *c = u;
    return sampler_decode(&c->s, c->latent, 1, c->pixels, err);
}
static int pass_unet(void *u, oir_error *err) {
    cal_state *c = u;
    return sampler_eps(&c->s, c->x, c->t, c->cond, NULL, 1.0f, c->B, c->eps, err);
}
static int pass_clip_text(void *u, oir_error *err) {
    cal_state *c = u;
    return scorer_text(&c->sc, "a cat", c->embed, err);
}
static int pass_score(void *u, oir_error *err) {
    cal_state *c = u;
    float e[8], b[8];
    return scorer_score(&c->sc, c->cands, c->sc.batch < 8 ? c->sc.batch : 8, &c->mask, c->embed, e, b, err);
}

int oir_calibrate(oir_context *ctx, int width, int height, const oir_params *p, oir_calibration *out,
                  oir_error *err) {
    if (!ctx || !out) return oir_fail(err, OIR_E_ARG, "oir_calibrate: missing argument");
    memset(out, 0, sizeof *out);
    const sd_model *sd = oir_context_sd_model(ctx);
    const clip_model *clip = oir_context_clip_model(ctx);
    cal_state c;
    memset(&c, 0, sizeof c);
    int rc = sampler_init_hw(&c.s, sd, height, width, 10, p ? p->memory_budget : 0, err);
    if (rc) return rc;
    size_t N = c.s.lat_n, hw = (size_t)width * height;
    int maxb = c.s.max_unet_batch, B = maxb < light_batches[1] ? maxb : light_batches[1];
    c.ctx = malloc((size_t)c.s.ctx_len * c.s.ctx_dim * sizeof(float));
    c.x = malloc((size_t)B * N * sizeof(float));
    c.eps = malloc((size_t)B * N * sizeof(float));
    c.latent = malloc(N * sizeof(float));
    c.pixels = malloc(3 * hw * sizeof(float));
    c.t = malloc((size_t)B * sizeof(int64_t));
    c.cond = malloc((size_t)B * sizeof(float *));
    if (!c.ctx || !c.x || !c.eps || !c.latent || !c.pixels || !c.t || !c.cond) {
        rc = oir_fail(err, OIR_E_NOMEM, "calibration: out of memory");
        goto cleanup;
    }
    if ((rc = image_alloc(&c.img, width, height, 3, err)) || (rc = image_alloc(&c.mask, width, height, 1, err)))
        goto cleanup;
    for (size_t i = 0; i < hw; i++) { /* a smooth picture, a mask on its left half */
        int x = (int)(i % (size_t)width), y = (int)(i / (size_t)width);
        for (int ch = 0; ch < 3; ch++) {
            float v = 0.25f + 0.5f * (float)((x * (ch + 1) + y * 2) % width) / (float)width;
            c.img.data[i * 3 + ch] = v;
            c.pixels[ch * hw + i] = 2 * v - 1;
        }
        c.mask.data[i] = x < width / 2;
    }
    double t_prompt, t_encode, t_decode, t1, tB = 0, t_text, t_score;
    if ((rc = time_pass(pass_prompt, &c, &t_prompt, err)) || (rc = time_pass(pass_encode, &c, &t_encode, err)))
        goto cleanup;
    for (int b = 0; b < B; b++) { /* the image latent at spread timesteps */
        memcpy(c.x + (size_t)b * N, c.latent, N * sizeof(float));
        c.t[b] = c.s.sched.timesteps[b % c.s.T];
        c.cond[b] = c.ctx;
    }
    /* one row: the first call also pays first touches (mapped weights, arena) */
    c.B = 1;
    double t0 = clock_wall_s();
    if ((rc = pass_unet(&c, err))) goto cleanup;
    double first = clock_wall_s() - t0;
    if ((rc = time_pass(pass_unet, &c, &t1, err))) goto cleanup;
    out->unet_rows[0] = 1;
    out->unet_seconds[0] = t1;
    out->n_unet = 1;
    int batches[2] = {light_batches[0], light_batches[1]}, nb_unet = 2;
    if (first >= LIGHT_SECONDS) batches[0] = heavy_batches[0], batches[1] = heavy_batches[1];
    for (int i = 0; i < nb_unet; i++) {
        int b = batches[i] < maxb ? batches[i] : maxb;
        if (b <= out->unet_rows[out->n_unet - 1]) break; /* the budget allows no more rows */
        c.B = b;
        if ((rc = time_pass(pass_unet, &c, &tB, err))) goto cleanup;
        out->unet_rows[out->n_unet] = b;
        out->unet_seconds[out->n_unet++] = tB;
    }
    if ((rc = time_pass(pass_decode, &c, &t_decode, err))) goto cleanup;
    /* the scorer: a phrase and a batch of candidates */
    if ((rc = scorer_init(&c.sc, clip, &c.img, err))) goto cleanup;
    c.have_scorer = 1;
    if (!(c.embed = malloc((size_t)c.sc.P * sizeof(float)))) {
        rc = oir_fail(err, OIR_E_NOMEM, "calibration: out of memory");
        goto cleanup;
    }
    for (int i = 0; i < 8; i++) c.cands[i] = c.img; /* read only: the same pixels */
    int nb = c.sc.batch < 8 ? c.sc.batch : 8;
    if ((rc = time_pass(pass_clip_text, &c, &t_text, err)) || (rc = time_pass(pass_score, &c, &t_score, err)))
        goto cleanup;
    out->width = width;
    out->height = height;
    out->threads = oir_get_threads();
    out->decode_seconds = t_decode;
    out->encode_seconds = t_encode;
    out->text_seconds = t_prompt;
    out->clip_text_seconds = t_text;
    out->score_seconds = t_score / nb;
cleanup:
    if (c.have_scorer) scorer_free(&c.sc);
    sampler_free(&c.s);
    free(c.ctx);
    free(c.x);
    free(c.eps);
    free(c.latent);
    free(c.pixels);
    free(c.t);
    free(c.cond);
    free(c.embed);
    image_free(&c.img);
    image_free(&c.mask);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

int oir_plan_run(const oir_context *ctx, int width, int height, int n_pairs, const oir_params *p,
                 const oir_calibration *cal, oir_plan *out, oir_error *err) {
    return oir_plan_edit(ctx, width, height, NULL, n_pairs, p, cal, out, err);
}

int oir_plan_edit(const oir_context *ctx, int width, int height, const oir_pair *pairs, int n_pairs,
                  const oir_params *p, const oir_calibration *cal, oir_plan *out, oir_error *err) {
    if (!ctx || !out) return oir_fail(err, OIR_E_ARG, "oir_plan_run: missing argument");
    memset(out, 0, sizeof *out);
    oir_params d = oir_default_params();
    if (!p) p = &d;
    plan_setup s;
    int rc = plan_setup_init(&s, n_pairs, p, 1, err);
    if (rc) return rc;
    for (int i = 0; pairs && i < n_pairs; i++) s.n_masks += pairs[i].mask == NULL;
    if (s.n_masks) {
        if ((rc = mask_params_check(&p->mask, err))) return oir_error_prefix(err, "oir_params.mask");
        mask_rows_split(&p->mask, &s.mask_rows[0], &s.mask_rows[1]);
    }
    sampler smp; /* the batch limit of this size and budget, as the run gets it */
    if ((rc = sampler_init_hw(&smp, oir_context_sd_model(ctx), height, width, p->steps, p->memory_budget, err)))
        return rc;
    s.max_unet_batch = smp.max_unet_batch;
    sampler_free(&smp);
    if (cal && cal->n_unet < 1) cal = NULL;
    if ((rc = plan_expected(&s, cal, out, err))) return rc;
    out->width = width;
    out->height = height;
    if (s.n_forced == s.n_pairs) /* as the run reports it: no search at all */
        snprintf(out->search, sizeof out->search, "none");
    else
        search_strategy_format(&s.strategy, out->search, sizeof out->search);
    return OIR_OK;
}
