#include "edit/candidates.h"

#include <stdlib.h>
#include <string.h>

#include "edit/schedule.h"

int candidates_serial(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T;
    size_t n = s->lat_n;
    for (int p = 0; p < job->n_pairs; p++)
        for (int k = 1; k <= T; k++) {
            float *z = out + ((size_t)p * T + k - 1) * n;
            memcpy(z, job->levels + (size_t)k * n, n * sizeof(float));
            sampler_progress_fn saved = s->progress;
            s->progress = NULL; /* one tick per candidate, not per step */
            int rc = sampler_denoise(s, z, k, 0, job->pair_ctx[p], job->source_ctx, job->guidance, err);
            s->progress = saved;
            if (rc) return rc;
            if (s->progress && s->progress(s->progress_user, "candidates (serial)", p * T + k, job->n_pairs * T))
                return oir_fail(err, OIR_E_CANCELLED, "cancelled");
        }
    return OIR_OK;
}

int candidates_parallel(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T, rows_per_pair = schedule_rows(T), calls = schedule_calls(T);
    int rows = rows_per_pair * job->n_pairs;
    size_t n = s->lat_n;
    int rc = OIR_OK;
    /* Row latents, and per call the gathered active rows. */
    float *state = malloc((size_t)rows * n * sizeof(float));
    float *x = malloc((size_t)rows * n * sizeof(float));
    float *eps = malloc((size_t)rows * n * sizeof(float));
    int64_t *t = malloc(sizeof(int64_t) * (size_t)rows);
    int *act = malloc(sizeof(int) * (size_t)rows);
    const float **cond = malloc(sizeof(float *) * (size_t)rows);
    const float **uncond = malloc(sizeof(float *) * (size_t)rows);
    schedule_slot *slots = malloc(sizeof(schedule_slot) * (size_t)rows);
    if (!state || !x || !eps || !t || !act || !cond || !uncond || !slots) {
        rc = oir_fail(err, OIR_E_NOMEM, "parallel candidates: out of memory for %d rows", rows);
        goto cleanup;
    }
    for (int c = 0; c < calls && !rc; c++) {
        int B = 0;
        for (int r = 0; r < rows; r++) {
            int p = r / rows_per_pair;
            schedule_slot sl = schedule_slot_at(T, r % rows_per_pair, c);
            slots[r] = sl;
            if (!sl.active) continue;
            float *z = state + (size_t)r * n;
            if (sl.starts) memcpy(z, job->levels + (size_t)sl.candidate * n, n * sizeof(float));
            memcpy(x + (size_t)B * n, z, n * sizeof(float));
            t[B] = s->sched.timesteps[sl.sched_index];
            cond[B] = job->pair_ctx[p];
            uncond[B] = job->source_ctx;
            act[B++] = r;
        }
        rc = sampler_eps(s, x, t, cond, uncond, job->guidance, B, eps, err);
        if (!rc) rc = ddim_step(&s->sched, x, eps, t, x, B, n, NULL, err);
        for (int b = 0; b < B && !rc; b++) {
            int r = act[b], p = r / rows_per_pair;
            memcpy(state + (size_t)r * n, x + (size_t)b * n, n * sizeof(float));
            if (slots[r].finishes)
                memcpy(out + ((size_t)p * T + slots[r].candidate - 1) * n, x + (size_t)b * n, n * sizeof(float));
        }
        if (!rc && s->progress && s->progress(s->progress_user, "candidates (parallel)", c + 1, calls))
            rc = oir_fail(err, OIR_E_CANCELLED, "cancelled");
    }
cleanup:
    free(state);
    free(x);
    free(eps);
    free(t);
    free(act);
    free(cond);
    free(uncond);
    free(slots);
    return rc;
}
