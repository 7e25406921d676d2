/* edit_bench: issue 6's edit-quality benchmark on the shapes world — does
 * OIR beat fixed inversion steps? Cases: bench/scenes/edit (single-pair and
 * 2-3-pair edits whose results are held-out colour+shape combinations, each
 * with a ground-truth edited scene).
 *
 * Methods (T DDIM steps; CFG 7.5 everywhere, the NEGATIVE branch is the
 * SOURCE prompt, as OIR does — DESIGN.md §2.2):
 *   fixed k   plain DDIM editing with the whole target prompt: invert to
 *             level k with the source prompt, denoise k steps with the
 *             target prompt; k in {T/5, 2T/5, ..., T} ({10,...,50} at T=50).
 *   search    the search metric on the whole-target-prompt candidates, one
 *             step for all pairs: edit score(k) = mean over pairs of the
 *             masked CLIP cosine of the pair's target phrase in the pair's
 *             mask; background score(k) = -MSE outside the union of the
 *             pair masks; min-max normalised and added as in §2.4.
 *   search-u  (multi-pair cases) the same candidates scored as ONE pair: the
 *             whole target prompt's text in the union mask (what oir_search
 *             does when handed the union and the target prompt).
 *   OIR       oir_edit: each pair's own step from its guided prompt, then
 *             reassembly (R = J = T/5 by default). For single-pair cases OIR,
 *             search and search-u are the same computation (the guided
 *             prompt is the target prompt, the union is the pair's mask).
 * All target-prompt candidates come from one oir_search call (the pair: the
 * union mask, guided prompt = target prompt), so nothing of OIR is
 * re-implemented here; the per-pair scores use the library's scorer.
 *
 * Metrics per case and method (judge: the tiny CLIP, shapes_eval.h):
 *   pair accuracy   object pair right when the CLIP, through the pair's mask,
 *                   picks the target colour AND shape among all 56 phrases;
 *                   background pair right when it picks the target background;
 *   case right      every pair right;
 *   kept            unedited objects still classified as themselves (exact
 *                   object masks);
 *   background      PSNR and MSE against the original outside the union of
 *                   the pair masks (cases without a background pair);
 *   GT PSNR         whole image against the ground-truth edited scene;
 *   CLIP score      cosine of the whole image with the target prompt;
 *   chosen steps    histogram, mean and std; for OIR also the spread of the
 *                   steps within a multi-pair case.
 * A second judge needs no network: the pixel judge (shapes_eval.h,
 * se_edit_evaluate_pixels) reads each object's colour (median inside the new
 * shape's outline, against the palette) and shape (IoU of the coloured
 * region against every outline at that position), each background pair's
 * background, and the unedited objects; its columns sit beside the CLIP
 * judge's. Per judge, OIR is compared case by case with the best fixed step
 * (the fixed k with the most pairs right over the subset) and with the
 * search, by the exact sign test over the cases where they differ; and each
 * multi-pair case's pairs are judged in their own chosen candidate (before
 * reassembly) and in OIR's result (after).
 * Writes OUT.md (the tables) and OUT.json (summary + every case). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "cli/cli_args.h"
#include "io/image.h"
#include "io/outfile.h"
#include "models/loader.h"
#include "oir.h"
#include "measure.h"
#include "shapes_eval.h"

#define N_FIXED 5
enum { M_SEARCH = N_FIXED, M_SEARCH_UNION, M_OIR, M_ORACLE, M_GT, N_METHODS };
enum { SUB_SINGLE, SUB_MULTI, SUB_ALL, N_SUB };
#define N_BINS 10

typedef struct {
    long hist[N_BINS];
    se_stat steps;
} step_dist;

typedef struct {
    const char *model, *clip_dir, *cases_dir, *out, *patch, *read, *low_pick, *guard, *only;
    int n, T, R, J, threads, quiet, sheets, offset;
    float guidance;
} options;

enum { J_CLIP, J_PIXEL, N_JUDGES };
static const char *judge_name[N_JUDGES] = {"CLIP judge", "pixel judge"};

/* Pairs of a case a judge finds right. */
static int right_of(const se_edit_eval *e, int judge) {
    return judge == J_CLIP ? e->obj_right + e->bg_right : e->px_obj_right + e->px_bg_right;
}

/* Per case: the pairs each method gets right with each judge (sign tests). */
typedef struct {
    int sub; /* SUB_SINGLE or SUB_MULTI */
    int right[N_METHODS][N_JUDGES];
} case_rights;

/* OIR's pairs judged in their own chosen candidate (before reassembly) and
 * in the result (after), multi-pair cases. */
typedef struct {
    long pairs, before[N_JUDGES], after[N_JUDGES], gained[N_JUDGES], lost[N_JUDGES];
} reassembly_sum;


static void usage(FILE *to) {
    fprintf(to,
            "usage: edit_bench [--model DIR] [--clip DIR] [--cases DIR] [--n N] [--offset I]\n"
            "                  [--steps T] [--guidance 7.5] [--reassembly-step R]\n"
            "                  [--reinversion-steps J] [--out PREFIX] [--sheets N]\n"
            "                  [--threads N] [--quiet]\n"
            "\n"
            "Issue 6's edit-quality benchmark: fixed inversion steps vs the search metric vs\n"
            "OIR on the shapes-world edit cases (see the header of bench/shapes/edit_bench.c\n"
            "and bench/shapes/README.md for the exact definitions).\n"
            "\n"
            "  --model DIR    SD pipeline (default models/tiny-shapes)\n"
            "  --clip DIR     CLIP: the search metric's scorer and the judge (default\n"
            "                 models/tiny-clip)\n"
            "  --cases DIR    cases with manifest.json (default bench/scenes/edit)\n"
            "  --n N          the first N single-pair AND the first N multi-pair cases\n"
            "                 (default: all); --offset I skips I of each first\n"
            "  --steps T      DDIM steps (default 20: what fits the 60-minute budget on 2\n"
            "                 cores; the paper uses 50); fixed k in {T/5, ..., T}\n"
            "  --guidance G   CFG scale (default 7.5; the negative branch is the source prompt)\n"
            "  --reassembly-step R, --reinversion-steps J   OIR (default T/5 each, the\n"
            "                 paper's 10 of 50)\n"
            "  --out PREFIX   writes PREFIX.md and PREFIX.json (default\n"
            "                 bench/results/edit_quality)\n"
            "  --sheets N     also write PREFIX_sheets/<case>.png for the first N cases of each\n"
            "                 kind: source | ground truth | fixed k... | search | search-u | OIR |\n"
            "                 oracle\n"
            "  --patch MODE   the judge's mask-to-patch-grid convention: any (default: every patch\n"
            "                 the mask touches), nearest (as the search metric) or centre (as\n"
            "                 tools/train/eval.py)\n"
            "  --read HOW     how the judge reads an object: words (default: colour words on the\n"
            "                 image, shape words on its greyscale) or phrase (arg-max over every\n"
            "                 'COLOUR SHAPE' phrase)\n"
            "  --low-pick MODE  OIR with a pair at or below R: lower or reinvert (default: the\n"
            "                 library's, oir_default_params)\n"
            "  --guard MARGIN   the search metric's no-edit guard on every oir_search/oir_edit\n"
            "                 call (search-u and OIR; default off)\n"
            "  --only KIND    run only the single-pair or only the multi-pair cases (single,\n"
            "                 multi; default both)\n"
            "  --threads N    CPU threads (default $OIR_THREADS, else all cores)\n");
}

