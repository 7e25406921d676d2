#include "io/outputs.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/outfile.h"

#define WALK_MAX_DEPTH 4           /* run folder / case folder / file, with room to spare */
#define WALK_MAX_ENTRIES 100000    /* an output folder larger than this is not oir's */
#define MARKER_MAX_BYTES (8 << 20) /* the marker lists names only */
#define HEADER_MAX_BYTES (16 << 20)

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Absolute path with symlinks resolved: realpath when path exists, else the
 * resolved parent + "/" + the last name; NULL when neither resolves. */
static char *resolve(const char *path) {
    char *r = realpath(path, NULL);
    if (r || !*path) return r;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *slash = memrchr(path, '/', n);
    char *parent = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    char *rp = parent ? realpath(parent, NULL) : NULL;
    free(parent);
    if (!rp) return NULL;
    const char *base = slash ? slash + 1 : path;
    size_t bl = n - (size_t)(base - path);
    size_t m = strlen(rp) + bl + 2;
    char *out = malloc(m);
    if (out) snprintf(out, m, "%s%s%.*s", rp, strcmp(rp, "/") ? "/" : "", (int)bl, base);
    free(rp);
    return out;
}

static int inside(const char *child, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return child[0] == '/' && child[1];
    return !strncmp(child, dir, n) && child[n] == '/';
}

/* ------------------------------------------------------------ folder walk */

typedef int (*walk_fn)(void *user, const char *rel, const struct stat *sb, const char *full);

/* Calls fn for every entry under dir (rel names, folders before their
 * contents); stops at the first non-zero return. -1: too deep or too many
 * entries, -2: cannot read a folder. */
static int walk(const char *dir, const char *prefix, int depth, long *count, walk_fn fn, void *user) {
    DIR *dp = opendir(dir);
    if (!dp) return -2;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(dp));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (++*count > WALK_MAX_ENTRIES) {
            rc = -1;
            break;
        }
        char *full = join(dir, e->d_name);
        size_t rl = strlen(prefix) + strlen(e->d_name) + 2;
        char *rel = malloc(rl);
        struct stat sb;
        if (!full || !rel) rc = -2;
        else {
            snprintf(rel, rl, "%s%s", prefix, e->d_name);
            if (lstat(full, &sb) != 0) rc = -2;
            else rc = fn(user, rel, &sb, full);
            if (!rc && S_ISDIR(sb.st_mode)) {
                if (depth + 1 >= WALK_MAX_DEPTH) rc = -1;
                else {
                    strcat(rel, "/");
                    rc = walk(full, rel, depth + 1, count, fn, user);
                }
            }
        }
        free(full);
        free(rel);
    }
    closedir(dp);
    return rc;
}

