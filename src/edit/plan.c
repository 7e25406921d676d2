#include "edit/plan.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edit/schedule.h"
#include "edit/search_metric.h"

#define PLAN_MAX_PAIRS 16
#define PLAN_MAX_PEAKS 64
#define MEMO_SLOTS 16

int oir_stage_kind(const char *stage) {
    static const struct {
        const char *prefix;
        int kind;
    } names[] = {{"prompts", OIR_STAGE_PROMPTS},       {"encode", OIR_STAGE_ENCODE},
                 {"inversion", OIR_STAGE_INVERSION},   {"candidates", OIR_STAGE_CANDIDATES},
                 {"render", OIR_STAGE_CANDIDATES},     {"decode", OIR_STAGE_DECODE},
                 {"scoring", OIR_STAGE_SCORING},       {"denoise", OIR_STAGE_DENOISE},
                 {"mask", OIR_STAGE_MASK}};
    if (!stage) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(stage, names[i].prefix, strlen(names[i].prefix)) == 0) return names[i].kind;
    return -1;
}

double oir_calibration_unet_seconds(const oir_calibration *c, int rows) {
    if (!c || c->n_unet < 1 || rows <= 0) return 0;
    int n = c->n_unet < OIR_CALIBRATION_POINTS ? c->n_unet : OIR_CALIBRATION_POINTS;
    const int *b = c->unet_rows;
    const double *t = c->unet_seconds;
    if (rows <= b[0]) return t[0] * rows / b[0];
    for (int i = 1; i < n; i++)
        if (rows <= b[i]) return t[i - 1] + (t[i] - t[i - 1]) * (rows - b[i - 1]) / (double)(b[i] - b[i - 1]);
    /* beyond: the last segment's cost per row (a call's fixed cost is paid
     * once) when it spans a wide range (1 to 16 rows); a narrow one (1 to 2
     * rows, a large model) is a difference of two noisy timings: the last
     * point's cost per row then */
    double slope = n > 1 && b[n - 1] >= 4 * b[n - 2] ? (t[n - 1] - t[n - 2]) / (b[n - 1] - b[n - 2]) : 0;
    if (!(slope > 0)) slope = t[n - 1] / b[n - 1];
    return t[n - 1] + slope * (rows - b[n - 1]);
}

int plan_setup_init(plan_setup *s, int n_pairs, const oir_params *pin, int max_unet_batch, oir_error *err) {
    memset(s, 0, sizeof *s);
    oir_params p = pin ? *pin : oir_default_params();
    if (n_pairs < 1 || n_pairs > PLAN_MAX_PAIRS)
        return oir_fail(err, OIR_E_ARG, "%d editing pairs (1..%d allowed)", n_pairs, PLAN_MAX_PAIRS);
    if (p.steps < 1 || p.steps > 1000) return oir_fail(err, OIR_E_ARG, "steps must be 1..1000, got %d", p.steps);
    if (!(p.guidance >= 0 && p.guidance <= 100)) return oir_fail(err, OIR_E_ARG, "guidance must be 0..100");
    if (p.reassembly_step < 0 || p.reinversion_steps < 0)
        return oir_fail(err, OIR_E_ARG, "reassembly and re-inversion steps must be >= 0");
    int rc = search_strategy_parse(&s->strategy, p.search, p.steps, err);
    if (rc) return rc;
    s->T = p.steps;
    s->n_pairs = n_pairs;
    s->cfg = p.guidance != 1.0f; /* as sampler_eps: one branch at guidance 1 */
    s->parallel = p.parallel;
    s->keep_candidates = p.keep_candidates;
    s->R = p.reassembly_step;
    s->J = p.reinversion_steps;
    s->max_unet_batch = max_unet_batch > 0 ? max_unet_batch : 1;
    for (int i = 0; p.forced_steps && i < n_pairs; i++) {
        if (p.forced_steps[i] < 0 || p.forced_steps[i] > p.steps)
            return oir_fail(err, OIR_E_ARG, "pair %d: forced step %d is outside 1..%d", i + 1, p.forced_steps[i],
                            p.steps);
        s->forced[i] = p.forced_steps[i];
        s->n_forced += s->forced[i] > 0;
    }
    if (p.low_pick != OIR_LOW_PICK_LOWER && p.low_pick != OIR_LOW_PICK_REINVERT)
        return oir_fail(err, OIR_E_ARG, "low_pick %d: expected OIR_LOW_PICK_LOWER or OIR_LOW_PICK_REINVERT",
                        p.low_pick);
    if (p.guard && (rc = search_guard_check(p.guard_margin, err))) return rc;
    s->low_pick = p.low_pick;
    s->guard = p.guard != 0;
    return OIR_OK;
}

