#include "io/manifest.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/file.h"
#include "io/image.h"
#include "io/json.h"

static const char *const reserved_ids[] = {"logs", "summary.csv", "summary.json", "summary.md"};

int manifest_id_valid(const char *id, char *why, size_t why_cap) {
    size_t n = strlen(id);
    const char *bad = NULL;
    if (n == 0) bad = "is empty";
    else if (n > MANIFEST_ID_MAX) bad = "is longer than 64 bytes";
    else if (id[0] == '.') bad = "starts with '.'";
    for (size_t i = 0; !bad && i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
            bad = "holds a byte other than letters, digits, '.', '_' and '-'";
    for (size_t i = 0; !bad && i < sizeof reserved_ids / sizeof reserved_ids[0]; i++)
        if (!strcasecmp(id, reserved_ids[i])) bad = "is reserved (the batch writes a file or folder of that name)";
    if (bad && why && why_cap) snprintf(why, why_cap, "%s", bad);
    return !bad;
}

int manifest_find(const manifest *m, const char *id) {
    for (int i = 0; i < m->n_cases; i++)
        if (!strcmp(m->cases[i].id, id)) return i;
    return -1;
}

static void case_free(manifest_case *c) {
    free(c->where);
    free(c->error);
    edit_config_free(&c->cfg);
    memset(c, 0, sizeof *c);
}

void manifest_free(manifest *m) {
    for (int i = 0; i < m->n_cases; i++) case_free(&m->cases[i]);
    free(m->cases);
    free(m->path);
    memset(m, 0, sizeof *m);
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A new case at the end of m (zeroed, index set); NULL when out of memory or
 * over MANIFEST_MAX_CASES (err set). */
static manifest_case *add_case(manifest *m, int *cap, oir_error *err) {
    if (m->n_cases >= MANIFEST_MAX_CASES) {
        oir_fail(err, OIR_E_FORMAT, "%s: more than %d cases; split the manifest", m->path, MANIFEST_MAX_CASES);
        return NULL;
    }
    if (m->n_cases == *cap) {
        int c = *cap ? 2 * *cap : 64;
        manifest_case *v = realloc(m->cases, sizeof *v * (size_t)c);
        if (!v) {
            oir_fail(err, OIR_E_NOMEM, "out of memory");
            return NULL;
        }
        m->cases = v;
        *cap = c;
    }
    manifest_case *c = &m->cases[m->n_cases];
    memset(c, 0, sizeof *c);
    c->index = m->n_cases++;
    return c;
}

/* ------------------------------------------------------------ one JSON line */

typedef struct {
    const char *where; /* "FILE:LINE" */
    const char *base;  /* folder for relative paths */
    char msg[1024];    /* the line's error */
} line_reader;

static int bad(line_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(line_reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static char *resolve(const line_reader *r, const char *p) {
    if (p[0] == '/' || !r->base[0]) return strdup(p);
    return dupf("%s/%s", r->base, p);
}

static const char *const case_fields[] = {"id", "image", "prompt", "pairs", "target", "steps", "guidance",
                                          "reassembly_step", "reinversion_steps", "search", "seed", "low_pick",
                                          "guard", "pick"};
enum { F_ID, F_IMAGE, F_PROMPT, F_PAIRS, F_TARGET, F_STEPS, F_GUIDANCE, F_R, F_J, F_SEARCH, F_SEED, F_LOW_PICK,
       F_GUARD, F_PICK, F_COUNT };
static const char *const pair_fields[] = {"from", "to", "mask", "guided"};

/* What a misspelt or foreign field probably meant. */
static const char *hint_for(const char *name, int pair) {
    static const char *const alias[][2] = {
        {"num_ddim_steps", "steps"},        {"guidance_scale", "guidance"},   {"image_path", "image"},
        {"origin_prompt", "prompt"},        {"source_prompt", "prompt"},      {"source", "prompt"},
        {"target_prompt", "target"},        {"R", "reassembly_step"},         {"J", "reinversion_steps"},
        {"reassembly", "reassembly_step"},  {"reinversion", "reinversion_steps"},
        {"reassembly-step", "reassembly_step"}, {"reinversion-steps", "reinversion_steps"},
        {"low-pick", "low_pick"},           {"name", "id"},                   {"case", "id"},
        {"mask", "pairs[].mask"},           {"masks", "pairs[].mask"},        {"pair", "pairs"},
    };
    static const char *const pair_alias[][2] = {
        {"origin", "from"}, {"source", "from"}, {"target", "to"}, {"mask_path", "mask"},
        {"guided_prompt", "guided"}, {"box", "mask"},
    };
    if (pair) {
        for (size_t i = 0; i < sizeof pair_alias / sizeof pair_alias[0]; i++)
            if (!strcmp(name, pair_alias[i][0])) return pair_alias[i][1];
        return NULL;
    }
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(name, alias[i][0])) return alias[i][1];
    return NULL;
}

/* Checks obj's fields against names (n of them): unknown or repeated ones
 * are an error; seen[i] points at field i or NULL. what: "" or "pairs[2]". */
static int check_fields(line_reader *r, const cJSON *obj, const char *const *names, int n, const cJSON **seen,
                        const char *what) {
    for (int i = 0; i < n; i++) seen[i] = NULL;
    for (const cJSON *f = obj->child; f; f = f->next) {
        int k = 0;
        while (k < n && strcmp(f->string, names[k])) k++;
        if (k == n) {
            char list[400] = "";
            size_t at = 0;
            for (int i = 0; i < n && at < sizeof list; i++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", names[i]);
            const char *h = hint_for(f->string, what[0] != 0);
            char hint[160] = "";
            if (h) snprintf(hint, sizeof hint, " (did you mean '%s'?)", h);
            return bad(r, "%s%sunknown field '%.100s'%s; the fields are %s", what, what[0] ? ": " : "", f->string,
                       hint, list);
        }
        if (seen[k]) return bad(r, "%s%sfield '%s' is given twice", what, what[0] ? ": " : "", names[k]);
        seen[k] = f;
    }
    return 0;
}

static int get_string(line_reader *r, const cJSON *v, const char *name, char **out) {
    if (!cJSON_IsString(v) || !v->valuestring) return bad(r, "%s: expected a string", name);
    if (!v->valuestring[0]) return bad(r, "%s: empty", name);
    *out = strdup(v->valuestring);
    return *out ? 0 : bad(r, "out of memory");
}

static int get_int(line_reader *r, const cJSON *v, const char *name, int lo, int hi, int *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return bad(r, "%s: expected a whole number %d..%d", name, lo, hi);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return bad(r, "%s: %.0f is outside %d..%d", name, v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

/* into a fixed buffer (the edit_case's search, low_pick, guard) */
static int get_text(line_reader *r, const cJSON *v, const char *name, char *out, size_t cap) {
    if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0]) return bad(r, "%s: expected a non-empty string", name);
    if (strlen(v->valuestring) >= cap) return bad(r, "%s: longer than %zu bytes", name, cap - 1);
    snprintf(out, cap, "%s", v->valuestring);
    return 0;
}

static int get_seed(line_reader *r, const cJSON *v, unsigned long long *out) {
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < 0 || d > 9007199254740992.0)
            return bad(r, "seed: expected a whole number 0..2^53 (larger seeds as a string of digits)");
        *out = (unsigned long long)d;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        unsigned long long x = 0;
        if (!*s) return bad(r, "seed: empty");
        for (; *s; s++) {
            if (*s < '0' || *s > '9') return bad(r, "seed: '%.40s' is not a whole number", v->valuestring);
            unsigned d = (unsigned)(*s - '0');
            if (x > (UINT64_MAX - d) / 10) return bad(r, "seed: '%.40s' is larger than 2^64 - 1", v->valuestring);
            x = x * 10 + d;
        }
        *out = x;
        return 0;
    }
    return bad(r, "seed: expected a whole number");
}

/* pick: {"PAIR": STEP, ...}, ["PAIR=STEP", ...] or "PAIR=STEP" -> "PAIR=STEP" texts */
static int get_pick(line_reader *r, const cJSON *v, edit_case *c) {
    int n = cJSON_IsObject(v) || cJSON_IsArray(v) ? cJSON_GetArraySize(v) : cJSON_IsString(v) ? 1 : -1;
    if (n < 0) return bad(r, "pick: expected {\"PAIR\": STEP, ...}, [\"PAIR=STEP\", ...] or \"PAIR=STEP\"");
    if (n > EDIT_CONFIG_MAX_PICKS) return bad(r, "pick: %d entries (at most %d)", n, EDIT_CONFIG_MAX_PICKS);
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return bad(r, "pick: empty");
        if (!(c->pick[c->n_pick++] = strdup(v->valuestring))) return bad(r, "out of memory");
        return 0;
    }
    for (const cJSON *e = v->child; e; e = e->next) {
        char *t = NULL;
        if (cJSON_IsObject(v)) {
            int step = 0;
            if (get_int(r, e, "pick: a step", 1, 1000, &step)) return -1;
            t = dupf("%s=%d", e->string, step);
        } else {
            if (!cJSON_IsString(e) || !e->valuestring[0]) return bad(r, "pick: entries are \"PAIR=STEP\" strings");
            t = strdup(e->valuestring);
        }
        if (!t) return bad(r, "out of memory");
        c->pick[c->n_pick++] = t;
    }
    return 0;
}

static int get_mask(line_reader *r, const cJSON *v, const char *name, char **out) {
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0; /* inferred */
    if (cJSON_IsArray(v)) {
        int b[4], n = cJSON_GetArraySize(v), k = 0;
        if (n != 4) return bad(r, "%s: a box is [x0, y0, x1, y1] (4 numbers), got %d", name, n);
        for (const cJSON *e = v->child; e; e = e->next, k++)
            if (get_int(r, e, name, 0, 1 << 20, &b[k])) return -1;
        if (b[2] <= b[0] || b[3] <= b[1])
            return bad(r, "%s: box [%d, %d, %d, %d] is empty: x1 > x0 and y1 > y0 are needed", name, b[0], b[1], b[2],
                       b[3]);
        *out = dupf("%d,%d,%d,%d", b[0], b[1], b[2], b[3]);
        return *out ? 0 : bad(r, "out of memory");
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return bad(r, "%s: expected a mask file, a box \"x0,y0,x1,y1\" or [x0, y0, x1, y1], or \"auto\"", name);
    const char *s = v->valuestring;
    if (!*s) return bad(r, "%s: empty (give a file, a box, or \"auto\")", name);
    if (!strcmp(s, "auto")) return 0;
    int box[4];
    oir_error e;
    if (mask_parse_box(s, box, &e) == OIR_OK) *out = strdup(s); /* a box: no path */
    else *out = resolve(r, s);
    return *out ? 0 : bad(r, "out of memory");
}

static int read_pairs(line_reader *r, const cJSON *v, edit_case *c) {
    if (!cJSON_IsArray(v)) return bad(r, "pairs: expected a list of {\"from\": ..., \"to\": ..., \"mask\": ...}");
    int n = cJSON_GetArraySize(v);
    if (n < 1) return bad(r, "pairs: empty; give at least one {\"from\": ..., \"to\": ...}");
    if (n > 16) return bad(r, "pairs: %d pairs (at most 16)", n);
    if (!(c->pairs = calloc((size_t)n, sizeof *c->pairs))) return bad(r, "out of memory");
    c->n_pairs = n;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char what[32], name[48];
        snprintf(what, sizeof what, "pairs[%d]", i + 1);
        if (!cJSON_IsObject(e)) return bad(r, "%s: expected an object {\"from\": ..., \"to\": ...}", what);
        const cJSON *f[4];
        if (check_fields(r, e, pair_fields, 4, f, what)) return -1;
        if (!f[0] || !f[1]) return bad(r, "%s: '%s' is missing", what, !f[0] ? "from" : "to");
        edit_config_pair *p = &c->pairs[i];
        snprintf(name, sizeof name, "%s.from", what);
        if (get_string(r, f[0], name, &p->from)) return -1;
        snprintf(name, sizeof name, "%s.to", what);
        if (get_string(r, f[1], name, &p->to)) return -1;
        snprintf(name, sizeof name, "%s.mask", what);
        if (get_mask(r, f[2], name, &p->mask_path)) return -1;
        snprintf(name, sizeof name, "%s.guided", what);
        if (f[3] && get_string(r, f[3], name, &p->guided_prompt)) return -1;
    }
    return 0;
}

/* Fills c from the object; 0, or -1 with r->msg. */
static int read_case(line_reader *r, const cJSON *obj, edit_case *c, const cJSON **id_field) {
    const cJSON *f[F_COUNT];
    c->reassembly_step = c->reinversion_steps = c->num_ddim_steps = -1;
    c->guidance_scale = -1;
    *id_field = NULL;
    if (check_fields(r, obj, case_fields, F_COUNT, f, "")) return -1;
    *id_field = f[F_ID];
    for (int k = F_IMAGE; k <= F_PAIRS; k++)
        if (!f[k]) return bad(r, "'%s' is missing (every case needs image, prompt and pairs)", case_fields[k]);
    char *img = NULL;
    if (get_string(r, f[F_IMAGE], "image", &img)) return -1;
    c->image_path = resolve(r, img);
    free(img);
    if (!c->image_path) return bad(r, "out of memory");
    if (get_string(r, f[F_PROMPT], "prompt", &c->origin_prompt)) return -1;
    if (read_pairs(r, f[F_PAIRS], c)) return -1;
    if (f[F_TARGET] && get_string(r, f[F_TARGET], "target", &c->target_prompt)) return -1;
    if (f[F_STEPS] && get_int(r, f[F_STEPS], "steps", 1, 1000, &c->num_ddim_steps)) return -1;
    if (f[F_R] && get_int(r, f[F_R], "reassembly_step", 0, 1000, &c->reassembly_step)) return -1;
    if (f[F_J] && get_int(r, f[F_J], "reinversion_steps", 0, 1000, &c->reinversion_steps)) return -1;
    if (f[F_GUIDANCE]) {
        const cJSON *g = f[F_GUIDANCE];
        if (!cJSON_IsNumber(g) || !isfinite(g->valuedouble) || g->valuedouble < 0 || g->valuedouble > 100)
            return bad(r, "guidance: expected a number 0..100");
        c->guidance_scale = (float)g->valuedouble;
    }
    if (f[F_SEARCH] && get_text(r, f[F_SEARCH], "search", c->search, sizeof c->search)) return -1;
    if (f[F_LOW_PICK] && get_text(r, f[F_LOW_PICK], "low_pick", c->low_pick, sizeof c->low_pick)) return -1;
    if (f[F_GUARD]) {
        const cJSON *g = f[F_GUARD];
        if (cJSON_IsNumber(g)) {
            if (!isfinite(g->valuedouble) || g->valuedouble < 0) return bad(r, "guard: expected \"off\" or a margin >= 0");
            snprintf(c->guard, sizeof c->guard, "%.9g", g->valuedouble);
        } else if (get_text(r, g, "guard", c->guard, sizeof c->guard)) {
            return -1;
        }
    }
    if (f[F_SEED]) {
        if (get_seed(r, f[F_SEED], &c->seed)) return -1;
        c->has_seed = 1;
    }
    if (f[F_PICK] && get_pick(r, f[F_PICK], c)) return -1;
    return 0;
}

/* The id a line gives ("" when none or not valid; why says what is wrong). */
static void line_id(const cJSON *v, char *id, char *why, size_t why_cap) {
    id[0] = why[0] = '\0';
    if (!v) return;
    char buf[MANIFEST_ID_MAX + 32];
    if (cJSON_IsString(v) && v->valuestring) {
        if (strlen(v->valuestring) > MANIFEST_ID_MAX) {
            snprintf(why, why_cap, "id '%.70s...' is longer than %d bytes", v->valuestring, MANIFEST_ID_MAX);
            return;
        }
        snprintf(buf, sizeof buf, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 &&
               v->valuedouble == floor(v->valuedouble)) {
        snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
    } else {
        snprintf(why, why_cap, "id: expected a string (letters, digits, '.', '_', '-') or a whole number");
        return;
    }
    char reason[160];
    if (!manifest_id_valid(buf, reason, sizeof reason)) {
        snprintf(why, why_cap, "id '%s' %s", buf, reason);
        return;
    }
    memcpy(id, buf, strlen(buf) + 1); /* valid: at most MANIFEST_ID_MAX bytes */
}

/* One non-blank line -> a case (its error kept in the case). */
static int parse_line(manifest *m, int *cap, const char *name, const char *base, int lineno, const char *text,
                      size_t len, oir_error *err) {
    manifest_case *mc = add_case(m, cap, err);
    if (!mc) return err->code;
    mc->line = lineno;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", name, lineno);
    snprintf(mc->id, sizeof mc->id, "line%04d", lineno);
    if (!(mc->where = strdup(where))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    line_reader r = {.where = where, .base = base};
    cJSON *root = NULL;
    oir_error je = {0};
    edit_case *c = calloc(1, sizeof *c);
    const cJSON *idf = NULL;
    int failed = 0;
    if (!c) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    /* io/json.h: also refuses repeated keys, numbers out of range, deep nesting */
    if (json_parse(&root, text, len, where, &je) != OIR_OK) {
        const char *why = je.message;
        if (!strncmp(why, where, strlen(where)) && why[strlen(where)] == ':') why += strlen(where) + 1;
        while (*why == ' ') why++;
        failed = bad(&r, "%s; each line is one case, a JSON object", why);
    } else if (!cJSON_IsObject(root)) {
        failed = bad(&r, "expected a JSON object {\"image\": ..., \"prompt\": ..., \"pairs\": [...]}");
    } else {
        failed = read_case(&r, root, c, &idf);
        idf = cJSON_GetObjectItemCaseSensitive(root, "id"); /* also when the line fails */
    }
    /* the id: the line's own when valid (also for a failing line) */
    char id[MANIFEST_ID_MAX + 1], why[300];
    line_id(idf, id, why, sizeof why);
    if (id[0]) snprintf(mc->id, sizeof mc->id, "%s", id);
    else if (!failed && why[0]) failed = bad(&r, "%s; the case's output folder is named after it", why);
    cJSON_Delete(root);
    if (!failed && (!(c->name = strdup(mc->id)) || !(c->dir_name = strdup(mc->id)))) failed = bad(&r, "out of memory");
    if (failed) {
        edit_config tmp = {.cases = c, .n_cases = 1};
        edit_config_free(&tmp);
        if (!(mc->error = dupf("%s: %s", where, r.msg))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
        return OIR_OK;
    }
    mc->cfg.cases = c;
    mc->cfg.n_cases = 1;
    return OIR_OK;
}

/* Repeated ids (ignoring letter case) fail the manifest. */
static int cmp_id_ci(const void *a, const void *b) {
    const manifest_case *x = *(manifest_case *const *)a, *y = *(manifest_case *const *)b;
    int c = strcasecmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int check_unique(manifest *m, oir_error *err) {
    if (m->n_cases < 2) return OIR_OK;
    manifest_case **v = malloc(sizeof *v * (size_t)m->n_cases);
    if (!v) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    for (int i = 0; i < m->n_cases; i++) v[i] = &m->cases[i];
    qsort(v, (size_t)m->n_cases, sizeof *v, cmp_id_ci);
    int rc = OIR_OK;
    for (int i = 1; i < m->n_cases && !rc; i++)
        if (!strcasecmp(v[i - 1]->id, v[i]->id))
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s and %s both have the id '%s'%s: a case's id names its output folder, so ids must be "
                          "unique (ignoring letter case); give one of them another id",
                          v[i - 1]->where, v[i]->where, v[i]->id,
                          strcmp(v[i - 1]->id, v[i]->id) ? " (ignoring letter case)" : "");
    free(v);
    return rc;
}

int manifest_parse(manifest *m, const char *text, size_t len, const char *name, const char *base_dir,
                   oir_error *err) {
    memset(m, 0, sizeof *m);
    int cap = 0, rc = OIR_OK;
    if (!(m->path = strdup(name))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3; /* a UTF-8 byte order mark */
    int lineno = 0;
    for (size_t at = 0; at < len && !rc;) {
        const char *s = text + at, *nl = memchr(s, '\n', len - at);
        size_t n = nl ? (size_t)(nl - s) : len - at;
        at += n + 1;
        lineno++;
        size_t k = 0;
        while (k < n && isspace((unsigned char)s[k])) k++;
        if (k == n) continue; /* blank */
        rc = parse_line(m, &cap, name, base_dir, lineno, s, n, err);
    }
    if (!rc && m->n_cases == 0)
        rc = oir_fail(err, OIR_E_FORMAT, "%s: no cases (expected one JSON object a line)", name);
    if (!rc) rc = check_unique(m, err);
    if (rc) manifest_free(m);
    return rc;
}

/* ------------------------------------------------------------------ files */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int yaml_name(const char *n) {
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && !strcasecmp(n + l - 5, ".yaml")) || (l > 4 && !strcasecmp(n + l - 4, ".yml")));
}

/* A file's id when it does not load: its name without the extension, as a
 * folder name (edit_config's rule), cut to MANIFEST_ID_MAX. */
static void file_id(const char *file, char *id) {
    size_t l = strlen(file);
    const char *dot = strrchr(file, '.');
    if (dot && dot != file) l = (size_t)(dot - file);
    if (l > MANIFEST_ID_MAX) l = MANIFEST_ID_MAX;
    for (size_t i = 0; i < l; i++) {
        char ch = file[i];
        id[i] = isalnum((unsigned char)ch) || ch == '-' || ch == '_' || (ch == '.' && i > 0) ? ch : '_';
    }
    id[l] = '\0';
}

static int load_folder(manifest *m, const char *path, oir_error *err) {
    DIR *dp = opendir(path);
    if (!dp) return oir_fail(err, OIR_E_IO, "%s: cannot read the folder (%s)", path, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = OIR_OK;
    for (struct dirent *e; !rc && (e = readdir(dp));) {
        if (!yaml_name(e->d_name)) continue;
        if (n == MANIFEST_MAX_CASES) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: more than %d YAML files", path, MANIFEST_MAX_CASES);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **v = realloc(names, sizeof *v * (size_t)cap);
            if (!v) {
                rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
                break;
            }
            names = v;
        }
        if (!(names[n] = strdup(e->d_name))) rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        else n++;
    }
    closedir(dp);
    if (!rc && n == 0)
        rc = oir_fail(err, OIR_E_FORMAT, "%s: a folder without *.yaml or *.yml files; a manifest is a JSON-lines file "
                      "or a folder of the authors' YAML cases", path);
    if (!rc) qsort(names, (size_t)n, sizeof *names, cmp_str);
    int ccap = 0;
    size_t pl = strlen(path);
    while (pl > 1 && path[pl - 1] == '/') pl--;
    for (int i = 0; i < n && !rc; i++) {
        char *file = dupf("%.*s/%s", (int)pl, path, names[i]);
        if (!file) {
            rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            break;
        }
        edit_config cfg;
        oir_error e = {0};
        if (edit_config_load(&cfg, file, &e) != OIR_OK) { /* the file is one failing case */
            manifest_case *mc = add_case(m, &ccap, err);
            if (!mc) rc = err->code;
            else {
                file_id(names[i], mc->id);
                if (!manifest_id_valid(mc->id, NULL, 0)) { /* "logs.yaml": not the log folder */
                    char id[MANIFEST_ID_MAX + 8];
                    snprintf(id, sizeof id, "file-%s", mc->id);
                    snprintf(mc->id, sizeof mc->id, "%.*s", MANIFEST_ID_MAX, id);
                }
                mc->where = strdup(file);
                mc->error = strdup(e.message);
                if (!mc->where || !mc->error) rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            }
            free(file);
            continue;
        }
        for (int k = 0; k < cfg.n_cases && !rc; k++) {
            manifest_case *mc = add_case(m, &ccap, err);
            if (!mc) {
                rc = err->code;
                break;
            }
            edit_case *c = calloc(1, sizeof *c);
            if (!c) {
                rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
                break;
            }
            *c = cfg.cases[k]; /* moved: cfg no longer owns it */
            memset(&cfg.cases[k], 0, sizeof cfg.cases[k]);
            mc->cfg.cases = c;
            mc->cfg.n_cases = 1;
            snprintf(mc->id, sizeof mc->id, "%.*s", MANIFEST_ID_MAX, c->dir_name);
            char why[160];
            if (!manifest_id_valid(mc->id, why, sizeof why))
                rc = oir_fail(err, OIR_E_FORMAT, "%s: case '%s': its folder name '%s' %s; rename the case", file,
                              c->name, mc->id, why);
            if (!rc && strcmp(mc->id, c->dir_name)) {
                char *d = strdup(mc->id);
                if (!d) rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
                else free(c->dir_name), c->dir_name = d;
            }
            if (!rc && !(mc->where = dupf("%s: case '%s'", file, c->name))) rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
            for (int w = 0; !rc && w < cfg.n_warnings; w++) {
                if (!(mc->cfg.warnings[w] = strdup(cfg.warnings[w]))) rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
                else mc->cfg.n_warnings++;
            }
            mc->cfg.n_more_warnings = cfg.n_more_warnings;
        }
        edit_config_free(&cfg);
        free(file);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int manifest_load(manifest *m, const char *path, oir_error *err) {
    memset(m, 0, sizeof *m);
    struct stat sb;
    if (stat(path, &sb) != 0) return oir_fail(err, OIR_E_IO, "%s: no such file or folder", path);
    if (S_ISDIR(sb.st_mode)) {
        if (!(m->path = strdup(path))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
        m->is_folder = 1;
        int rc = load_folder(m, path, err);
        if (!rc) rc = check_unique(m, err);
        if (rc) manifest_free(m);
        return rc;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = file_read_regular(path, MANIFEST_MAX_BYTES, "a batch manifest (JSON lines, split larger ones)", &text,
                               &len, err);
    if (rc) return rc;
    char base[4096];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash == base) base[1] = '\0';
    else if (slash) *slash = '\0';
    else base[0] = '\0';
    rc = manifest_parse(m, text, len, path, base, err);
    free(text);
    return rc;
}
