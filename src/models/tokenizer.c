/* CLIP BPE tokenizer, in parity with transformers 4.26.1's slow CLIPTokenizer
 * on its no-ftfy path (see tokenizer.h). Function names follow the Python:
 * clean_text, tokenize_chinese_chars, whitespace_tokenize, run_strip_accents,
 * run_split_on_punc (BasicTokenizer), then the CLIP pattern and bpe(). */
#include "models/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "models/unicode.h"

/* The reference reads merges.txt lines [1 : 49152 - 256 - 2 + 1]. */
#define MAX_MERGES (49152 - 256 - 2)
#define MAX_ID ((1 << 24) - 1)
#define MAX_NOSPLIT 64
#define NONE UINT32_MAX

/* bytes_to_unicode(): the printable stand-in code point of each byte. */
static uint32_t byte_to_unicode(unsigned b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned n = 0; /* rank of b among the remaining bytes */
    for (unsigned x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256 + n;
}

/* ------------------------------------------------------------- containers */

typedef struct {
    uint32_t off, len; /* string in the pool (NUL-terminated there) */
    int32_t id;        /* vocabulary id, -1 if none */
} symbol;

typedef struct {
    uint32_t a, b;     /* left and right symbol; a == NONE: empty slot */
    int32_t rank;
    uint32_t merged;   /* symbol of a+b */
} pair_slot;

typedef struct {
    uint32_t *cp;      /* code points */
    int n;
    int32_t id;
} nosplit;

struct tokenizer {
    char *pool;
    size_t pool_len, pool_cap;
    symbol *syms;
    uint32_t nsyms, syms_cap;
    uint32_t *slots;   /* symbol hash table (indices), NONE = empty */
    uint32_t slot_mask;
    pair_slot *pairs;
    uint32_t pair_mask;
    uint32_t byte_sym[256], byte_sym_end[256]; /* symbol of a byte's char, and of it + "</w>" */
    uint32_t *id_sym;  /* id -> symbol, NONE if no token */
    int32_t n_ids;     /* size of id_sym: max id + 1 */
    int vocab_size;
    nosplit ns[MAX_NOSPLIT];
    int n_ns;
    int32_t bos, eos, unk, pad;
};

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint64_t hash_pair(uint32_t a, uint32_t b) {
    uint64_t x = ((uint64_t)a << 32) | b; /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static const char *sym_str(const tokenizer *t, uint32_t s) { return t->pool + t->syms[s].off; }

/* Index of the symbol with these bytes, or NONE. */
static uint32_t sym_find(const tokenizer *t, const char *s, size_t n) {
    if (!t->slots) return NONE;
    for (uint32_t i = hash_bytes(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        uint32_t k = t->slots[i];
        if (k == NONE) return NONE;
        if (t->syms[k].len == n && memcmp(sym_str(t, k), s, n) == 0) return k;
    }
}

static int slots_rebuild(tokenizer *t, uint32_t size) {
    uint32_t *slots = malloc((size_t)size * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xFF, (size_t)size * sizeof *slots);
    free(t->slots);
    t->slots = slots;
    t->slot_mask = size - 1;
    for (uint32_t k = 0; k < t->nsyms; k++) {
        uint32_t i = hash_bytes(sym_str(t, k), t->syms[k].len) & t->slot_mask;
        while (t->slots[i] != NONE) i = (i + 1) & t->slot_mask;
        t->slots[i] = k;
    }
    return 0;
}

/* Interns a string; returns its symbol index, NONE on out of memory. */
static uint32_t sym_intern(tokenizer *t, const char *s, size_t n) {
    uint32_t k = sym_find(t, s, n);
    if (k != NONE) return k;
    if (n > UINT32_MAX / 2 || t->pool_len + n + 1 > UINT32_MAX) return NONE;
    if (grow((void **)&t->pool, &t->pool_cap, t->pool_len + n + 1, 1)) return NONE;
    size_t cap = t->syms_cap;
    if (grow((void **)&t->syms, &cap, (size_t)t->nsyms + 1, sizeof *t->syms)) return NONE;
    t->syms_cap = (uint32_t)cap;
    if (!t->slots || (size_t)(t->nsyms + 1) * 2 > (size_t)t->slot_mask + 1) {
        uint32_t size = t->slots ? (t->slot_mask + 1) * 2 : 1024;
        if (slots_rebuild(t, size)) return NONE;
    }
    memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = '\0';
    k = t->nsyms++;
    t->syms[k] = (symbol){(uint32_t)t->pool_len, (uint32_t)n, -1};
    t->pool_len += n + 1;
    uint32_t i = hash_bytes(s, n) & t->slot_mask;
    while (t->slots[i] != NONE) i = (i + 1) & t->slot_mask;
    t->slots[i] = k;
    return k;
}

static const pair_slot *pair_find(const tokenizer *t, uint32_t a, uint32_t b) {
    if (a == NONE || b == NONE || !t->pairs) return NULL;
    for (uint32_t i = (uint32_t)hash_pair(a, b) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        const pair_slot *p = &t->pairs[i];
        if (p->a == NONE) return NULL;
        if (p->a == a && p->b == b) return p;
    }
}

/* Later duplicates win, as in dict(zip(merges, ranks)). */
static void pair_put(tokenizer *t, uint32_t a, uint32_t b, int32_t rank, uint32_t merged) {
    uint32_t i = (uint32_t)hash_pair(a, b) & t->pair_mask;
    while (t->pairs[i].a != NONE && !(t->pairs[i].a == a && t->pairs[i].b == b))
        i = (i + 1) & t->pair_mask;
    t->pairs[i] = (pair_slot){a, b, rank, merged};
}

/* ---------------------------------------------------------------- loading */

/* Reads a whole file, NUL-terminated. *absent (optional) set when ENOENT. */
static int read_file(const char *path, char **buf, size_t *len, int *absent, oir_error *err) {
    *buf = NULL;
    if (absent) *absent = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (absent && errno == ENOENT) {
            *absent = 1;
            return OIR_OK;
        }
        return oir_fail(err, OIR_E_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    int rc = OIR_OK;
    size_t cap = 0, n = 0;
    char *b = NULL;
    for (;;) {
        if (grow((void **)&b, &cap, n + 65537, 1)) {
            rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory reading the file", path);
            goto cleanup;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > (256u << 20)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: larger than 256 MiB, not a tokenizer file", path);
            goto cleanup;
        }
    }
    if (ferror(f)) {
        rc = oir_fail(err, OIR_E_IO, "%s: read error", path);
        goto cleanup;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
cleanup:
    free(b);
    fclose(f);
    return rc;
}

static void line_col(const char *buf, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') (*line)++, *col = 1;
        else (*col)++;
    }
}

/* Parses a JSON file; an absent optional file gives *out = NULL. */
static int load_json(const char *path, int optional, cJSON **out, oir_error *err) {
    char *buf;
    size_t len;
    int absent;
    *out = NULL;
    int rc = read_file(path, &buf, &len, optional ? &absent : NULL, err);
    if (rc || (optional && absent)) return rc;
    long bad = uc_utf8_invalid_at(buf, len);
    if (bad >= 0) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: invalid UTF-8 at byte %ld", path, bad);
    } else if (memchr(buf, '\0', len)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: contains a NUL byte", path);
    } else {
        const char *end = NULL;
        *out = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1); /* with its NUL */
        if (!*out) {
            int line, col;
            size_t off = end ? (size_t)(end - buf) : 0;
            line_col(buf, off, &line, &col);
            rc = oir_fail(err, OIR_E_FORMAT, "%s: invalid JSON at line %d column %d", path, line,
                          col);
        }
    }
    free(buf);
    return rc;
}

static int load_vocab(tokenizer *t, const char *dir, oir_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    cJSON *root;
    int rc = load_json(path, 0, &root, err);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: expected a JSON object {token: id}", path);
        goto cleanup;
    }
    for (cJSON *e = root->child; e; e = e->next) {
        double v = e->valuedouble;
        if (!cJSON_IsNumber(e) || !(v >= 0 && v <= MAX_ID) || v != (double)(int32_t)v) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: entry \"%.100s\": expected an integer id in [0, %d]",
                          path, e->string, MAX_ID);
            goto cleanup;
        }
        uint32_t s = sym_intern(t, e->string, strlen(e->string));
        if (s == NONE) {
            rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
            goto cleanup;
        }
        if (t->syms[s].id < 0) t->vocab_size++;
        t->syms[s].id = (int32_t)v; /* a repeated key: the last one wins, as in json.load */
    }
    if (t->vocab_size == 0) rc = oir_fail(err, OIR_E_FORMAT, "%s: empty vocabulary", path);
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* Next line of [p, end): universal newlines (\n, \r\n, \r), as Python's text mode. */
static const char *next_line(const char *p, const char *end, const char **line_end) {
    const char *q = p;
    while (q < end && *q != '\n' && *q != '\r') q++;
    *line_end = q;
    if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n') return q + 2;
    return q < end ? q + 1 : end;
}

