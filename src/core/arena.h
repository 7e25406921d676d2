/* Arena: one block reserved up front for the activations of a forward pass.
 * arena_alloc bumps a pointer (64-byte aligned); arena_mark/arena_reset free
 * everything allocated since the mark, so hot loops never call malloc. */
#ifndef OIR_CORE_ARENA_H
#define OIR_CORE_ARENA_H

#include <stddef.h>

#include "core/error.h"

typedef struct {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t peak;
} arena;

int arena_init(arena *a, size_t bytes, oir_error *err);
void arena_free(arena *a);
/* NULL when the arena is exhausted (callers size arenas from a plan). */
void *arena_alloc(arena *a, size_t bytes);
float *arena_floats(arena *a, size_t n);
static inline size_t arena_mark(const arena *a) { return a->used; }
static inline void arena_reset(arena *a, size_t mark) { a->used = mark; }

#endif
