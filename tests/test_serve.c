/* oir serve (issue 16): the JSON API against a server started on a free
 * loopback port with the shipped tiny model, through a small HTTP client
 * here (sockets; the server itself parses with libmicrohttpd).
 *
 * Submit, poll, results (edited.png byte-identical to `oir edit` on the same
 * inputs, and after a re-pick to `oir edit --pick`), a single pair's re-pick
 * (the candidate is the result, nothing recomputed), cancel (running and
 * queued), 100 concurrent status requests while a job runs, the event
 * stream, bad requests (oversized, truncated and malformed bodies, wrong
 * types, unknown jobs and paths, bad JSON, foreign Host and Origin, too many
 * pixels) each answered 4xx while the server keeps serving, expiry by time
 * and count, a warning for a non-loopback --host, and a clean stop on
 * SIGTERM that removes the server's files. A build without libmicrohttpd
 * checks that `oir serve` says so instead. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_runner.h"
#include "serve/upload.c" /* serve_image_dims, the header reader the pixel limit uses: tested directly */

#define PROMPT "a red circle on the left and a blue triangle on the right on a gray background"
#define DEMO "examples/shapes/demo.png"
#define MASK0 "examples/shapes/demo_mask0.png"

static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, fp);
    b[*len] = '\0';
    fclose(fp);
    return b;
}

/* serve_image_dims on real files, every prefix of them (truncated uploads:
 * -1, never a read past the end, never a wrong size) and random bytes. */
static void test_image_dims(void) {
    const struct {
        const char *path;
        int kind, w, h;
    } files[] = {{DEMO, 1, 64, 64},
                 {"examples/shapes/wide.png", 1, 192, 128},
                 {"tests/fixtures/images/gray_37x23.jpg", 2, 37, 23},
                 {"tests/fixtures/images/prog_37x23.jpg", 2, 37, 23},
                 {"tests/fixtures/images/huge.jpg", 2, 60000, 60000}};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len = 0;
        char *b = read_file(files[f].path, &len);
        if (!CHECK(b != NULL, "fixture %s", files[f].path)) continue;
        int w, h, k = serve_image_dims((const unsigned char *)b, len, &w, &h);
        CHECK(k == files[f].kind && w == files[f].w && h == files[f].h, "%s: kind %d, %dx%d (got %d, %dx%d)",
              files[f].path, files[f].kind, files[f].w, files[f].h, k, w, h);
        int bad = 0;
        for (size_t n = 0; n < len && n < 4096; n++) {
            unsigned char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past them */
            memcpy(copy, b, n);
            int kk = serve_image_dims(copy, n, &w, &h);
            bad += kk > 0 && (kk != files[f].kind || w != files[f].w || h != files[f].h);
            bad += kk < -1 || kk > 2;
            free(copy);
        }
        CHECK(bad == 0, "%s: every truncation reads as unknown or as the right size (%d bad)", files[f].path, bad);
        free(b);
    }
    unsigned long long x = 88172645463325252ULL;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = 3 + (size_t)(i % 61);
        unsigned char *buf = malloc(n);
        for (size_t j = 0; j < n; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[j] = (unsigned char)(j < 2 || x % 5 == 0 ? 0xff : x >> 24);
        }
        buf[0] = 0xff, buf[1] = 0xd8, buf[2] = 0xff;
        if (i % 2) memcpy(buf, "\x89PNG\r\n\x1a\n", n < 8 ? n : 8);
        int w, h, k = serve_image_dims(buf, n, &w, &h);
        bad += k < -1 || k > 2 || (k > 0 && (w < 1 || h < 1));
        free(buf);
    }
    CHECK(bad == 0, "20000 random PNG/JPEG-looking headers: no crash, no size below 1 (%d bad)", bad);
}

#ifdef OIR_HAVE_MHD
/* ------------------------------------------------------------ a server */

typedef struct {
    pid_t pid;
    int port;
    char err_path[600], tmp[600];
} server;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Starts `oir serve --port 0 --quiet ARGS...` with TMPDIR = a scratch
 * folder; reads the port from its first stdout line. */
static int start_server(server *s, const char *name, const char *const *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->err_path, sizeof s->err_path, "%s", cr_path(name));
    strncat(s->err_path, ".err", sizeof s->err_path - strlen(s->err_path) - 1);
    snprintf(s->tmp, sizeof s->tmp, "%s", cr_path(name));
    mkdir(s->tmp, 0700);
    const char *argv[32];
    int n = 0;
    argv[n++] = cr_bin;
    argv[n++] = "serve";
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args && args[i] && n < 30; i++) argv[n++] = args[i];
    argv[n] = NULL;
    char env_tmp[700], *envp[64];
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", s->tmp);
    int ne = 0;
    envp[ne++] = env_tmp;
    for (char **e = environ; *e && ne < 62; e++)
        if (strncmp(*e, "TMPDIR=", 7)) envp[ne++] = *e;
    envp[ne] = NULL;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, s->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&s->pid, cr_bin, &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    char line[2048];
    size_t len = 0;
    double t0 = now_s();
    while (now_s() - t0 < 120 && len < sizeof line - 1) {
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        ssize_t k = read(fds[0], line + len, sizeof line - 1 - len);
        if (k <= 0) break;
        len += (size_t)k;
        line[len] = '\0';
        const char *at = strstr(line, "http://127.0.0.1:");
        if (at && strchr(at, '\n')) {
            s->port = atoi(at + strlen("http://127.0.0.1:"));
            break;
        }
    }
    close(fds[0]);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        return -1;
    }
    return 0;
}

