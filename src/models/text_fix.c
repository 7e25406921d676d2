/* ftfy's fix_text (less fix_encoding), html.unescape and NFC on code point
 * arrays; see text_fix.h. Names follow ftfy 6.1.1 (ftfy/__init__.py,
 * ftfy/fixes.py) and CPython's html/__init__.py. */
#include "models/text_fix.h"

#include <stdlib.h>
#include <string.h>

#include "models/unicode.h"

/* ftfy's TextFixerConfig.max_decode_length. */
#define FTFY_MAX_SEGMENT 1000000
/* fix_and_explain repeats its fixes until the text stops changing; no text
 * needs more than a few rounds, this only bounds a pathological one. */
#define FTFY_MAX_ROUNDS 64

/* ------------------------------------------------------------ buffers */

static int reserve(tf_buf *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t c = b->cap ? b->cap : 64;
    while (c < need) c *= 2;
    uint32_t *v = realloc(b->v, c * sizeof *v);
    if (!v) return -1;
    b->v = v;
    b->cap = c;
    return 0;
}

int tf_push(tf_buf *b, uint32_t cp) {
    if (b->n == b->cap && reserve(b, b->n + 1)) return -1;
    b->v[b->n++] = cp;
    return 0;
}

static int push_all(tf_buf *b, const uint32_t *v, size_t n) {
    if (reserve(b, b->n + n)) return -1;
    if (n) memcpy(b->v + b->n, v, n * sizeof *v);
    b->n += n;
    return 0;
}

/* Appends the code points of a (valid) UTF-8 table string. */
static int push_utf8(tf_buf *b, const char *s) {
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = uc_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (k <= 0 || tf_push(b, cp)) return -1;
        i += (size_t)k;
    }
    return 0;
}

void tf_buf_free(tf_buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static int in_ranges(const uint32_t (*r)[2], int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid - 1;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static const char *char_map(const tf_char_map *m, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < m[mid].cp) hi = mid - 1;
        else if (cp > m[mid].cp) lo = mid + 1;
        else return m[mid].to;
    }
    return NULL;
}

/* ---------------------------------------------------------------- NFC */

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, NL = 19, NV = 21,
           NT = 28 };
    if (a >= LBASE && a < LBASE + NL && b >= VBASE && b < VBASE + NV)
        return SBASE + ((a - LBASE) * NV + (b - VBASE)) * NT;
    if (a >= SBASE && a < SBASE + 11172 && (a - SBASE) % NT == 0 && b > TBASE && b < TBASE + NT)
        return a + (b - TBASE);
    int lo = 0, hi = tf_compose_len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const tf_compose *c = &tf_compose_pairs[mid];
        if (a < c->first || (a == c->first && b < c->second)) hi = mid - 1;
        else if (a > c->first || b > c->second) lo = mid + 1;
        else return c->composite;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Canonical ordering: stable sort by combining class within each run of
 * non-zero classes. */
int tf_canonical_order(uint32_t *v, size_t n) {
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
            if (!k) return -1;
            for (size_t a = i; a < j; a++) /* class, position, code point: unique keys */
                k[a - i] = ((uint64_t)uc_ccc_of(v[a]) << 53) | ((uint64_t)(a - i) << 21) | v[a];
            qsort(k, j - i, sizeof *k, cmp_u64);
            for (size_t a = i; a < j; a++) v[a] = (uint32_t)(k[a - i] & 0x1FFFFF);
            free(k);
        }
        i = j;
    }
    return 0;
}

/* NFD, canonical order, then canonical composition (UAX #15): a character
 * joins the last starter unless a character between them has a class >= its
 * own (or it is a starter not adjacent to it). */