/* ---- one simulated run ----------------------------------------------------- */

typedef struct {
    int Tl, n;
    unsigned char *want; /* (n, Tl) */
    long calls, rows;
    double seconds;
} memo_slot;

typedef struct {
    memo_slot slot[MEMO_SLOTS];
    int next;
} memo;

typedef struct {
    const plan_setup *s;
    const oir_calibration *cal;
    plan_counts *c;
    plan_chooser choose;
    plan_peak_finder peaks;
    void *user;
    memo *memo;
    unsigned char *evaluated; /* (n, T) as oir_result.evaluated */
} sim;

static void memo_free(memo *m) {
    for (int i = 0; i < MEMO_SLOTS; i++) free(m->slot[i].want);
    memset(m, 0, sizeof *m);
}

/* `count` identical sampler_eps calls of B rows (guided: both CFG branches
 * when cfg), each split into UNet calls of at most max_unet_batch rows as
 * the sampler's unet_jobs splits them. */
static void eps_calls(sim *m, int B, int guided, long count, int stage) {
    if (count <= 0) return;
    int n = guided && m->s->cfg ? 2 * B : B, maxb = m->s->max_unet_batch;
    long calls = 0;
    double sec = 0;
    for (int start = 0; start < n; start += maxb) {
        int b = n - start < maxb ? n - start : maxb;
        calls++;
        if (m->cal) sec += oir_calibration_unet_seconds(m->cal, b);
    }
    m->c->calls += calls * count;
    m->c->rows += (long)n * count;
    m->c->seconds[stage] += sec * (double)count;
}

/* candidates_serial / candidates_parallel over want (n, Tl) on a Tl-step schedule. */
static int candidates(sim *m, const unsigned char *want, int Tl, oir_error *err) {
    const plan_setup *s = m->s;
    int n = s->n_pairs, n_items = 0;
    long steps = 0;
    for (int p = 0; p < n; p++)
        for (int k = 1; k <= Tl; k++)
            if (want[(size_t)p * Tl + k - 1]) steps += k, n_items++;
    m->c->units[OIR_STAGE_CANDIDATES] += (double)steps;
    if (s->counts_only) {
        m->c->rows += steps * (s->cfg ? 2 : 1);
        return OIR_OK;
    }
    if (!s->parallel) { /* every sample-step one guided call of one row */
        eps_calls(m, 1, 1, steps, OIR_STAGE_CANDIDATES);
        return OIR_OK;
    }
    if (!n_items) return OIR_OK;
    size_t wn = (size_t)n * Tl;
    for (int i = 0; m->memo && i < MEMO_SLOTS; i++) {
        memo_slot *e = &m->memo->slot[i];
        if (e->want && e->Tl == Tl && e->n == n && memcmp(e->want, want, wn) == 0) {
            m->c->calls += e->calls;
            m->c->rows += e->rows;
            m->c->seconds[OIR_STAGE_CANDIDATES] += e->seconds;
            return OIR_OK;
        }
    }
    schedule_item *items = malloc(sizeof *items * (size_t)n_items);
    if (!items) return oir_fail(err, OIR_E_NOMEM, "plan: out of memory");
    n_items = 0;
    for (int p = 0; p < n; p++) /* the order candidates_parallel builds them in */
        for (int k = 1; k <= Tl; k++)
            if (want[(size_t)p * Tl + k - 1]) items[n_items++] = (schedule_item){p, k};
    schedule_plan plan;
    int rc = schedule_plan_build(&plan, items, n_items, err);
    free(items);
    if (rc) return rc;
    long calls0 = m->c->calls, rows0 = m->c->rows;
    double sec0 = m->c->seconds[OIR_STAGE_CANDIDATES];
    for (int c = 0; c < plan.calls; c++) {
        int B = 0;
        for (int r = 0; r < plan.rows; r++) B += plan.at[(size_t)c * plan.rows + r] >= 0;
        eps_calls(m, B, 1, 1, OIR_STAGE_CANDIDATES);
    }
    schedule_plan_free(&plan);
    if (m->memo) {
        memo_slot *e = &m->memo->slot[m->memo->next];
        m->memo->next = (m->memo->next + 1) % MEMO_SLOTS;
        free(e->want);
        e->want = malloc(wn);
        if (e->want) {
            memcpy(e->want, want, wn);
            e->Tl = Tl;
            e->n = n;
            e->calls = m->c->calls - calls0;
            e->rows = m->c->rows - rows0;
            e->seconds = m->c->seconds[OIR_STAGE_CANDIDATES] - sec0;
        }
    }
    return OIR_OK;
}