/* Splits [p, e) on str.isspace() characters (str.split()); up to 3 fields. */
static int split_fields(const char *p, const char *e, const char *fs[3], size_t fl[3]) {
    int n = 0;
    const char *start = NULL;
    while (p <= e) {
        uint32_t cp = 0;
        int k = 1, space = 1;
        if (p < e) {
            k = uc_utf8_decode((const unsigned char *)p, (size_t)(e - p), &cp);
            space = (uc_props_of(cp) & UC_PYSPACE) != 0;
        }
        if (space && start) {
            if (n < 3) fs[n] = start, fl[n] = (size_t)(p - start);
            n++;
            start = NULL;
        } else if (!space && !start) {
            start = p;
        }
        p += k;
    }
    return n;
}

static int load_merges(tokenizer *t, const char *dir, oir_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    char *buf, *cat = NULL;
    size_t len;
    int rc = read_file(path, &buf, &len, NULL, err);
    if (rc) return rc;
    long bad = uc_utf8_invalid_at(buf, len);
    if (bad >= 0) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: invalid UTF-8 at byte %ld", path, bad);
        goto cleanup;
    }
    if (memchr(buf, '\0', len)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: contains a NUL byte", path);
        goto cleanup;
    }
    /* text.strip(): drop leading and trailing str.isspace() characters. */
    const char *p = buf, *end = buf + len;
    while (p < end) {
        uint32_t cp;
        int k = uc_utf8_decode((const unsigned char *)p, (size_t)(end - p), &cp);
        if (!(uc_props_of(cp) & UC_PYSPACE)) break;
        p += k;
    }
    while (end > p) {
        const char *q = end - 1;
        while (q > p && ((unsigned char)*q & 0xC0) == 0x80) q--;
        uint32_t cp;
        uc_utf8_decode((const unsigned char *)q, (size_t)(end - q), &cp);
        if (!(uc_props_of(cp) & UC_PYSPACE)) break;
        end = q;
    }
    /* First line: the "#version" header, skipped as the reference does. */
    const char *le;
    const char *next = next_line(p, end, &le);
    if (p == end || *p != '#') {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: line 1: expected the \"#version\" header, got \"%.40s\"",
                      path, p == end ? "" : p);
        goto cleanup;
    }
    int nlines = 0;
    for (const char *q = next; q < end; q = next_line(q, end, &le)) nlines++;
    if (nlines > MAX_MERGES) nlines = MAX_MERGES;
    uint32_t size = 1024;
    while (size < (uint32_t)nlines * 2) size *= 2;
    t->pairs = malloc((size_t)size * sizeof *t->pairs);
    size_t cat_cap = 256;
    cat = malloc(cat_cap);
    if (!t->pairs || !cat) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    memset(t->pairs, 0xFF, (size_t)size * sizeof *t->pairs);
    t->pair_mask = size - 1;
    const char *q = next;
    for (int rank = 0; rank < nlines; rank++) {
        const char *line = q;
        q = next_line(q, end, &le);
        const char *fs[3];
        size_t fl[3];
        int nf = split_fields(line, le, fs, fl);
        if (nf == 0) continue; /* an empty line keeps its rank, matching nothing */
        if (nf != 2) {
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s: line %d: expected two symbols separated by a space, got %d: \"%.*s\"",
                          path, rank + 2, nf, (int)((le - line) > 60 ? 60 : le - line), line);
            goto cleanup;
        }
        if (grow((void **)&cat, &cat_cap, fl[0] + fl[1] + 1, 1)) goto oom;
        memcpy(cat, fs[0], fl[0]);
        memcpy(cat + fl[0], fs[1], fl[1]);
        uint32_t a = sym_intern(t, fs[0], fl[0]);
        uint32_t b = a == NONE ? NONE : sym_intern(t, fs[1], fl[1]);
        uint32_t m = b == NONE ? NONE : sym_intern(t, cat, fl[0] + fl[1]);
        if (m == NONE) goto oom;
        pair_put(t, a, b, rank, m);
    }
    goto cleanup;