static const char *method_name(int m, int T, char *buf, size_t cap) {
    if (m < N_FIXED)
        snprintf(buf, cap, "fixed k=%d", (m + 1) * T / N_FIXED);
    else
        snprintf(buf, cap, "%s",
                 m == M_SEARCH         ? "search (mean of pairs)"
                 : m == M_SEARCH_UNION ? "search-u (union, whole prompt)"
                 : m == M_OIR          ? "OIR"
                 : m == M_ORACLE       ? "oracle k per case (judge-picked)"
                                       : "ground truth (judge ceiling)");
    return buf;
}

static void dist_add(step_dist *d, int step, int T) {
    d->hist[se_bin(step, T, N_BINS)]++;
    se_stat_add(&d->steps, step);
}

/* Bit p set when pair p of c is right in img (the judge, as se_edit_evaluate). */
static int pairs_right(se_judge *j, const se_case *c, const unsigned char *img, const unsigned char *pmasks,
                       int size, int *bits, oir_error *err) {
    const unsigned char *imgs[SE_MAX_PAIRS], *ms[SE_MAX_PAIRS];
    int col[SE_MAX_PAIRS], shp[SE_MAX_PAIRS], bg[SE_MAX_PAIRS];
    for (int p = 0; p < c->n_pairs; p++) {
        imgs[p] = img;
        ms[p] = pmasks + (size_t)p * size * size;
    }
    int rc = se_judge_classify(j, imgs, ms, c->n_pairs, size, col, shp, bg, NULL, err);
    *bits = 0;
    for (int p = 0; !rc && p < c->n_pairs; p++) {
        const se_pair *pr = &c->pairs[p];
        int ok = pr->is_background ? bg[p] == pr->background : col[p] == pr->colour && shp[p] == pr->shape;
        *bits |= ok << p;
    }
    return rc;
}

static double pct(long a, long b) { return b ? 100.0 * a / b : NAN; }

static void fmt_pct(char *buf, size_t cap, long a, long b) {
    if (b)
        snprintf(buf, cap, "%.1f%% (%ld/%ld)", pct(a, b), a, b);
    else
        snprintf(buf, cap, "-");
}

static void fmt_num(char *buf, size_t cap, const char *fmt, double v) {
    if (isfinite(v))
        snprintf(buf, cap, fmt, v);
    else
        snprintf(buf, cap, "-");
}

static void print_tables(FILE *f, se_edit_sum sums[N_SUB][N_METHODS], step_dist dist[N_SUB][N_METHODS],
                         const step_dist first_right[N_SUB], const long never_right[N_SUB],
                         const se_stat *within, long multi_varied, long multi_cases, long lowered_R, int T) {
    static const char *sub_name[N_SUB] = {"single-pair cases", "multi-pair cases (2-3 pairs)", "all cases"};
    char name[64], a[64], b[64], c[64], d[64], e[64], g[64], h[64], k[64], l[64], r2[64], s[64];
    for (int sub = 0; sub < N_SUB; sub++) {
        if (!sums[sub][M_OIR].cases) continue;
        fprintf(f, "\n### %s (%ld)\n\n", sub_name[sub], sums[sub][M_OIR].cases);
        fprintf(f,
                "| method | object pairs right | colour / shape right | held-out results right | background "
                "pairs right | cases all right | unedited kept | background PSNR dB | background MSE x1e3 | "
                "GT PSNR dB | edit-region PSNR vs GT dB | CLIP score | chosen step mean (std) |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int m = 0; m < N_METHODS; m++) {
            const se_edit_sum *x = &sums[sub][m];
            if (sub == SUB_SINGLE && m == M_SEARCH_UNION) continue; /* identical to search and OIR */
            fmt_pct(a, sizeof a, x->obj_right, x->obj_pairs);
            snprintf(b, sizeof b, "%.0f%% / %.0f%%", pct(x->colour_right, x->obj_pairs),
                     pct(x->shape_right, x->obj_pairs));
            fmt_pct(c, sizeof c, x->heldout_right, x->heldout_pairs);
            fmt_pct(d, sizeof d, x->bg_right, x->bg_pairs);
            fmt_pct(e, sizeof e, x->all_right, x->cases);
            fmt_pct(g, sizeof g, x->kept_right, x->kept_n);
            fmt_num(h, sizeof h, "%.2f", se_stat_mean(&x->bg_psnr));
            fmt_num(k, sizeof k, "%.2f", 1e3 * se_stat_mean(&x->bg_mse));
            fmt_num(l, sizeof l, "%.2f", se_stat_mean(&x->gt_psnr));
            fmt_num(r2, sizeof r2, "%.2f", se_stat_mean(&x->edit_psnr));
            const step_dist *sd = &dist[sub][m];
            if (m < N_FIXED)
                snprintf(s, sizeof s, "%d (fixed)", (m + 1) * T / N_FIXED);
            else if (m == M_GT)
                snprintf(s, sizeof s, "-");
            else
                snprintf(s, sizeof s, "%.1f (%.1f)", se_stat_mean(&sd->steps), se_stat_std(&sd->steps));
            fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.4f | %s |\n",
                    method_name(m, T, name, sizeof name), a, b, c, d, e, g, h, k, l, r2, se_stat_mean(&x->clip), s);
        }
    }
    fprintf(f, "\n### chosen inversion steps (T = %d)\n\n| method | unit |", T);
    for (int b2 = 0; b2 < N_BINS; b2++)
        fprintf(f, " %d-%d |", b2 * T / N_BINS + 1, (b2 + 1) * T / N_BINS);
    fprintf(f, " mean | std |\n|---|---|");
    for (int b2 = 0; b2 < N_BINS + 2; b2++) fprintf(f, "---|");
    fprintf(f, "\n");
    struct {
        int sub, m;
        const char *label, *unit;
    } rows[] = {{SUB_ALL, M_SEARCH, "search (mean of pairs)", "case"},
                {SUB_MULTI, M_SEARCH_UNION, "search-u (multi-pair cases)", "case"},
                {SUB_SINGLE, M_OIR, "OIR, single-pair cases", "pair"},
                {SUB_MULTI, M_OIR, "OIR, multi-pair cases", "pair"},
                {SUB_ALL, M_OIR, "OIR, all", "pair"},
                {SUB_ALL, M_ORACLE, "oracle k per case (judge-picked)", "case"},
                {SUB_SINGLE, -1, "first k where the pair is right, single-pair cases", "pair"},
                {SUB_MULTI, -1, "first k where the pair is right, multi-pair cases", "pair"}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const step_dist *sd = rows[r].m < 0 ? &first_right[rows[r].sub] : &dist[rows[r].sub][rows[r].m];
        if (!sd->steps.n) continue;
        fprintf(f, "| %s | %s |", rows[r].label, rows[r].unit);
        for (int b2 = 0; b2 < N_BINS; b2++) fprintf(f, " %ld |", sd->hist[b2]);
        fprintf(f, " %.1f | %.1f |\n", se_stat_mean(&sd->steps), se_stat_std(&sd->steps));
    }
    fprintf(f,
            "\n\"First k where the pair is right\": the smallest k whose whole-target-prompt candidate the judge "
            "finds right for that pair; pairs right at no k: %ld (single-pair cases), %ld (multi-pair cases).\n",
            never_right[SUB_SINGLE], never_right[SUB_MULTI]);
    if (multi_cases)
        fprintf(f,
                "\nOIR within a multi-pair case: the pairs' chosen steps differ by >= T/10 in %ld of %ld cases; "
                "mean within-case std of the steps %.1f. Reassembly step lowered (a pair chose k <= R) in %ld "
                "cases.\n",
                multi_varied, multi_cases, se_stat_mean(within), lowered_R);
}

