/* Working image <-> photo: sizes, the minimal crop, masks and the composite
 * (io/image_fit.h). */
#include "io/image_fit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int image_fit_size(int photo_w, int photo_h, int side, int multiple, int *work_w, int *work_h,
                   oir_error *err) {
    if (multiple < 1 || side < multiple || side % multiple != 0)
        return oir_fail(err, OIR_E_ARG, "size %d is not a positive multiple of %d", side, multiple);
    if (photo_w < 1 || photo_h < 1) return oir_fail(err, OIR_E_ARG, "photo is %dx%d", photo_w, photo_h);
    long long lo = photo_w < photo_h ? photo_w : photo_h, hi = photo_w < photo_h ? photo_h : photo_w;
    /* round(side * lo / hi / multiple), half up, at least 1 */
    long long q = (2LL * side * lo + hi * multiple) / (2LL * hi * multiple);
    int short_side = (int)(q < 1 ? 1 : q) * multiple;
    if (short_side > side) short_side = side;
    *work_w = photo_w >= photo_h ? side : short_side;
    *work_h = photo_w >= photo_h ? short_side : side;
    return OIR_OK;
}

void image_fit_plan(image_fit *f, int photo_w, int photo_h, int work_w, int work_h) {
    memset(f, 0, sizeof *f);
    f->photo_w = photo_w, f->photo_h = photo_h, f->work_w = work_w, f->work_h = work_h;
    if ((long long)photo_w * work_h > (long long)photo_h * work_w) { /* photo wider: crop columns */
        f->crop_h = photo_h;
        f->crop_w = (int)((2LL * photo_h * work_w + work_h) / (2LL * work_h));
    } else { /* photo taller (or the same aspect): crop rows */
        f->crop_w = photo_w;
        f->crop_h = (int)((2LL * photo_w * work_h + work_w) / (2LL * work_w));
    }
    if (f->crop_w < 1) f->crop_w = 1;
    if (f->crop_h < 1) f->crop_h = 1;
    if (f->crop_w > photo_w) f->crop_w = photo_w;
    if (f->crop_h > photo_h) f->crop_h = photo_h;
    f->crop_x = (photo_w - f->crop_w) / 2;
    f->crop_y = (photo_h - f->crop_h) / 2;
}

static int check_photo(const char *what, const image *in, int channels, const image_fit *f, oir_error *err) {
    if (!in || !in->data || in->width != f->photo_w || in->height != f->photo_h ||
        (channels && in->channels != channels))
        return oir_fail(err, OIR_E_SHAPE, "%s: expected a %dx%d image, got %dx%d", what, f->photo_w, f->photo_h,
                        in ? in->width : 0, in ? in->height : 0);
    return OIR_OK;
}

static int crop(image *out, const image *in, const image_fit *f, oir_error *err) {
    int ch = in->channels, rc = image_alloc(out, f->crop_w, f->crop_h, ch, err);
    if (rc) return rc;
    for (int y = 0; y < f->crop_h; y++)
        memcpy(out->data + (size_t)y * f->crop_w * ch,
               in->data + ((size_t)(y + f->crop_y) * in->width + f->crop_x) * ch,
               (size_t)f->crop_w * ch * sizeof(float));
    return OIR_OK;
}

/* crop, then resize with `resize` unless the crop already has the working
 * size (Pillow returns a copy then: values untouched) */
static int fit(image *out, const image *in, const image_fit *f,
               int (*resize)(image *, const image *, int, int, oir_error *), oir_error *err) {
    memset(out, 0, sizeof *out);
    image c = {0};
    int rc = crop(&c, in, f, err);
    if (rc) return rc;
    if (c.width == f->work_w && c.height == f->work_h) {
        *out = c;
        return OIR_OK;
    }
    rc = resize(out, &c, f->work_w, f->work_h, err);
    image_free(&c);
    return rc;
}

int image_fit_image(image *out, const image *photo, const image_fit *f, oir_error *err) {
    memset(out, 0, sizeof *out);
    int rc = check_photo("image_fit_image", photo, 0, f, err);
    return rc ? rc : fit(out, photo, f, image_resize, err);
}

int image_fit_mask(image *out, const image *mask, const image_fit *f, oir_error *err) {
    memset(out, 0, sizeof *out);
    int rc = check_photo("image_fit_mask", mask, 1, f, err);
    return rc ? rc : fit(out, mask, f, image_resize_nearest, err);
}

long image_fit_mask_outside(const image *mask, const image_fit *f) {
    long n = 0;
    for (int y = 0; y < mask->height; y++)
        for (int x = 0; x < mask->width; x++)
            if (mask->data[(size_t)y * mask->width + x] > 0.5f &&
                (x < f->crop_x || x >= f->crop_x + f->crop_w || y < f->crop_y || y >= f->crop_y + f->crop_h))
                n++;
    return n;
}

