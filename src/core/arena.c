#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

int arena_init(arena *a, size_t bytes, oir_error *err) {
    memset(a, 0, sizeof *a);
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (bytes == 0) bytes = ARENA_ALIGN;
    a->base = aligned_alloc(ARENA_ALIGN, bytes);
    if (!a->base) return oir_fail(err, OIR_E_NOMEM, "arena: cannot reserve %zu MiB", bytes >> 20);
    a->cap = bytes;
    return OIR_OK;
}

void arena_free(arena *a) {
    free(a->base);
    memset(a, 0, sizeof *a);
}

void *arena_alloc(arena *a, size_t bytes) {
    size_t start = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (start > a->cap || bytes > a->cap - start) return NULL;
    a->used = start + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + start;
}

float *arena_floats(arena *a, size_t n) { return arena_alloc(a, n * sizeof(float)); }
