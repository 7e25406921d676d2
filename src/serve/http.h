/* HTTP helpers of `oir serve` over libmicrohttpd (only built with it):
 * answers (JSON errors, security headers), the Host / Origin check, and
 * bounded request-body buffers. */
#ifndef OIR_SERVE_HTTP_H
#define OIR_SERVE_HTTP_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>

/* Who may call: the bound address and port (see http_check_host). */
typedef struct {
    int port;
    int wildcard, loopback;        /* the bound address: 0.0.0.0 / ::, or a loopback one */
    char bound[64];                /* the bound address as text */
    const char *const *allow;      /* --allow-host names */
    int n_allow;
} http_host_rule;

/* 0 when the request's Host names this server and its Origin, when sent,
 * is this server's own page; else 400 (no or malformed Host) or 403, with
 * msg. Host: port = the bound port, and the name an --allow-host name, or
 * bound to all addresses: any IP address or localhost; bound to loopback: a
 * loopback address or localhost; else the bound address. Origin must be
 * exactly "http://" + the Host header. */
unsigned http_check_host(const http_host_rule *rule, struct MHD_Connection *c, char *msg, size_t cap);
int http_is_loopback_ip(const char *name);

/* A response from memory (persistent: data outlives it, else copied), with
 * Content-Type, nosniff, no-referrer, DENY framing, no-store, and for HTML
 * a strict Content-Security-Policy (only this server's own scripts, styles,
 * images and API). */
enum MHD_Result http_answer(struct MHD_Connection *c, unsigned status, const char *type, const void *data, size_t len,
                            int persistent);
/* o as JSON (o is deleted). */
enum MHD_Result http_answer_json(struct MHD_Connection *c, unsigned status, cJSON *o);
/* {"error": msg, "status": status} */
enum MHD_Result http_answer_error(struct MHD_Connection *c, unsigned status, const char *msg);
/* 405 with Allow. */
enum MHD_Result http_answer_method(struct MHD_Connection *c, const char *allow);

typedef struct {
    char *data; /* NUL after the last byte */
    size_t len, cap;
    int seen;
} http_buf;

/* Appends n bytes; -1 when the result would pass max bytes, -2 out of memory. */
int http_buf_add(http_buf *b, const char *data, size_t n, size_t max);
void http_buf_free(http_buf *b);

#endif