/* score_all: decode and score the wanted candidates (want (n, Tl)), flag
 * them at their T-step level, then every pair's choice. */
static int score_all(sim *m, const unsigned char *want, int Tl, unsigned char flag, unsigned char choose_flag,
                     oir_error *err) {
    const plan_setup *s = m->s;
    int T = s->T;
    plan_counts *c = m->c;
    for (int i = 0; i < s->n_pairs; i++) {
        if (s->forced[i]) continue; /* not searched */
        if (m->cal) c->seconds[OIR_STAGE_SCORING] += m->cal->clip_text_seconds; /* scorer_text per set */
        for (int k = 1; k <= Tl; k++) {
            if (!want[(size_t)i * Tl + k - 1]) continue;
            int dest = Tl == T ? k : search_map_level(k, Tl, T);
            c->decodes++;
            c->units[OIR_STAGE_DECODE] += 1;
            c->units[OIR_STAGE_SCORING] += 1;
            if (m->cal) {
                c->seconds[OIR_STAGE_DECODE] += m->cal->decode_seconds;
                c->seconds[OIR_STAGE_SCORING] += m->cal->score_seconds;
            }
            m->evaluated[(size_t)i * T + dest - 1] = flag;
        }
        int k = m->choose(m->user, i, T, m->evaluated + (size_t)i * T, choose_flag);
        if (k < 1 || k > T) return oir_fail(err, OIR_E_INTERNAL, "plan: pair %d: no step to choose", i + 1);
        c->chosen[i] = k;
    }
    return OIR_OK;
}

static void decode_one(sim *m) {
    m->c->decodes++;
    m->c->units[OIR_STAGE_DECODE] += 1;
    if (m->cal) m->c->seconds[OIR_STAGE_DECODE] += m->cal->decode_seconds;
}

/* Clears the want rows (n, Tl) of the forced pairs (oir.c unwant_forced). */
static void unwant_forced(const plan_setup *s, int Tl, unsigned char *want) {
    for (int i = 0; i < s->n_pairs; i++)
        if (s->forced[i]) memset(want + (size_t)i * Tl, 0, (size_t)Tl);
}

/* oir.c render_forced(): the forced pairs' steps are taken as given; their
 * candidate is rendered (and decoded for the sheet) only when an image of it
 * is wanted: the sheets (keep_candidates) or a single pair's result. */
static int render_forced(sim *m, oir_error *err) {
    const plan_setup *s = m->s;
    int T = s->T, n = s->n_pairs, rc = OIR_OK;
    for (int i = 0; i < n; i++)
        if (s->forced[i]) {
            m->c->chosen[i] = s->forced[i];
            m->evaluated[(size_t)i * T + s->forced[i] - 1] = OIR_EVALUATED_FORCED;
        }
    if (!(s->keep_candidates || n == 1)) return OIR_OK;
    unsigned char *want = calloc((size_t)n * T, 1);
    if (!want) return oir_fail(err, OIR_E_NOMEM, "plan: out of memory");
    for (int i = 0; i < n; i++)
        if (s->forced[i]) want[(size_t)i * T + s->forced[i] - 1] = 1;
    rc = candidates(m, want, T, err);
    free(want);
    for (int i = 0; i < n && !rc && s->keep_candidates; i++)
        if (s->forced[i]) decode_one(m);
    return rc;
}

