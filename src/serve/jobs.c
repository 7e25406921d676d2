/* The job table of `oir serve` (see jobs.h). */
#include "serve/jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int jobs_init(job_table *t, const char *root, int max_jobs, int max_active, double ttl, oir_error *err) {
    memset(t, 0, sizeof *t);
    if (!(t->root = strdup(root))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->changed, &ca);
    pthread_condattr_destroy(&ca);
    t->max_jobs = max_jobs;
    t->max_active = max_active;
    t->ttl = ttl;
    return OIR_OK;
}

/* Removes the files of a job's folder (all made by the server: no
 * subfolders) and the folder. */
static void remove_dir(const char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    if (d) {
        int fd = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(fd, e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

void job_discard(job *j) {
    if (!j) return;
    remove_dir(j->dir);
    free(j->dir);
    serve_result_free(j->res);
    free(j);
}

void jobs_destroy(job_table *t) {
    for (job *j = t->head, *next; j; j = next) {
        next = j->next;
        job_discard(j);
    }
    t->head = NULL;
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->mu);
    free(t->root);
    t->root = NULL;
}

int job_new(job_table *t, job **out, oir_error *err) {
    *out = NULL;
    job *j = calloc(1, sizeof *j);
    if (!j) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    unsigned char rnd[JOB_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(j);
            return oir_fail(err, OIR_E_INTERNAL, "getrandom failed: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(j->id + 2 * i, 3, "%02x", rnd[i]);
    size_t n = strlen(t->root) + JOB_ID_LEN + 2;
    if (!(j->dir = malloc(n))) {
        free(j);
        return oir_fail(err, OIR_E_NOMEM, "out of memory");
    }
    snprintf(j->dir, n, "%s/%s", t->root, j->id);
    if (mkdir(j->dir, 0700) != 0) {
        int e = errno;
        free(j->dir);
        free(j);
        return oir_fail(err, OIR_E_IO, "cannot make a job folder: %s", strerror(e));
    }
    j->state = JOB_QUEUED;
    j->stage = -1;
    *out = j;
    return OIR_OK;
}

int job_finished(const job *j) { return j->state == JOB_DONE || j->state == JOB_FAILED || j->state == JOB_CANCELLED; }

static void unlink_job(job_table *t, job *j) {
    for (job **pp = &t->head; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            t->n--;
            break;
        }
}

void jobs_remove(job_table *t, job *j) {
    unlink_job(t, j);
    job_discard(j);
    pthread_cond_broadcast(&t->changed);
}

void jobs_expire(job_table *t, double now) {
    for (job *j = t->head, *next; j; j = next) {
        next = j->next;
        if (job_finished(j) && now - j->finished > t->ttl) jobs_remove(t, j);
    }
    while (t->n > t->max_jobs) {
        job *oldest = NULL;
        for (job *j = t->head; j; j = j->next)
            if (job_finished(j) && (!oldest || j->finished < oldest->finished)) oldest = j;
        if (!oldest) break;
        jobs_remove(t, oldest);
    }
}

int jobs_add(job_table *t, job *j, double now, oir_error *err) {
    jobs_expire(t, now);
    int active = 0;
    for (job *k = t->head; k; k = k->next) active += !job_finished(k);
    if (active >= t->max_active)
        return oir_fail(err, OIR_E_NOMEM, "the server is busy: %d jobs are queued or running (at most %d); try again later",
                        active, t->max_active);
    j->created = now;
    j->seq = t->next_seq++;
    j->next = t->head;
    t->head = j;
    t->n++;
    jobs_expire(t, now); /* over max_jobs: the oldest finished go */
    job_touch(t, j);
    return OIR_OK;
}

job *jobs_find(job_table *t, const char *id) {
    for (job *j = t->head; j; j = j->next)
        if (!strcmp(j->id, id)) return j;
    return NULL;
}

job *jobs_next_queued(job_table *t) {
    job *best = NULL;
    for (job *j = t->head; j; j = j->next)
        if (j->state == JOB_QUEUED && (!best || j->seq < best->seq)) best = j;
    return best;
}

int jobs_queue_position(job_table *t, const job *j) {
    int n = 0;
    for (const job *k = t->head; k; k = k->next) n += k->state == JOB_QUEUED && k->seq < j->seq;
    return n;
}

void job_touch(job_table *t, job *j) {
    j->version++;
    pthread_cond_broadcast(&t->changed);
}

void job_progress(job *j, const char *stage, int done, int total) {
    int i = 0;
    while (i < j->n_stages && strcmp(j->stages[i].name, stage)) i++;
    if (i == j->n_stages) {
        if (j->n_stages == JOB_MAX_STAGES) i = JOB_MAX_STAGES - 1; /* the last slot is reused */
        else j->n_stages++;
        snprintf(j->stages[i].name, sizeof j->stages[i].name, "%s", stage);
    }
    j->stages[i].done = done;
    j->stages[i].total = total;
    j->stage = i;
}

const char *job_state_name(job_state s) {
    switch (s) {
    case JOB_QUEUED: return "queued";
    case JOB_RUNNING: return "running";
    case JOB_DONE: return "done";
    case JOB_FAILED: return "failed";
    case JOB_CANCELLED: return "cancelled";
    }
    return "?";
}

cJSON *job_status_json(job_table *t, const job *j, int full, double now) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "state", job_state_name(j->state));
    cJSON_AddStringToObject(o, "task", j->task == JOB_TASK_PICK ? "pick" : "edit");
    cJSON_AddNumberToObject(o, "version", (double)j->version);
    cJSON_AddNumberToObject(o, "revision", j->res ? j->res->revision : 0);
    if (j->state == JOB_QUEUED) cJSON_AddNumberToObject(o, "queue_position", jobs_queue_position(t, j));
    if (j->task == JOB_TASK_PICK && !job_finished(j)) {
        cJSON *pk = cJSON_AddObjectToObject(o, "pick");
        cJSON_AddNumberToObject(pk, "pair", j->pick_pair + 1);
        cJSON_AddNumberToObject(pk, "step", j->pick_step);
    }
    cJSON_AddStringToObject(o, "stage", j->stage >= 0 ? j->stages[j->stage].name : "");
    cJSON *st = cJSON_AddArrayToObject(o, "stages");
    for (int i = 0; i < j->n_stages; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", j->stages[i].name);
        cJSON_AddNumberToObject(e, "done", j->stages[i].done);
        cJSON_AddNumberToObject(e, "total", j->stages[i].total);
        cJSON_AddItemToArray(st, e);
    }
    if (j->error[0]) cJSON_AddStringToObject(o, "error", j->error);
    if (j->pick_error[0]) cJSON_AddStringToObject(o, "pick_error", j->pick_error);
    cJSON_AddNumberToObject(o, "age_seconds", now - j->created);
    if (job_finished(j)) {
        double left = t->ttl - (now - j->finished);
        cJSON_AddNumberToObject(o, "expires_in_seconds", left > 0 ? left : 0);
    }
    if (full && j->res) cJSON_AddItemToObject(o, "result", serve_result_json(j->res, &j->req));
    return o;
}