int image_fit_feather(const image_fit *f) {
    /* two working pixels, in photo pixels (rounded) */
    int fx = (int)((4LL * f->crop_w + f->work_w) / (2LL * f->work_w));
    int fy = (int)((4LL * f->crop_h + f->work_h) / (2LL * f->work_h));
    int v = fx > fy ? fx : fy;
    return v < 1 ? 1 : v;
}

/* Chamfer (3-4) distance of every pixel of `in` (1 = inside) to the nearest
 * pixel with in == 0, times 3; pixels beyond the grid do not count. */
static void chamfer(const unsigned char *in, int W, int H, int32_t *d) {
    const int32_t inf = INT32_MAX / 2;
    for (size_t i = 0; i < (size_t)W * H; i++) d[i] = in[i] ? inf : 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int32_t *p = d + (size_t)y * W + x, v = *p;
            if (!v) continue;
            if (x > 0 && p[-1] + 3 < v) v = p[-1] + 3;
            if (y > 0) {
                const int32_t *u = p - W;
                if (u[0] + 3 < v) v = u[0] + 3;
                if (x > 0 && u[-1] + 4 < v) v = u[-1] + 4;
                if (x + 1 < W && u[1] + 4 < v) v = u[1] + 4;
            }
            *p = v;
        }
    for (int y = H - 1; y >= 0; y--)
        for (int x = W - 1; x >= 0; x--) {
            int32_t *p = d + (size_t)y * W + x, v = *p;
            if (!v) continue;
            if (x + 1 < W && p[1] + 3 < v) v = p[1] + 3;
            if (y + 1 < H) {
                const int32_t *u = p + W;
                if (u[0] + 3 < v) v = u[0] + 3;
                if (x + 1 < W && u[1] + 4 < v) v = u[1] + 4;
                if (x > 0 && u[-1] + 4 < v) v = u[-1] + 4;
            }
            *p = v;
        }
}

int image_fit_composite(image *out, const image *photo, const image *edited, const image *masks, int n,
                        const image_fit *f, int feather, oir_error *err) {
    memset(out, 0, sizeof *out);
    int rc = check_photo("image_fit_composite: photo", photo, 3, f, err);
    for (int i = 0; !rc && i < n; i++) rc = check_photo("image_fit_composite: mask", &masks[i], 1, f, err);
    if (rc) return rc;
    if (!edited || !edited->data || edited->width != f->work_w || edited->height != f->work_h ||
        edited->channels != 3)
        return oir_fail(err, OIR_E_SHAPE, "image_fit_composite: the edit must be %dx%d RGB, got %dx%d",
                        f->work_w, f->work_h, edited ? edited->width : 0, edited ? edited->height : 0);
    if (feather < 0) feather = 0;
    const int W = f->photo_w, H = f->photo_h;
    image up = {0};
    unsigned char *inside = calloc((size_t)W * H, 1);
    int32_t *dist = malloc((size_t)W * H * sizeof(int32_t));
    if (!inside || !dist) {
        rc = oir_fail(err, OIR_E_NOMEM, "image_fit_composite: out of memory for a %dx%d photo", W, H);
        goto cleanup;
    }
    if (edited->width == f->crop_w && edited->height == f->crop_h) rc = image_copy(&up, edited, err);
    else rc = image_resize(&up, edited, f->crop_w, f->crop_h, err);
    if (!rc) rc = image_copy(out, photo, err);
    if (rc) goto cleanup;
    for (int y = f->crop_y; y < f->crop_y + f->crop_h; y++)
        for (int x = f->crop_x; x < f->crop_x + f->crop_w; x++) {
            size_t j = (size_t)y * W + x;
            for (int i = 0; i < n && !inside[j]; i++) inside[j] = masks[i].data[j] > 0.5f;
        }
    chamfer(inside, W, H, dist);
    for (int y = f->crop_y; y < f->crop_y + f->crop_h; y++)
        for (int x = f->crop_x; x < f->crop_x + f->crop_w; x++) {
            size_t j = (size_t)y * W + x;
            if (!inside[j]) continue;
            float a = (float)dist[j] / (3.0f * (float)(feather + 1));
            if (a > 1.0f) a = 1.0f;
            const float *e = up.data + ((size_t)(y - f->crop_y) * f->crop_w + (x - f->crop_x)) * 3;
            float *o = out->data + j * 3;
            for (int c = 0; c < 3; c++) o[c] = a >= 1.0f ? e[c] : o[c] + a * (e[c] - o[c]);
        }
cleanup:
    if (rc) image_free(out);
    image_free(&up);
    free(inside);
    free(dist);
    return rc;
}
