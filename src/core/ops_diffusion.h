/* CPU kernels of the diffusion loop, over plain float32 arrays: the DDIM
 * transfer (diffusion/ddim.c's step and inversion step without the
 * scheduler) and the classifier-free guidance combine. The same float32
 * operations in the same order as ddim.c (no fused multiply-add), so the
 * results are bit-identical to ddim_step / ddim_invert_step /
 * ddim_guidance. */
#ifndef OIR_CORE_OPS_DIFFUSION_H
#define OIR_CORE_OPS_DIFFUSION_H

#include <stddef.h>

/* Per row b < B of n values, with a = alphabar[b], a2 = alphabar_next[b]:
 *   x0 = (x - sqrt(1-a) eps) / sqrt(a)      [clamped to +-clip_range if clip]
 *   out = sqrt(a2) x0 + sqrt(1-a2) eps
 * ddim_step: a = alphabar(t), a2 = alphabar(t - ratio); ddim_invert_step:
 * a = alphabar(t - ratio), a2 = alphabar(t). out may alias x or eps; x0_out
 * (B, n) receives x0 when non-NULL. */
void op_ddim_transfer(float *out, const float *eps, const float *x, int B, size_t n, const float *alphabar,
                      const float *alphabar_next, int clip, float clip_range, float *x0_out);

/* out = uncond + g (cond - uncond) over n values; out may alias either. */
void op_guidance(float *out, const float *uncond, const float *cond, float g, size_t n);

#endif
