#include "cli/cli_pick.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* [s, e) without the spaces around it. */
static void trim(const char **s, const char **e) {
    while (*s < *e && isspace((unsigned char)**s)) (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1])) (*e)--;
}

static int all_digits(const char *s, const char *e) {
    if (s == e) return 0;
    for (; s < e; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* The pair a PAIR text names (0-based), or an error. */
static int find_pair(const char *spec, const char *what, const char *p0, const char *p1,
                     const char *const *from, int n_pairs, int *pair, oir_error *err) {
    if (all_digits(p0, p1)) {
        errno = 0;
        long v = strtol(p0, NULL, 10);
        if (errno || v < 1 || v > n_pairs)
            return oir_fail(err, OIR_E_ARG, "%s '%s': there is no pair %.*s (%d pair%s: 1..%d)", what, spec,
                            (int)(p1 - p0), p0, n_pairs, n_pairs == 1 ? "" : "s", n_pairs);
        *pair = (int)v - 1;
        return OIR_OK;
    }
    size_t len = (size_t)(p1 - p0);
    int found = -1;
    for (int i = 0; i < n_pairs; i++) {
        const char *f0 = from[i] ? from[i] : "", *f1 = f0 + strlen(f0);
        trim(&f0, &f1);
        if ((size_t)(f1 - f0) != len || strncasecmp(f0, p0, len)) continue;
        if (found >= 0)
            return oir_fail(err, OIR_E_ARG, "%s '%s': '%.*s' is the FROM phrase of pairs %d and %d; give the pair's number",
                            what, spec, (int)len, p0, found + 1, i + 1);
        found = i;
    }
    if (found < 0) {
        char list[600];
        size_t used = 0;
        list[0] = '\0';
        for (int i = 0; i < n_pairs && used < sizeof list; i++) {
            int k = snprintf(list + used, sizeof list - used, "%s%d '%s'", i ? ", " : "", i + 1, from[i] ? from[i] : "");
            if (k > 0) used += (size_t)k;
        }
        return oir_fail(err, OIR_E_ARG, "%s '%s': no pair's FROM phrase is '%.*s' (pairs: %s)", what, spec, (int)len,
                        p0, list);
    }
    *pair = found;
    return OIR_OK;
}

int cli_pick_resolve(const char *const *specs, int n, const char *what, const char *const *from, int n_pairs,
                     int T, int *forced, oir_error *err) {
    const char *by[64] = {0}; /* the spec that picked pair i */
    for (int i = 0; i < n_pairs; i++) forced[i] = 0;
    for (int j = 0; j < n; j++) {
        const char *spec = specs[j] ? specs[j] : "";
        const char *eq = strrchr(spec, '=');
        if (!eq)
            return oir_fail(err, OIR_E_ARG,
                            "%s '%s': expected PAIR=STEP (PAIR: the pair's number or its FROM phrase), e.g. "
                            "--pick 2=27",
                            what, spec);
        const char *p0 = spec, *p1 = eq, *s0 = eq + 1, *s1 = eq + 1 + strlen(eq + 1);
        trim(&p0, &p1);
        trim(&s0, &s1);
        if (p0 == p1)
            return oir_fail(err, OIR_E_ARG, "%s '%s': no PAIR before '='; expected PAIR=STEP, e.g. --pick 2=27", what,
                            spec);
        if (!all_digits(s0, s1))
            return oir_fail(err, OIR_E_ARG, "%s '%s': STEP '%.*s' is not a step number (1..%d)", what, spec,
                            (int)(s1 - s0), s0, T);
        errno = 0;
        long step = strtol(s0, NULL, 10);
        if (errno || step < 1 || step > T)
            return oir_fail(err, OIR_E_ARG, "%s '%s': step %.*s is outside 1..%d (the DDIM steps)", what, spec,
                            (int)(s1 - s0), s0, T);
        int pair = 0, rc = find_pair(spec, what, p0, p1, from, n_pairs, &pair, err);
        if (rc) return rc;
        if (pair < 64 && by[pair])
            return oir_fail(err, OIR_E_ARG, "%s '%s' and '%s' both pick pair %d; give one step per pair", what,
                            by[pair], spec, pair + 1);
        if (pair < 64) by[pair] = spec;
        forced[pair] = (int)step;
    }
    return OIR_OK;
}
