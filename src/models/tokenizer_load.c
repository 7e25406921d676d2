/* Loading the CLIP tokenizer: a Hugging Face tokenizer folder, or the
 * vocabulary built into the library (tokenizer.h). Parsing follows
 * transformers 4.26.1's CLIPTokenizer.__init__ and from_pretrained. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/file.h"
#include "io/json.h"
#include "models/tokenizer_impl.h"
#include "models/unicode.h"

/* The reference reads merges.txt lines [1 : 49152 - 256 - 2 + 1]. */
#define MAX_MERGES (49152 - 256 - 2)
#define MAX_ID ((1 << 24) - 1)

/* bytes_to_unicode(): the printable stand-in code point of each byte. */
static uint32_t byte_to_unicode(unsigned b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned n = 0; /* rank of b among the remaining bytes */
    for (unsigned x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256 + n;
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

/* Later duplicates win, as in dict(zip(merges, ranks)). */
static void pair_put(tokenizer *t, uint32_t a, uint32_t b, int32_t rank, uint32_t merged) {
    uint32_t i = (uint32_t)hash_pair(a, b) & t->pair_mask;
    while (t->pairs[i].a != NONE && !(t->pairs[i].a == a && t->pairs[i].b == b))
        i = (i + 1) & t->pair_mask;
    t->pairs[i] = (pair_slot){a, b, rank, merged};
}

/* ---------------------------------------------------------------- loading */

/* Reads a whole regular file, NUL-terminated (a FIFO or device is refused
 * before it is opened for reading, so it cannot block). *absent (optional)
 * is set when the file does not exist. */
static int read_file(const char *path, char **buf, size_t *len, int *absent, oir_error *err) {
    *buf = NULL;
    if (absent) {
        struct stat sb;
        *absent = stat(path, &sb) != 0 && errno == ENOENT;
        if (*absent) return OIR_OK;
    }
    return file_read_regular(path, (size_t)256 << 20, "a tokenizer file", buf, len, err);
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
        rc = json_parse(out, buf, len, path, err); /* duplicate keys refused too */
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

/* The merges of a merges.txt text (path names it in messages). first_id >= 0
 * (the built-in vocabulary): merge r's result also becomes token id
 * first_id + r, as openai CLIP derives its vocabulary. */
static int parse_merges(tokenizer *t, const char *path, const char *buf, size_t len,
                        int32_t first_id, oir_error *err) {
    char *cat = NULL;
    int rc = OIR_OK;
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
        if (first_id >= 0) { /* dict(zip(vocab, range(len(vocab)))): a later duplicate wins */
            if (t->syms[m].id < 0) t->vocab_size++;
            t->syms[m].id = first_id + rank;
        }
    }
    goto cleanup;
oom:
    rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
cleanup:
    free(cat);
    return rc;
}

static int load_merges(tokenizer *t, const char *dir, oir_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len, NULL, err);
    if (rc) return rc;
    rc = parse_merges(t, path, buf, len, -1, err);
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

/* CLIPTokenizer's defaults for arguments not in tokenizer_config.json. */
static const char *const sp_defaults[SP_N] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
                                              NULL, "<|endoftext|>", NULL, NULL};

/* After the vocabulary, merges and added tokens: the special tokens (cut out
 * of the text before anything else), byte symbols and id -> token. `where`
 * names the vocabulary in messages. */
static int finish(tokenizer *t, specials *sp, const char *where, oir_error *err) {
    for (int k = 0; k < SP_N; k++) {
        if (!sp->set[k] && sp_defaults[k]) {
            sp->tok[k] = strdup(sp_defaults[k]);
            if (!sp->tok[k]) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
        }
    }
    for (int k = 0; k < SP_N; k++) /* set to null: the reference could not encode or pad */
        if (sp_defaults[k] && !sp->tok[k])
            return oir_fail(err, OIR_E_FORMAT, "tokenizer %s: %s is null", where, sp_keys[k]);
    for (int k = 0; k < SP_N + sp->n_extra; k++) {
        const char *s = k < SP_N ? sp->tok[k] : sp->extra[k - SP_N];
        const char *what = k < SP_N ? sp_keys[k] : "additional_special_tokens";
        if (!s) continue;
        int32_t id = token_id(t, s);
        if (id < 0)
            return oir_fail(err, OIR_E_MISSING, "%s/vocab.json: %s \"%.100s\" is not in the vocabulary",
                            where, what, s);
        int rc = add_nosplit(t, s, id, what, err);
        if (rc) return rc;
    }
    t->bos = token_id(t, sp->tok[SP_BOS]);
    t->eos = token_id(t, sp->tok[SP_EOS]);
    t->unk = token_id(t, sp->tok[SP_UNK]);
    t->pad = token_id(t, sp->tok[SP_PAD]);
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
    if (!t->id_sym) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    memset(t->id_sym, 0xFF, (size_t)(t->n_ids ? t->n_ids : 1) * sizeof *t->id_sym);
    for (uint32_t k = 0; k < t->nsyms; k++)
        if (t->syms[k].id >= 0) t->id_sym[t->syms[k].id] = k;
    t->mode = TOKENIZER_CLIP;
    snprintf(t->source, sizeof t->source, "%s", where);
    return OIR_OK;
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
    if (!rc) rc = load_added(t, dir, err);
    if (!rc) rc = finish(t, &sp, dir, err);
    specials_free(&sp);
    if (rc) tokenizer_free(t);
    else *out = t;
    return rc;
}

/* openai CLIP's SimpleTokenizer.__init__: the vocabulary is bytes_to_unicode()
 * in its order, the same with "</w>", each merge joined, then the two
 * special tokens. */
int tokenizer_load_builtin(tokenizer **out, oir_error *err) {
    *out = NULL;
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
    specials sp = {{0}, {0}, {0}, 0};
    int rc = OIR_OK;
    uint32_t order[256];
    int n = 0;
    for (unsigned b = 0; b < 256; b++) /* the printable bytes first, as bytes_to_unicode lists them */
        if (byte_to_unicode(b) == b) order[n++] = b;
    for (unsigned b = 0; b < 256; b++)
        if (byte_to_unicode(b) != b) order[n++] = b;
    for (int i = 0; i < 512 && !rc; i++) {
        char s[8];
        int k = uc_utf8_encode(byte_to_unicode(order[i % 256]), s);
        if (i >= 256) memcpy(s + k, "</w>", 4), k += 4;
        uint32_t sym = sym_intern(t, s, (size_t)k);
        if (sym == NONE) rc = oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
        else t->syms[sym].id = i, t->vocab_size++;
    }
    size_t len;
    const char *merges = tokenizer_builtin_merges(&len);
    if (!rc) rc = parse_merges(t, TOKENIZER_BUILTIN_NAME " (merges.txt)", merges, len, 512, err);
    static const char *const sp_tokens[2] = {"<|startoftext|>", "<|endoftext|>"};
    for (int i = 0; i < 2 && !rc; i++) {
        uint32_t sym = sym_intern(t, sp_tokens[i], strlen(sp_tokens[i]));
        if (sym == NONE) rc = oir_fail(err, OIR_E_NOMEM, "tokenizer: out of memory");
        else t->syms[sym].id = 512 + MAX_MERGES + i, t->vocab_size++;
    }
    if (!rc && t->vocab_size != 512 + MAX_MERGES + 2)
        rc = oir_fail(err, OIR_E_INTERNAL, "%s: %d tokens, expected %d", TOKENIZER_BUILTIN_NAME,
                      t->vocab_size, 512 + MAX_MERGES + 2);
    if (!rc) rc = finish(t, &sp, TOKENIZER_BUILTIN_NAME, err);
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

const char *tokenizer_source(const tokenizer *t) { return t->source; }

void tokenizer_set_mode(tokenizer *t, tokenizer_mode mode) { t->mode = mode; }
tokenizer_mode tokenizer_get_mode(const tokenizer *t) { return t->mode; }

static const char *const mode_names[TOKENIZER_N_MODES] = {"clip", "openai", "hf-no-ftfy"};

const char *tokenizer_mode_name(tokenizer_mode mode) {
    return (unsigned)mode < TOKENIZER_N_MODES ? mode_names[mode] : "?";
}

int tokenizer_mode_parse(const char *name, tokenizer_mode *out, oir_error *err) {
    for (int i = 0; name && i < TOKENIZER_N_MODES; i++) {
        if (!strcmp(name, mode_names[i])) {
            *out = (tokenizer_mode)i;
            return OIR_OK;
        }
    }
    return oir_fail(err, OIR_E_ARG, "tokenizer mode \"%.100s\": expected clip, openai or hf-no-ftfy",
                    name ? name : "(null)");
}