static void remove_tree(const char *path, int depth) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode) && depth < 16) {
        DIR *dp = opendir(path);
        for (struct dirent *e; dp && (e = readdir(dp));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *full = join(path, e->d_name);
            if (full) remove_tree(full, depth + 1);
            free(full);
        }
        if (dp) closedir(dp);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void output_remove_tree(const char *path) { remove_tree(path, 0); }

/* ------------------------------------------------------- inputs vs output */

typedef struct {
    const output_input *in;
    int n;
    const struct stat *in_st;
    const int *have;
    const char *hit_rel;
    int hit;
    char rel[PATH_MAX];
} link_search;

static int find_input_link(void *user, const char *rel, const struct stat *sb, const char *full) {
    (void)full;
    link_search *s = user;
    if (!S_ISREG(sb->st_mode)) return 0;
    for (int i = 0; i < s->n; i++)
        if (s->have[i] && s->in_st[i].st_dev == sb->st_dev && s->in_st[i].st_ino == sb->st_ino) {
            s->hit = i;
            snprintf(s->rel, sizeof s->rel, "%s", rel);
            return 1;
        }
    return 0;
}

int output_check_inputs(const char *out, const char *out_what, int is_dir, const output_input *in, int n,
                        oir_error *err) {
    int rc = OIR_OK;
    struct stat so, *si = calloc((size_t)(n > 0 ? n : 1), sizeof *si);
    int *have = calloc((size_t)(n > 0 ? n : 1), sizeof *have);
    char *ro = resolve(out), *ri = NULL;
    if (!si || !have) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto cleanup;
    }
    int have_o = stat(out, &so) == 0;
    for (int i = 0; i < n && !rc; i++) {
        if (!in[i].path) continue;
        have[i] = stat(in[i].path, &si[i]) == 0;
        free(ri);
        ri = resolve(in[i].path);
        int same = have_o && have[i] ? so.st_dev == si[i].st_dev && so.st_ino == si[i].st_ino
                                     : ro && ri && !strcmp(ro, ri);
        if (same)
            rc = oir_fail(err, OIR_E_ARG, "%s %s is the input given to %s; refusing to overwrite it, choose another path",
                          out_what, out, in[i].what);
        else if (is_dir && ro && ri && inside(ri, ro))
            rc = oir_fail(err, OIR_E_ARG,
                          "%s %s holds the input given to %s (%s), and a run replaces its output folder whole; "
                          "choose another %s",
                          out_what, out, in[i].what, in[i].path, out_what);
    }
    if (!rc && is_dir && have_o && S_ISDIR(so.st_mode)) { /* hard links of an input in the folder */
        link_search s = {.in = in, .n = n, .in_st = si, .have = have, .hit = -1};
        long count = 0;
        walk(out, "", 0, &count, find_input_link, &s);
        if (s.hit >= 0)
            rc = oir_fail(err, OIR_E_ARG,
                          "%s %s holds %s, which is the input given to %s (%s), and a run replaces its output "
                          "folder whole; choose another %s",
                          out_what, out, s.rel, in[s.hit].what, in[s.hit].path, out_what);
    }
cleanup:
    free(ro);
    free(ri);
    free(si);
    free(have);
    return rc;
}

/* ------------------------------------------------------------ single files */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads up to cap bytes of a regular file without following a symlink or
 * blocking on a FIFO; *n the count. NULL on failure. */
static unsigned char *read_head(const char *path, size_t cap, size_t *n) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat sb;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        size_t want = (uint64_t)sb.st_size < cap ? (size_t)sb.st_size : cap;
        buf = malloc(want + 1);
        size_t got = 0;
        while (buf && got < want) {
            ssize_t r = read(fd, buf + got, want - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (buf) buf[got] = 0;
        *n = got;
    }
    close(fd);
    return buf;
}

/* A PNG with tEXt "Software" = "oir..." before its image data. */
static int png_by_oir(const unsigned char *b, size_t n) {
    static const unsigned char sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
    if (n < 8 || memcmp(b, sig, 8)) return 0;
    for (size_t at = 8; at + 12 <= n;) {
        uint32_t len = be32(b + at);
        const unsigned char *type = b + at + 4, *data = b + at + 8;
        if (len > n - at - 12) return 0;
        if (!memcmp(type, "IDAT", 4) || !memcmp(type, "IEND", 4)) return 0;
        if (!memcmp(type, "tEXt", 4) && len >= 12 && !memcmp(data, "Software\0oir", 12)) return 1;
        at += 12 + (size_t)len;
    }
    return 0;
}

/* A safetensors file whose __metadata__ says "writer": "oir". */
static int safetensors_by_oir(const char *path, const unsigned char *b, size_t n) {
    if (n < 10) return 0;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    if (hl < 2 || hl > HEADER_MAX_BYTES || b[8] != '{') return 0;
    size_t got = 0;
    unsigned char *h = read_head(path, (size_t)hl + 8, &got);
    int ok = 0;
    if (h && got == hl + 8) {
        cJSON *root = cJSON_ParseWithLength((const char *)h + 8, (size_t)hl);
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
        cJSON *w = cJSON_GetObjectItemCaseSensitive(meta, "writer");
        ok = cJSON_IsString(w) && !strcmp(w->valuestring, "oir");
        cJSON_Delete(root);
    }
    free(h);
    return ok;
}