/* Total pairs right of method m with a judge over a subset's cases. */
static long subset_right(const case_rights *cr, int n, int sub, int m, int judge) {
    long r = 0;
    for (int i = 0; i < n; i++)
        if (sub == SUB_ALL || cr[i].sub == sub) r += cr[i].right[m][judge];
    return r;
}

typedef struct {
    int other;                 /* the method OIR is compared with */
    long wins, losses, ties;   /* cases where OIR got more / fewer / as many pairs right */
    long oir_right, other_right, pairs, cases;
    double p;                  /* exact sign test, two-sided */
} comparison;

/* OIR against method `other` (or, other < 0, the best fixed step of the subset). */
static comparison compare(const case_rights *cr, int n, int sub, int judge, int other, long pairs) {
    comparison c;
    memset(&c, 0, sizeof c);
    if (other < 0) { /* the fixed k with the most pairs right (ties: the smallest k) */
        long best = -1;
        for (int m = 0; m < N_FIXED; m++) {
            long r = subset_right(cr, n, sub, m, judge);
            if (r > best) best = r, other = m;
        }
    }
    c.other = other;
    c.pairs = pairs;
    for (int i = 0; i < n; i++) {
        if (sub != SUB_ALL && cr[i].sub != sub) continue;
        int a = cr[i].right[M_OIR][judge], b = cr[i].right[other][judge];
        c.cases++;
        c.oir_right += a, c.other_right += b;
        c.wins += a > b, c.losses += a < b, c.ties += a == b;
    }
    c.p = se_sign_test_p(c.wins, c.losses);
    return c;
}

static cJSON *json_comparison(const comparison *c, int T) {
    cJSON *o = cJSON_CreateObject();
    char name[64];
    cJSON_AddStringToObject(o, "against", method_name(c->other, T, name, sizeof name));
    cJSON_AddNumberToObject(o, "cases", (double)c->cases);
    cJSON_AddNumberToObject(o, "pairs", (double)c->pairs);
    cJSON_AddNumberToObject(o, "oir_pairs_right", (double)c->oir_right);
    cJSON_AddNumberToObject(o, "other_pairs_right", (double)c->other_right);
    cJSON_AddNumberToObject(o, "oir_wins", (double)c->wins);
    cJSON_AddNumberToObject(o, "oir_losses", (double)c->losses);
    cJSON_AddNumberToObject(o, "ties", (double)c->ties);
    cJSON_AddNumberToObject(o, "sign_test_p", c->p);
    return o;
}

/* The second judge's table, the paired comparisons of OIR with the best fixed
 * step and the search under both judges, and OIR's pairs before and after
 * the reassembly. */
