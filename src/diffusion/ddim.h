/* DDIM scheduler, as diffusers 0.16.1 DDIMScheduler with eta = 0, plus the
 * inversion step of DESIGN.md §2.1 and classifier-free guidance.
 *
 * Every step takes one timestep per batch element, so rows of one batch may
 * sit at different points of their chains (DESIGN.md §2.3).
 *
 *     ddim_config cfg;                           // models/scheduler_config.h
 *     ddim_config_load(&cfg, "sd/scheduler/scheduler_config.json", &err);
 *     ddim_scheduler s;
 *     ddim_init(&s, &cfg, &err);
 *     ddim_set_timesteps(&s, 50, &err);          // s.timesteps: 981, 961, ..., 1
 *     for (int i = 0; i < s.num_inference_steps; i++) {
 *         ... eps = unet(z, s.timesteps[i]) ...
 *         ddim_step(&s, z, eps, t_per_row, z, B, C*H*W, &err);   // in place
 *     }
 *     ddim_free(&s);
 *
 * A scheduler is read-only after ddim_set_timesteps, so threads may share it.
 * Arithmetic follows torch's float32 order of operations (no fused
 * multiply-add; the build is ISO C11), so results match PyTorch to a few
 * ulps. */
#ifndef OIR_DIFFUSION_DDIM_H
#define OIR_DIFFUSION_DDIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/error.h"
#include "models/scheduler_config.h"

typedef struct {
    ddim_config cfg;
    float *betas;             /* (num_train_timesteps) */
    float *alphas_cumprod;    /* (num_train_timesteps) */
    float final_alpha_cumprod;
    int num_inference_steps;  /* 0 until ddim_set_timesteps */
    int step_ratio;           /* num_train_timesteps / num_inference_steps (floor) */
    int64_t *timesteps;       /* (num_inference_steps), decreasing: 981, 961, ..., 1 */
} ddim_scheduler;

/* Betas and alphabar as torch computes them: float32 linspace (then squared
 * for scaled_linear), cumulative product accumulated in double and stored
 * as float32 (torch's CPU cumprod). */
int ddim_init(ddim_scheduler *s, const ddim_config *cfg, oir_error *err);
void ddim_free(ddim_scheduler *s);

/* diffusers 0.16.1 "leading" spacing: ratio = N // T,
 * timesteps = arange(T)*ratio reversed, + steps_offset. */
int ddim_set_timesteps(ddim_scheduler *s, int num_inference_steps, oir_error *err);

/* alphabar(t): alphas_cumprod[t] for 0 <= t < N, the final alphabar for t < 0. */
float ddim_alphabar(const ddim_scheduler *s, int64_t t);
/* The timestep that follows t in denoising order: t - step_ratio. */
int64_t ddim_prev_timestep(const ddim_scheduler *s, int64_t t);

/* One denoising step (eta 0, epsilon prediction), per sample b < B:
 *   a = alphabar(t_b), a' = alphabar(t_b - ratio)
 *   x0 = (x - sqrt(1-a) eps) / sqrt(a)     [clamped if clip_sample]
 *   prev = sqrt(a') x0 + sqrt(1-a') eps
 * sample, eps, prev: (B, n) with n = C*H*W; prev may alias sample or eps.
 * t: (B). Needs ddim_set_timesteps. Fails (OIR_E_ARG) on t outside
 * [0, num_train_timesteps). pred_x0 (B, n) receives x0 when non-NULL. */
int ddim_step(const ddim_scheduler *s, float *prev, const float *eps, const int64_t *t,
              const float *sample, int B, size_t n, float *pred_x0, oir_error *err);

/* One inversion step (DESIGN.md §2.1), per sample: eps = unet(z, t_b);
 *   a = alphabar(t_b - ratio) (final alphabar when negative), b = alphabar(t_b)
 *   x0 = (z - sqrt(1-a) eps) / sqrt(a);  next = sqrt(b) x0 + sqrt(1-b) eps
 * t runs over the scheduler's timesteps in increasing order (1, 21, ..., 981
 * for T = 50). next may alias sample or eps. */
int ddim_invert_step(const ddim_scheduler *s, float *next, const float *eps, const int64_t *t,
                     const float *sample, int B, size_t n, oir_error *err);

/* Classifier-free guidance: out = uncond + g * (cond - uncond), elementwise
 * over n values; `uncond` is whatever negative branch the caller ran (empty
 * prompt, or the source prompt in OIR). out may alias either input. */
void ddim_guidance(float *out, const float *uncond, const float *cond, float g, size_t n);

/* ddim_step / ddim_invert_step on views of a backend (docs/BACKENDS.md):
 * the same arithmetic through be_ddim_step, queued (the next sync runs it);
 * the per-row alphabars come from the host scheduler. On the CPU backend
 * bit-identical to the host functions. The guidance combine on views is
 * be_guidance (the same arithmetic as ddim_guidance). */
int ddim_step_dev(const ddim_scheduler *s, oir_backend *be, be_view prev, be_view eps, const int64_t *t,
                  be_view sample, int B, size_t n, be_view pred_x0, oir_error *err);
int ddim_invert_step_dev(const ddim_scheduler *s, oir_backend *be, be_view next, be_view eps, const int64_t *t,
                         be_view sample, int B, size_t n, oir_error *err);

#endif