/* oir.c search(): the strategy's rounds. */
static int search(sim *m, unsigned char *want, oir_error *err) {
    const plan_setup *s = m->s;
    const search_strategy *st = &s->strategy;
    int T = s->T, n = s->n_pairs, rc = OIR_OK;
    size_t nt = (size_t)n * T;
    switch (st->kind) {
    case SEARCH_EXHAUSTIVE:
        memset(want, 1, nt);
        unwant_forced(s, T, want);
        if (!(rc = candidates(m, want, T, err))) rc = score_all(m, want, T, 1, 0, err);
        break;
    case SEARCH_COARSE:
        for (int i = 0; i < n; i++)
            if (!s->forced[i]) search_coarse_set(T, st->stride, want + (size_t)i * T);
        if ((rc = candidates(m, want, T, err)) || (rc = score_all(m, want, T, 1, 0, err))) break;
        for (int i = 0; i < n; i++)
            if (!s->forced[i])
                search_neighbours(T, m->c->chosen[i], st->stride - 1, m->evaluated + (size_t)i * T,
                                  want + (size_t)i * T);
        if (!(rc = candidates(m, want, T, err))) rc = score_all(m, want, T, 1, 0, err);
        break;
    case SEARCH_ADAPTIVE:
        for (int i = 0; i < n; i++)
            if (!s->forced[i]) search_geometric_set(T, st->levels, want + (size_t)i * T);
        for (;;) {
            if ((rc = candidates(m, want, T, err)) || (rc = score_all(m, want, T, 1, 0, err))) break;
            int more = 0, peaks[1000], K = st->peaks < T ? st->peaks : T;
            for (int i = 0; i < n && !rc; i++) {
                if (s->forced[i]) continue;
                size_t o = (size_t)i * T;
                int np = m->peaks ? m->peaks(m->user, i, T, m->evaluated + o, K, peaks) : 0;
                if (np < 1 || np > K)
                    rc = oir_fail(err, OIR_E_INTERNAL, "plan: pair %d: no peak to refine", i + 1);
                else
                    more += search_bisect_peaks(T, peaks, np, m->evaluated + o, want + o);
            }
            if (rc || !more) break;
        }
        break;
    case SEARCH_SHORT:
    case SEARCH_SHORT_REFINE: {
        int TS = st->short_steps;
        unsigned char *ws = malloc((size_t)n * TS), none[1000] = {0};
        if (!ws) return oir_fail(err, OIR_E_NOMEM, "plan: out of memory");
        memset(ws, 1, (size_t)n * TS);
        unwant_forced(s, TS, ws);
        eps_calls(m, 1, 0, TS, OIR_STAGE_INVERSION); /* the short schedule's own inversion */
        m->c->units[OIR_STAGE_INVERSION] += TS;
        if (!(rc = candidates(m, ws, TS, err))) rc = score_all(m, ws, TS, 2, 2, err);
        free(ws);
        if (rc) break;
        int radius = st->kind == SEARCH_SHORT ? 0 : st->window;
        for (int i = 0; i < n; i++)
            if (!s->forced[i]) search_neighbours(T, m->c->chosen[i], radius, none, want + (size_t)i * T);
        if (st->kind == SEARCH_SHORT) { /* only the choice, rendered on T steps */
            rc = candidates(m, want, T, err);
            break;
        }
        if (!(rc = candidates(m, want, T, err))) rc = score_all(m, want, T, 1, 1, err);
        break;
    }
    }
    return rc;
}

