#include "io/edit_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

typedef struct {
    yaml_document_t *doc;
    edit_config *cfg; /* for warnings */
    const char *path; /* the YAML file, for messages */
    const char *dir;  /* its folder, for relative paths */
    const char *case_name;
    oir_error *err;
} reader;

static yaml_node_t *map_get(reader *r, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(r->doc, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int seq_len(yaml_node_t *n) {
    return n && n->type == YAML_SEQUENCE_NODE ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : -1;
}

static yaml_node_t *seq_at(reader *r, yaml_node_t *n, int i) {
    return yaml_document_get_node(r->doc, n->data.sequence.items.start[i]);
}

static int need_string(reader *r, yaml_node_t *map, const char *key, char **out) {
    const char *s = scalar(map_get(r, map, key));
    if (!s)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': field '%s' is missing or not a string",
                        r->path, r->case_name, key);
    *out = strdup(s);
    return *out ? OIR_OK : oir_fail(r->err, OIR_E_NOMEM, "out of memory");
}

static int opt_int(reader *r, yaml_node_t *map, const char *key, int *out) {
    *out = -1;
    yaml_node_t *n = map_get(r, map, key);
    if (!n) return OIR_OK;
    const char *s = scalar(n);
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || !*s || *end || v < 0 || v > 100000)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': field '%s' must be a non-negative integer",
                        r->path, r->case_name, key);
    *out = (int)v;
    return OIR_OK;
}

/* A list of strings of length n (n < 0: any length, returned in *n). */
static int string_list(reader *r, yaml_node_t *map, const char *key, int *n, char ***out) {
    yaml_node_t *node = map_get(r, map, key);
    int len = seq_len(node);
    if (len < 0)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': field '%s' is missing or not a list",
                        r->path, r->case_name, key);
    if (*n >= 0 && len != *n)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': field '%s' has %d entries, expected %d",
                        r->path, r->case_name, key, len, *n);
    *n = len;
    *out = calloc((size_t)len + 1, sizeof(char *));
    if (!*out) return oir_fail(r->err, OIR_E_NOMEM, "out of memory");
    for (int i = 0; i < len; i++) {
        const char *s = scalar(seq_at(r, node, i));
        if (!s)
            return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': %s[%d] is not a string", r->path,
                            r->case_name, key, i);
        if (!((*out)[i] = strdup(s))) return oir_fail(r->err, OIR_E_NOMEM, "out of memory");
    }
    return OIR_OK;
}

