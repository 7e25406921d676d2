/* The measurements of bench/shapes/quality.c (issue 4) and
 * bench/shapes/edit_bench.c (issue 6), as functions the programs loop over
 * and tests/test_shapes_bench.c runs on the random fixtures.
 * Definitions: see the headers of quality.c and edit_bench.c. */
#ifndef OIR_BENCH_SHAPES_MEASURE_H
#define OIR_BENCH_SHAPES_MEASURE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "diffusion/sampler.h"
#include "shapes_eval.h"

/* ---- issue 4: quality bars ------------------------------------------------ */

enum { SE_Q_CLIP = 1, SE_Q_VAE = 2, SE_Q_GEN = 4, SE_Q_INV = 8 };

typedef struct {
    /* (a) objects through their masks */
    long clip_objects, clip_both, clip_colour, clip_shape, clip_heldout, clip_heldout_both;
    /* (a) read off the colour words and the shape words separately */
    long attr_both, attr_colour, attr_shape, attr_heldout_both;
    /* (b) VAE, (d) inversion: per-scene PSNR (capped at SE_PSNR_CAP) */
    se_stat vae_psnr, inv_psnr, inv_vs_vae_psnr;
    /* (c) generation */
    long gen_images, gen_all_right, gen_objects, gen_objects_right;
    long gen_px_all_right, gen_px_objects_right; /* (c) by the pixel judge (se_quality_params.px) */
    double seconds[4];
} se_quality;

typedef struct {
    int what;            /* SE_Q_* bits */
    float guidance;      /* (c) */
    const float *uncond; /* (c) negative context: the empty prompt */
    uint64_t seed;       /* (c) noise seed of this scene */
    const se_px_judge *px; /* (c) also the pixel judge (NULL: not) */
} se_quality_params;

/* One scene: rgb (size, size, 3) and masks (n_objects, size, size) at the
 * sampler's image size; the sampler's T is the number of DDIM steps.
 * gen_out (optional, size*size*3): the generated image of (c). */
int se_quality_scene(sampler *s, se_judge *j, const se_scene *sc, const unsigned char *rgb,
                     const unsigned char *masks, const se_quality_params *p, se_quality *q,
                     unsigned char *gen_out, oir_error *err);

/* ---- issue 6: edit quality ------------------------------------------------ */

typedef struct {
    int obj_pairs, obj_right, colour_right, shape_right, heldout_pairs, heldout_right;
    int bg_pairs, bg_right, all_right, kept_n, kept_right;
    int has_bg_region; /* 1: the case has no background pair and pixels outside the masks */
    double bg_mse, bg_psnr, gt_psnr;
    double edit_psnr; /* inside the union of the pair masks, against the ground truth */
    float clip_score;
    /* the pixel judge (se_edit_evaluate_pixels): px_judged = 1 when the
     * fields below hold its verdicts (pairs as obj_pairs / bg_pairs) */
    int px_judged, px_obj_right, px_colour_right, px_shape_right, px_bg_right, px_all_right, px_kept_right;
} se_edit_eval;

typedef struct {
    long cases, obj_pairs, obj_right, colour_right, shape_right, heldout_pairs, heldout_right;
    long bg_pairs, bg_right, all_right, kept_n, kept_right;
    se_stat bg_mse, bg_psnr, gt_psnr, edit_psnr, clip;
    /* the pixel judge, over the px_cases cases it judged */
    long px_cases, px_obj_pairs, px_obj_right, px_colour_right, px_shape_right, px_bg_pairs, px_bg_right,
        px_all_right, px_kept_n, px_kept_right;
} se_edit_sum;

/* o[k] = v, or null when v is not finite (JSON has no NaN). */
void se_json_num(cJSON *o, const char *k, double v);

/* The inputs of edit case c at size x size: rgb and gt (size, size, 3), the
 * pair masks (n_pairs, size, size) and their union uni, the exact object
 * masks (n_objects, size, size). */
int se_edit_case_load(const se_case *c, int size, unsigned char *rgb, unsigned char *gt,
                      unsigned char *pair_masks, unsigned char *uni, unsigned char *obj_masks,
                      oir_error *err);

/* The judge's verdicts on one edited image E of case c. orig, gt: the
 * source and ground-truth images; pair_masks (n_pairs, size, size),
 * obj_masks (n_objects, size, size), uni the union of the pair masks;
 * target_text the normalised CLIP embedding of the target prompt. */
int se_edit_evaluate(se_judge *j, const se_case *c, const unsigned char *E, const unsigned char *orig,
                     const unsigned char *gt, const unsigned char *pair_masks,
                     const unsigned char *obj_masks, const unsigned char *uni, int size,
                     const float *target_text, se_edit_eval *out, oir_error *err);
void se_edit_sum_add(se_edit_sum *s, const se_edit_eval *e);

/* The pixel judge's verdicts on E (shapes_eval.h): object pair p is right
 * when the object at its position reads as the pair's colour (median inside
 * the new shape's outline) and shape (IoU); a background pair when the region
 * of its mask reads as the new background; an unedited object is kept when it
 * still reads as its own colour and shape. Objects are read on the target
 * background. Fills out's px_* fields (px_judged = 1); OIR_E_FORMAT when the
 * case's manifest gives no object positions. */
int se_edit_evaluate_pixels(const se_px_judge *px, const se_case *c, const unsigned char *E,
                            const unsigned char *pair_masks, se_edit_eval *out, oir_error *err);
/* Pair p alone (as se_edit_evaluate_pixels judges it): 1 right, 0 wrong. */
int se_pair_right_pixels(const se_px_judge *px, const se_case *c, int p, const unsigned char *E,
                         const unsigned char *pair_masks);

/* The search metric applied to T candidates of the whole target prompt, one
 * step for all pairs: edit score(k) = mean over pairs of the library
 * scorer's masked CLIP cosine of pair p's target phrase in pair p's mask;
 * background score(k) = minus the MSE outside the union; then
 * search_metric_choose. cands (T, size, size, 3); *chosen in 1..T. */
int se_search_mean_of_pairs(const clip_model *clip, const se_case *c, const unsigned char *rgb,
                            const unsigned char *cands, int T, const unsigned char *pair_masks,
                            const unsigned char *uni, int size, int *chosen, oir_error *err);

#endif