int output_check_file(const char *path, const char *what, oir_error *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT) return OIR_OK;
        return oir_fail(err, OIR_E_IO, "%s %s: cannot check it (%s)", what, path, strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) return oir_fail(err, OIR_E_ARG, "%s %s is a folder; give a file name", what, path);
    if (S_ISLNK(sb.st_mode))
        return oir_fail(err, OIR_E_ARG,
                        "%s %s is a symlink; oir replaces only files it wrote: remove it or choose another path", what,
                        path);
    if (!S_ISREG(sb.st_mode))
        return oir_fail(err, OIR_E_ARG, "%s %s is not a regular file; choose another path", what, path);
    size_t n = 0;
    unsigned char *head = read_head(path, 1 << 16, &n);
    int ours = head && (png_by_oir(head, n) || safetensors_by_oir(path, head, n));
    free(head);
    if (!ours)
        return oir_fail(err, OIR_E_ARG,
                        "%s %s already exists and was not written by oir; oir replaces only its own outputs: "
                        "remove it or choose another path",
                        what, path);
    return OIR_OK;
}

/* ------------------------------------------------------------ run folders */

/* A name this module writes or removes inside a run folder: relative, no
 * empty, "." or ".." parts, no hidden names, no newline. */
static int safe_rel(const char *rel, int dir) {
    size_t n = strlen(rel);
    if (n == 0 || n >= 1024 || strchr(rel, '\n') || strchr(rel, '\r')) return 0;
    if (dir && rel[n - 1] == '/') n--;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        int start = i == 0 || rel[i - 1] == '/';
        if (start && (rel[i] == '.' || rel[i] == '/')) return 0;
    }
    return rel[n - 1] != '/';
}

typedef struct {
    char **v;
    int n;
} name_list;

static void names_free(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The marker of folder dir: 1 and its names (sorted) when it is a valid
 * marker, 0 when absent or not valid. */
static int read_marker(const char *dir, name_list *out) {
    out->v = NULL;
    out->n = 0;
    char *mp = join(dir, OUTPUT_DIR_MARKER);
    size_t n = 0;
    char *text = mp ? (char *)read_head(mp, MARKER_MAX_BYTES + 1, &n) : NULL;
    free(mp);
    if (!text || n > MARKER_MAX_BYTES || memchr(text, 0, n)) {
        free(text);
        return 0;
    }
    int ok = 1, cap = 0;
    for (char *line = text, *next; ok && line < text + n; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : text + n;
        if (nl) *nl = 0;
        if (!*line || *line == '#') continue;
        if (!safe_rel(line, 1)) {
            ok = 0;
            break;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(out->v, sizeof *v * (size_t)cap);
            if (!v) {
                ok = 0;
                break;
            }
            out->v = v;
        }
        if (!(out->v[out->n] = strdup(line))) ok = 0;
        else out->n++;
    }
    free(text);
    if (!ok) {
        names_free(out);
        return 0;
    }
    qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 1;
}

static int names_add(name_list *l, int *cap, const char *name, const char *suffix) {
    if (l->n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        char **v = realloc(l->v, sizeof *v * (size_t)c);
        if (!v) return -1;
        l->v = v;
        *cap = c;
    }
    size_t n = strlen(name) + strlen(suffix) + 1;
    if (!(l->v[l->n] = malloc(n))) return -1;
    snprintf(l->v[l->n++], n, "%s%s", name, suffix);
    return 0;
}

/* File names oir wrote before it marked its folders with OUTPUT_DIR_MARKER:
 * edited.png, input.png, report.json, pair<N>_sheet.png, pair<N>_mask.png,
 * pair<N>_k<N>.png. */
static int legacy_file_name(const char *name) {
    if (!strcmp(name, "edited.png") || !strcmp(name, "input.png") || !strcmp(name, "report.json")) return 1;
    if (strncmp(name, "pair", 4)) return 0;
    const char *q = name + 4;
    if (*q < '0' || *q > '9') return 0;
    while (*q >= '0' && *q <= '9') q++;
    if (!strcmp(q, "_sheet.png") || !strcmp(q, "_mask.png")) return 1;
    if (strncmp(q, "_k", 2) || q[2] < '0' || q[2] > '9') return 0;
    for (q += 2; *q >= '0' && *q <= '9'; q++) {
    }
    return !strcmp(q, ".png");
}

typedef struct {
    name_list *names;
    int cap, has_report;
} legacy_scan;

static int legacy_visit(void *user, const char *rel, const struct stat *sb, const char *full) {
    legacy_scan *l = user;
    const char *slash = strchr(rel, '/');
    if (S_ISDIR(sb->st_mode)) /* a case folder, one level deep */
        return slash || !safe_rel(rel, 0) || names_add(l->names, &l->cap, rel, "/") ? 1 : 0;
    if (!S_ISREG(sb->st_mode) || !legacy_file_name(slash ? slash + 1 : rel)) return 1;
    if (!strcmp(slash ? slash + 1 : rel, "report.json")) {
        size_t n = 0;
        char *text = (char *)read_head(full, 1 << 20, &n);
        cJSON *root = text ? cJSON_ParseWithLength(text, n) : NULL;
        l->has_report |= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "oir_version"));
        cJSON_Delete(root);
        free(text);
    }
    return names_add(l->names, &l->cap, rel, "") ? 1 : 0;
}

