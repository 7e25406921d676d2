/* search_bench: issue 12's benchmark of the search strategies
 * (src/edit/search_plan.h) against the exhaustive search, on the shapes-world
 * edit cases (bench/scenes/edit).
 *
 * For every case, each strategy runs the library's own entry point (oir_search
 * for single-pair cases, oir_edit with reassembly for multi-pair cases) with
 * the same T, R, J and guidance. Per strategy:
 *   rows        UNet rows of the search (oir_result.unet_rows: the engine's
 *               counter of sample-steps x CFG branches, incl. a short
 *               schedule's own inversion and the render of its choice),
 *               summed over cases, and as a fraction of exhaustive's;
 *               also every UNet row of the run (unet_rows_total) and decodes
 *   agreement   per pair: the same step as exhaustive, or a step whose
 *               exhaustive normalised total is within 0.01 of exhaustive's
 *               maximum (normalised over the exhaustive set)
 *   quality     the shapes judge on the edited image (shapes_eval.h, as
 *               edit_bench): object pairs right, background pairs right,
 *               background PSNR outside the masks, PSNR against the ground
 *               truth, edit-region PSNR against the ground truth; paired
 *               against exhaustive: pairs right only with exhaustive / only
 *               with the strategy (the engine is deterministic, so the noise
 *               in a comparison is which cases happen to flip; the standard
 *               error of the accuracy difference is printed beside it);
 *               also the pixel judge's pairs right and gained / lost
 *               (se_edit_evaluate_pixels; a case cached before it existed
 *               counts only in the CLIP judge's columns)
 * Writes OUT.md (the table) and OUT.json (summary + every case). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "core/clock.h"
#include "edit/search_plan.h"
#include "io/file.h"
#include "io/image.h"
#include "io/outfile.h"
#include "oir.h"
#include "measure.h"
#include "shapes_eval.h"

#define MAX_STRATEGIES 8
enum { SUB_SINGLE, SUB_MULTI, SUB_ALL, N_SUB };

typedef struct {
    long cases, pairs, agree_same, agree_within;
    long rows, rows_total, decodes;
    double seconds;
    long only_here, only_exhaustive; /* object/background pairs right in one run only */
    long px_only_here, px_only_exhaustive; /* the same with the pixel judge */
    se_edit_sum q;
} strat_sum;

typedef struct {
    const char *model, *clip_dir, *cases_dir, *out, *strategies, *cache;
    int n, T, R, J, threads, quiet, offset;
    float guidance;
} options;

static void usage(FILE *to) {
    fprintf(to,
            "usage: search_bench [--strategies LIST] [--steps T] [--n N] [--offset I]\n"
            "                    [--model DIR] [--clip DIR] [--cases DIR] [--out PREFIX]\n"
            "                    [--reassembly-step R] [--reinversion-steps J] [--guidance G]\n"
            "                    [--threads N] [--quiet]\n"
            "\n"
            "Issue 12's benchmark: each search strategy against the exhaustive search on the\n"
            "shapes-world edit cases (definitions in the header of bench/shapes/search_bench.c).\n"
            "\n"
            "  --strategies LIST  comma-separated --search specs compared with exhaustive\n"
            "                     (default coarse:5,short:10,short-refine:10,adaptive:10)\n"
            "  --steps T          DDIM steps (default 20)\n"
            "  --n N              the first N single-pair AND the first N multi-pair cases\n"
            "                     (default: all); --offset I skips I of each first\n"
            "  --reassembly-step R, --reinversion-steps J   (default T/5 each)\n"
            "  --out PREFIX       writes PREFIX.md and PREFIX.json (default\n"
            "                     bench/results/search)\n"
            "  --cache DIR        keep each finished case in DIR/CASE.json and reuse it on the\n"
            "                     next run with the same model, T, R, J and guidance: a long\n"
            "                     run resumes where it stopped, a new strategy runs alone;\n"
            "                     adaptive specs are named with their K (adaptive:10 is kept and\n"
            "                     shown as adaptive:10:2; a record cached as adaptive:M before K\n"
            "                     existed is adaptive:M:1)\n");
}