static void free_list(char **l, int n) {
    if (!l) return;
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

static char *resolve_path(reader *r, const char *p) {
    if (p[0] != '/' && r->dir[0]) {
        size_t n = strlen(r->dir) + strlen(p) + 2;
        char *joined = malloc(n);
        if (joined) {
            snprintf(joined, n, "%s/%s", r->dir, p);
            if (access(joined, F_OK) == 0) return joined;
            free(joined);
        }
    }
    return strdup(p);
}

/* A mask entry that asks for inference: "auto", or empty / null. */
static int mask_is_auto(const char *m) {
    return !m || !*m || !strcmp(m, "auto") || !strcmp(m, "~") || !strcmp(m, "null");
}

/* A mask path resolved as resolve_path does, or NULL for an inferred mask
 * (strdup'ing "" first so an allocation failure is not taken for "auto" by
 * the caller: *ok is 0 then). */
static char *mask_path(reader *r, const char *m, int *ok) {
    *ok = 1;
    if (mask_is_auto(m)) return NULL;
    char *p = resolve_path(r, m);
    *ok = p != NULL;
    return p;
}

static char *concat3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static int grow(reader *r, edit_config *cfg) {
    oir_error *err = r->err;
    if (cfg->n_cases >= EDIT_CONFIG_MAX_CASES)
        return oir_fail(err, OIR_E_FORMAT, "%s: more than %d edit cases (the limit; a single_object case counts each "
                        "target change); split the file", r->path, EDIT_CONFIG_MAX_CASES);
    edit_case *c = realloc(cfg->cases, sizeof *c * (size_t)(cfg->n_cases + 1));
    if (!c) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    cfg->cases = c;
    memset(&cfg->cases[cfg->n_cases], 0, sizeof *c);
    return OIR_OK;
}

static void warn(reader *r, const char *keys, const char *reason) {
    edit_config *cfg = r->cfg;
    if (cfg->n_warnings == EDIT_CONFIG_MAX_WARNINGS) {
        cfg->n_more_warnings++;
        return;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s: case '%s': %s ignored: %s", r->path, r->case_name, keys, reason);
    cfg->warnings[cfg->n_warnings] = strdup(buf);
    if (cfg->warnings[cfg->n_warnings]) cfg->n_warnings++;
}

/* Every key of a case mapping: used, ignored with a reason, or unknown; one
 * warning per reason, naming its keys. */
static void check_keys(reader *r, yaml_node_t *m, int single) {
    static const char *const used_multi[] = {"image_path", "origin_prompt", "target_prompt", "guided_prompt",
                                             "origin_change", "prompt_change", "prompt_change_mask",
                                             "reassembly_step", "reinversion_steps", "low_pick", NULL};
    static const char *const used_single[] = {"image_path", "origin_prompt", "origin_prompt_mask",
                                              "target_prompt_list", "target_changes", NULL};
    static const char *const used_both[] = {"num_ddim_steps", "guidance_scale", "seed", "search", "pick",
                                            "guard", NULL};
    enum { OUT, BENCH, SINGLE, UNKNOWN, N_REASONS };
    static const char *const why[N_REASONS] = {
        "oir writes its outputs to --out",
        "metadata of the shapes benchmark (bench/shapes), not used by oir edit",
        "a single_object case has one pair (no reassembly)",
        "unknown to oir (misspelled?)",
    };
    static const struct {
        const char *key;
        int reason;
    } ignored[] = {{"generation_image_path", OUT}, {"ground_truth_path", BENCH}, {"heldout_in_target", BENCH},
                   {"source_scene", BENCH},         {"target_scene", BENCH},      {"object_masks", BENCH},
                   {"reassembly_step", SINGLE},     {"reinversion_steps", SINGLE},
                   {"low_pick", SINGLE}};
    char keys[N_REASONS][512];
    int count[N_REASONS] = {0};
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(r->doc, p->key));
        if (!k) k = "(not a string)";
        int known = 0, reason = UNKNOWN;
        for (const char *const *u = single ? used_single : used_multi; *u && !known; u++) known = !strcmp(*u, k);
        for (const char *const *u = used_both; *u && !known; u++) known = !strcmp(*u, k);
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0] && !known; i++)
            if (!strcmp(ignored[i].key, k) && (ignored[i].reason != SINGLE || single)) reason = ignored[i].reason;
        if (known) continue;
        size_t l = count[reason] ? strlen(keys[reason]) : 0;
        snprintf(keys[reason] + l, sizeof keys[reason] - l, "%s'%s'", count[reason] ? ", " : "", k);
        count[reason]++;
    }
    for (int i = 0; i < N_REASONS; i++) {
        if (!count[i]) continue;
        char what[600];
        snprintf(what, sizeof what, "%s %s", count[i] > 1 ? "keys" : "key", keys[i]);
        warn(r, what, why[i]);
    }
}

/* pick: {PAIR: STEP, ...}, ["PAIR=STEP", ...] or "PAIR=STEP", kept as
 * "PAIR=STEP" texts (the CLI resolves them against the pairs, as --pick). */