static int simulate(const plan_setup *s, plan_chooser choose, plan_peak_finder peaks, void *user,
                    const oir_calibration *cal, memo *mm, plan_counts *out, oir_error *err) {
    memset(out, 0, sizeof *out);
    int T = s->T, n = s->n_pairs, rc;
    sim m = {s, cal, out, choose, peaks, user, mm, calloc((size_t)n * T, 1)};
    unsigned char *want = calloc((size_t)n * T, 1);
    if (!m.evaluated || !want) {
        free(m.evaluated);
        free(want);
        return oir_fail(err, OIR_E_NOMEM, "plan: out of memory");
    }
    /* prompts: source, target and each pair's guided prompt */
    out->units[OIR_STAGE_PROMPTS] = n + 2;
    if (cal) out->seconds[OIR_STAGE_PROMPTS] = (n + 2) * cal->text_seconds;
    /* 1. the VAE encode and the inversion */
    out->encodes = 1;
    out->units[OIR_STAGE_ENCODE] = 1;
    if (cal) out->seconds[OIR_STAGE_ENCODE] = cal->encode_seconds;
    /* the inferred masks (oir.c infer_masks): one call of mask_rows rows each */
    for (int k = 0; k < 2; k++) eps_calls(&m, (int)s->mask_rows[k], 0, s->n_masks, OIR_STAGE_MASK);
    out->units[OIR_STAGE_MASK] = s->n_masks;
    eps_calls(&m, 1, 0, T, OIR_STAGE_INVERSION);
    out->units[OIR_STAGE_INVERSION] += T;
    /* 2-4. the search */
    long rows0 = out->rows, calls0 = out->calls;
    rc = s->n_forced ? render_forced(&m, err) : OIR_OK;
    if (!rc && s->n_forced < n && s->guard) decode_one(&m); /* the no-edit guard's reference */
    if (!rc && s->n_forced < n) rc = search(&m, want, err);
    out->rows_candidates = out->rows - rows0;
    out->calls_candidates = out->calls - calls0;
    if (cal && s->guard) /* the no-edit guard: its reference scored once per searched pair */
        out->seconds[OIR_STAGE_SCORING] += (n - s->n_forced) * cal->score_seconds;
    /* 5. reassembly, or the chosen candidate */
    if (!rc && n > 1) {
        int R = s->R < T ? s->R : T - 1, J = s->J, kmin = T;
        for (int i = 0; i < n; i++) kmin = out->chosen[i] < kmin ? out->chosen[i] : kmin;
        if (kmin <= R && s->low_pick != OIR_LOW_PICK_REINVERT) R = kmin - 1;
        if (R + J > T) J = T - R;
        for (int i = 0; i < n; i++) {
            int k = out->chosen[i];
            if (k > R) {
                eps_calls(&m, 1, 1, k - R, OIR_STAGE_DENOISE);
                out->units[OIR_STAGE_DENOISE] += k - R;
                continue;
            }
            /* oir.c lift_to_R: the candidate (denoised here when the run did not render it), inverted up to R */
            if (s->forced[i] && !s->keep_candidates) {
                eps_calls(&m, 1, 1, k, OIR_STAGE_DENOISE);
                out->units[OIR_STAGE_DENOISE] += k;
            }
            eps_calls(&m, 1, 0, R, OIR_STAGE_INVERSION);
            out->units[OIR_STAGE_INVERSION] += R;
        }
        eps_calls(&m, 1, 0, J, OIR_STAGE_INVERSION);
        out->units[OIR_STAGE_INVERSION] += J;
        eps_calls(&m, 1, 1, R + J, OIR_STAGE_DENOISE);
        out->units[OIR_STAGE_DENOISE] += R + J;
        decode_one(&m);
    } else if (!rc) {
        int k = out->chosen[0];
        unsigned char how = m.evaluated[k - 1];
        if (!(s->keep_candidates && (how == 1 || how == OIR_EVALUATED_FORCED)))
            decode_one(&m); /* else decoded while scoring, or as the picked candidate */
    }
    free(m.evaluated);
    free(want);
    return rc;
}

int plan_simulate(const plan_setup *s, plan_chooser choose, plan_peak_finder peaks, void *user,
                  const oir_calibration *cal, plan_counts *out, oir_error *err) {
    return simulate(s, choose, peaks, user, cal, NULL, out, err);
}

/* ---- expected values and bounds -------------------------------------------- */

/* The modelled curve of plan_expected: its peak (the best step) and a second,
 * lower mode. */
