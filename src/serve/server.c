/* `oir serve`: HTTP routes over libmicrohttpd, the job queue and its worker
 * thread (serve.h; the API is documented in README "The web editor").
 *
 * Threads: libmicrohttpd answers each connection on its own thread
 * (MHD_USE_THREAD_PER_CONNECTION), so a slow client or an event stream
 * waiting for progress never holds up another request; one worker thread
 * runs the jobs, one at a time, with the one oir_context. Everything the
 * two share (the job table, each job's state and result) is guarded by
 * jobs.mu; the worker computes without it and takes it to publish.
 *
 * Requests are parsed by libmicrohttpd (headers, chunked bodies, and
 * multipart/form-data with its post-processor). Every request is checked
 * first: its Host must name this server (a loopback address or "localhost"
 * when bound to loopback; the bound address; any IP address when bound to
 * all; or an --allow-host name) at its port, so a DNS-rebinding page cannot
 * talk to it, and an Origin, when sent, must be this server's own (no
 * cross-site requests from other pages). Bodies are limited in bytes
 * (Content-Length checked before the body is read: 413) and photos in
 * pixels (read from the header before any decoding: 400). */
#include "serve/serve.h"

int serve_available(void);

#ifndef OIR_HAVE_MHD

#include "core/error.h"

int serve_available(void) { return 0; }

int serve_run(oir_context *ctx, const serve_options *o, oir_error *err) {
    (void)ctx;
    (void)o;
    return oir_fail(err, OIR_E_UNSUPPORTED,
                    "this build of oir has no web server: libmicrohttpd was not found when it was built "
                    "(install libmicrohttpd-dev, e.g. with `make deps` as root, then rebuild)");
}

#else

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "io/image.h"
#include "io/json.h"
#include "io/outfile.h"
#include "serve/assets.h"
#include "serve/http.h"
#include "serve/jobs.h"

#define MAX_UPLOADS 4              /* submissions whose bodies are being received at once */
#define MAX_SMALL_BODY (64 << 10)  /* params, a pick's JSON, any other body */
#define EVENT_KEEPALIVE_S 15

int serve_available(void) { return 1; }

typedef struct {
    oir_context *ctx;
    serve_options opt;
    job_table jobs;
    struct MHD_Daemon *daemon;
    http_host_rule host;           /* the bound address and port: who may call */
    atomic_int starting;           /* libmicrohttpd's messages are dropped until it listens */
    int stopping;                  /* under jobs.mu */
    int uploads;                   /* under jobs.mu */
    char *info;                    /* GET /api/info */
} server;

enum { ROUTE_OTHER, ROUTE_SUBMIT, ROUTE_PICK };

typedef struct {
    server *s;
    int route;
    unsigned status; /* an error answer decided while the body came in (0: none) */
    char msg[1400];
    unsigned long long body_bytes;
    struct MHD_PostProcessor *pp;
    int holds_upload;
    http_buf params, image, masks[SERVE_MAX_PAIRS], body;
} request;

static double now_s(void) { return clock_wall_s(); }

static void lock(server *s) { pthread_mutex_lock(&s->jobs.mu); }
static void unlock(server *s) { pthread_mutex_unlock(&s->jobs.mu); }

static void log_line(const server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const server *s, const char *fmt, ...) {
    if (s->opt.quiet) return;
    char line[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "oir serve: %s\n", line);
}

static void fail_request(request *rq, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_request(request *rq, unsigned status, const char *fmt, ...) {
    if (rq->status) return;
    rq->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->msg, sizeof rq->msg, fmt, ap);
    va_end(ap);
}

static int allowed_image_type(const char *t) {
    if (!t) return 1;
    return !strncasecmp(t, "image/png", 9) || !strncasecmp(t, "image/jpeg", 10) ||
           !strncasecmp(t, "application/octet-stream", 24);
}