static int read_pick(reader *r, yaml_node_t *m, edit_case *c) {
    yaml_node_t *n = map_get(r, m, "pick");
    if (!n) return OIR_OK;
    const char *bad = NULL;
    int count = n->type == YAML_SCALAR_NODE ? 1
                : n->type == YAML_SEQUENCE_NODE ? seq_len(n)
                : n->type == YAML_MAPPING_NODE ? (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start)
                                               : 0;
    if (count > EDIT_CONFIG_MAX_PICKS)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': pick has %d entries (at most %d)", r->path,
                        r->case_name, count, EDIT_CONFIG_MAX_PICKS);
    for (int i = 0; i < count && !bad; i++) {
        const char *key = NULL, *val = NULL;
        if (n->type == YAML_SCALAR_NODE) {
            key = scalar(n);
        } else if (n->type == YAML_SEQUENCE_NODE) {
            key = scalar(seq_at(r, n, i));
        } else {
            yaml_node_pair_t *p = n->data.mapping.pairs.start + i;
            key = scalar(yaml_document_get_node(r->doc, p->key));
            val = scalar(yaml_document_get_node(r->doc, p->value));
            if (!val) key = NULL;
        }
        if (!key || !*key) {
            bad = "an entry is not a string";
            break;
        }
        size_t len = strlen(key) + (val ? strlen(val) + 1 : 0) + 1;
        if (!(c->pick[c->n_pick] = malloc(len))) return oir_fail(r->err, OIR_E_NOMEM, "out of memory");
        snprintf(c->pick[c->n_pick++], len, "%s%s%s", key, val ? "=" : "", val ? val : "");
    }
    if (!bad && !count) bad = "it is empty";
    if (bad)
        return oir_fail(r->err, OIR_E_FORMAT,
                        "%s: case '%s': pick must be a mapping {PAIR: STEP}, a list of \"PAIR=STEP\" or one "
                        "\"PAIR=STEP\" (%s)",
                        r->path, r->case_name, bad);
    return OIR_OK;
}

/* A short string setting (checked by the CLI, which names the valid values). */
static int opt_word(reader *r, yaml_node_t *m, const char *key, char *dst, size_t cap, const char *example) {
    yaml_node_t *n = map_get(r, m, key);
    if (!n) return OIR_OK;
    const char *s = scalar(n);
    if (!s || !*s || strlen(s) >= cap)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': %s must be a word such as %s", r->path, r->case_name,
                        key, example);
    snprintf(dst, cap, "%s", s);
    return OIR_OK;
}

/* num_ddim_steps, guidance_scale, seed, search, pick, guard, low_pick (optional). */
static int read_settings(reader *r, yaml_node_t *m, edit_case *c) {
    c->guidance_scale = -1;
    int wrc = opt_word(r, m, "low_pick", c->low_pick, sizeof c->low_pick, "reinvert");
    if (!wrc) wrc = opt_word(r, m, "guard", c->guard, sizeof c->guard, "0.01 or off");
    if (wrc) return wrc;
    yaml_node_t *sn = map_get(r, m, "search");
    if (sn) { /* checked when the run starts (the library names a bad spec) */
        const char *s = scalar(sn);
        if (!s || !*s || strlen(s) >= sizeof c->search)
            return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': search must be a strategy such as adaptive:10",
                            r->path, r->case_name);
        snprintf(c->search, sizeof c->search, "%s", s);
    }
    int rc = read_pick(r, m, c);
    if (rc) return rc;
    if ((rc = opt_int(r, m, "num_ddim_steps", &c->num_ddim_steps))) return rc;
    if (c->num_ddim_steps == 0 || c->num_ddim_steps > 1000)
        return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': num_ddim_steps %d is outside 1..1000", r->path,
                        r->case_name, c->num_ddim_steps);
    yaml_node_t *n = map_get(r, m, "guidance_scale");
    if (n) {
        const char *s = scalar(n);
        char *end = NULL;
        double g = s ? strtod(s, &end) : -1;
        if (!s || !*s || *end || !isfinite(g) || g < 0 || g > 100)
            return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': guidance_scale must be a number in 0..100", r->path,
                            r->case_name);
        c->guidance_scale = (float)g;
    }
    n = map_get(r, m, "seed");
    if (n) {
        const char *s = scalar(n);
        char *end = NULL;
        errno = 0;
        unsigned long long v = s && isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
        if (!s || !isdigit((unsigned char)s[0]) || *end || errno == ERANGE)
            return oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': seed must be a non-negative 64-bit integer",
                            r->path, r->case_name);
        c->seed = v;
        c->has_seed = 1;
    }
    return OIR_OK;
}

