#include "edit/search_metric.h"

#include <math.h>
#include <stdlib.h>


/* Min and max of x over the flagged indices (all when flags is NULL). */
static int minmax_normalize_among(float *out, const float *x, int n, const unsigned char *flags) {
    float lo = INFINITY, hi = -INFINITY;
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (flags && !flags[i]) continue;
        count++;
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    float range = hi - lo;
    int flat = count == 0 || !(range > 0) || !isfinite(range);
    for (int i = 0; i < n; i++)
        out[i] = flags && !flags[i] ? NAN : (flat ? 0.0f : (x[i] - lo) / range);
    return flat;
}

int minmax_normalize(float *out, const float *x, int n) {
    return minmax_normalize_among(out, x, n, NULL);
}

search_choice search_metric_choose_among(const float *edit_scores, const float *neg_mse, int n,
                                         const unsigned char *evaluated,
                                         const unsigned char *choosable, float *norm_edit,
                                         float *norm_background, float *total) {
    search_choice c = {-1, 0, 0, 0};
    if (n <= 0) return c;
    if (!choosable) choosable = evaluated;
    float *e = malloc(sizeof(float) * 3 * (size_t)n);
    if (!e) return c;
    float *b = e + n, *t = b + n;
    c.edit_flat = minmax_normalize_among(e, edit_scores, n, evaluated);
    c.background_flat = minmax_normalize_among(b, neg_mse, n, evaluated);
    for (int i = 0; i < n; i++) {
        t[i] = e[i] + b[i];
        if (choosable && !choosable[i]) continue;
        if (c.best < 0 || t[i] > t[c.best]) c.best = i; /* ties: the smallest index */
    }
    for (int i = 0; i < n; i++) {
        if (norm_edit) norm_edit[i] = e[i];
        if (norm_background) norm_background[i] = b[i];
        if (total) total[i] = t[i];
    }
    free(e);
    return c;
}

search_choice search_metric_choose_guarded(const float *edit_scores, const float *neg_mse, int n,
                                           const unsigned char *evaluated,
                                           const unsigned char *choosable, float source_score,
                                           float margin, unsigned char *eligible_out,
                                           float *norm_edit, float *norm_background, float *total) {
    search_choice c = {-1, 0, 0, 0};
    if (n <= 0) return c;
    if (!choosable) choosable = evaluated;
    unsigned char *ok = malloc((size_t)n);
    if (!ok) return c;
    int any = 0;
    for (int i = 0; i < n; i++) {
        int ev = !evaluated || evaluated[i];
        ok[i] = ev && edit_scores[i] > source_score + margin; /* NaN compares false */
        if (eligible_out) eligible_out[i] = ok[i];
        if (choosable && !choosable[i]) ok[i] = 0;
        any |= ok[i];
    }
    if (any) {
        c = search_metric_choose_among(edit_scores, neg_mse, n, evaluated, ok, norm_edit, norm_background, total);
    } else {
        c = search_metric_choose_among(edit_scores, neg_mse, n, evaluated, choosable, norm_edit, norm_background,
                                       total);
        c.guard_fallback = c.best >= 0;
    }
    free(ok);
    return c;
}

int search_guard_check(float margin, oir_error *err) {
    if (!isfinite(margin) || margin < 0)
        return oir_fail(err, OIR_E_ARG,
                        "guard margin %g: expected a finite number >= 0 (how much a candidate's masked CLIP "
                        "score must beat the unedited source image's)",
                        (double)margin);
    return OIR_OK;
}

search_choice search_metric_choose(const float *edit_scores, const float *neg_mse, int n,
                                   float *norm_edit, float *norm_background, float *total) {
    search_choice c = search_metric_choose_among(edit_scores, neg_mse, n, NULL, NULL, norm_edit,
                                                 norm_background, total);
    if (c.best < 0) c.best = 0; /* n <= 0 or out of memory: the first candidate */
    return c;
}

float negative_masked_mse(const float *a, const float *b, const unsigned char *keep, int C,
                          int H, int W) {
    double sum = 0;
    size_t hw = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < hw; i++)
            if (keep[i]) {
                double d = (double)a[c * hw + i] - (double)b[c * hw + i];
                sum += d * d;
            }
    return (float)(-sum / ((double)C * hw));
}
