/* What one job of `oir serve` runs, on the server's worker thread: the
 * request's parameters (parsed from the page's JSON), the edit itself (as
 * `oir edit` runs it: the same photo transform, masks, library call,
 * composite and PNG writer, so edited.png is byte-identical to `oir edit`'s
 * on the same inputs), re-picks of a candidate, and the files a job offers
 * for download. Nothing here knows HTTP (server.c) or the job table
 * (jobs.c).
 *
 * A job's folder holds the uploads ("upload": the photo as sent,
 * "mask<i>": pair i's mask image) and the outputs, named as `oir edit`
 * names them: edited.png (the photo with the edit composited inside the
 * masks), edited_working.png, input.png, pair<i>_sheet.png,
 * pair<i>_mask.png, report.json, and every candidate that has an image as
 * pair<i>_k<NN>.png (as --save-candidates). */
#ifndef OIR_SERVE_JOB_RUN_H
#define OIR_SERVE_JOB_RUN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "io/image_fit.h"
#include "oir.h"

#define SERVE_MAX_PAIRS 16
#define SERVE_MAX_TEXT 1024   /* bytes of a prompt or phrase, NUL included */
#define SERVE_MAX_PICKS 32    /* re-picks remembered in report.json */

enum { SERVE_MASK_AUTO = 0, SERVE_MASK_BOX = 1, SERVE_MASK_UPLOAD = 2 };

/* A job's parameters (POST /api/jobs, part "params"; README "oir serve"). */
typedef struct {
    char prompt[SERVE_MAX_TEXT], target[SERVE_MAX_TEXT]; /* target "": every pair substituted */
    int n_pairs;
    char from[SERVE_MAX_PAIRS][SERVE_MAX_TEXT], to[SERVE_MAX_PAIRS][SERVE_MAX_TEXT];
    char guided[SERVE_MAX_PAIRS][SERVE_MAX_TEXT]; /* "": the default guided prompt */
    int mask_kind[SERVE_MAX_PAIRS];               /* SERVE_MASK_* */
    int box[SERVE_MAX_PAIRS][4];                  /* SERVE_MASK_BOX: x0, y0, x1, y1 in photo pixels */
    int steps, reassembly, reinversion;           /* -1: the default */
    float guidance;                               /* < 0: the default */
    char search[64];                              /* "": the default */
    int low_pick;                                 /* -1: the default, else OIR_LOW_PICK_* */
    int guard;                                    /* -1: the default, 0 off, 1 on */
    float guard_margin;
    unsigned long long seed;                      /* noise of inferred masks */
    int has_seed;
    int pick[SERVE_MAX_PAIRS];                    /* 0: search the pair; else its step */
    char mask_method[16];                         /* "": the default */
    float mask_threshold;                         /* < 0: the default */
    int mask_dilate;                              /* < 0: the default */
    int photo_w, photo_h;                         /* the uploaded photo (checked at submission) */
} serve_request;

/* Parses the JSON text of part "params". has_upload[i]: part "mask<i+1>"
 * was sent. OIR_E_ARG with a message naming the key on anything wrong
 * (unknown keys included); OIR_E_FORMAT for text that is not JSON. */
int serve_request_parse(serve_request *rq, const char *json, size_t len, const int has_upload[SERVE_MAX_PAIRS],
                        oir_error *err);

/* The oir_params of a request (defaults as `oir edit`'s); p->mask from the
 * request's mask settings. */
int serve_request_params(const serve_request *rq, oir_params *p, oir_error *err);

/* Checks a request against the loaded model before it is queued: the
 * working size of its photo, the parameters (oir_plan_run: steps, search,
 * picks) and each box inside the photo. */
int serve_request_check(const serve_request *rq, const oir_context *ctx, oir_error *err);

/* One re-pick, for report.json. */
typedef struct {
    int pair, step, recomputed; /* recomputed 0: the candidate was already the result */
    long unet_rows;
    double seconds;
} serve_pick_log;