static void print_second_judge(FILE *f, se_edit_sum sums[N_SUB][N_METHODS], const case_rights *cr, int n,
                               const reassembly_sum *ra, int T) {
    static const char *sub_name[N_SUB] = {"single-pair cases", "multi-pair cases (2-3 pairs)", "all cases"};
    char name[64], a[64], b[64], d[64], e[64], g[64];
    for (int sub = 0; sub < N_SUB; sub++) {
        if (!sums[sub][M_OIR].px_cases) continue;
        fprintf(f, "\n### pixel judge, %s (%ld)\n\n", sub_name[sub], sums[sub][M_OIR].px_cases);
        fprintf(f, "| method | object pairs right | colour / shape right | background pairs right | cases all right | "
                   "unedited kept | CLIP judge: pairs right |\n|---|---|---|---|---|---|---|\n");
        for (int m = 0; m < N_METHODS; m++) {
            const se_edit_sum *x = &sums[sub][m];
            if (sub == SUB_SINGLE && m == M_SEARCH_UNION) continue;
            fmt_pct(a, sizeof a, x->px_obj_right, x->px_obj_pairs);
            snprintf(b, sizeof b, "%.0f%% / %.0f%%", pct(x->px_colour_right, x->px_obj_pairs),
                     pct(x->px_shape_right, x->px_obj_pairs));
            fmt_pct(d, sizeof d, x->px_bg_right, x->px_bg_pairs);
            fmt_pct(e, sizeof e, x->px_all_right, x->px_cases);
            fmt_pct(g, sizeof g, x->px_kept_right, x->px_kept_n);
            char c2[64];
            fmt_pct(c2, sizeof c2, x->obj_right + x->bg_right, x->obj_pairs + x->bg_pairs);
            fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", method_name(m, T, name, sizeof name), a, b, d, e, g, c2);
        }
    }
    fprintf(f, "\n### OIR against the best fixed step and the search, case by case (exact sign test)\n\n"
               "| cases | judge | OIR pairs right | compared with | its pairs right | difference | OIR better / worse / "
               "tied (cases) | sign test p |\n|---|---|---|---|---|---|---|---|\n");
    for (int sub = 0; sub < N_SUB; sub++) {
        long pairs = sums[sub][M_OIR].obj_pairs + sums[sub][M_OIR].bg_pairs;
        if (!sums[sub][M_OIR].cases) continue;
        for (int judge = 0; judge < N_JUDGES; judge++)
            for (int k = 0; k < 2; k++) {
                comparison c = compare(cr, n, sub, judge, k ? M_SEARCH : -1, pairs);
                fprintf(f, "| %s | %s | %.1f%% | %s%s | %.1f%% | %+.1f pts | %ld / %ld / %ld | %.3g |\n", sub_name[sub],
                        judge_name[judge], pct(c.oir_right, pairs), method_name(c.other, T, name, sizeof name),
                        k ? "" : " (best fixed)", pct(c.other_right, pairs), pct(c.oir_right - c.other_right, pairs),
                        c.wins, c.losses, c.ties, c.p);
            }
    }
    if (ra->pairs) {
        fprintf(f, "\n### OIR's pairs before and after the reassembly (multi-pair cases, %ld pairs)\n\n"
                   "| judge | right in the pair's own chosen candidate | right after reassembly | gained | lost |\n"
                   "|---|---|---|---|---|\n", ra->pairs);
        for (int judge = 0; judge < N_JUDGES; judge++) {
            fmt_pct(a, sizeof a, ra->before[judge], ra->pairs);
            fmt_pct(b, sizeof b, ra->after[judge], ra->pairs);
            fprintf(f, "| %s | %s | %s | %ld | %ld |\n", judge_name[judge], a, b, ra->gained[judge], ra->lost[judge]);
        }
    }
}

static cJSON *json_eval(const se_edit_eval *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "object_pairs", e->obj_pairs);
    cJSON_AddNumberToObject(o, "object_right", e->obj_right);
    cJSON_AddNumberToObject(o, "colour_right", e->colour_right);
    cJSON_AddNumberToObject(o, "shape_right", e->shape_right);
    cJSON_AddNumberToObject(o, "background_pairs", e->bg_pairs);
    cJSON_AddNumberToObject(o, "background_right", e->bg_right);
    cJSON_AddBoolToObject(o, "all_right", e->all_right);
    cJSON_AddNumberToObject(o, "kept", e->kept_right);
    cJSON_AddNumberToObject(o, "unedited", e->kept_n);
    se_json_num(o, "background_mse", e->has_bg_region ? e->bg_mse : NAN);
    se_json_num(o, "background_psnr", e->has_bg_region ? e->bg_psnr : NAN);
    se_json_num(o, "gt_psnr", e->gt_psnr);
    se_json_num(o, "edit_region_psnr", e->edit_psnr);
    se_json_num(o, "clip_score", e->clip_score);
    if (e->px_judged) {
        cJSON *px = cJSON_AddObjectToObject(o, "pixel_judge");
        cJSON_AddNumberToObject(px, "object_right", e->px_obj_right);
        cJSON_AddNumberToObject(px, "colour_right", e->px_colour_right);
        cJSON_AddNumberToObject(px, "shape_right", e->px_shape_right);
        cJSON_AddNumberToObject(px, "background_right", e->px_bg_right);
        cJSON_AddBoolToObject(px, "all_right", e->px_all_right);
        cJSON_AddNumberToObject(px, "kept", e->px_kept_right);
    }
    return o;
}

static cJSON *json_sum(const se_edit_sum *x) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "cases", (double)x->cases);
    se_json_num(o, "object_pair_acc", x->obj_pairs ? (double)x->obj_right / x->obj_pairs : NAN);
    se_json_num(o, "colour_acc", x->obj_pairs ? (double)x->colour_right / x->obj_pairs : NAN);
    se_json_num(o, "shape_acc", x->obj_pairs ? (double)x->shape_right / x->obj_pairs : NAN);
    se_json_num(o, "heldout_result_acc", x->heldout_pairs ? (double)x->heldout_right / x->heldout_pairs : NAN);
    se_json_num(o, "background_pair_acc", x->bg_pairs ? (double)x->bg_right / x->bg_pairs : NAN);
    se_json_num(o, "case_all_right", x->cases ? (double)x->all_right / x->cases : NAN);
    se_json_num(o, "unedited_kept", x->kept_n ? (double)x->kept_right / x->kept_n : NAN);
    se_json_num(o, "background_psnr", se_stat_mean(&x->bg_psnr));
    se_json_num(o, "background_mse", se_stat_mean(&x->bg_mse));
    se_json_num(o, "gt_psnr", se_stat_mean(&x->gt_psnr));
    se_json_num(o, "edit_region_psnr", se_stat_mean(&x->edit_psnr));
    se_json_num(o, "clip_score", se_stat_mean(&x->clip));
    cJSON *px = cJSON_AddObjectToObject(o, "pixel_judge");
    cJSON_AddNumberToObject(px, "cases", (double)x->px_cases);
    se_json_num(px, "object_pair_acc", x->px_obj_pairs ? (double)x->px_obj_right / x->px_obj_pairs : NAN);
    se_json_num(px, "colour_acc", x->px_obj_pairs ? (double)x->px_colour_right / x->px_obj_pairs : NAN);
    se_json_num(px, "shape_acc", x->px_obj_pairs ? (double)x->px_shape_right / x->px_obj_pairs : NAN);
    se_json_num(px, "background_pair_acc", x->px_bg_pairs ? (double)x->px_bg_right / x->px_bg_pairs : NAN);
    se_json_num(px, "case_all_right", x->px_cases ? (double)x->px_all_right / x->px_cases : NAN);
    se_json_num(px, "unedited_kept", x->px_kept_n ? (double)x->px_kept_right / x->px_kept_n : NAN);
    return o;
}