typedef struct {
    int peak, second;
} model_curve;

/* The choosable evaluated step nearest k (ties: the smaller). */
static int nearest_to(int k0, int T, const unsigned char *evaluated, unsigned char choose_flag) {
    int best = 0, bd = INT_MAX;
    for (int k = 1; k <= T; k++) {
        int ok = choose_flag ? evaluated[k - 1] == choose_flag : evaluated[k - 1] != 0;
        int d = k > k0 ? k - k0 : k0 - k;
        if (ok && d < bd) bd = d, best = k;
    }
    return best;
}

/* The choice: the choosable evaluated step nearest the peak. */
static int nearest_peak(void *user, int pair, int T, const unsigned char *evaluated, unsigned char choose_flag) {
    return nearest_to(((const model_curve *)user)->peak, T, evaluated, choose_flag);
}

/* The local peaks of the modelled curve among the evaluated levels: the one
 * nearest its peak (the choice), then the one nearest its second mode when
 * that is another level. The model has two modes, so K > 2 refines as K = 2
 * (an underestimate; the bounds hold for every K). */
static int model_peaks(void *user, int pair, int T, const unsigned char *evaluated, int K, int *peaks) {
    const model_curve *c = user;
    int n = 0;
    peaks[n++] = nearest_to(c->peak, T, evaluated, 0);
    int b = nearest_to(c->second, T, evaluated, 0);
    if (K > 1 && b != peaks[0]) peaks[n++] = b;
    return peaks[0] ? n : 0;
}

typedef struct {
    long s_min, s_max; /* candidate sample-steps of one pair's search */
    int d_min, d_max;  /* its decodes */
} pair_range;

static long sum_range(int lo, int hi) { return lo > hi ? 0 : (long)(lo + hi) * (hi - lo + 1) / 2; }

/* One pair's search work over every possible choice (rigorous bounds). */
static void search_range(const plan_setup *s, pair_range *pr) {
    const search_strategy *st = &s->strategy;
    int T = s->T;
    unsigned char set[1000], nb[1000];
    long base = 0;
    int bd = 0;
    pr->s_min = LONG_MAX, pr->s_max = 0, pr->d_min = INT_MAX, pr->d_max = 0;
    switch (st->kind) {
    case SEARCH_EXHAUSTIVE:
        pr->s_min = pr->s_max = sum_range(1, T);
        pr->d_min = pr->d_max = T;
        return;
    case SEARCH_ADAPTIVE: /* anything from the geometric levels to every step */
        search_geometric_set(T, st->levels, set);
        for (int k = 1; k <= T; k++) base += set[k - 1] ? k : 0, bd += set[k - 1];
        pr->s_min = base, pr->d_min = bd;
        pr->s_max = sum_range(1, T), pr->d_max = T;
        return;
    case SEARCH_COARSE:
        search_coarse_set(T, st->stride, set);
        for (int k = 1; k <= T; k++) base += set[k - 1] ? k : 0, bd += set[k - 1];
        for (int b = 1; b <= T; b++) {
            if (!set[b - 1]) continue;
            int d = search_neighbours(T, b, st->stride - 1, set, nb);
            long steps = 0;
            for (int k = 1; k <= T; k++) steps += nb[k - 1] ? k : 0;
            if (base + steps < pr->s_min) pr->s_min = base + steps;
            if (base + steps > pr->s_max) pr->s_max = base + steps;
            if (bd + d < pr->d_min) pr->d_min = bd + d;
            if (bd + d > pr->d_max) pr->d_max = bd + d;
        }
        return;
    case SEARCH_SHORT:
    case SEARCH_SHORT_REFINE: {
        int TS = st->short_steps;
        base = sum_range(1, TS), bd = TS;
        for (int ks = 1; ks <= TS; ks++) {
            int m = search_map_level(ks, TS, T), W = st->kind == SEARCH_SHORT ? 0 : st->window;
            int lo = m - W < 1 ? 1 : m - W, hi = m + W > T ? T : m + W;
            long steps = sum_range(lo, hi);
            int d = st->kind == SEARCH_SHORT ? 0 : hi - lo + 1;
            if (base + steps < pr->s_min) pr->s_min = base + steps;
            if (base + steps > pr->s_max) pr->s_max = base + steps;
            if (bd + d < pr->d_min) pr->d_min = bd + d;
            if (bd + d > pr->d_max) pr->d_max = bd + d;
        }
        return;
    }
    }
}