/* SIGTERM; the exit status (-1: had to be killed) */
static int stop_server(server *s) {
    if (!s->pid) return -1;
    kill(s->pid, SIGTERM);
    double t0 = now_s();
    int status = 0;
    while (now_s() - t0 < 30) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(20000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* ------------------------------------------------------------ an HTTP client */

typedef struct {
    int status;         /* 0: no answer */
    char *head, *body;  /* NUL-terminated */
    size_t body_len;
} resp;

static void resp_free(resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        c += k, n -= (size_t)k;
    }
    return 0;
}

/* Reads the answer until the server closes; dechunks a chunked body. */
static void read_answer(int fd, resp *r) {
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) all = realloc(all, cap *= 2);
        ssize_t k = recv(fd, all + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    all[len] = '\0';
    char *end = strstr(all, "\r\n\r\n");
    if (!end || sscanf(all, "HTTP/1.%*d %d", &r->status) != 1) {
        r->status = 0;
        free(all);
        return;
    }
    size_t hl = (size_t)(end - all);
    r->head = malloc(hl + 1);
    memcpy(r->head, all, hl);
    r->head[hl] = '\0';
    const char *b = end + 4;
    size_t bl = len - hl - 4;
    r->body = malloc(bl + 1);
    if (strcasestr(r->head, "transfer-encoding: chunked")) {
        size_t out = 0;
        while (bl) {
            char *stop;
            unsigned long n = strtoul(b, &stop, 16);
            const char *data = strstr(b, "\r\n");
            if (!data || n == 0 || (size_t)(data + 2 - b) + n > bl) break;
            data += 2;
            memcpy(r->body + out, data, n);
            out += n;
            size_t used = (size_t)(data - b) + n + 2;
            if (used > bl) break;
            b += used, bl -= used;
        }
        r->body_len = out;
    } else {
        memcpy(r->body, b, bl);
        r->body_len = bl;
    }
    r->body[r->body_len] = '\0';
    free(all);
}

/* A request. host: the Host header (NULL: 127.0.0.1:port); extra: more
 * header lines ("Origin: ...\r\n"); declared: the Content-Length sent (< 0:
 * body_len); only `send_len` bytes of the body are sent (< 0: body_len),
 * then the write side is shut. */
static resp request_full(int port, const char *method, const char *path, const char *host, const char *extra,
                         const char *ctype, const void *body, size_t body_len, long declared, long send_len) {
    resp r = {0};
    int fd = connect_to(port);
    if (fd < 0) return r;
    char head[4096], hostbuf[64];
    if (!host) {
        snprintf(hostbuf, sizeof hostbuf, "127.0.0.1:%d", port);
        host = hostbuf;
    }
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s", method, path, host,
                     extra ? extra : "");
    if (ctype) n += snprintf(head + n, sizeof head - n, "Content-Type: %s\r\n", ctype);
    if (body || declared >= 0)
        n += snprintf(head + n, sizeof head - n, "Content-Length: %ld\r\n", declared >= 0 ? declared : (long)body_len);
    n += snprintf(head + n, sizeof head - n, "\r\n");
    size_t to_send = send_len >= 0 ? (size_t)send_len : body_len;
    if (send_all(fd, head, (size_t)n) == 0 && body && to_send) send_all(fd, body, to_send);
    if (send_len >= 0) shutdown(fd, SHUT_WR);
    read_answer(fd, &r);
    close(fd);
    return r;
}

static resp request(int port, const char *method, const char *path, const char *ctype, const void *body, size_t len) {
    return request_full(port, method, path, NULL, NULL, ctype, body, len, -1, -1);
}

static resp get(int port, const char *path) { return request(port, "GET", path, NULL, NULL, 0); }


/* ------------------------------------------------------------ multipart */

typedef struct {
    const char *name, *filename, *type;
    const char *data;
    size_t len;
} part;

#define BOUNDARY "oirTestBoundary7d1f0c"

static char *multipart(const part *parts, int n, size_t *len, int drop_close) {
    size_t cap = 256;
    for (int i = 0; i < n; i++) cap += parts[i].len + 512;
    char *b = malloc(cap);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        k += (size_t)snprintf(b + k, cap - k, "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"%s\"", parts[i].name);
        if (parts[i].filename) k += (size_t)snprintf(b + k, cap - k, "; filename=\"%s\"", parts[i].filename);
        k += (size_t)snprintf(b + k, cap - k, "\r\n");
        if (parts[i].type) k += (size_t)snprintf(b + k, cap - k, "Content-Type: %s\r\n", parts[i].type);
        k += (size_t)snprintf(b + k, cap - k, "\r\n");
        memcpy(b + k, parts[i].data, parts[i].len);
        k += parts[i].len;
        k += (size_t)snprintf(b + k, cap - k, "\r\n");
    }
    if (!drop_close) k += (size_t)snprintf(b + k, cap - k, "--" BOUNDARY "--\r\n");
    *len = k;
    return b;
}

