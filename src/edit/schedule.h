/* Packing candidates into batched UNet calls (docs/DESIGN.md §2.3).
 *
 * Candidate k (k = 1..T) of a pair starts from inversion level k and runs k
 * denoising steps, at scheduler indices T-k, ..., T-1. Any set of candidates
 * (of any pairs) is packed onto rows = ceil(total steps / longest candidate)
 * batch rows, longest first, each onto the least-loaded row (LPT); a row runs
 * its candidates back to back, and every call advances every busy row by one
 * step. For all T candidates of a pair this gives ceil((T+1)/2) rows and at
 * most T+1 calls, with the serial path's T(T+1)/2 sample-steps. */
#ifndef OIR_EDIT_SCHEDULE_H
#define OIR_EDIT_SCHEDULE_H

#include "core/error.h"

typedef struct {
    int pair, k;
} schedule_item;

typedef struct {
    int n_items, rows, calls;
    schedule_item *items; /* (n_items), longest first */
    int *row, *start;     /* (n_items): the row and first call of each item */
    int *at;              /* (calls, rows): index of the item a row runs, or -1 */
} schedule_plan;

/* Plans items (copied). n == 0 gives an empty plan (no calls). Every k >= 1. */
int schedule_plan_build(schedule_plan *p, const schedule_item *items, int n, oir_error *err);
void schedule_plan_free(schedule_plan *p);

#endif
