/* Masks: 1-channel images whose values are 0 (background) or 1 (object).
 * See image.h for the rules (non-zero = object, box coordinates, grids). */
#include "io/image.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int mask_load(image *out, const char *path, oir_error *err) {
    memset(out, 0, sizeof *out);
    image rgb;
    int rc = image_load(&rgb, path, err);
    if (rc) return rc;
    rc = image_alloc(out, rgb.width, rgb.height, 1, err);
    if (rc == OIR_OK) {
        const size_t n = (size_t)rgb.width * rgb.height;
        for (size_t i = 0; i < n; i++) {
            const float *p = rgb.data + i * 3;
            out->data[i] = (p[0] > 0.0f || p[1] > 0.0f || p[2] > 0.0f) ? 1.0f : 0.0f;
        }
    } else {
        oir_error_prefix(err, "%s", path);
    }
    image_free(&rgb);
    return rc;
}

int mask_load_square(image *out, const char *path, int size, oir_error *err) {
    memset(out, 0, sizeof *out);
    image full, sq;
    int rc = mask_load(&full, path, err);
    if (rc) return rc;
    rc = image_center_crop(&sq, &full, err);
    image_free(&full);
    if (rc) return oir_error_prefix(err, "%s", path);
    if (sq.width == size) {
        *out = sq;
        return OIR_OK;
    }
    rc = image_resize_nearest(out, &sq, size, size, err);
    image_free(&sq);
    if (rc) oir_error_prefix(err, "%s", path);
    return rc;
}

/* One integer field of a box spec; *s advances past it and a following ','
 * (required unless last). */
static int parse_int(const char **s, int last, long *v) {
    const char *p = *s;
    while (isspace((unsigned char)*p)) p++;
    if (!(isdigit((unsigned char)*p) || ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1]))))
        return -1;
    char *end;
    errno = 0;
    *v = strtol(p, &end, 10);
    if (errno || *v > INT_MAX / 2 || *v < INT_MIN / 2) return -1;
    p = end;
    while (isspace((unsigned char)*p)) p++;
    if (last) {
        if (*p) return -1;
    } else {
        if (*p != ',') return -1;
        p++;
    }
    *s = p;
    return 0;
}

int mask_parse_box(const char *spec, int box[4], oir_error *err) {
    if (!spec)
        return oir_fail(err, OIR_E_ARG, "box: missing, expected \"x0,y0,x1,y1\"");
    const char *s = spec;
    long v[4];
    for (int i = 0; i < 4; i++)
        if (parse_int(&s, i == 3, &v[i]) != 0)
            return oir_fail(err, OIR_E_ARG,
                            "box \"%s\": expected four integers \"x0,y0,x1,y1\" (pixels, x1 and "
                            "y1 exclusive)",
                            spec);
    for (int i = 0; i < 4; i++) box[i] = (int)v[i];
    return OIR_OK;
}

int mask_from_box(image *out, int width, int height, const int box[4], oir_error *err) {
    memset(out, 0, sizeof *out);
    const int x0 = box[0], y0 = box[1], x1 = box[2], y1 = box[3];
    if (x1 <= x0 || y1 <= y0)
        return oir_fail(err, OIR_E_ARG,
                        "box %d,%d,%d,%d is empty or inverted: need x0 < x1 and y0 < y1 (x1, y1 "
                        "exclusive)",
                        x0, y0, x1, y1);
    int cx0 = x0 < 0 ? 0 : x0, cy0 = y0 < 0 ? 0 : y0;
    int cx1 = x1 > width ? width : x1, cy1 = y1 > height ? height : y1;
    if (cx1 <= cx0 || cy1 <= cy0)
        return oir_fail(err, OIR_E_ARG, "box %d,%d,%d,%d lies outside the %dx%d image", x0, y0,
                        x1, y1, width, height);
    int rc = image_alloc(out, width, height, 1, err);
    if (rc) return rc;
    for (int y = cy0; y < cy1; y++)
        for (int x = cx0; x < cx1; x++) out->data[(size_t)y * width + x] = 1.0f;
    return OIR_OK;
}

/* torch's nearest_idx for one axis (scale given as None). */
static int torch_nearest(int dst, int in_size, int out_size) {
    if (out_size == in_size) return dst;
    if (out_size == 2 * in_size) return dst >> 1;
    const float scale = (float)in_size / (float)out_size;
    long src = (long)floorf((float)dst * scale);
    return src < in_size - 1 ? (int)src : in_size - 1;
}

int mask_resize_nearest(image *out, const image *in, int width, int height, oir_error *err) {
    memset(out, 0, sizeof *out);
    if (!in->data || in->channels != 1 || in->width <= 0 || in->height <= 0)
        return oir_fail(err, OIR_E_ARG, "mask_resize_nearest: expected a 1-channel mask, got %dx%dx%d",
                        in->width, in->height, in->channels);
    int rc = image_alloc(out, width, height, 1, err);
    if (rc) return rc;
    for (int y = 0; y < height; y++) {
        const float *srow = in->data + (size_t)torch_nearest(y, in->height, height) * in->width;
        for (int x = 0; x < width; x++)
            out->data[(size_t)y * width + x] =
                srow[torch_nearest(x, in->width, width)] > 0.5f ? 1.0f : 0.0f;
    }
    return OIR_OK;
}

int mask_check_size(const image *mask, const char *mask_name, const image *img,
                    const char *image_name, oir_error *err) {
    if (mask->width == img->width && mask->height == img->height) return OIR_OK;
    return oir_fail(err, OIR_E_SHAPE, "mask %s is %dx%d but image %s is %dx%d (width x height)",
                    mask_name ? mask_name : "(mask)", mask->width, mask->height,
                    image_name ? image_name : "(image)", img->width, img->height);
}