#define MP_TYPE "multipart/form-data; boundary=" BOUNDARY

/* POST /api/jobs with params and files (image first, then masks). */
static resp submit(int port, const char *params, const char *image_path, const char *mask1_path) {
    size_t il = 0, ml = 0, len;
    char *img = read_file(image_path, &il), *mask = mask1_path ? read_file(mask1_path, &ml) : NULL;
    part parts[3] = {{"params", NULL, "application/json", params, strlen(params)},
                     {"image", "photo.png", "image/png", img ? img : "", il},
                     {"mask1", "mask1.png", "image/png", mask ? mask : "", ml}};
    char *body = multipart(parts, mask1_path ? 3 : 2, &len, 0);
    resp r = request(port, "POST", "/api/jobs", MP_TYPE, body, len);
    free(body);
    free(img);
    free(mask);
    return r;
}

static const char *json_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The id of a 202 answer ("" when not 202). */
static void job_id(const resp *r, char id[64]) {
    id[0] = '\0';
    cJSON *o = r->status == 202 ? cJSON_Parse(r->body) : NULL;
    snprintf(id, 64, "%s", json_str(o, "id"));
    cJSON_Delete(o);
}

/* Polls GET /api/jobs/ID until its state is one of `states` (|-separated)
 * and, when revision > 0, its revision reaches it; the last status (NULL on
 * timeout). */
static cJSON *wait_state(int port, const char *id, const char *states, int revision, double timeout) {
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    double t0 = now_s();
    while (now_s() - t0 < timeout) {
        resp r = get(port, path);
        cJSON *o = r.status == 200 ? cJSON_Parse(r.body) : NULL;
        resp_free(&r);
        if (o) {
            char want[128];
            snprintf(want, sizeof want, "|%s|", states);
            char have[64];
            snprintf(have, sizeof have, "|%s|", json_str(o, "state"));
            if (strstr(want, have) && (revision <= 0 || json_num(o, "revision") >= revision)) return o;
            cJSON_Delete(o);
        }
        usleep(30000);
    }
    return NULL;
}

static int body_has(const resp *r, const char *needle) { return r->body && strstr(r->body, needle) != NULL; }

/* The file of a job as bytes equal to a file on disk. */
static int same_as_file(int port, const char *id, const char *name, const char *path) {
    char url[256];
    snprintf(url, sizeof url, "/api/jobs/%s/files/%s", id, name);
    resp r = get(port, url);
    size_t len = 0;
    char *want = read_file(path, &len);
    int same = r.status == 200 && want && r.body_len == len && !memcmp(r.body, want, len);
    if (!same)
        fprintf(stderr, "  %s: HTTP %d, %zu bytes vs %s: %zu bytes\n", name, r.status, r.body_len, path, want ? len : 0);
    free(want);
    resp_free(&r);
    return same;
}

static int oir_edit_steps(const char *out, const char *steps, const char *pick1, const char *pick2) {
    return cr_run("edit", "--image", DEMO, "--prompt", PROMPT, "--pair", "red circle->green square", "--mask", MASK0,
                  "--pair", "blue triangle->yellow star", "--mask", "32,0,64,64", "--steps", steps, "--quiet", "--out",
                  out, pick1 ? "--pick" : NULL, pick1, pick2 ? "--pick" : NULL, pick2, NULL);
}

/* ------------------------------------------------------------ the tests */

static void test_pages(int port) {
    resp r = get(port, "/api/info");
    cJSON *o = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    CHECK(o && json_num(o, "image_size") == 64 && json_num(o, "size_multiple") == 16,
          "GET /api/info: 200 with the model's size (HTTP %d %s)", r.status, r.body ? r.body : "");
    cJSON_Delete(o);
    resp_free(&r);
    r = get(port, "/");
    CHECK(r.status == 200 && strcasestr(r.head, "content-type: text/html") && body_has(&r, "<title>oir") &&
              strcasestr(r.head, "content-security-policy"),
          "GET /: the embedded page, with a CSP (HTTP %d)", r.status);
    resp_free(&r);
    const char *assets[][2] = {{"/app.js", "text/javascript"}, {"/style.css", "text/css"}};
    for (int i = 0; i < 2; i++) {
        r = get(port, assets[i][0]);
        CHECK(r.status == 200 && strcasestr(r.head, assets[i][1]) && r.body_len > 100, "GET %s: %s (HTTP %d)",
              assets[i][0], assets[i][1], r.status);
        resp_free(&r);
    }
}

static void expect(int port, resp r, int status, const char *needle, const char *what) {
    CHECK(r.status == status && (!needle || body_has(&r, needle)), "%s: HTTP %d (expected %d%s%s) %s", what, r.status,
          status, needle ? " naming " : "", needle ? needle : "", r.body ? r.body : "");
    if (status >= 400 && r.status == status)
        CHECK(r.body && r.body[0] == '{' && strstr(r.body, "\"error\""), "%s: a JSON error body", what);
    resp_free(&r);
    (void)port;
}