/* The multipart parts of POST /api/jobs: params (JSON), image, mask1..mask16. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size) {
    request *rq = cls;
    (void)kind, (void)filename, (void)transfer_encoding;
    if (rq->status) return MHD_NO;
    http_buf *b = NULL;
    size_t max = (size_t)rq->s->opt.max_upload_bytes;
    int is_image = 0;
    if (!strcmp(key, "params")) {
        b = &rq->params;
        max = MAX_SMALL_BODY;
    } else if (!strcmp(key, "image")) {
        b = &rq->image;
        is_image = 1;
    } else if (!strncmp(key, "mask", 4)) {
        char back[16];
        int i = atoi(key + 4);
        snprintf(back, sizeof back, "mask%d", i);
        if (i >= 1 && i <= SERVE_MAX_PAIRS && !strcmp(back, key)) b = &rq->masks[i - 1], is_image = 1;
    }
    if (!b) {
        fail_request(rq, MHD_HTTP_BAD_REQUEST, "unknown part '%.100s' (expected params, image, mask1..mask%d)", key,
                     SERVE_MAX_PAIRS);
        return MHD_NO;
    }
    if (off == 0 && b->seen) {
        fail_request(rq, MHD_HTTP_BAD_REQUEST, "part '%s' was sent twice", key);
        return MHD_NO;
    }
    if (off == 0 && is_image && !allowed_image_type(content_type)) {
        fail_request(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "part '%s' is %.100s: only PNG and JPEG images are accepted",
                     key, content_type);
        return MHD_NO;
    }
    b->seen = 1;
    int rc = http_buf_add(b, data, size, max);
    if (rc == -1) {
        fail_request(rq, MHD_HTTP_CONTENT_TOO_LARGE, "part '%s' is over %zu bytes", key, max);
        return MHD_NO;
    }
    if (rc) {
        fail_request(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return MHD_NO;
    }
    return MHD_YES;
}

/* ------------------------------------------------------------ the worker */

typedef struct {
    server *s;
    job *j;
} run_ctx;

static int on_progress(void *user, const char *stage, int done, int total) {
    run_ctx *w = user;
    lock(w->s);
    job_progress(w->j, stage, done, total);
    job_touch(&w->s->jobs, w->j);
    int stop = w->j->cancel || w->s->stopping;
    unlock(w->s);
    return stop;
}

static void *worker_main(void *arg) {
    server *s = arg;
    lock(s);
    while (!s->stopping) {
        jobs_expire(&s->jobs, now_s());
        job *j = jobs_next_queued(&s->jobs);
        if (!j) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 5;
            pthread_cond_timedwait(&s->jobs.changed, &s->jobs.mu, &ts);
            continue;
        }
        j->state = JOB_RUNNING;
        j->n_stages = 0;
        j->stage = -1;
        j->cancel = 0;
        job_touch(&s->jobs, j);
        job_task task = j->task;
        int pair = j->pick_pair, step = j->pick_step;
        unlock(s);
        run_ctx w = {s, j};
        oir_error err = {0};
        double t0 = now_s();
        int rc;
        if (task == JOB_TASK_EDIT) {
            serve_result *res = NULL;
            rc = serve_job_edit(s->ctx, &j->req, j->dir, j->id, on_progress, &w, &res, &err);
            lock(s);
            j->res = res;
            j->state = !rc ? JOB_DONE : rc == OIR_E_CANCELLED ? JOB_CANCELLED : JOB_FAILED;
            if (rc) snprintf(j->error, sizeof j->error, "%s", err.message[0] ? err.message : oir_status_name(rc));
        } else {
            serve_pick pk;
            rc = serve_job_pick(s->ctx, &j->req, j->dir, j->res, pair, step, on_progress, &w, &pk, &err);
            if (!rc) {
                lock(s);
                serve_pick_apply(j->res, &pk);
                unlock(s);
                rc = serve_job_write_pick(s->ctx, &j->req, j->dir, j->id, j->res, &err);
                serve_pick_free(&pk);
            }
            lock(s);
            j->state = JOB_DONE;
            if (rc)
                snprintf(j->pick_error, sizeof j->pick_error, "pick of pair %d step %d %s: %.900s", pair + 1, step,
                         rc == OIR_E_CANCELLED ? "cancelled" : "failed", err.message);
        }
        j->finished = now_s();
        j->stage = -1;
        job_touch(&s->jobs, j);
        if (task == JOB_TASK_EDIT)
            log_line(s, "job %s: %s in %.1f s%s%s", j->id, job_state_name(j->state), j->finished - t0,
                     rc ? ": " : "", rc ? j->error : "");
        else
            log_line(s, "job %s: pick pair %d step %d %s in %.1f s", j->id, pair + 1, step,
                     rc ? j->pick_error : "done", j->finished - t0);
    }
    unlock(s);
    return NULL;
}

/* ------------------------------------------------------------ routes */