int text_fix_nfc(tf_buf *out, const uint32_t *in, size_t n) {
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d[16];
        int k = uc_decompose(in[i], d);
        if (push_all(out, d, (size_t)k)) return -1;
    }
    if (tf_canonical_order(out->v, out->n)) return -1;
    uint32_t *v = out->v;
    size_t m = 0, starter = 0;
    int have_starter = 0;
    unsigned last_class = 0;
    for (size_t i = 0; i < out->n; i++) {
        uint32_t c = v[i];
        unsigned cls = uc_ccc_of(c);
        if (have_starter && (last_class < cls || (last_class == 0 && m == starter + 1))) {
            uint32_t comp = compose_pair(v[starter], c);
            if (comp) {
                v[starter] = comp;
                continue;
            }
        }
        if (cls == 0) {
            starter = m;
            have_starter = 1;
        }
        last_class = cls;
        v[m++] = c;
    }
    out->n = m;
    return 0;
}

/* -------------------------------------------------------- html.unescape */

static int is_ascii_alnum(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int hex_val(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Value of an entity name (code points, ASCII only) in a sorted table, or NULL. */
static const char *entity_find(const tf_entity *t, int len, const uint32_t *name, size_t n) {
    char key[40];
    if (n >= sizeof key) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == 0 || name[i] > 0x7E) return NULL;
        key[i] = (char)name[i];
    }
    key[n] = '\0';
    int lo = 0, hi = len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(key, t[mid].name);
        if (c < 0) hi = mid - 1;
        else if (c > 0) lo = mid + 1;
        else return t[mid].value;
    }
    return NULL;
}

/* html._replace_charref for a numeric reference; num saturates above
 * 0x10FFFF. Appends 0 or 1 code point. */
static int push_charref(tf_buf *b, uint64_t num) {
    for (int i = 0; i < tf_invalid_charrefs_len; i++)
        if (tf_invalid_charrefs[i][0] == num) return tf_push(b, tf_invalid_charrefs[i][1]);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return tf_push(b, 0xFFFD);
    for (int i = 0; i < tf_invalid_codepoints_len; i++)
        if (tf_invalid_codepoints[i] == num) return 0;
    return tf_push(b, (uint32_t)num);
}

/* A numeric reference at s[i] == '#' (after '&'), as html's _charref
 * pattern reads it: "#[0-9]+;?" or "#[xX][0-9a-fA-F]+;?". Returns the length
 * matched from s[i] (0: no match) and its value in *num (saturated). */
static size_t numeric_ref(const uint32_t *s, size_t i, size_t n, uint64_t *num) {
    size_t j = i + 1;
    int base = 10;
    if (j < n && (s[j] == 'x' || s[j] == 'X') && j + 1 < n && hex_val(s[j + 1]) >= 0) base = 16, j++;
    size_t start = j;
    uint64_t v = 0;
    while (j < n && (base == 16 ? hex_val(s[j]) >= 0 : (s[j] >= '0' && s[j] <= '9'))) {
        v = v * (uint64_t)base + (uint64_t)hex_val(s[j]);
        if (v > 0x110000) v = 0x110000; /* saturate: anything above 0x10FFFF is U+FFFD */
        j++;
    }
    if (j == start) return 0;
    if (j < n && s[j] == ';') j++;
    *num = v;
    return j - i;
}

static int html_break(uint32_t c) { /* [\t\n\f <&#;] */
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
           c == ';';
}