static void test_bad_requests(int port) {
    char path[256], host[64], origin[128];
    const char *unknown = "0123456789abcdef0123456789abcdef";
    expect(port, get(port, "/nope"), 404, NULL, "unknown page");
    expect(port, get(port, "/api/nope"), 404, NULL, "unknown API path");
    expect(port, get(port, "/api/jobs/../../etc/passwd"), 404, NULL, "a path in the URL");
    expect(port, get(port, "/api/jobs/xyz"), 404, "32 hex", "malformed job id");
    snprintf(path, sizeof path, "/api/jobs/%s", unknown);
    expect(port, get(port, path), 404, "no such job", "unknown job");
    expect(port, request(port, "DELETE", path, NULL, NULL, 0), 404, NULL, "DELETE unknown job");
    snprintf(path, sizeof path, "/api/jobs/%s/events", unknown);
    expect(port, get(port, path), 404, NULL, "events of an unknown job");
    snprintf(path, sizeof path, "/api/jobs/%s/files/edited.png", unknown);
    expect(port, get(port, path), 404, NULL, "a file of an unknown job");
    snprintf(path, sizeof path, "/api/jobs/%s/pick", unknown);
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":1,\"step\":1}", 20), 404, NULL,
           "pick on an unknown job");
    expect(port, request(port, "POST", path, "text/plain", "x", 1), 415, NULL, "pick: wrong content type");
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":", 8), 400, "JSON", "pick: bad JSON");
    resp r = request(port, "PUT", "/api/jobs", "application/json", "{}", 2);
    CHECK(r.status == 405 && r.head && strcasestr(r.head, "allow: GET, HEAD, POST"), "PUT /api/jobs: 405 with Allow (%d)",
          r.status);
    resp_free(&r);
    expect(port, request(port, "POST", "/api/jobs", "application/json", "{}", 2), 415, "multipart", "POST json");
    expect(port, request(port, "POST", "/api/jobs", NULL, "x", 1), 415, NULL, "POST without a content type");

    /* oversized: refused from the Content-Length, before the body */
    expect(port, request_full(port, "POST", "/api/jobs", NULL, NULL, MP_TYPE, NULL, 0, 3L << 20, 0), 413, "at most",
           "declared body over --max-upload-mb");
    size_t big_n = (size_t)3 << 20;
    char *big = calloc(1, big_n);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, big, big_n), 413, NULL, "a 3 MiB body sent whole");
    free(big);
    /* a body cut short: the connection ends; the server stays up */
    size_t len;
    size_t il = 0;
    char *img = read_file(DEMO, &il);
    const char *params = "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"green square\",\"mask\":[0,0,32,64]}],\"steps\":4}";
    part ok_parts[2] = {{"params", NULL, NULL, params, strlen(params)}, {"image", "a.png", "image/png", img, il}};
    char *body = multipart(ok_parts, 2, &len, 0);
    r = request_full(port, "POST", "/api/jobs", NULL, NULL, MP_TYPE, body, len, (long)len, (long)len / 2);
    CHECK(r.status == 0 || (r.status >= 400 && r.status < 500), "a body shorter than its Content-Length: no job (%d)",
          r.status);
    resp_free(&r);
    free(body);
    /* truncated multipart: the closing boundary missing */
    body = multipart(ok_parts, 2, &len, 1);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len / 2), 400, "multipart", "truncated multipart");
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "multipart", "multipart without its end");
    free(body);
    /* parts */
    part p1[1] = {{"image", "a.png", "image/png", img, il}};
    body = multipart(p1, 1, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "params", "no params part");
    free(body);
    part p2[1] = {{"params", NULL, NULL, params, strlen(params)}};
    body = multipart(p2, 1, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "image", "no image part");
    free(body);
    part p3[3] = {ok_parts[0], ok_parts[1], {"extra", NULL, NULL, "x", 1}};
    body = multipart(p3, 3, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "extra", "unknown part");
    free(body);
    const char gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    part p4[2] = {ok_parts[0], {"image", "a.gif", "image/gif", gif, sizeof gif - 1}};
    body = multipart(p4, 2, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 415, "PNG and JPEG", "a GIF image part");
    free(body);
    part p5[2] = {ok_parts[0], {"image", "a.png", "application/octet-stream", gif, sizeof gif - 1}};
    body = multipart(p5, 2, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 415, "PNG or JPEG", "GIF bytes, octet-stream");
    free(body);
    char *corrupt = malloc(il);
    memcpy(corrupt, img, il);
    memset(corrupt + 40, 0x5a, il - 60); /* the header survives, the data does not */
    part p6[2] = {ok_parts[0], {"image", "a.png", "image/png", corrupt, il}};
    body = multipart(p6, 2, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "image", "a corrupt PNG");
    free(body);
    free(corrupt);
    size_t wl = 0;
    char *wide = read_file("examples/shapes/wide.png", &wl); /* 192x128 = 24576 pixels, over --max-pixels 10000 */
    part p7[2] = {ok_parts[0], {"image", "wide.png", "image/png", wide, wl}};
    body = multipart(p7, 2, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "pixels", "a photo over --max-pixels");
    free(body);
    part p8[3] = {{"params", NULL, NULL, "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\",\"mask\":\"upload\"}]}", 0},
                  ok_parts[1], {"mask1", "m.png", "image/png", wide, wl}};
    p8[0].len = strlen(p8[0].data);
    body = multipart(p8, 3, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "mask1", "a mask not the photo's size");
    free(body);
    free(wide);
    size_t hl = 0;
    char *huge = read_file("tests/fixtures/images/huge.jpg", &hl); /* a 1425-byte JPEG declaring 60000x60000 */
    part p9[2] = {ok_parts[0], {"image", "huge.jpg", "image/jpeg", huge, hl}};
    body = multipart(p9, 2, &len, 0);
    expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, "3600000000 pixels",
           "a JPEG declaring 60000x60000: refused from its header");
    free(body);
    free(huge);
    /* params */
    const char *bad_params[][2] = {
        {"{\"prompt\": ", "params"},
        {"[1, 2]", "object"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[]}", "pairs"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\"}],\"bogus\":1}", "bogus"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\"}],\"steps\":0}", "steps"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\"}],\"steps\":\"4\"}", "steps"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\"}],\"search\":\"bogus\"}", "search"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\",\"mask\":[0,0,100,10]}]}", "box"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\",\"mask\":\"upload\"}]}", "mask1"},
        {"{\"prompt\":\"a red circle\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"x\"}],\"prompt\":\"again\"}", "twice"},
    };
    for (size_t i = 0; i < sizeof bad_params / sizeof bad_params[0]; i++) {
        part pp[2] = {{"params", NULL, NULL, bad_params[i][0], strlen(bad_params[i][0])}, ok_parts[1]};
        body = multipart(pp, 2, &len, 0);
        char what[300];
        snprintf(what, sizeof what, "params %s", bad_params[i][0]);
        expect(port, request(port, "POST", "/api/jobs", MP_TYPE, body, len), 400, bad_params[i][1], what);
        free(body);
    }
    free(img);

    /* Host and Origin */
    snprintf(host, sizeof host, "evil.example:%d", port);
    expect(port, request_full(port, "GET", "/api/info", host, NULL, NULL, NULL, 0, -1, -1), 403, "Host", "foreign Host");
    expect(port, request_full(port, "GET", "/api/info", "127.0.0.1:1", NULL, NULL, NULL, 0, -1, -1), 403, "Host",
           "Host with another port");
    snprintf(host, sizeof host, "localhost:%d", port);
    expect(port, request_full(port, "GET", "/api/info", host, NULL, NULL, NULL, 0, -1, -1), 200, NULL, "Host localhost");
    expect(port, request_full(port, "GET", "/api/info", "", NULL, NULL, NULL, 0, -1, -1), 400, NULL, "empty Host");
    expect(port, request_full(port, "GET", "/api/info", NULL, "Origin: http://evil.example\r\n", NULL, NULL, 0, -1, -1),
           403, "cross-origin", "foreign Origin");
    expect(port, request_full(port, "GET", "/api/info", NULL, "Origin: null\r\n", NULL, NULL, 0, -1, -1), 403,
           "cross-origin", "Origin null");
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d\r\n", port);
    expect(port, request_full(port, "GET", "/api/info", NULL, origin, NULL, NULL, 0, -1, -1), 200, NULL, "own Origin");
    snprintf(path, sizeof path, "/api/jobs/%s", unknown);
    expect(port, request_full(port, "DELETE", path, NULL, "Origin: http://evil.example\r\n", NULL, NULL, 0, -1, -1), 403,
           NULL, "a cross-site DELETE");
    /* not HTTP at all */
    int fd = connect_to(port);
    if (fd >= 0) {
        send_all(fd, "HELLO THERE\r\n\r\n", 15);
        r = (resp){0};
        read_answer(fd, &r);
        CHECK(r.status == 0 || (r.status >= 400 && r.status < 500), "garbage request: closed or 4xx (%d)", r.status);
        resp_free(&r);
        close(fd);
    }
    expect(port, get(port, "/api/info"), 200, "image_size", "the server still answers after the bad requests");
}

