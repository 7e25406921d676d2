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

/* The job's levels and the output on the sampler's backend (on the CPU the
 * arrays themselves): the levels sent once, the candidates kept there. */
static int job_open(sampler *s, const candidate_job *job, float *out, sampler_buf *lv, sampler_buf *ov,
                    oir_error *err) {
    size_t n = s->lat_n;
    ov->buf = NULL;
    int rc = sampler_buf_open(s, lv, (float *)job->levels, (size_t)(s->T + 1) * n, 1, err); /* read only */
    if (!rc) rc = sampler_buf_open(s, ov, out, (size_t)job->n_pairs * s->T * n, 0, err);
    return rc;
}

/* Brings the wanted candidates home (one download per run of wanted slots;
 * the others are left as they were) and frees both buffers. */
static int job_close(sampler *s, const candidate_job *job, float *out, sampler_buf *lv, sampler_buf *ov, int rc,
                     oir_error *err) {
    int T = s->T, slots = job->n_pairs * T;
    size_t n = s->lat_n;
    for (int f = 0; f < slots && !rc && !s->host;) {
        if (!wanted(job, T, f / T, f % T + 1)) {
            f++;
            continue;
        }
        int e = f + 1;
        while (e < slots && wanted(job, T, e / T, e % T + 1)) e++;
        rc = be_download(s->be, out + (size_t)f * n, be_view_f(ov->v, (size_t)f * n), (size_t)(e - f) * n * sizeof(float),
                         err);
        f = e;
    }
    int rc2 = sampler_buf_close(s, ov, NULL, 0, 0, rc ? NULL : err);
    if (!rc) rc = rc2;
    rc2 = sampler_buf_close(s, lv, NULL, 0, 0, rc ? NULL : err);
    return rc ? rc : rc2;
}

int candidates_serial(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T, total = 0, done = 0;
    size_t n = s->lat_n;
    const char *stage = job->stage ? job->stage : "candidates";
    for (int p = 0; p < job->n_pairs; p++)
        for (int k = 1; k <= T; k++) total += wanted(job, T, p, k) ? k : 0;
    int rc = total ? progress(s, stage, 0, total, err) : OIR_OK; /* the stage's clock starts */
    if (rc) return rc;
    sampler_buf lv, ov;
    if ((rc = job_open(s, job, out, &lv, &ov, err))) return job_close(s, job, out, &lv, &ov, rc, err);
    for (int p = 0; p < job->n_pairs && !rc; p++)
        for (int k = 1; k <= T && !rc; k++) {
            if (!wanted(job, T, p, k)) continue;
            be_view z = be_view_f(ov.v, ((size_t)p * T + k - 1) * n);
            be_copy(s->be, z, be_view_f(lv.v, (size_t)k * n), n * sizeof(float));
            sampler_progress_fn saved = s->progress;
            s->progress = NULL; /* one tick per candidate, counted in sample-steps */
            rc = sampler_denoise_dev(s, z, k, 0, job->pair_ctx[p], job->source_ctx, job->guidance, err);
            s->progress = saved;
            done += k;
            if (!rc) rc = progress(s, stage, done, total, err);
        }
    return job_close(s, job, out, &lv, &ov, rc, err);
}

int candidates_parallel(sampler *s, const candidate_job *job, float *out, oir_error *err) {
    int T = s->T, n_items = 0, total = 0, done = 0;
    size_t n = s->lat_n, xb = n * sizeof(float);
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
    oir_backend *be = s->be;
    /* on the backend: the row latents, and per call the gathered busy rows */
    sampler_buf lv, ov, state = {0}, x = {0}, eps = {0};
    int64_t *t = malloc(sizeof(int64_t) * (size_t)rows);
    int *busy = malloc(sizeof(int) * (size_t)rows);
    const float **cond = malloc(sizeof(float *) * (size_t)rows);
    const float **uncond = malloc(sizeof(float *) * (size_t)rows);
    if ((rc = job_open(s, job, out, &lv, &ov, err)) ||
        (rc = sampler_buf_open(s, &state, NULL, (size_t)rows * n, 0, err)) ||
        (rc = sampler_buf_open(s, &x, NULL, (size_t)rows * n, 0, err)) ||
        (rc = sampler_buf_open(s, &eps, NULL, (size_t)rows * n, 0, err)))
        goto cleanup;
    if (rows && (!t || !busy || !cond || !uncond)) {
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
            be_view z = be_view_f(state.v, (size_t)r * n);
            if (step == 0) be_copy(be, z, be_view_f(lv.v, (size_t)it.k * n), xb);
            be_copy(be, be_view_f(x.v, (size_t)B * n), z, xb);
            t[B] = s->sched.timesteps[T - it.k + step];
            cond[B] = job->pair_ctx[it.pair];
            uncond[B] = job->source_ctx;
            busy[B++] = i;
        }
        rc = sampler_eps_dev(s, x.v, t, cond, uncond, job->guidance, B, eps.v, err);
        if (!rc) rc = ddim_step_dev(&s->sched, be, x.v, eps.v, t, x.v, B, n, BE_NONE, err);
        for (int b = 0; b < B && !rc; b++) {
            int i = busy[b];
            schedule_item it = plan.items[i];
            be_view xr = be_view_f(x.v, (size_t)b * n);
            be_copy(be, be_view_f(state.v, (size_t)plan.row[i] * n), xr, xb);
            if (c - plan.start[i] == it.k - 1) /* its last step: candidate k's z_0 */
                be_copy(be, be_view_f(ov.v, ((size_t)it.pair * T + it.k - 1) * n), xr, xb);
        }
        done += B;
        if (!rc) rc = progress(s, stage, done, total, err);
    }
cleanup:
    schedule_plan_free(&plan);
    sampler_buf_close(s, &state, NULL, 0, 0, NULL);
    sampler_buf_close(s, &x, NULL, 0, 0, NULL);
    sampler_buf_close(s, &eps, NULL, 0, 0, NULL);
    rc = job_close(s, job, out, &lv, &ov, rc, err);
    free(t);
    free(busy);
    free(cond);
    free(uncond);
    return rc;
}
