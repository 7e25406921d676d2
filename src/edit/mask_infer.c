/* Automatic masks: DiffEdit's noise contrast and the clean-up (mask_infer.h). */
#include "edit/mask_infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/noise.h"
#include "edit/mask_attention.h"

/* ---- parameters -------------------------------------------------------- */

/* The method OIR_MASK_DEFAULT runs (README "Automatic masks": the best IoU measured). */
static int default_method(void) { return OIR_MASK_NOISE; }

static int available(int method) { return method >= OIR_MASK_NOISE && method <= OIR_MASK_COMBINED; }

/* Each method's measured clean-up (docs/MASKS.md "Clean-up and fallbacks";
 * bench/shapes/mask_bench on the 326 object pairs of bench/scenes/edit: the
 * setting with the most pairs at IoU >= 0.6): used when
 * oir_mask_params.threshold / dilate_px / thresholding_ratio are -1. The
 * noise map's clamp (ratio x its mean; DiffEdit's 3) is set high enough that
 * the threshold (0.60 x 6 = 3.6 x the mean) falls below it: the bilinear
 * upsampling then draws the contour from unclamped values (84.0% of pairs at
 * IoU >= 0.6 against 77.3% with DiffEdit's clamp at its best threshold). */
static const struct {
    float threshold, ratio;
    int dilate_px, upsample;
} method_defaults[4] = {
    [OIR_MASK_NOISE] = {0.60f, 6.0f, 1, MASK_UPSAMPLE_BILINEAR},
    [OIR_MASK_ATTENTION] = {0.55f, 3.0f, 1, MASK_UPSAMPLE_BILINEAR}, /* (no noise map: ratio unused) */
    [OIR_MASK_COMBINED] = {0.70f, 3.0f, 1, MASK_UPSAMPLE_BILINEAR},
};

int mask_method_resolve(int method) { return method == OIR_MASK_DEFAULT ? default_method() : method; }

float mask_method_threshold(int method) { return method_defaults[mask_method_resolve(method)].threshold; }
int mask_method_dilate(int method) { return method_defaults[mask_method_resolve(method)].dilate_px; }
int mask_method_upsample(int method) { return method_defaults[mask_method_resolve(method)].upsample; }
float mask_method_ratio(int method) { return method_defaults[mask_method_resolve(method)].ratio; }

void mask_combine(const float *a, const float *b, size_t n, int how, float *out) {
    for (size_t j = 0; j < n; j++) {
        float x = a[j] < 0 ? 0 : a[j], y = b[j] < 0 ? 0 : b[j];
        out[j] = how == MASK_COMBINE_MEAN ? 0.5f * (x + y) : how == MASK_COMBINE_GEOMEAN ? sqrtf(x * y) : (x < y ? x : y);
    }
}

oir_mask_params oir_mask_default_params(void) {
    oir_mask_params p;
    memset(&p, 0, sizeof p);
    p.method = OIR_MASK_DEFAULT;
    p.threshold = -1; /* the method's measured default */
    p.dilate_px = -1;
    p.num_maps = 10;
    p.encode_strength = 0.5;
    p.thresholding_ratio = -1; /* the method's measured default (DiffEdit's is 3) */
    p.noise_steps = 50;
    p.guidance = 7.5f;
    return p;
}

const char *oir_mask_method_name(int method) {
    switch (method == OIR_MASK_DEFAULT ? default_method() : method) {
    case OIR_MASK_NOISE: return "noise";
    case OIR_MASK_ATTENTION: return "attention";
    case OIR_MASK_COMBINED: return "combined";
    default: return "unknown";
    }
}

int oir_mask_method_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "noise")) return OIR_MASK_NOISE;
    if (!strcmp(name, "attention")) return OIR_MASK_ATTENTION;
    if (!strcmp(name, "combined")) return OIR_MASK_COMBINED;
    return -1;
}