/* A two-pair job (mask upload + box), T = 4: result = oir edit; re-pick of
 * pair 2 = oir edit --pick; files; deleting it. */
static void test_edit_and_pick(int port) {
    const char *params = "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"green square\",\"mask\":\"upload\"},"
                         "{\"from\":\"blue triangle\",\"to\":\"yellow star\",\"mask\":[32,0,64,64]}],\"steps\":4}";
    resp r = submit(port, params, DEMO, MASK0);
    char id[64], path[256];
    job_id(&r, id);
    CHECK(r.status == 202 && strlen(id) == 32 && r.head && strcasestr(r.head, "location: /api/jobs/"),
          "POST /api/jobs: 202 with an id and a Location (%d %s)", r.status, r.body ? r.body : "");
    resp_free(&r);
    if (!id[0]) return;
    cJSON *st = wait_state(port, id, "done|failed|cancelled", 0, 120);
    if (!CHECK(st && !strcmp(json_str(st, "state"), "done"), "the job is done (%s %s)", st ? json_str(st, "state") : "timeout",
               st ? json_str(st, "error") : ""))
        return;
    const cJSON *res = cJSON_GetObjectItem(st, "result"), *pairs = cJSON_GetObjectItem(res, "pairs");
    int k1 = (int)json_num(cJSON_GetArrayItem(pairs, 0), "chosen_step"), k2 = (int)json_num(cJSON_GetArrayItem(pairs, 1), "chosen_step");
    const cJSON *stages = cJSON_GetObjectItem(st, "stages");
    CHECK(json_num(res, "steps") == 4 && json_num(res, "revision") == 1 && cJSON_GetArraySize(pairs) == 2 && k1 >= 1 &&
              k1 <= 4 && k2 >= 1 && k2 <= 4 && cJSON_GetArraySize(stages) >= 4 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(pairs, 0), "total")) == 4,
          "the status has the result: steps, revision, each pair's choice and curves, the stages");
    cJSON_Delete(st);
    const char *cli = cr_path("cli_edit");
    int rc = oir_edit_steps(cli, "4", NULL, NULL);
    CHECK(rc == 0, "oir edit on the same inputs: exit %d %s", rc, cr_err);
    char f[600];
    snprintf(f, sizeof f, "%s/edited.png", cli);
    CHECK(same_as_file(port, id, "edited.png", f), "edited.png is byte-identical to oir edit's");
    snprintf(f, sizeof f, "%s/edited_working.png", cli);
    CHECK(same_as_file(port, id, "edited_working.png", f), "edited_working.png is byte-identical to oir edit's");
    snprintf(f, sizeof f, "%s/pair1_sheet.png", cli);
    CHECK(same_as_file(port, id, "pair1_sheet.png", f), "pair1_sheet.png is byte-identical to oir edit's");
    snprintf(path, sizeof path, "/api/jobs/%s/files/report.json", id);
    r = get(port, path);
    cJSON *rep = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    CHECK(rep && !strcmp(json_str(rep, "command"), "serve") && !strcmp(json_str(rep, "job"), id) &&
              json_num(cJSON_GetArrayItem(cJSON_GetObjectItem(rep, "pairs"), 1), "chosen_step") == k2,
          "report.json names the job and the choices (%d)", r.status);
    cJSON_Delete(rep);
    resp_free(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/files/pair2_k01.png", id);
    r = get(port, path);
    CHECK(r.status == 200 && r.body_len > 8 && !memcmp(r.body, "\x89PNG", 4), "a candidate image (%d)", r.status);
    resp_free(&r);
    const char *not_offered[] = {"upload", "mask1", "pair3_sheet.png", "pair1_k05.png", "pair1_k1.png", ".", "report.json.tmp"};
    for (size_t i = 0; i < sizeof not_offered / sizeof not_offered[0]; i++) {
        snprintf(path, sizeof path, "/api/jobs/%s/files/%s", id, not_offered[i]);
        expect(port, get(port, path), 404, NULL, not_offered[i]);
    }
    /* picks: bad ones, then pair 2 at another step */
    snprintf(path, sizeof path, "/api/jobs/%s/pick", id);
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":3,\"step\":1}", 20), 400, "pairs 1..2",
           "pick pair 3 of 2");
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":1,\"step\":5}", 20), 400, "steps 1..4",
           "pick step 5 of 4");
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":1}", 10), 400, NULL, "pick without a step");
    int other = k2 == 1 ? 2 : 1;
    char pick[64];
    snprintf(pick, sizeof pick, "{\"pair\":2,\"step\":%d}", other);
    r = request(port, "POST", path, "application/json", pick, strlen(pick));
    CHECK(r.status == 202, "pick pair 2 step %d: 202 (%d %s)", other, r.status, r.body ? r.body : "");
    resp_free(&r);
    st = wait_state(port, id, "done", 2, 120);
    res = cJSON_GetObjectItem(st, "result");
    pairs = cJSON_GetObjectItem(res, "pairs");
    CHECK(st && !cJSON_GetObjectItem(st, "pick_error") && json_num(cJSON_GetArrayItem(pairs, 1), "chosen_step") == other &&
              json_num(cJSON_GetArrayItem(pairs, 1), "searched_step") == k2 &&
              json_num(cJSON_GetArrayItem(pairs, 0), "chosen_step") == k1 &&
              cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(res, "last_pick"), "recomputed")),
          "after the pick: revision 2, pair 2 at step %d (searched %d), pair 1 kept, the reassembly recomputed", other, k2);
    cJSON_Delete(st);
    char a1[16], a2[16];
    snprintf(a1, sizeof a1, "1=%d", k1);
    snprintf(a2, sizeof a2, "2=%d", other);
    const char *cli_pick = cr_path("cli_pick");
    rc = oir_edit_steps(cli_pick, "4", a1, a2);
    snprintf(f, sizeof f, "%s/edited.png", cli_pick);
    CHECK(rc == 0 && same_as_file(port, id, "edited.png", f), "the re-picked edited.png is byte-identical to oir edit --pick %s --pick %s",
          a1, a2);
    /* delete: gone, files too */
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    expect(port, request(port, "DELETE", path, NULL, NULL, 0), 200, "deleted", "DELETE a finished job");
    expect(port, get(port, path), 404, NULL, "a deleted job");
    snprintf(path, sizeof path, "/api/jobs/%s/files/edited.png", id);
    expect(port, get(port, path), 404, NULL, "a deleted job's file");
}

