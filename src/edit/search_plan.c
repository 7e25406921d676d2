#include "edit/search_plan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses up to max_params ":"-separated positive integers after the name. */
static int parse_params(const char *spec, const char *rest, int *vals, int max_params, int *n_out,
                        oir_error *err) {
    int n = 0;
    while (*rest == ':') {
        rest++;
        if (n == max_params)
            return oir_fail(err, OIR_E_ARG, "--search %s: at most %d parameter%s", spec, max_params,
                            max_params == 1 ? "" : "s");
        errno = 0;
        char *end;
        long v = strtol(rest, &end, 10);
        if (end == rest || errno || v < 1 || v > 100000 || (*end && *end != ':'))
            return oir_fail(err, OIR_E_ARG, "--search %s: parameter %d must be a positive integer",
                            spec, n + 1);
        vals[n++] = (int)v;
        rest = end;
    }
    if (*rest) return oir_fail(err, OIR_E_ARG, "--search %s: unexpected \"%s\"", spec, rest);
    *n_out = n;
    return OIR_OK;
}

int search_strategy_parse(search_strategy *out, const char *spec, int T, oir_error *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !spec[0]) spec = SEARCH_DEFAULT_SPEC;
    static const struct {
        const char *name;
        search_kind kind;
        int max_params;
    } names[] = {{"exhaustive", SEARCH_EXHAUSTIVE, 0},
                 {"coarse", SEARCH_COARSE, 1},
                 {"short-refine", SEARCH_SHORT_REFINE, 2},
                 {"short", SEARCH_SHORT, 1},
                 {"adaptive", SEARCH_ADAPTIVE, 2}};
    size_t len = strcspn(spec, ":");
    int which = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strlen(names[i].name) == len && strncmp(spec, names[i].name, len) == 0) which = i;
    if (which < 0)
        return oir_fail(err, OIR_E_ARG,
                        "--search %s: unknown strategy (exhaustive, coarse:S, short:TS, "
                        "short-refine:TS:W, adaptive:M:K)",
                        spec);
    int vals[2] = {0, 0}, n = 0, rc = parse_params(spec, spec + len, vals, names[which].max_params, &n, err);
    if (rc) return rc;
    out->kind = names[which].kind;
    switch (out->kind) {
    case SEARCH_EXHAUSTIVE:
        break;
    case SEARCH_COARSE:
        out->stride = n > 0 ? vals[0] : 5;
        if (out->stride > T)
            return oir_fail(err, OIR_E_ARG, "--search %s: stride %d is more than the %d steps", spec,
                            out->stride, T);
        break;
    case SEARCH_SHORT:
    case SEARCH_SHORT_REFINE:
        out->short_steps = n > 0 ? vals[0] : 10;
        if (out->short_steps >= T)
            return oir_fail(err, OIR_E_ARG,
                            "--search %s: the short schedule (%d steps) must be shorter than the %d "
                            "steps",
                            spec, out->short_steps, T);
        out->window = n > 1 ? vals[1] : (T + 2 * out->short_steps - 1) / (2 * out->short_steps);
        if (out->kind == SEARCH_SHORT_REFINE && out->window >= T)
            return oir_fail(err, OIR_E_ARG, "--search %s: window %d must be below the %d steps", spec,
                            out->window, T);
        break;
    case SEARCH_ADAPTIVE:
        out->levels = n > 0 ? vals[0] : 10;
        out->peaks = n > 1 ? vals[1] : 2;
        if (out->levels < 2)
            return oir_fail(err, OIR_E_ARG, "--search %s: at least 2 levels", spec);
        if (T >= 1 && T <= 1000) {
            unsigned char set[1000];
            search_geometric_set(T, out->levels, set);
            int all = 1;
            for (int k = 0; k < T; k++) all &= set[k];
            if (all) *out = (search_strategy){.kind = SEARCH_EXHAUSTIVE};
        }
        break;
    }
    return OIR_OK;
}

void search_strategy_format(const search_strategy *s, char *buf, size_t n) {
    switch (s->kind) {
    case SEARCH_EXHAUSTIVE: snprintf(buf, n, "exhaustive"); break;
    case SEARCH_COARSE: snprintf(buf, n, "coarse:%d", s->stride); break;
    case SEARCH_SHORT: snprintf(buf, n, "short:%d", s->short_steps); break;
    case SEARCH_SHORT_REFINE: snprintf(buf, n, "short-refine:%d:%d", s->short_steps, s->window); break;
    case SEARCH_ADAPTIVE: snprintf(buf, n, "adaptive:%d:%d", s->levels, s->peaks); break;
    }
}

