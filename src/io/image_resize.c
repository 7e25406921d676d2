/* Resizing as Pillow 9.4 does it (libImaging/Resample.c and Geometry.c), and
 * the center crop of prompt-to-prompt's load_512.
 *
 * BICUBIC (Image.resize's default for RGB/L): for each axis, output pixel xx
 * has center = (xx + 0.5) * scale, scale = in / out; the filter (Keys cubic,
 * a = -0.5, support 2) is stretched by max(scale, 1) so downscaling
 * antialiases; taps cover [int(center - support + 0.5), int(center + support
 * + 0.5)) clipped to the image; weights are normalised to sum 1, then turned
 * into 22-bit fixed point (round half away from zero). Each pass accumulates
 * u8 * weight from 1 << 21 (rounding) and clamps (sum >> 22) to 0..255. The
 * horizontal pass runs first, the vertical pass on its 8-bit output. A pass
 * whose size does not change is skipped; same size both ways is a copy.
 *
 * NEAREST: ImagingScaleAffine: source x = int(x0), x0 = scale / 2, then
 * x0 += scale for each next output pixel (accumulated in double). */
#include "io/image.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    int ksize;
    int *bounds; /* (out, 2): first tap, number of taps */
    int32_t *k;  /* (out, ksize) fixed-point weights */
} coeffs;

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
    memset(c, 0, sizeof *c);
}

/* precompute_coeffs + normalize_coeffs_8bpc for box [0, in_size). */
static int coeffs_make(coeffs *c, int in_size, int out_size, oir_error *err) {
    memset(c, 0, sizeof *c);
    const float in0 = 0.0f, in1 = (float)in_size;
    double scale, filterscale;
    filterscale = scale = (double)(in1 - in0) / out_size;
    if (filterscale < 1.0) filterscale = 1.0;
    const double support = 2.0 * filterscale;
    const int ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc((size_t)ksize * sizeof(double));
    c->bounds = malloc((size_t)out_size * 2 * sizeof(int));
    c->k = calloc((size_t)out_size * ksize, sizeof(int32_t));
    if (!w || !c->bounds || !c->k) {
        free(w);
        coeffs_free(c);
        return oir_fail(err, OIR_E_NOMEM, "image_resize: cannot allocate %d x %d coefficients",
                        out_size, ksize);
    }
    c->ksize = ksize;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double v = bicubic_filter((x + xmin - center + 0.5) * ss);
            w[x] = v;
            ww += v;
        }
        int32_t *k = c->k + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2 + 0] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(w);
    return OIR_OK;
}

static inline uint8_t clip8(int32_t ss) {
    if (ss < 0) return 0;
    ss >>= PRECISION_BITS;
    return ss > 255 ? 255 : (uint8_t)ss;
}

/* Rows [y0, y1) of src (in_w wide) into dst rows [0, y1 - y0) (out_w wide). */
static void resample_h(uint8_t *dst, const uint8_t *src, int in_w, int out_w, int y0, int y1,
                       int ch, const coeffs *c) {
    for (int yy = y0; yy < y1; yy++) {
        const uint8_t *in = src + (size_t)yy * in_w * ch;
        uint8_t *out = dst + (size_t)(yy - y0) * out_w * ch;
        for (int xx = 0; xx < out_w; xx++) {
            const int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            for (int b = 0; b < ch; b++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += in[(size_t)(x + xmin) * ch + b] * k[x];
                out[(size_t)xx * ch + b] = clip8(ss);
            }
        }
    }
}

/* Vertical pass; c->bounds already shifted by the first source row. */
static void resample_v(uint8_t *dst, const uint8_t *src, int w, int out_h, int ch,
                       const coeffs *c) {
    const size_t stride = (size_t)w * ch;
    for (int yy = 0; yy < out_h; yy++) {
        const int ymin = c->bounds[yy * 2], ymax = c->bounds[yy * 2 + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        uint8_t *out = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * stride + i] * k[y];
            out[i] = clip8(ss);
        }
    }
}

static inline uint8_t f_to_u8(float x) {
    if (!(x > 0.0f)) return 0;
    if (x >= 1.0f) return 255;
    return (uint8_t)nearbyintf(x * 255.0f);
}

static int check_target(const char *fn, const image *in, int width, int height, oir_error *err) {
    if (!in->data || in->width <= 0 || in->height <= 0 || in->channels < 1 || in->channels > 4)
        return oir_fail(err, OIR_E_ARG, "%s: invalid input image (%dx%dx%d)", fn, in->width,
                        in->height, in->channels);
    return image_check_size(fn, width, height, err);
}