/* Bounds of the whole run's UNet rows and decodes. */
static void run_bounds(const plan_setup *s, long *rows_min, long *rows_max, int *dec_min, int *dec_max) {
    int T = s->T, n = s->n_pairs, mult = s->cfg ? 2 : 1, ns = n - s->n_forced; /* ns: searched pairs */
    pair_range pr;
    search_range(s, &pr);
    int is_short = s->strategy.kind == SEARCH_SHORT || s->strategy.kind == SEARCH_SHORT_REFINE;
    long fixed = T + (is_short && ns > 0 ? s->strategy.short_steps : 0), forced_steps = 0;
    for (int i = 0; i < n; i++) forced_steps += s->forced[i];
    if (s->keep_candidates || n == 1) fixed += (long)mult * forced_steps; /* render_forced */
    fixed += (long)s->n_masks * (s->mask_rows[0] + s->mask_rows[1]);
    long rmin = fixed + (long)ns * mult * pr.s_min, rmax = fixed + (long)ns * mult * pr.s_max;
    int dmin = ns * pr.d_min, dmax = ns * pr.d_max;
    if (s->guard && ns > 0) dmin += 1, dmax += 1; /* the no-edit guard's reference image */
    if (s->keep_candidates) dmin += s->n_forced, dmax += s->n_forced;
    if (n == 1) {
        int final = s->n_forced ? !s->keep_candidates : s->strategy.kind == SEARCH_SHORT || !s->keep_candidates;
        dmin += final, dmax += final;
    } else { /* reassembly: over every possible smallest choice m, the others in [m, kmax] */
        unsigned char possible[1000] = {0};
        int kmax = 0;
        for (int k = 1; k <= T; k++) possible[k - 1] = 1;
        if (s->strategy.kind == SEARCH_SHORT) {
            memset(possible, 0, sizeof possible);
            for (int ks = 1; ks <= s->strategy.short_steps; ks++)
                possible[search_map_level(ks, s->strategy.short_steps, T) - 1] = 1;
        }
        for (int i = 0; i < n; i++)
            if (s->forced[i]) possible[s->forced[i] - 1] = 1;
        for (int k = 1; k <= T; k++) kmax = possible[k - 1] ? k : kmax;
        long lo = LONG_MAX, hi = 0;
        int R0 = s->R < T ? s->R : T - 1;
        if (s->low_pick == OIR_LOW_PICK_REINVERT) { /* R stays: each pair's cost bounded on its own */
            int R = R0, J = s->J;
            if (R + J > T) J = T - R;
            lo = hi = J + (long)mult * (R + J);
            for (int i = 0; i < n; i++) {
                long cmin = LONG_MAX, cmax = 0;
                for (int k = 1; k <= T; k++) {
                    if (s->forced[i] ? k != s->forced[i] : !possible[k - 1]) continue;
                    long c = k > R ? (long)mult * (k - R)
                                   : R + (s->forced[i] && !s->keep_candidates ? (long)mult * k : 0);
                    cmin = c < cmin ? c : cmin;
                    cmax = c > cmax ? c : cmax;
                }
                lo += cmin, hi += cmax;
            }
        }
        for (int m = 1; m <= T && s->low_pick != OIR_LOW_PICK_REINVERT; m++) {
            if (!possible[m - 1]) continue;
            int R = m <= R0 ? m - 1 : R0, J = s->J;
            if (R + J > T) J = T - R;
            long base = J + (long)mult * (R + J);
            long a = base + (long)mult * n * (m - R), b = base + (long)mult * ((m - R) + (long)(n - 1) * (kmax - R));
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
        }
        rmin += lo, rmax += hi;
        dmin += 1, dmax += 1;
    }
    *rows_min = rmin, *rows_max = rmax, *dec_min = dmin, *dec_max = dmax;
}