void search_coarse_set(int T, int stride, unsigned char *want) {
    for (int k = 1; k <= T; k++) want[k - 1] = k == 1 || k % stride == 0 || k == T;
}

int search_neighbours(int T, int best, int radius, const unsigned char *evaluated,
                      unsigned char *want) {
    int n = 0;
    for (int k = 1; k <= T; k++) {
        int d = k > best ? k - best : best - k;
        want[k - 1] = d <= radius && !evaluated[k - 1];
        n += want[k - 1];
    }
    return n;
}

int search_map_level(int ks, int TS, int T) {
    int k = (int)(((long long)ks * T * 2 + TS) / (2LL * TS)); /* round half up */
    return k < 1 ? 1 : (k > T ? T : k);
}

void search_geometric_set(int T, int M, unsigned char *want) {
    memset(want, 0, (size_t)T);
    int prev = 0;
    for (int j = 0; j < M && prev < T; j++) {
        int k = M == 1 ? T : (int)lround(pow((double)T, (double)j / (M - 1)));
        if (k <= prev) k = prev + 1;
        if (k > T) k = T;
        want[k - 1] = 1;
        prev = k;
    }
    want[T - 1] = 1;
}

/* Sets in want the midpoints of one bisection round around best (see
 * search_bisect) that are not yet evaluated nor already wanted; returns how
 * many it set. */
static int bisect_into(int T, int best, const unsigned char *evaluated, unsigned char *want) {
    int lo = best, hi = best, n = 0;
    while (lo > 1 && !evaluated[lo - 2]) lo--; /* lo: first unevaluated-run end below */
    while (hi < T && !evaluated[hi]) hi++;
    /* nearest evaluated neighbours: lo - 1 and hi + 1 (0 / T + 1 when none) */
    int below = lo - 1, above = hi + 1;
    int mid_lo = (below + best) / 2, mid_hi = (best + above + 1) / 2;
    if (below == 0) mid_lo = (1 + best) / 2;
    if (above == T + 1) mid_hi = (best + T + 1) / 2;
    if (mid_lo >= 1 && mid_lo < best && !evaluated[mid_lo - 1] && !want[mid_lo - 1]) want[mid_lo - 1] = 1, n++;
    if (mid_hi <= T && mid_hi > best && !evaluated[mid_hi - 1] && !want[mid_hi - 1]) want[mid_hi - 1] = 1, n++;
    return n;
}

int search_bisect(int T, int best, const unsigned char *evaluated, unsigned char *want) {
    memset(want, 0, (size_t)T);
    return bisect_into(T, best, evaluated, want);
}

int search_bisect_peaks(int T, const int *peaks, int n_peaks, const unsigned char *evaluated,
                        unsigned char *want) {
    memset(want, 0, (size_t)T);
    int n = 0;
    for (int j = 0; j < n_peaks; j++) n += bisect_into(T, peaks[j], evaluated, want);
    return n;
}

/* NaN (never an evaluated total in a run) ranks below every number. */
static float rank_value(float x) { return isnan(x) ? -INFINITY : x; }

int search_peaks(int T, const float *total, const unsigned char *evaluated, int K, int *peaks) {
    unsigned char is_peak[1000];
    if (T < 1 || T > 1000 || K < 1) return 0;
    /* one pass over the evaluated levels in order: prev, cur, next */
    int prev = 0, cur = 0;
    memset(is_peak, 0, (size_t)T);
    for (int k = 1; k <= T + 1; k++) {
        if (k <= T && !evaluated[k - 1]) continue;
        int next = k <= T ? k : 0;
        if (cur) {
            float v = rank_value(total[cur - 1]);
            is_peak[cur - 1] = (!prev || v >= rank_value(total[prev - 1])) &&
                               (!next || v >= rank_value(total[next - 1]));
        }
        prev = cur, cur = next;
    }
    /* the K best, best first; equal totals: the smaller step first */
    int n = 0;
    while (n < K) {
        int best = 0;
        for (int k = 1; k <= T; k++)
            if (is_peak[k - 1] && (!best || rank_value(total[k - 1]) > rank_value(total[best - 1]))) best = k;
        if (!best) break;
        peaks[n++] = best;
        is_peak[best - 1] = 0;
    }
    return n;
}
