/* CLIP BPE tokenizer: encoding, in parity with transformers 4.26.1's slow
 * CLIPTokenizer (see tokenizer.h for the modes). Function names follow the
 * Python: clean_text, tokenize_chinese_chars, whitespace_tokenize,
 * run_strip_accents, run_split_on_punc (BasicTokenizer, hf-no-ftfy), then
 * the CLIP pattern and bpe(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/text_fix.h"
#include "models/tokenizer_impl.h"
#include "models/unicode.h"

/* --------------------------------------------------------------- encoding */

typedef tf_buf u32buf;

typedef struct {
    int32_t rank, pos; /* a candidate merge of node pos with its successor */
} bpe_cand;

/* Per-call scratch (the tokenizer itself stays read-only). */
typedef struct {
    const tokenizer *t;
    u32buf cps, clean, low, nfd, piece, fix, fix2;
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
    free(e->fix.v), free(e->fix2.v);
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
    if (e->oom || tf_canonical_order(e->nfd.v, e->nfd.n)) {
        e->oom = 1;
        return;
    }
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

/* ------------------------------------------------ clip and openai modes */

/* Whether w[i..] starts with the lower-case ASCII literal lit under the
 * regex module's IGNORECASE (simple case folding): besides upper case, only
 * U+017F (long s) folds to one of the literals' letters. */
static int match_ci(const uint32_t *w, size_t n, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++, i++) {
        uint32_t l = (unsigned char)lit[k];
        if (i >= n) return 0;
        if (w[i] == l || (l >= 'a' && l <= 'z' && w[i] == l - 32) || (l == 's' && w[i] == 0x17F))
            continue;
        return 0;
    }
    return 1;
}

/* One match of the pattern. CLIPTokenizer.bpe's cache starts out holding
 * <|startoftext|> and <|endoftext|>, so those exact pieces are one token. */
static void emit_match(enc *e, const uint32_t *w, size_t n) {
    static const char *const cached[2] = {"<|startoftext|>", "<|endoftext|>"};
    for (int k = 0; k < 2; k++) {
        size_t len = strlen(cached[k]), i = 0;
        while (i < len && i < n && w[i] == (unsigned char)cached[k][i]) i++;
        if (i == len && n == len) {
            uint32_t s = sym_find(e->t, cached[k], len);
            int32_t id = s == NONE ? -1 : e->t->syms[s].id;
            emit_id(e, id >= 0 ? id : e->t->unk);
            return;
        }
    }
    emit_pretoken(e, w, n);
}

/* re.findall(CLIPTokenizer.pat, text): at each position the first
 * alternative that matches, left to right; a position none matches (\s, and
 * the odd character that IGNORECASE puts in neither class, e.g. U+0345) is
 * skipped. */
static void clip_findall(enc *e, const uint32_t *w, size_t n) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t i = 0;
    while (i < n && !e->oom) {
        size_t len = 0;
        if (match_ci(w, n, i, "<|startoftext|>")) len = 15;
        else if (match_ci(w, n, i, "<|endoftext|>")) len = 13;
        for (int k = 0; !len && w[i] == '\'' && k < 7; k++)
            if (match_ci(w, n, i, contractions[k])) len = strlen(contractions[k]);
        if (!len) {
            unsigned p = uc_props_of(w[i]);
            unsigned cls = (p & UC_RE_L) ? UC_RE_L : (p & UC_RE_N) ? UC_RE_N : (p & UC_RE_O) ? UC_RE_O : 0;
            if (!cls) {
                i++;
                continue;
            }
            len = 1;
            if (cls != UC_RE_N)
                while (i + len < n && (uc_props_of(w[i + len]) & cls)) len++;
        }
        emit_match(e, w + i, len);
        i += len;
    }
}

/* Drops leading and trailing str.isspace() characters of b (str.strip()). */
static void strip_pyspace(u32buf *b) {
    size_t a = 0, z = b->n;
    while (a < z && (uc_props_of(b->v[a]) & UC_PYSPACE)) a++;
    while (z > a && (uc_props_of(b->v[z - 1]) & UC_PYSPACE)) z--;
    if (a) memmove(b->v, b->v + a, (z - a) * sizeof *b->v);
    b->n = z - a;
}

/* CLIPTokenizer._tokenize with ftfy: whitespace_clean(fix_text(text)).lower(),
 * then the pattern; the openai mode unescapes HTML twice and strips first,
 * as openai CLIP's basic_clean. */
static void clip_chunk(enc *e, const uint32_t *c, size_t n) {
    if (text_fix_ftfy(&e->fix, c, n)) {
        e->oom = 1;
        return;
    }
    if (e->t->mode == TOKENIZER_OPENAI) {
        if (text_fix_html_unescape(&e->fix2, e->fix.v, e->fix.n) ||
            text_fix_html_unescape(&e->fix, e->fix2.v, e->fix2.n)) {
            e->oom = 1;
            return;
        }
        strip_pyspace(&e->fix);
    }
    e->clean.n = 0; /* whitespace_clean: re.sub(r"\s+", " ") (regex's \s), strip() */
    int in_space = 0;
    for (size_t i = 0; i < e->fix.n; i++) {
        uint32_t x = e->fix.v[i];
        int space = (uc_props_of(x) & UC_RE_S) != 0;
        if (!space) push(e, &e->clean, x);
        else if (!in_space) push(e, &e->clean, ' ');
        in_space = space;
    }
    strip_pyspace(&e->clean);
    e->low.n = 0; /* str.lower() of the whole text, Final_Sigma included */
    for (size_t i = 0; i < e->clean.n; i++) {
        uint32_t l[3];
        int k = 1;
        if (e->clean.v[i] == 0x3A3) l[0] = final_sigma(e->clean.v, e->clean.n, i) ? 0x3C2 : 0x3C3;
        else k = uc_lower_of(e->clean.v[i], l);
        for (int a = 0; a < k; a++) push(e, &e->low, l[a]);
    }
    if (!e->oom) clip_findall(e, e->low.v, e->low.n);
}

static void chunk(enc *e, const uint32_t *c, size_t n) {
    if (e->t->mode == TOKENIZER_HF_NO_FTFY) basic_chunk(e, c, n);
    else clip_chunk(e, c, n);
}

/* tokenize(): cut special/added tokens out (leftmost, longest), the rest
 * through chunk; appends ids to e->ids. */
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
        chunk(e, c + start, i - start);
        emit_id(e, t->ns[best].id);
        i += (size_t)t->ns[best].n;
        start = i;
    }
    chunk(e, c + start, n - start);
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