oom:
    rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
cleanup:
    free(cat);
    free(buf);
    return rc;
}

enum { SP_BOS, SP_EOS, SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_N };
static const char *const sp_keys[SP_N] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                          "pad_token", "cls_token", "mask_token"};

typedef struct {
    char *tok[SP_N];
    int set[SP_N]; /* named in a file (possibly null) */
    char *extra[MAX_NOSPLIT];
    int n_extra;
} specials;

static void specials_free(specials *s) {
    for (int i = 0; i < SP_N; i++) free(s->tok[i]);
    for (int i = 0; i < s->n_extra; i++) free(s->extra[i]);
}

/* A special token value: "text", {"content": "text", ...} or null (-> *out NULL). */
static int special_value(const cJSON *v, const char *path, const char *key, char **out,
                         oir_error *err) {
    *out = NULL;
    if (cJSON_IsNull(v)) return OIR_OK;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: \"%s\": expected a non-empty string or {\"content\": string}", path, key);
    *out = strdup(v->valuestring);
    return *out ? OIR_OK : oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
}

/* tokenizer_config.json (init arguments), then special_tokens_map.json (set
 * over them), as PreTrainedTokenizerBase.from_pretrained does. */
static int load_specials(const char *dir, specials *sp, oir_error *err) {
    static const char *const files[2] = {"tokenizer_config.json", "special_tokens_map.json"};
    int rc = OIR_OK;
    for (int f = 0; f < 2 && !rc; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        cJSON *root;
        rc = load_json(path, 1, &root, err);
        if (rc || !root) continue;
        if (!cJSON_IsObject(root)) rc = oir_fail(err, OIR_E_FORMAT, "%s: expected a JSON object", path);
        for (int k = 0; k < SP_N && !rc; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, sp_keys[k]);
            if (!v) continue;
            char *s;
            rc = special_value(v, path, sp_keys[k], &s, err);
            if (rc) break;
            free(sp->tok[k]);
            sp->tok[k] = s;
            sp->set[k] = 1;
        }
        const cJSON *add = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "additional_special_tokens");
        if (add && !cJSON_IsNull(add)) {
            if (!cJSON_IsArray(add)) {
                rc = oir_fail(err, OIR_E_FORMAT, "%s: \"additional_special_tokens\": expected a list",
                              path);
            } else {
                for (int i = 0; i < sp->n_extra; i++) free(sp->extra[i]);
                sp->n_extra = 0;
                for (const cJSON *v = add->child; v && !rc; v = v->next) {
                    if (sp->n_extra == MAX_NOSPLIT) {
                        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                                      "%s: more than %d additional special tokens", path, MAX_NOSPLIT);
                        break;
                    }
                    char *s;
                    rc = special_value(v, path, "additional_special_tokens", &s, err);
                    if (!rc && s) sp->extra[sp->n_extra++] = s;
                }
            }
        }
        cJSON_Delete(root);
    }
    return rc;
}

