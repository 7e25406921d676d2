/* Weights: diffusers-named lookup over one or more safetensors files. */
#include "models/weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/pool.h"

/* Problems listed by name in weights_finish's message. */
#define WEIGHTS_LISTED 5
/* Problem messages kept (the first ones); later problems are only counted,
 * so a config that asks for millions of tensors cannot fill memory with
 * "missing" messages. */
#define WEIGHTS_KEPT 32

typedef struct {
    const char *name;  /* the file's name, prefix included (owned by the st_file) */
    const tensor *t;
    int file;
    unsigned char used, ignored, bad; /* bad: its dtype cannot become float32 */
    const float *data; /* resolved float32 data (into the mapping or `owned`) */
    float *owned;
    size_t nonfinite, first_nonfinite; /* NaN / inf count, first index (refused) */
    float first_value;
} w_entry;

struct weights {
    char *component, *prefix;
    weights_map_fn map;
    void *map_ctx;
    weights_name_map plain_map; /* weights_from_file's context-free map */
    int (*reshape_ok)(const char *name);
    st_file **files;
    int nfiles;
    w_entry *e; /* sorted by name */
    int n;
    char **problems;
    int n_problems, cap_problems, n_missing, n_shape, n_values;
    size_t owned_bytes;
};

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const w_entry *)a)->name, ((const w_entry *)b)->name);
}

int weights_open(weights **out, st_file *const *files, int nfiles, const weights_opts *opts,
                 oir_error *err) {
    *out = NULL;
    const char *comp = opts->component ? opts->component : "weights";
    const char *prefix = opts->prefix ? opts->prefix : "";
    if (nfiles < 1) return oir_fail(err, OIR_E_ARG, "%s: no weight files", comp);
    weights *w = calloc(1, sizeof *w);
    if (!w) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", comp);
    int rc = OIR_OK;
    size_t plen = strlen(prefix);
    w->component = strdup(comp);
    w->prefix = strdup(prefix);
    w->files = malloc((size_t)nfiles * sizeof *w->files);
    if (!w->component || !w->prefix || !w->files) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", comp);
        goto cleanup;
    }
    memcpy(w->files, files, (size_t)nfiles * sizeof *files);
    w->nfiles = nfiles;
    w->map = opts->map;
    w->reshape_ok = opts->reshape_ok;
    if (opts->map && opts->map_ctx && opts->map_ctx_size) {
        if (!(w->map_ctx = malloc(opts->map_ctx_size))) {
            rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", comp);
            goto cleanup;
        }
        memcpy(w->map_ctx, opts->map_ctx, opts->map_ctx_size);
    }
    size_t total = 0;
    for (int f = 0; f < nfiles; f++) total += (size_t)st_count(files[f]);
    w->e = calloc(total + 1, sizeof *w->e);
    if (!w->e) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", comp);
        goto cleanup;
    }
    for (int f = 0; f < nfiles; f++)
        for (int i = 0; i < st_count(files[f]); i++) {
            const char *name = st_name_at(files[f], i);
            if (strncmp(name, prefix, plen) != 0) continue;
            w_entry *e = &w->e[w->n++];
            e->name = name;
            e->t = st_tensor_at(files[f], i);
            e->file = f;
            e->bad = !(e->t->type == DT_F32 || e->t->type == DT_F16 || e->t->type == DT_BF16 ||
                       e->t->type == DT_F64);
        }
    qsort(w->e, (size_t)w->n, sizeof *w->e, entry_cmp);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(w->e[i].name, w->e[i - 1].name)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: tensor %s is in both %s and %s", comp, w->e[i].name,
                          st_path(files[w->e[i - 1].file]), st_path(files[w->e[i].file]));
            goto cleanup;
        }
cleanup:
    if (rc) {
        weights_free(w);
        return rc;
    }
    *out = w;
    return OIR_OK;
}

int weights_from_file(weights **out, st_file *f, const char *component, const char *prefix,
                      weights_name_map map, oir_error *err) {
    weights_opts o = {.component = component, .prefix = prefix};
    int rc = weights_open(out, &f, 1, &o, err);
    if (rc == OIR_OK) (*out)->plain_map = map;
    return rc;
}