static int read_multi(reader *r, yaml_node_t *m, edit_config *cfg) {
    int rc, n = -1, n_guided;
    char **from = NULL, **to = NULL, **masks = NULL;
    if ((rc = grow(r, cfg))) return rc;
    edit_case *c = &cfg->cases[cfg->n_cases++];
    c->name = strdup(r->case_name);
    char *image = NULL;
    if ((rc = need_string(r, m, "image_path", &image))) goto cleanup;
    c->image_path = resolve_path(r, image);
    free(image);
    if ((rc = need_string(r, m, "origin_prompt", &c->origin_prompt))) goto cleanup;
    if (map_get(r, m, "target_prompt") && (rc = need_string(r, m, "target_prompt", &c->target_prompt)))
        goto cleanup;
    if ((rc = string_list(r, m, "origin_change", &n, &from))) goto cleanup;
    if ((rc = string_list(r, m, "prompt_change", &n, &to))) goto cleanup;
    /* no prompt_change_mask: every mask inferred (an entry "auto" infers one) */
    if (map_get(r, m, "prompt_change_mask") && (rc = string_list(r, m, "prompt_change_mask", &n, &masks)))
        goto cleanup;
    if (n < 1) {
        rc = oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': no editing pairs", r->path, r->case_name);
        goto cleanup;
    }
    c->pairs = calloc((size_t)n, sizeof *c->pairs);
    if (!c->pairs) {
        rc = oir_fail(r->err, OIR_E_NOMEM, "out of memory");
        goto cleanup;
    }
    c->n_pairs = n;
    yaml_node_t *guided = map_get(r, m, "guided_prompt");
    n_guided = seq_len(guided);
    if (guided && n_guided != n) {
        rc = oir_fail(r->err, OIR_E_FORMAT, "%s: case '%s': guided_prompt has %d entries, expected %d",
                      r->path, r->case_name, n_guided, n);
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        edit_config_pair *p = &c->pairs[i];
        p->from = strdup(from[i]);
        p->to = strdup(to[i]);
        int ok;
        p->mask_path = mask_path(r, masks ? masks[i] : NULL, &ok);
        if (!ok) {
            rc = oir_fail(r->err, OIR_E_NOMEM, "out of memory");
            goto cleanup;
        }
        if (guided) {
            yaml_node_t *g = seq_at(r, guided, i);
            const char *pre = seq_len(g) == 2 ? scalar(seq_at(r, g, 0)) : NULL;
            const char *suf = seq_len(g) == 2 ? scalar(seq_at(r, g, 1)) : NULL;
            if (scalar(g)) { /* a whole guided prompt */
                p->guided_prompt = strdup(scalar(g));
            } else if (pre && suf) { /* the authors' [prefix, suffix] */
                p->guided_prompt = concat3(pre, to[i], suf);
            } else {
                rc = oir_fail(r->err, OIR_E_FORMAT,
                              "%s: case '%s': guided_prompt[%d] must be [prefix, suffix] or a prompt", r->path,
                              r->case_name, i);
                goto cleanup;
            }
        }
    }
    if ((rc = opt_int(r, m, "reassembly_step", &c->reassembly_step))) goto cleanup;
    if ((rc = opt_int(r, m, "reinversion_steps", &c->reinversion_steps))) goto cleanup;
    if ((rc = read_settings(r, m, c))) goto cleanup;
    check_keys(r, m, 0);
cleanup:
    free_list(from, n);
    free_list(to, n);
    free_list(masks, n);
    return rc;
}

