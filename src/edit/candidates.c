#include "edit/candidates.h"

#include <stdlib.h>
#include <string.h>

#include "edit/schedule.h"

static int wanted(const candidate_job *job, int T, int p, int k) {
    return !job->want || job->want[(size_t)p * T + k - 1];
}

static int progress(sampler *s, const char *stage, int done, int total, oir_error *err) {
    if (s->progress && s->progress(s->progress_user, stage, done, total))
        return oir_fail(err, OIR_E_CANCELLED, "cancelled");
    return OIR_OK;
}

int candidates_serial(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T, total = 0, done = 0;
    size_t n = s->lat_n;
    const char *stage = job->stage ? job->stage : "candidates";
    for (int p = 0; p < job->n_pairs; p++)
        for (int k = 1; k <= T; k++) total += wanted(job, T, p, k) ? k : 0;
    int rc0 = total ? progress(s, stage, 0, total, err) : OIR_OK; /* the stage's clock starts */
    if (rc0) return rc0;
    for (int p = 0; p < job->n_pairs; p++)
        for (int k = 1; k <= T; k++) {
            if (!wanted(job, T, p, k)) continue;
            float *z = out + ((size_t)p * T + k - 1) * n;
            memcpy(z, job->levels + (size_t)k * n, n * sizeof(float));
            sampler_progress_fn saved = s->progress;
            s->progress = NULL; /* one tick per candidate, counted in sample-steps */
            int rc = sampler_denoise(s, z, k, 0, job->pair_ctx[p], job->source_ctx, job->guidance, err);
            s->progress = saved;
            if (rc) return rc;
            done += k;
            if ((rc = progress(s, stage, done, total, err))) return rc;
        }
    return OIR_OK;
}

int candidates_parallel(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T, n_items = 0, total = 0, done = 0;
    size_t n = s->lat_n;
    const char *stage = job->stage ? job->stage : "candidates";
    schedule_item *items = malloc(sizeof *items * (size_t)job->n_pairs * T);
    if (!items) return oir_fail(err, OIR_E_NOMEM, "parallel candidates: out of memory");
    for (int p = 0; p < job->n_pairs; p++)
        for (int k = 1; k <= T; k++)
            if (wanted(job, T, p, k)) items[n_items++] = (schedule_item){p, k}, total += k;
    schedule_plan plan;
    int rc = schedule_plan_build(&plan, items, n_items, err);
    free(items);
    if (rc) return rc;
    int rows = plan.rows;
    /* Row latents, and per call the gathered busy rows. */
    float *state = malloc((size_t)rows * n * sizeof(float));
    float *x = malloc((size_t)rows * n * sizeof(float));
    float *eps = malloc((size_t)rows * n * sizeof(float));
    int64_t *t = malloc(sizeof(int64_t) * (size_t)rows);
    int *busy = malloc(sizeof(int) * (size_t)rows);
    const float **cond = malloc(sizeof(float *) * (size_t)rows);
    const float **uncond = malloc(sizeof(float *) * (size_t)rows);
    if (rows && (!state || !x || !eps || !t || !busy || !cond || !uncond)) {
        rc = oir_fail(err, OIR_E_NOMEM, "parallel candidates: out of memory for %d rows", rows);
        goto cleanup;
    }
    /* progress in sample-steps (each call advances every busy row one step),
     * as the serial path counts, from 0 as the stage starts */
    if (total) rc = progress(s, stage, 0, total, err);
    for (int c = 0; c < plan.calls && !rc; c++) {
        int B = 0;
        for (int r = 0; r < rows; r++) {
            int i = plan.at[(size_t)c * rows + r];
            if (i < 0) continue;
            schedule_item it = plan.items[i];
            int step = c - plan.start[i];
            float *z = state + (size_t)r * n;
            if (step == 0) memcpy(z, job->levels + (size_t)it.k * n, n * sizeof(float));
            memcpy(x + (size_t)B * n, z, n * sizeof(float));
            t[B] = s->sched.timesteps[T - it.k + step];
            cond[B] = job->pair_ctx[it.pair];
            uncond[B] = job->source_ctx;
            busy[B++] = i;
        }
        rc = sampler_eps(s, x, t, cond, uncond, job->guidance, B, eps, err);
        if (!rc) rc = ddim_step(&s->sched, x, eps, t, x, B, n, NULL, err);
        for (int b = 0; b < B && !rc; b++) {
            int i = busy[b];
            schedule_item it = plan.items[i];
            memcpy(state + (size_t)plan.row[i] * n, x + (size_t)b * n, n * sizeof(float));
            if (c - plan.start[i] == it.k - 1) /* its last step: candidate k's z_0 */
                memcpy(out + ((size_t)it.pair * T + it.k - 1) * n, x + (size_t)b * n, n * sizeof(float));
        }
        done += B;
        if (!rc) rc = progress(s, stage, done, total, err);
    }
cleanup:
    schedule_plan_free(&plan);
    free(state);
    free(x);
    free(eps);
    free(t);
    free(busy);
    free(cond);
    free(uncond);
    return rc;
}