/* The names oir wrote in folder dir: 1 with its marker's names (sorted), 2
 * for a folder written before markers existed (only oir's file names, one
 * level of case folders, and a report.json with "oir_version"), 0 when it
 * is neither. */
static int oir_names(const char *dir, name_list *out) {
    if (read_marker(dir, out)) return 1;
    legacy_scan l = {.names = out};
    long count = 0;
    if (walk(dir, "", 0, &count, legacy_visit, &l) == 0 && l.has_report) {
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
        return 2;
    }
    names_free(out);
    return 0;
}

typedef struct {
    const name_list *names;
    char foreign[PATH_MAX];
} foreign_search;

static int find_foreign(void *user, const char *rel, const struct stat *sb, const char *full) {
    (void)full;
    foreign_search *s = user;
    if (!strcmp(rel, OUTPUT_DIR_MARKER) && S_ISREG(sb->st_mode)) return 0;
    char key[PATH_MAX];
    snprintf(key, sizeof key, "%s%s", rel, S_ISDIR(sb->st_mode) ? "/" : "");
    const char *k = key, *slash = strchr(rel, '/');
    int listed = (S_ISDIR(sb->st_mode) || S_ISREG(sb->st_mode)) && s->names &&
                 bsearch(&k, s->names->v, (size_t)s->names->n, sizeof *s->names->v, cmp_str);
    if (!s->names) /* unmarked: name a file that does not even look like oir's */
        listed = S_ISDIR(sb->st_mode) ? !slash : S_ISREG(sb->st_mode) && legacy_file_name(slash ? slash + 1 : rel);
    if (listed) return 0;
    snprintf(s->foreign, sizeof s->foreign, "%s", key);
    return 1;
}

/* OIR_OK when the existing folder dir may be replaced: empty, or an oir
 * output folder with nothing unlisted in it. */
static int check_replaceable(const char *dir, const char *shown, const char *what, oir_error *err) {
    name_list names;
    int marked = oir_names(dir, &names);
    foreign_search s = {.names = marked ? &names : NULL};
    long count = 0;
    int w = walk(dir, "", 0, &count, find_foreign, &s);
    names_free(&names);
    if (w == -2) return oir_fail(err, OIR_E_IO, "%s %s: cannot read the folder (%s)", what, shown, strerror(errno));
    if (w == -1)
        return oir_fail(err, OIR_E_ARG,
                        "%s %s is a large or deep folder that oir did not write; refusing to replace it: choose a "
                        "new or empty folder",
                        what, shown);
    if (w == 0 && (marked || count == 0)) return OIR_OK; /* oir's, or empty */
    if (w == 0) /* only oir's names, but no report.json of oir's */
        return oir_fail(err, OIR_E_ARG,
                        "%s %s is a folder that oir did not write (no %s, no report.json with oir_version); "
                        "refusing to replace it: choose a new or empty folder",
                        what, shown, OUTPUT_DIR_MARKER);
    if (!marked)
        return oir_fail(err, OIR_E_ARG,
                        "%s %s is a folder that oir did not write (no %s in it) and holds %s; refusing to replace "
                        "it: choose a new or empty folder",
                        what, shown, OUTPUT_DIR_MARKER, s.foreign);
    return oir_fail(err, OIR_E_ARG,
                    "%s %s holds %s, which oir did not write; refusing to replace the folder: move that file out "
                    "or choose another folder",
                    what, shown, s.foreign);
}