static cJSON *json_ints(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* source | gt | each method, side by side. */
static int write_sheet(const char *path, const unsigned char *const *imgs, int n, int size, oir_error *err) {
    image sheet = {0};
    int rc = image_alloc(&sheet, size * n + (n - 1) * 2, size, 3, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)sheet.width * sheet.height * 3; i++) sheet.data[i] = 1.0f;
    for (int k = 0; k < n; k++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int ch = 0; ch < 3; ch++)
                    sheet.data[((size_t)y * sheet.width + k * (size + 2) + x) * 3 + ch] =
                        imgs[k][((size_t)y * size + x) * 3 + ch] / 255.0f;
    rc = image_save_png(&sheet, path, err);
    image_free(&sheet);
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    options o = {"models/tiny-shapes", "models/tiny-clip", "bench/scenes/edit", "bench/results/edit_quality",
                 "any", "words", NULL, NULL, NULL, 0, 20, -1, -1, 0, 0, 0, 0, 7.5f};
    const cli_opt opts[] = {
        {"--model", CLI_STR, &o.model, 0, 0},
        {"--clip", CLI_STR, &o.clip_dir, 0, 0},
        {"--cases", CLI_STR, &o.cases_dir, 0, 0},
        {"--out", CLI_STR, &o.out, 0, 0},
        {"--n", CLI_INT, &o.n, 0, 1000000},
        {"--offset", CLI_INT, &o.offset, 0, 1000000},
        {"--steps", CLI_INT, &o.T, N_FIXED, 1000},
        {"--guidance", CLI_FLOAT, &o.guidance, 0, 100},
        {"--reassembly-step", CLI_INT, &o.R, 0, 1000},
        {"--reinversion-steps", CLI_INT, &o.J, 0, 1000},
        {"--sheets", CLI_INT, &o.sheets, 0, 1000},
        {"--threads", CLI_INT, &o.threads, 1, 1024},
        {"--quiet", CLI_FLAG, &o.quiet, 0, 0},
        {"--patch", CLI_STR, &o.patch, 0, 0},
        {"--read", CLI_STR, &o.read, 0, 0},
        {"--low-pick", CLI_STR, &o.low_pick, 0, 0},
        {"--guard", CLI_STR, &o.guard, 0, 0},
        {"--only", CLI_STR, &o.only, 0, 0},
    };
    oir_error err = {0};
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err);
    if (rc) {
        fprintf(stderr, "edit_bench: %s\n", err.message);
        return 2;
    }
    if (se_read_words(o.read) < 0) {
        fprintf(stderr, "edit_bench: --read is " SE_READ_MODES " (got '%s')\n", o.read);
        return 2;
    }
    if (se_patch_mode(o.patch) < 0) {
        fprintf(stderr, "edit_bench: --patch is " SE_PATCH_MODES " (got '%s')\n", o.patch);
        return 2;
    }
    if (o.R < 0) o.R = (o.T + 2) / 5;
    if (o.J < 0) o.J = (o.T + 2) / 5;
    int low_pick = oir_default_params().low_pick, guard = 0;
    float guard_margin = 0;
    if (o.low_pick && (low_pick = oir_low_pick_parse(o.low_pick)) < 0) {
        fprintf(stderr, "edit_bench: --low-pick is lower or reinvert (got '%s')\n", o.low_pick);
        return 2;
    }
    if (o.guard && strcmp(o.guard, "off")) {
        char *end = NULL;
        double g = strtod(o.guard, &end);
        if (!*o.guard || *end || !isfinite(g) || g < 0) {
            fprintf(stderr, "edit_bench: --guard is off or a margin >= 0 (got '%s')\n", o.guard);
            return 2;
        }
        guard = 1, guard_margin = (float)g;
    }
    int only_kind = -1; /* -1: both; 0: single-pair cases; 1: multi-pair cases */
    if (o.only && (only_kind = !strcmp(o.only, "single") ? 0 : !strcmp(o.only, "multi") ? 1 : -2) == -2) {
        fprintf(stderr, "edit_bench: --only is single or multi (got '%s')\n", o.only);
        return 2;
    }
    cli_set_threads(o.threads);

    se_case_set set = {0};
    oir_context *ctx = NULL;
    clip_model *clip = NULL;
    se_judge judge = {0};
    se_px_judge px = {0};
    case_rights *rights = NULL;
    reassembly_sum ra;
    memset(&ra, 0, sizeof ra);
    long reinverted_pairs = 0;
    int have_judge = 0, exit_code = 0;
    unsigned char *buf = NULL;
    cJSON *jcases = cJSON_CreateArray();
    static se_edit_sum sums[N_SUB][N_METHODS];
    static step_dist dist[N_SUB][N_METHODS], first_right[N_SUB];
    static long never_right[N_SUB];
    se_stat within = {0};
    long multi_varied = 0, multi_cases = 0, lowered_R = 0, search_mismatch = 0;
    double t_start = clock_wall_s();
    if ((rc = se_case_set_load(&set, o.cases_dir, &err))) goto fail;
    oir_context_params cp = oir_context_default_params();
    cp.model_path = o.model;
    cp.clip_path = o.clip_dir;
    cp.threads = o.threads;
    if ((rc = oir_context_load(&ctx, &cp, &err))) goto fail;
    if ((rc = clip_model_load(&clip, o.clip_dir, &err))) goto fail;
    if ((rc = se_judge_init(&judge, clip, &set.vocab, &err))) goto fail;
    have_judge = 1;
    judge.patch_mode = se_patch_mode(o.patch);
    judge.read_words = se_read_words(o.read); /* the judge only; the search metric is the library's */
    int size = oir_context_image_size(ctx), T = o.T;
    if ((rc = se_px_init(&px, &set.vocab, size, &err))) goto fail;
    if (!(rights = calloc((size_t)set.n, sizeof *rights))) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    size_t hw = (size_t)size * size;
    /* buffers: rgb, gt, union, pair masks, object masks, OIR image, target text */
    size_t need = hw * 3 * 3 + hw * (1 + SE_MAX_PAIRS + SE_MAX_OBJECTS) + sizeof(float) * 4096;
    buf = malloc(need);
    if (!buf) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    unsigned char *rgb = buf, *gt = rgb + hw * 3, *oir_img = gt + hw * 3, *uni = oir_img + hw * 3;
    unsigned char *pmasks = uni + hw, *omasks = pmasks + hw * SE_MAX_PAIRS;
    float *target_text = (float *)(void *)(omasks + hw * SE_MAX_OBJECTS);
    /* which cases: the first n single and the first n multi (after offset) */
    int n_single = 0, n_multi = 0, n_run = 0;
    for (int i = 0; i < set.n; i++) *(set.cases[i].n_pairs == 1 ? &n_single : &n_multi) += 1;
    int want = o.n > 0 ? o.n : set.n;
    if (!o.quiet)
        fprintf(stderr,
                "edit_bench: %s (%d single, %d multi), model %s (%dx%d%s), T=%d, R=%d, J=%d, CFG %g, %d "
                "thread(s)\n",
                o.cases_dir, n_single < want ? n_single : want, n_multi < want ? n_multi : want, o.model, size,
                size, size != set.size ? ", cases resized" : "", T, o.R, o.J, o.guidance, oir_get_threads());
    int seen[2] = {0, 0}, done_kind[2] = {0, 0};
    for (int ci = 0; ci < set.n; ci++) {
        const se_case *c = &set.cases[ci];
        int kind = c->n_pairs > 1;
        if (seen[kind]++ < o.offset || done_kind[kind] >= want || (only_kind >= 0 && kind != only_kind)) continue;
        done_kind[kind]++;
        double t0 = clock_wall_s();
        if ((rc = se_edit_case_load(c, size, rgb, gt, pmasks, uni, omasks, &err))) goto fail;
        if ((rc = se_judge_text(&judge, c->target, target_text, &err))) goto fail;
        /* 1. the whole-target-prompt candidates (and, for one pair, OIR itself) */
        oir_params p = oir_default_params();
        p.steps = T;
        p.guidance = o.guidance;
        p.reassembly_step = o.R;
        p.reinversion_steps = o.J;
        p.target_prompt = c->target;
        p.keep_candidates = 1;
        p.low_pick = low_pick;
        p.guard = guard;
        p.guard_margin = guard_margin;
        oir_pair pu = {c->pairs[0].from, kind ? c->target : c->pairs[0].to, uni, c->target};
        oir_result *rt = NULL, *ro = NULL;
        if ((rc = oir_search(ctx, rgb, size, size, c->source, &pu, &p, &rt, &err))) goto fail;
        /* 2. OIR */
        if (kind) {
            oir_pair pairs[SE_MAX_PAIRS];
            for (int q = 0; q < c->n_pairs; q++) {
                pairs[q].from = c->pairs[q].from;
                pairs[q].to = c->pairs[q].to;
                pairs[q].mask = pmasks + q * hw;
                pairs[q].guided_prompt = c->pairs[q].guided;
            }
            p.keep_candidates = 1; /* each pair's own candidate, judged before the reassembly */
            if ((rc = oir_edit(ctx, rgb, size, size, c->source, pairs, c->n_pairs, &p, &ro, &err))) {
                oir_result_free(rt);
                goto fail;
            }
        }
        const oir_result *oir = kind ? ro : rt;
        memcpy(oir_img, oir->edited, hw * 3);
        /* 3. the search metric, mean of pairs */
        int k_search = 0;
        rc = se_search_mean_of_pairs(clip, c, rgb, rt->candidates, T, pmasks, uni, size, &k_search, &err);
        if (!rc && !kind && k_search != rt->chosen_step[0]) search_mismatch++;
        /* 4. the judge on every whole-target-prompt candidate: the best single step of the case
         * (most pairs right; ties: the smallest k) and each pair's first right step */
        int k_oracle = 1, best_right = -1, first[SE_MAX_PAIRS] = {0};
        for (int k = 1; !rc && k <= T; k++) {
            int bits = 0, nr = 0;
            rc = pairs_right(&judge, c, rt->candidates + (size_t)(k - 1) * hw * 3, pmasks, size, &bits, &err);
            for (int q = 0; q < c->n_pairs; q++)
                if (bits >> q & 1) {
                    nr++;
                    if (!first[q]) first[q] = k;
                }
            if (nr > best_right) {
                best_right = nr;
                k_oracle = k;
            }
        }
        /* 5. judge every method's image */
        se_edit_eval ev[N_METHODS];
        const unsigned char *img_of[N_METHODS];
        for (int m = 0; m < N_FIXED; m++) img_of[m] = rt->candidates + (size_t)((m + 1) * T / N_FIXED - 1) * hw * 3;
        img_of[M_SEARCH] = rt->candidates + (size_t)(k_search - 1) * hw * 3;
        img_of[M_SEARCH_UNION] = rt->candidates + (size_t)(rt->chosen_step[0] - 1) * hw * 3;
        img_of[M_OIR] = oir_img;
        img_of[M_ORACLE] = rt->candidates + (size_t)(k_oracle - 1) * hw * 3;
        img_of[M_GT] = gt;
        for (int m = 0; !rc && m < N_METHODS; m++) {
            rc = se_edit_evaluate(&judge, c, img_of[m], rgb, gt, pmasks, omasks, uni, size, target_text, &ev[m], &err);
            if (!rc) rc = se_edit_evaluate_pixels(&px, c, img_of[m], pmasks, &ev[m], &err);
        }
        /* OIR's pairs in their own chosen candidate, before the reassembly (both judges) */
        int before_bits[N_JUDGES] = {0, 0}, after_bits[N_JUDGES] = {0, 0};
        for (int q = 0; !rc && kind && q < c->n_pairs; q++) {
            const unsigned char *cand = ro->candidates + ((size_t)q * T + ro->chosen_step[q] - 1) * hw * 3;
            int bits = 0;
            rc = pairs_right(&judge, c, cand, pmasks, size, &bits, &err);
            before_bits[J_CLIP] |= (bits >> q & 1) << q;
            before_bits[J_PIXEL] |= se_pair_right_pixels(&px, c, q, cand, pmasks) << q;
        }
        if (!rc && kind) {
            int bits = 0;
            rc = pairs_right(&judge, c, oir_img, pmasks, size, &bits, &err);
            after_bits[J_CLIP] = bits;
            for (int q = 0; q < c->n_pairs; q++) after_bits[J_PIXEL] |= se_pair_right_pixels(&px, c, q, oir_img, pmasks) << q;
            ra.pairs += c->n_pairs;
            for (int jd = 0; jd < N_JUDGES; jd++)
                for (int q = 0; q < c->n_pairs; q++) {
                    int b0 = before_bits[jd] >> q & 1, b1 = after_bits[jd] >> q & 1;
                    ra.before[jd] += b0, ra.after[jd] += b1, ra.gained[jd] += !b0 && b1, ra.lost[jd] += b0 && !b1;
                }
            for (int q = 0; q < c->n_pairs; q++) reinverted_pairs += ro->reinverted[q];
        }
        if (!rc) {
            case_rights *cr = &rights[n_run];
            cr->sub = kind ? SUB_MULTI : SUB_SINGLE;
            for (int m = 0; m < N_METHODS; m++)
                for (int jd = 0; jd < N_JUDGES; jd++) cr->right[m][jd] = right_of(&ev[m], jd);
        }
        if (!rc && o.sheets > 0 && done_kind[kind] <= o.sheets) {
            char path[1200], dir[1024], flat[64];
            snprintf(dir, sizeof dir, "%s_sheets", o.out);
            mkdir(dir, 0777); /* an existing folder is fine; a failure shows when writing */
            snprintf(flat, sizeof flat, "%s", c->name);
            for (char *ch = flat; *ch; ch++)
                if (*ch == '/') *ch = '_';
            snprintf(path, sizeof path, "%s/%s.png", dir, flat);
            const unsigned char *row[1 + N_METHODS] = {rgb, gt};
            for (int m = 0; m < M_GT; m++) row[2 + m] = img_of[m];
            rc = write_sheet(path, row, 1 + N_METHODS, size, &err);
        }
        if (rc) {
            oir_result_free(rt);
            oir_result_free(ro);
            goto fail;
        }
        /* 5. accumulate */
        int subs[2] = {kind ? SUB_MULTI : SUB_SINGLE, SUB_ALL};
        for (int si = 0; si < 2; si++) {
            for (int m = 0; m < N_METHODS; m++) se_edit_sum_add(&sums[subs[si]][m], &ev[m]);
            dist_add(&dist[subs[si]][M_SEARCH], k_search, T);
            dist_add(&dist[subs[si]][M_SEARCH_UNION], rt->chosen_step[0], T);
            for (int q = 0; q < oir->n_pairs; q++) dist_add(&dist[subs[si]][M_OIR], oir->chosen_step[q], T);
            dist_add(&dist[subs[si]][M_ORACLE], k_oracle, T);
            for (int q = 0; q < c->n_pairs; q++) {
                if (first[q])
                    dist_add(&first_right[subs[si]], first[q], T);
                else
                    never_right[subs[si]]++;
            }
        }
        if (kind) {
            se_stat st = {0};
            int lo = T, hi = 0;
            for (int q = 0; q < oir->n_pairs; q++) {
                se_stat_add(&st, oir->chosen_step[q]);
                lo = oir->chosen_step[q] < lo ? oir->chosen_step[q] : lo;
                hi = oir->chosen_step[q] > hi ? oir->chosen_step[q] : hi;
            }
            se_stat_add(&within, se_stat_std(&st));
            multi_cases++;
            multi_varied += hi - lo >= (T + 9) / 10;
            lowered_R += oir->reassembly_step < o.R;
        }
        cJSON *jc = cJSON_CreateObject();
        cJSON_AddStringToObject(jc, "case", c->name);
        cJSON_AddNumberToObject(jc, "pairs", c->n_pairs);
        cJSON_AddNumberToObject(jc, "search_step", k_search);
        cJSON_AddNumberToObject(jc, "search_union_step", rt->chosen_step[0]);
        cJSON_AddNumberToObject(jc, "oracle_step", k_oracle);
        cJSON_AddItemToObject(jc, "first_right_step", json_ints(first, c->n_pairs));
        cJSON_AddItemToObject(jc, "oir_steps", json_ints(oir->chosen_step, oir->n_pairs));
        cJSON_AddNumberToObject(jc, "oir_reassembly_step", oir->reassembly_step);
        if (kind) {
            int rv[SE_MAX_PAIRS];
            for (int q = 0; q < c->n_pairs; q++) rv[q] = ro->reinverted[q];
            cJSON_AddItemToObject(jc, "oir_reinverted", json_ints(rv, c->n_pairs));
            cJSON *jb = cJSON_AddObjectToObject(jc, "oir_pairs_right_before_reassembly");
            cJSON *jaft = cJSON_AddObjectToObject(jc, "oir_pairs_right_after_reassembly");
            for (int jd = 0; jd < N_JUDGES; jd++) {
                int bb[SE_MAX_PAIRS], aa[SE_MAX_PAIRS];
                for (int q = 0; q < c->n_pairs; q++) bb[q] = before_bits[jd] >> q & 1, aa[q] = after_bits[jd] >> q & 1;
                cJSON_AddItemToObject(jb, jd == J_CLIP ? "clip" : "pixel", json_ints(bb, c->n_pairs));
                cJSON_AddItemToObject(jaft, jd == J_CLIP ? "clip" : "pixel", json_ints(aa, c->n_pairs));
            }
        }
        cJSON *jw = cJSON_CreateArray();
        for (int w = 0; w < oir->n_warnings; w++) cJSON_AddItemToArray(jw, cJSON_CreateString(oir->warnings[w]));
        cJSON_AddItemToObject(jc, "oir_warnings", jw);
        cJSON *jm = cJSON_CreateObject();
        char name[64];
        for (int m = 0; m < N_METHODS; m++) cJSON_AddItemToObject(jm, method_name(m, T, name, sizeof name), json_eval(&ev[m]));
        cJSON_AddItemToObject(jc, "methods", jm);
        double secs = clock_wall_s() - t0;
        cJSON_AddNumberToObject(jc, "seconds", secs);
        cJSON_AddItemToArray(jcases, jc);
        n_run++;
        if (!o.quiet) {
            fprintf(stderr, "[%3d] %-10s %d pair(s) %5.1f s  OIR steps", n_run, c->name, c->n_pairs, secs);
            for (int q = 0; q < oir->n_pairs; q++) fprintf(stderr, " %d", oir->chosen_step[q]);
            fprintf(stderr, ", search %d; pairs right: OIR %d/%d (pixel %d), k=%d %d/%d (pixel %d)\n", k_search,
                    ev[M_OIR].obj_right + ev[M_OIR].bg_right, c->n_pairs, right_of(&ev[M_OIR], J_PIXEL), T,
                    ev[N_FIXED - 1].obj_right + ev[N_FIXED - 1].bg_right, c->n_pairs,
                    right_of(&ev[N_FIXED - 1], J_PIXEL));
        }
        oir_result_free(rt);
        oir_result_free(ro);
    }
    double total = clock_wall_s() - t_start;
    /* output */
    {
        char path[1024];
        snprintf(path, sizeof path, "%s.md", o.out);
        outfile of;
        if ((rc = outfile_open(&of, path, &err))) goto fail;
        FILE *outs[2] = {stdout, of.fp};
        for (int w = 0; w < 2; w++) {
            fprintf(outs[w],
                    "## Edit quality: fixed inversion steps vs the search metric vs OIR\n\n"
                    "%d cases (%d single-pair, %d multi-pair) from %s; model %s, judge/scorer %s; DDIM T = %d, "
                    "CFG %g (negative = source prompt), OIR R = %d, J = %d, low_pick %s, guard %s; judge masks: %s, "
                    "reads %s; %d thread(s), %.0f s (%.1f s per case).\n",
                    n_run, done_kind[0], done_kind[1], o.cases_dir, o.model, o.clip_dir, T, o.guidance, o.R, o.J,
                    oir_low_pick_name(low_pick), o.guard ? o.guard : "off", o.patch, o.read,
                    oir_get_threads(), total, n_run ? total / n_run : 0.0);
            print_tables(outs[w], sums, dist, first_right, never_right, &within, multi_varied, multi_cases, lowered_R, T);
            if (reinverted_pairs)
                fprintf(outs[w], "\nlow_pick reinvert: %ld pairs' candidates re-inverted up to R (R kept).\n",
                        reinverted_pairs);
            print_second_judge(outs[w], sums, rights, n_run, &ra, T);
            if (search_mismatch)
                fprintf(outs[w], "\nNote: on %ld single-pair cases the recomputed search differed from OIR's.\n",
                        search_mismatch);
        }
        if ((rc = outfile_commit(&of, &err))) goto fail;
        printf("\nwrote %s", path);
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", o.model);
        cJSON_AddStringToObject(root, "clip", o.clip_dir);
        cJSON_AddStringToObject(root, "cases_dir", o.cases_dir);
        cJSON_AddNumberToObject(root, "steps", T);
        cJSON_AddStringToObject(root, "judge_patch", o.patch);
        cJSON_AddStringToObject(root, "judge_reads", o.read);
        cJSON_AddNumberToObject(root, "guidance", o.guidance);
        cJSON_AddNumberToObject(root, "reassembly_step", o.R);
        cJSON_AddNumberToObject(root, "reinversion_steps", o.J);
        cJSON_AddStringToObject(root, "low_pick", oir_low_pick_name(low_pick));
        if (guard) cJSON_AddNumberToObject(root, "guard", guard_margin);
        else cJSON_AddStringToObject(root, "guard", "off");
        cJSON_AddNumberToObject(root, "threads", oir_get_threads());
        cJSON_AddNumberToObject(root, "seconds", total);
        cJSON_AddNumberToObject(root, "search_mismatch_single", (double)search_mismatch);
        static const char *sub_key[N_SUB] = {"single", "multi", "all"};
        cJSON *js = cJSON_CreateObject();
        char name[64];
        for (int sub = 0; sub < N_SUB; sub++) {
            cJSON *jsub = cJSON_CreateObject();
            for (int m = 0; m < N_METHODS; m++)
                cJSON_AddItemToObject(jsub, method_name(m, T, name, sizeof name), json_sum(&sums[sub][m]));
            cJSON_AddItemToObject(js, sub_key[sub], jsub);
        }
        cJSON_AddItemToObject(root, "summary", js);
        cJSON *jd = cJSON_CreateObject();
        for (int sub = 0; sub < N_SUB; sub++)
            for (int m = N_FIXED; m < M_GT; m++) {
                char key[96];
                snprintf(key, sizeof key, "%s/%s", sub_key[sub], method_name(m, T, name, sizeof name));
                cJSON *x = cJSON_CreateObject();
                int hi[N_BINS];
                for (int b2 = 0; b2 < N_BINS; b2++) hi[b2] = (int)dist[sub][m].hist[b2];
                cJSON_AddItemToObject(x, "histogram", json_ints(hi, N_BINS));
                se_json_num(x, "mean", se_stat_mean(&dist[sub][m].steps));
                se_json_num(x, "std", se_stat_std(&dist[sub][m].steps));
                cJSON_AddItemToObject(jd, key, x);
            }
        cJSON_AddItemToObject(root, "chosen_steps", jd);
        se_json_num(root, "oir_within_case_step_std", se_stat_mean(&within));
        cJSON_AddNumberToObject(root, "oir_multi_cases_steps_differ", (double)multi_varied);
        cJSON_AddNumberToObject(root, "oir_reassembly_lowered", (double)lowered_R);
        cJSON_AddNumberToObject(root, "oir_pairs_reinverted", (double)reinverted_pairs);
        cJSON *jcmp = cJSON_CreateObject();
        for (int sub = 0; sub < N_SUB; sub++) {
            if (!sums[sub][M_OIR].cases) continue;
            long pairs = sums[sub][M_OIR].obj_pairs + sums[sub][M_OIR].bg_pairs;
            cJSON *js2 = cJSON_AddObjectToObject(jcmp, sub_key[sub]);
            for (int jg = 0; jg < N_JUDGES; jg++) {
                cJSON *jj = cJSON_AddObjectToObject(js2, jg == J_CLIP ? "clip" : "pixel");
                comparison c1 = compare(rights, n_run, sub, jg, -1, pairs), c2 = compare(rights, n_run, sub, jg, M_SEARCH, pairs);
                cJSON_AddItemToObject(jj, "oir_vs_best_fixed", json_comparison(&c1, T));
                cJSON_AddItemToObject(jj, "oir_vs_search", json_comparison(&c2, T));
            }
        }
        cJSON_AddItemToObject(root, "oir_paired_comparisons", jcmp);
        cJSON *jra = cJSON_CreateObject();
        cJSON_AddNumberToObject(jra, "pairs", (double)ra.pairs);
        for (int jg = 0; jg < N_JUDGES; jg++) {
            cJSON *x = cJSON_AddObjectToObject(jra, jg == J_CLIP ? "clip" : "pixel");
            cJSON_AddNumberToObject(x, "right_before", (double)ra.before[jg]);
            cJSON_AddNumberToObject(x, "right_after", (double)ra.after[jg]);
            cJSON_AddNumberToObject(x, "gained", (double)ra.gained[jg]);
            cJSON_AddNumberToObject(x, "lost", (double)ra.lost[jg]);
        }
        cJSON_AddItemToObject(root, "oir_reassembly_pairs", jra);
        cJSON_AddItemToObject(root, "cases", jcases);
        jcases = NULL;
        char *txt = cJSON_Print(root);
        cJSON_Delete(root);
        snprintf(path, sizeof path, "%s.json", o.out);
        if (!txt) {
            rc = oir_fail(&err, OIR_E_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        rc = outfile_open(&of, path, &err);
        if (!rc) {
            fputs(txt, of.fp);
            fputc('\n', of.fp);
            rc = outfile_commit(&of, &err);
        }
        free(txt);
        if (rc) goto fail;
        printf(", %s\n", path);
    }
    goto cleanup;
fail:
    fprintf(stderr, "edit_bench: %s\n", err.message);
    exit_code = err.code == OIR_E_ARG ? 2 : 1;
cleanup:
    cJSON_Delete(jcases);
    free(buf);
    free(rights);
    se_px_free(&px);
    if (have_judge) se_judge_free(&judge);
    clip_model_free(clip);
    oir_context_free(ctx);
    se_case_set_free(&set);
    return exit_code;
}