/* The name a strategy's results are kept under (cache, tables): the spec as
 * given, but an adaptive spec always with its K ("adaptive:10" has meant
 * adaptive:10:2 since K exists; a cached record named "adaptive:M" was made
 * before, with K = 1: see legacy_name). */
static void strategy_name(char *name, size_t n, const char *spec, int T) {
    search_strategy st;
    if (!search_strategy_parse(&st, spec, T, NULL) && st.kind == SEARCH_ADAPTIVE)
        search_strategy_format(&st, name, n);
    else
        snprintf(name, n, "%s", spec);
}

/* The name of a record of `name` cached before adaptive had K: "adaptive:M"
 * for "adaptive:M:1"; 0 when there is none. */
static int legacy_name(char *legacy, size_t n, const char *name) {
    int M, K, used = 0;
    if (sscanf(name, "adaptive:%d:%d%n", &M, &K, &used) != 2 || name[used] || K != 1) return 0;
    snprintf(legacy, n, "adaptive:%d", M);
    return 1;
}

static double pct(long a, long b) { return b ? 100.0 * a / b : NAN; }

/* Pairs of a case the judge finds right. */
static int pairs_right(const se_edit_eval *e) { return e->obj_right + e->bg_right; }
static int pairs_right_px(const se_edit_eval *e) { return e->px_obj_right + e->px_bg_right; }

static void print_table(FILE *f, strat_sum sums[N_SUB][MAX_STRATEGIES], char names[][64], int n_strat) {
    static const char *sub_name[N_SUB] = {"single-pair cases", "multi-pair cases (2-3 pairs, OIR)", "all cases"};
    for (int sub = 0; sub < N_SUB; sub++) {
        const strat_sum *ex = &sums[sub][0];
        if (!ex->cases) continue;
        fprintf(f, "\n### %s (%ld cases, %ld pairs)\n\n", sub_name[sub], ex->cases, ex->pairs);
        fprintf(f, "| strategy | search UNet rows | vs exhaustive | all UNet rows | decodes | same step | "
                   "agrees (same or within 0.01) | pairs right | pairs gained / lost (s.e.) | "
                   "background PSNR dB | GT PSNR dB | edit-region PSNR dB | seconds | pixel judge: pairs right | "
                   "pixel judge: gained / lost |\n"
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int s = 0; s < n_strat; s++) {
            const strat_sum *x = &sums[sub][s];
            long right = x->q.obj_right + x->q.bg_right, judged = x->q.obj_pairs + x->q.bg_pairs;
            /* s.e. of the paired accuracy difference: sqrt(flips) / n */
            double se = judged ? 100.0 * sqrt((double)(x->only_here + x->only_exhaustive)) / judged : NAN;
            long px_right = x->q.px_obj_right + x->q.px_bg_right, px_judged = x->q.px_obj_pairs + x->q.px_bg_pairs;
            char px[96] = "-", px_cases[48] = "";
            if (x->q.px_cases < x->q.cases) snprintf(px_cases, sizeof px_cases, ", %ld cases", x->q.px_cases);
            if (px_judged) snprintf(px, sizeof px, "%.1f%% (%ld/%ld%s)", pct(px_right, px_judged), px_right, px_judged, px_cases);
            fprintf(f,
                    "| %s | %ld | %.3f (%.1fx fewer) | %ld | %ld | %.1f%% | %.1f%% | %.1f%% (%ld/%ld) | +%ld / -%ld "
                    "(%.1f pts) | %.2f | %.2f | %.2f | %.0f | %s | +%ld / -%ld |\n",
                    names[s], x->rows, (double)x->rows / ex->rows, (double)ex->rows / x->rows, x->rows_total,
                    x->decodes, pct(x->agree_same, x->pairs), pct(x->agree_within, x->pairs), pct(right, judged),
                    right, judged, x->only_here, x->only_exhaustive, se, se_stat_mean(&x->q.bg_psnr),
                    se_stat_mean(&x->q.gt_psnr), se_stat_mean(&x->q.edit_psnr), x->seconds, px, x->px_only_here,
                    x->px_only_exhaustive);
        }
    }
}