int text_fix_html_unescape(tf_buf *out, const uint32_t *s, size_t n) {
    out->n = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&' || i + 1 >= n) {
            if (tf_push(out, s[i++])) return -1;
            continue;
        }
        size_t p = i + 1, len;
        uint64_t num;
        if (s[p] == '#') {
            len = numeric_ref(s, p, n, &num);
            if (!len) { /* no match at this '&' */
                if (tf_push(out, s[i++])) return -1;
                continue;
            }
            if (push_charref(out, num)) return -1;
            i = p + len;
            continue;
        }
        size_t q = p; /* [^\t\n\f <&#;]{1,32};? */
        while (q < n && q - p < 32 && !html_break(s[q])) q++;
        if (q == p) {
            if (tf_push(out, s[i++])) return -1;
            continue;
        }
        if (q < n && s[q] == ';' && q - p <= 32) q++;
        len = q - p; /* the name s[p, q) */
        const char *v = entity_find(tf_html5, tf_html5_len, s + p, len);
        size_t used = len;
        for (size_t x = len - 1; !v && x >= 2; x--) { /* longest prefix: legacy names */
            v = entity_find(tf_html5, tf_html5_len, s + p, x);
            if (v) used = x;
        }
        if (!v) { /* '&' + the name, unchanged */
            if (push_all(out, s + i, q - i)) return -1;
        } else if (push_utf8(out, v) || push_all(out, s + p + used, len - used)) {
            return -1;
        }
        i = q;
    }
    return 0;
}

/* --------------------------------------------------------------- ftfy */

/* fixes.unescape_html: "&#?[0-9A-Za-z]{1,24};" -> HTML_ENTITIES, or for
 * "&#..." html.unescape of the match unless that leaves a ";" behind. */
static int unescape_html(tf_buf *out, const uint32_t *s, size_t n) {
    out->n = 0;
    size_t i = 0;
    while (i < n) {
        size_t p = i + 1;
        int hash = 0;
        if (s[i] == '&' && p < n && s[p] == '#') p++, hash = 1;
        size_t q = p;
        while (s[i] == '&' && q < n && q - p < 25 && is_ascii_alnum(s[q])) q++;
        if (s[i] != '&' || q == p || q - p > 24 || q >= n || s[q] != ';') {
            if (tf_push(out, s[i++])) return -1;
            continue;
        }
        size_t end = q + 1; /* the match is s[i, end) */
        const char *v = NULL;
        if (!hash) { /* "&name;": html5 names with ";", and ftfy's upper-case ones */
            v = entity_find(tf_html5, tf_html5_len, s + p, end - p);
            if (!v) v = entity_find(tf_ftfy_upper, tf_ftfy_upper_len, s + p, end - p);
            if (v ? push_utf8(out, v) : push_all(out, s + i, end - i)) return -1;
            i = end;
            continue;
        }
        uint64_t num;
        size_t len = numeric_ref(s, p - 1, end, &num);
        size_t mark = out->n;
        /* html.unescape(match): the reference, then the rest of the match as is */
        if (len && push_charref(out, num)) return -1;
        int semi = 0;
        for (size_t k = mark; k < out->n; k++) semi |= out->v[k] == ';';
        if (!len || semi || p - 1 + len < end) { /* a ";" left (or no reference): unchanged */
            out->n = mark;
            if (push_all(out, s + i, end - i)) return -1;
        }
        i = end;
    }
    return 0;
}

static int is_re_digit(uint32_t c) { return in_ranges(tf_re_digit, tf_re_digit_len, c); }

/* One round of fix_and_explain's fixers after unescape_html (and the
 * skipped fix_encoding), each over the whole text in ftfy's order. */