int mask_params_check(const oir_mask_params *p, oir_error *err) {
    if (p->method < OIR_MASK_DEFAULT || p->method > OIR_MASK_COMBINED)
        return oir_fail(err, OIR_E_ARG, "mask method %d: expected OIR_MASK_DEFAULT, _NOISE, _ATTENTION or _COMBINED",
                        p->method);
    int m = p->method == OIR_MASK_DEFAULT ? default_method() : p->method;
    if (!available(m))
        return oir_fail(err, OIR_E_UNSUPPORTED, "mask method '%s' is not available in this build",
                        oir_mask_method_name(m));
    if (!(p->threshold <= 1) || (p->threshold < 0 && p->threshold != -1))
        return oir_fail(err, OIR_E_ARG, "mask threshold %g: expected 0..1 (on the normalised map), or -1 for the "
                        "method's default", (double)p->threshold);
    if (p->dilate_px < -1 || p->dilate_px > MASK_MAX_DILATE)
        return oir_fail(err, OIR_E_ARG, "mask dilation %d px: expected 0..%d, or -1 for the method's default",
                        p->dilate_px, MASK_MAX_DILATE);
    if (m == OIR_MASK_NOISE || m == OIR_MASK_COMBINED) {
        if (p->num_maps < 1 || p->num_maps > MASK_MAX_MAPS)
            return oir_fail(err, OIR_E_ARG, "mask num_maps %d: expected 1..%d", p->num_maps, MASK_MAX_MAPS);
        if (!(p->encode_strength > 0 && p->encode_strength <= 1))
            return oir_fail(err, OIR_E_ARG, "mask encode_strength %g: expected 0 < strength <= 1", p->encode_strength);
        if (!(p->thresholding_ratio > 0 && isfinite(p->thresholding_ratio)) && p->thresholding_ratio != -1)
            return oir_fail(err, OIR_E_ARG, "mask thresholding_ratio %g: expected a positive number, or -1 for the "
                            "method's default", (double)p->thresholding_ratio);
        if (p->noise_steps < 1 || p->noise_steps > 1000)
            return oir_fail(err, OIR_E_ARG, "mask noise_steps %d: expected 1..1000", p->noise_steps);
        if (!(p->guidance >= 0 && p->guidance <= 100))
            return oir_fail(err, OIR_E_ARG, "mask guidance %g: expected 0..100", (double)p->guidance);
    }
    return OIR_OK;
}

void mask_rows_split(const oir_mask_params *p, long *noise_rows, long *attention_rows) {
    int m = mask_method_resolve(p->method);
    mask_attention_params ap;
    mask_attention_defaults(&ap);
    *noise_rows = m != OIR_MASK_ATTENTION ? 2L * p->num_maps : 0;
    *attention_rows = m != OIR_MASK_NOISE ? ap.n_timesteps : 0;
}

long mask_rows_per_pair(const oir_mask_params *p) {
    long a, b;
    mask_rows_split(p, &a, &b);
    return a + b;
}

/* ---- noise contrast ------------------------------------------------------ */

int mask_noise_timestep(const ddim_config *cfg, int steps, double strength, int64_t *t, oir_error *err) {
    /* diffusers: init_timestep = min(int(steps * strength), steps); t_start =
     * steps - init_timestep; timesteps[t_start] */
    int init = (int)(steps * strength); /* Python's int() truncates */
    if (init > steps) init = steps;
    if (init < 1)
        return oir_fail(err, OIR_E_ARG,
                        "mask encode_strength %g x noise_steps %d gives no noise level (int(steps x strength) = 0)",
                        strength, steps);
    ddim_scheduler sched;
    int rc = ddim_init(&sched, cfg, err);
    if (!rc) rc = ddim_set_timesteps(&sched, steps, err);
    if (!rc) *t = sched.timesteps[steps - init];
    ddim_free(&sched);
    return rc;
}