int plan_expected(const plan_setup *s, const oir_calibration *cal, oir_plan *out, oir_error *err) {
    int T = s->T, P = T <= PLAN_MAX_PEAKS ? T : PLAN_MAX_PEAKS, rc = OIR_OK;
    double rows = 0, rows_c = 0, calls = 0, dec = 0, units[OIR_STAGE_COUNT] = {0}, sec[OIR_STAGE_COUNT] = {0};
    memo mm;
    memset(&mm, 0, sizeof mm);
    for (int j = 0; j < P && !rc; j++) {
        /* the best step spread log-uniformly over 1..T (as likely in 1..2 as
         * in 25..50: the adaptive search's own premise): P equal-weight
         * quantiles */
        double u = (j + 0.5) / P, lt = log((double)T);
        int peak = (int)lround(exp(lt * u));
        peak = peak < 1 ? 1 : (peak > T ? T : peak);
        /* adaptive:M:K also refines the curve's other local peaks: adaptive
         * with K = 2 replayed on the exhaustive totals of the T = 50 cases
         * (bench/results/search_t50.cases) ends with a second local peak on
         * 82 of 106 pairs, a median 0.37 of the log range from the best; the
         * model's second mode lies log-midway between the peak and the
         * farther end of 1..T (0.25..0.5 of the log range away) */
        int second = (int)lround(exp(lt * (u >= 0.5 ? u / 2 : (u + 1) / 2)));
        model_curve curve = {peak, second < 1 ? 1 : (second > T ? T : second)};
        plan_counts c;
        rc = simulate(s, nearest_peak, model_peaks, &curve, cal, &mm, &c, err);
        rows += c.rows, rows_c += c.rows_candidates, calls += c.calls, dec += c.decodes;
        for (int i = 0; i < OIR_STAGE_COUNT; i++) units[i] += c.units[i], sec[i] += c.seconds[i];
    }
    memo_free(&mm);
    if (rc) return rc;
    out->n_pairs = s->n_pairs;
    out->steps = T;
    out->unet_rows_total = lround(rows / P);
    out->candidate_rows = lround(rows_c / P);
    out->mask_rows = (long)s->n_masks * (s->mask_rows[0] + s->mask_rows[1]);
    out->unet_calls = lround(calls / P);
    out->decodes = (int)lround(dec / P);
    out->encodes = 1;
    out->max_unet_batch = s->max_unet_batch;
    run_bounds(s, &out->unet_rows_min, &out->unet_rows_max, &out->decodes_min, &out->decodes_max);
    if (s->n_forced == s->n_pairs) { /* every step given: nothing depends on scores */
        out->unet_rows_min = out->unet_rows_max = out->unet_rows_total;
        out->decodes_min = out->decodes_max = out->decodes;
    }
    out->exact = out->unet_rows_min == out->unet_rows_max && out->decodes_min == out->decodes_max;
    double total = 0, unet = 0;
    for (int i = 0; i < OIR_STAGE_COUNT; i++) {
        out->stage_units[i] = units[i] / P;
        out->stage_seconds[i] = cal ? sec[i] / P : 0;
        total += out->stage_seconds[i];
    }
    unet = out->stage_seconds[OIR_STAGE_INVERSION] + out->stage_seconds[OIR_STAGE_CANDIDATES] +
           out->stage_seconds[OIR_STAGE_DENOISE];
    out->seconds = cal ? total : -1;
    out->seconds_per_unet_row = cal && out->unet_rows_total > 0 ? unet / out->unet_rows_total : -1;
    return OIR_OK;
}

void plan_progress_totals(const oir_params *p, int n_pairs, int max_unet_batch, int *decodes, int *scored) {
    plan_setup s;
    oir_plan pl;
    *decodes = *scored = 0;
    if (plan_setup_init(&s, n_pairs, p, max_unet_batch, NULL)) return;
    s.counts_only = 1;
    if (plan_expected(&s, NULL, &pl, NULL)) return;
    *decodes = pl.decodes;
    *scored = (int)lround(pl.stage_units[OIR_STAGE_SCORING]);
}
