/* mask_edit_bench: issue 13's second judge: OIR with inferred masks against
 * OIR with the ground-truth masks, on the same cases of bench/scenes/edit.
 * Each case runs twice through the library — oir_search (one pair) or
 * oir_edit (several) — once with the benchmark's pair masks and once with
 * every mask NULL (inferred, oir_params.mask), the rest equal; both results
 * are judged as bench/shapes/edit_bench.c judges OIR (measure.h
 * se_edit_evaluate: the tiny-CLIP judge through the benchmark's masks,
 * background PSNR outside them, PSNR against the ground-truth scene).
 *
 *     mask_edit_bench [--cases DIR] [--n N] [--offset I] [--steps T] [--search S]
 *                     [--mask-method M] [--threads N]
 *
 * --n N: the first N single-pair and the first N multi-pair cases. Prints a
 * markdown table per mask source: object pairs right, background pairs
 * right, background PSNR, ground-truth PSNR, edit-region PSNR, the mean
 * mask IoU, and the UNet rows (the masks' and the whole runs'). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "core/clock.h"
#include "measure.h"
#include "oir.h"
#include "shapes_eval.h"

enum { GIVEN, INFERRED, N_SRC };

int main(int argc, char **argv) {
    const char *cases_dir = "bench/scenes/edit", *search = "adaptive:8", *method = NULL;
    int n = 10, offset = 0, T = 20, threads = 1;
    const cli_opt opts[] = {
        {"--cases", CLI_STR, &cases_dir, 0, 0},   {"--n", CLI_INT, &n, 1, 100},
        {"--offset", CLI_INT, &offset, 0, 100},   {"--steps", CLI_INT, &T, 2, 1000},
        {"--search", CLI_STR, &search, 0, 0},     {"--mask-method", CLI_STR, &method, 0, 0},
        {"--threads", CLI_INT, &threads, 0, 1024},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err)) {
        fprintf(stderr, "mask_edit_bench: %s\n", err.message);
        return 2;
    }
    oir_set_threads(threads);
    se_case_set set;
    oir_context *ctx = NULL;
    oir_context_params cp = oir_context_default_params();
    clip_model *clip = NULL;
    se_judge judge;
    if (se_case_set_load(&set, cases_dir, &err) || oir_context_load(&ctx, &cp, &err) ||
        clip_model_load(&clip, cp.clip_path, &err) || se_judge_init(&judge, clip, &set.vocab, &err)) {
        fprintf(stderr, "mask_edit_bench: %s\n", err.message);
        return 1;
    }
    judge.patch_mode = SE_PATCH_ANY; /* edit_bench's judge (README "Edit quality") */
    judge.read_words = 1;
    int S = set.size;
    size_t hw = (size_t)S * S;
    unsigned char *rgb = malloc(hw * 3), *gt = malloc(hw * 3), *pm = malloc(SE_MAX_PAIRS * hw), *uni = malloc(hw);
    unsigned char *om = malloc(SE_MAX_OBJECTS * hw);
    float *target_text = malloc((size_t)judge.P * sizeof(float));
    se_edit_sum sum[N_SRC][2];
    memset(sum, 0, sizeof sum);
    se_stat iou[2];
    memset(iou, 0, sizeof iou);
    long mask_rows = 0, rows[N_SRC] = {0}, warnings = 0;
    int seen[2] = {0, 0}, done[2] = {0, 0};
    double t0 = clock_wall_s();
    for (int ci = 0; ci < set.n; ci++) {
        const se_case *c = &set.cases[ci];
        int kind = c->n_pairs > 1;
        if (seen[kind]++ < offset || done[kind] >= n) continue;
        done[kind]++;
        if (se_edit_case_load(c, S, rgb, gt, pm, uni, om, &err) || se_judge_text(&judge, c->target, target_text, &err))
            goto fail;
        for (int src = 0; src < N_SRC; src++) {
            oir_params p = oir_default_params();
            p.steps = T;
            p.reassembly_step = p.reinversion_steps = T / 5;
            p.search = search;
            p.keep_candidates = 0;
            if (method && (p.mask.method = oir_mask_method_parse(method)) < 0) {
                oir_fail(&err, OIR_E_ARG, "--mask-method %s", method);
                goto fail;
            }
            oir_pair pairs[SE_MAX_PAIRS];
            for (int q = 0; q < c->n_pairs; q++)
                pairs[q] = (oir_pair){c->pairs[q].from, c->pairs[q].to, src == GIVEN ? pm + q * hw : NULL,
                                      c->pairs[q].guided};
            oir_result *r = NULL;
            int rc = kind ? oir_edit(ctx, rgb, S, S, c->source, pairs, c->n_pairs, &p, &r, &err)
                          : oir_search(ctx, rgb, S, S, c->source, pairs, &p, &r, &err);
            if (rc) goto fail;
            se_edit_eval ev;
            rc = se_edit_evaluate(&judge, c, r->edited, rgb, gt, pm, om, uni, S, target_text, &ev, &err);
            if (!rc) se_edit_sum_add(&sum[src][kind], &ev);
            rows[src] += r->unet_rows_total;
            if (src == INFERRED) {
                mask_rows += r->mask_unet_rows;
                for (int q = 0; q < c->n_pairs; q++) {
                    size_t i = 0, u = 0;
                    for (size_t j = 0; j < hw; j++) {
                        int a = r->masks[(size_t)q * hw + j] != 0, b = pm[(size_t)q * hw + j] != 0;
                        i += a && b, u += a || b;
                    }
                    se_stat_add(&iou[c->pairs[q].is_background], u ? (double)i / u : 1.0);
                    warnings += r->mask_info[q].warning != OIR_MASK_WARN_NONE;
                }
            }
            oir_result_free(r);
            if (rc) goto fail;
        }
        fprintf(stderr, "\rmask_edit_bench: %d + %d cases, %.0f s", done[0], done[1], clock_wall_s() - t0);
    }
    fprintf(stderr, "\n");
    printf("%d single-pair + %d multi-pair cases of %s, T = %d, search %s, R = J = %d, masks %s (%s), %d thread(s), "
           "%.0f s\n\n",
           done[0], done[1], cases_dir, T, search, T / 5, method ? method : "default",
           oir_mask_method_name(method ? oir_mask_method_parse(method) : OIR_MASK_DEFAULT), threads,
           clock_wall_s() - t0);
    printf("| masks | cases | object pairs right | background pairs right | background PSNR dB | GT PSNR dB | "
           "edit-region PSNR dB |\n|---|---|---|---|---|---|---|\n");
    for (int src = 0; src < N_SRC; src++)
        for (int k = 0; k < 3; k++) {
            se_edit_sum a = k < 2 ? sum[src][k] : sum[src][0];
            if (k == 2) { /* both kinds */
                const se_edit_sum *b = &sum[src][1];
                a.cases += b->cases, a.obj_pairs += b->obj_pairs, a.obj_right += b->obj_right;
                a.bg_pairs += b->bg_pairs, a.bg_right += b->bg_right;
                a.bg_psnr.sum += b->bg_psnr.sum, a.bg_psnr.n += b->bg_psnr.n;
                a.gt_psnr.sum += b->gt_psnr.sum, a.gt_psnr.n += b->gt_psnr.n;
                a.edit_psnr.sum += b->edit_psnr.sum, a.edit_psnr.n += b->edit_psnr.n;
            }
            printf("| %s, %s | %ld | %ld/%ld (%.1f%%) | %ld/%ld | %.2f | %.2f | %.2f |\n",
                   src == GIVEN ? "ground truth" : "inferred", k == 0 ? "single" : k == 1 ? "multi" : "all", a.cases,
                   a.obj_right, a.obj_pairs, a.obj_pairs ? 100.0 * a.obj_right / a.obj_pairs : 0.0, a.bg_right,
                   a.bg_pairs, se_stat_mean(&a.bg_psnr), se_stat_mean(&a.gt_psnr), se_stat_mean(&a.edit_psnr));
        }
    printf("\nUNet rows in all: ground-truth masks %ld, inferred %ld (of which the masks %ld, %.1f%%). Inferred masks: "
           "mean IoU %.3f over %ld object pairs, %.3f over %ld background pairs; %ld fallback warnings.\n",
           rows[GIVEN], rows[INFERRED], mask_rows, rows[INFERRED] ? 100.0 * mask_rows / rows[INFERRED] : 0.0,
           se_stat_mean(&iou[0]), iou[0].n, se_stat_mean(&iou[1]), iou[1].n, warnings);
    return 0;
fail:
    fprintf(stderr, "\nmask_edit_bench: %s\n", err.message);
    return 1;
}