static int valid_id(const char *p, size_t n) {
    if (n != JOB_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)p[i]) && !(p[i] >= 'a' && p[i] <= 'f')) return 0;
    return 1;
}

/* "/api/jobs/ID[/rest]" -> id, rest ("" or "events", "pick", "files/NAME") */
static int parse_job_url(const char *url, char id[JOB_ID_LEN + 1], const char **rest) {
    const char *pre = "/api/jobs/";
    if (strncmp(url, pre, strlen(pre))) return 0;
    const char *p = url + strlen(pre), *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (!valid_id(p, n)) return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    *rest = slash ? slash + 1 : "";
    return 1;
}

static enum MHD_Result route_submit(server *s, struct MHD_Connection *c, request *rq) {
    oir_error err = {0};
    char msg[1400];
    int ok = MHD_destroy_post_processor(rq->pp) == MHD_YES;
    rq->pp = NULL;
    if (!ok) return http_answer_error(c, MHD_HTTP_BAD_REQUEST, "truncated or malformed multipart/form-data body");
    if (!rq->params.seen) return http_answer_error(c, MHD_HTTP_BAD_REQUEST, "part 'params' (the job's JSON) is missing");
    if (!rq->image.seen || rq->image.len == 0)
        return http_answer_error(c, MHD_HTTP_BAD_REQUEST, "part 'image' (a PNG or JPEG photo) is missing or empty");
    int w, h;
    int fmt = serve_image_dims((const unsigned char *)rq->image.data, rq->image.len, &w, &h);
    if (fmt == 0) return http_answer_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "image: not a PNG or JPEG (only PNG and JPEG are accepted)");
    if (fmt < 0) return http_answer_error(c, MHD_HTTP_BAD_REQUEST, "image: its PNG/JPEG header is truncated or corrupt");
    if ((long long)w * h > s->opt.max_pixels) {
        snprintf(msg, sizeof msg, "image: %dx%d = %lld pixels, this server takes at most %lld (oir serve --max-pixels)",
                 w, h, (long long)w * h, s->opt.max_pixels);
        return http_answer_error(c, MHD_HTTP_BAD_REQUEST, msg);
    }
    int has_upload[SERVE_MAX_PAIRS];
    for (int i = 0; i < SERVE_MAX_PAIRS; i++) {
        has_upload[i] = rq->masks[i].seen;
        if (!has_upload[i]) continue;
        int mw, mh, mf = serve_image_dims((const unsigned char *)rq->masks[i].data, rq->masks[i].len, &mw, &mh);
        if (mf == 0) {
            snprintf(msg, sizeof msg, "mask%d: not a PNG or JPEG (only PNG and JPEG are accepted)", i + 1);
            return http_answer_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, msg);
        }
        if (mf < 0 || mw != w || mh != h) {
            if (mf < 0) snprintf(msg, sizeof msg, "mask%d: its PNG/JPEG header is truncated or corrupt", i + 1);
            else snprintf(msg, sizeof msg, "mask%d is %dx%d but the photo is %dx%d: masks are at the photo's size", i + 1, mw, mh, w, h);
            return http_answer_error(c, MHD_HTTP_BAD_REQUEST, msg);
        }
    }
    job *j = NULL;
    if (job_new(&s->jobs, &j, &err)) return http_answer_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.message);
    int rc = serve_request_parse(&j->req, rq->params.data, rq->params.len, has_upload, &err);
    if (!rc) {
        j->req.photo_w = w, j->req.photo_h = h;
        rc = serve_request_check(&j->req, s->ctx, &err);
    }
    /* the uploads into the job's folder, decoded once to refuse broken files now */
    for (int i = -1; i < SERVE_MAX_PAIRS && !rc; i++) {
        const http_buf *b = i < 0 ? &rq->image : &rq->masks[i];
        if (i >= 0 && !b->seen) continue;
        char name[16], path[1200];
        snprintf(name, sizeof name, i < 0 ? "upload" : "mask%d", i + 1);
        snprintf(path, sizeof path, "%s/%s", j->dir, name);
        image img = {0};
        rc = outfile_write(path, b->data, b->len, &err);
        if (!rc) rc = i < 0 ? image_load(&img, path, &err) : mask_load(&img, path, &err);
        image_free(&img);
        if (rc) { /* the message names our path: name the part instead */
            char text[1024];
            const char *m = err.message, *at = strstr(m, path);
            snprintf(text, sizeof text, "%s%.900s", i < 0 ? "image" : name, at ? at + strlen(path) : m);
            snprintf(err.message, sizeof err.message, "%s", text);
        }
    }
    if (rc) {
        job_discard(j);
        return http_answer_error(c, rc == OIR_E_UNSUPPORTED ? MHD_HTTP_UNSUPPORTED_MEDIA_TYPE : MHD_HTTP_BAD_REQUEST,
                            err.message);
    }
    lock(s);
    double t = now_s();
    rc = jobs_add(&s->jobs, j, t, &err);
    cJSON *o = rc ? NULL : job_status_json(&s->jobs, j, 0, t);
    unlock(s);
    if (rc) {
        job_discard(j);
        return http_answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.message);
    }
    log_line(s, "job %s: queued (%dx%d photo, %d pair%s)", j->id, w, h, j->req.n_pairs, j->req.n_pairs > 1 ? "s" : "");
    char *text = cJSON_PrintUnformatted(o);
    char loc[128];
    snprintf(loc, sizeof loc, "/api/jobs/%s", cJSON_GetObjectItem(o, "id")->valuestring);
    cJSON_Delete(o);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    cJSON_free(text);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_ACCEPTED, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result route_pick(server *s, struct MHD_Connection *c, const char *id, request *rq) {
    cJSON *in = NULL;
    oir_error err = {0};
    if (json_parse(&in, rq->body.data ? rq->body.data : "", rq->body.len, "the pick's JSON", &err))
        return http_answer_error(c, MHD_HTTP_BAD_REQUEST, err.message);
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(in, "pair"), *js = cJSON_GetObjectItemCaseSensitive(in, "step");
    int pair = cJSON_IsNumber(jp) && jp->valuedouble >= 1 && jp->valuedouble <= 1000 &&
                       jp->valuedouble == (int)jp->valuedouble
                   ? (int)jp->valuedouble
                   : -1;
    int step = cJSON_IsNumber(js) && js->valuedouble >= 1 && js->valuedouble <= 1000 &&
                       js->valuedouble == (int)js->valuedouble
                   ? (int)js->valuedouble
                   : -1;
    int ok = cJSON_IsObject(in) && cJSON_GetArraySize(in) == 2 && pair > 0 && step > 0;
    cJSON_Delete(in);
    if (!ok)
        return http_answer_error(c, MHD_HTTP_BAD_REQUEST,
                            "expected {\"pair\": P, \"step\": K} (P = 1 for the first pair, K in 1..steps)");
    lock(s);
    double t = now_s();
    jobs_expire(&s->jobs, t);
    job *j = jobs_find(&s->jobs, id);
    unsigned status = 0;
    char msg[512];
    if (!j) status = MHD_HTTP_NOT_FOUND, snprintf(msg, sizeof msg, "no job %s (it expired, was deleted or never was)", id);
    else if (j->state != JOB_DONE || !j->res)
        status = MHD_HTTP_CONFLICT,
        snprintf(msg, sizeof msg, "job %s is %s: a candidate can be picked once its edit is done", id, job_state_name(j->state));
    else if (pair > j->req.n_pairs || step > j->res->r->steps)
        status = MHD_HTTP_BAD_REQUEST,
        snprintf(msg, sizeof msg, "pair %d step %d: this job has pairs 1..%d and steps 1..%d", pair, step, j->req.n_pairs,
                 j->res->r->steps);
    else {
        int active = 0;
        for (job *k = s->jobs.head; k; k = k->next) active += !job_finished(k);
        if (active >= s->jobs.max_active)
            status = MHD_HTTP_SERVICE_UNAVAILABLE,
            snprintf(msg, sizeof msg, "the server is busy: %d jobs are queued or running; try again later", active);
    }
    if (status) {
        unlock(s);
        return http_answer_error(c, status, msg);
    }
    int queued = j->res->chosen[pair - 1] != step; /* else: already the choice, nothing to do */
    if (queued) {
        j->task = JOB_TASK_PICK;
        j->pick_pair = pair - 1;
        j->pick_step = step;
        j->pick_error[0] = '\0';
        j->state = JOB_QUEUED;
        j->seq = s->jobs.next_seq++;
        job_touch(&s->jobs, j);
    }
    cJSON *o = job_status_json(&s->jobs, j, 0, t);
    unlock(s);
    return http_answer_json(c, queued ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK, o);
}