static cJSON *json_sum(const strat_sum *x, const strat_sum *ex) {
    cJSON *o = cJSON_CreateObject();
    long right = x->q.obj_right + x->q.bg_right, judged = x->q.obj_pairs + x->q.bg_pairs;
    cJSON_AddNumberToObject(o, "cases", (double)x->cases);
    cJSON_AddNumberToObject(o, "pairs", (double)x->pairs);
    cJSON_AddNumberToObject(o, "search_unet_rows", (double)x->rows);
    se_json_num(o, "rows_vs_exhaustive", ex->rows ? (double)x->rows / ex->rows : NAN);
    cJSON_AddNumberToObject(o, "all_unet_rows", (double)x->rows_total);
    cJSON_AddNumberToObject(o, "decodes", (double)x->decodes);
    se_json_num(o, "same_step", x->pairs ? (double)x->agree_same / x->pairs : NAN);
    se_json_num(o, "agreement", x->pairs ? (double)x->agree_within / x->pairs : NAN);
    se_json_num(o, "pairs_right", judged ? (double)right / judged : NAN);
    cJSON_AddNumberToObject(o, "right_only_here", (double)x->only_here);
    cJSON_AddNumberToObject(o, "right_only_exhaustive", (double)x->only_exhaustive);
    se_json_num(o, "background_psnr", se_stat_mean(&x->q.bg_psnr));
    se_json_num(o, "gt_psnr", se_stat_mean(&x->q.gt_psnr));
    se_json_num(o, "edit_region_psnr", se_stat_mean(&x->q.edit_psnr));
    cJSON_AddNumberToObject(o, "seconds", x->seconds);
    long px_right = x->q.px_obj_right + x->q.px_bg_right, px_judged = x->q.px_obj_pairs + x->q.px_bg_pairs;
    cJSON *px = cJSON_AddObjectToObject(o, "pixel_judge");
    cJSON_AddNumberToObject(px, "cases", (double)x->q.px_cases);
    se_json_num(px, "pairs_right", px_judged ? (double)px_right / px_judged : NAN);
    cJSON_AddNumberToObject(px, "right_only_here", (double)x->px_only_here);
    cJSON_AddNumberToObject(px, "right_only_exhaustive", (double)x->px_only_exhaustive);
    return o;
}

/* ---- per-case cache (--cache DIR): a long run resumes where it stopped --- */

