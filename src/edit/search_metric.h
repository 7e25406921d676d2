/* The search metric of DESIGN.md §2.4: for each candidate k = 1..T of an
 * editing pair, an editing-region score (masked CLIP cosine with the target
 * phrase) and a non-editing-region score (minus the MSE outside the mask);
 * each is min-max normalised over the candidates, the two are added, and the
 * arg-max is the chosen inversion step. */
#ifndef OIR_EDIT_SEARCH_METRIC_H
#define OIR_EDIT_SEARCH_METRIC_H

#include "core/error.h"

typedef struct {
    int best;            /* index (0-based) of the chosen candidate */
    int edit_flat;       /* 1 when all editing-region scores were equal */
    int background_flat; /* 1 when all non-editing-region scores were equal */
    int guard_fallback;  /* search_metric_choose_guarded: no choosable candidate passed
                            the guard, so best is the plain arg-max */
} search_choice;

/* Min-max normalises x (n values) into out: (x - min) / (max - min). A flat
 * score (max == min, or not finite) normalises to all zeros, so it neither
 * helps nor hurts any candidate; returns 1 when flat. In place allowed. */
int minmax_normalize(float *out, const float *x, int n);

/* edit_scores and neg_mse: n raw scores (candidate k at index k-1).
 * norm_edit, norm_background, total: n outputs each (may be NULL).
 * Ties go to the smallest index (the least inverted candidate, the most
 * faithful one), as Python's list.index(max(...)) does in the authors' code. */
search_choice search_metric_choose(const float *edit_scores, const float *neg_mse, int n,
                                   float *norm_edit, float *norm_background, float *total);

/* Minus the mean squared error between a and b over the elements where
 * keep[i] != 0, divided by the TOTAL element count as the authors'
 * F.mse_loss(a*M, b*M) does (the constant factor does not change the
 * normalised score). a, b: (C, H, W); keep: (H, W). */
/* The metric over a subset (a search that evaluates some candidates only):
 * scores are normalised over the indices with evaluated[i] != 0 (NULL: all)
 * and the choice is among those with choosable[i] != 0 (NULL: the evaluated
 * ones). Outputs at other indices are NaN. With no choosable index, best is
 * -1. search_metric_choose is this with both NULL. */
search_choice search_metric_choose_among(const float *edit_scores, const float *neg_mse, int n,
                                         const unsigned char *evaluated,
                                         const unsigned char *choosable, float *norm_edit,
                                         float *norm_background, float *total);

/* The no-edit guard (oir_params.guard): as search_metric_choose_among, but
 * a candidate is eligible only when its raw edit score beats the unedited
 * source image's own (source_score: the masked CLIP cosine of the source
 * image, decoded as the candidates are, with the same phrase and mask) by
 * more than margin:
 * edit_scores[i] > source_score + margin. The normalisation is unchanged
 * (over every evaluated candidate); the choice is the arg-max of the total
 * among the choosable AND eligible candidates; when none is eligible, the
 * plain arg-max among the choosable ones with guard_fallback = 1.
 * eligible_out (n, may be NULL): 1 for the evaluated candidates that pass,
 * else 0. margin must be finite and >= 0 (search_guard_check); a NaN
 * source_score makes nothing eligible. */
search_choice search_metric_choose_guarded(const float *edit_scores, const float *neg_mse, int n,
                                           const unsigned char *evaluated,
                                           const unsigned char *choosable, float source_score,
                                           float margin, unsigned char *eligible_out,
                                           float *norm_edit, float *norm_background, float *total);

/* OIR_OK when margin is a valid guard margin (finite, >= 0), else
 * OIR_E_ARG naming it. */
int search_guard_check(float margin, oir_error *err);

float negative_masked_mse(const float *a, const float *b, const unsigned char *keep, int C,
                          int H, int W);

#endif