static enum MHD_Result route_delete(server *s, struct MHD_Connection *c, const char *id) {
    lock(s);
    double t = now_s();
    job *j = jobs_find(&s->jobs, id);
    if (!j) {
        unlock(s);
        return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such job (it expired, was deleted or never was)");
    }
    unsigned status = MHD_HTTP_OK;
    cJSON *o;
    if (job_finished(j)) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", j->id);
        cJSON_AddBoolToObject(o, "deleted", 1);
        jobs_remove(&s->jobs, j);
        log_line(s, "job %s: deleted", id);
    } else {
        if (j->state == JOB_QUEUED) {
            if (j->task == JOB_TASK_PICK) {
                j->state = JOB_DONE;
                snprintf(j->pick_error, sizeof j->pick_error, "pick of pair %d step %d cancelled", j->pick_pair + 1,
                         j->pick_step);
            } else {
                j->state = JOB_CANCELLED;
                snprintf(j->error, sizeof j->error, "cancelled before it ran");
            }
            j->finished = t;
        } else {
            j->cancel = 1;
            status = MHD_HTTP_ACCEPTED;
        }
        job_touch(&s->jobs, j);
        o = job_status_json(&s->jobs, j, 0, t);
        cJSON_AddBoolToObject(o, "cancel", 1);
        log_line(s, "job %s: cancel asked", id);
    }
    unlock(s);
    return http_answer_json(c, status, o);
}