void mask_gaussian(float *out, size_t n, uint64_t seed) { noise_gaussian(out, n, seed); }

int mask_noise_map(sampler *s, const float *latent, const float *src_ctx, const float *tgt_ctx,
                   const oir_mask_params *p, const float *noise, float *map, long *rows, oir_error *err) {
    int M = p->num_maps, B = 2 * M;
    size_t N = s->lat_n, hw = (size_t)s->lat_h * s->lat_w;
    int64_t t;
    int rc = mask_noise_timestep(&s->sched.cfg, p->noise_steps, p->encode_strength, &t, err);
    if (rc) return rc;
    float *x = malloc((size_t)B * N * sizeof(float)), *eps = malloc((size_t)B * N * sizeof(float));
    int64_t *ts = malloc((size_t)B * sizeof(int64_t));
    const float **cond = malloc((size_t)B * sizeof(float *));
    double *acc = calloc(hw, sizeof(double));
    if (!x || !eps || !ts || !cond || !acc) {
        rc = oir_fail(err, OIR_E_NOMEM, "mask: out of memory for %d noise maps", M);
        goto cleanup;
    }
    /* scheduler.add_noise: sqrt(a) x + sqrt(1 - a) noise, float32 */
    float a = ddim_alphabar(&s->sched, t), sa = sqrtf(a), sb = sqrtf(1.0f - a);
    for (int m = 0; m < M; m++) {
        float *xm = x + (size_t)m * N;
        const float *nm = noise + (size_t)m * N;
        for (size_t j = 0; j < N; j++) {
            float u = sa * latent[j], v = sb * nm[j];
            xm[j] = u + v;
        }
        memcpy(x + (size_t)(M + m) * N, xm, N * sizeof(float));
        ts[m] = ts[M + m] = t;
        cond[m] = src_ctx;
        cond[M + m] = tgt_ctx;
    }
    long rows0 = s->unet_rows;
    if ((rc = sampler_eps(s, x, ts, cond, NULL, 1.0f, B, eps, err))) goto cleanup;
    if (rows) *rows = s->unet_rows - rows0;
    float g = p->guidance > 1.0f ? p->guidance : 1.0f;
    int C = s->lat_c;
    for (int m = 0; m < M; m++)
        for (int c = 0; c < C; c++) {
            const float *es = eps + (size_t)m * N + (size_t)c * hw, *et = eps + (size_t)(M + m) * N + (size_t)c * hw;
            for (size_t j = 0; j < hw; j++) acc[j] += fabsf(g * (et[j] - es[j]));
        }
    for (size_t j = 0; j < hw; j++) map[j] = (float)(acc[j] / ((double)M * C));
cleanup:
    free(x);
    free(eps);
    free(ts);
    free(cond);
    free(acc);
    return rc;
}

int mask_normalise(const float *map, size_t n, float ratio, float *out) {
    double sum = 0;
    for (size_t j = 0; j < n; j++) sum += map[j];
    float c = (float)(sum / (double)n) * ratio;
    if (!(c > 0) || !isfinite(c)) {
        memset(out, 0, n * sizeof(float));
        return 0;
    }
    for (size_t j = 0; j < n; j++) {
        float v = map[j] < 0 ? 0 : (map[j] > c ? c : map[j]);
        out[j] = v / c;
    }
    return 1;
}

size_t mask_threshold(const float *norm, size_t n, float threshold, unsigned char *out) {
    size_t in = 0;
    for (size_t j = 0; j < n; j++) in += (out[j] = norm[j] > threshold);
    return in;
}

/* ---- clean-up ------------------------------------------------------------ */