/* Id of a token string (vocabulary or added), -1 if none. */
static int32_t token_id(const tokenizer *t, const char *s) {
    uint32_t k = sym_find(t, s, strlen(s));
    return k == NONE ? -1 : t->syms[k].id;
}

static int add_nosplit(tokenizer *t, const char *s, int32_t id, const char *what, oir_error *err) {
    size_t n = strlen(s);
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    if (!cp) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    int m = 0;
    for (size_t i = 0; i < n;) {
        int k = uc_utf8_decode((const unsigned char *)s + i, n - i, &cp[m]);
        if (!k) {
            free(cp);
            return oir_fail(err, OIR_E_FORMAT, "tokenizer: %s is not valid UTF-8", what);
        }
        i += (size_t)k;
        m++;
    }
    for (int i = 0; i < t->n_ns; i++) {
        if (t->ns[i].n == m && memcmp(t->ns[i].cp, cp, (size_t)m * sizeof *cp) == 0) {
            free(cp); /* already there */
            return OIR_OK;
        }
    }
    if (t->n_ns == MAX_NOSPLIT) {
        free(cp);
        return oir_fail(err, OIR_E_UNSUPPORTED, "tokenizer: more than %d special and added tokens",
                        MAX_NOSPLIT);
    }
    t->ns[t->n_ns++] = (nosplit){cp, m, id};
    return OIR_OK;
}

/* added_tokens.json: {token: id}, ids continuing the vocabulary. */
static int load_added(tokenizer *t, const char *dir, oir_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/added_tokens.json", dir);
    cJSON *root;
    int rc = load_json(path, 1, &root, err);
    if (rc || !root) return rc;
    if (!cJSON_IsObject(root)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: expected a JSON object {token: id}", path);
        goto cleanup;
    }
    int n = cJSON_GetArraySize(root);
    for (int want = 0; want < n && !rc; want++) { /* in id order */
        const cJSON *e = NULL;
        for (const cJSON *c = root->child; c; c = c->next)
            if (cJSON_IsNumber(c) && c->valuedouble == (double)t->vocab_size) e = c;
        if (!e) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: expected a token with id %d (ids must continue "
                          "the vocabulary)", path, t->vocab_size);
            break;
        }
        if (token_id(t, e->string) >= 0) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: \"%.100s\" is already in vocab.json", path, e->string);
            break;
        }
        uint32_t s = sym_intern(t, e->string, strlen(e->string));
        if (s == NONE) {
            rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
            break;
        }
        t->syms[s].id = t->vocab_size++;
        rc = add_nosplit(t, e->string, t->syms[s].id, path, err);
    }
cleanup:
    cJSON_Delete(root);
    return rc;
}

