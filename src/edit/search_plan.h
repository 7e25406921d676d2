/* Search strategies (docs/DESIGN.md §6): which candidates of an editing pair
 * are denoised, decoded and scored to choose its inversion step.
 *
 *   exhaustive        every k = 1..T (the paper; T(T+1)/2 guided steps a pair)
 *   coarse:S          k = 1, S, 2S, ... and T on the T-step schedule (1 and T
 *                     anchor the normalisation: the unedited and the most
 *                     inverted ends), then every
 *                     step within S-1 of the best of those; the metric is
 *                     normalised over all the candidates evaluated
 *   short:TS          the search on a TS-step schedule of its own (its own
 *                     inversion, TS(TS+1)/2 steps); its choice ks maps to the
 *                     matching noise level k = round(ks T / TS) of the T-step
 *                     schedule, and only that candidate is rendered there
 *   short-refine:TS:W short:TS, then the T-step candidates within W of k are
 *                     denoised and scored; all scores (both schedules) share
 *                     one normalisation, and the choice is among the T-step
 *                     candidates (W default: ceil(T / TS / 2))
 *   adaptive:M:K      M levels spaced geometrically from 1 to T (cheap small k
 *                     densely, costly large k sparsely), then bisection
 *                     rounds: around each of the K best local peaks of the
 *                     evaluated curve (by the metric total normalised over
 *                     the evaluated candidates), the midpoints between the
 *                     peak and its evaluated neighbours; the union of them is
 *                     scored, renormalised with the rest, until no peak has
 *                     an unevaluated midpoint (M default 10, K default 2;
 *                     adaptive:M:1 refines around the best alone)
 *
 * A spec is NAME or NAME:P[:P]; oir_params.search, the CLI's --search and the
 * YAML key `search` take it, report.json records the canonical form. */
#ifndef OIR_EDIT_SEARCH_PLAN_H
#define OIR_EDIT_SEARCH_PLAN_H

#include <stddef.h>

#include "core/error.h"

typedef enum {
    SEARCH_EXHAUSTIVE,
    SEARCH_COARSE,
    SEARCH_SHORT,
    SEARCH_SHORT_REFINE,
    SEARCH_ADAPTIVE
} search_kind;

typedef struct {
    search_kind kind;
    int stride;      /* coarse: S */
    int short_steps; /* short, short-refine: TS */
    int window;      /* short-refine: W */
    int levels;      /* adaptive: M */
    int peaks;       /* adaptive: K */
} search_strategy;

/* The strategy every run uses unless told otherwise: 4x+ fewer UNet rows
 * than exhaustive at T = 50 with 95%+ agreement (README "Faster searches"). */
#define SEARCH_DEFAULT_SPEC "adaptive"

/* Parses spec (NULL or "" = the default) for T steps. OIR_E_ARG naming the
 * spec: unknown name, a parameter that is not a positive integer (K = 0 among
 * them), stride > T, TS >= T, too many parameters. An adaptive spec whose
 * geometric levels already cover every step (small T) parses as exhaustive:
 * the same candidates, in one round. */
int search_strategy_parse(search_strategy *out, const char *spec, int T, oir_error *err);
/* Canonical spec with every parameter ("coarse:5"). */
void search_strategy_format(const search_strategy *s, char *buf, size_t n);

/* Coarse stage of coarse:S over k = 1..T: want[k-1] = 1 for 1, the
 * multiples of S and T. */
void search_coarse_set(int T, int stride, unsigned char *want);
/* Coarse stage of adaptive:M: want[k-1] = 1 for round(T^(j/(M-1))),
 * j = 0..M-1, each at least one above the previous (1 and T included). */
void search_geometric_set(int T, int M, unsigned char *want);
/* One bisection round around best (1..T): the midpoints between best and
 * the nearest evaluated steps below and above it (or 1 / T when none),
 * where not yet evaluated. Returns how many (0: the search has converged). */
int search_bisect(int T, int best, const unsigned char *evaluated, unsigned char *want);
/* The K best local peaks of a pair's evaluated curve: total[k-1] for the
 * levels with evaluated[k-1] != 0 (the metric total normalised over them, as
 * the search metric computes it). A level is a local peak when its total is
 * >= the totals of its nearest evaluated neighbours (an end, or a level
 * alone, compares with the neighbours it has; every level of a plateau is a
 * peak). Writes up to K of them into peaks (room for min(K, T)), best first;
 * equal totals: the smaller step first, so peaks[0] is the search metric's
 * choice. Returns how many. */
int search_peaks(int T, const float *total, const unsigned char *evaluated, int K, int *peaks);
/* One bisection round of adaptive:M:K: want[k-1] = 1 for the union of
 * search_bisect's midpoints around each of the n_peaks peaks. Returns how
 * many (0: the search has converged). */
int search_bisect_peaks(int T, const int *peaks, int n_peaks, const unsigned char *evaluated,
                        unsigned char *want);
/* Refinement around best (1..T): want[k-1] = 1 for every k within radius of
 * best not yet evaluated (evaluated[k-1] == 0). Returns how many. */
int search_neighbours(int T, int best, int radius, const unsigned char *evaluated,
                      unsigned char *want);
/* The T-step level matching level ks of a TS-step schedule: round(ks T / TS),
 * in 1..T. Distinct ks give distinct levels when TS <= T. */
int search_map_level(int ks, int TS, int T);

#endif