/* A job's result: the edit's oir_result (candidates, scores, masks: kept as
 * the base of re-picks), the current choice and image. Changed only by the
 * worker thread (serve_pick_apply, under the server's lock). */
typedef struct {
    oir_result *r;
    int photo_w, photo_h, ww, wh;
    image_fit fit;
    unsigned char *rgb;            /* (wh, ww, 3) the working input */
    unsigned char *edited;         /* (wh, ww, 3) the current result */
    int chosen[SERVE_MAX_PAIRS];   /* current steps */
    int searched[SERVE_MAX_PAIRS]; /* the search's choice (0: the pair was picked in the request) */
    unsigned char *eval;           /* (n, T) r->evaluated; a step first rendered by a re-pick: OIR_EVALUATED_FORCED */
    unsigned char *exact;          /* (n, T) 1: r->candidates holds the candidate rendered on the T-step schedule */
    int reassembly_step, reinversion_steps;
    char warnings[24][300];        /* the first n_kept (the masks': inferred ones, pixels outside the
                                      region) stay; the rest are the last run's (a re-pick replaces them) */
    int n_warnings, n_kept;
    int revision;                  /* 1 after the edit, + 1 per re-pick */
    serve_pick_log picks[SERVE_MAX_PICKS];
    int n_picks;
} serve_result;

void serve_result_free(serve_result *res);

/* Runs the edit of a request whose uploads are in dir, writes every output
 * file there and returns the result (*out, release with serve_result_free).
 * progress/user: the library's progress callback (non-zero cancels). */
int serve_job_edit(oir_context *ctx, const serve_request *rq, const char *dir, const char *job_id,
                   oir_progress_fn progress, void *user, serve_result **out, oir_error *err);

/* A re-pick: candidate `step` (1..T) for pair `pair` (0-based), the other
 * pairs keeping their current steps. One pair whose candidate exists on the
 * T-step schedule: that candidate is the result (nothing is computed).
 * Otherwise oir_edit with every pair's step forced (no search: the
 * inversion, the forced candidates and the reassembly), with the masks the
 * edit used. Computed into *pk (the result is not touched); new candidate
 * images are written to dir. */
typedef struct {
    int pair, step;
    int chosen[SERVE_MAX_PAIRS];
    unsigned char *edited;                  /* (wh, ww, 3), malloc'd */
    int n_new;                              /* candidates rendered by the run */
    int new_pair[SERVE_MAX_PAIRS], new_step[SERVE_MAX_PAIRS];
    unsigned char *new_img[SERVE_MAX_PAIRS]; /* (wh, ww, 3) each, malloc'd */
    int recomputed, reassembly_step, reinversion_steps;
    char warnings[8][256];
    int n_warnings;
    long unet_rows;
    double seconds;
} serve_pick;

int serve_job_pick(oir_context *ctx, const serve_request *rq, const char *dir, const serve_result *res, int pair,
                   int step, oir_progress_fn progress, void *user, serve_pick *pk, oir_error *err);
/* Takes the pick into res (call under the lock that guards res); pk is
 * emptied. */
void serve_pick_apply(serve_result *res, serve_pick *pk);
void serve_pick_free(serve_pick *pk);
/* After serve_pick_apply: rewrites edited.png, edited_working.png, every
 * sheet and report.json. */
int serve_job_write_pick(oir_context *ctx, const serve_request *rq, const char *dir, const char *job_id,
                         const serve_result *res, oir_error *err);

/* 1 when name is a file the job offers (see above) for this result. */
int serve_result_has_file(const serve_result *res, const char *name);
/* The result for GET /api/jobs/ID: sizes, prompts, steps, each pair's
 * choice, curves (normalised scores, null where not scored), which
 * candidates have images, the files. */
cJSON *serve_result_json(const serve_result *res, const serve_request *rq);

#endif