int tokenizer_load(tokenizer **out, const char *dir, oir_error *err) {
    *out = NULL;
    struct stat st;
    if (!dir || stat(dir, &st) != 0)
        return oir_fail(err, OIR_E_IO, "tokenizer folder %s: %s", dir ? dir : "(null)",
                        dir ? strerror(errno) : "no path");
    if (!S_ISDIR(st.st_mode))
        return oir_fail(err, OIR_E_IO, "tokenizer folder %s: not a folder", dir);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    specials sp = {{0}, {0}, {0}, 0};
    int rc = load_vocab(t, dir, err);
    if (!rc) rc = load_merges(t, dir, err);
    if (!rc) rc = load_specials(dir, &sp, err);
    /* CLIPTokenizer's defaults for arguments not in tokenizer_config.json. */
    static const char *const defaults[SP_N] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
                                               NULL, "<|endoftext|>", NULL, NULL};
    if (!rc) rc = load_added(t, dir, err);
    if (rc) goto cleanup;
    for (int k = 0; k < SP_N; k++) {
        if (!sp.set[k] && defaults[k]) {
            sp.tok[k] = strdup(defaults[k]);
            if (!sp.tok[k]) {
                rc = oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
                goto cleanup;
            }
        }
    }
    for (int k = 0; k < SP_N; k++) {
        if (defaults[k] && !sp.tok[k]) { /* set to null: the reference could not encode or pad */
            rc = oir_fail(err, OIR_E_FORMAT, "tokenizer %s: %s is null", dir, sp_keys[k]);
            goto cleanup;
        }
    }
    /* Special tokens are cut out of the text before anything else. */
    for (int k = 0; k < SP_N + sp.n_extra; k++) {
        const char *s = k < SP_N ? sp.tok[k] : sp.extra[k - SP_N];
        const char *what = k < SP_N ? sp_keys[k] : "additional_special_tokens";
        if (!s) continue;
        int32_t id = token_id(t, s);
        if (id < 0) {
            rc = oir_fail(err, OIR_E_MISSING, "%s/vocab.json: %s \"%.100s\" is not in the vocabulary",
                          dir, what, s);
            goto cleanup;
        }
        rc = add_nosplit(t, s, id, what, err);
        if (rc) goto cleanup;
    }
    t->bos = token_id(t, sp.tok[SP_BOS]);
    t->eos = token_id(t, sp.tok[SP_EOS]);
    t->unk = token_id(t, sp.tok[SP_UNK]);
    t->pad = token_id(t, sp.tok[SP_PAD]);
    /* Byte symbols for bpe(). */
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        int n = uc_utf8_encode(byte_to_unicode(b), s);
        t->byte_sym[b] = sym_find(t, s, (size_t)n);
        memcpy(s + n, "</w>", 4);
        t->byte_sym_end[b] = sym_find(t, s, (size_t)n + 4);
    }
    /* id -> token, the last key of an id winning as in {v: k for k, v in encoder.items()}. */
    for (uint32_t k = 0; k < t->nsyms; k++)
        if (t->syms[k].id >= t->n_ids) t->n_ids = t->syms[k].id + 1;
    t->id_sym = malloc((size_t)(t->n_ids ? t->n_ids : 1) * sizeof *t->id_sym);
    if (!t->id_sym) {
        rc = oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
        goto cleanup;
    }
    memset(t->id_sym, 0xFF, (size_t)(t->n_ids ? t->n_ids : 1) * sizeof *t->id_sym);
    for (uint32_t k = 0; k < t->nsyms; k++)
        if (t->syms[k].id >= 0) t->id_sym[t->syms[k].id] = k;
cleanup:
    specials_free(&sp);
    if (rc) tokenizer_free(t);
    else *out = t;
    return rc;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_ns; i++) free(t->ns[i].cp);
    free(t->pool);
    free(t->syms);
    free(t->slots);
    free(t->pairs);
    free(t->id_sym);
    free(t);
}

int tokenizer_vocab_size(const tokenizer *t) { return t->vocab_size; }
int32_t tokenizer_bos_id(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos_id(const tokenizer *t) { return t->eos; }
int32_t tokenizer_pad_id(const tokenizer *t) { return t->pad; }
int32_t tokenizer_unk_id(const tokenizer *t) { return t->unk; }

const char *tokenizer_token(const tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_ids || t->id_sym[id] == NONE) return NULL;
    return sym_str(t, t->id_sym[id]);
}

/* --------------------------------------------------------------- encoding */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} u32buf;

typedef struct {
    int32_t rank, pos; /* a candidate merge of node pos with its successor */
} bpe_cand;

/* Per-call scratch (the tokenizer itself stays read-only). */
typedef struct {
    const tokenizer *t;
    u32buf cps, clean, low, nfd, piece;
    char *bytes;
    size_t bytes_cap;
    uint32_t *bsym;
    int32_t *bprev, *bnext, *touched;
    bpe_cand *heap;
    size_t bpe_cap;
    int32_t *ids;
    size_t n_ids, ids_cap;
    int oom;
} enc;

static void enc_free(enc *e) {
    free(e->cps.v), free(e->clean.v), free(e->low.v), free(e->nfd.v), free(e->piece.v);
    free(e->bytes), free(e->bsym), free(e->bprev), free(e->bnext), free(e->touched);
    free(e->heap), free(e->ids);
}