static int fix_round(tf_buf *a, tf_buf *b) {
    /* fix_c1_controls, fix_latin_ligatures, fix_character_width and
     * uncurl_quotes are per-character maps: applied in turn to each. */
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->v[i];
        if (c >= 0x80 && c <= 0x9F) c = tf_c1_map[c - 0x80];
        const char *lig = char_map(tf_ligatures, tf_ligatures_len, c);
        tf_buf one = {0};
        uint32_t tmp[4];
        size_t nt = 0;
        if (lig) { /* then the width and quote maps apply to what it expands to (U+02BC n -> 'n) */
            if (push_utf8(&one, lig)) return -1;
            nt = one.n < 4 ? one.n : 4;
            memcpy(tmp, one.v, nt * sizeof *tmp);
            tf_buf_free(&one);
        } else {
            tmp[nt++] = c;
        }
        for (size_t k = 0; k < nt; k++) {
            uint32_t x = tmp[k];
            const char *w = char_map(tf_width, tf_width_len, x);
            if (w) {
                size_t mark = b->n;
                if (push_utf8(b, w)) return -1;
                for (size_t j = mark; j < b->n; j++) { /* width results may be quotes */
                    if (in_ranges(tf_double_quotes, tf_double_quotes_len, b->v[j])) b->v[j] = '"';
                    else if (in_ranges(tf_single_quotes, tf_single_quotes_len, b->v[j])) b->v[j] = '\'';
                }
                continue;
            }
            if (in_ranges(tf_double_quotes, tf_double_quotes_len, x)) x = '"';
            else if (in_ranges(tf_single_quotes, tf_single_quotes_len, x)) x = '\'';
            if (tf_push(b, x)) return -1;
        }
    }
    /* fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n */
    a->n = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        if (c == '\r' && i + 1 < b->n && b->v[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        if (tf_push(a, c)) return -1;
    }
    /* remove_terminal_escapes: "\033\[((?:\d|;)*)([a-zA-Z])" */
    b->n = 0;
    for (size_t i = 0; i < a->n;) {
        if (a->v[i] == 0x1B && i + 1 < a->n && a->v[i + 1] == '[') {
            size_t j = i + 2;
            while (j < a->n && (a->v[j] == ';' || is_re_digit(a->v[j]))) j++;
            uint32_t c = j < a->n ? a->v[j] : 0;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                i = j + 1;
                continue;
            }
        }
        if (tf_push(b, a->v[i++])) return -1;
    }
    /* remove_control_chars */
    a->n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!in_ranges(tf_control, tf_control_len, b->v[i]) && tf_push(a, b->v[i])) return -1;
    return 0;
}

/* fix_and_explain(segment) without fix_encoding: rounds until unchanged. */
static int fix_segment(tf_buf *out, const uint32_t *s, size_t n, int unescape, tf_buf *t1,
                       tf_buf *t2) {
    t1->n = 0;
    if (push_all(t1, s, n)) return -1;
    for (int round = 0; round < FTFY_MAX_ROUNDS; round++) {
        /* t1: the text at the start of the round; result in t2 */
        if (unescape) {
            if (unescape_html(t2, t1->v, t1->n)) return -1;
        } else {
            t2->n = 0;
            if (push_all(t2, t1->v, t1->n)) return -1;
        }
        tf_buf scratch = {0};
        int rc = fix_round(t2, &scratch);
        tf_buf_free(&scratch);
        if (rc || text_fix_nfc(&scratch, t2->v, t2->n)) {
            tf_buf_free(&scratch);
            return -1;
        }
        /* (an empty buffer may hold NULL: memcmp must not see it) */
        int same = scratch.n == t1->n && (t1->n == 0 || !memcmp(scratch.v, t1->v, t1->n * sizeof *t1->v));
        tf_buf_free(t1);
        *t1 = scratch;
        if (same) break;
    }
    return push_all(out, t1->v, t1->n);
}

int text_fix_ftfy(tf_buf *out, const uint32_t *s, size_t n) {
    out->n = 0;
    tf_buf t1 = {0}, t2 = {0};
    int unescape = 1, rc = 0;
    for (size_t pos = 0; pos < n && !rc;) {
        size_t brk = pos;
        while (brk < n && s[brk] != '\n') brk++;
        brk = brk < n ? brk + 1 : n;
        if (brk - pos > FTFY_MAX_SEGMENT) brk = pos + FTFY_MAX_SEGMENT;
        for (size_t i = pos; i < brk && unescape; i++) /* "auto": off from a "<" on */
            if (s[i] == '<') unescape = 0;
        rc = fix_segment(out, s + pos, brk - pos, unescape, &t1, &t2);
        pos = brk;
    }
    tf_buf_free(&t1);
    tf_buf_free(&t2);
    return rc;
}
