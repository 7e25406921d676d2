/* DDIM scheduler (diffusers 0.16.1 DDIMScheduler, eta 0) and the inversion
 * step. Reads side by side with diffusers/schedulers/scheduling_ddim.py. */
#include "diffusion/ddim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops_diffusion.h"

/* ---- schedule ------------------------------------------------------------ */

/* torch.linspace(start, end, steps, dtype=float32) on the CPU: float32
 * step, first half counted from start, second half from end. */
static void linspace_f32(float *out, float start, float end, int steps) {
    if (steps == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(steps - 1);
    int halfway = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

int ddim_init(ddim_scheduler *s, const ddim_config *cfg, oir_error *err) {
    memset(s, 0, sizeof *s);
    int N = cfg->num_train_timesteps;
    if (N < 2) return oir_fail(err, OIR_E_ARG, "ddim: num_train_timesteps %d < 2", N);
    s->cfg = *cfg;
    s->betas = malloc((size_t)N * sizeof *s->betas);
    s->alphas_cumprod = malloc((size_t)N * sizeof *s->alphas_cumprod);
    if (!s->betas || !s->alphas_cumprod) {
        ddim_free(s);
        return oir_fail(err, OIR_E_NOMEM, "ddim: out of memory");
    }
    if (cfg->beta_schedule == DDIM_BETA_SCALED_LINEAR) {
        /* torch.linspace(beta_start**0.5, beta_end**0.5, N, dtype=float32) ** 2 */
        linspace_f32(s->betas, (float)sqrt(cfg->beta_start), (float)sqrt(cfg->beta_end), N);
        for (int i = 0; i < N; i++) s->betas[i] = s->betas[i] * s->betas[i];
    } else {
        linspace_f32(s->betas, (float)cfg->beta_start, (float)cfg->beta_end, N);
    }
    /* alphas = 1 - betas (float32); torch.cumprod accumulates in double on the CPU. */
    double acc = 1.0;
    for (int i = 0; i < N; i++) {
        float alpha = 1.0f - s->betas[i];
        acc *= (double)alpha;
        s->alphas_cumprod[i] = (float)acc;
    }
    s->final_alpha_cumprod = cfg->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return OIR_OK;
}

void ddim_free(ddim_scheduler *s) {
    if (!s) return;
    free(s->betas);
    free(s->alphas_cumprod);
    free(s->timesteps);
    memset(s, 0, sizeof *s);
}

int ddim_set_timesteps(ddim_scheduler *s, int T, oir_error *err) {
    int N = s->cfg.num_train_timesteps;
    if (T < 1 || T > N)
        return oir_fail(err, OIR_E_ARG, "ddim: %d inference steps, expected 1..%d (num_train_timesteps)",
                        T, N);
    int ratio = N / T;
    if ((int64_t)(T - 1) * ratio + s->cfg.steps_offset >= N)
        return oir_fail(err, OIR_E_ARG,
                        "ddim: %d steps with steps_offset %d would reach timestep %lld >= %d", T,
                        s->cfg.steps_offset, (long long)(T - 1) * ratio + s->cfg.steps_offset, N);
    int64_t *ts = malloc((size_t)T * sizeof *ts);
    if (!ts) return oir_fail(err, OIR_E_NOMEM, "ddim: out of memory");
    for (int i = 0; i < T; i++) ts[i] = (int64_t)(T - 1 - i) * ratio + s->cfg.steps_offset;
    free(s->timesteps);
    s->timesteps = ts;
    s->num_inference_steps = T;
    s->step_ratio = ratio;
    return OIR_OK;
}

float ddim_alphabar(const ddim_scheduler *s, int64_t t) {
    if (t < 0) return s->final_alpha_cumprod;
    if (t >= s->cfg.num_train_timesteps) t = s->cfg.num_train_timesteps - 1; /* callers check */
    return s->alphas_cumprod[t];
}

int64_t ddim_prev_timestep(const ddim_scheduler *s, int64_t t) { return t - s->step_ratio; }

static int check_timesteps(const ddim_scheduler *s, const int64_t *t, int B, const char *what,
                           oir_error *err) {
    if (!s->num_inference_steps)
        return oir_fail(err, OIR_E_ARG, "%s: call ddim_set_timesteps first", what);
    for (int b = 0; b < B; b++)
        if (t[b] < 0 || t[b] >= s->cfg.num_train_timesteps)
            return oir_fail(err, OIR_E_ARG, "%s: timestep[%d] = %lld, expected 0..%d", what, b,
                            (long long)t[b], s->cfg.num_train_timesteps - 1);
    return OIR_OK;
}

/* The per-row alphabar pairs of a step (invert: the inversion step's,
 * which runs the transfer the other way) for rows b0..b0+nb. */
static void step_alphabars(const ddim_scheduler *s, const int64_t *t, int b0, int nb, int invert, float *a,
                           float *a2) {
    for (int b = 0; b < nb; b++) {
        float at = s->alphas_cumprod[t[b0 + b]], aprev = ddim_alphabar(s, ddim_prev_timestep(s, t[b0 + b]));
        a[b] = invert ? aprev : at;
        a2[b] = invert ? at : aprev;
    }
}

/* The transfer (ops_diffusion.h: x0 = (x - sqrt(1-a) eps) / sqrt(a); out =
 * sqrt(a2) x0 + sqrt(1-a2) eps, in torch's float32 order) of B rows, on
 * host arrays or, when be is non-NULL, on views of be; rows go in groups
 * so the alphabars sit on the stack (no malloc per step). */
#define STEP_GROUP 64
static int transfer_rows(const ddim_scheduler *s, oir_backend *be, const int64_t *t, int B, size_t n,
                         int invert, float *out, const float *eps, const float *x, float *x0, be_view vout,
                         be_view veps, be_view vx, be_view vx0, oir_error *err) {
    int clip = !invert && s->cfg.clip_sample;
    float range = invert ? 0.0f : (float)s->cfg.clip_sample_range;
    float a[STEP_GROUP], a2[STEP_GROUP];
    for (int b0 = 0; b0 < B; b0 += STEP_GROUP) {
        int nb = B - b0 < STEP_GROUP ? B - b0 : STEP_GROUP;
        size_t off = (size_t)b0 * n;
        step_alphabars(s, t, b0, nb, invert, a, a2);
        if (!be) {
            op_ddim_transfer(out + off, eps + off, x + off, nb, n, a, a2, clip, range, x0 ? x0 + off : NULL);
            continue;
        }
        if (be_ddim_step(be, be_view_f(vout, off), be_view_f(veps, off), be_view_f(vx, off), nb, n, a, a2, clip,
                         range, vx0.buf ? be_view_f(vx0, off) : BE_NONE))
            return be_sync(be, err); /* the refusal's message */
    }
    return OIR_OK;
}

int ddim_step(const ddim_scheduler *s, float *prev, const float *eps, const int64_t *t,
              const float *sample, int B, size_t n, float *pred_x0, oir_error *err) {
    int rc = check_timesteps(s, t, B, "ddim_step", err);
    if (rc) return rc;
    return transfer_rows(s, NULL, t, B, n, 0, prev, eps, sample, pred_x0, BE_NONE, BE_NONE, BE_NONE, BE_NONE, err);
}

int ddim_invert_step(const ddim_scheduler *s, float *next, const float *eps, const int64_t *t,
                     const float *sample, int B, size_t n, oir_error *err) {
    int rc = check_timesteps(s, t, B, "ddim_invert_step", err);
    if (rc) return rc;
    return transfer_rows(s, NULL, t, B, n, 1, next, eps, sample, NULL, BE_NONE, BE_NONE, BE_NONE, BE_NONE, err);
}

int ddim_step_dev(const ddim_scheduler *s, oir_backend *be, be_view prev, be_view eps, const int64_t *t,
                  be_view sample, int B, size_t n, be_view pred_x0, oir_error *err) {
    int rc = check_timesteps(s, t, B, "ddim_step", err);
    if (rc) return rc;
    return transfer_rows(s, be, t, B, n, 0, NULL, NULL, NULL, NULL, prev, eps, sample, pred_x0, err);
}

int ddim_invert_step_dev(const ddim_scheduler *s, oir_backend *be, be_view next, be_view eps, const int64_t *t,
                         be_view sample, int B, size_t n, oir_error *err) {
    int rc = check_timesteps(s, t, B, "ddim_invert_step", err);
    if (rc) return rc;
    return transfer_rows(s, be, t, B, n, 1, NULL, NULL, NULL, NULL, next, eps, sample, BE_NONE, err);
}

void ddim_guidance(float *out, const float *uncond, const float *cond, float g, size_t n) {
    op_guidance(out, uncond, cond, g, n);
}
