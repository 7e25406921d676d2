/* The public image helpers of include/oir.h: what a C user needs to feed
 * oir_edit (8-bit RGB and masks at a working size), to save its result and to
 * put it back into the photo, over the same loaders, crops, resizes and
 * composite the CLI uses (io/image_fit.h). */
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "io/image_fit.h"
#include "oir.h"

/* 8-bit bytes of a decoded [0, 1] image (exact for decoded 8-bit files). */
static unsigned char *to_bytes(const image *img, int binary, oir_error *err) {
    size_t n = (size_t)img->width * img->height * img->channels;
    unsigned char *out = malloc(n ? n : 1);
    if (!out) {
        oir_fail(err, OIR_E_NOMEM, "out of memory for a %dx%d image", img->width, img->height);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float v = img->data[i];
        out[i] = binary ? (v > 0.5f) : (unsigned char)(v * 255.0f + 0.5f);
    }
    return out;
}

/* in (as read) -> *out: as it is for width = height = 0, else fitted to
 * width x height (io/image_fit.h) */
static int fit_or_keep(image *out, image *in, int width, int height, const char *path, oir_error *err) {
    if (width == 0 && height == 0) {
        *out = *in;
        memset(in, 0, sizeof *in);
        return OIR_OK;
    }
    if (width <= 0 || height <= 0)
        return oir_fail(err, OIR_E_ARG, "%s: size %dx%d: expected both > 0 (or both 0: as it is)", path, width,
                        height);
    image_fit f;
    image_fit_plan(&f, in->width, in->height, width, height);
    int rc = in->channels == 1 ? image_fit_mask(out, in, &f, err) : image_fit_image(out, in, &f, err);
    if (rc) oir_error_prefix(err, "%s", path);
    return rc;
}

int oir_image_load(const char *path, int width, int height, unsigned char **rgb_out, int *width_out,
                   int *height_out, oir_error *err) {
    *rgb_out = NULL;
    image full = {0}, img = {0};
    int rc = image_load(&full, path, err);
    if (!rc) rc = fit_or_keep(&img, &full, width, height, path, err);
    if (!rc) rc = (*rgb_out = to_bytes(&img, 0, err)) ? OIR_OK : err->code;
    if (!rc && width_out) *width_out = img.width;
    if (!rc && height_out) *height_out = img.height;
    image_free(&full);
    image_free(&img);
    return rc;
}

int oir_mask_load(const char *path, int width, int height, unsigned char **mask_out, int *width_out,
                  int *height_out, oir_error *err) {
    *mask_out = NULL;
    image full = {0}, m = {0};
    int rc = mask_load(&full, path, err);
    if (!rc) rc = fit_or_keep(&m, &full, width, height, path, err);
    if (!rc) rc = (*mask_out = to_bytes(&m, 1, err)) ? OIR_OK : err->code;
    if (!rc && width_out) *width_out = m.width;
    if (!rc && height_out) *height_out = m.height;
    image_free(&full);
    image_free(&m);
    return rc;
}

/* 8-bit (h, w, channels) bytes -> image; masks (channels 1) as 0/1 */
static int from_bytes(image *out, const unsigned char *src, int w, int h, int channels, oir_error *err) {
    int rc = image_check_size("image", w, h, err);
    if (!rc) rc = image_alloc(out, w, h, channels, err);
    for (size_t i = 0; !rc && i < (size_t)w * h * channels; i++)
        out->data[i] = channels == 1 ? (src[i] ? 1.0f : 0.0f) : src[i] / 255.0f;
    return rc;
}

int oir_image_fit(const unsigned char *src, int src_w, int src_h, int channels, int width, int height,
                  unsigned char **out, oir_error *err) {
    *out = NULL;
    if (!src || (channels != 1 && channels != 3))
        return oir_fail(err, OIR_E_ARG, "oir_image_fit: expected an image with 1 or 3 channels, got %d", channels);
    if (width <= 0 || height <= 0)
        return oir_fail(err, OIR_E_ARG, "oir_image_fit: size %dx%d: expected both > 0", width, height);
    image in = {0}, fitted = {0};
    image_fit f;
    int rc = from_bytes(&in, src, src_w, src_h, channels, err);
    if (!rc) {
        image_fit_plan(&f, src_w, src_h, width, height);
        rc = channels == 1 ? image_fit_mask(&fitted, &in, &f, err) : image_fit_image(&fitted, &in, &f, err);
    }
    if (!rc) rc = (*out = to_bytes(&fitted, channels == 1, err)) ? OIR_OK : err->code;
    image_free(&in);
    image_free(&fitted);
    return rc;
}

int oir_image_composite(const unsigned char *photo, int photo_w, int photo_h, const unsigned char *edited,
                        int width, int height, const unsigned char *const *masks, int n_masks,
                        unsigned char **out, oir_error *err) {
    *out = NULL;
    if (!photo || !edited || (n_masks > 0 && !masks) || n_masks < 0)
        return oir_fail(err, OIR_E_ARG, "oir_image_composite: missing argument");
    if (width <= 0 || height <= 0)
        return oir_fail(err, OIR_E_ARG, "oir_image_composite: edit size %dx%d: expected both > 0", width, height);
    image p = {0}, e = {0}, result = {0}, *ms = calloc((size_t)(n_masks > 0 ? n_masks : 1), sizeof(image));
    if (!ms) return oir_fail(err, OIR_E_NOMEM, "oir_image_composite: out of memory");
    int rc = from_bytes(&p, photo, photo_w, photo_h, 3, err);
    if (!rc) rc = from_bytes(&e, edited, width, height, 3, err);
    for (int i = 0; !rc && i < n_masks; i++) rc = from_bytes(&ms[i], masks[i], photo_w, photo_h, 1, err);
    if (!rc) {
        image_fit f;
        image_fit_plan(&f, photo_w, photo_h, width, height);
        rc = image_fit_composite(&result, &p, &e, ms, n_masks, &f, image_fit_feather(&f), err);
    }
    if (!rc) rc = (*out = to_bytes(&result, 0, err)) ? OIR_OK : err->code;
    image_free(&p);
    image_free(&e);
    image_free(&result);
    for (int i = 0; i < n_masks; i++) image_free(&ms[i]);
    free(ms);
    return rc;
}

int oir_image_save_png(const char *path, const unsigned char *rgb, int width, int height,
                       oir_error *err) {
    image img = {0};
    int rc = image_alloc(&img, width, height, 3, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)width * height * 3; i++) img.data[i] = rgb[i] / 255.0f;
    rc = image_save_png(&img, path, err);
    image_free(&img);
    return rc;
}

void oir_free(void *p) { free(p); }