static void push(enc *e, u32buf *b, uint32_t cp) {
    if (b->n == b->cap && grow((void **)&b->v, &b->cap, b->n + 1, sizeof *b->v)) {
        e->oom = 1;
        return;
    }
    b->v[b->n++] = cp;
}

static void emit_id(enc *e, int32_t id) {
    if (e->n_ids == e->ids_cap && grow((void **)&e->ids, &e->ids_cap, e->n_ids + 1, sizeof *e->ids)) {
        e->oom = 1;
        return;
    }
    e->ids[e->n_ids++] = id;
}

static int cand_less(bpe_cand x, bpe_cand y) {
    return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void bpe_offer(enc *e, size_t *nh, int32_t i, int32_t j) {
    const pair_slot *p = pair_find(e->t, e->bsym[i], e->bsym[j]);
    if (p) heap_push(e->heap, nh, (bpe_cand){p->rank, i});
}

/* bpe() of one pre-token given as UTF-8 bytes. Each pass of the reference
 * merges, left to right, every occurrence of the lowest-ranked pair present
 * when the pass starts; here a heap ordered by (rank, position) yields those
 * occurrences in order, and the pairs a pass creates join the heap only after
 * it. A merged symbol never re-forms the pair just merged (a+b differs from a
 * and from b), so no occurrence is missed. O(n log n) for a word of n bytes. */
static void bpe_word(enc *e, const unsigned char *s, size_t n) {
    const tokenizer *t = e->t;
    if (n > e->bpe_cap) {
        size_t c = n < 64 ? 64 : n;
        free(e->bsym), free(e->bprev), free(e->bnext), free(e->touched), free(e->heap);
        e->bsym = malloc(c * sizeof *e->bsym);
        e->bprev = malloc(c * sizeof *e->bprev);
        e->bnext = malloc(c * sizeof *e->bnext);
        e->touched = malloc(c * sizeof *e->touched);
        /* size <= n - 1 initial + 2 per merge - 1 popped per merge <= 2n */
        e->heap = malloc(2 * c * sizeof *e->heap);
        e->bpe_cap = c;
        if (!e->bsym || !e->bprev || !e->bnext || !e->touched || !e->heap) {
            e->bpe_cap = 0;
            e->oom = 1;
            return;
        }
    }
    uint32_t *sy = e->bsym;
    int32_t *prev = e->bprev, *next = e->bnext;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        sy[i] = i + 1 == n ? t->byte_sym_end[s[i]] : t->byte_sym[s[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 == n ? -1 : (int32_t)i + 1;
    }
    for (size_t i = 0; i + 1 < n; i++) bpe_offer(e, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh) {
        int32_t rank = e->heap[0].rank;
        size_t nt = 0;
        while (nh && e->heap[0].rank == rank) { /* one pass, ascending positions */
            int32_t i = heap_pop(e->heap, &nh).pos, j = next[i];
            if (prev[i] == -2 || j < 0) continue; /* stale: node merged away or now last */
            const pair_slot *p = pair_find(t, sy[i], sy[j]);
            if (!p || p->rank != rank) continue;  /* stale: the node's symbols changed */
            sy[i] = p->merged;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            prev[j] = -2; /* dead */
            e->touched[nt++] = i;
        }
        for (size_t k = 0; k < nt; k++) {
            int32_t i = e->touched[k];
            if (prev[i] >= 0) bpe_offer(e, &nh, prev[i], i);
            if (next[i] >= 0) bpe_offer(e, &nh, i, next[i]);
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) {
        int32_t id = sy[i] == NONE ? -1 : t->syms[sy[i]].id;
        emit_id(e, id >= 0 ? id : t->unk);
    }
}

/* One match of the CLIP pattern: UTF-8 bytes -> bpe(). */
static void emit_pretoken(enc *e, const uint32_t *cp, size_t n) {
    if (grow((void **)&e->bytes, &e->bytes_cap, 4 * n + 1, 1)) {
        e->oom = 1;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += (size_t)uc_utf8_encode(cp[i], e->bytes + m);
    bpe_word(e, (const unsigned char *)e->bytes, m);
}

/* CLIP's pattern over one word of BasicTokenizer's output. Its first
 * alternatives (<|startoftext|>, <|endoftext|>, 's 't 're 've 'm 'll 'd) never
 * match here: they begin with punctuation, which BasicTokenizer has already
 * split off as a word of its own. A str.isspace() character would have been a
 * separator of the final whitespace_tokenize, so it ends a match too. */
static void clip_pattern(enc *e, const uint32_t *w, size_t n) {
    size_t i = 0;
    while (i < n && !e->oom) {
        unsigned p = uc_props_of(w[i]);
        unsigned cls = (p & UC_PYSPACE) ? 0 : (p & UC_RE_L) ? UC_RE_L : (p & UC_RE_N) ? UC_RE_N
                                                              : (p & UC_RE_O) ? UC_RE_O : 0;
        if (!cls) {
            i++;
            continue;
        }
        size_t j = i + 1;
        if (cls != UC_RE_N)
            while (j < n && (uc_props_of(w[j]) & (cls | UC_PYSPACE)) == cls) j++;
        emit_pretoken(e, w + i, j - i);
        i = j;
    }
}

/* Final_Sigma of CPython's str.lower(): U+03A3 at w[i] becomes U+03C2 when a
 * cased letter precedes it and none follows (skipping case-ignorables). */
static int final_sigma(const uint32_t *w, size_t n, size_t i) {
    size_t j = i;
    unsigned p = 0;
    while (j > 0) {
        p = uc_props_of(w[--j]);
        if (!(p & UC_CASE_IGN)) break;
        p = 0;
    }
    if (!(p & UC_CASED)) return 0;
    for (j = i + 1; j < n; j++) {
        p = uc_props_of(w[j]);
        if (!(p & UC_CASE_IGN)) return !(p & UC_CASED);
    }
    return 1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Canonical ordering of NFD: stable sort by combining class within each run
 * of non-zero classes. */
static void canonical_order(enc *e, uint32_t *v, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (!uc_ccc_of(v[i])) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && uc_ccc_of(v[j])) j++;
        if (j - i <= 32) {
            for (size_t a = i + 1; a < j; a++) {
                uint32_t x = v[a];
                unsigned cx = uc_ccc_of(x);
                size_t b = a;
                while (b > i && uc_ccc_of(v[b - 1]) > cx) v[b] = v[b - 1], b--;
                v[b] = x;
            }
        } else {
            uint64_t *k = malloc((j - i) * sizeof *k);
            if (!k) {
                e->oom = 1;
                return;
            }
            for (size_t a = i; a < j; a++) /* class, position, code point: unique keys */
                k[a - i] = ((uint64_t)uc_ccc_of(v[a]) << 53) | ((uint64_t)(a - i) << 21) | v[a];
            qsort(k, j - i, sizeof *k, cmp_u64);
            for (size_t a = i; a < j; a++) v[a] = (uint32_t)(k[a - i] & 0x1FFFFF);
            free(k);
        }
        i = j;
    }
}

/* One word of whitespace_tokenize: lower(), _run_strip_accents (NFD, drop Mn),
 * _run_split_on_punc, then the CLIP pattern on each resulting word. */
static void basic_word(enc *e, const uint32_t *w, size_t n) {
    e->low.n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l[3];
        int k = 1;
        if (w[i] == 0x3A3) l[0] = final_sigma(w, n, i) ? 0x3C2 : 0x3C3;
        else k = uc_lower_of(w[i], l);
        for (int a = 0; a < k; a++) push(e, &e->low, l[a]);
    }
    e->nfd.n = 0;
    for (size_t i = 0; i < e->low.n; i++) {
        uint32_t d[16];
        int k = uc_decompose(e->low.v[i], d);
        for (int a = 0; a < k; a++) push(e, &e->nfd, d[a]);
    }
    if (e->oom) return;
    canonical_order(e, e->nfd.v, e->nfd.n);
    e->piece.n = 0;
    for (size_t i = 0; i < e->nfd.n && !e->oom; i++) {
        uint32_t c = e->nfd.v[i];
        unsigned p = uc_props_of(c);
        if (p & UC_MN) continue;
        if (p & UC_PUNCT) {
            clip_pattern(e, e->piece.v, e->piece.n);
            e->piece.n = 0;
            clip_pattern(e, &c, 1);
        } else {
            push(e, &e->piece, c);
        }
    }
    clip_pattern(e, e->piece.v, e->piece.n);
}

/* BasicTokenizer.tokenize + CLIP's _tokenize on text between special tokens. */
static void basic_chunk(enc *e, const uint32_t *c, size_t n) {
    e->clean.n = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned p = uc_props_of(c[i]);
        if (p & UC_DROP) continue;            /* _clean_text */
        if (p & UC_BWS) {
            push(e, &e->clean, ' ');
        } else if (p & UC_CJK) {              /* _tokenize_chinese_chars */
            push(e, &e->clean, ' ');
            push(e, &e->clean, c[i]);
            push(e, &e->clean, ' ');
        } else {
            push(e, &e->clean, c[i]);
        }
    }
    const uint32_t *v = e->clean.v;
    size_t m = e->clean.n, i = 0;
    while (i < m && !e->oom) {                /* whitespace_tokenize: str.split() */
        while (i < m && (uc_props_of(v[i]) & UC_PYSPACE)) i++;
        size_t j = i;
        while (j < m && !(uc_props_of(v[j]) & UC_PYSPACE)) j++;
        if (j > i) basic_word(e, v + i, j - i);
        i = j;
    }
}

/* tokenize(): cut special/added tokens out (leftmost, longest), the rest
 * through basic_chunk; appends ids to e->ids. */
static int encode_all(enc *e, const char *text, oir_error *err) {
    const tokenizer *t = e->t;
    if (!text) return oir_fail(err, OIR_E_ARG, "tokenizer: text is NULL");
    size_t len = strlen(text);
    if (len > TOKENIZER_MAX_TEXT_BYTES)
        return oir_fail(err, OIR_E_ARG, "tokenizer: text of %zu bytes, at most %u", len,
                        TOKENIZER_MAX_TEXT_BYTES);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = uc_utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (!k)
            return oir_fail(err, OIR_E_ARG, "tokenizer: text is not valid UTF-8 (byte %zu: 0x%02X)",
                            i, (unsigned char)text[i]);
        push(e, &e->cps, cp);
        i += (size_t)k;
    }
    const uint32_t *c = e->cps.v;
    size_t n = e->cps.n, start = 0, i = 0;
    if (n == 0 || e->oom) return e->oom ? oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory") : OIR_OK;
    while (i < n && !e->oom) {
        int best = -1;
        for (int k = 0; k < t->n_ns; k++) {
            const nosplit *s = &t->ns[k];
            if ((size_t)s->n <= n - i && c[i] == s->cp[0] &&
                memcmp(c + i, s->cp, (size_t)s->n * sizeof *c) == 0 &&
                (best < 0 || s->n > t->ns[best].n))
                best = k;
        }
        if (best < 0) {
            i++;
            continue;
        }
        basic_chunk(e, c + start, i - start);
        emit_id(e, t->ns[best].id);
        i += (size_t)t->ns[best].n;
        start = i;
    }
    basic_chunk(e, c + start, n - start);
    if (e->oom) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    return OIR_OK;
}