/* One pair, automatic mask: re-picking a candidate the search rendered
 * takes it as the result without computing anything. */
static void test_single_pair_pick(int port) {
    const char *params = "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"green square\"}],"
                         "\"steps\":4,\"search\":\"exhaustive\"}";
    resp r = submit(port, params, DEMO, NULL);
    char id[64], path[256];
    job_id(&r, id);
    resp_free(&r);
    cJSON *st = id[0] ? wait_state(port, id, "done|failed|cancelled", 0, 120) : NULL;
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "result"), "pairs"), 0);
    if (!CHECK(st && !strcmp(json_str(st, "state"), "done") && cJSON_IsTrue(cJSON_GetObjectItem(p0, "mask_inferred")),
               "single pair, auto mask: done, mask inferred (%s)", st ? json_str(st, "error") : "timeout")) {
        cJSON_Delete(st);
        return;
    }
    int k = (int)json_num(p0, "chosen_step"), other = k == 4 ? 3 : 4;
    cJSON_Delete(st);
    snprintf(path, sizeof path, "/api/jobs/%s/pick", id);
    char pick[64];
    snprintf(pick, sizeof pick, "{\"pair\":1,\"step\":%d}", k);
    r = request(port, "POST", path, "application/json", pick, strlen(pick));
    CHECK(r.status == 200 && body_has(&r, "\"state\":\"done\""), "picking the chosen step: 200, nothing to do (%d)", r.status);
    resp_free(&r);
    snprintf(pick, sizeof pick, "{\"pair\":1,\"step\":%d}", other);
    r = request(port, "POST", path, "application/json", pick, strlen(pick));
    resp_free(&r);
    st = wait_state(port, id, "done", 2, 60);
    const cJSON *lp = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "result"), "last_pick");
    CHECK(st && json_num(lp, "step") == other && cJSON_IsFalse(cJSON_GetObjectItem(lp, "recomputed")),
          "single pair pick of step %d: done, not recomputed", other);
    cJSON_Delete(st);
    snprintf(path, sizeof path, "/api/jobs/%s/files/edited_working.png", id);
    resp a = get(port, path);
    snprintf(path, sizeof path, "/api/jobs/%s/files/pair1_k%02d.png", id, other);
    resp b = get(port, path);
    CHECK(a.status == 200 && b.status == 200 && a.body_len == b.body_len && !memcmp(a.body, b.body, a.body_len),
          "the result is candidate %d itself", other);
    resp_free(&a);
    resp_free(&b);
}