static enum MHD_Result route_file(server *s, struct MHD_Connection *c, const char *id, const char *name) {
    lock(s);
    job *j = jobs_find(&s->jobs, id);
    int fd = -1;
    struct stat st;
    if (j && j->res && serve_result_has_file(j->res, name)) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", j->dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
            close(fd);
            fd = -1;
        }
    }
    unlock(s);
    if (fd < 0)
        return http_answer_error(c, MHD_HTTP_NOT_FOUND, j ? "no such file in this job (yet)" : "no such job (it expired, was deleted or never was)");
    struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    int json = strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, json ? "application/json" : "image/png");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* GET /api/jobs/ID/events: server-sent events, one "data:" line with the
 * job's status (without the result) at once and at every change, a comment
 * every 15 s while nothing changes; the stream ends after a finished state. */
typedef struct {
    server *s;
    char id[JOB_ID_LEN + 1];
    unsigned long seen;
    int started, ended;
    char *pending;
    size_t len, pos;
} event_stream;

static ssize_t events_read(void *cls, uint64_t pos, char *out, size_t max) {
    event_stream *e = cls;
    server *s = e->s;
    (void)pos;
    if (e->pos >= e->len) {
        free(e->pending);
        e->pending = NULL;
        e->len = e->pos = 0;
        if (e->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        lock(s);
        for (;;) {
            if (s->stopping) {
                unlock(s);
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            job *j = jobs_find(&s->jobs, e->id);
            char *text = NULL;
            if (!j) {
                e->ended = 1;
                text = strdup("event: gone\ndata: {\"error\":\"the job expired or was deleted\"}\n\n");
            } else if (!e->started || j->version != e->seen) {
                cJSON *o = job_status_json(&s->jobs, j, 0, now_s());
                char *json = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                size_t n = json ? strlen(json) + 32 : 0;
                if (json && (text = malloc(n))) snprintf(text, n, "%sdata: %s\n\n", e->started ? "" : "retry: 1000\n", json);
                cJSON_free(json);
                e->seen = j->version;
                e->started = 1;
                if (job_finished(j)) e->ended = 1;
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += EVENT_KEEPALIVE_S;
                if (pthread_cond_timedwait(&s->jobs.changed, &s->jobs.mu, &ts) == ETIMEDOUT) text = strdup(": keep-alive\n\n");
                else continue;
            }
            if (!text) {
                unlock(s);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            e->pending = text;
            e->len = strlen(text);
            break;
        }
        unlock(s);
    }
    size_t n = e->len - e->pos < max ? e->len - e->pos : max;
    memcpy(out, e->pending + e->pos, n);
    e->pos += n;
    return (ssize_t)n;
}

static void events_free(void *cls) {
    event_stream *e = cls;
    free(e->pending);
    free(e);
}

static enum MHD_Result route_events(server *s, struct MHD_Connection *c, const char *id) {
    lock(s);
    int known = jobs_find(&s->jobs, id) != NULL;
    unlock(s);
    if (!known) return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such job (it expired, was deleted or never was)");
    event_stream *e = calloc(1, sizeof *e);
    if (!e) return MHD_NO;
    e->s = s;
    snprintf(e->id, sizeof e->id, "%s", id);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, events_read, e, events_free);
    if (!r) {
        free(e);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result route_status(server *s, struct MHD_Connection *c, const char *id) {
    lock(s);
    double t = now_s();
    jobs_expire(&s->jobs, t);
    job *j = jobs_find(&s->jobs, id);
    cJSON *o = j ? job_status_json(&s->jobs, j, 1, t) : NULL;
    unlock(s);
    if (!j) return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such job (it expired, was deleted or never was)");
    return http_answer_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result route_list(server *s, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "jobs");
    lock(s);
    double t = now_s();
    jobs_expire(&s->jobs, t);
    for (job *j = s->jobs.head; j; j = j->next) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", j->id);
        cJSON_AddStringToObject(e, "state", job_state_name(j->state));
        cJSON_AddNumberToObject(e, "revision", j->res ? j->res->revision : 0);
        cJSON_AddNumberToObject(e, "age_seconds", t - j->created);
        cJSON_AddItemToArray(a, e);
    }
    unlock(s);
    return http_answer_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result route(server *s, struct MHD_Connection *c, const char *url, const char *method, request *rq) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST"),
        del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/") || strncmp(url, "/api/", 5)) {
        const char *path = !strcmp(url, "/") ? "/index.html" : url;
        for (int i = 0; i < serve_n_assets; i++)
            if (!strcmp(path, serve_assets[i].path)) {
                if (!get) return http_answer_method(c, "GET, HEAD");
                return http_answer(c, MHD_HTTP_OK, serve_assets[i].type, serve_assets[i].data, serve_assets[i].len, 1);
            }
        return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such page");
    }
    if (!strcmp(url, "/api/info")) {
        if (!get) return http_answer_method(c, "GET, HEAD");
        return http_answer(c, MHD_HTTP_OK, "application/json", s->info, strlen(s->info), 1);
    }
    if (!strcmp(url, "/api/jobs")) {
        if (post && rq->route == ROUTE_SUBMIT) return route_submit(s, c, rq);
        if (get) return route_list(s, c);
        return http_answer_method(c, "GET, HEAD, POST");
    }
    char id[JOB_ID_LEN + 1];
    const char *rest = "";
    int k = parse_job_url(url, id, &rest);
    if (k < 0) return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such job: job ids are 32 hex digits");
    if (k == 0) return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such API path (see README \"The web editor\")");
    if (!rest[0]) {
        if (get) return route_status(s, c, id);
        if (del) return route_delete(s, c, id);
        return http_answer_method(c, "GET, HEAD, DELETE");
    }
    if (!strcmp(rest, "events")) return get ? route_events(s, c, id) : http_answer_method(c, "GET");
    if (!strcmp(rest, "pick")) return post && rq->route == ROUTE_PICK ? route_pick(s, c, id, rq) : http_answer_method(c, "POST");
    if (!strncmp(rest, "files/", 6)) return get ? route_file(s, c, id, rest + 6) : http_answer_method(c, "GET, HEAD");
    return http_answer_error(c, MHD_HTTP_NOT_FOUND, "no such API path (see README \"The web editor\")");
}

/* The first call of a request (headers read): checks that need no body. */
static enum MHD_Result begin(server *s, struct MHD_Connection *c, const char *url, const char *method, request *rq) {
    unsigned st = http_check_host(&s->host, c, rq->msg, sizeof rq->msg);
    if (st) return http_answer_error(c, st, rq->msg);
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = clen ? strtoull(clen, NULL, 10) : 0;
    char id[JOB_ID_LEN + 1];
    const char *rest;
    if (!strcmp(method, "POST") && !strcmp(url, "/api/jobs")) {
        if (!type || strncasecmp(type, "multipart/form-data", 19))
            return http_answer_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "POST /api/jobs takes multipart/form-data: parts params (JSON), image (PNG or JPEG), "
                                "mask1..mask16 (optional PNG masks)");
        if (declared > (unsigned long long)s->opt.max_upload_bytes) {
            snprintf(rq->msg, sizeof rq->msg, "the body is %llu bytes, this server takes at most %lld (oir serve --max-upload-mb)",
                     declared, s->opt.max_upload_bytes);
            return http_answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, rq->msg);
        }
        lock(s);
        int busy = s->uploads >= MAX_UPLOADS;
        if (!busy) s->uploads++;
        unlock(s);
        if (busy) return http_answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many uploads at once; try again");
        rq->holds_upload = 1;
        rq->pp = MHD_create_post_processor(c, 64 * 1024, on_part, rq);
        if (!rq->pp)
            return http_answer_error(c, MHD_HTTP_BAD_REQUEST, "multipart/form-data without a usable boundary");
        rq->route = ROUTE_SUBMIT;
    } else if (!strcmp(method, "POST") && parse_job_url(url, id, &rest) == 1 && !strcmp(rest, "pick")) {
        if (!type || strncasecmp(type, "application/json", 16))
            return http_answer_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "a pick is application/json: {\"pair\": P, \"step\": K}");
        rq->route = ROUTE_PICK;
    }
    if (rq->route != ROUTE_SUBMIT && declared > MAX_SMALL_BODY) {
        snprintf(rq->msg, sizeof rq->msg, "the body is %llu bytes, at most %d here", declared, MAX_SMALL_BODY);
        return http_answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, rq->msg);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    server *s = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->s = s;
        *con_cls = rq;
        return begin(s, c, url, method, rq);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        rq->body_bytes += n;
        if (rq->status) /* already refused: the rest is read and dropped, up to a bound */
            return rq->body_bytes > 4ULL * (unsigned long long)s->opt.max_upload_bytes ? MHD_NO : MHD_YES;
        if (rq->route == ROUTE_SUBMIT) {
            if (rq->body_bytes > (unsigned long long)s->opt.max_upload_bytes)
                fail_request(rq, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %lld bytes (oir serve --max-upload-mb)",
                             s->opt.max_upload_bytes);
            else if (MHD_post_process(rq->pp, upload, n) != MHD_YES)
                fail_request(rq, MHD_HTTP_BAD_REQUEST, "malformed multipart/form-data body");
        } else {
            int rc = http_buf_add(&rq->body, upload, n, MAX_SMALL_BODY);
            if (rc) fail_request(rq, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %d bytes", MAX_SMALL_BODY);
        }
        return MHD_YES;
    }
    if (rq->status) return http_answer_error(c, rq->status, rq->msg);
    return route(s, c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    request *rq = *con_cls;
    (void)c, (void)toe;
    if (!rq) return;
    if (rq->pp) MHD_destroy_post_processor(rq->pp);
    if (rq->holds_upload) {
        lock(s);
        s->uploads--;
        unlock(s);
    }
    http_buf_free(&rq->params);
    http_buf_free(&rq->image);
    http_buf_free(&rq->body);
    for (int i = 0; i < SERVE_MAX_PAIRS; i++) http_buf_free(&rq->masks[i]);
    free(rq);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    server *s = cls;
    if (s->opt.quiet || s->starting) return; /* a failed start is reported once, by serve_run */
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = '\0';
    fprintf(stderr, "oir serve: libmicrohttpd: %s\n", line);
}