int tokenizer_tokenize(const tokenizer *tok, const char *text, int32_t **ids_out, int *n_out,
                       oir_error *err) {
    *ids_out = NULL;
    *n_out = 0;
    enc e = {.t = tok};
    int rc = encode_all(&e, text, err);
    if (!rc && e.n_ids) {
        *ids_out = e.ids;
        *n_out = (int)e.n_ids;
        e.ids = NULL;
    }
    enc_free(&e);
    return rc;
}

int tokenizer_encode(const tokenizer *tok, const char *text, int max_len, int32_t *ids_out,
                     int *n_tokens_out, int *truncated_out, oir_error *err) {
    if (max_len < 3)
        return oir_fail(err, OIR_E_ARG, "tokenizer: max_len %d, expected at least 3", max_len);
    enc e = {.t = tok};
    int rc = encode_all(&e, text, err);
    if (!rc) {
        size_t keep = e.n_ids < (size_t)max_len - 2 ? e.n_ids : (size_t)max_len - 2;
        ids_out[0] = tok->bos;
        if (keep) memcpy(ids_out + 1, e.ids, keep * sizeof *ids_out);
        ids_out[keep + 1] = tok->eos;
        for (size_t i = keep + 2; i < (size_t)max_len; i++) ids_out[i] = tok->pad;
        if (n_tokens_out) *n_tokens_out = (int)e.n_ids + 2;
        if (truncated_out) *truncated_out = keep < e.n_ids;
    }
    enc_free(&e);
    return rc;
}

