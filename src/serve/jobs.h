/* The job table of `oir serve`: every job the server knows, its state and
 * progress, and their expiry so memory and disk stay bounded.
 *
 * A job is created whole (its uploads already in its folder, checked) and
 * enters the table QUEUED; the worker takes the oldest QUEUED one, runs it
 * (RUNNING) and leaves it DONE, FAILED or CANCELLED. A re-pick puts a DONE
 * job back in the queue (task JOB_TASK_PICK) and it ends DONE again, its
 * result replaced (or kept, with pick_error, when the pick failed or was
 * cancelled).
 *
 * Expiry (jobs_expire, at every request and every 5 s of the worker's
 * wait): a finished job is removed `ttl` seconds after it finished, and
 * while the table holds more than max_jobs jobs the oldest finished ones
 * go first. Queued and running jobs are never removed; a submission that
 * would make more than max_active of them is refused (jobs_add: busy).
 * Removing a job deletes its folder.
 *
 * Locking: every function here expects the caller to hold t->mu, except
 * jobs_init / jobs_destroy. */
#ifndef OIR_SERVE_JOBS_H
#define OIR_SERVE_JOBS_H

#include <pthread.h>

#include "serve/job_run.h"

#define JOB_ID_LEN 32      /* hex digits: 128 random bits */
#define JOB_MAX_STAGES 16

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;
typedef enum { JOB_TASK_EDIT, JOB_TASK_PICK } job_task;

typedef struct {
    char name[48];
    int done, total;
} job_stage;

typedef struct job {
    char id[JOB_ID_LEN + 1];
    char *dir;                 /* its folder: uploads and outputs */
    job_state state;
    job_task task;
    long seq;                  /* queue order */
    double created, finished;  /* clock_wall_s() */
    unsigned long version;     /* bumped on every change (events) */
    int cancel;                /* DELETE: stop the running task */
    char error[1024];          /* FAILED / CANCELLED: why */
    char pick_error[1024];     /* the last re-pick failed or was cancelled: why ("" otherwise) */
    job_stage stages[JOB_MAX_STAGES];
    int n_stages, stage;       /* stage: the current one, -1 none */
    serve_request req;         /* the request, fixed at creation */
    int pick_pair, pick_step;  /* JOB_TASK_PICK: 0-based pair, step */
    serve_result *res;         /* NULL until the edit is done */
    struct job *next;
} job;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t changed;    /* broadcast on every change (worker, event streams) */
    job *head;
    int n;
    long next_seq;
    int max_jobs, max_active;
    double ttl;
    char *root;                /* the server's folder; job folders are root/ID */
} job_table;

int jobs_init(job_table *t, const char *root, int max_jobs, int max_active, double ttl, oir_error *err);
/* Frees every job and removes their folders. */
void jobs_destroy(job_table *t);

/* A new job (state QUEUED, not in the table yet) with a fresh random id and
 * its folder made under root. */
int job_new(job_table *t, job **out, oir_error *err);
/* Frees a job that is not in the table (and removes its folder). */
void job_discard(job *j);
/* Puts j into the table (after expiring what can go): OIR_OK, or
 * OIR_E_NOMEM when max_active jobs are already queued or running (the
 * message says so; the caller answers 503 and discards j). */
int jobs_add(job_table *t, job *j, double now, oir_error *err);
job *jobs_find(job_table *t, const char *id);
/* Removes a finished job now (DELETE). */
void jobs_remove(job_table *t, job *j);
void jobs_expire(job_table *t, double now);
/* The oldest QUEUED job, or NULL. */
job *jobs_next_queued(job_table *t);
/* Queued jobs before j (0: next). */
int jobs_queue_position(job_table *t, const job *j);
/* Marks a change: version + 1, broadcast. */
void job_touch(job_table *t, job *j);
/* The progress of a stage: its entry updated or added. */
void job_progress(job *j, const char *stage, int done, int total);

int job_finished(const job *j);
const char *job_state_name(job_state s);
/* GET /api/jobs/ID: id, state, task, stages, error, queue position,
 * expiry; with full = 1 also the result (serve_result_json). */
cJSON *job_status_json(job_table *t, const job *j, int full, double now);

#endif