typedef struct {
    int port;
    char path[128];
    int status, valid;
} status_call;

static void *status_thread(void *arg) {
    status_call *c = arg;
    resp r = get(c->port, c->path);
    c->status = r.status;
    cJSON *o = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    c->valid = o && strlen(json_str(o, "id")) == 32;
    cJSON_Delete(o);
    resp_free(&r);
    return NULL;
}

/* A long job: 100 status requests at once while it runs, its event stream,
 * a queued job cancelled, then the running one. */
static void test_cancel_and_load(int port) {
    const char *slow = "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"red circle\",\"to\":\"green square\",\"mask\":[0,0,32,64]},"
                       "{\"from\":\"blue triangle\",\"to\":\"yellow star\",\"mask\":[32,0,64,64]}],\"steps\":200,\"search\":\"exhaustive\"}";
    resp r = submit(port, slow, DEMO, NULL);
    char id[64], queued[64], path[256];
    job_id(&r, id);
    resp_free(&r);
    r = submit(port, slow, DEMO, NULL);
    job_id(&r, queued);
    resp_free(&r);
    if (!CHECK(id[0] && queued[0], "two long jobs submitted")) return;
    cJSON *st = wait_state(port, id, "running", 0, 60);
    CHECK(st != NULL, "the first job runs");
    cJSON_Delete(st);
    snprintf(path, sizeof path, "/api/jobs/%s", queued);
    r = get(port, path);
    CHECK(body_has(&r, "\"state\":\"queued\"") && body_has(&r, "\"queue_position\":0"), "the second waits in the queue");
    resp_free(&r);
    enum { N = 100 };
    static status_call calls[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (status_call){port, "", 0, 0};
        snprintf(calls[i].path, sizeof calls[i].path, "/api/jobs/%s", i % 2 ? id : queued);
        pthread_create(&th[i], NULL, status_thread, &calls[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += calls[i].status == 200 && calls[i].valid;
    }
    CHECK(ok == N, "100 concurrent status requests while a job runs: %d answered 200 with the job", ok);
    /* the event stream: the first event at once, with the job's state */
    int fd = connect_to(port);
    char req[256], buf[4096];
    snprintf(req, sizeof req, "GET /api/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", id, port);
    send_all(fd, req, strlen(req));
    size_t got = 0;
    double t0 = now_s();
    buf[0] = '\0';
    while (now_s() - t0 < 20 && !strstr(buf, "\n\n") ) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0) continue;
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
        buf[got] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        if (body && strstr(body, "data: {") && strstr(strstr(body, "data: {"), "\n\n")) break;
    }
    close(fd);
    CHECK(strcasestr(buf, "content-type: text/event-stream") && strstr(buf, "data: {\"id\":\"") && strstr(buf, "\"state\":\"running\""),
          "GET .../events: text/event-stream, a data line with the running job");
    /* cancel the queued one, then the running one */
    expect(port, request(port, "DELETE", path, NULL, NULL, 0), 200, "\"state\":\"cancelled\"", "DELETE a queued job");
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    expect(port, request(port, "DELETE", path, NULL, NULL, 0), 202, "\"cancel\":true", "DELETE a running job");
    t0 = now_s();
    st = wait_state(port, id, "cancelled|done|failed", 0, 60);
    CHECK(st && !strcmp(json_str(st, "state"), "cancelled"), "the running job stops: cancelled after %.1f s (%s)",
          now_s() - t0, st ? json_str(st, "state") : "timeout");
    cJSON_Delete(st);
    snprintf(path, sizeof path, "/api/jobs/%s/pick", id);
    expect(port, request(port, "POST", path, "application/json", "{\"pair\":1,\"step\":1}", 20), 409, "cancelled",
           "a pick on a cancelled job");
}