static int read_single(reader *r, yaml_node_t *m, edit_config *cfg) {
    int rc, two = 2, n = -1;
    char **affix = NULL, **targets = NULL, *image = NULL, *origin = NULL, *mask = NULL;
    edit_case settings;
    memset(&settings, 0, sizeof settings);
    if ((rc = need_string(r, m, "image_path", &image))) goto cleanup;
    if ((rc = need_string(r, m, "origin_prompt", &origin))) goto cleanup;
    /* no origin_prompt_mask (or "auto"): the mask is inferred */
    if (map_get(r, m, "origin_prompt_mask") && (rc = need_string(r, m, "origin_prompt_mask", &mask))) goto cleanup;
    if ((rc = string_list(r, m, "target_prompt_list", &two, &affix))) goto cleanup;
    if ((rc = string_list(r, m, "target_changes", &n, &targets))) goto cleanup;
    if ((rc = read_settings(r, m, &settings))) goto cleanup;
    check_keys(r, m, 1);
    size_t lo = strlen(origin), lp = strlen(affix[0]), ls = strlen(affix[1]);
    if (lp + ls > lo || strncmp(origin, affix[0], lp) || strcmp(origin + lo - ls, affix[1])) {
        rc = oir_fail(r->err, OIR_E_FORMAT,
                      "%s: case '%s': origin_prompt does not start with target_prompt_list[0] and end with [1]",
                      r->path, r->case_name);
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        if ((rc = grow(r, cfg))) goto cleanup;
        edit_case *c = &cfg->cases[cfg->n_cases++];
        size_t nl = strlen(r->case_name) + strlen(targets[i]) + 2;
        c->name = malloc(nl);
        if (c->name) snprintf(c->name, nl, "%s/%s", r->case_name, targets[i]);
        c->image_path = resolve_path(r, image);
        c->origin_prompt = strdup(origin);
        c->target_prompt = concat3(affix[0], targets[i], affix[1]);
        c->pairs = calloc(1, sizeof *c->pairs);
        if (!c->pairs) {
            rc = oir_fail(r->err, OIR_E_NOMEM, "out of memory");
            goto cleanup;
        }
        c->n_pairs = 1;
        c->pairs[0].from = strndup(origin + lp, lo - lp - ls);
        c->pairs[0].to = strdup(targets[i]);
        int ok;
        c->pairs[0].mask_path = mask_path(r, mask, &ok);
        if (!ok) {
            rc = oir_fail(r->err, OIR_E_NOMEM, "out of memory");
            goto cleanup;
        }
        c->pairs[0].guided_prompt = strdup(c->target_prompt);
        c->reassembly_step = c->reinversion_steps = -1;
        c->num_ddim_steps = settings.num_ddim_steps;
        c->guidance_scale = settings.guidance_scale;
        c->has_seed = settings.has_seed;
        c->seed = settings.seed;
        memcpy(c->search, settings.search, sizeof c->search);
        memcpy(c->guard, settings.guard, sizeof c->guard); /* (low_pick: no reassembly with one pair) */
        for (int j = 0; j < settings.n_pick; j++)
            if (!(c->pick[c->n_pick++] = strdup(settings.pick[j]))) {
                rc = oir_fail(r->err, OIR_E_NOMEM, "out of memory");
                goto cleanup;
            }
    }
cleanup:
    for (int j = 0; j < settings.n_pick; j++) free(settings.pick[j]);
    free(image);
    free(origin);
    free(mask);
    free_list(affix, 2);
    free_list(targets, n);
    return rc;
}

void edit_config_free(edit_config *cfg) {
    if (!cfg) return;
    for (int i = 0; i < cfg->n_cases; i++) {
        edit_case *c = &cfg->cases[i];
        for (int j = 0; j < c->n_pairs; j++) {
            free(c->pairs[j].from);
            free(c->pairs[j].to);
            free(c->pairs[j].mask_path);
            free(c->pairs[j].guided_prompt);
        }
        free(c->pairs);
        free(c->name);
        free(c->dir_name);
        free(c->image_path);
        free(c->origin_prompt);
        free(c->target_prompt);
        for (int j = 0; j < c->n_pick; j++) free(c->pick[j]);
    }
    free(cfg->cases);
    for (int i = 0; i < cfg->n_warnings; i++) free(cfg->warnings[i]);
    memset(cfg, 0, sizeof *cfg);
}

/* The output folder name of a case (see edit_config.h). */
static char *dir_name_of(const char *name) {
    size_t n = strlen(name);
    if (n > EDIT_CONFIG_NAME_MAX) n = EDIT_CONFIG_NAME_MAX;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    int leading = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                 ch == '_' || ch == '.';
        if (ch != '.') leading = 0;
        d[i] = ok && !(leading && ch == '.') ? (char)ch : '_';
    }
    d[n] = '\0';
    return d;
}

static int name_cases(edit_config *cfg, const char *path, oir_error *err) {
    for (int i = 0; i < cfg->n_cases; i++) {
        edit_case *c = &cfg->cases[i];
        if (!c->name) return oir_fail(err, OIR_E_NOMEM, "out of memory");
        if (!c->name[0] || !strcmp(c->name, "/"))
            return oir_fail(err, OIR_E_FORMAT, "%s: case %d has an empty name; give every case a name", path, i + 1);
        if (!(c->dir_name = dir_name_of(c->name))) return oir_fail(err, OIR_E_NOMEM, "out of memory");
        for (int j = 0; j < i; j++)
            if (!strcasecmp(cfg->cases[j].dir_name, c->dir_name))
                return oir_fail(err, OIR_E_FORMAT,
                                "%s: cases '%s' and '%s' would both write to the output folder '%s'; rename one",
                                path, cfg->cases[j].name, c->name, c->dir_name);
    }
    return OIR_OK;
}