void mask_fill_holes(unsigned char *m, int h, int w, int *scratch) {
    size_t n = (size_t)h * w;
    int *seen = scratch, *stack = scratch + n, top = 0;
    memset(seen, 0, n * sizeof(int));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x;
            if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && !m[i] && !seen[i]) seen[i] = 1, stack[top++] = i;
        }
    while (top) {
        int i = stack[--top], y = i / w, x = i % w;
        const int nb[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
        for (int k = 0; k < 4; k++) {
            int yy = nb[k][0], xx = nb[k][1];
            if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
            int j = yy * w + xx;
            if (!m[j] && !seen[j]) seen[j] = 1, stack[top++] = j;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!m[i] && !seen[i]) m[i] = 1;
}

int mask_keep_components(unsigned char *m, const float *map, int h, int w, float keep_ratio, int *scratch) {
    size_t n = (size_t)h * w;
    int *label = scratch, *stack = scratch + n, n_comp = 0;
    double *weight = calloc(n / 2 + 2, sizeof(double)); /* 8-connected components: at most ceil(n / 2) */
    if (!weight) return -1;
    memset(label, 0, n * sizeof(int));
    double best = 0;
    for (size_t s0 = 0; s0 < n; s0++) {
        if (!m[s0] || label[s0]) continue;
        int top = 0, id = ++n_comp;
        label[s0] = id;
        stack[top++] = (int)s0;
        while (top) {
            int i = stack[--top], y = i / w, x = i % w;
            weight[id] += map ? map[i] : 1.0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if ((!dy && !dx) || yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                    int j = yy * w + xx;
                    if (m[j] && !label[j]) label[j] = id, stack[top++] = j;
                }
        }
        if (weight[id] > best) best = weight[id];
    }
    int kept = 0;
    for (int id = 1; id <= n_comp; id++) kept += weight[id] >= keep_ratio * best;
    for (size_t i = 0; i < n; i++)
        if (label[i] && weight[label[i]] < keep_ratio * best) m[i] = 0;
    free(weight);
    return kept;
}

void mask_upsample_nearest(const unsigned char *m, int lh, int lw, unsigned char *out, int H, int W) {
    for (int y = 0; y < H; y++) {
        const unsigned char *row = m + (size_t)((long)y * lh / H) * lw;
        for (int x = 0; x < W; x++) out[(size_t)y * W + x] = row[(long)x * lw / W];
    }
}

void mask_dilate(unsigned char *m, int H, int W, int r, unsigned char *tmp) {
    if (r <= 0) return;
    for (int y = 0; y < H; y++) /* rows: max over [x - r, x + r] */
        for (int x = 0; x < W; x++) {
            unsigned char v = 0;
            for (int k = x - r < 0 ? 0 : x - r; k <= x + r && k < W && !v; k++) v = m[(size_t)y * W + k];
            tmp[(size_t)y * W + x] = v;
        }
    for (int y = 0; y < H; y++) /* columns */
        for (int x = 0; x < W; x++) {
            unsigned char v = 0;
            for (int k = y - r < 0 ? 0 : y - r; k <= y + r && k < H && !v; k++) v = tmp[(size_t)k * W + x];
            m[(size_t)y * W + x] = v;
        }
}

void mask_upsample_bilinear(const float *map, int lh, int lw, float *out, int H, int W) {
    float sy = (float)lh / H, sx = (float)lw / W;
    for (int y = 0; y < H; y++) {
        float fy = (y + 0.5f) * sy - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < lh ? y0 + 1 : lh - 1;
        float wy = fy - y0;
        for (int x = 0; x < W; x++) {
            float fx = (x + 0.5f) * sx - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < lw ? x0 + 1 : lw - 1;
            float wx = fx - x0;
            float top = map[y0 * lw + x0] * (1 - wx) + map[y0 * lw + x1] * wx;
            float bot = map[y1 * lw + x0] * (1 - wx) + map[y1 * lw + x1] * wx;
            out[(size_t)y * W + x] = top * (1 - wy) + bot * wy;
        }
    }
}

float mask_broadness(const float *map, size_t n) {
    double mean = 0;
    for (size_t j = 0; j < n; j++) mean += map[j];
    mean /= n ? (double)n : 1.0;
    size_t above = 0;
    for (size_t j = 0; j < n; j++) above += map[j] > mean;
    return n ? (float)((double)above / (double)n) : 0.0f;
}

int mask_clean(const float *norm, int flags, int lh, int lw, int H, int W, float threshold, int dilate_px,
               int upsample, unsigned char *mask, oir_mask_info *info, oir_error *err) {
    int flat = flags & MASK_CLEAN_FLAT;
    size_t HW = (size_t)H * W;
    if (lh < 1 || lw < 1 || H % lh || W % lw)
        return oir_fail(err, OIR_E_SHAPE, "mask: the %dx%d image is not a multiple of the %dx%d map", W, H, lw, lh);
    /* the grid the clean-up runs on: the latent grid (nearest: upsampled
     * after), or the map upsampled to the image (bilinear) */
    int bil = upsample == MASK_UPSAMPLE_BILINEAR, gh = bil ? H : lh, gw = bil ? W : lw;
    size_t n = (size_t)gh * gw;
    unsigned char *cells = malloc(n), *tmp = malloc(HW);
    int *scratch = malloc(2 * n * sizeof(int));
    float *grid = bil ? malloc(n * sizeof(float)) : NULL;
    int rc = OIR_OK;
    if (!cells || !tmp || !scratch || (bil && !grid)) {
        rc = oir_fail(err, OIR_E_NOMEM, "mask: out of memory");
        goto done;
    }
    const float *g = norm;
    if (bil) {
        mask_upsample_bilinear(norm, lh, lw, grid, H, W);
        g = grid;
    }
    info->threshold = threshold;
    info->dilate_px = dilate_px;
    info->warning = OIR_MASK_WARN_NONE;
    info->message[0] = '\0';
    float peak = 0;
    for (size_t j = 0; j < n; j++) peak = g[j] > peak ? g[j] : peak;
    if (flat || !(peak > 0)) {
        memset(mask, 1, HW);
        info->components = 1;
        info->area = 1.0f;
        info->warning = OIR_MASK_WARN_FLAT;
        snprintf(info->message, sizeof info->message,
                 "the map is flat (the two prompts predict the same noise everywhere): the mask is the whole image");
        goto done;
    }
    if (mask_threshold(g, n, threshold, cells) == 0) {
        float lowered = peak * 0.5f;
        info->warning = OIR_MASK_WARN_EMPTY;
        snprintf(info->message, sizeof info->message,
                 "no cell of the map is above the threshold %.2f (its peak is %.3f): the threshold was lowered to "
                 "%.3f, half the peak",
                 (double)threshold, (double)peak, (double)lowered);
        info->threshold = lowered;
        mask_threshold(g, n, lowered, cells);
    }
    if (!(flags & MASK_CLEAN_REGION)) mask_fill_holes(cells, gh, gw, scratch);
    if ((info->components = mask_keep_components(cells, g, gh, gw, MASK_KEEP_RATIO, scratch)) < 0) {
        rc = oir_fail(err, OIR_E_NOMEM, "mask: out of memory");
        goto done;
    }
    if (bil) memcpy(mask, cells, HW);
    else mask_upsample_nearest(cells, lh, lw, mask, H, W);
    mask_dilate(mask, H, W, dilate_px, tmp);
    size_t in = 0;
    for (size_t j = 0; j < HW; j++) in += mask[j];
    info->area = (float)((double)in / (double)HW);
    /* a region with the objects left out is localised, however large */
    if (info->area >= ((flags & MASK_CLEAN_REGION) ? MASK_REGION_WHOLE_AREA : MASK_WHOLE_AREA) &&
        info->warning == OIR_MASK_WARN_NONE) {
        info->warning = OIR_MASK_WARN_WHOLE;
        snprintf(info->message, sizeof info->message,
                 "the mask covers %.0f%% of the image: the phrase is not localised, so the edit acts on (almost) "
                 "the whole image; give a mask to edit one region",
                 100.0 * info->area);
    }
done:
    free(cells);
    free(tmp);
    free(scratch);
    free(grid);
    return rc;
}

int mask_infer_pair(sampler *s, oir_context *ctx, const float *latent, const float *src_ctx,
                    const float *tgt_ctx, const char *source_prompt, const char *phrase,
                    const oir_mask_params *p, unsigned char *mask, oir_mask_info *info, oir_error *err) {
    (void)ctx;
    memset(info, 0, sizeof *info);
    int rc = mask_params_check(p, err);
    if (rc) return rc;
    int method = mask_method_resolve(p->method);
    info->inferred = 1;
    info->method = method;
    size_t hw = (size_t)s->lat_h * s->lat_w;
    float *map = malloc(hw * sizeof(float)), *norm = malloc(hw * sizeof(float)), *att = malloc(hw * sizeof(float));
    float *noise = NULL;
    long rows0 = s->unet_rows;
    int ok = 1;
    if (!map || !norm || !att) {
        rc = oir_fail(err, OIR_E_NOMEM, "mask: out of memory");
        goto cleanup;
    }
    if (method != OIR_MASK_ATTENTION) { /* the noise contrast */
        const float *draws = p->noise;
        if (!draws) {
            if (!(noise = malloc((size_t)p->num_maps * s->lat_n * sizeof(float)))) {
                rc = oir_fail(err, OIR_E_NOMEM, "mask: out of memory for %d noise maps", p->num_maps);
                goto cleanup;
            }
            mask_gaussian(noise, (size_t)p->num_maps * s->lat_n, p->seed);
            draws = noise;
        }
        if ((rc = mask_noise_map(s, latent, src_ctx, tgt_ctx, p, draws, map, NULL, err))) goto cleanup;
        ok = mask_normalise(map, hw, p->thresholding_ratio > 0 ? p->thresholding_ratio : mask_method_ratio(method),
                            norm);
    }
    if (method != OIR_MASK_NOISE) { /* the phrase's cross-attention (mask_attention.h) */
        mask_attention_params ap;
        mask_attention_defaults(&ap);
        ap.seed = p->seed;
        if ((rc = mask_attention_map_sampler(s, latent, source_prompt, phrase, &ap, att, err))) goto cleanup;
        float hi = 0;
        for (size_t j = 0; j < hw; j++) hi = att[j] > hi ? att[j] : hi;
        if (method == OIR_MASK_ATTENTION) {
            memcpy(norm, att, hw * sizeof(float));
            ok = hi > 0;
        } else {
            mask_combine(norm, att, hw, MASK_COMBINE, norm);
            ok = ok || hi > 0;
        }
    }
    info->unet_rows = s->unet_rows - rows0;
    float threshold = p->threshold >= 0 ? p->threshold : mask_method_threshold(method);
    int dilate = p->dilate_px >= 0 ? p->dilate_px : mask_method_dilate(method);
    /* A phrase whose noise map is broad names a region around the objects (a
     * background): its default threshold is low (MASK_REGION_THRESHOLD x the
     * map's mean) and the objects inside it stay out (no hole filling). */
    int flags = ok ? 0 : MASK_CLEAN_FLAT;
    if (method == OIR_MASK_NOISE && ok && mask_broadness(map, hw) >= MASK_REGION_BROAD) {
        flags |= MASK_CLEAN_REGION;
        if (p->threshold < 0)
            threshold = MASK_REGION_THRESHOLD /
                        (p->thresholding_ratio > 0 ? p->thresholding_ratio : mask_method_ratio(method));
    }
    rc = mask_clean(norm, flags, s->lat_h, s->lat_w, s->image_h, s->image_w, threshold, dilate,
                    mask_method_upsample(method), mask, info, err);
cleanup:
    free(map);
    free(norm);
    free(att);
    free(noise);
    return rc;
}
