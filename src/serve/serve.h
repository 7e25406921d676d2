/* `oir serve`: a local web editor over the library (README "The web editor").
 * server.c answers HTTP with libmicrohttpd (routes, uploads, event
 * streams) and runs one job at a time on a worker thread; jobs.c keeps the
 * job table; job_run.c runs an edit. Built only when pkg-config finds
 * libmicrohttpd (OIR_HAVE_MHD); otherwise serve_run says this build has no
 * server. */
#ifndef OIR_SERVE_SERVE_H
#define OIR_SERVE_SERVE_H

#include <stddef.h>

#include "oir.h"

#define SERVE_MAX_ALLOW_HOSTS 16

typedef struct {
    const char *host;                 /* an IP address or "localhost" (default 127.0.0.1) */
    int port;                         /* 0: a free port, printed */
    const char *allow_hosts[SERVE_MAX_ALLOW_HOSTS]; /* more names the Host header may carry */
    int n_allow_hosts;
    long long max_upload_bytes;       /* a submission's whole body */
    long long max_pixels;             /* the photo's width x height */
    int max_jobs;                     /* jobs kept (finished ones expire first) */
    int max_active;                   /* queued + running */
    int job_ttl;                      /* seconds a finished job is kept */
    int quiet;                        /* no log lines on stderr */
} serve_options;

/* 1 when this build has the server. */
int serve_available(void);

/* Serves until SIGINT or SIGTERM; ctx is loaded by the caller and used by
 * the worker thread only (and read-only checks of submissions). Prints the
 * address on stdout once listening. */
int serve_run(oir_context *ctx, const serve_options *o, oir_error *err);

/* The size of a PNG or JPEG from its header (PNG: IHDR; JPEG: the first
 * SOFn marker), without decoding: 1 PNG, 2 JPEG, 0 another format, -1 a
 * PNG/JPEG whose header cannot be read. */
int serve_image_dims(const unsigned char *b, size_t n, int *width, int *height);

#endif