/* The whole file, refused before parsing when it is not a regular file or is
 * larger than EDIT_CONFIG_MAX_BYTES. Opened with O_NONBLOCK and checked with
 * fstat, so a FIFO never blocks. (A shared regular-file helper for every
 * input may replace this when the hostile-input work lands.) */
static int read_yaml_file(const char *path, unsigned char **text, size_t *len, oir_error *err) {
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return oir_fail(err, OIR_E_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    int rc = OIR_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = oir_fail(err, OIR_E_IO, "%s: not a regular file; expected a YAML file", path);
        goto cleanup;
    }
    if (sb.st_size > EDIT_CONFIG_MAX_BYTES) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: %lld bytes, larger than the %d-byte (1 MiB) limit for a YAML file",
                      path, (long long)sb.st_size, EDIT_CONFIG_MAX_BYTES);
        goto cleanup;
    }
    /* read to the end, at most one byte past the limit (the file may grow) */
    *text = malloc(EDIT_CONFIG_MAX_BYTES + 2);
    if (!*text) {
        rc = oir_fail(err, OIR_E_NOMEM, "out of memory");
        goto cleanup;
    }
    for (;;) {
        ssize_t r = read(fd, *text + *len, EDIT_CONFIG_MAX_BYTES + 1 - *len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = oir_fail(err, OIR_E_IO, "%s: read failed (%s)", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0) break;
        *len += (size_t)r;
        if (*len > EDIT_CONFIG_MAX_BYTES) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: larger than the %d-byte (1 MiB) limit for a YAML file", path,
                          EDIT_CONFIG_MAX_BYTES);
            goto cleanup;
        }
    }
cleanup:
    close(fd);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* One pass over libyaml's event stream, stopped at the first collection
 * nested deeper than EDIT_CONFIG_MAX_DEPTH (before libyaml's quadratic cost
 * of deep nesting builds up); syntax errors are left to the loading pass. */
static int check_depth(const char *path, const unsigned char *text, size_t len, oir_error *err) {
    yaml_parser_t parser;
    yaml_event_t ev;
    int depth = 0, rc = OIR_OK, done = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, text, len);
    while (!done && !rc) {
        if (!yaml_parser_parse(&parser, &ev)) break;
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > EDIT_CONFIG_MAX_DEPTH)
                rc = oir_fail(err, OIR_E_FORMAT, "%s: collections nested deeper than %d levels at line %zu (the limit)",
                              path, EDIT_CONFIG_MAX_DEPTH, ev.start_mark.line + 1);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

int edit_config_load(edit_config *out, const char *path, oir_error *err) {
    memset(out, 0, sizeof *out);
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = read_yaml_file(path, &text, &len, err);
    if (rc) return rc;
    if ((rc = check_depth(path, text, len, err))) {
        free(text);
        return rc;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else dir[0] = '\0';
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: invalid YAML at line %zu: %s", path,
                      parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
        goto cleanup;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: expected a mapping of case names to edit cases", path);
        goto cleanup;
    }
    reader r = {&doc, out, path, dir, "", err};
    if (map_get(&r, root, "image_path")) { /* one case at the top level, named after the file */
        const char *base = strrchr(path, '/');
        r.case_name = base ? base + 1 : path;
        rc = map_get(&r, root, "target_changes") ? read_single(&r, root, out) : read_multi(&r, root, out);
        if (!rc) rc = name_cases(out, path, err);
        goto cleanup;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        r.case_name = scalar(k) ? scalar(k) : "?";
        if (!v || v->type != YAML_MAPPING_NODE) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: case '%s' is not a mapping", path, r.case_name);
            goto cleanup;
        }
        if (map_get(&r, v, "target_changes")) rc = read_single(&r, v, out);
        else rc = read_multi(&r, v, out);
        if (rc) goto cleanup;
    }
    if (out->n_cases == 0) rc = oir_fail(err, OIR_E_FORMAT, "%s: no edit cases", path);
    if (!rc) rc = name_cases(out, path, err);
cleanup:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    if (rc) edit_config_free(out);
    return rc;
}