void weights_free(weights *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->e[i].owned);
    for (int i = 0; i < w->n_problems; i++) free(w->problems[i]);
    free(w->problems);
    free(w->e);
    free(w->files);
    free(w->map_ctx);
    free(w->component);
    free(w->prefix);
    free(w);
}

/* ---- lookup ------------------------------------------------------------- */

static w_entry *find_full(const weights *w, const char *full) {
    int lo = 0, hi = w->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(full, w->e[mid].name);
        if (!c) return &w->e[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* diffusers renamed the VAE attention parameters (0.16: group_norm, query,
 * key, value, proj_attn; later: to_q, to_k, to_v, to_out.0): both spellings
 * are accepted for a name "....attentions.N.<old>.<param>". */
static const char *const attn_alias[][2] = {
    {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"},
};

static const char *alias_name(const char *name, char *buf, size_t cap) {
    const char *at = strstr(name, "attentions.");
    if (!at) return NULL;
    const char *p = at + strlen("attentions.");
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9') p++;
    if (*p++ != '.') return NULL;
    for (size_t k = 0; k < sizeof attn_alias / sizeof attn_alias[0]; k++)
        for (int dir = 0; dir < 2; dir++) {
            const char *from = attn_alias[k][dir], *to = attn_alias[k][!dir];
            size_t fl = strlen(from);
            if (strncmp(p, from, fl) || p[fl] != '.' || strchr(p + fl + 1, '.')) continue;
            int n = snprintf(buf, cap, "%.*s%s%s", (int)(p - name), name, to, p + fl);
            return n > 0 && (size_t)n < cap ? buf : NULL;
        }
    return NULL;
}

/* Resolves a diffusers name; *full receives the file name looked for (for
 * messages), or "" when the map has no counterpart. */
static w_entry *lookup(const weights *w, const char *name, char *full, size_t cap) {
    char mapped[512];
    const char *m = name;
    full[0] = 0;
    if (w->plain_map) m = w->plain_map(name, mapped, sizeof mapped);
    else if (w->map) m = w->map(w->map_ctx, name, mapped, sizeof mapped);
    if (!m) return NULL;
    int len = snprintf(full, cap, "%s%s", w->prefix, m);
    if (len < 0 || (size_t)len >= cap) return NULL;
    w_entry *e = find_full(w, full);
    if (!e && !w->map && !w->plain_map) {
        char alt[512], alt_full[600];
        if (alias_name(name, alt, sizeof alt)) {
            snprintf(alt_full, sizeof alt_full, "%s%s", w->prefix, alt);
            e = find_full(w, alt_full);
        }
    }
    return e;
}

static void add_problem(weights *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_problem(weights *w, int code, const char *fmt, ...) {
    if (code == OIR_E_MISSING) w->n_missing++;
    else if (code == OIR_E_FORMAT) w->n_values++;
    else w->n_shape++;
    if (w->n_problems >= WEIGHTS_KEPT) return; /* counted, not kept */
    if (w->n_problems == w->cap_problems) {
        int cap = w->cap_problems ? 2 * w->cap_problems : 16;
        char **p = realloc(w->problems, (size_t)cap * sizeof *p);
        if (!p) return; /* counted, just not listed */
        w->problems = p;
        w->cap_problems = cap;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *s = strdup(msg);
    if (s) w->problems[w->n_problems++] = s;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    tensor t = {.ndim = ndim};
    for (int i = 0; i < ndim && i < TENSOR_MAX_DIMS; i++) t.shape[i] = shape[i];
    tensor_shape_str(&t, buf, cap);
}

/* Equal after dropping trailing 1-sized dims: (C, C) ~ (C, C, 1, 1). */
static int same_but_trailing_ones(const tensor *t, int ndim, const int64_t *shape) {
    int a = t->ndim, b = ndim;
    while (a > 0 && t->shape[a - 1] == 1) a--;
    while (b > 0 && shape[b - 1] == 1) b--;
    if (a != b) return 0;
    for (int i = 0; i < a; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

typedef struct {
    float *dst;
    const unsigned char *src;
    dtype type;
    size_t esz;
} convert_job;

static void convert_chunk(void *ctx, long i0, long i1, int worker) {
    const convert_job *j = ctx;
    convert_to_f32(j->dst + i0, j->src + (size_t)i0 * j->esz, j->type, (size_t)(i1 - i0), NULL);
}

/* convert_to_f32 in chunks on the pool (an SD 1.5 fp16 UNet is 860 M
 * values); each chunk is independent, so results do not change. */
static void convert_parallel(float *dst, const void *src, dtype type, size_t n) {
    const size_t chunk = (size_t)1 << 16;
    convert_job j = {dst, src, type, dtype_size(type)};
    if (n <= 4 * chunk) convert_chunk(&j, 0, (long)n, 0); /* a wake-up costs more than a small tensor */
    else pool_for((long)n, (long)chunk, convert_chunk, &j);
}

/* Non-finite values in n floats; *first: the first one's index. */
static size_t count_nonfinite(const float *x, size_t n, size_t *first) {
    size_t bad = op_count_nonfinite(x, n);
    *first = 0;
    if (bad)
        while (*first < n && isfinite(x[*first])) (*first)++;
    return bad;
}

/* Sets e->data to float32 values: the mapping (aligned F32) or an owned copy
 * (unaligned F32) or conversion (F16/BF16/F64). NaN / inf weights (of any
 * dtype: F16 and BF16 infs and NaNs convert to float32 ones) would run to a
 * black image, so every tensor is scanned once here: e->nonfinite > 0 and
 * e->data NULL then. e->data stays NULL when out of memory. */
static void resolve(weights *w, w_entry *e) {
    size_t n = (size_t)tensor_numel(e->t);
    const float *data;
    if (e->t->type == DT_F32 && ((uintptr_t)e->t->data % sizeof(float)) == 0) {
        data = e->t->data;
    } else {
        e->owned = malloc((n ? n : 1) * sizeof(float));
        if (!e->owned) return;
        convert_parallel(e->owned, e->t->data, e->t->type, n);
        w->owned_bytes += n * sizeof(float);
        data = e->owned;
    }
    size_t first, bad = count_nonfinite(data, n, &first);
    if (bad) {
        e->nonfinite = bad;
        e->first_nonfinite = first;
        e->first_value = data[first];
        if (e->owned) w->owned_bytes -= n * sizeof(float);
        free(e->owned);
        e->owned = NULL;
        return;
    }
    e->data = data;
}

const float *weights_get(weights *w, const char *name, int ndim, const int64_t *shape) {
    char full[600], want[160], got[160];
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) {
        add_problem(w, OIR_E_SHAPE, "tensor %s requested with %d dims", name, ndim);
        return NULL;
    }
    w_entry *e = lookup(w, name, full, sizeof full);
    if (!e) {
        if (!full[0])
            add_problem(w, OIR_E_MISSING, "tensor %s is missing (no counterpart in this file layout)",
                        name);
        else if (strcmp(full, name))
            add_problem(w, OIR_E_MISSING, "tensor %s is missing (looked for %s)", name, full);
        else
            add_problem(w, OIR_E_MISSING, "tensor %s is missing", name);
        return NULL;
    }
    e->used = 1;
    const char *shown = strcmp(full, name) ? full : NULL;
    if (!tensor_shape_eq(e->t, ndim, shape) &&
        !(w->reshape_ok && w->reshape_ok(name) && same_but_trailing_ones(e->t, ndim, shape))) {
        shape_str(want, sizeof want, ndim, shape);
        tensor_shape_str(e->t, got, sizeof got);
        add_problem(w, OIR_E_SHAPE, "tensor %s%s%s%s has shape %s, expected %s", name,
                    shown ? " (" : "", shown ? shown : "", shown ? ")" : "", got, want);
        return NULL;
    }
    if (e->bad) {
        add_problem(w, OIR_E_SHAPE, "tensor %s%s%s%s has dtype %s, expected a float type", name,
                    shown ? " (" : "", shown ? shown : "", shown ? ")" : "",
                    dtype_name(e->t->type));
        return NULL;
    }
    if (e->data) return e->data;
    if (!e->nonfinite) resolve(w, e);
    if (e->nonfinite) {
        add_problem(w, OIR_E_FORMAT,
                    "tensor %s%s%s%s holds %zu non-finite values (first at index %zu: %g)", name,
                    shown ? " (" : "", shown ? shown : "", shown ? ")" : "", e->nonfinite,
                    e->first_nonfinite, e->first_value);
        return NULL;
    }
    if (!e->data)
        add_problem(w, OIR_E_SHAPE, "tensor %s: out of memory converting %lld values", name,
                    (long long)tensor_numel(e->t));
    return e->data;
}

const float *weights_getv(weights *w, const char *name, int ndim, ...) {
    int64_t shape[TENSOR_MAX_DIMS] = {0};
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) return weights_get(w, name, ndim, shape);
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) shape[i] = va_arg(ap, int);
    va_end(ap);
    return weights_get(w, name, ndim, shape);
}

int weights_has(const weights *w, const char *name) {
    char full[600];
    return lookup(w, name, full, sizeof full) != NULL;
}

const tensor *weights_find(const weights *w, const char *name) {
    char full[600];
    w_entry *e = lookup(w, name, full, sizeof full);
    return e ? e->t : NULL;
}

void weights_ignore(weights *w, const char *name) {
    char full[600];
    w_entry *e = lookup(w, name, full, sizeof full);
    if (e) e->ignored = 1;
}

/* ---- report ------------------------------------------------------------- */

int weights_finish(weights *w, oir_error *err) {
    int total = w->n_missing + w->n_shape + w->n_values;
    if (!total) return OIR_OK;
    int code = w->n_missing ? OIR_E_MISSING : w->n_shape ? OIR_E_SHAPE : OIR_E_FORMAT;
    if (total == 1 && w->n_problems == 1)
        return oir_fail(err, code, "%s: %s", w->component, w->problems[0]);
    char list[900];
    size_t used = 0;
    list[0] = 0;
    int shown = w->n_problems < WEIGHTS_LISTED ? w->n_problems : WEIGHTS_LISTED;
    for (int i = 0; i < shown && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "; " : "",
                                 w->problems[i]);
    char counts[128];
    size_t cu = 0;
    counts[0] = 0;
    if (w->n_missing) cu += (size_t)snprintf(counts + cu, sizeof counts - cu, "%d missing", w->n_missing);
    if (w->n_shape)
        cu += (size_t)snprintf(counts + cu, sizeof counts - cu, "%s%d mis-shaped", cu ? ", " : "",
                               w->n_shape);
    if (w->n_values)
        snprintf(counts + cu, sizeof counts - cu, "%s%d with non-finite values", cu ? ", " : "",
                 w->n_values);
    if (total > shown)
        return oir_fail(err, code, "%s: %d tensor problems (%s): %s; and %d more", w->component,
                        total, counts, list, total - shown);
    return oir_fail(err, code, "%s: %d tensor problems (%s): %s", w->component, total, counts,
                    list);
}

int weights_unused_count(const weights *w) {
    int n = 0;
    for (int i = 0; i < w->n; i++) n += !w->e[i].used && !w->e[i].ignored;
    return n;
}

const char *weights_unused_at(const weights *w, int i) {
    for (int k = 0; k < w->n; k++)
        if (!w->e[k].used && !w->e[k].ignored && i-- == 0) return w->e[k].name;
    return NULL;
}

int weights_problem_count(const weights *w) { return w->n_problems; }
const char *weights_problem_at(const weights *w, int i) {
    return i >= 0 && i < w->n_problems ? w->problems[i] : NULL;
}
int weights_missing_count(const weights *w) { return w->n_missing; }
int weights_count(const weights *w) { return w->n; }
int64_t weights_numel(const weights *w) {
    int64_t n = 0;
    for (int i = 0; i < w->n; i++) n += tensor_numel(w->e[i].t);
    return n;
}
const char *weights_component(const weights *w) { return w->component; }
size_t weights_owned_bytes(const weights *w) { return w->owned_bytes; }