/* ------------------------------------------------------------ start, stop */

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    (void)sig;
    ssize_t r = write(stop_pipe[1], "x", 1);
    (void)r;
}

static char *info_json(server *s) {
    oir_params d = oir_default_params();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", oir_version());
    cJSON_AddStringToObject(o, "model", oir_context_describe(s->ctx));
    cJSON_AddNumberToObject(o, "image_size", oir_context_image_size(s->ctx));
    cJSON_AddNumberToObject(o, "size_multiple", oir_context_size_multiple(s->ctx));
    cJSON *df = cJSON_AddObjectToObject(o, "defaults");
    cJSON_AddNumberToObject(df, "steps", d.steps);
    cJSON_AddNumberToObject(df, "guidance", d.guidance);
    cJSON_AddNumberToObject(df, "reassembly_step", d.reassembly_step);
    cJSON_AddNumberToObject(df, "reinversion_steps", d.reinversion_steps);
    cJSON_AddStringToObject(df, "search", "adaptive");
    cJSON *lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "max_upload_bytes", (double)s->opt.max_upload_bytes);
    cJSON_AddNumberToObject(lim, "max_pixels", (double)s->opt.max_pixels);
    cJSON_AddNumberToObject(lim, "max_pairs", SERVE_MAX_PAIRS);
    cJSON_AddNumberToObject(lim, "max_jobs", s->opt.max_jobs);
    cJSON_AddNumberToObject(lim, "max_active", s->opt.max_active);
    cJSON_AddNumberToObject(lim, "job_ttl_seconds", s->opt.job_ttl);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int serve_run(oir_context *ctx, const serve_options *o, oir_error *err) {
    server s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.opt = *o;
    int rc = OIR_OK, have_jobs = 0, have_worker = 0;
    pthread_t worker;
    char root[1024] = "";
    /* the address */
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const char *host = !strcasecmp(o->host, "localhost") ? "127.0.0.1" : o->host;
    int v6 = 0;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)o->port);
        s.host.wildcard = a4.sin_addr.s_addr == htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        v6 = 1;
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)o->port);
        s.host.wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6.sin6_addr);
    } else {
        return oir_fail(err, OIR_E_ARG, "--host %s: expected an IP address (127.0.0.1, ::1, 0.0.0.0, ...) or localhost",
                        o->host);
    }
    s.host.loopback = http_is_loopback_ip(host);
    s.host.allow = o->allow_hosts;
    s.host.n_allow = o->n_allow_hosts;
    snprintf(s.host.bound, sizeof s.host.bound, "%s", host);
    /* the jobs' folder */
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/oir-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) return oir_fail(err, OIR_E_IO, "cannot make a folder for the jobs in %s: %s", tmp && *tmp ? tmp : "/tmp", strerror(errno));
    if ((rc = jobs_init(&s.jobs, root, o->max_jobs, o->max_active, o->job_ttl, err))) goto done;
    have_jobs = 1;
    if (!(s.info = info_json(&s))) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto done;
    }
    /* stop on SIGINT / SIGTERM: the handler writes to a pipe the main thread reads */
    if (pipe2(stop_pipe, O_CLOEXEC) != 0) {
        rc = oir_fail(err, OIR_E_IO, "pipe: %s", strerror(errno));
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    s.starting = 1;
    s.daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, &s, MHD_OPTION_EXTERNAL_LOGGER,
                                mhd_log, &s, MHD_OPTION_SOCK_ADDR, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                                MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1 << 20), MHD_OPTION_END);
    s.starting = 0;
    if (!s.daemon) {
        rc = oir_fail(err, OIR_E_IO, "cannot listen on %s port %d%s%s", o->host, o->port, errno ? ": " : "",
                      errno ? strerror(errno) : "");
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
    s.host.port = di ? di->port : o->port;
    if (pthread_create(&worker, NULL, worker_main, &s) != 0) {
        rc = oir_fail(err, OIR_E_INTERNAL, "cannot start the worker thread");
        goto done;
    }
    have_worker = 1;
    const char *shown = s.host.wildcard ? (v6 ? "[::1]" : "127.0.0.1") : host;
    printf("oir serve: http://%s%s%s:%d/ (%s; Ctrl-C stops)\n", v6 && !s.host.wildcard ? "[" : "", shown,
           v6 && !s.host.wildcard ? "]" : "", s.host.port, oir_context_describe(ctx));
    fflush(stdout);
    if (!s.host.loopback)
        fprintf(stderr,
                "oir serve: warning: --host %s is not a loopback address: anyone who can reach this machine on port %d "
                "can upload photos, run edits and download results (there is no authentication)\n",
                o->host, s.host.port);
    for (;;) { /* until a signal */
        char ch;
        ssize_t r = read(stop_pipe[0], &ch, 1);
        if (r == 1 || (r < 0 && errno != EINTR) || r == 0) break;
    }
    log_line(&s, "stopping");
done:
    if (have_jobs) {
        lock(&s);
        s.stopping = 1;
        for (job *j = s.jobs.head; j; j = j->next) j->cancel = 1;
        pthread_cond_broadcast(&s.jobs.changed);
        unlock(&s);
    }
    if (s.daemon) MHD_stop_daemon(s.daemon);
    if (have_worker) pthread_join(worker, NULL);
    if (have_jobs) jobs_destroy(&s.jobs);
    if (root[0]) rmdir(root);
    if (stop_pipe[0] >= 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close(stop_pipe[0]);
        close(stop_pipe[1]);
        stop_pipe[0] = stop_pipe[1] = -1;
    }
    cJSON_free(s.info);
    return rc;
}

#endif
