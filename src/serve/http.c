/* HTTP helpers of `oir serve` (http.h). */
#ifdef OIR_HAVE_MHD

#include "serve/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ answers */

enum MHD_Result http_answer(struct MHD_Connection *c, unsigned status, const char *type, const void *data,
                              size_t len, int persistent) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data,
                                                             persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (!strncmp(type, "text/html", 9))
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                                "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                                "form-action 'none'");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_answer_json(struct MHD_Connection *c, unsigned status, cJSON *o) {
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) return MHD_NO;
    enum MHD_Result r = http_answer(c, status, "application/json", text, strlen(text), 0);
    cJSON_free(text);
    return r;
}

enum MHD_Result http_answer_error(struct MHD_Connection *c, unsigned status, const char *msg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddNumberToObject(o, "status", status);
    return http_answer_json(c, status, o);
}

enum MHD_Result http_answer_method(struct MHD_Connection *c, const char *allow) {
    char msg[256];
    snprintf(msg, sizeof msg, "method not allowed here (allowed: %s)", allow);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddNumberToObject(o, "status", 405);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    cJSON_free(text);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, "Allow", allow);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return ret;
}

/* ------------------------------------------------------------ Host and Origin */

/* "name:port", "[v6]:port" or "name" (port 80) -> name (brackets kept off), port */
static int split_host(const char *h, char *name, size_t cap, int *port) {
    const char *end;
    *port = 80;
    if (h[0] == '[') {
        end = strchr(h, ']');
        if (!end) return -1;
        if ((size_t)(end - h - 1) >= cap) return -1;
        memcpy(name, h + 1, (size_t)(end - h - 1));
        name[end - h - 1] = '\0';
        end++;
    } else {
        end = strchr(h, ':');
        if (!end) end = h + strlen(h);
        if ((size_t)(end - h) >= cap || end == h) return -1;
        memcpy(name, h, (size_t)(end - h));
        name[end - h] = '\0';
    }
    if (*end == ':') {
        char *stop;
        long p = strtol(end + 1, &stop, 10);
        if (stop == end + 1 || *stop || p < 1 || p > 65535) return -1;
        *port = (int)p;
    } else if (*end) {
        return -1;
    }
    return 0;
}

int http_is_loopback_ip(const char *name) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, name, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int is_ip(const char *name) {
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

unsigned http_check_host(const http_host_rule *s, struct MHD_Connection *c, char *msg, size_t cap) {
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    char name[256];
    int port;
    if (!host) {
        snprintf(msg, cap, "the request has no Host header");
        return MHD_HTTP_BAD_REQUEST;
    }
    if (split_host(host, name, sizeof name, &port) != 0) {
        snprintf(msg, cap, "Host header '%.200s' is not host[:port]", host);
        return MHD_HTTP_BAD_REQUEST;
    }
    int ok = port == s->port;
    if (ok) {
        int named = 0;
        for (int i = 0; i < s->n_allow && !named; i++) named = !strcasecmp(name, s->allow[i]);
        if (named) ok = 1;
        else if (s->wildcard) ok = is_ip(name) || !strcasecmp(name, "localhost");
        else if (s->loopback) ok = http_is_loopback_ip(name) || !strcasecmp(name, "localhost");
        else {
            unsigned char a[sizeof(struct in6_addr)], b[sizeof(struct in6_addr)];
            int fam = strchr(s->bound, ':') ? AF_INET6 : AF_INET;
            ok = inet_pton(fam, name, a) == 1 && inet_pton(fam, s->bound, b) == 1 &&
                 !memcmp(a, b, fam == AF_INET ? 4 : 16);
        }
    }
    if (!ok) {
        snprintf(msg, cap,
                 "Host '%.200s' is not this server (it answers at %s port %d%s); oir serve --allow-host NAME adds a name",
                 host, s->wildcard ? "any IP address" : s->loopback ? "its loopback address or localhost" : s->bound,
                 s->port, s->n_allow ? " and its --allow-host names" : "");
        return MHD_HTTP_FORBIDDEN;
    }
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin) {
        char own[300];
        snprintf(own, sizeof own, "http://%s", host);
        if (strcasecmp(origin, own) != 0) {
            snprintf(msg, cap, "cross-origin request from '%.200s' refused: only the page served here (%.200s) may call the API",
                     origin, own);
            return MHD_HTTP_FORBIDDEN;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ request bodies */

int http_buf_add(http_buf *b, const char *data, size_t n, size_t max) {
    if (b->len + n > max) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        if (cap > max + 1) cap = max + 1;
        char *d = realloc(b->data, cap);
        if (!d) return -2;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void http_buf_free(http_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

#endif