/* --host 0.0.0.0 (a warning), --job-ttl 3, --max-jobs 2. */
static void test_expiry(server *s2) {
    int port = s2->port;
    char buf[4096];
    cr_read(s2->err_path, buf, sizeof buf);
    CHECK(strstr(buf, "warning: --host 0.0.0.0 is not a loopback address") != NULL, "a non-loopback --host warns: %s", buf);
    char host[64];
    snprintf(host, sizeof host, "evil.example:%d", port);
    expect(port, request_full(port, "GET", "/api/info", host, NULL, NULL, NULL, 0, -1, -1), 403, NULL,
           "bound to all addresses: a foreign Host name is still refused");
    /* three jobs that fail at once (the phrase is not in the prompt) */
    const char *params = "{\"prompt\":\"" PROMPT "\",\"pairs\":[{\"from\":\"purple hexagon\",\"to\":\"x\",\"mask\":[0,0,8,8]}],\"steps\":4}";
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        resp r = submit(port, params, DEMO, NULL);
        job_id(&r, ids[i]);
        resp_free(&r);
        cJSON *st = ids[i][0] ? wait_state(port, ids[i], "failed|done|cancelled", 0, 60) : NULL;
        if (i == 0)
            CHECK(st && !strcmp(json_str(st, "state"), "failed") && strstr(json_str(st, "error"), "purple hexagon"),
                  "a phrase missing from the prompt: the job fails, saying why (%s)", st ? json_str(st, "error") : "");
        cJSON_Delete(st);
    }
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", ids[0]);
    expect(port, get(port, path), 404, NULL, "--max-jobs 2: the oldest finished job is dropped");
    snprintf(path, sizeof path, "/api/jobs/%s", ids[2]);
    expect(port, get(port, path), 200, NULL, "the newest is kept");
    usleep(3600000);
    expect(port, get(port, path), 404, NULL, "--job-ttl 3: gone 3.6 s after it finished");
}

static int dir_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n == 0;
}

#endif

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0]) != 0) {
        fprintf(stderr, "cannot set up\n");
        return 1;
    }
#ifndef OIR_HAVE_MHD
    (void)cr_path;
    test_image_dims();
    int rc = cr_run("serve", "--port", "0", NULL);
    cr_expect_error("a build without libmicrohttpd", rc, "serve", "no web server");
    cr_cleanup();
    return th_summary();
#else
    test_image_dims();
    /* usage errors, before any model is loaded */
    int rc = cr_run("serve", "--port", "70000", NULL);
    cr_expect_error("--port 70000", rc, "serve", "--port");
    rc = cr_run("serve", "--host", "not-an-address", NULL);
    cr_expect_error("--host not-an-address", rc, "serve", "--host");
    CHECK(cr_run("serve", "--help", NULL) == 0 && strstr(cr_out, "--max-upload-mb"), "oir serve --help");

    server s1, s2;
    const char *a1[] = {"--quiet", "--max-upload-mb", "1", "--max-pixels", "10000", "--max-active", "3", NULL};
    const char *a2[] = {"--host", "0.0.0.0", "--job-ttl", "3", "--max-jobs", "2", NULL};
    double t0 = now_s();
    if (!CHECK(start_server(&s1, "srv1", a1) == 0, "oir serve starts and prints its port")) {
        cr_cleanup();
        return th_summary();
    }
    int started2 = start_server(&s2, "srv2", a2) == 0;
    CHECK(started2, "a second server on another free port (--host 0.0.0.0)");
    fprintf(stderr, "servers up in %.1f s (ports %d, %d)\n", now_s() - t0, s1.port, s2.port);
    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%d", s1.port);
    rc = cr_run("serve", "--port", port_arg, NULL);
    cr_expect_error("a port in use", rc, "serve", "cannot listen");

    test_pages(s1.port);
    test_bad_requests(s1.port);
    test_edit_and_pick(s1.port);
    test_single_pair_pick(s1.port);
    test_cancel_and_load(s1.port);
    if (started2) test_expiry(&s2);
    expect(s1.port, get(s1.port, "/api/info"), 200, NULL, "still serving at the end");

    CHECK(stop_server(&s1) == 0, "SIGTERM: exit 0");
    CHECK(dir_empty(s1.tmp), "the server's files are removed when it stops (%s)", s1.tmp);
    if (started2) CHECK(stop_server(&s2) == 0 && dir_empty(s2.tmp), "the second server stops cleanly");
    fprintf(stderr, "test_serve: %.1f s\n", now_s() - t0);
    cr_cleanup();
    return th_summary();
#endif
}
