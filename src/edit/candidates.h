/* Candidates of editing pairs (docs/DESIGN.md §2.2-2.3): candidate k of a
 * pair starts from inversion level k and is denoised k steps with the pair's
 * guided prompt, CFG whose negative branch is the source prompt.
 *
 * candidates_serial runs each candidate alone (k guided UNet steps each);
 * candidates_parallel produces the same latents in batched calls, all pairs
 * sharing them, packed as edit/schedule.h plans. Both run only the
 * candidates a job wants (all of them when want is NULL), on the sampler's
 * current schedule (s->T steps). Progress: (stage, sample-steps done, their
 * total), done = 0 as the stage starts. */
#ifndef OIR_EDIT_CANDIDATES_H
#define OIR_EDIT_CANDIDATES_H

#include "diffusion/sampler.h"

typedef struct {
    const float *levels;          /* (T+1, lat_n): inversion levels 0..T */
    const float *source_ctx;      /* (ctx_len, ctx_dim): negative branch */
    const float *const *pair_ctx; /* (n_pairs) guided prompt contexts */
    int n_pairs;
    float guidance;
    const unsigned char *want;    /* (n_pairs, T): 1 = make candidate k; NULL = all */
    const char *stage;            /* progress stage name; NULL = "candidates" */
} candidate_job;

/* out: (n_pairs, T, lat_n); candidate k of pair p at [(p*T + k-1) * lat_n];
 * slots of unwanted candidates are left as they were. */
int candidates_serial(sampler *s, const candidate_job *job, float *out, oir_error *err);
int candidates_parallel(sampler *s, const candidate_job *job, float *out, oir_error *err);

#endif