/* A double as JSON: a number, or "inf" / "-inf" / "nan" (JSON has none). */
static void json_double(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddStringToObject(o, k, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

static double item_double(const cJSON *v) {
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsString(v)) return !strcmp(v->valuestring, "inf") ? INFINITY : !strcmp(v->valuestring, "-inf") ? -INFINITY : NAN;
    return NAN;
}

static double json_get_double(const cJSON *o, const char *k) {
    return item_double(cJSON_GetObjectItemCaseSensitive(o, k));
}

static int json_get_int(const cJSON *o, const char *k) { return (int)json_get_double(o, k); }

#define EVAL_INT_FIELDS(X)                                                                                     \
    X(obj_pairs) X(obj_right) X(colour_right) X(shape_right) X(heldout_pairs) X(heldout_right) X(bg_pairs)     \
        X(bg_right) X(all_right) X(kept_n) X(kept_right) X(has_bg_region)
#define EVAL_DOUBLE_FIELDS(X) X(bg_mse) X(bg_psnr) X(gt_psnr) X(edit_psnr) X(clip_score)
#define EVAL_PX_FIELDS(X) \
    X(px_obj_right) X(px_colour_right) X(px_shape_right) X(px_bg_right) X(px_all_right) X(px_kept_right)

static cJSON *eval_to_json(const se_edit_eval *e) {
    cJSON *o = cJSON_CreateObject();
#define PUT_INT(f) cJSON_AddNumberToObject(o, #f, e->f);
#define PUT_DOUBLE(f) json_double(o, #f, e->f);
    EVAL_INT_FIELDS(PUT_INT) EVAL_DOUBLE_FIELDS(PUT_DOUBLE)
    if (e->px_judged) {
        cJSON *px = cJSON_AddObjectToObject(o, "pixel_judge");
#define PUT_PX(f) cJSON_AddNumberToObject(px, #f, e->f);
        EVAL_PX_FIELDS(PUT_PX)
    }
    return o;
}

static void eval_from_json(const cJSON *o, se_edit_eval *e) {
    memset(e, 0, sizeof *e);
#define GET_INT(f) e->f = json_get_int(o, #f);
#define GET_DOUBLE(f) e->f = json_get_double(o, #f);
    EVAL_INT_FIELDS(GET_INT) EVAL_DOUBLE_FIELDS(GET_DOUBLE)
    const cJSON *px = cJSON_GetObjectItemCaseSensitive(o, "pixel_judge"); /* absent in records made before it */
    if (cJSON_IsObject(px)) {
#define GET_PX(f) e->f = json_get_int(px, #f);
        EVAL_PX_FIELDS(GET_PX)
        e->px_judged = 1;
    }
}

/* DIR/NAME.json with the case name's '/' as '_' (single/000 -> single_000). */
static void cache_path(char *path, size_t n, const char *dir, const char *name) {
    int len = snprintf(path, n, "%s/", dir);
    for (const char *c = name; *c && len + 6 < (int)n; c++) path[len++] = *c == '/' ? '_' : *c;
    snprintf(path + len, n - len, ".json");
}

/* The cached record of case `name` when it was made with the same settings,
 * else NULL (missing, unreadable or made otherwise: the case reruns). */
static cJSON *cache_load(const char *dir, const char *name, const char *settings) {
    if (!dir) return NULL;
    char path[1200];
    cache_path(path, sizeof path, dir, name);
    char *text = NULL;
    size_t len = 0;
    oir_error err = {0};
    if (file_read_regular(path, (size_t)64 << 20, "a search_bench case record", &text, &len, &err)) return NULL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "settings");
    if (!cJSON_IsString(s) || strcmp(s->valuestring, settings)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int write_text(const char *path, const char *text, oir_error *err) {
    return outfile_write(path, text, strlen(text), err);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    options o = {"models/tiny-shapes", "models/tiny-clip", "bench/scenes/edit", "bench/results/search",
                 "coarse:5,short:10,short-refine:10,adaptive:10", NULL, 0, 20, -1, -1, 0, 0, 0, 7.5f};
    const cli_opt opts[] = {
        {"--model", CLI_STR, &o.model, 0, 0},
        {"--clip", CLI_STR, &o.clip_dir, 0, 0},
        {"--cases", CLI_STR, &o.cases_dir, 0, 0},
        {"--out", CLI_STR, &o.out, 0, 0},
        {"--strategies", CLI_STR, &o.strategies, 0, 0},
        {"--cache", CLI_STR, &o.cache, 0, 0},
        {"--n", CLI_INT, &o.n, 0, 1000000},
        {"--offset", CLI_INT, &o.offset, 0, 1000000},
        {"--steps", CLI_INT, &o.T, 2, 1000},
        {"--guidance", CLI_FLOAT, &o.guidance, 0, 100},
        {"--reassembly-step", CLI_INT, &o.R, 0, 1000},
        {"--reinversion-steps", CLI_INT, &o.J, 0, 1000},
        {"--threads", CLI_INT, &o.threads, 1, 1024},
        {"--quiet", CLI_FLAG, &o.quiet, 0, 0},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err)) {
        fprintf(stderr, "search_bench: %s\n", err.message);
        return 2;
    }
    if (o.R < 0) o.R = (o.T + 2) / 5;
    if (o.J < 0) o.J = (o.T + 2) / 5;
    cli_set_threads(o.threads);
    /* strategy 0 is exhaustive, the reference */
    static char names[MAX_STRATEGIES][64];
    int n_strat = 1;
    snprintf(names[0], sizeof names[0], "exhaustive");
    {
        char list[512];
        snprintf(list, sizeof list, "%s", o.strategies);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            if (n_strat == MAX_STRATEGIES) {
                fprintf(stderr, "search_bench: at most %d strategies\n", MAX_STRATEGIES - 1);
                return 2;
            }
            strategy_name(names[n_strat++], sizeof names[0], tok, o.T);
        }
    }

    se_case_set set = {0};
    oir_context *ctx = NULL;
    clip_model *clip = NULL;
    se_judge judge = {0};
    se_px_judge px = {0};
    int have_judge = 0, exit_code = 0, rc;
    unsigned char *buf = NULL;
    cJSON *jcases = cJSON_CreateArray();
    static strat_sum sums[N_SUB][MAX_STRATEGIES];
    double t_start = clock_wall_s();
    if ((rc = se_case_set_load(&set, o.cases_dir, &err))) goto fail;
    char settings[1200];
    snprintf(settings, sizeof settings, "model=%s clip=%s T=%d R=%d J=%d guidance=%g", o.model, o.clip_dir, o.T,
             o.R, o.J, o.guidance);
    if (o.cache && mkdir(o.cache, 0777) && errno != EEXIST) {
        rc = oir_fail(&err, OIR_E_IO, "--cache %s: %s", o.cache, strerror(errno));
        goto fail;
    }
    oir_context_params cp = oir_context_default_params();
    cp.model_path = o.model;
    cp.clip_path = o.clip_dir;
    cp.threads = o.threads;
    if ((rc = oir_context_load(&ctx, &cp, &err))) goto fail;
    if ((rc = clip_model_load(&clip, o.clip_dir, &err))) goto fail;
    if ((rc = se_judge_init(&judge, clip, &set.vocab, &err))) goto fail;
    have_judge = 1;
    int size = oir_context_image_size(ctx), T = o.T;
    size_t hw = (size_t)size * size;
    if ((rc = se_px_init(&px, &set.vocab, size, &err))) goto fail;
    buf = malloc(hw * 3 * 2 + hw * (1 + SE_MAX_PAIRS + SE_MAX_OBJECTS) + sizeof(float) * 4096);
    if (!buf) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    unsigned char *rgb = buf, *gt = rgb + hw * 3, *uni = gt + hw * 3;
    unsigned char *pmasks = uni + hw, *omasks = pmasks + hw * SE_MAX_PAIRS;
    float *target_text = (float *)(void *)(omasks + hw * SE_MAX_OBJECTS);
    int want = o.n > 0 ? o.n : set.n, seen[2] = {0, 0}, done_kind[2] = {0, 0}, n_run = 0;
    if (!o.quiet)
        fprintf(stderr, "search_bench: %s, T=%d, R=%d, J=%d, %d strategies + exhaustive, %d thread(s)\n",
                o.cases_dir, T, o.R, o.J, n_strat - 1, oir_get_threads());
    for (int ci = 0; ci < set.n; ci++) {
        const se_case *c = &set.cases[ci];
        int kind = c->n_pairs > 1;
        if (seen[kind]++ < o.offset || done_kind[kind] >= want) continue;
        done_kind[kind]++;
        if ((rc = se_edit_case_load(c, size, rgb, gt, pmasks, uni, omasks, &err))) goto fail;
        if ((rc = se_judge_text(&judge, c->target, target_text, &err))) goto fail;
        oir_pair pairs[SE_MAX_PAIRS];
        for (int q = 0; q < c->n_pairs; q++) {
            pairs[q].from = c->pairs[q].from;
            pairs[q].to = c->pairs[q].to;
            pairs[q].mask = pmasks + q * hw;
            pairs[q].guided_prompt = c->pairs[q].guided;
        }
        cJSON *jc = cJSON_CreateObject(), *js = NULL;
        cJSON_AddStringToObject(jc, "case", c->name);
        cJSON_AddNumberToObject(jc, "pairs", c->n_pairs);
        {
            cJSON *cached = cache_load(o.cache, c->name, settings);
            js = cJSON_DetachItemFromObjectCaseSensitive(cached, "strategies");
            cJSON_Delete(cached);
            if (!cJSON_IsObject(js)) {
                cJSON_Delete(js);
                js = cJSON_CreateObject();
            }
        }
        int fresh = 0, ex_bits = 0, ex_px = -1, ex_steps[SE_MAX_PAIRS] = {0};
        for (int s = 0; s < n_strat; s++) {
            cJSON *jx = cJSON_GetObjectItemCaseSensitive(js, names[s]);
            char legacy[64];
            if (!jx && legacy_name(legacy, sizeof legacy, names[s]) &&
                (jx = cJSON_DetachItemFromObjectCaseSensitive(js, legacy)))
                cJSON_AddItemToObject(js, names[s], jx); /* kept under its name from now on */
            const cJSON *jsteps = cJSON_GetObjectItemCaseSensitive(jx, "steps");
            const cJSON *jtotal = cJSON_GetObjectItemCaseSensitive(jx, "total");
            if (jx && (cJSON_GetArraySize(jsteps) != c->n_pairs ||
                       (s == 0 && cJSON_GetArraySize(jtotal) != c->n_pairs * T))) {
                cJSON_DeleteItemFromObjectCaseSensitive(js, names[s]); /* malformed: run it again */
                jx = NULL;
            }
            if (!jx) {
                oir_params p = oir_default_params();
                p.steps = T;
                p.guidance = o.guidance;
                p.reassembly_step = o.R;
                p.reinversion_steps = o.J;
                p.target_prompt = c->target;
                p.keep_candidates = 0;
                p.search = names[s];
                oir_result *r = NULL;
                double t0 = clock_wall_s();
                rc = kind ? oir_edit(ctx, rgb, size, size, c->source, pairs, c->n_pairs, &p, &r, &err)
                          : oir_search(ctx, rgb, size, size, c->source, pairs, &p, &r, &err);
                if (rc) {
                    oir_error_prefix(&err, "case %s, --search %s", c->name, names[s]);
                    cJSON_Delete(jc);
                    cJSON_Delete(js);
                    goto fail;
                }
                double secs = clock_wall_s() - t0;
                se_edit_eval ev;
                rc = se_edit_evaluate(&judge, c, r->edited, rgb, gt, pmasks, omasks, uni, size, target_text, &ev,
                                      &err);
                if (!rc) rc = se_edit_evaluate_pixels(&px, c, r->edited, pmasks, &ev, &err);
                if (rc) {
                    oir_result_free(r);
                    cJSON_Delete(jc);
                    cJSON_Delete(js);
                    goto fail;
                }
                jx = cJSON_CreateObject();
                cJSON *steps = cJSON_CreateArray();
                for (int q = 0; q < c->n_pairs; q++) cJSON_AddItemToArray(steps, cJSON_CreateNumber(r->chosen_step[q]));
                cJSON_AddItemToObject(jx, "steps", steps);
                cJSON_AddNumberToObject(jx, "search_unet_rows", (double)r->unet_rows);
                cJSON_AddNumberToObject(jx, "all_unet_rows", (double)r->unet_rows_total);
                cJSON_AddNumberToObject(jx, "decodes", r->decodes);
                cJSON_AddNumberToObject(jx, "seconds", secs);
                cJSON_AddNumberToObject(jx, "threads", oir_get_threads());
                cJSON_AddItemToObject(jx, "eval", eval_to_json(&ev));
                if (s == 0) { /* the metric totals every strategy is judged against */
                    cJSON *tot = cJSON_CreateArray();
                    for (int i = 0; i < c->n_pairs * T; i++) cJSON_AddItemToArray(tot, cJSON_CreateNumber(r->total[i]));
                    cJSON_AddItemToObject(jx, "total", tot);
                }
                cJSON_AddItemToObject(js, names[s], jx);
                oir_result_free(r);
                fresh = 1;
            }
            jsteps = cJSON_GetObjectItemCaseSensitive(jx, "steps");
            jtotal = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(js, names[0]), "total");
            se_edit_eval ev;
            eval_from_json(cJSON_GetObjectItemCaseSensitive(jx, "eval"), &ev);
            int same = 0, within = 0, bits = pairs_right(&ev);
            for (int q = 0; q < c->n_pairs; q++) {
                int k = (int)item_double(cJSON_GetArrayItem(jsteps, q)), kx;
                if (s == 0) ex_steps[q] = k;
                kx = ex_steps[q];
                if (k < 1 || k > T) k = kx; /* a hand-edited cache; the engine never returns this */
                double best = item_double(cJSON_GetArrayItem(jtotal, q * T + kx - 1));
                double here = item_double(cJSON_GetArrayItem(jtotal, q * T + k - 1));
                same += k == kx;
                within += k == kx || best - here <= 0.01;
            }
            if (s == 0) ex_bits = bits, ex_px = ev.px_judged ? pairs_right_px(&ev) : -1;
            int px_bits = ev.px_judged ? pairs_right_px(&ev) : -1;
            int subs[2] = {kind ? SUB_MULTI : SUB_SINGLE, SUB_ALL};
            for (int si = 0; si < 2; si++) {
                strat_sum *x = &sums[subs[si]][s];
                x->cases++;
                x->pairs += c->n_pairs;
                x->agree_same += same;
                x->agree_within += within;
                x->rows += (long)json_get_double(jx, "search_unet_rows");
                x->rows_total += (long)json_get_double(jx, "all_unet_rows");
                x->decodes += json_get_int(jx, "decodes");
                x->seconds += json_get_double(jx, "seconds");
                /* pairs right here but not with exhaustive, and the reverse */
                x->only_here += bits > ex_bits ? bits - ex_bits : 0;
                x->only_exhaustive += ex_bits > bits ? ex_bits - bits : 0;
                if (px_bits >= 0 && ex_px >= 0) {
                    x->px_only_here += px_bits > ex_px ? px_bits - ex_px : 0;
                    x->px_only_exhaustive += ex_px > px_bits ? ex_px - px_bits : 0;
                }
                se_edit_sum_add(&x->q, &ev);
            }
            cJSON_DeleteItemFromObjectCaseSensitive(jx, "agree_same");
            cJSON_DeleteItemFromObjectCaseSensitive(jx, "agree_within");
            cJSON_AddNumberToObject(jx, "agree_same", same);
            cJSON_AddNumberToObject(jx, "agree_within", within);
        }
        if (fresh && o.cache) {
            char path[1200];
            cache_path(path, sizeof path, o.cache, c->name);
            cJSON *rec = cJSON_CreateObject();
            cJSON_AddStringToObject(rec, "settings", settings);
            cJSON_AddItemReferenceToObject(rec, "strategies", js);
            char *txt = cJSON_PrintUnformatted(rec);
            cJSON_Delete(rec);
            rc = txt ? write_text(path, txt, &err) : oir_fail(&err, OIR_E_NOMEM, "out of memory");
            free(txt);
            if (rc) {
                cJSON_Delete(jc);
                cJSON_Delete(js);
                goto fail;
            }
        }
        cJSON_AddItemToObject(jc, "strategies", js);
        cJSON_AddItemToArray(jcases, jc);
        n_run++;
        if (!o.quiet) {
            fprintf(stderr, "[%3d] %-10s %d pair(s), exhaustive steps", n_run, c->name, c->n_pairs);
            for (int q = 0; q < c->n_pairs; q++) fprintf(stderr, " %d", ex_steps[q]);
            fprintf(stderr, "%s (%.0f s so far)\n", fresh ? "" : " (cached)", clock_wall_s() - t_start);
        }
    }
    double total = clock_wall_s() - t_start;
    {
        char path[1100], *md = NULL;
        size_t md_len = 0;
        FILE *mf = open_memstream(&md, &md_len);
        if (!mf) {
            rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
            goto fail;
        }
        fprintf(mf,
                "## Search strategies vs the exhaustive search (T = %d)\n\n"
                "%d cases (%d single-pair, %d multi-pair) from %s; model %s, scorer/judge %s; T = %d, CFG %g, "
                "R = %d, J = %d; %d thread(s), %.0f s. Command: `search_bench",
                T, n_run, done_kind[0], done_kind[1], o.cases_dir, o.model, o.clip_dir, T, o.guidance, o.R, o.J,
                oir_get_threads(), total);
        for (int i = 1; i < argc; i++) fprintf(mf, " %s", argv[i]);
        fprintf(mf, "`. Pairs gained / lost: per case, the pairs the judge finds right with the strategy "
                    "beyond exhaustive's, and the reverse.\n");
        print_table(mf, sums, names, n_strat);
        fclose(mf);
        fputs(md, stdout);
        snprintf(path, sizeof path, "%s.md", o.out);
        rc = write_text(path, md, &err);
        free(md);
        if (rc) goto fail;
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", o.model);
        cJSON_AddStringToObject(root, "cases_dir", o.cases_dir);
        cJSON_AddNumberToObject(root, "steps", T);
        cJSON_AddNumberToObject(root, "reassembly_step", o.R);
        cJSON_AddNumberToObject(root, "reinversion_steps", o.J);
        cJSON_AddNumberToObject(root, "threads", oir_get_threads());
        cJSON_AddNumberToObject(root, "seconds", total);
        static const char *sub_key[N_SUB] = {"single", "multi", "all"};
        cJSON *jsum = cJSON_CreateObject();
        for (int sub = 0; sub < N_SUB; sub++) {
            cJSON *jsub = cJSON_CreateObject();
            for (int s = 0; s < n_strat; s++) cJSON_AddItemToObject(jsub, names[s], json_sum(&sums[sub][s], &sums[sub][0]));
            cJSON_AddItemToObject(jsum, sub_key[sub], jsub);
        }
        cJSON_AddItemToObject(root, "summary", jsum);
        cJSON_AddItemToObject(root, "cases", jcases);
        jcases = NULL;
        char *txt = cJSON_Print(root);
        cJSON_Delete(root);
        snprintf(path, sizeof path, "%s.json", o.out);
        rc = txt ? write_text(path, txt, &err) : oir_fail(&err, OIR_E_NOMEM, "out of memory");
        free(txt);
        if (rc) goto fail;
        printf("\nwrote %s.md, %s.json\n", o.out, o.out);
    }
    goto cleanup;
fail:
    fprintf(stderr, "search_bench: %s\n", err.message);
    exit_code = err.code == OIR_E_ARG ? 2 : 1;
cleanup:
    cJSON_Delete(jcases);
    free(buf);
    se_px_free(&px);
    if (have_judge) se_judge_free(&judge);
    clip_model_free(clip);
    oir_context_free(ctx);
    se_case_set_free(&set);
    return exit_code;
}