int tokenizer_find_phrase(const tokenizer *tok, const char *prompt, const char *phrase,
                          int max_len, int *pos_out, int *len_out, oir_error *err) {
    int32_t *ids = NULL, *ph = NULL;
    int n_total, n_ph, rc;
    if (max_len < 3)
        return oir_fail(err, OIR_E_ARG, "tokenizer: max_len %d, expected at least 3", max_len);
    ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    rc = tokenizer_encode(tok, prompt, max_len, ids, &n_total, NULL, err);
    if (!rc) rc = tokenizer_tokenize(tok, phrase, &ph, &n_ph, err);
    if (rc) goto cleanup;
    if (n_ph == 0) {
        rc = oir_fail(err, OIR_E_ARG, "tokenizer: phrase \"%.200s\" has no tokens", phrase);
        goto cleanup;
    }
    int kept = (n_total < max_len ? n_total : max_len) - 2; /* ids[1 .. kept] */
    for (int p = 1; p + n_ph <= kept + 1; p++) {
        if (memcmp(ids + p, ph, (size_t)n_ph * sizeof *ph) == 0) {
            *pos_out = p;
            *len_out = n_ph;
            goto cleanup;
        }
    }
    rc = oir_fail(err, OIR_E_ARG, "tokenizer: phrase \"%.200s\" not found in the%s tokens of "
                  "prompt \"%.200s\"", phrase, n_total > max_len ? " kept" : "", prompt);
cleanup:
    free(ids);
    free(ph);
    return rc;
}