int image_resize(image *out, const image *in, int width, int height, oir_error *err) {
    memset(out, 0, sizeof *out);
    int rc = check_target("image_resize", in, width, height, err);
    if (rc) return rc;
    const int ch = in->channels, iw = in->width, ih = in->height;
    coeffs ch_, cv = {0};
    memset(&ch_, 0, sizeof ch_);
    uint8_t *src = NULL, *tmp = NULL, *dst = NULL;
    const size_t n_in = (size_t)iw * ih * ch;
    src = malloc(n_in);
    if (!src) {
        rc = oir_fail(err, OIR_E_NOMEM, "image_resize: cannot allocate %zu bytes", n_in);
        goto cleanup;
    }
    for (size_t i = 0; i < n_in; i++) src[i] = f_to_u8(in->data[i]);

    const int need_h = width != iw, need_v = height != ih;
    rc = coeffs_make(&ch_, iw, width, err);
    if (!rc) rc = coeffs_make(&cv, ih, height, err);
    if (rc) goto cleanup;

    const uint8_t *cur = src;
    int cur_w = iw;
    if (need_h) {
        /* Only the source rows the vertical pass reads. */
        const int y_first = cv.bounds[0];
        const int y_last = cv.bounds[height * 2 - 2] + cv.bounds[height * 2 - 1];
        for (int i = 0; i < height; i++) cv.bounds[i * 2] -= y_first;
        tmp = malloc((size_t)width * (y_last - y_first) * ch + 1);
        if (!tmp) {
            rc = oir_fail(err, OIR_E_NOMEM, "image_resize: cannot allocate the temporary image");
            goto cleanup;
        }
        resample_h(tmp, src, iw, width, y_first, y_last, ch, &ch_);
        cur = tmp;
        cur_w = width;
    }
    if (need_v) {
        dst = malloc((size_t)width * height * ch);
        if (!dst) {
            rc = oir_fail(err, OIR_E_NOMEM, "image_resize: cannot allocate the output image");
            goto cleanup;
        }
        resample_v(dst, cur, cur_w, height, ch, &cv);
        cur = dst;
    }
    rc = image_alloc(out, width, height, ch, err);
    if (rc) goto cleanup;
    float lut[256];
    for (int k = 0; k < 256; k++) lut[k] = (float)k / 255.0f;
    const size_t n_out = (size_t)width * height * ch;
    for (size_t i = 0; i < n_out; i++) out->data[i] = lut[cur[i]];
cleanup:
    coeffs_free(&ch_);
    coeffs_free(&cv);
    free(src);
    free(tmp);
    free(dst);
    return rc;
}

int image_resize_nearest(image *out, const image *in, int width, int height, oir_error *err) {
    memset(out, 0, sizeof *out);
    int rc = check_target("image_resize_nearest", in, width, height, err);
    if (rc) return rc;
    const int ch = in->channels;
    int *xin = malloc((size_t)width * sizeof(int));
    if (!xin) return oir_fail(err, OIR_E_NOMEM, "image_resize_nearest: out of memory");
    rc = image_alloc(out, width, height, ch, err);
    if (rc) {
        free(xin);
        return rc;
    }
    /* a[0] = (box[2] - box[0]) / xsize with float box, as Pillow. */
    const double ax = (double)((float)in->width - 0.0f) / width;
    const double ay = (double)((float)in->height - 0.0f) / height;
    double xo = 0.0 + ax * 0.5, yo = 0.0 + ay * 0.5;
    for (int x = 0; x < width; x++) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xin[x] = xi >= 0 && xi < in->width ? xi : -1; /* -1: left at 0, as Pillow's fill */
        xo += ax;
    }
    for (int y = 0; y < height; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        yo += ay;
        if (yi < 0 || yi >= in->height) continue;
        const float *srow = in->data + (size_t)yi * in->width * ch;
        float *drow = out->data + (size_t)y * width * ch;
        for (int x = 0; x < width; x++)
            if (xin[x] >= 0) memcpy(drow + (size_t)x * ch, srow + (size_t)xin[x] * ch, ch * sizeof(float));
    }
    free(xin);
    return OIR_OK;
}

int image_center_crop(image *out, const image *in, oir_error *err) {
    memset(out, 0, sizeof *out);
    if (!in->data || in->width <= 0 || in->height <= 0)
        return oir_fail(err, OIR_E_ARG, "image_center_crop: invalid input image (%dx%d)",
                        in->width, in->height);
    const int h = in->height, w = in->width, ch = in->channels;
    int side = h < w ? h : w, x0 = 0, y0 = 0;
    if (h < w) x0 = (w - h) / 2;
    else if (w < h) y0 = (h - w) / 2;
    int rc = image_alloc(out, side, side, ch, err);
    if (rc) return rc;
    for (int y = 0; y < side; y++)
        memcpy(out->data + (size_t)y * side * ch,
               in->data + ((size_t)(y + y0) * w + x0) * ch, (size_t)side * ch * sizeof(float));
    return OIR_OK;
}

int image_center_crop_resize(image *out, const image *in, int size, oir_error *err) {
    memset(out, 0, sizeof *out);
    image sq;
    int rc = image_center_crop(&sq, in, err);
    if (rc) return rc;
    if (sq.width == size) {
        *out = sq; /* Pillow returns a copy: values untouched */
        return OIR_OK;
    }
    rc = image_resize(out, &sq, size, size, err);
    image_free(&sq);
    return rc;
}

int image_load_square(image *out, const char *path, int size, oir_error *err) {
    memset(out, 0, sizeof *out);
    image full;
    int rc = image_load(&full, path, err);
    if (rc) return rc;
    rc = image_center_crop_resize(out, &full, size, err);
    if (rc) oir_error_prefix(err, "%s", path);
    image_free(&full);
    return rc;
}
