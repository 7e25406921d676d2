#include "edit/search_metric.h"

#include <math.h>
#include <stdlib.h>

int minmax_normalize(float *out, const float *x, int n) {
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    float range = hi - lo;
    if (n <= 0 || !(range > 0) || !isfinite(range)) {
        for (int i = 0; i < n; i++) out[i] = 0.0f;
        return 1;
    }
    for (int i = 0; i < n; i++) out[i] = (x[i] - lo) / range;
    return 0;
}

search_choice search_metric_choose(const float *edit_scores, const float *neg_mse, int n,
                                   float *norm_edit, float *norm_background, float *total) {
    search_choice c = {0, 0, 0};
    if (n <= 0) return c;
    float *buf = malloc(sizeof(float) * 3 * (size_t)n);
    float stack[3 * 64];
    float *e = buf ? buf : (n <= 64 ? stack : NULL);
    if (!e) return c; /* allocation failure: fall back to the first candidate */
    float *b = e + n, *t = b + n;
    c.edit_flat = minmax_normalize(e, edit_scores, n);
    c.background_flat = minmax_normalize(b, neg_mse, n);
    for (int i = 0; i < n; i++) {
        t[i] = e[i] + b[i];
        if (t[i] > t[c.best]) c.best = i;
    }
    for (int i = 0; i < n; i++) {
        if (norm_edit) norm_edit[i] = e[i];
        if (norm_background) norm_background[i] = b[i];
        if (total) total[i] = t[i];
    }
    free(buf);
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