static void dir_release(output_dir *d) {
    for (int i = 0; i < d->n_names; i++) free(d->names[i]);
    free(d->names);
    free(d->shown);
    free(d->final);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

void output_dir_abort(output_dir *d) {
    if (d->tmp) output_remove_tree(d->tmp);
    dir_release(d);
}

int output_dir_begin(output_dir *d, const char *path, const char *what, oir_error *err) {
    memset(d, 0, sizeof *d);
    size_t n = path ? strlen(path) : 0;
    while (n > 1 && path[n - 1] == '/') n--;
    if (n == 0) return oir_fail(err, OIR_E_ARG, "%s: expected a folder name, got an empty one", what);
    int rc = OIR_OK;
    if (!(d->shown = strndup(path, n))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    struct stat sb;
    if (stat(d->shown, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            rc = oir_fail(err, OIR_E_ARG, "%s %s is a file; the outputs go into a folder: give a folder name", what,
                          d->shown);
            goto fail;
        }
        if ((rc = check_replaceable(d->shown, d->shown, what, err))) goto fail;
    } else if (errno != ENOENT) {
        rc = oir_fail(err, OIR_E_IO, "%s %s: cannot check it (%s)", what, d->shown, strerror(errno));
        goto fail;
    } else {
        struct stat lb;
        if (lstat(d->shown, &lb) == 0) { /* a dangling symlink */
            rc = oir_fail(err, OIR_E_ARG, "%s %s is a dangling symlink; give a folder name", what, d->shown);
            goto fail;
        }
    }
    d->final = resolve(d->shown);
    if (!d->final) {
        rc = oir_fail(err, OIR_E_IO, "%s %s: its parent folder does not exist", what, d->shown);
        goto fail;
    }
    const char *base = strrchr(d->final, '/');
    if (!base || !base[1]) {
        rc = oir_fail(err, OIR_E_ARG, "%s %s: cannot replace the root folder", what, d->shown);
        goto fail;
    }
    int made = 0, e = 0;
    for (int attempt = 0; attempt < 100 && !made; attempt++) {
        free(d->tmp);
        if (!(d->tmp = outfile_temp_name(d->final, ".tmp"))) {
            rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            goto fail;
        }
        made = mkdir(d->tmp, 0755) == 0;
        e = errno;
        if (!made && e != EEXIST) break;
    }
    if (!made) {
        free(d->tmp);
        d->tmp = NULL;
        rc = oir_fail(err, OIR_E_IO, "%s %s: cannot create a folder beside it (%s)", what, d->shown, strerror(e));
        goto fail;
    }
    return OIR_OK;
fail:
    dir_release(d);
    return rc;
}

static int record(output_dir *d, const char *rel, oir_error *err) {
    for (int i = 0; i < d->n_names; i++)
        if (!strcmp(d->names[i], rel)) return OIR_OK;
    if (d->n_names == d->cap_names) {
        int cap = d->cap_names ? 2 * d->cap_names : 32;
        char **v = realloc(d->names, sizeof *v * (size_t)cap);
        if (!v) return oir_fail(err, OIR_E_NOMEM, "out of memory");
        d->names = v;
        d->cap_names = cap;
    }
    if (!(d->names[d->n_names] = strdup(rel))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    d->n_names++;
    return OIR_OK;
}

char *output_dir_path(output_dir *d, const char *rel, oir_error *err) {
    if (!d->tmp) {
        oir_fail(err, OIR_E_INTERNAL, "output folder: not begun");
        return NULL;
    }
    if (!safe_rel(rel, 0)) {
        oir_fail(err, OIR_E_INTERNAL, "%s: '%s' is not a safe name inside the output folder", d->shown, rel);
        return NULL;
    }
    if (record(d, rel, err)) return NULL;
    char *p = join(d->tmp, rel);
    if (!p) oir_fail(err, OIR_E_NOMEM, "out of memory");
    return p;
}

int output_dir_mkdir(output_dir *d, const char *rel, oir_error *err) {
    char *p = output_dir_path(d, rel, err);
    if (!p) return err->code;
    int rc = OIR_OK;
    if (mkdir(p, 0755) != 0)
        rc = oir_fail(err, OIR_E_IO, "%s: cannot create the folder %s (%s)", d->shown, rel, strerror(errno));
    free(p);
    if (rc) return rc;
    /* recorded as a folder */
    char *last = d->names[d->n_names - 1];
    size_t l = strlen(last);
    char *dn = realloc(last, l + 2);
    if (!dn) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    memcpy(dn + l, "/", 2);
    d->names[d->n_names - 1] = dn;
    return OIR_OK;
}

/* Removes an old output folder: the files and folders oir wrote there
 * (deepest first), the marker, then the folder; 0 when it is gone. */
static int remove_old(const char *old) {
    name_list names;
    if (oir_names(old, &names)) {
        for (int i = names.n - 1; i >= 0; i--) { /* sorted: "a/" before "a/x" */
            char *p = join(old, names.v[i]);
            if (!p) continue;
            size_t l = strlen(p);
            if (p[l - 1] == '/') {
                p[l - 1] = 0;
                rmdir(p);
            } else {
                unlink(p);
            }
            free(p);
        }
        names_free(&names);
        char *mp = join(old, OUTPUT_DIR_MARKER);
        if (mp) unlink(mp);
        free(mp);
    }
    return rmdir(old) == 0 ? 0 : -1;
}

int output_dir_commit(output_dir *d, char *note, size_t note_cap, oir_error *err) {
    if (note && note_cap) note[0] = 0;
    if (!d->tmp) return oir_fail(err, OIR_E_INTERNAL, "output folder: not begun");
    int rc = OIR_OK;
    char *old = NULL;
    /* the marker: every name this run wrote */
    size_t len = 0;
    for (int i = 0; i < d->n_names; i++) len += strlen(d->names[i]) + 1;
    static const char head[] =
        "# oir output folder: the next oir run into this folder replaces it whole, as long as it holds\n"
        "# only the names listed here (see README.md, \"Output files and folders\").\n";
    char *text = malloc(sizeof head + len + 1), *mp = join(d->tmp, OUTPUT_DIR_MARKER);
    if (!text || !mp) {
        free(text);
        free(mp);
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    size_t at = (size_t)snprintf(text, sizeof head, "%s", head);
    for (int i = 0; i < d->n_names; i++) at += (size_t)sprintf(text + at, "%s\n", d->names[i]);
    rc = outfile_write(mp, text, at, err);
    free(text);
    free(mp);
    if (rc) goto fail;
    struct stat sb;
    if (lstat(d->final, &sb) != 0) {
        if (rename(d->tmp, d->final) != 0) {
            rc = oir_fail(err, OIR_E_IO, "%s: cannot move the new outputs into place (%s)", d->shown, strerror(errno));
            goto fail;
        }
        dir_release(d);
        return OIR_OK;
    }
    if (!S_ISDIR(sb.st_mode)) {
        rc = oir_fail(err, OIR_E_ARG, "%s is no longer a folder; the new outputs were not moved into place", d->shown);
        goto fail;
    }
    if ((rc = check_replaceable(d->final, d->shown, "--out", err))) goto fail;
    if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->final, RENAME_EXCHANGE) == 0) {
        old = d->tmp; /* the temp name now holds the old output */
        d->tmp = NULL;
    } else { /* no atomic exchange here: move the old folder aside, then the new one in */
        int made = 0;
        for (int attempt = 0; attempt < 100 && !made; attempt++) {
            free(old);
            if (!(old = outfile_temp_name(d->final, ".old"))) break;
            made = mkdir(old, 0700) == 0;
            if (!made && errno != EEXIST) break;
        }
        if (!made || rename(d->final, old) != 0) {
            if (made) rmdir(old);
            rc = oir_fail(err, OIR_E_IO, "%s: cannot move the previous outputs aside (%s)", d->shown, strerror(errno));
            goto fail;
        }
        if (rename(d->tmp, d->final) != 0) {
            int e = errno;
            rename(old, d->final);
            rc = oir_fail(err, OIR_E_IO, "%s: cannot move the new outputs into place (%s)", d->shown, strerror(e));
            goto fail;
        }
        free(d->tmp);
        d->tmp = NULL;
    }
    if (remove_old(old) != 0 && note && note_cap)
        snprintf(note, note_cap, "the previous outputs of %s held files added during the run; they were left in %s",
                 d->shown, old);
    free(old);
    dir_release(d);
    return OIR_OK;
fail:
    free(old);
    output_dir_abort(d);
    return rc;
}
