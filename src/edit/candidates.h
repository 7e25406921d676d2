/* Candidates of editing pairs (DESIGN.md §2.2-2.3): candidate k of a pair
 * starts from inversion level k and is denoised k steps with the pair's
 * guided prompt, CFG whose negative branch is the source prompt.
 *
 * candidates_serial runs each candidate alone (T(T+1)/2 guided UNet steps per
 * pair); candidates_parallel produces the same latents in T+1 batched calls,
 * all pairs sharing them, with the schedule of edit/schedule.h. */
#ifndef OIR_EDIT_CANDIDATES_H
#define OIR_EDIT_CANDIDATES_H

#include "diffusion/sampler.h"

typedef struct {
    const float *levels;          /* (T+1, lat_n): inversion levels 0..T */
    const float *source_ctx;      /* (ctx_len, ctx_dim): negative branch */
    const float *const *pair_ctx; /* (n_pairs) guided prompt contexts */
    int n_pairs;
    float guidance;
} candidate_job;

/* out: (n_pairs, T, lat_n); candidate k of pair p at [(p*T + k-1) * lat_n]. */
int candidates_serial(sampler *s, const candidate_job *job, float *out, oir_error *err);
int candidates_parallel(sampler *s, const candidate_job *job, float *out, oir_error *err);

#endif
