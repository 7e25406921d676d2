#include "edit/schedule.h"

#include <stdlib.h>
#include <string.h>

static int longer_first(const void *a, const void *b) {
    const schedule_item *x = a, *y = b;
    if (x->k != y->k) return y->k - x->k;
    if (x->pair != y->pair) return x->pair - y->pair;
    return 0;
}

void schedule_plan_free(schedule_plan *p) {
    free(p->items);
    free(p->row);
    free(p->start);
    free(p->at);
    memset(p, 0, sizeof *p);
}

int schedule_plan_build(schedule_plan *p, const schedule_item *items, int n, oir_error *err) {
    memset(p, 0, sizeof *p);
    if (n <= 0) return OIR_OK;
    long long total = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].k < 1) return oir_fail(err, OIR_E_INTERNAL, "schedule: candidate k = %d", items[i].k);
        total += items[i].k;
    }
    p->n_items = n;
    p->items = malloc(sizeof *p->items * (size_t)n);
    p->row = malloc(sizeof(int) * (size_t)n);
    p->start = malloc(sizeof(int) * (size_t)n);
    int *load = NULL;
    if (!p->items || !p->row || !p->start) goto nomem;
    memcpy(p->items, items, sizeof *items * (size_t)n);
    qsort(p->items, (size_t)n, sizeof *p->items, longer_first);
    int longest = p->items[0].k;
    p->rows = (int)((total + longest - 1) / longest);
    load = calloc((size_t)p->rows, sizeof(int));
    if (!load) goto nomem;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int r = 1; r < p->rows; r++)
            if (load[r] < load[best]) best = r;
        p->row[i] = best;
        p->start[i] = load[best];
        load[best] += p->items[i].k;
        if (load[best] > p->calls) p->calls = load[best];
    }
    p->at = malloc(sizeof(int) * (size_t)p->calls * p->rows);
    if (!p->at) goto nomem;
    for (size_t j = 0; j < (size_t)p->calls * p->rows; j++) p->at[j] = -1;
    for (int i = 0; i < n; i++)
        for (int c = p->start[i]; c < p->start[i] + p->items[i].k; c++) p->at[(size_t)c * p->rows + p->row[i]] = i;
    free(load);
    return OIR_OK;
nomem:
    free(load);
    schedule_plan_free(p);
    return oir_fail(err, OIR_E_NOMEM, "schedule: out of memory for %d candidates", n);
}
