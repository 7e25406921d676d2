/* Internals of the CLIP tokenizer shared by tokenizer_load.c (folders and
 * the built-in vocabulary) and tokenizer.c (encoding). Not for use outside
 * src/models/tokenizer*.c. */
#ifndef OIR_MODELS_TOKENIZER_IMPL_H
#define OIR_MODELS_TOKENIZER_IMPL_H

#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"

#define MAX_NOSPLIT 64
#define NONE UINT32_MAX

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
    tokenizer_mode mode;
    char source[1024]; /* the folder, or "built-in CLIP vocabulary" */
};

static inline uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static inline uint64_t hash_pair(uint32_t a, uint32_t b) {
    uint64_t x = ((uint64_t)a << 32) | b; /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static inline const char *sym_str(const tokenizer *t, uint32_t s) { return t->pool + t->syms[s].off; }

/* Index of the symbol with these bytes, or NONE. */
static inline uint32_t sym_find(const tokenizer *t, const char *s, size_t n) {
    if (!t->slots) return NONE;
    for (uint32_t i = hash_bytes(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        uint32_t k = t->slots[i];
        if (k == NONE) return NONE;
        if (t->syms[k].len == n && memcmp(sym_str(t, k), s, n) == 0) return k;
    }
}

static inline const pair_slot *pair_find(const tokenizer *t, uint32_t a, uint32_t b) {
    if (a == NONE || b == NONE || !t->pairs) return NULL;
    for (uint32_t i = (uint32_t)hash_pair(a, b) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        const pair_slot *p = &t->pairs[i];
        if (p->a == NONE) return NULL;
        if (p->a == a && p->b == b) return p;
    }
}


/* The built-in merges.txt (data/clip-tokenizer, NUL-terminated); *len
 * without the NUL. */
const char *tokenizer_builtin_merges(size_t *len);

#endif
